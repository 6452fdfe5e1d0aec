package pxe

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultIPXEDir is where Debian's ipxe package puts undionly.kpxe,
// ipxe.efi and snponly.efi.
const DefaultIPXEDir = "/usr/lib/ipxe"

// Config says what Serve serves and where. Only Interface and Bundle are
// required; the rest have defaults derived from the interface's address.
type Config struct {
	// Interface is the network interface to serve on (DHCP listens only
	// there).
	Interface string
	// Addr is the server's IPv4 address on Interface; zero means the
	// interface's first IPv4 address.
	Addr netip.Addr
	// Netns is a network namespace to serve in (Linux only), such as
	// /run/netns/NAME. Empty means the namespace of the calling thread.
	Netns string
	// Proxy answers only PXE clients and hands out no addresses, for
	// networks whose router already runs DHCP.
	Proxy bool
	// Bundle is the rescue bundle directory (vmlinuz, initramfs,
	// bundle.json) that make rescue writes to out/rescue.
	Bundle string
	// IPXEDir holds the iPXE boot loaders; default DefaultIPXEDir.
	IPXEDir string
	// UEFILoader is what UEFI clients boot first: by default shim and
	// Debian's signed GRUB when the bundle holds them (Secure Boot
	// clients need them), else iPXE. See UEFILoader.
	UEFILoader UEFILoader
	// Images, if set, is served read-only under http://SERVER/images/.
	Images string
	// Rules decide per MAC address what a client boots; nil boots every
	// client to the rescue menu.
	Rules *Rules

	// Full mode only. Pool defaults to the upper half of the interface's
	// subnet (without the server's own address); Router to none; DNS to
	// none; LeaseTime to an hour; LeaseFile to
	// /var/lib/lifeboat/leases-INTERFACE.json, or .lifeboat-leases-INTERFACE.json
	// in Images when /var/lib/lifeboat cannot be created.
	Pool      Range
	Router    netip.Addr
	DNS       []netip.Addr
	LeaseTime time.Duration
	LeaseFile string

	// HTTPPort is the HTTP port on Addr; default 80.
	HTTPPort int
	// TFTPAddr is the TFTP listening address; default Addr:69.
	TFTPAddr string

	// Limits against clients that misbehave or flood; zero means the
	// default in parentheses. The defaults suit a workshop LAN; tests
	// shorten them.
	//
	// MaxClients bounds the status table (1024): beyond it the client
	// updated least recently, and not in the middle of a job, is dropped.
	MaxClients int
	// MaxOffers bounds addresses offered but not yet acked (128, and at
	// most half the pool), so that a flood of discovers cannot take the
	// whole pool. Past it a new client takes over the oldest offer; a
	// room of machines switched on at once stays well below it.
	MaxOffers int
	// DeclineHold is how long an address a client declined (found in use
	// on the wire) stays out of the pool (10 minutes).
	DeclineHold time.Duration
	// MaxConns and MaxConnsPerClient bound concurrent HTTP connections in
	// total (1024, less when the process's file limit is low) and from
	// one client address (16).
	MaxConns, MaxConnsPerClient int
	// MaxTFTP and MaxTFTPPerClient bound concurrent TFTP transfers in
	// total (128, less when the file limit is low) and to one client
	// address (4).
	MaxTFTP, MaxTFTPPerClient int
	// HeaderTimeout bounds reading a request's header (10 s), BodyTimeout
	// reading a job report (10 s), IdleTimeout a keep-alive connection
	// with no request (30 s), and StallTimeout a response the client
	// stopped reading (60 s); a download that keeps moving is never cut.
	HeaderTimeout, BodyTimeout, IdleTimeout, StallTimeout time.Duration

	// Log gets one line per client step; nil discards.
	Log *slog.Logger
}

// Range is an inclusive range of IPv4 addresses.
type Range struct{ First, Last netip.Addr }

// ParseRange reads "192.168.1.100-192.168.1.200" or a prefix such as
// "192.168.1.128/25" (whose network and broadcast addresses are left out).
func ParseRange(s string) (Range, error) {
	if a, b, ok := strings.Cut(s, "-"); ok {
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() || last.Less(first) {
			return Range{}, fmt.Errorf("address range %q: write FIRST-LAST with IPv4 addresses, e.g. 192.168.1.100-192.168.1.200", s)
		}
		return Range{first, last}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return Range{}, fmt.Errorf("address range %q: write FIRST-LAST or an IPv4 prefix of at most /30, e.g. 192.168.1.128/25", s)
	}
	p = p.Masked()
	return Range{p.Addr().Next(), lastAddr(p).Prev()}, nil
}

func (r Range) String() string {
	if !r.First.IsValid() {
		return ""
	}
	return r.First.String() + "-" + r.Last.String()
}

// Contains says whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return r.First.IsValid() && a.Is4() && !a.Less(r.First) && !r.Last.Less(a)
}

