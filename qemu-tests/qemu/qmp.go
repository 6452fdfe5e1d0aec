//go:build linux

package qemu

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmp is just enough of the QEMU Machine Protocol to set link states and
// continue a VM started with -S. QEMU connects to a socket Start listens on.
type qmp struct {
	mu   sync.Mutex // one command in flight
	conn net.Conn
	dec  *json.Decoder
}

type qmpReply struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Event  string          `json:"event"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// newQMP reads QEMU's greeting and leaves capability negotiation mode.
func newQMP(conn net.Conn) (*qmp, error) {
	q := &qmp{conn: conn, dec: json.NewDecoder(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	var greeting qmpReply
	if err := q.dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("qemu: read the QMP greeting: %w", err)
	}
	if greeting.QMP == nil {
		return nil, fmt.Errorf("qemu: QMP greeting without a QMP member")
	}
	return q, q.do("qmp_capabilities", nil)
}

// do runs one command and waits for its reply, skipping events.
func (q *qmp) do(command string, args any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer q.conn.SetDeadline(time.Time{})
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(req); err != nil {
		return fmt.Errorf("qemu: QMP %s: %w", command, err)
	}
	for {
		var r qmpReply
		if err := q.dec.Decode(&r); err != nil {
			return fmt.Errorf("qemu: QMP %s: %w", command, err)
		}
		switch {
		case r.Error != nil:
			return fmt.Errorf("qemu: QMP %s: %s: %s", command, r.Error.Class, r.Error.Desc)
		case r.Return != nil:
			return nil
		}
		// An event ({"event": ...}): not the reply yet.
	}
}

func (q *qmp) close() { q.conn.Close() }
