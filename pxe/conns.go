package pxe

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// connLimit caps concurrent HTTP connections per client address and in
// total. A connection over the per-client cap is closed at once; one over
// the total cap first makes room by closing a connection that is not
// serving a request (one that has not sent a whole request yet, or a
// keep-alive one between requests), taken from the address that holds the
// most connections, the longest-waiting first; it is closed itself when
// every connection is busy. A host that opens connections from many
// addresses and sends nothing thus cannot lock out a new client, and
// downloads in progress are never cut.
//
// Accept is called by http.Server's accept loop; state is its ConnState
// hook; Close of an accepted connection may come from any goroutine.
type connLimit struct {
	net.Listener
	perClient, total int
	refused          func(ip netip.Addr, why string)

	mu   sync.Mutex
	n    int
	byIP map[netip.Addr]int
	// waiting are the connections not serving a request, since when.
	waiting map[*limitedConn]time.Time
}

func newConnLimit(l net.Listener, perClient, total int, refused func(netip.Addr, string)) *connLimit {
	return &connLimit{Listener: l, perClient: perClient, total: total, refused: refused,
		byIP: map[netip.Addr]int{}, waiting: map[*limitedConn]time.Time{}}
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			ip = ap.Addr().Unmap()
		}
		if lc := l.admit(c, ip); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c in, or closes it and returns nil.
func (l *connLimit) admit(c net.Conn, ip netip.Addr) *limitedConn {
	l.mu.Lock()
	if l.byIP[ip] >= l.perClient {
		l.mu.Unlock()
		c.Close()
		l.refused(ip, "too many connections from this address")
		return nil
	}
	for l.n >= l.total {
		victim := l.victimLocked()
		if victim == nil {
			l.mu.Unlock()
			c.Close()
			l.refused(ip, "too many connections in total")
			return nil
		}
		delete(l.waiting, victim)
		l.mu.Unlock()
		victim.Close()
		l.mu.Lock()
	}
	l.n++
	l.byIP[ip]++
	l.mu.Unlock()
	return &limitedConn{Conn: c, l: l, ip: ip}
}

// victimLocked picks the connection to close for a new one: a waiting
// connection of the address with the most connections, the one waiting
// longest. nil when every connection serves a request.
func (l *connLimit) victimLocked() *limitedConn {
	var v *limitedConn
	for c, since := range l.waiting {
		if v == nil || l.byIP[c.ip] > l.byIP[v.ip] || l.byIP[c.ip] == l.byIP[v.ip] && since.Before(l.waiting[v]) {
			v = c
		}
	}
	return v
}

// state tracks which connections wait (new, or idle between requests)
// and which serve a request.
func (l *connLimit) state(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if (st == http.StateNew || st == http.StateIdle) && !lc.closed {
		l.waiting[lc] = time.Now()
	} else {
		delete(l.waiting, lc)
	}
}

type limitedConn struct {
	net.Conn
	l      *connLimit
	ip     netip.Addr
	closed bool // under l.mu
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	l := c.l
	l.mu.Lock()
	if !c.closed {
		c.closed = true
		delete(l.waiting, c)
		l.n--
		if l.byIP[c.ip]--; l.byIP[c.ip] <= 0 {
			delete(l.byIP, c.ip)
		}
	}
	l.mu.Unlock()
	return err
}

// stallGuard ends responses whose client stopped reading: every write
// must make progress within stall. The deadline moves forward with each
// write, so a long download that keeps moving is never cut (as a
// WriteTimeout would cut it).
func stallGuard(h http.Handler, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: stall}
		sw.extend() // also for the response a handler writes only on return
		h.ServeHTTP(sw, r)
	})
}

type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *stallWriter) extend() {
	if w.stall > 0 {
		w.rc.SetWriteDeadline(time.Now().Add(w.stall))
	}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// tftpLimit caps concurrent TFTP transfers per client address and in
// total. Any goroutine may call acquire and the release it returns.
type tftpLimit struct {
	perClient, total int

	mu   sync.Mutex
	n    int
	byIP map[netip.Addr]int
}

// acquire takes a transfer slot for ip; with none free it returns nil and
// why.
func (l *tftpLimit) acquire(ip netip.Addr) (release func(), why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.byIP[ip] >= l.perClient:
		return nil, "too many transfers to this address"
	case l.n >= l.total:
		return nil, "too many transfers in total"
	}
	l.n++
	l.byIP[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.n--
			if l.byIP[ip]--; l.byIP[ip] <= 0 {
				delete(l.byIP, ip)
			}
		})
	}, ""
}
