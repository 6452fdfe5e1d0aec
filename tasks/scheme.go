package tasks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// Scheme says which kind of point each run writes and which images
// retention removes. A group is a full backup and the points built on it.
//
//	full [keep=N]                                  every run a full backup; keep the newest N
//	incremental [full-every=N] [keep-groups=M]     a full, then incrementals; a new full after N points
//	differential [full-every=N] [keep-groups=M]    a full, then differentials against it
//	… max-size=SIZE                                also remove the oldest groups while the task's images
//	                                               exceed SIZE (merging the newest point into a full
//	                                               when one group is left), never the last full
//
// Retention never removes a point that a kept point needs: it removes whole
// groups, oldest first, and only images this task wrote.
type Scheme struct {
	Kind       string // full, incremental or differential
	FullEvery  int    // points per group, the full included (0: one group forever)
	Keep       int    // full: fulls kept (0: all)
	KeepGroups int    // incremental, differential: groups kept (0: all)
	MaxSize    int64  // 0: no limit
}

// DefaultScheme is a task's scheme when it names none.
const DefaultScheme = "incremental full-every=7"

// ParseScheme reads a scheme; "" is DefaultScheme.
func ParseScheme(s string) (Scheme, error) {
	if strings.TrimSpace(s) == "" {
		s = DefaultScheme
	}
	f := strings.Fields(s)
	sc := Scheme{Kind: strings.ToLower(f[0])}
	switch sc.Kind {
	case "full", "incremental", "differential":
	case "inc", "incr":
		sc.Kind = "incremental"
	case "diff", "dif":
		sc.Kind = "differential"
	default:
		return sc, fmt.Errorf("%q: start with full, incremental or differential (e.g. \"incremental full-every=7 keep-groups=4\")", s)
	}
	seen := map[string]bool{}
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return sc, fmt.Errorf("%q: %q should be KEY=VALUE (full-every=7, keep-groups=4, keep=3, max-size=500G)", s, kv)
		}
		if seen[k] {
			return sc, fmt.Errorf("%q: %s given twice", s, k)
		}
		seen[k] = true
		num := func(min int) (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < min {
				return 0, fmt.Errorf("%q: %s=%s: give a whole number of at least %d", s, k, v, min)
			}
			return n, nil
		}
		var err error
		switch k {
		case "full-every":
			if sc.Kind == "full" {
				return sc, fmt.Errorf("%q: full-every goes with incremental or differential; every run of a full scheme is a full backup", s)
			}
			sc.FullEvery, err = num(2)
		case "keep":
			if sc.Kind != "full" {
				return sc, fmt.Errorf("%q: keep=N counts full backups; for %s use keep-groups=N (a group is a full and the points built on it)", s, sc.Kind)
			}
			sc.Keep, err = num(1)
		case "keep-groups":
			if sc.Kind == "full" {
				return sc, fmt.Errorf("%q: a full scheme keeps full backups: use keep=N", s)
			}
			sc.KeepGroups, err = num(1)
		case "max-size":
			sc.MaxSize, err = engine.ParseSize(v)
			if err == nil && sc.MaxSize <= 0 {
				err = fmt.Errorf("%q: max-size must be more than 0", s)
			}
		default:
			return sc, fmt.Errorf("%q: unknown setting %q; use full-every, keep-groups, keep or max-size", s, k)
		}
		if err != nil {
			return sc, err
		}
	}
	if sc.KeepGroups > 0 && sc.FullEvery == 0 {
		return sc, fmt.Errorf("%q: keep-groups needs full-every=N: without new full backups the chain is one group that is never removed", s)
	}
	return sc, nil
}

// String is the scheme as the configuration writes it.
func (s Scheme) String() string {
	out := []string{s.Kind}
	if s.FullEvery > 0 {
		out = append(out, "full-every="+strconv.Itoa(s.FullEvery))
	}
	if s.Keep > 0 {
		out = append(out, "keep="+strconv.Itoa(s.Keep))
	}
	if s.KeepGroups > 0 {
		out = append(out, "keep-groups="+strconv.Itoa(s.KeepGroups))
	}
	if s.MaxSize > 0 {
		out = append(out, "max-size="+formatSize(s.MaxSize))
	}
	return strings.Join(out, " ")
}

