package engine

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// A chain is a full backup and the incremental and differential points
// built on it. A point refers to chunks its earlier points hold, by their
// image UUIDs; the files are found next to the point (by the names they had
// when it was made, then by UUID) or in a folder the user names.

// chain is an opened point and the earlier points it refers to.
type chain struct {
	pw      func() ([]byte, error) // asks once: every point has the same
	point   *images.Image
	members []*images.Image // in the order point.Chain() lists them, oldest first
	paths   []string        // of the members
}

func (c *chain) Close() {
	for _, m := range c.members {
		m.Close()
	}
	c.point.Close()
}

// password is the chain's password (nil for an unencrypted chain).
func (c *chain) password() ([]byte, error) {
	if c.pw == nil {
		return nil, nil
	}
	return c.pw()
}

// all lists the members then the point: every image whose data the point
// may read.
func (c *chain) all() []*images.Image { return append(slices.Clone(c.members), c.point) }

// cachedPassword asks once and gives the same password to every point.
func cachedPassword(pw func() ([]byte, error)) func() ([]byte, error) {
	if pw == nil {
		return nil
	}
	var got []byte
	var err error
	asked := false
	return func() ([]byte, error) {
		if !asked {
			got, err = pw()
			asked = true
		}
		return got, err
	}
}

// openChain opens the image at name with the points it needs. Every point
// is unlocked with the same password; a wrong one fails before any work, and
// so does an image enc refuses.
func openChain(ctx context.Context, name, chainDir string, pw func() ([]byte, error), enc Encryption) (*chain, error) {
	pw = cachedPassword(pw)
	im, err := openImage(ctx, name, images.OpenOptions{Password: pw})
	if err != nil {
		return nil, describeOpenError(name, err)
	}
	if err := enc.check(name, im, true); err != nil {
		im.Close()
		return nil, err
	}
	c := &chain{point: im, pw: pw}
	if im.Encrypted() && im.Info().Locked {
		im.Close()
		return nil, &FixError{Err: &noteError{msg: fmt.Sprintf("image %s is encrypted and no password was given", name), err: images.ErrPasswordNeeded},
			Fix: opt.With("give it with {} or LIFEBOAT_PASSWORD, or run on a terminal", opt.Use{Option: opt.PasswordFile, Value: "FILE"})}
	}
	need := im.Chain()
	if len(need) == 0 {
		return c, nil
	}
	f := newPointFinder(name, chainDir)
	links := map[string]images.Link{}
	if p := im.Meta.Point; p != nil {
		for _, l := range p.Chain {
			links[l.UUID] = l
		}
	}
	for _, u := range need {
		l := links[u]
		p := f.find(u, l.File)
		if p == "" {
			c.Close()
			return nil, missingPoint(name, u, l, f.dirs)
		}
		m, err := openImage(ctx, p, images.OpenOptions{Password: pw})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("earlier point %s of %s: %w", p, name, describeOpenError(p, err))
		}
		c.members, c.paths = append(c.members, m), append(c.paths, p)
		if err := enc.check(p, m, false); err != nil {
			c.Close()
			return nil, err
		}
		if m.Encrypted() && m.Info().Locked {
			c.Close()
			return nil, &noteError{msg: fmt.Sprintf("earlier point %s of %s is encrypted and no password was given (the chain's password opens every point)", p, name), err: images.ErrPasswordNeeded}
		}
	}
	if err := im.AttachChain(c.members); err != nil {
		c.Close()
		return nil, err
	}
	// Each earlier point reads its own patches through its own parent:
	// its chain is a part of this one.
	byUUID := map[string]*images.Image{}
	for _, m := range c.members {
		byUUID[m.UUID()] = m
	}
	for i, m := range c.members {
		var sub []*images.Image
		for _, u := range m.Chain() {
			p, ok := byUUID[u]
			if !ok {
				c.Close()
				return nil, missingPoint(c.paths[i], u, images.Link{UUID: u}, newPointFinder(name, chainDir).dirs)
			}
			sub = append(sub, p)
		}
		if err := m.AttachChain(sub); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func missingPoint(name, uuid string, l images.Link, dirs []string) error {
	what := "point " + uuid
	if l.File != "" {
		what = fmt.Sprintf("the %s point %s (made %s, uuid %s)", l.Kind, l.File, l.Created.Local().Format("2006-01-02 15:04"), uuid)
	}
	return &FixError{Err: fmt.Errorf("image %s cannot be read: %w: it needs %s, which is not in %s", name, images.ErrChainMissing, what, strings.Join(dirs, " or ")),
		Fix: opt.With("put it back (or name its folder with {})", opt.Use{Option: opt.ChainDir})}
}

// pointFinder finds chain members by UUID in the image's folder and the
// chain folder.
type pointFinder struct {
	dirs    []string
	scanned map[string]string // uuid → path, filled on the first scan
}

func newPointFinder(name, chainDir string) *pointFinder {
	f := &pointFinder{}
	f.dirs = append(f.dirs, imageDir(name))
	if chainDir != "" && chainDir != f.dirs[0] {
		f.dirs = append(f.dirs, chainDir)
	}
	return f
}

// find returns the path of the image with this UUID: the file named hint
// in one of the folders, else any image there; "" if there is none.
func (f *pointFinder) find(uuid, hint string) string {
	if hint != "" {
		for _, d := range f.dirs {
			p := JoinImage(d, filepath.Base(hint))
			if u, _ := imageUUID(p); u == uuid {
				return p
			}
		}
	}
	if f.scanned == nil {
		f.scanned = map[string]string{}
		for _, d := range f.dirs {
			for _, p := range ListImages(d) {
				if u, ok := imageUUID(p); ok == nil {
					if _, dup := f.scanned[u]; !dup {
						f.scanned[u] = p
					}
				}
			}
		}
	}
	return f.scanned[uuid]
}

// imageUUID reads an image's identity without its password.
func imageUUID(p string) (string, error) {
	im, err := openImage(context.Background(), p, images.OpenOptions{})
	if err != nil {
		return "", err
	}
	defer im.Close()
	return im.UUID(), nil
}

var laterPart = regexp.MustCompile(`\.\d{3}\.lbi$`)

// IsImageName reports whether a file name is an image's first part: *.lbi,
// not a later split part (*.002.lbi) and not an unfinished *.partial.
func IsImageName(name string) bool {
	return strings.HasSuffix(name, ".lbi") && !laterPart.MatchString(name)
}

// pointOf describes an image as a link of a later point's chain.
func pointOf(im *images.Image, file string) images.Link {
	l := images.Link{UUID: im.UUID(), File: filepath.Base(file), Kind: images.PointFull, Created: im.Info().Created, Size: im.Info().FileSize}
	if p := im.Meta.Point; p != nil {
		l.Kind = p.Kind
	}
	return l
}

// rootOf is the UUID of the full backup a point's chain starts at.
func rootOf(im *images.Image) string {
	if p := im.Meta.Point; p != nil && len(p.Chain) > 0 {
		return p.Chain[0].UUID
	}
	return im.UUID()
}

// latestPoint finds, next to base and in chainDir, the newest complete
// point of base's chain: the parent of the next incremental.
func latestPoint(base, chainDir string) (string, error) {
	b, err := openImage(context.Background(), base, images.OpenOptions{})
	if err != nil {
		return "", describeOpenError(base, err)
	}
	root := rootOf(b)
	best, bestTime, bestDepth := base, b.Info().Created, chainDepth(b)
	b.Close()
	f := newPointFinder(base, chainDir)
	for _, d := range f.dirs {
		for _, p := range ListImages(d) {
			im, err := openImage(context.Background(), p, images.OpenOptions{})
			if err != nil {
				continue
			}
			t, depth, r := im.Info().Created, chainDepth(im), rootOf(im)
			im.Close()
			if r != root {
				continue
			}
			if c := cmp.Or(t.Compare(bestTime), cmp.Compare(depth, bestDepth)); c > 0 {
				best, bestTime, bestDepth = p, t, depth
			}
		}
	}
	return best, nil
}

func chainDepth(im *images.Image) int {
	if p := im.Meta.Point; p != nil {
		return len(p.Chain)
	}
	return 0
}

// chainPoints describes an image's chain for info: each earlier point,
// found or missing, then the image itself.
type ChainPoint struct {
	File    string           `json:"file"`
	UUID    string           `json:"uuid"`
	Kind    images.PointKind `json:"kind"`
	Created time.Time        `json:"created"`
	Size    int64            `json:"size"`
	Missing bool             `json:"missing,omitempty"`
}

// describeLater lists the points found beside an image (and in chainDir)
// whose chains hold it: the later points that build on it, directly or
// through others, oldest first (then by name). ctx stops the scan.
func describeLater(ctx context.Context, name, chainDir string, im *images.Image) []ChainPoint {
	self := im.UUID()
	f := newPointFinder(name, chainDir)
	seen := map[string]bool{self: true}
	var out []ChainPoint
	for _, d := range f.dirs {
		for _, p := range ListImages(d) {
			if ctx.Err() != nil {
				return out
			}
			other, err := openImage(ctx, p, images.OpenOptions{})
			if err != nil {
				continue
			}
			pt := other.Meta.Point
			if !seen[other.UUID()] && pt != nil && slices.ContainsFunc(pt.Chain, func(l images.Link) bool { return l.UUID == self }) {
				seen[other.UUID()] = true
				l := pointOf(other, p)
				out = append(out, ChainPoint{File: p, UUID: l.UUID, Kind: l.Kind, Created: l.Created, Size: l.Size})
			}
			other.Close()
		}
	}
	slices.SortFunc(out, func(a, b ChainPoint) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.File, b.File))
	})
	return out
}

