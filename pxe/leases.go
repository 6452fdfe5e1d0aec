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
//
// Every address belongs to at most one MAC address (byIP mirrors byMAC),
// so both maps are bounded by the pool. At most maxOffers addresses are
// offered and not yet acked: past that, a new client takes over the
// oldest offer instead of a free address, so a flood of discovers cycles
// through a few addresses and leaves the rest of the pool, and known
// clients' addresses, alone.
type leases struct {
	mu          sync.Mutex
	file        string
	pool        Range
	exclude     map[netip.Addr]bool
	declined    map[netip.Addr]time.Time // out of the pool until then
	byMAC       map[string]*Lease
	byIP        map[netip.Addr]*Lease
	offers      []*Lease // in the order they were made
	maxOffers   int
	declineHold time.Duration
	now         func() time.Time
	fsync       func(*os.File) error // (*os.File).Sync; tests watch it
}

func openLeases(file string, pool Range, exclude ...netip.Addr) (*leases, error) {
	l := &leases{file: file, pool: pool, exclude: map[netip.Addr]bool{}, declined: map[netip.Addr]time.Time{},
		byMAC: map[string]*Lease{}, byIP: map[netip.Addr]*Lease{},
		maxOffers: 128, declineHold: 10 * time.Minute, now: time.Now, fsync: (*os.File).Sync}
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
		if x.Offered || !pool.Contains(x.IP) || l.exclude[x.IP] || l.byIP[x.IP] != nil || l.byMAC[x.MAC] != nil {
			continue
		}
		l.set(&x)
	}
	return l, nil
}

func (l *leases) set(x *Lease) {
	if old := l.byMAC[x.MAC]; old != nil {
		l.drop(old)
	}
	if old := l.byIP[x.IP]; old != nil {
		l.drop(old)
	}
	l.byMAC[x.MAC], l.byIP[x.IP] = x, x
}

func (l *leases) drop(x *Lease) {
	if l.byMAC[x.MAC] == x {
		delete(l.byMAC, x.MAC)
	}
	if l.byIP[x.IP] == x {
		delete(l.byIP, x.IP)
	}
}

// usable says whether ip may be handed out: in the pool, not the server's
// own, not declined within the hold.
func (l *leases) usable(ip netip.Addr, now time.Time) bool {
	if !l.pool.Contains(ip) || l.exclude[ip] {
		return false
	}
	if until, ok := l.declined[ip]; ok {
		if now.Before(until) {
			return false
		}
		delete(l.declined, ip)
	}
	return true
}

// outstanding prunes l.offers to the live offers (unexpired, not acked);
// expired offers give their address back to the pool.
func (l *leases) outstanding(now time.Time) int {
	live := l.offers[:0]
	for _, x := range l.offers {
		switch {
		case l.byMAC[x.MAC] != x || !x.Offered: // acked or replaced since
		case !now.Before(x.Expires):
			l.drop(x)
		default:
			live = append(live, x)
		}
	}
	clear(l.offers[len(live):])
	l.offers = live
	return len(live)
}

// offer picks an address for mac and holds it for mac for a minute: the
// one mac had, else (while fewer than maxOffers are outstanding) the one
// it asks for or a free one, else the oldest outstanding offer's, else
// the one whose lease expired longest ago.
func (l *leases) offer(mac string, requested netip.Addr) (netip.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if x := l.byMAC[mac]; x != nil {
		if l.usable(x.IP, now) {
			if !x.Expires.After(now) {
				x.Expires = now.Add(offerHold)
			}
			return x.IP, nil
		}
		l.drop(x) // its address was declined since
	}
	busy := l.outstanding(now) >= l.maxOffers
	pick := netip.Addr{}
	switch {
	case busy:
		old := l.offers[0]
		l.drop(old)
		l.offers = l.offers[1:]
		pick = old.IP
	case requested.IsValid() && l.usable(requested, now) && l.byIP[requested] == nil:
		pick = requested
	default:
		pick = l.free(now)
	}
	if !pick.IsValid() {
		// Reclaim the address whose lease expired longest ago.
		var old *Lease
		for _, x := range l.byMAC {
			if !x.Expires.After(now) && (old == nil || x.Expires.Before(old.Expires)) {
				old = x
			}
		}
		if old == nil {
			return netip.Addr{}, errPoolFull
		}
		l.drop(old)
		pick = old.IP
	}
	x := &Lease{MAC: mac, IP: pick, Expires: now.Add(offerHold), Offered: true}
	l.set(x)
	l.offers = append(l.offers, x)
	return pick, nil
}

