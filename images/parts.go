package images

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

	stream io.Writer // set when writing to a pipe; no parts then

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
			return done, fmt.Errorf("write %s: %w", s.final[len(s.final)-1], err)
		}
		p = p[n:]
	}
	return done, nil
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
	if !s.overwrite {
		if _, err := os.Lstat(name); err == nil {
			return fmt.Errorf("%s already exists; choose another output name or allow overwriting", name)
		}
	}
	tmp := name + partialSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create image part: %w", err)
	}
	s.cur, s.left, s.pos, s.synced = f, s.split, 0, 0
	s.tmp = append(s.tmp, tmp)
	s.final = append(s.final, name)
	if s.n > 1 {
		if _, err := f.Write(encodePartHeader(s.uuid, s.n)); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
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
	for i := len(s.tmp) - 1; i >= 0; i-- {
		if err := os.Rename(s.tmp[i], s.final[i]); err != nil {
			return fmt.Errorf("rename %s to %s: %w", s.tmp[i], s.final[i], err)
		}
	}
	// Parts of an older, longer image with the same name would confuse users.
	for n := s.n + 1; ; n++ {
		if err := os.Remove(PartName(s.base, n)); err != nil {
			break
		}
	}
	syncDir(filepath.Dir(s.base))
	return nil
}

// abort removes every temporary part.
func (s *partSink) abort() {
	if s.cur != nil {
		s.cur.Close()
	}
	for _, t := range s.tmp {
		os.Remove(t)
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
	ps := &partSet{name: name}
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
