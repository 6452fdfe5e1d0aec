package images

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// StreamReader reads one stream (a disk or partition) of an image at any
// offset. Every byte it returns has been checked against its hash.
type StreamReader struct {
	im   *Image
	id   int
	s    *streamIndex
	Meta *Stream

	mu      sync.Mutex
	cache   []cachedChunk // decoded chunks, least recently used evicted
	cached  int64         // bytes of plaintext in cache
	budget  int64         // how many it may hold (one chunk at least)
	tick    uint64
	a, b    *[]byte
	decoded atomic.Int64
}

// cachedChunk is a decoded extent of a StreamReader's cache.
type cachedChunk struct {
	ext  int
	data []byte
	used uint64
}

// Streams is the number of streams (disks or partitions) in the image.
func (im *Image) Streams() int { return len(im.Meta.Streams) }

// Stream returns a reader for stream i. It fails while the image is locked.
func (im *Image) Stream(i int) (*StreamReader, error) {
	if im.x == nil {
		return nil, errLocked
	}
	if i < 0 || i >= len(im.x.Streams) {
		return nil, fmt.Errorf("image %s has no stream %d", im.Name, i)
	}
	cs := im.h.ChunkSize
	return &StreamReader{im: im, id: i, s: &im.x.Streams[i], Meta: &im.Meta.Streams[i], a: newBuf(cs), b: newBuf(cs)}, nil
}