// free returns the first address of the pool nobody has, if any.
func (l *leases) free(now time.Time) netip.Addr {
	size := uint64(ipv4(l.pool.Last)-ipv4(l.pool.First)) + 1
	if uint64(len(l.byIP)) >= size {
		return netip.Addr{}
	}
	for a := l.pool.First; l.pool.Contains(a); a = a.Next() {
		if l.byIP[a] == nil && l.usable(a, now) {
			return a
		}
	}
	return netip.Addr{}
}

func ipv4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// commit gives ip to mac for d and writes the lease file. It fails when ip
// is not ours to give, or mac holds no offer or lease for it: a request
// must follow an offer (or renew a lease), so requests alone cannot take
// addresses past the cap on offers (RFC 2131 4.3.2: a server with no
// record of the client stays silent or NAKs).
func (l *leases) commit(mac string, ip netip.Addr, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.usable(ip, now) {
		if l.pool.Contains(ip) && !l.exclude[ip] {
			return fmt.Errorf("%s was declined by a client that found it in use; it returns to the pool later", ip)
		}
		return fmt.Errorf("%s is not in the pool %s", ip, l.pool)
	}
	if h := l.byIP[ip]; h != nil && h.MAC != mac {
		return fmt.Errorf("%s is held by %s", ip, h.MAC)
	}
	if x := l.byMAC[mac]; x == nil || x.IP != ip {
		return fmt.Errorf("%s was not offered to %s", ip, mac)
	}
	l.set(&Lease{MAC: mac, IP: ip, Expires: now.Add(d)})
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

// decline takes ip out of the pool for declineHold (RFC 2131 3.1.5: the
// client found it in use on the wire). Only the client that was offered
// or leased ip may decline it; anyone else gets an error and nothing
// changes.
func (l *leases) decline(mac string, ip netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := l.byMAC[mac]
	if x == nil || x.IP != ip {
		return fmt.Errorf("%s holds no offer or lease for %s", mac, ip)
	}
	l.drop(x)
	l.declined[ip] = l.now().Add(l.declineHold)
	if x.Offered {
		return nil
	}
	return l.saveLocked()
}

// ackedIP returns the address mac holds by an acked lease, if any.
func (l *leases) ackedIP(mac string) netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if x := l.byMAC[mac]; x != nil && !x.Offered {
		return x.IP
	}
	return netip.Addr{}
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

// saveLocked writes the acked leases so that a crash leaves either the
// old file or the new one: a temporary file, synced, renamed over the
// old, and the directory synced so that the rename itself is on disk.
//
// The file is 0644: it holds MAC and IP addresses and expiry times, all
// of which go over the wire in the clear anyway, and no token or other
// secret; like dnsmasq's and dhcpd's lease files it may be read by
// monitoring tools that do not run as root.
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
	tmp, err := writeSynced(l.file, append(b, '\n'), l.fsync)
	if err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	if err := os.Rename(tmp, l.file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("lease file: %w", err)
	}
	dir, err := os.Open(filepath.Dir(l.file))
	if err != nil {
		return fmt.Errorf("lease file: %w", err)
	}
	defer dir.Close()
	if err := l.fsync(dir); err != nil {
		return fmt.Errorf("lease file: syncing its directory: %w", err)
	}
	return nil
}

// writeSynced writes b to a new temporary file beside name (its own, so
// that two servers given the same lease file cannot rename each other's
// half-written one) and syncs it; it returns the temporary file's name.
func writeSynced(name string, b []byte, fsync func(*os.File) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*.tmp")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes it 0600
	}
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
