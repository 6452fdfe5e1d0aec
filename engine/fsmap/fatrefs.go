package fsmap

import "strings"

// The reference walks of FAT and exFAT: the directory tree, from the root,
// with the cluster chain of every entry followed. A chain that runs into a
// cluster the allocation metadata calls free (or bad, or outside the
// volume), that loops, or that shares clusters with another chain, means
// the filesystem is damaged, and fsck.fat / fsck.exfat then decide from
// the chains, not from the FAT or bitmap alone: copy it sector by sector.

// fatCache reads FAT entries through a one-page cache: chains are mostly
// contiguous, so a page serves many lookups.
type fatCache struct {
	d     *dev
	off   int64 // byte offset of the FAT
	bits  int64 // 12, 16 or 32
	n     int64 // entries
	what  string
	buf   []byte
	first int64 // first entry in buf
	cnt   int64 // entries in buf
}

func (f *fatCache) get(c int64) (uint32, error) {
	if c < 0 || c >= f.n {
		return 0, fallbackf("%s: entry %d is past the %d entries", f.what, c, f.n)
	}
	if c < f.first || c >= f.first+f.cnt {
		per := int64(16384)
		if f.bits == 12 {
			per = f.n + f.n%2 // at most 4086 entries: the whole FAT
		}
		f.first = c / per * per
		f.cnt = min(per, f.n-f.first)
		nb := (f.cnt*f.bits + 7) / 8
		if int64(len(f.buf)) < nb+1 {
			f.buf = make([]byte, nb+1)
		}
		clear(f.buf)
		if err := f.d.read(f.buf[:nb], f.off+f.first*f.bits/8, f.what); err != nil {
			f.cnt = 0
			return 0, err
		}
	}
	i := c - f.first
	switch f.bits {
	case 12:
		o := i * 3 / 2
		w := uint32(f.buf[o]) | uint32(f.buf[o+1])<<8
		if i%2 == 0 {
			return w & 0xFFF, nil
		}
		return w >> 4, nil
	case 16:
		return uint32(le16(f.buf, int(i*2))), nil
	}
	return le32(f.buf, int(i*4)), nil
}

// fatWalk walks a FAT12/16/32 directory tree.
type fatWalk struct {
	d                *dev
	fat              *fatCache
	bits             int64
	last             int64 // one past the last cluster number
	bad, eoc         uint32
	dataOff, cb      int64
	bud              budget
	queue            []fatDir
	clusterBuf       []byte
	fat32            bool
	rootOff, rootLen int64           // FAT12/16 fixed root directory
	rootCluster      int64           // FAT32
	cut              func(off int64) // Map.Cuts, or nil
}

type fatDir struct {
	cluster int64
	path    string
}

func (w *fatWalk) damaged(format string, args ...any) error {
	return fallbackf(format+" (damaged filesystem: run fsck.fat on the original)", args...)
}

// walk checks every chain reachable from the root directory.
func (w *fatWalk) walk() error {
	if w.fat32 {
		w.queue = append(w.queue, fatDir{w.rootCluster, "/"})
	} else {
		buf := make([]byte, w.rootLen)
		if err := w.d.read(buf, w.rootOff, "FAT root directory"); err != nil {
			return err
		}
		if _, err := w.entries(buf, "/"); err != nil {
			return err
		}
	}
	for len(w.queue) > 0 {
		dir := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		if err := w.chain(dir.cluster, dir.path, true, false); err != nil {
			return err
		}
	}
	return nil
}

