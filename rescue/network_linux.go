//go:build linux

package rescue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// networkWait is how long a job whose image is on the network waits for
// an address before it fails and says why.
const networkWait = 90 * time.Second

// netState is what the DHCP clients did on each link, so that a job that
// finds no network can say what actually happened: no card, no link, no
// request sent, or no reply from a DHCP server.
type netState struct {
	up   chan struct{} // closed when a link got an address
	once sync.Once
	mu   sync.Mutex
	// links by name, in the order they were found.
	links []*linkState
}

type linkState struct {
	name     string
	carrier  bool
	sent     int   // DHCP requests that left the socket
	replies  int   // DHCP packets that came back on port 68
	err      error // the last error of a request or of the set-up
	addr     string
	attempts int
	running  bool // a DHCP client runs on it
}

func newNetState() netState { return netState{up: make(chan struct{})} }

// claim returns the state of the link called name, and false when a
// DHCP client already runs there.
func (n *netState) claim(name string) (*linkState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		if l.name == name {
			if l.running {
				return l, false
			}
			l.running = true
			return l, true
		}
	}
	l := &linkState{name: name, running: true}
	n.links = append(n.links, l)
	return l, true
}

// update changes a link's state under the lock.
func (n *netState) update(l *linkState, f func(l *linkState)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(l)
}

