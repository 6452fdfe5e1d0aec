package pxe

import (
	"container/list"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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

// UnmarshalText reads a stage as /api/status writes it.
func (s *Stage) UnmarshalText(b []byte) error {
	for i, n := range stageNames {
		if n == string(b) {
			*s = Stage(i)
			return nil
		}
	}
	return fmt.Errorf("unknown stage %q", b)
}

// ClientStatus is what the server knows about one client.
type ClientStatus struct {
	MAC      string `json:"mac"`
	IP       string `json:"ip,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// Loader is what the client was told to boot first: "ipxe" or
	// "shim+grub" (the signed chain that Secure Boot clients need).
	Loader string `json:"loader,omitempty"`
	// SecureBoot is the client's Secure Boot state as its job report
	// says (secureboot= of LIFEBOAT-RESULT): "1", "0", or "-" for a
	// machine that booted without UEFI; "" before a report.
	SecureBoot string    `json:"secureboot,omitempty"`
	Stage      Stage     `json:"stage"`
	Event      string    `json:"event"`
	Result     string    `json:"result,omitempty"`
	Updated    time.Time `json:"updated"`
}

// client is one entry of the status table, with what only the server may
// see: the current boot's report token and where the client said it was.
type client struct {
	st    ClientStatus
	token string // report token of the current boot; "" when none
	// keysTaken says the current boot fetched its rule's credentials.
	keysTaken bool
	pxeIP     netip.Addr // ciaddr of its last port-4011 request
	el        *list.Element
}

// midJob says whether c got a job (and token) and has not reported yet:
// such entries are the last to be dropped when the table is full.
func (c *client) midJob() bool { return c.token != "" && c.st.Stage < StageDone }

// DefaultMaxClients bounds the status table unless Config.MaxClients says
// otherwise.
const DefaultMaxClients = 1024

// clients tracks ClientStatus by MAC address, and which address is whose.
// It holds at most max entries: a new client pushes out the one updated
// least recently that is not in the middle of a job (or, if all are, the
// one updated least recently).
type clients struct {
	mu    sync.Mutex
	max   int
	byMAC map[string]*client
	byIP  map[netip.Addr]string
	lru   *list.List // of *client, least recently updated first
}

func newClients(max int) *clients {
	if max <= 0 {
		max = DefaultMaxClients
	}
	return &clients{max: max, byMAC: map[string]*client{}, byIP: map[netip.Addr]string{}, lru: list.New()}
}

// getLocked returns mac's entry, making it (and room for it) if needed.
func (c *clients) getLocked(mac string) *client {
	if e := c.byMAC[mac]; e != nil {
		return e
	}
	for len(c.byMAC) >= c.max {
		victim := c.lru.Front()
		for el := victim; el != nil; el = el.Next() {
			if !el.Value.(*client).midJob() {
				victim = el
				break
			}
		}
		c.dropLocked(victim.Value.(*client))
	}
	e := &client{st: ClientStatus{MAC: mac}}
	e.el = c.lru.PushBack(e)
	c.byMAC[mac] = e
	return e
}

func (c *clients) dropLocked(e *client) {
	c.lru.Remove(e.el)
	delete(c.byMAC, e.st.MAC)
	if ip, err := netip.ParseAddr(e.st.IP); err == nil && c.byIP[ip] == e.st.MAC {
		delete(c.byIP, ip)
	}
}

// update records an event; zero values leave fields as they were. A stage
// only moves forward, except that a new DHCP discover starts over.
func (c *clients) update(mac string, ip netip.Addr, fw string, st Stage, event string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updateLocked(mac, ip, fw, st, event)
}

func (c *clients) updateLocked(mac string, ip netip.Addr, fw string, st Stage, event string) *client {
	e := c.getLocked(mac)
	s := &e.st
	if ip.IsValid() && !ip.IsUnspecified() {
		ip = ip.Unmap()
		if old, err := netip.ParseAddr(s.IP); err == nil && old != ip && c.byIP[old] == mac {
			delete(c.byIP, old)
		}
		s.IP = ip.String()
		c.byIP[ip] = mac
	}
	if fw != "" {
		s.Firmware = fw
	}
	if st >= s.Stage || st == StageDiscover && s.Stage >= StageBooted {
		s.Stage = st
	}
	s.Event = clean(event, maxText)
	s.Updated = time.Now()
	c.lru.MoveToBack(e.el)
	return e
}

// newToken is a report token: 128 random bits in hex. crypto/rand on the
// server (the host, whose kernel RNG is long ready) does not block.
func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// boot records that mac fetched its script (what, for the event: the iPXE
// script or GRUB's configuration) from ip; with a job, token is the new
// boot's report token and replaces the previous boot's.
func (c *clients) boot(mac string, ip netip.Addr, token, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.updateLocked(mac, ip, "", StageScript, what)
	e.token, e.keysTaken = token, false
}

// setLoader records what mac was told to boot first; with ifUnset, only
// when nothing was recorded yet.
func (c *clients) setLoader(mac, loader string, ifUnset bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.getLocked(mac)
	if !ifUnset || e.st.Loader == "" {
		e.st.Loader = loader
	}
}

// sawPXE records the address a port-4011 request of mac named (ciaddr).
func (c *clients) sawPXE(mac string, ip netip.Addr, fw string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.updateLocked(mac, ip, fw, StageOffered, "pxe request on 4011")
	if ip.IsValid() && !ip.IsUnspecified() {
		e.pxeIP = ip.Unmap()
	}
}

// pxeIP is the address mac's last port-4011 request named.
func (c *clients) pxeIP(mac string) netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byMAC[mac]; e != nil {
		return e.pxeIP
	}
	return netip.Addr{}
}

// validToken says whether token is mac's current boot's.
func (c *clients) validToken(mac, token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byMAC[mac]
	return e != nil && e.token != "" && subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) == 1
}

// takeCredentials says whether token is mac's current boot's and its
// credentials were not fetched yet, and marks them fetched.
func (c *clients) takeCredentials(mac, token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byMAC[mac]
	if e == nil || e.token == "" || e.keysTaken || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return false
	}
	e.keysTaken = true
	return true
}

// report stores a job's result line if token is mac's current boot's.
func (c *clients) report(mac, token string, ip netip.Addr, line string, st Stage) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byMAC[mac]
	if e == nil || e.token == "" || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return false
	}
	c.updateLocked(mac, ip, "", st, line)
	e.st.Result = clean(line, maxText)
	e.st.SecureBoot = reportField(e.st.Result, "secureboot")
	return true
}

// reportField is the value of key= in a LIFEBOAT-RESULT line, when it is
// one of the words that key may have ("" otherwise).
func reportField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			switch v {
			case "0", "1", "-":
				return v
			}
			return ""
		}
	}
	return ""
}

// macOf returns the MAC address last seen with ip.
func (c *clients) macOf(ip netip.Addr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byIP[ip.Unmap()]
}

// list returns a copy of the table sorted by MAC address.
func (c *clients) list() []ClientStatus {
	c.mu.Lock()
	out := make([]ClientStatus, 0, len(c.byMAC))
	for _, e := range c.byMAC {
		out = append(out, e.st)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientStatus) int { return strings.Compare(a.MAC, b.MAC) })
	return out
}

// StatusTable formats clients as a table for a terminal, one line each.
// Its fields are cleaned again here, so that even a ClientStatus that did
// not come from a Server cannot move the cursor or retitle the terminal.
func StatusTable(cs []ClientStatus, now time.Time) string {
	var b strings.Builder
	if len(cs) > 0 {
		fmt.Fprintf(&b, "%-17s  %-15s  %-10s  %-9s  %-9s  %-2s  %s\n", "MAC", "IP", "STAGE", "FIRMWARE", "LOADER", "SB", "LAST EVENT")
	}
	for _, c := range cs {
		ev := clean(c.Event, maxText)
		if utf8.RuneCountInString(ev) > 60 {
			ev = string([]rune(ev)[:57]) + "..."
		}
		fmt.Fprintf(&b, "%-17s  %-15s  %-10s  %-9s  %-9s  %-2s  %s (%s ago)\n", clean(c.MAC, 17), clean(c.IP, 15), c.Stage, clean(c.Firmware, 16),
			clean(c.Loader, 16), clean(c.SecureBoot, 2), ev, now.Sub(c.Updated).Round(time.Second))
	}
	return b.String()
}