// chain follows the chain from start; for a directory it reads and parses
// each cluster. With cut, it gives w.cut where each run of the chain's
// contiguous clusters starts and ends.
func (w *fatWalk) chain(start int64, path string, isDir, cut bool) error {
	what := "file"
	if isDir {
		what = "directory"
	}
	c := start
	ended := false // past the end-of-directory marker: the rest is unused
	prev := int64(-1)
	at := func(c int64) int64 { return w.dataOff + (c-2)*w.cb }
	for {
		if c < 2 || c >= w.last {
			return w.damaged("FAT %s %s has cluster %d in its chain, outside the %d clusters", what, path, c, w.last-2)
		}
		if !w.bud.spend(1) {
			return w.damaged("FAT cluster chains loop or cross (at %s %s)", what, path)
		}
		v, err := w.fat.get(c)
		if err != nil {
			return err
		}
		if w.fat32 {
			v &= 0x0FFFFFFF
		}
		switch {
		case v == 0:
			return w.damaged("FAT %s %s uses cluster %d that the FAT marks free", what, path, c)
		case v == w.bad:
			return w.damaged("FAT %s %s uses cluster %d that the FAT marks bad", what, path, c)
		}
		if cut && c != prev+1 {
			if prev >= 0 {
				w.cut(at(prev + 1))
			}
			w.cut(at(c))
		}
		prev = c
		if isDir && !ended {
			if w.clusterBuf == nil {
				w.clusterBuf = make([]byte, w.cb)
			}
			if err := w.d.read(w.clusterBuf, w.dataOff+(c-2)*w.cb, "FAT directory"); err != nil {
				return err
			}
			if ended, err = w.entries(w.clusterBuf, path); err != nil {
				return err
			}
		}
		if v >= w.eoc {
			if cut {
				w.cut(at(c + 1))
			}
			return nil
		}
		c = int64(v)
	}
}

// entries parses directory entries, queueing subdirectories and following
// files' chains; end reports the end-of-directory marker.
func (w *fatWalk) entries(buf []byte, dir string) (end bool, err error) {
	for o := 0; o+32 <= len(buf); o += 32 {
		e := buf[o : o+32]
		switch {
		case e[0] == 0:
			return true, nil
		case e[0] == 0xE5, e[11] == 0x0F, e[11]&0x08 != 0:
			continue // deleted, long name, volume label
		}
		name := strings.TrimRight(string(e[0:8]), " ")
		if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
			name += "." + ext
		}
		if name == "." || name == ".." {
			continue
		}
		start := int64(le16(e, 26))
		if w.fat32 {
			start |= int64(le16(e, 20)) << 16
		}
		if start == 0 {
			continue // empty file
		}
		path := strings.TrimSuffix(dir, "/") + "/" + name
		if e[11]&0x10 != 0 {
			if len(w.queue) > 1<<20 {
				return false, w.damaged("FAT directories nest or loop too deeply (at %s)", path)
			}
			w.queue = append(w.queue, fatDir{start, path})
			continue
		}
		if err := w.chain(start, path, false, w.cut != nil && int64(le32(e, 28)) >= CutMinFile); err != nil {
			return false, err
		}
	}
	return false, nil
}

// exfatWalk walks an exFAT directory tree.
type exfatWalk struct {
	d        *dev
	fat      *fatCache
	c        cover
	clusters int64
	heap, cb int64
	bud      budget
	queue    []exfatChain
	buf      []byte
	pending  bool // a File entry awaits its Stream Extension
	ended    bool // past the directory's end marker
	pendDir  bool
	cut      func(off int64) // Map.Cuts, or nil
}

type exfatChain struct {
	first, length int64 // length in bytes; -1: follow the FAT to its end
	noFat, isDir  bool
	what          string
	cut           bool // a large file's data: its runs become Map.Cuts
}

func (w *exfatWalk) damaged(format string, args ...any) error {
	return fallbackf(format+" (damaged filesystem: run fsck.exfat on the original)", args...)
}

// covered checks clusters [c, c+n), a run of ch.
func (w *exfatWalk) covered(ch exfatChain, c, n int64) error {
	if c < 2 || n > w.clusters+2-c {
		return w.damaged("exFAT %s has cluster %d in its chain, outside the %d clusters", ch.what, c, w.clusters)
	}
	if ch.cut && w.cut != nil {
		w.cut(w.heap + (c-2)*w.cb)
		w.cut(w.heap + (c+n-2)*w.cb)
	}
	if w.c.has(w.heap+(c-2)*w.cb, n*w.cb) {
		return nil
	}
	for k := c; k < c+n; k++ {
		if !w.c.has(w.heap+(k-2)*w.cb, w.cb) {
			return w.damaged("exFAT %s uses cluster %d that the allocation bitmap marks free", ch.what, k)
		}
	}
	return nil
}

// walk checks the chain ch and, for a directory, everything in it.
func (w *exfatWalk) walk(ch exfatChain) error {
	w.queue = append(w.queue, ch)
	for len(w.queue) > 0 {
		ch := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		if err := w.chain(ch); err != nil {
			return err
		}
	}
	return nil
}