// problem says, for every link, why it has no address.
func (n *netState) problem() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.links) == 0 {
		return "no network card was found (its driver may be missing: see lsmod and dmesg at the lifeboat> prompt); plug in a supported wired card"
	}
	var out []string
	for _, l := range n.links {
		var s string
		switch {
		case l.addr != "":
			s = fmt.Sprintf("%s has %s", l.name, l.addr)
		case !l.carrier:
			s = fmt.Sprintf("%s has no link (no cable, or the switch port is down); plug in the cable", l.name)
		case l.sent == 0:
			s = fmt.Sprintf("%s: no DHCP request could be sent (%v)", l.name, l.err)
		case l.replies == 0:
			s = fmt.Sprintf("%s: %d DHCP requests sent, no reply from a DHCP server; check that one serves this network", l.name, l.sent)
		default:
			s = fmt.Sprintf("%s: %d DHCP requests sent and %d replies, but no lease (%v); check the DHCP server's log", l.name, l.sent, l.replies, l.err)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// startNetwork asks for DHCP on every wired link in the background, also
// on links that appear later (a NIC driver still probing, a USB adapter);
// boot never waits for it; it stops looking for new links after 30 s.
//
// Nothing here may wait for the kernel's random number generator: without
// RDRAND or an entropy device (QEMU's TCG, older PCs) it can take minutes
// to be ready, and the DHCP library's transaction IDs come from u-root's
// uio/rand, which by default polls getrandom until then. UROOT_NOHWRNG
// makes it read /dev/urandom, which never blocks; a transaction ID only has
// to differ from other clients', not be secret.
func (e *env) startNetwork(ctx context.Context) {
	os.Setenv("UROOT_NOHWRNG", "1")
	go e.entropy()
	go func() {
		handled := map[string]bool{}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			links, err := netlink.LinkList()
			if err == nil {
				for _, l := range links {
					a := l.Attrs()
					if a.Flags&net.FlagLoopback != 0 || l.Type() != "device" || handled[a.Name] {
						continue
					}
					handled[a.Name] = true
					go e.dhcp(ctx, l)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
}

// entropy waits, once, in a blocking getrandom: in Linux 5.18 and later
// that wait is what runs the jitter entropy collector, so the kernel RNG
// becomes ready in seconds even without RDRAND or virtio-rng (polling with
// GRND_NONBLOCK never starts it). Whatever needs crypto/rand later (new
// partition GUIDs on restore) then does not stall.
func (e *env) entropy() {
	t := time.Now()
	var b [1]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err == nil {
		return
	}
	for {
		_, err := unix.Getrandom(b[:], 0)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			e.say("entropy: getrandom: %v", err)
			return
		}
	}
	if d := time.Since(t); d > time.Second {
		e.say("entropy: the kernel's random number generator became ready after %.1f s", d.Seconds())
	}
}

// dhcp brings a link up and asks for an IPv4 lease until it gets one,
// then configures the address, the routes (option 121, else the router)
// and DNS with u-root's dhclient.
func (e *env) dhcp(ctx context.Context, l netlink.Link) {
	name := l.Attrs().Name
	st, ok := e.net.claim(name)
	if !ok {
		return // already asking
	}
	defer e.net.update(st, func(st *linkState) { st.running = false })
	if err := netlink.LinkSetUp(l); err != nil {
		e.net.update(st, func(st *linkState) { st.err = err })
		e.say("network: %s: cannot bring the link up: %v", name, err)
		return
	}
	wait := time.Second
	for ctx.Err() == nil {
		if !carrier(name) {
			e.net.update(st, func(st *linkState) { st.carrier = false })
			time.Sleep(500 * time.Millisecond)
			continue
		}
		var attempt int
		e.net.update(st, func(st *linkState) { st.carrier = true; st.attempts++; attempt = st.attempts })
		ack, err := e.request(ctx, l, st)
		if err == nil {
			if err = e.configure(l, ack, st); err == nil {
				return
			}
		}
		e.net.update(st, func(st *linkState) { st.err = err })
		if attempt == 3 {
			e.say("network: %s: no lease yet (%s); still trying", name, e.net.problem())
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 8*time.Second)
	}
}

// carrier says whether the link has a carrier (a cable to a live port).
func carrier(name string) bool {
	b, err := os.ReadFile("/sys/class/net/" + name + "/carrier")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// request runs one DHCP exchange (discover, offer, request, ack).
func (e *env) request(ctx context.Context, l netlink.Link, st *linkState) (*dhcpv4.DHCPv4, error) {
	conn, err := dhcpConn(l.Attrs().Name)
	if err != nil {
		return nil, err
	}
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(3 * time.Second), nclient4.WithRetry(2)}
	if e.debug {
		opts = append(opts, nclient4.WithDebugLogger())
	}
	c, err := nclient4.NewWithConn(&countingConn{PacketConn: conn, n: &e.net, st: st}, l.Attrs().HardwareAddr, opts...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lease, err := c.Request(rctx, dhcpv4.WithBroadcast(true),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionClasslessStaticRoute, dhcpv4.OptionDNSDomainSearchList))
	if err != nil {
		return nil, err
	}
	return lease.ACK, nil
}

// configure applies a lease. An address that is set counts as up even
// when a route or resolv.conf failed (images on the local subnet still
// work); the failure is said on the console.
func (e *env) configure(l netlink.Link, ack *dhcpv4.DHCPv4, st *linkState) error {
	name := l.Attrs().Name
	addr := dhclient.NewPacket4(l, ack).Lease()
	cerr := dhclient.Configure4(l, ack)
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	set := false
	for _, a := range have {
		if a.IP.Equal(addr.IP) {
			set = true
		}
	}
	if err != nil {
		return fmt.Errorf("setting up %s from the lease: listing its addresses: %w", name, err)
	}
	if !set {
		if cerr == nil {
			cerr = fmt.Errorf("address %s is not on the link after set-up", addr)
		}
		return fmt.Errorf("setting up %s from the lease: %w", name, cerr)
	}
	if cerr != nil {
		e.say("network: %s: %v (the address is set; images on other networks may be unreachable)", name, cerr)
	}
	e.net.update(st, func(st *linkState) { st.addr = addr.String() })
	e.say("network: %s is up: %s from %s%s", name, addr, ack.ServerIdentifier(), routesNote(ack))
	e.net.once.Do(func() { close(e.net.up) })
	return nil
}

// routesNote names the routes and DNS servers a lease brought.
func routesNote(ack *dhcpv4.DHCPv4) string {
	var b strings.Builder
	if rs := ack.ClasslessStaticRoute(); len(rs) > 0 {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s via %s", r.Dest, r.Router))
		}
		fmt.Fprintf(&b, ", routes %s", strings.Join(s, ", "))
	} else if gw := ack.Router(); len(gw) > 0 {
		fmt.Fprintf(&b, ", router %s", gw[0])
	}
	if dns := ack.DNS(); len(dns) > 0 {
		fmt.Fprintf(&b, ", DNS %v", dns)
	}
	return b.String()
}

// countingConn counts what a DHCP client sends and receives, for
// netState.problem.
type countingConn struct {
	net.PacketConn
	n  *netState
	st *linkState
}

func (c *countingConn) WriteTo(p []byte, a net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, a)
	c.n.update(c.st, func(st *linkState) {
		if err == nil {
			st.sent++
		} else {
			st.err = err
		}
	})
	return n, err
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.n.update(c.st, func(st *linkState) { st.replies++ })
	}
	return n, a, err
}

// dhcpConn is a UDP socket on port 68 tied to one interface that may send
// broadcasts before it has an address: a plain socket works where a raw
// packet socket did not (sends on it never completed under QEMU's TCG).
// Replies come as broadcasts because requests set the broadcast flag.
func dhcpConn(ifname string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.BindToDevice(int(fd), ifname)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
}
