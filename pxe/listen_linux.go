package pxe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// listenDHCP opens a UDP socket on 0.0.0.0:port bound to iface, so it gets
// the clients' broadcasts there and its own broadcasts leave there.
//
// Unlike server4.NewIPv4UDPConn it sets neither SO_REUSEADDR nor
// SO_REUSEPORT: with them a second DHCP server on the same interface
// binds silently and the two answer alike. Servers bound to different
// interfaces (SO_BINDTODEVICE before bind) do not conflict.
func listenDHCP(iface string, port int) (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("UDP socket for DHCP: %w", err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("udp4:%d", port))
	defer f.Close() // net.FilePacketConn dups it
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, fmt.Errorf("UDP port %d: SO_BROADCAST: %w", port, err)
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		return nil, portError("UDP", port, iface, "DHCP", "", &os.SyscallError{Syscall: "SO_BINDTODEVICE", Err: err})
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return nil, portError("UDP", port, iface, "DHCP", "dnsmasq, isc-dhcp-server, or a router's DHCP", &os.SyscallError{Syscall: "bind", Err: err})
	}
	return net.FilePacketConn(f)
}

func isAddrInUse(err error) bool { return errors.Is(err, unix.EADDRINUSE) }

// netns is a network namespace to run the sockets' thread in; a zero fd
// means stay where we are.
type netns struct{ fd int }

// openNetns opens path, or when path is empty the calling thread's
// namespace if it differs from the process's (a caller that did
// LockOSThread and Setns).
func openNetns(path string) (*netns, error) {
	if path == "" {
		var self, thread unix.Stat_t
		if unix.Stat("/proc/self/ns/net", &self) != nil || unix.Stat("/proc/thread-self/ns/net", &thread) != nil {
			return &netns{fd: -1}, nil
		}
		if self.Ino == thread.Ino && self.Dev == thread.Dev {
			return &netns{fd: -1}, nil
		}
		path = "/proc/thread-self/ns/net"
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w; create it with ip netns add", path, err)
	}
	return &netns{fd: fd}, nil
}

// enter moves the calling goroutine's thread into the namespace for good:
// the thread stays locked and ends with the goroutine.
func (n *netns) enter() error {
	if n.fd < 0 {
		return nil
	}
	runtime.LockOSThread()
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering the network namespace: %w (needs root)", err)
	}
	return nil
}

func (n *netns) close() {
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
}

// neighbours reads the kernel's neighbour (ARP) table of one interface,
// through a netlink socket opened in the server's network namespace. Any
// goroutine may call lookup.
type neighbours struct {
	mu      sync.Mutex
	h       *netlink.Handle
	ifindex int
}

// openNeighbours must run on the thread that is in the server's namespace.
func openNeighbours(iface string) (*neighbours, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket for the neighbour table of %s: %w", iface, err)
	}
	return &neighbours{h: h, ifindex: ifi.Index}, nil
}

// lookup returns the MAC address the kernel last saw using ip on the
// interface, or nil when it has none.
func (n *neighbours) lookup(ip netip.Addr) (net.HardwareAddr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	list, err := n.h.NeighList(n.ifindex, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("neighbour table: %w", err)
	}
	for _, e := range list {
		a, ok := netip.AddrFromSlice(e.IP.To4())
		if !ok || a != ip || len(e.HardwareAddr) != 6 || e.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED|netlink.NUD_NOARP) != 0 {
			continue
		}
		return e.HardwareAddr, nil
	}
	return nil, nil
}

func (n *neighbours) close() {
	if n != nil {
		n.h.Close()
	}
}

// fileLimit raises the soft limit on open files to the hard limit (Go
// does that at start too, but a parent may have lowered it since) and
// returns it.
func fileLimit() uint64 {
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	if l.Cur < l.Max {
		up := unix.Rlimit{Cur: l.Max, Max: l.Max}
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &up) == nil {
			l.Cur = l.Max
		}
	}
	return l.Cur
}