// SetCache lets ReadAt keep decoded chunks, up to bytes of them in all
// (always at least one chunk), for readers that come back to the same
// places, such as a filesystem's metadata. On a machine with little
// memory free (the rescue environment at 256 MB) the budget shrinks to an
// eighth of what is available, but not below 4 MiB.
func (sr *StreamReader) SetCache(bytes int64) {
	if avail, err := memAvailableBytes(); err == nil && avail > 0 {
		bytes = min(bytes, max(avail/8, 4<<20))
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.budget = bytes
}

// Decoded is how many chunks ReadAt has read, checked and decoded.
func (sr *StreamReader) Decoded() int64 { return sr.decoded.Load() }

// chunk returns extent ei decoded, from the cache or read now.
func (sr *StreamReader) chunk(ei int) ([]byte, error) {
	sr.tick++
	for i := range sr.cache {
		if c := &sr.cache[i]; c.ext == ei {
			c.used = sr.tick
			return c.data, nil
		}
	}
	data, _, err := sr.im.decodeInto(sr.s.Ext[ei].Ref, sr.a, sr.b)
	if err != nil {
		return nil, err
	}
	sr.decoded.Add(1)
	// A new entry while the cache has room, else the least recently used
	// one's buffer is reused.
	slot := len(sr.cache)
	if slot > 0 && sr.cached+int64(len(data)) > sr.budget {
		slot = 0
		for i := range sr.cache {
			if sr.cache[i].used < sr.cache[slot].used {
				slot = i
			}
		}
	} else {
		sr.cache = append(sr.cache, cachedChunk{})
	}
	c := &sr.cache[slot]
	sr.cached += int64(len(data) - len(c.data))
	c.ext, c.used, c.data = ei, sr.tick, append(c.data[:0], data...)
	return c.data, nil
}

// Size is the stream's size in bytes.
func (sr *StreamReader) Size() int64 { return sr.s.Size }

// ReadAt implements io.ReaderAt. Unused (not stored) ranges read as zeros.
func (sr *StreamReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	done := 0
	for len(p) > 0 {
		if off >= sr.s.Size {
			return done, io.EOF
		}
		ei := sr.s.find(off)
		e := sr.s.Ext[ei]
		rel := off - sr.s.off[ei]
		n := int(min(int64(len(p)), int64(e.Len)-rel))
		if e.Ref == refZero || e.Ref == refUnused {
			clear(p[:n])
		} else {
			data, err := sr.chunk(ei)
			if err != nil {
				return done, err
			}
			copy(p[:n], data[rel:])
		}
		p, off, done = p[n:], off+int64(n), done+n
	}
	return done, nil
}

// Chunk is one extent of a stream as ForEachChunk delivers it.
type Chunk struct {
	Index int   // extent number
	Off   int64 // in the stream
	Len   int64
	// Data is the chunk's verified plaintext; nil for Zero and Unused
	// chunks. It is only valid during the callback.
	Data   []byte
	Zero   bool     // all bytes zero (a hole, possibly long)
	Unused bool     // not stored; content undefined
	Sum    [32]byte // chunk hash of Data (zero for holes)
}

// ForEachChunk decodes the chunks overlapping [from, to) on every worker
// and calls fn for each, in order, on the caller's goroutine.
func (sr *StreamReader) ForEachChunk(ctx context.Context, from, to int64, fn func(Chunk) error) error {
	_, err := sr.forEach(ctx, from, to, walk{}, fn, nil)
	return err
}

// ChangeStats counts what Changes compared.
type ChangeStats struct {
	Same, Changed           int   // chunks (data and zero runs)
	SameBytes, ChangedBytes int64 // stream bytes
}

// Changes are the extents of [from, to) a target does not hold yet: what
// a delta restore writes, found before it writes anything.
type Changes struct {
	from, to int64
	exts     []int // extent numbers, in order
	Stats    ChangeStats
}

// Changes compares have, a target that already holds an older copy, with
// the stream in [from, to) (stream offset off is at off-from+at in have):
// the workers read each chunk's range and compare it with the chunk's hash
// (or with zeros), decoding nothing. Unused chunks are skipped; chunks
// wholly outside have count as changed. progress, when set, gets the
// stream bytes compared.
func (sr *StreamReader) Changes(ctx context.Context, from, to int64, have io.ReaderAt, at int64, progress func(int64)) (*Changes, error) {
	ch := &Changes{from: from, to: to}
	cst, err := sr.forEach(ctx, from, to, walk{have: have, at: at, dry: true}, func(c Chunk) error {
		ch.exts = append(ch.exts, c.Index)
		if progress != nil {
			progress(sr.span(c.Index, from, to))
		}
		return nil
	}, progress)
	ch.Stats = cst
	return ch, err
}

// span is how many bytes of [from, to) extent ei covers.
func (sr *StreamReader) span(ei int, from, to int64) int64 {
	return min(sr.s.off[ei]+int64(sr.s.Ext[ei].Len), to) - max(sr.s.off[ei], from)
}

// Needed is every extent of [from, to) that holds something (data or
// zeros), as Changes: what a restore of that range onto a target that
// holds nothing of it reads, for Check.
func (sr *StreamReader) Needed(from, to int64) *Changes {
	ch := &Changes{from: from, to: min(to, sr.s.Size)}
	for ei := sr.s.find(from); ei < len(sr.s.Ext) && sr.s.off[ei] < ch.to; ei++ {
		if sr.s.Ext[ei].Ref == refUnused {
			continue
		}
		ch.exts = append(ch.exts, ei)
		ch.Stats.Changed++
		ch.Stats.ChangedBytes += sr.span(ei, from, ch.to)
	}
	return ch
}

// Check reads, authenticates or hashes, and decompresses every record the
// changes need, each once, and keeps nothing: the check before the first
// write that a delta restore needs (issue #11), of only what it will
// write. progress, when set, gets the stream bytes of the changes
// checked (their Stats.ChangedBytes in all). It returns a *CorruptError
// naming the first bad record.
func (sr *StreamReader) Check(ctx context.Context, progress func(int64), chs ...*Changes) error {
	type item struct {
		ref    uint32 // the extent's record (or refZero)
		n      int64  // stream bytes it stands for
		decode bool   // a record not decoded for an earlier item
	}
	var items []item
	seen := map[uint32]bool{}
	for _, ch := range chs {
		for _, ei := range ch.exts {
			it := item{ref: sr.s.Ext[ei].Ref, n: sr.span(ei, ch.from, ch.to)}
			it.decode = it.ref != refZero && it.ref != refUnused && !seen[it.ref]
			seen[it.ref] = true
			items = append(items, it)
		}
	}
	im := sr.im
	window := 2*im.workers + 2
	bufs := newBufPool(2*(window+im.workers), storedCap(im.h.ChunkSize))
	produce := func(emit func(item) error) error {
		for _, it := range items {
			if err := emit(it); err != nil {
				return err
			}
		}
		return nil
	}
	work := func(it item) (int64, error) {
		if !it.decode {
			return it.n, nil
		}
		sp, op := bufs.Get(), bufs.Get()
		defer bufs.Put(sp)
		defer bufs.Put(op)
		_, err := im.decodeChecked(it.ref, (*sp)[:0], (*op)[:0], checkVerify)
		return it.n, err
	}
	consume := func(n int64) error {
		if progress != nil {
			progress(n)
		}
		return nil
	}
	return ordered(ctx, im.workers, window, produce, work, consume)
}

// ForEachOf is ForEachChunk over the changed extents only: fn sees each,
// decoded, in order, clipped to the range Changes compared.
func (sr *StreamReader) ForEachOf(ctx context.Context, ch *Changes, fn func(Chunk) error) error {
	if len(ch.exts) == 0 {
		return nil
	}
	_, err := sr.forEach(ctx, ch.from, ch.to, walk{only: ch.exts}, fn, nil)
	return err
}

// walk says what forEach visits and does.
type walk struct {
	have io.ReaderAt // compare with it: skip what it holds (at: see Changes)
	at   int64
	dry  bool // with have: only compare, decode nothing
	// only, when set, are the extents to visit (in order) instead of all
	// those in the range.
	only []int
}

// forEach visits the extents of [from, to) as w says, on every worker,
// and calls fn for each chunk that differs (all, without w.have), in
// order, on the caller's goroutine; same, when set, gets the bytes of
// those that do not.
func (sr *StreamReader) forEach(ctx context.Context, from, to int64, w walk, fn func(Chunk) error, same func(int64)) (ChangeStats, error) {
	have, at := w.have, w.at
	var cst ChangeStats
	im := sr.im
	cs := im.h.ChunkSize
	to = min(to, sr.s.Size)
	if from >= to {
		return cst, nil
	}
	type cres struct {
		c    Chunk
		buf  *[]byte
		same bool
	}
	window := 2*im.workers + 2
	// Each chunk in flight holds up to two buffers (stored and decoded).
	bufs := newBufPool(2*window+2, storedCap(cs))
	produce := func(emit func(int) error) error {
		if w.only != nil {
			for _, ei := range w.only {
				if err := emit(ei); err != nil {
					return err
				}
			}
			return nil
		}
		for ei := sr.s.find(from); ei < len(sr.s.Ext) && sr.s.off[ei] < to; ei++ {
			if err := emit(ei); err != nil {
				return err
			}
		}
		return nil
	}
	work := func(ei int) (cres, error) {
		e := sr.s.Ext[ei]
		c := Chunk{Index: ei, Off: sr.s.off[ei], Len: int64(e.Len)}
		if have != nil && e.Ref != refUnused {
			same, err := sr.holds(have, c, e.Ref, from, to, at, bufs)
			if err != nil {
				return cres{}, err
			}
			if same {
				return cres{c: c, same: true}, nil
			}
		}
		if w.dry {
			c.Unused = e.Ref == refUnused
			return cres{c: c}, nil
		}
		switch e.Ref {
		case refZero:
			c.Zero = true
		case refUnused:
			c.Unused = true
		default:
			sp, op := bufs.Get(), bufs.Get()
			data, holder, err := im.decodeInto(e.Ref, sp, op)
			if holder != sp {
				bufs.Put(sp)
			}
			if holder != op {
				bufs.Put(op)
			}
			if err != nil {
				return cres{}, err
			}
			r, _ := im.x.ref(e.Ref)
			c.Data, c.Sum = data, r.Sum
			return cres{c: c, buf: holder}, nil
		}
		return cres{c: c}, nil
	}
	consume := func(r cres) error {
		lo, hi := max(r.c.Off, from), min(r.c.Off+r.c.Len, to)
		switch {
		case r.same:
			cst.Same++
			cst.SameBytes += hi - lo
			if same != nil {
				same(hi - lo)
			}
			return nil
		case have != nil && r.c.Unused:
			if same != nil {
				same(hi - lo)
			}
			return nil // nothing to write
		case have != nil:
			cst.Changed++
			cst.ChangedBytes += hi - lo
		}
		err := fn(r.c)
		if r.buf != nil {
			bufs.Put(r.buf)
		}
		return err
	}
	err := ordered(ctx, im.workers, window, produce, work, consume)
	return cst, err
}

// holds reports whether have already holds chunk c (clipped to [from,
// to)) at its place: the same chunk hash for data, all zeros for a hole.
func (sr *StreamReader) holds(have io.ReaderAt, c Chunk, ref uint32, from, to, at int64, bufs *bufPool) (bool, error) {
	lo, hi := max(c.Off, from), min(c.Off+c.Len, to)
	if ref != refZero && (lo != c.Off || hi != c.Off+c.Len) {
		return false, nil // a clipped data chunk cannot be compared by hash
	}
	bp := bufs.Get()
	defer bufs.Put(bp)
	b := (*bp)[:cap(*bp)]
	h := sr.im.h.hash.new()
	for off := lo; off < hi; {
		n := min(int64(len(b)), hi-off)
		m, err := have.ReadAt(b[:n], off-from+at)
		if int64(m) < n {
			if err == io.EOF || err == nil {
				return false, nil // the target is shorter
			}
			return false, &ReadError{Offset: off - from + at + int64(m), Err: err}
		}
		if ref == refZero {
			if !allZero(b[:n]) {
				return false, nil
			}
		} else {
			h.Write(b[:n])
		}
		off += n
	}
	if ref == refZero {
		return true, nil
	}
	r, _ := sr.im.x.ref(ref)
	return [32]byte(h.Sum(nil)) == r.Sum, nil
}

// StoredBytes is how many stream bytes are held as data (not holes).
func (sr *StreamReader) StoredBytes() int64 {
	var n int64
	for _, e := range sr.s.Ext {
		if e.Ref != refZero && e.Ref != refUnused {
			n += int64(e.Len)
		}
	}
	return n
}

func newBuf(chunkSize int) *[]byte {
	b := make([]byte, 0, storedCap(chunkSize))
	return &b
}

// storedCap is room for a chunk of up to chunkSize bytes in any stored
// form: compressed (zstd's and S2's worst case) with an AEAD tag.
func storedCap(chunkSize int) int { return chunkSize + chunkSize/8 + 64 }

// decodeInto decodes record ri using the two buffers, and says which one
// now holds the plaintext (raw records decrypt in place in sp; compressed
// ones decompress into op).
func (im *Image) decodeInto(ri uint32, sp, op *[]byte) ([]byte, *[]byte, error) {
	data, err := im.decode(ri, (*sp)[:0], (*op)[:0])
	if err != nil || len(data) == 0 {
		return nil, nil, err
	}
	for _, h := range []*[]byte{sp, op} {
		if cap(*h) > 0 && &(*h)[:1][0] == &data[0] {
			*h = data
			return data, h, nil
		}
	}
	// decode had to allocate: keep the new array in op.
	*op = data
	return data, op, nil
}

// UsedRanges lists the stream's ranges that are not unused (data and zero
// runs), joined: what a copy of the stream must hold.
func (sr *StreamReader) UsedRanges() []Range {
	var out []Range
	for i, e := range sr.s.Ext {
		if e.Ref == refUnused {
			continue
		}
		off := sr.s.off[i]
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == off {
			out[k].Len += int64(e.Len)
			continue
		}
		out = append(out, Range{Off: off, Len: int64(e.Len)})
	}
	return out
}
