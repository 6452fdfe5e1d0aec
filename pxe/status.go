package pxe

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Stage is how far a client got.
type Stage int

const (
	StageDiscover   Stage = iota // sent a DHCP discover
	StageOffered                 // we offered an address or boot file
	StageBound                   // acked: the client has its address
	StageBootloader              // fetching the boot loader over TFTP
	StageScript                  // fetched the iPXE script
	StageLoading                 // fetching the rescue kernel and initramfs
	StageBooted                  // fetched the initramfs: the rescue environment starts
	StageImage                   // reading an image
	StageDone                    // reported a successful job
	StageFailed                  // reported a failed job
)

var stageNames = [...]string{"discover", "offered", "bound", "bootloader", "script", "loading", "booted", "image", "done", "failed"}

func (s Stage) String() string {
	if s >= 0 && int(s) < len(stageNames) {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// MarshalText makes stages readable in /api/status.
func (s Stage) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ClientStatus is what the server knows about one client.
type ClientStatus struct {
	MAC      string    `json:"mac"`
	IP       string    `json:"ip,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
	Stage    Stage     `json:"stage"`
	Event    string    `json:"event"`
	Result   string    `json:"result,omitempty"`
	Updated  time.Time `json:"updated"`
}

// clients tracks ClientStatus by MAC address, and which address is whose.
type clients struct {
	mu    sync.Mutex
	byMAC map[string]*ClientStatus
	byIP  map[netip.Addr]string
}

func newClients() *clients {
	return &clients{byMAC: map[string]*ClientStatus{}, byIP: map[netip.Addr]string{}}
}

// update records an event; zero values leave fields as they were. A stage
// only moves forward, except that a new DHCP discover starts over.
func (c *clients) update(mac string, ip netip.Addr, fw string, st Stage, event string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byMAC[mac]
	if s == nil {
		s = &ClientStatus{MAC: mac}
		c.byMAC[mac] = s
	}
	if ip.IsValid() && !ip.IsUnspecified() {
		s.IP = ip.String()
		c.byIP[ip] = mac
	}
	if fw != "" {
		s.Firmware = fw
	}
	if st >= s.Stage || st == StageDiscover && s.Stage >= StageBooted {
		s.Stage = st
	}
	s.Event = event
	s.Updated = time.Now()
}

func (c *clients) report(mac, line string, st Stage) {
	c.update(mac, netip.Addr{}, "", st, line)
	c.mu.Lock()
	c.byMAC[mac].Result = line
	c.mu.Unlock()
}

// macOf returns the MAC address last seen with ip.
func (c *clients) macOf(ip netip.Addr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byIP[ip.Unmap()]
}

func (c *clients) list() []ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ClientStatus, 0, len(c.byMAC))
	for _, s := range c.byMAC {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b ClientStatus) int { return strings.Compare(a.MAC, b.MAC) })
	return out
}
