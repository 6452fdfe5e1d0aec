package pxe

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// Connections that never send a request, opened from many addresses (each
// under the per-client cap) until the total cap is reached, must not lock
// out a new client: at the total cap a waiting connection of the address
// with the most connections makes room. A busy download is never the one
// closed.
func TestIdleFromManyAddressesDoNotLockOut(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const perClient, total = 4, 12
	cl := newConnLimit(ln, perClient, total, func(netip.Addr, string) {})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("started\n"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("done\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	hs := &http.Server{Handler: mux, ConnState: cl.state}
	go hs.Serve(cl)
	defer hs.Close()
	defer close(release)
	port := ln.Addr().(*net.TCPAddr).Port

	dial := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A download in progress from 127.0.0.2.
	busy := dial("127.0.0.2")
	defer busy.Close()
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 256)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := busy.Read(buf); err != nil || n == 0 {
		t.Fatalf("download did not start: %v", err)
	}
	// Silent connections from three more addresses fill the total cap.
	var idle []net.Conn
	for i := range total - 1 {
		idle = append(idle, dial(fmt.Sprintf("127.0.0.%d", 10+i/perClient)))
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	// A new client is served.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.99")}}).DialContext}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("a new client was locked out by %d silent connections from %d addresses: %v", len(idle), (total-1+perClient-1)/perClient, err)
	}
	resp.Body.Close()
	// The download is still open.
	release <- struct{}{}
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := busy.Read(buf); err != nil || n == 0 {
		t.Errorf("the download in progress was closed to make room: %v", err)
	}
}
