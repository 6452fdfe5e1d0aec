//go:build !linux

package pxe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// listenDHCP needs SO_BINDTODEVICE to receive broadcasts on one interface
// and send them out of it; only the Linux build has it.
func listenDHCP(iface string, port int) (net.PacketConn, error) {
	return nil, fmt.Errorf("DHCP on %s port %d: the PXE server runs on Linux only; run lifeboat pxe serve on a Linux machine (or from the rescue environment): %w", iface, port, errors.ErrUnsupported)
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

type netns struct{}

func openNetns(path string) (*netns, error) {
	if path != "" {
		return nil, fmt.Errorf("network namespace %s: namespaces exist only on Linux: %w", path, errors.ErrUnsupported)
	}
	return &netns{}, nil
}

func (n *netns) enter() error { return nil }
func (n *netns) close()       {}

// neighbours would read the kernel's neighbour table; only the Linux
// build has one to read.
type neighbours struct{}

func openNeighbours(iface string) (*neighbours, error) {
	return nil, fmt.Errorf("neighbour table of %s: only the Linux build reads it: %w", iface, errors.ErrUnsupported)
}

func (n *neighbours) lookup(ip netip.Addr) (net.HardwareAddr, error) {
	return nil, errors.ErrUnsupported
}

func (n *neighbours) close() {}

// fileLimit is unknown here (0): the limits keep their defaults.
func fileLimit() uint64 { return 0 }