func (w *exfatWalk) chain(ch exfatChain) error {
	n := int64(-1) // clusters, when the length says
	if ch.length >= 0 {
		n = (ch.length + w.cb - 1) / w.cb
	}
	if n == 0 {
		return nil
	}
	if ch.isDir {
		w.pending, w.ended = false, false
	}
	if ch.noFat {
		if err := w.covered(ch, ch.first, n); err != nil {
			return err
		}
		if !w.bud.spend(n) {
			return w.damaged("exFAT cluster chains overlap or loop (at the %s)", ch.what)
		}
		if ch.isDir {
			for k := range n {
				if err := w.dir(ch.first + k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	c := ch.first
	runStart, runLen := c, int64(0)
	for k := int64(0); n < 0 || k < n; k++ {
		if c < 2 || c >= w.clusters+2 {
			return w.damaged("exFAT %s has cluster %d in its chain, outside the %d clusters", ch.what, c, w.clusters)
		}
		if !w.bud.spend(1) {
			return w.damaged("exFAT cluster chains overlap or loop (at the %s)", ch.what)
		}
		if runLen > 0 && c == runStart+runLen {
			runLen++
		} else {
			if runLen > 0 {
				if err := w.covered(ch, runStart, runLen); err != nil {
					return err
				}
			}
			runStart, runLen = c, 1
		}
		if ch.isDir {
			if err := w.dir(c); err != nil {
				return err
			}
		}
		if n >= 0 && k == n-1 {
			break
		}
		v, err := w.fat.get(c)
		if err != nil {
			return err
		}
		if v >= 0xFFFFFFF8 {
			if n >= 0 {
				return w.damaged("exFAT %s's cluster chain ends after %d of its %d clusters", ch.what, k+1, n)
			}
			break
		}
		c = int64(v)
	}
	return w.covered(ch, runStart, runLen)
}

// dir parses one directory cluster, in pieces: clusters reach 32 MiB.
func (w *exfatWalk) dir(c int64) error {
	if w.ended {
		return nil
	}
	if w.buf == nil {
		w.buf = make([]byte, min(w.cb, 64<<10))
	}
	for o := int64(0); o < w.cb; o += int64(len(w.buf)) {
		if err := w.d.read(w.buf, w.heap+(c-2)*w.cb+o, "exFAT directory"); err != nil {
			return err
		}
		end, err := w.entries(w.buf)
		if err != nil || end {
			w.ended = end
			return err
		}
	}
	return nil
}

// entries parses directory entries; end reports the end-of-directory
// marker.
func (w *exfatWalk) entries(buf []byte) (end bool, err error) {
	for o := 0; o+32 <= len(buf); o += 32 {
		e := buf[o : o+32]
		t := e[0]
		if t == 0 {
			return true, nil
		}
		if t&0x80 == 0 {
			continue // unused or deleted
		}
		first, length := int64(le32(e, 20)), int64(min(le64(e, 24), 1<<62))
		var ch exfatChain
		switch {
		case t == 0x85: // File
			w.pending, w.pendDir = true, le16(e, 4)&0x10 != 0
			continue
		case t == 0x81:
			ch = exfatChain{first, length, false, false, "allocation bitmap", false}
		case t == 0x82:
			ch = exfatChain{first, length, false, false, "up-case table", false}
		case t == 0xC0 && w.pending: // Stream Extension
			w.pending = false
			if e[1]&1 == 0 {
				continue // no allocation
			}
			what := "file"
			if w.pendDir {
				what = "directory"
			}
			ch = exfatChain{first, length, e[1]&2 != 0, w.pendDir, what + " at cluster " + itoa(first), !w.pendDir && length >= CutMinFile}
		case t&0x40 != 0 && t != 0xC0 && t != 0xC1 && e[1]&1 != 0: // other secondary with an allocation
			ch = exfatChain{first, length, e[1]&2 != 0, false, "directory entry's allocation at cluster " + itoa(first), false}
		default:
			continue
		}
		if err := w.push(ch); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (w *exfatWalk) push(ch exfatChain) error {
	if ch.length == 0 {
		return nil
	}
	if len(w.queue) > 1<<20 {
		return w.damaged("exFAT directories nest or loop too deeply")
	}
	if !ch.isDir {
		return w.chain(ch) // no reads: follow it now, keep the queue short
	}
	w.queue = append(w.queue, ch)
	return nil
}
