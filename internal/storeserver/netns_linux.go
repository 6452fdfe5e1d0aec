package storeserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// netns is a network namespace of its own for one server, joined to the
// machine's by a veth pair on a /30 of its own: the machine's end (host,
// veth) and the namespace's (peer, eth0), where the server listens. The
// machine reaches the server by its connected route alone, and so does a
// QEMU guest with user networking: slirp opens the guest's connections
// from the machine's namespace, so no forwarding is involved.
type netns struct {
	name       string // ip netns name: lbsmb-PID-N
	veth       string // the machine's end: lbsmbINDEX (eth0 inside)
	host, peer netip.Addr
}

// The servers' subnets: /30s of 10.254.0.0/16, away from QEMU user
// networking's 10.0.2.0/24 and the PXE tests' 192.168.77.0/24.
var nsNet = netip.MustParsePrefix("10.254.0.0/16")

const nsSubnets = 1 << (32 - 16 - 2)

// nsPrefix names the namespaces; sweepNetns removes those of ended
// processes.
const nsPrefix = "lbsmb-"

var nsCount atomic.Int32

// ipCmd runs ip (iproute2); its error carries the argv and the output.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetns creates a namespace with lo up and a veth pair, both ends up
// and addressed.
func newNetns() (*netns, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a network namespace for the server needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("ip is missing: install iproute2")
	}
	sweepNetns()
	pid, seq := os.Getpid(), int(nsCount.Add(1))
	n := &netns{name: fmt.Sprintf("%s%d-%d", nsPrefix, pid, seq)}
	if err := ipCmd("netns", "add", n.name); err != nil {
		return nil, err
	}
	// The machine's end is named after its subnet: creating it claims the
	// subnet among all processes at once (the kernel refuses a second
	// link of that name). Processes start their search at different
	// places.
	start := (pid*64 + seq) % nsSubnets
	var err error
	for i := range nsSubnets {
		idx := (start + i) % nsSubnets
		base := nsNet.Addr().As4()
		base[2], base[3] = byte(idx>>6), byte(idx<<2)
		subnet := netip.PrefixFrom(netip.AddrFrom4(base), 30)
		if addrInUse(subnet) {
			continue
		}
		n.host = subnet.Addr().Next()
		n.peer = n.host.Next()
		n.veth = "lbsmb" + strconv.Itoa(idx)
		if err = ipCmd("link", "add", n.veth, "type", "veth", "peer", "name", "eth0", "netns", n.name); err == nil {
			break
		}
		n.veth = ""
		if !strings.Contains(err.Error(), "File exists") {
			break
		}
	}
	if n.veth == "" {
		if err == nil {
			err = fmt.Errorf("every /30 of %s is in use", nsNet)
		}
		return nil, errors.Join(err, n.remove())
	}
	for _, args := range [][]string{
		{"addr", "add", n.host.String() + "/30", "dev", n.veth},
		{"link", "set", n.veth, "up"},
		{"-n", n.name, "addr", "add", n.peer.String() + "/30", "dev", "eth0"},
		{"-n", n.name, "link", "set", "eth0", "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return nil, errors.Join(err, n.remove())
		}
	}
	return n, nil
}

// addrInUse reports whether an address of this machine's namespace lies
// in p (another program's network, or an end of a veth pair not yet
// named).
func addrInUse(p netip.Prefix) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// exec is argv run inside the namespace. ip netns exec execs argv in its
// own process (no fork), so the process started is the server itself.
func (n *netns) exec(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.name}, argv...)
}

// remove deletes the veth pair (at once: the namespace itself is torn
// down by the kernel in the background) and the namespace. The servers
// in it must have ended.
func (n *netns) remove() error {
	var errs []error
	if n.veth != "" {
		errs = append(errs, ipCmd("link", "del", n.veth))
		n.veth = ""
	}
	if n.name != "" {
		errs = append(errs, ipCmd("netns", "del", n.name))
		n.name = ""
	}
	return errors.Join(errs...)
}

// sweepNetns deletes namespaces left by processes that ended without
// cleaning up (a test binary stopped by its timeout runs no cleanup;
// Pdeathsig has ended its servers): only lbsmb-PID-N whose PID no longer
// runs and that hold no process.
func sweepNetns() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		p, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", e.Name()).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			continue
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}
