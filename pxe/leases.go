package pxe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Lease is one address handed to one MAC address, as kept in the lease file.
type Lease struct {
	MAC     string     `json:"mac"`
	IP      netip.Addr `json:"ip"`
	Expires time.Time  `json:"expires"`
	// Offered is set while the address is only offered, not acked.
	Offered bool `json:"offered,omitempty"`
}

// offerHold is how long an offered address stays reserved for its client.
const offerHold = time.Minute

// errPoolFull says every address of the pool is in use.
var errPoolFull = errors.New("the address pool is full; give a larger --pool or a shorter --lease-time")

// leases hands out addresses from a pool and keeps them in a file, so a
// client keeps its address across restarts of the server: a MAC address
// gets back the address it had even after its lease expired, unless the
// pool ran out and gave it to someone else.
type leases struct {
	mu      sync.Mutex
	file    string
	pool    Range
	exclude map[netip.Addr]bool
	byMAC   map[string]*Lease
	now     func() time.Time
}

func openLeases(file string, pool Range, exclude ...netip.Addr) (*leases, error) {
	l := &leases{file: file, pool: pool, exclude: map[netip.Addr]bool{}, byMAC: map[string]*Lease{}, now: time.Now}
	for _, a := range exclude {
		l.exclude[a] = true
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return nil, fmt.Errorf("lease file %s: %w; choose another place with --lease-file", file, err)
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("lease file %s: %w; choose another place with --lease-file", file, err)
	}
	var ls []Lease
	if len(b) > 0 {
		if err := json.Unmarshal(b, &ls); err != nil {
			return nil, fmt.Errorf("lease file %s is damaged: %v; delete it to start with no leases", file, err)
		}
	}
	for _, x := range ls {
		if x.Offered || !pool.Contains(x.IP) {
			continue
		}
		x := x
		l.byMAC[x.MAC] = &x
	}
	return l, nil
}

// holder returns who holds ip now (an unexpired lease or offer).
func (l *leases) holder(ip netip.Addr, now time.Time) string {
	for mac, x := range l.byMAC {
		if x.IP == ip && now.Before(x.Expires) {
			return mac
		}
	}
	return ""
}

func (l *leases) usable(ip netip.Addr) bool {
	return l.pool.Contains(ip) && !l.exclude[ip]
}

// offer picks an address for mac: the one it had, else the one it asks
// for, else a never used one, else the longest-expired one. The address is
// held for mac for a minute.
func (l *leases) offer(mac string, requested netip.Addr) (netip.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if x := l.byMAC[mac]; x != nil && l.usable(x.IP) {
		if h := l.holder(x.IP, now); h == "" || h == mac {
			if !x.Expires.After(now) {
				x.Expires = now.Add(offerHold)
			}
			return x.IP, nil
		}
	}
	pick := netip.Addr{}
	if requested.IsValid() && l.usable(requested) && l.holder(requested, now) == "" && l.owner(requested) == "" {
		pick = requested
	}
	if !pick.IsValid() {
		used := map[netip.Addr]bool{}
		for _, x := range l.byMAC {
			used[x.IP] = true
		}
		for a := l.pool.First; l.pool.Contains(a); a = a.Next() {
			if l.usable(a) && !used[a] {
				pick = a
				break
			}
		}
	}
	if !pick.IsValid() {
		// Reclaim the address whose lease expired longest ago.
		var old *Lease
		for _, x := range l.byMAC {
			if !x.Expires.After(now) && l.usable(x.IP) && (old == nil || x.Expires.Before(old.Expires)) {
				old = x
			}
		}
		if old == nil {
			return netip.Addr{}, errPoolFull
		}
		delete(l.byMAC, old.MAC)
		pick = old.IP
	}
	l.byMAC[mac] = &Lease{MAC: mac, IP: pick, Expires: now.Add(offerHold), Offered: true}
	return pick, nil
}

// owner is the MAC address whose (possibly expired) lease names ip.
func (l *leases) owner(ip netip.Addr) string {
	for mac, x := range l.byMAC {
		if x.IP == ip {
			return mac
		}
	}
	return ""
}

// commit gives ip to mac for d and writes the lease file. It fails when ip
// is not ours to give or someone else holds it.
func (l *leases) commit(mac string, ip netip.Addr, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.usable(ip) {
		return fmt.Errorf("%s is not in the pool %s", ip, l.pool)
	}
	if h := l.holder(ip, now); h != "" && h != mac {
		return fmt.Errorf("%s is leased to %s", ip, h)
	}
	if o := l.owner(ip); o != "" && o != mac {
		delete(l.byMAC, o)
	}
	l.byMAC[mac] = &Lease{MAC: mac, IP: ip, Expires: now.Add(d)}
	return l.saveLocked()
}

// release ends mac's lease now; mac keeps first claim on the address.
func (l *leases) release(mac string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := l.byMAC[mac]
	if x == nil {
		return nil
	}
	x.Expires = l.now()
	return l.saveLocked()
}

// decline takes ip out of the pool until the server restarts: a client
// found it in use by someone else.
func (l *leases) decline(mac string, ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exclude[ip] = true
	if x := l.byMAC[mac]; x != nil && x.IP == ip {
		delete(l.byMAC, mac)
	}
}

// lookup returns the MAC address that holds ip, if any.
func (l *leases) lookup(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owner(ip)
}

func (l *leases) all() []Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Lease
	for _, x := range l.byMAC {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.IP.Compare(b.IP) })
	return out
}

// saveLocked writes the acked leases atomically (temporary file, rename).
func (l *leases) saveLocked() error {
	var out []Lease
	for _, x := range l.byMAC {
		if !x.Offered {
			out = append(out, *x)
		}
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.IP.Compare(b.IP) })
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	if err := os.Rename(tmp, l.file); err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	return nil
}