func describeChain(name, chainDir string, im *images.Image) []ChainPoint {
	p := im.Meta.Point
	if p == nil || len(p.Chain) == 0 {
		return nil
	}
	f := newPointFinder(name, chainDir)
	var out []ChainPoint
	for _, l := range p.Chain {
		cp := ChainPoint{File: l.File, UUID: l.UUID, Kind: l.Kind, Created: l.Created, Size: l.Size}
		if path := f.find(l.UUID, l.File); path == "" {
			cp.Missing = true
		} else {
			cp.File = path
		}
		out = append(out, cp)
	}
	self := pointOf(im, name)
	return append(out, ChainPoint{File: name, UUID: self.UUID, Kind: self.Kind, Created: self.Created, Size: self.Size})
}

// FolderImage is an image found in a folder or an S3 prefix, described
// from what can be read without its password.
type FolderImage struct {
	Image     string           `json:"image"`
	UUID      string           `json:"uuid"`
	Parent    string           `json:"parent,omitempty"` // UUID of the point it builds on
	Kind      images.PointKind `json:"kind,omitempty"`   // "" when the image is encrypted and no password was given
	Created   time.Time        `json:"created"`
	Size      int64            `json:"size"`
	Encrypted bool             `json:"encrypted"`
	Error     string           `json:"error,omitempty"` // why it could not be read
}

