package images

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// PartName is the file name of part n (1-based) of a split image: part 1 is
// the name the user gave, later parts insert .NNN before the extension
// ("pc1.lbi", "pc1.002.lbi", "pc1.003.lbi").
func PartName(base string, n int) string {
	if n <= 1 {
		return base
	}
	ext := filepath.Ext(base)
	if strings.ContainsAny(ext, `/\`) {
		ext = ""
	}
	return fmt.Sprintf("%s.%03d%s", strings.TrimSuffix(base, ext), n, ext)
}

// DefaultMode is the permission of an image's files unless
// WriterOptions.Mode says otherwise: a backup holds everything on the disk,
// so only its owner may read it.
const DefaultMode fs.FileMode = 0o600

// CheckMode says whether m may be the permission of an image's files: read
// and write bits only, the owner's included (0600 to 0666). The owner must
// be able to read the image back and a later writer to replace it; execute,
// set-id and sticky bits mean nothing for an image.
func CheckMode(m fs.FileMode) error {
	if m&^0o666 != 0 || m&0o600 != 0o600 {
		return fmt.Errorf("file mode %04o: an image's permissions are read and write bits that include the owner's, from 0600 to 0666 (0600: only the owner; 0640: the group may read it too)", uint32(m))
	}
	return nil
}

// CreateFile creates name, which must not exist, for reading and writing
// with permission mode exactly: it is set with chmod before a byte is
// written, so the umask neither narrows nor widens it, and the file is
// never wider than its owner's meanwhile. Every file that holds a copy of
// a disk (an image's parts, a restored disk image file) is made by it.
func CreateFile(name string, mode fs.FileMode) (*os.File, error) {
	if err := CheckMode(mode); err != nil {
		return nil, &os.PathError{Op: "create", Path: name, Err: err}
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, DefaultMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("set the permissions of %s to %04o: %w", name, uint32(mode), err)
	}
	return f, nil
}

const (
	partialSuffix  = ".partial"
	writebackEvery = 32 << 20
)

// partSink writes the logical image stream into one or more files under
// temporary names, or into a plain io.Writer when streaming.
type partSink struct {
	base      string
	split     int64
	uuid      [16]byte
	overwrite bool
	mode      fs.FileMode // of every part, checked by CheckMode

	stream io.Writer // set when writing to a pipe; no parts then
	// old is the UUID of the image this one replaces (Overwrite), whose
	// later parts may be removed at commit; nil when there is none.
	old   *[16]byte
	first *os.File // part 1's temporary file, created by start
	lock  *os.File // a second handle on it, locked while writing

	n      int // parts opened so far
	cur    *os.File
	left   int64 // payload bytes the current part still takes
	pos    int64 // bytes written to cur
	synced int64 // bytes of cur handed to startWriteback
	tmp    []string
	final  []string
	closed []*os.File
}

func (s *partSink) Write(p []byte) (int, error) {
	if s.stream != nil {
		return s.stream.Write(p)
	}
	done := 0
	for len(p) > 0 {
		if s.cur == nil || (s.split > 0 && s.left == 0) {
			if err := s.next(); err != nil {
				return done, err
			}
		}
		n := len(p)
		if s.split > 0 && int64(n) > s.left {
			n = int(s.left)
		}
		m, err := s.cur.Write(p[:n])
		done += m
		s.left -= int64(m)
		s.pos += int64(m)
		if s.pos-s.synced >= writebackEvery {
			startWriteback(s.cur, s.synced, s.pos-s.synced)
			s.synced = s.pos
		}
		if err != nil {
			return done, writeError(s.final[len(s.final)-1], err)
		}
		p = p[n:]
	}
	return done, nil
}

// start prepares writing base: it removes what an interrupted writer of
// the same name left, refuses names in the way, and creates part 1's
// temporary file, locked against a concurrent writer of the same name.
func (s *partSink) start() error {
	if _, err := CleanInterrupted(s.base); err != nil {
		return err
	}
	if s.overwrite {
		s.old, _ = imageUUIDAt(s.base)
	}
	if err := s.mayReplace(s.base, 1); err != nil {
		return err
	}
	f, err := CreateFile(s.base+partialSuffix, s.mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &ExistsError{Path: s.base + partialSuffix, What: "another backup or merge is writing this image now"}
		}
		return fmt.Errorf("create image part: %w", err)
	}
	s.first = f
	if !lockByHandle {
		return nil
	}
	if l, err := os.Open(f.Name()); err == nil {
		if tryLock(l) {
			s.lock = l
		} else {
			l.Close()
		}
	}
	return nil
}

// next closes the current part and opens the next one.
func (s *partSink) next() error {
	if s.cur != nil {
		if err := s.finish(s.cur); err != nil {
			return err
		}
	}
	s.n++
	name := PartName(s.base, s.n)
	if err := s.mayReplace(name, s.n); err != nil {
		return err
	}
	tmp := name + partialSuffix
	var f *os.File
	if s.n == 1 && s.first != nil {
		f, s.first = s.first, nil
	} else {
		var err error
		if f, err = CreateFile(tmp, s.mode); err != nil {
			return fmt.Errorf("create image part: %w", err)
		}
	}
	s.cur, s.left, s.pos, s.synced = f, s.split, 0, 0
	s.tmp = append(s.tmp, tmp)
	s.final = append(s.final, name)
	if s.n > 1 {
		if _, err := f.Write(encodePartHeader(s.uuid, s.n)); err != nil {
			return writeError(name, err)
		}
		s.left -= partHeaderLen
		s.pos = partHeaderLen
	}
	return nil
}

func (s *partSink) finish(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	s.closed = append(s.closed, f)
	return f.Close()
}

// parts is the number of parts written so far.
func (s *partSink) parts() int { return max(s.n, 1) }

// commit syncs and renames every part into place; part 1, the one a user
// opens, is renamed last, so an interrupted commit leaves no image.
func (s *partSink) commit() error {
	if s.stream != nil {
		return nil
	}
	if s.cur != nil {
		if err := s.finish(s.cur); err != nil {
			return err
		}
		s.cur = nil
	}
	return nil
}

// publish renames every synced part into place. Part 1, the only name a
// user opens, is renamed last: until then the later parts under their
// final names are orphans that name, in their part headers, an image whose
// first part is still base+".partial" — which is how CleanInterrupted
// recognises them after a crash at any instant (several files cannot
// appear at once).
func (s *partSink) publish() error {
	if s.stream != nil {
		return nil
	}
	for i := len(s.tmp) - 1; i >= 0; i-- {
		if err := os.Rename(s.tmp[i], s.final[i]); err != nil {
			return fmt.Errorf("rename %s to %s: %w", s.tmp[i], s.final[i], err)
		}
	}
	// The later parts of the image this one replaced (only those: their
	// part headers name it) would be mistaken for parts of this one.
	if s.old != nil {
		for n := s.n + 1; ; n++ {
			name := PartName(s.base, n)
			if partUUID(name, n) != *s.old {
				break
			}
			os.Remove(name)
		}
	}
	syncDir(filepath.Dir(s.base))
	s.unlock()
	return nil
}

func (s *partSink) unlock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// mayReplace says whether part n of the new image may be written as name:
// it must not exist, unless it is part n of the image being replaced.
func (s *partSink) mayReplace(name string, n int) error {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil
	}
	what := "it already exists"
	switch {
	case !fi.Mode().IsRegular():
		what = "it exists and is not a regular file"
	case !s.overwrite:
	case s.old == nil:
		if n == 1 {
			return nil // --overwrite of a file that is not an image
		}
		what = "it already exists and is not a part of the image being replaced"
	case n == 1 || partUUID(name, n) == *s.old:
		return nil
	default:
		what = "it already exists and is not a part of the image being replaced"
	}
	return &ExistsError{Path: name, What: what}
}

// abort removes every temporary part.
func (s *partSink) abort() {
	if s.cur != nil {
		s.cur.Close()
	}
	if s.first != nil {
		s.first.Close()
		os.Remove(s.first.Name())
		s.first = nil
	}
	// Later parts first: part 1's temporary file is what ties them to
	// this writer after a crash.
	for i := len(s.tmp) - 1; i >= 0; i-- {
		os.Remove(s.tmp[i])
	}
	s.unlock()
}

// writeError names the part as the user knows it (not its temporary name)
// once, and says what to do when the disk is full.
func writeError(part string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ENOSPC) {
		return &os.PathError{Op: "write image", Path: part, Err: fmt.Errorf("%w: the output's disk is full; free some space or write the image to another disk (nothing was kept)", err)}
	}
	return &os.PathError{Op: "write image", Path: part, Err: err}
}

// ExistsError: an output file is in the way. Nothing was written; choose
// another name, move the file away, or (for an older image of the same
// name) allow overwriting.
type ExistsError struct {
	Path string
	What string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s: %s; choose another output name or move it away", e.Path, e.What)
}

func (e *ExistsError) Unwrap() error { return fs.ErrExist }

// imageUUIDAt returns the UUID in the header of the image file at path.
func imageUUIDAt(path string) (*[16]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fixed := make([]byte, headerFixed)
	if _, err := io.ReadFull(f, fixed); err != nil {
		return nil, false
	}
	hl, err := headerLen(fixed)
	if err != nil {
		return nil, false
	}
	hb := make([]byte, hl)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, false
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return nil, false
	}
	u, err := parseUUID(h.ImageUUID)
	if err != nil {
		return nil, false
	}
	return &u, true
}

// partUUID returns the image UUID in the header of part n at path (zero
// when it is not a valid part n).
func partUUID(path string, n int) [16]byte {
	var u [16]byte
	f, err := os.Open(path)
	if err != nil {
		return u
	}
	defer f.Close()
	b := make([]byte, partHeaderLen)
	if _, err := io.ReadFull(f, b); err != nil || checkPartHeader(b, [16]byte(b[8:24]), n) != nil {
		return u
	}
	return [16]byte(b[8:24])
}

// Interrupted lists what a backup or merge writing an image at base left
// behind when it was killed: base+".partial" and the parts whose part
// headers name the same image, under temporary or final names (a crash
// while the parts were being renamed into place). It only reads.
func Interrupted(base string) []string {
	first := base + partialSuffix
	if _, err := os.Lstat(first); err != nil {
		return nil
	}
	var out []string
	if u, ok := imageUUIDAt(first); ok {
		// Later parts exist under one name or the other, with no gap:
		// they are opened in order and renamed from the last.
		for n := 2; ; n++ {
			found := false
			for _, name := range []string{PartName(base, n) + partialSuffix, PartName(base, n)} {
				if partUUID(name, n) == *u {
					out, found = append(out, name), true
				}
			}
			if !found {
				break
			}
		}
	}
	return append(out, first)
}

// CleanInterrupted removes the files Interrupted lists — a file only when
// its header proves that interrupted writer wrote it — and returns them.
// It refuses while another writer is still writing base.
func CleanInterrupted(base string) ([]string, error) {
	first := base + partialSuffix
	if _, err := os.Lstat(first); err != nil {
		return nil, nil
	}
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s is left from an interrupted backup and cannot be opened: %w; remove it", first, err)
	}
	defer f.Close()
	if !tryLock(f) {
		return nil, &ExistsError{Path: first, What: "another backup or merge is writing this image now"}
	}
	if !lockByHandle {
		f.Close() // Windows removes no file that is open, ours included
	}
	var removed []string
	for _, name := range Interrupted(base) {
		if err := os.Remove(name); err != nil {
			return removed, fmt.Errorf("remove %s (left from an interrupted backup): %w", name, err)
		}
		removed = append(removed, name)
	}
	syncDir(filepath.Dir(base))
	return removed, nil
}

// CheckParts refuses, before a split image is written at base, a later
// part name that is in the way, by the rule the writer applies to each part
// it opens: it must not exist, unless it is the replaced image's own part
// (overwrite) or left by an interrupted writer of base (which the writer
// removes). It returns an *ExistsError naming the first.
func CheckParts(base string, overwrite bool) error {
	s := &partSink{base: base, overwrite: overwrite}
	if overwrite {
		s.old, _ = imageUUIDAt(base)
	}
	orphans := Interrupted(base)
	for n := 2; ; n++ {
		name := PartName(base, n)
		if _, err := os.Lstat(name); err != nil {
			return nil
		}
		if slices.Contains(orphans, name) {
			continue
		}
		if err := s.mayReplace(name, n); err != nil {
			return err
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every OS can fsync a directory
		d.Close()
	}
}

// partFile is one file of a split image, as mapped into the logical stream.
type partFile struct {
	name  string
	r     io.ReaderAt
	c     io.Closer
	start int64 // logical offset of its first payload byte
	skip  int64 // bytes of part header before the payload
	n     int64 // payload bytes
}

// partSet joins the parts of an image into one io.ReaderAt.
type partSet struct {
	name  string
	parts []partFile
	size  int64
	open  PartOpener // nil for a single reader
}

func (p *partSet) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	done := 0
	for len(b) > 0 {
		if off >= p.size {
			return done, io.EOF
		}
		i := p.find(off)
		pf := &p.parts[i]
		rel := off - pf.start
		n := int(min(int64(len(b)), pf.n-rel))
		m, err := pf.r.ReadAt(b[:n], pf.skip+rel)
		done += m
		if m < n {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%s: %w: it is shorter than when it was written", pf.name, ErrIncomplete)
			}
			return done, err
		}
		b, off = b[n:], off+int64(n)
	}
	return done, nil
}

// exists reports whether the part file name can be opened.
func (p *partSet) exists(name string) bool {
	if p.open == nil {
		return false
	}
	_, _, c, err := p.open(name)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (p *partSet) find(off int64) int {
	lo, hi := 0, len(p.parts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.parts[mid].start <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// locate maps a logical offset to its part file and the offset inside it.
func (p *partSet) locate(off int64) (string, int64) {
	if len(p.parts) == 0 {
		return p.name, off
	}
	i := p.find(off)
	return p.parts[i].name, p.parts[i].skip + off - p.parts[i].start
}

func (p *partSet) Close() error {
	var errs []error
	for _, pf := range p.parts {
		if pf.c != nil {
			errs = append(errs, pf.c.Close())
		}
	}
	return errors.Join(errs...)
}

// openParts opens part 1 and, when the header says the image is split, the
// parts after it, until one shorter than the split size (the last).
func openParts(name string, first io.ReaderAt, firstSize int64, firstC io.Closer, open PartOpener, h *header, uuid [16]byte) (*partSet, error) {
	ps := &partSet{name: name, open: open}
	ps.parts = append(ps.parts, partFile{name: name, r: first, c: firstC, n: firstSize})
	ps.size = firstSize
	if h.SplitSize == 0 {
		return ps, nil
	}
	if firstSize > h.SplitSize {
		ps.parts = ps.parts[:0]
		return nil, &CorruptError{Image: name, Part: name, PartOff: h.SplitSize, Offset: h.SplitSize, What: "the first part is longer than the split size", Err: ErrCorrupt}
	}
	last := firstSize
	for n := 2; last == h.SplitSize; n++ {
		pn := PartName(name, n)
		r, size, c, err := open(pn)
		if errors.Is(err, fs.ErrNotExist) {
			// Part 1..n-1 are all full: either the image ends exactly at
			// a part boundary or part n is missing. The trailer decides.
			break
		}
		if err != nil {
			ps.Close()
			return nil, err
		}
		hb := make([]byte, partHeaderLen)
		if _, err := r.ReadAt(hb, 0); err != nil || size > h.SplitSize {
			c.Close()
			ps.Close()
			return nil, &CorruptError{Image: name, Part: pn, What: "this part is truncated or too long", Err: ErrCorrupt}
		}
		if err := checkPartHeader(hb, uuid, n); err != nil {
			c.Close()
			ps.Close()
			return nil, &CorruptError{Image: name, Part: pn, Offset: ps.size, What: strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "), Err: ErrCorrupt}
		}
		ps.parts = append(ps.parts, partFile{name: pn, r: r, c: c, start: ps.size, skip: partHeaderLen, n: size - partHeaderLen})
		ps.size += size - partHeaderLen
		last = size
	}
	return ps, nil
}
