package pxe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

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