// Entry is one image a task wrote, as its catalogue records it.
type Entry struct {
	File    string    `json:"file"`
	UUID    string    `json:"uuid"`
	Kind    string    `json:"kind"`             // full, incremental, differential
	Parent  string    `json:"parent,omitempty"` // UUID of the point it builds on
	Needs   []string  `json:"needs,omitempty"`  // UUIDs of every earlier point it needs
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // bytes of all its files
	Merged  bool      `json:"merged,omitempty"`
}

// groups splits entries (oldest first) into groups, each starting at a
// full backup.
func groups(es []Entry) [][]Entry {
	var out [][]Entry
	for _, e := range es {
		if e.Kind == "full" || len(out) == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], e)
	}
	return out
}

func size(es []Entry) int64 {
	var n int64
	for _, e := range es {
		n += e.Size
	}
	return n
}

// NextKind is the kind of point the next run writes, and the entry it
// builds on (nil for a full backup).
func (s Scheme) NextKind(es []Entry) (string, *Entry) {
	gs := groups(es)
	if s.Kind == "full" || len(gs) == 0 || gs[len(gs)-1][0].Kind != "full" {
		return "full", nil
	}
	g := gs[len(gs)-1]
	if s.FullEvery > 0 && len(g) >= s.FullEvery || slices.ContainsFunc(g, func(e Entry) bool { return e.Kind == "orphan" }) {
		return "full", nil
	}
	if s.Kind == "differential" {
		return "differential", &g[0]
	}
	return "incremental", &g[len(g)-1]
}

// Plan is what retention does after a run: merge the newest point into a
// full first (when set), then delete.
type Plan struct {
	MergeNewest bool
	Delete      []Entry
	Notes       []string // why something is kept past the scheme's limits
}

// Retain plans retention over entries (oldest first), the newest being the
// point just written.
func (s Scheme) Retain(es []Entry) Plan {
	var p Plan
	gs := groups(es)
	drop := func(g []Entry) {
		p.Delete = append(p.Delete, g...)
	}
	switch {
	case s.Kind == "full" && s.Keep > 0:
		for len(gs) > s.Keep {
			drop(gs[0])
			gs = gs[1:]
		}
	case s.Kind != "full" && s.KeepGroups > 0:
		for len(gs) > s.KeepGroups {
			drop(gs[0])
			gs = gs[1:]
		}
	}
	if s.MaxSize > 0 {
		kept := func() int64 {
			var n int64
			for _, g := range gs {
				n += size(g)
			}
			return n
		}
		for kept() > s.MaxSize && len(gs) > 1 {
			drop(gs[0])
			gs = gs[1:]
		}
		if len(gs) == 1 && kept() > s.MaxSize {
			g := gs[0]
			if len(g) > 1 && g[0].Kind == "full" {
				// Merge forward: the newest point becomes a full of its
				// own, then the whole group can go.
				p.MergeNewest = true
				drop(g)
			} else {
				p.Notes = append(p.Notes, fmt.Sprintf("the task's images (%s) exceed max-size=%s, but the last full backup is kept", formatSize(size(g)), formatSize(s.MaxSize)))
			}
		}
	}
	return p
}

// needed returns, of the candidates, those some image outside them still
// needs (by the parent links of every image in the folder), so retention
// never breaks a chain, not even one a user extended by hand.
func needed(candidates []Entry, parents map[string]string) []string {
	del := map[string]bool{}
	for _, c := range candidates {
		del[c.UUID] = true
	}
	var out []string
	for u := range parents {
		if del[u] {
			continue
		}
		seen := map[string]bool{}
		for p := parents[u]; p != "" && !seen[p]; p = parents[p] {
			seen[p] = true
			if del[p] && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// formatSize is a size as ParseSize reads it back, in binary units.
func formatSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "M"
	}
	return strconv.FormatInt(n, 10)
}