// lastAddr is p's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// defaultPool is the upper half of p without its broadcast address.
func defaultPool(p netip.Prefix) (Range, error) {
	if p.Bits() > 29 {
		return Range{}, fmt.Errorf("subnet %s is too small for a default address pool; give one with --pool FIRST-LAST", p)
	}
	p = p.Masked()
	upper := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	// The second half starts right after the first half's broadcast.
	first := lastAddr(upper).Next()
	return Range{first, lastAddr(p).Prev()}, nil
}

// interfaceAddr finds the interface's IPv4 prefix that holds want (or its
// first IPv4 prefix when want is zero).
func interfaceAddr(name string, want netip.Addr) (netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("interface %s: %w; list interfaces with ip link", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		ones, _ := n.Mask.Size()
		if !want.IsValid() || want == ip {
			return netip.PrefixFrom(ip, ones), nil
		}
	}
	if want.IsValid() {
		return netip.Prefix{}, fmt.Errorf("interface %s does not have the address %s; add it (ip addr add %s/24 dev %s) or leave the address out", name, want, want, name)
	}
	return netip.Prefix{}, fmt.Errorf("interface %s has no IPv4 address; give it one first, e.g. ip addr add 192.168.77.1/24 dev %s", name, name)
}

// withDefaults fills in what c leaves out, given the interface's prefix.
func (c Config) withDefaults(p netip.Prefix) (Config, error) {
	if c.Interface == "" {
		return c, errors.New("no interface given: name the network interface the clients are on, e.g. --interface eth1")
	}
	if c.Bundle == "" {
		return c, errors.New("no rescue bundle given: build it with make rescue and pass --bundle out/rescue")
	}
	c.Addr = p.Addr()
	if c.IPXEDir == "" {
		c.IPXEDir = DefaultIPXEDir
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.TFTPAddr == "" {
		c.TFTPAddr = netip.AddrPortFrom(c.Addr, 69).String()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Proxy {
		return c, nil
	}
	if c.LeaseTime == 0 {
		c.LeaseTime = time.Hour
	}
	if c.LeaseTime < time.Minute {
		return c, fmt.Errorf("lease time %v is too short; use at least a minute", c.LeaseTime)
	}
	if !c.Pool.First.IsValid() {
		r, err := defaultPool(p)
		if err != nil {
			return c, err
		}
		c.Pool = r
	}
	sub := p.Masked()
	if !sub.Contains(c.Pool.First) || !sub.Contains(c.Pool.Last) {
		return c, fmt.Errorf("address pool %s is not inside %s's subnet %s; choose addresses in %s", c.Pool, c.Interface, sub, sub)
	}
	if c.LeaseFile == "" {
		c.LeaseFile = defaultLeaseFile(c.Interface, c.Images)
	}
	return c, nil
}

func defaultLeaseFile(iface, images string) string {
	const dir = "/var/lib/lifeboat"
	if err := os.MkdirAll(dir, 0o755); err == nil || images == "" || strings.Contains(images, "://") {
		return filepath.Join(dir, "leases-"+iface+".json")
	}
	return filepath.Join(images, ".lifeboat-leases-"+iface+".json")
}

// withLimits fills in the limits c leaves out. With a file limit
// (nofile, 0 when unknown) the connection and transfer caps are kept well
// under it: each HTTP connection or TFTP transfer holds two files (the
// socket and the file it sends), and some room stays for the listening
// sockets, the lease file and the like.
func (c Config) withLimits(nofile uint64) Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxClients, DefaultMaxClients)
	def(&c.MaxOffers, 128)
	defDur(&c.DeclineHold, 10*time.Minute)
	defDur(&c.HeaderTimeout, 10*time.Second)
	defDur(&c.BodyTimeout, 10*time.Second)
	defDur(&c.IdleTimeout, 30*time.Second)
	defDur(&c.StallTimeout, time.Minute)
	def(&c.MaxConns, 1024)
	def(&c.MaxTFTP, 128)
	if nofile > 0 {
		room := max(int(min(nofile, 1<<20))-32, 16)
		// 2/3 of the room for HTTP, 1/3 for TFTP, two files each.
		c.MaxConns, c.MaxTFTP = min(c.MaxConns, max(room/3, 4)), min(c.MaxTFTP, max(room/6, 2))
	}
	def(&c.MaxConnsPerClient, 16)
	def(&c.MaxTFTPPerClient, 4)
	// One client never takes all: half the total at most.
	c.MaxConnsPerClient = max(min(c.MaxConnsPerClient, c.MaxConns/2), 1)
	c.MaxTFTPPerClient = max(min(c.MaxTFTPPerClient, c.MaxTFTP/2), 1)
	return c
}

// hostPort is how clients reach the HTTP server: the address, with the
// port only when it is not 80.
func (c Config) hostPort() string {
	if c.HTTPPort == 80 {
		return c.Addr.String()
	}
	return netip.AddrPortFrom(c.Addr, uint16(c.HTTPPort)).String()
}