// ListChains describes every image in dir (a folder or s3://BUCKET/PREFIX/),
// ordered chain by chain: each full backup followed by the points built on
// it (oldest first), then images whose full backup is not there.
func ListChains(ctx context.Context, dir string, password func() ([]byte, error)) []FolderImage {
	var all []FolderImage
	for _, p := range ListImages(dir) {
		fi := FolderImage{Image: p}
		im, err := openImage(ctx, p, images.OpenOptions{Password: password})
		if err != nil {
			fi.Error = err.Error()
			all = append(all, fi)
			continue
		}
		i := im.Info()
		fi.UUID, fi.Parent, fi.Created, fi.Size, fi.Encrypted = i.UUID, i.ParentUUID, i.Created, i.FileSize, im.Encrypted()
		if pt := im.Meta.Point; pt != nil {
			fi.Kind = pt.Kind
		} else if !i.Locked {
			fi.Kind = images.PointFull
		}
		im.Close()
		all = append(all, fi)
	}
	byUUID := map[string]bool{}
	for _, f := range all {
		byUUID[f.UUID] = true
	}
	root := func(f FolderImage) string {
		seen := map[string]bool{}
		for f.Parent != "" && byUUID[f.Parent] && !seen[f.UUID] {
			seen[f.UUID] = true
			for _, g := range all {
				if g.UUID == f.Parent {
					f = g
					break
				}
			}
		}
		return f.UUID
	}
	slices.SortStableFunc(all, func(a, b FolderImage) int {
		ra, rb := root(a), root(b)
		if ra != rb {
			ca, cb := created(all, ra), created(all, rb)
			if c := ca.Compare(cb); c != 0 {
				return c
			}
			return strings.Compare(ra, rb)
		}
		return a.Created.Compare(b.Created)
	})
	return all
}

func created(all []FolderImage, uuid string) time.Time {
	for _, f := range all {
		if f.UUID == uuid {
			return f.Created
		}
	}
	return time.Time{}
}
