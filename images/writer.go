package images

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// WriterOptions configure a new image.
type WriterOptions struct {
	// ChunkSize is the average chunk size (0: DefaultChunkSize); chunks
	// are a quarter to four times that, at most 16 MiB.
	ChunkSize   int
	Compression Level // default LevelNone; the CLI defaults to LevelNormal
	// Password encrypts the image when set, with Cipher (default AES-256-GCM).
	Password []byte
	Cipher   Cipher
	KDF      KDFCost
	// Mode is the permission of every file the writer creates: each part,
	// under its temporary name and its final one. 0 means DefaultMode
	// (0600); CheckMode says what else is allowed. The umask does not
	// change it.
	Mode fs.FileMode
	// SplitSize cuts the image into parts of at most this many bytes.
	SplitSize int64
	// Overwrite allows replacing an existing image of the same name.
	Overwrite   bool
	Workers     int // 0: one per CPU
	ToolVersion string
	Created     time.Time // zero: now
	// Parent makes the image a point of a chain: chunks the parent (or the
	// points it refers to) already holds are referred to, not stored
	// again. It must be open and unlocked with its chain attached; its
	// chunking is used, whatever ChunkSize says. An incremental's parent
	// is the latest point, a differential's the full backup.
	Parent *Image
}

// Writer writes one image: Create or NewStreamWriter, then AddStream for
// every disk or partition, then Commit (or Abort). Its methods are not safe
// for concurrent use.
type Writer struct {
	name   string
	opts   WriterOptions
	h      *header
	hbytes []byte
	uuid   [16]byte
	aead   cipher.AEAD
	enc    *zstd.Encoder
	// chunking says how streams are cut; header.ChunkSize is its Max.
	chunking chunking

	sink *partSink
	off  int64 // logical bytes written
	idx  index

	seen   sync.Map // [32]byte -> struct{}: plaintexts claimed by a record
	byHash map[[32]byte]uint32
	done   bool

	// For a point of a chain: the parent's records by plaintext hash (as
	// foreign records of this image), which of them are used, and the
	// extents that refer to them (numbered once the own records are).
	parentRefs    map[[32]byte]foreignRecord
	parentReaders sync.Pool // *StreamReader of the parent, for patch bases
	foreignBy     map[[32]byte]uint32
	foreignExt    []foreignUse
}

type foreignUse struct {
	stream, ext int
	f           uint32
}

// Create starts an image at path. Nothing appears under path until Commit:
// the parts are written as path.partial files, fsynced and renamed.
func Create(path string, o WriterOptions) (*Writer, error) {
	w, err := newWriter(path, o)
	if err != nil {
		return nil, err
	}
	w.sink = &partSink{base: path, split: o.SplitSize, uuid: w.uuid, overwrite: o.Overwrite, mode: w.opts.Mode}
	if err := w.sink.start(); err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.writeHeader(); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// NewStreamWriter writes an image to a pipe or an upload stream. It cannot
// split; the caller owns out and makes it durable.
func NewStreamWriter(out io.Writer, name string, o WriterOptions) (*Writer, error) {
	if o.SplitSize != 0 {
		return nil, errors.New("an image written to a stream cannot be split; write to a file to use split parts")
	}
	w, err := newWriter(name, o)
	if err != nil {
		return nil, err
	}
	w.sink = &partSink{stream: out}
	if err := w.writeHeader(); err != nil {
		return nil, err
	}
	return w, nil
}

func newWriter(name string, o WriterOptions) (*Writer, error) {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < minChunkSize || o.ChunkSize > maxChunkSize || o.ChunkSize%4096 != 0 {
		return nil, fmt.Errorf("chunk size %d must be a multiple of 4096 between %d and %d", o.ChunkSize, minChunkSize, maxChunkSize)
	}
	if o.SplitSize != 0 && o.SplitSize < minLibSplit {
		return nil, fmt.Errorf("split size %d is too small", o.SplitSize)
	}
	if !o.Compression.valid() || !o.Cipher.valid() {
		return nil, fmt.Errorf("invalid compression %v or cipher %v", o.Compression, o.Cipher)
	}
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	if err := CheckMode(o.Mode); err != nil {
		return nil, err
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	w := &Writer{name: name, opts: o, byHash: map[[32]byte]uint32{}, chunking: newChunking(o.ChunkSize)}
	rand.Read(w.uuid[:])
	parentUUID := ""
	if p := o.Parent; p != nil {
		if p.x == nil {
			return nil, fmt.Errorf("parent %s: %w", p.Name, errLocked)
		}
		if p.h.Chunking == nil {
			return nil, fmt.Errorf("image %s records no chunking parameters; start a new full backup", p.Name)
		}
		if len(p.x.Chain) > 0 && p.chain == nil {
			return nil, fmt.Errorf("parent %s: %w", p.Name, ErrChainMissing)
		}
		if len(p.x.Chain)+1 > maxChain {
			return nil, fmt.Errorf("the chain of %s has %d points, the most an image may refer to; merge it (lifeboat merge) or start a new full backup", p.Name, maxChain)
		}
		w.chunking = *p.h.Chunking
		parentUUID = p.h.ImageUUID
		w.idx.Chain = append(append([][16]byte(nil), p.x.Chain...), p.uuid)
		w.parentRefs = make(map[[32]byte]foreignRecord, len(p.x.Records)+len(p.x.Foreign))
		w.foreignBy = map[[32]byte]uint32{}
		for _, f := range p.x.Foreign {
			w.parentRefs[f.Sum] = f
		}
		self := uint32(len(w.idx.Chain) - 1)
		for _, r := range p.x.Records {
			w.parentRefs[r.Sum] = foreignRecord{Image: self, record: r}
		}
		for sum := range w.parentRefs {
			w.seen.Store(sum, struct{}{})
		}
	}
	w.h = &header{
		ImageUUID:   formatUUID(w.uuid),
		ParentUUID:  parentUUID,
		Created:     o.Created.UTC().Truncate(time.Second),
		ToolVersion: o.ToolVersion,
		ChunkSize:   w.chunking.Max,
		Chunking:    &w.chunking,
		Compression: o.Compression,
		SplitSize:   o.SplitSize,
		hash:        hashBLAKE3,
	}
	if o.Parent != nil {
		w.h.hash = o.Parent.h.hash // the chain's lookups compare like with like
	}
	w.h.ChunkHash = w.h.hash.headerName()
	if len(o.Password) > 0 {
		if o.Cipher == CipherNone {
			o.Cipher = CipherAES256GCM
			w.opts.Cipher = o.Cipher
		}
		if err := checkNewKDF(name, o.KDF.orDefault().params()); err != nil {
			return nil, err
		}
		var err error
		w.aead, w.h.KDF, w.h.WrappedKey, err = newKey(o.Cipher, o.Password, o.KDF, w.uuid)
		if err != nil {
			return nil, err
		}
		w.h.Cipher = o.Cipher
	} else if o.Cipher != CipherNone {
		return nil, errors.New("a cipher was chosen but no password given")
	}
	if o.Compression != LevelNone {
		// Measured on make bench's cpu data set (text, random, copies and
		// small files in ext4; issue #19): klauspost's SpeedDefault, which
		// normal was, costs 1.35× SpeedFastest's CPU for 3 % less output
		// at 512 KiB chunks, and SpeedBetterCompression 2× for 3.6 %.
		// fast is S2 (below): half SpeedFastest's CPU for about 25 % more.
		// Every block's literals are entropy-coded, as C zstd does:
		// otherwise klauspost stores a block without repeats raw, and
		// base64 (mail, certificates) and hex lose their 25 and 50 %
		// (TestLiteralOnlyDataCompresses); it costs 1.6 % of a backup's
		// CPU on make bench's cpu set, where it changes nothing.
		lvl := map[Level]zstd.EncoderLevel{LevelNormal: zstd.SpeedFastest, LevelHigh: zstd.SpeedDefault}[o.Compression]
		var err error
		if o.Compression != LevelFast {
			w.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(o.Workers),
				zstd.WithEncoderCRC(true), zstd.WithWindowSize(windowFor(w.chunking.Max)), zstd.WithLowerEncoderMem(true),
				zstd.WithAllLitEntropyCompression(true))
		}
		if err != nil {
			return nil, err
		}
	}
	return w, nil
}

func windowFor(chunk int) int {
	w := zstd.MinWindowSize
	for w < chunk && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return w
}

func (w *Writer) writeHeader() error {
	b, err := encodeHeader(w.h)
	if err != nil {
		return err
	}
	// The reader's rules, before a byte is written.
	if _, err := decodeHeader(b); err != nil {
		return internalError("the header it would write is unreadable", err)
	}
	w.hbytes = b
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	n, err := w.sink.Write(b)
	w.off += int64(n)
	return err
}

// UUID is the new image's identity.
func (w *Writer) UUID() string { return w.h.ImageUUID }

// ReopenOptions open what w wrote with w's own key: an encrypted image is
// read back without its password (a second key derivation, Argon2id's
// 0.3 CPU-s, for what the writer already proved when it wrapped the key).
func (w *Writer) ReopenOptions() OpenOptions { return OpenOptions{key: w.aead} }

// StreamOptions configure AddStream.
type StreamOptions struct {
	// Progress, when set, is called on the caller's goroutine with the
	// number of source bytes just finished (unused ranges count as 0).
	Progress func(n int64)
	// Used, when not nil, lists the only byte ranges of the source that are
	// read and stored (sorted, not overlapping, inside the stream); the
	// rest is recorded as unused and reads back as zeros. Gaps shorter than
	// SmallGap are stored as zeros instead (not read), so chunks are not
	// cut into slivers by a fragmented filesystem.
	Used []Range
	// Cuts, when not nil, are stream offsets (sorted) where a chunk must
	// start: where a file's data starts or ends, so that a copy of the
	// file elsewhere in the stream is cut into the same chunks and stored
	// once. Any cuts, or none, store the same bytes.
	Cuts []int64
}

// Range is a run of bytes of a stream.
type Range struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// SmallGap is the longest unused gap AddStream fills with zeros rather than
// recording as unused.
const SmallGap = 1 << 20

// StreamWork is how many source bytes AddStream processes (reads or fills
// with zeros) for a stream of size bytes with the given used ranges: the
// total its Progress calls add up to.
func StreamWork(size int64, used []Range) int64 {
	if used == nil {
		return size
	}
	var n, pos int64
	for _, r := range used {
		if g := r.Off - pos; g > 0 && g < SmallGap {
			n += g
		}
		n += r.Len
		pos = r.Off + r.Len
	}
	return n
}

// StreamStats says what AddStream stored.
type StreamStats struct {
	Chunks, ZeroChunks, DupChunks, Records int
	Stored                                 int64 // bytes written for this stream's records
	DataBytes                              int64 // stream bytes held as data: not zero chunks
	UnusedBytes                            int64 // stream bytes recorded as unused (not read)
	// ParentChunks and ParentBytes are the chunks (and their stream
	// bytes) an earlier point of the chain already holds.
	ParentChunks int
	ParentBytes  int64
}

type wjob struct {
	ext    int     // extent number in the stream
	buf    *[]byte // data; nil for a zero or unused extent
	zero   int64   // length of a zero extent
	unused int64   // length of an unused extent
	off    int64   // where the extent starts in the stream
}

type wres struct {
	ext     int
	zero    int64 // > 0: a zero extent of this length
	unused  int64 // > 0: an unused extent of this length
	dup     bool
	sum     [32]byte
	payload *[]byte // stored bytes
	buf     *[]byte // to release
	codec   Codec
	rawLen  int
}

// AddStream copies size bytes of src into the image as the next stream,
// reading sequentially, cutting it into content-defined chunks (chunker.go)
// and compressing, hashing and encrypting them on every worker. ctx cancels it.
func (w *Writer) AddStream(ctx context.Context, src io.ReaderAt, size int64, so StreamOptions) (StreamStats, error) {
	var st StreamStats
	if w.done {
		return st, errors.New("image already committed")
	}
	ck := w.chunking
	sid := uint32(len(w.idx.Streams))
	var ext []extent
	pendingDup := map[int][32]byte{}
	// Between the cutter and consume at most window chunks are in flight,
	// each holding two buffers (its bytes and their compressed form).
	window := 3*w.opts.Workers + 2
	pool := newBufPool(2*window+4, storedCap(ck.Max))

	produce := func(emit func(wjob) error) error {
		n := 0
		var pos int64 // stream offset of the next extent
		c := newCutter(ck, pool.Get,
			func(buf *[]byte, zero int64) error {
				next := pos + zero
				if buf != nil {
					next += int64(len(*buf)) // before a worker may reuse the buffer
				}
				err := emit(wjob{ext: n, buf: buf, zero: zero, off: pos})
				if err != nil && buf != nil {
					pool.Put(buf)
				}
				pos = next
				n++
				return err
			})
		cuts := so.Cuts
		// add cuts the n bytes at stream offset off, one piece, starting a
		// chunk at each cut inside; fill writes the piece's bytes, in order,
		// into the chunk buffers (cutter.feed).
		add := func(off, n int64, fill func([]byte) error) error {
			for end := off + n; off < end; {
				for len(cuts) > 0 && cuts[0] < off {
					cuts = cuts[1:]
				}
				k := end - off
				if len(cuts) > 0 && cuts[0] < end {
					if cuts[0] == off {
						cuts = cuts[1:]
						if err := c.flush(); err != nil {
							return err
						}
						continue
					}
					k = cuts[0] - off
				}
				if err := c.feed(k, fill); err != nil {
					return err
				}
				off += k
			}
			return nil
		}
		copyRange := func(off, end int64) error {
			for off < end {
				n := min(readSize, end-off)
				at := off // where fill reads next
				err := add(off, n, func(dst []byte) error {
					if m, err := src.ReadAt(dst, at); m < len(dst) {
						if err == nil || err == io.EOF {
							err = io.ErrUnexpectedEOF
						}
						return &ReadError{Offset: at + int64(m), Err: err}
					}
					at += int64(len(dst))
					return nil
				})
				if err != nil {
					return err
				}
				off += n
			}
			return nil
		}
		fillZeros := func(off, n int64) error {
			return add(off, n, func(dst []byte) error {
				clear(dst)
				return nil
			})
		}
		err := func() error {
			if so.Used == nil {
				return copyRange(0, size)
			}
			var done int64 // end of the last used range
			gap := func(end int64) error {
				switch g := end - done; {
				case g <= 0:
					return nil
				case g < SmallGap:
					return fillZeros(done, g)
				default:
					if err := c.flush(); err != nil {
						return err
					}
					err := emit(wjob{ext: n, unused: g, off: done})
					pos = done + g // the cutter is flushed: pos was done
					n++
					return err
				}
			}
			for _, r := range so.Used {
				if r.Off < done || r.Len < 0 || r.Off+r.Len > size {
					return fmt.Errorf("internal error: used range %d+%d is out of order or outside the stream (%d bytes)", r.Off, r.Len, size)
				}
				if err := gap(r.Off); err != nil {
					return err
				}
				if err := copyRange(r.Off, r.Off+r.Len); err != nil {
					return err
				}
				done = r.Off + r.Len
			}
			return gap(size)
		}()
		if err != nil {
			c.release(pool.Put)
			return err
		}
		return c.flush()
	}
	work := func(j wjob) (wres, error) {
		if j.buf == nil {
			return wres{ext: j.ext, zero: j.zero, unused: j.unused}, nil
		}
		b := *j.buf
		r := wres{ext: j.ext, buf: j.buf, rawLen: len(b)}
		r.sum = w.h.hash.sum(b)
		if _, loaded := w.seen.LoadOrStore(r.sum, struct{}{}); loaded {
			r.dup = true
			return r, nil
		}
		// Compressed bytes go to a second buffer; encryption then works in
		// place on whichever buffer holds the payload (both have room for
		// the tag).
		r.codec = CodecRaw
		if patch := w.patchFor(sid, j.off, b); patch != nil {
			// b is hashed; the buffer now carries the patch instead.
			*j.buf = append((*j.buf)[:0], patch...)
			b, r.codec = *j.buf, CodecPatch
		}
		payload, holder := b, j.buf
		if w.opts.Compression != LevelNone {
			op := pool.Get()
			var out []byte
			codec := CodecZstd
			if w.enc != nil {
				out = w.enc.EncodeAll(b, (*op)[:0])
			} else {
				out, codec = s2.Encode((*op)[:cap(*op)], b), CodecS2
			}
			// Store raw what does not shrink by at least 1/64: cheaper to read.
			if len(out) < len(b)-len(b)/64 {
				*op = out
				payload, holder, r.codec = out, op, r.codec|codec
			} else {
				pool.Put(op)
			}
		}
		if w.aead != nil {
			payload = w.aead.Seal(payload[:0], chunkNonce(w.aead, sid, uint64(j.ext)), payload, chunkAD(w.uuid, sid, uint64(j.ext), &r.sum))
		}
		*holder = payload
		r.payload = holder
		if holder == j.buf {
			r.buf = nil
		}
		return r, nil
	}
	consume := func(r wres) error {
		defer func() {
			if r.buf != nil {
				pool.Put(r.buf)
			}
			if r.payload != nil {
				pool.Put(r.payload)
			}
		}()
		st.Chunks++
		n := int64(r.rawLen)
		switch {
		case r.unused > 0:
			ext = append(ext, extent{Len: uint64(r.unused), Ref: refUnused})
			st.UnusedBytes += r.unused
			n = 0
		case r.zero > 0:
			ext = append(ext, extent{Len: uint64(r.zero), Ref: refZero})
			st.ZeroChunks++
			n = r.zero
		case r.dup:
			pendingDup[len(ext)] = r.sum
			ext = append(ext, extent{Len: uint64(r.rawLen)})
			st.DupChunks++
			st.DataBytes += n
		default:
			if len(w.idx.Records) >= maxRecord {
				return errors.New("image has too many records")
			}
			p := *r.payload
			// The reader's limits (decodeIndex), checked as the record is
			// made, not after the image is done.
			if r.rawLen <= 0 || r.rawLen > w.chunking.Max || len(p) == 0 || int64(len(p)) > math.MaxUint32 {
				return internalError(fmt.Sprintf("chunk %d of stream %d has %d bytes (%d stored); the largest allowed is %d", r.ext, sid, r.rawLen, len(p), w.chunking.Max), nil)
			}
			rec := record{Off: w.off, Len: uint32(len(p)), RawLen: uint32(r.rawLen), Codec: r.codec,
				Stream: sid, Chunk: uint64(r.ext), CRC: crc32c(p), Sum: r.sum}
			if err := w.write(p); err != nil {
				return err
			}
			id := uint32(len(w.idx.Records))
			w.idx.Records = append(w.idx.Records, rec)
			w.byHash[r.sum] = id
			ext = append(ext, extent{Len: uint64(r.rawLen), Ref: id})
			st.Records++
			st.Stored += int64(len(p))
			st.DataBytes += n
		}
		if so.Progress != nil {
			so.Progress(n)
		}
		return nil
	}
	err := ordered(ctx, w.opts.Workers, window, produce, work, consume)
	if err != nil {
		return st, err
	}
	for e, sum := range pendingDup {
		if id, ok := w.byHash[sum]; ok {
			ext[e].Ref = id
			continue
		}
		fr, ok := w.parentRefs[sum]
		if !ok {
			return st, fmt.Errorf("internal error: extent %d duplicates a record that was never written", e)
		}
		f, ok := w.foreignBy[sum]
		if !ok {
			f = uint32(len(w.idx.Foreign))
			w.idx.Foreign = append(w.idx.Foreign, fr)
			w.foreignBy[sum] = f
		}
		w.foreignExt = append(w.foreignExt, foreignUse{int(sid), e, f})
		st.ParentChunks++
		st.ParentBytes += int64(ext[e].Len)
		st.DupChunks--
	}
	w.idx.Streams = append(w.idx.Streams, streamIndex{Size: size, Ext: ext})
	return st, nil
}

// ReadError is a failure to read the source at an offset.
type ReadError struct {
	Offset int64
	Err    error
}

func (e *ReadError) Error() string { return fmt.Sprintf("read error at byte %d: %v", e.Offset, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// Commit writes the metadata, index and trailer, then (for files) syncs and
// renames the parts into place. meta must describe every stream added, in
// order.
func (w *Writer) Commit(meta *Metadata) error {
	if w.done {
		return errors.New("image already committed")
	}
	if len(meta.Streams) != len(w.idx.Streams) {
		return fmt.Errorf("metadata describes %d streams, the image holds %d", len(meta.Streams), len(w.idx.Streams))
	}
	meta.Version = MetaVersion
	for i := range meta.Streams {
		meta.Streams[i].Size = w.idx.Streams[i].Size
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	for _, u := range w.foreignExt {
		w.idx.Streams[u.stream].Ext[u.ext].Ref = uint32(len(w.idx.Records)) + u.f
	}
	if uint64(len(w.idx.Records))+uint64(len(w.idx.Foreign)) > maxRecord {
		return errors.New("image has too many records")
	}
	ib := w.idx.encode()
	// The index must pass the reader's own validation (records tiling the
	// data area, sizes within the chunk size, extents adding up) before
	// it is written.
	if _, err := decodeIndex(ib, w.h.ChunkSize, int64(len(w.hbytes)), w.off); err != nil {
		return internalError("the index it would write is invalid", err)
	}
	if w.aead != nil {
		ib = w.aead.Seal(nil, chunkNonce(w.aead, indexNonceStrm, indexNonceChunk), ib, indexAD(w.uuid, w.hbytes, mb))
	}
	t := trailer{UUID: w.uuid, MetaOff: w.off, MetaLen: int64(len(mb)), SplitSize: w.opts.SplitSize}
	t.IndexOff = t.MetaOff + t.MetaLen
	t.IndexLen = int64(len(ib))
	t.TotalLen = t.IndexOff + t.IndexLen + TrailerSize
	h := sha256.New()
	h.Write(mb)
	h.Write(ib)
	h.Sum(t.Sum[:0])
	if err := w.write(mb); err != nil {
		return err
	}
	if err := w.write(ib); err != nil {
		return err
	}
	// The trailer may spill into one more part; count it.
	t.Parts = uint32(w.sink.parts())
	if s := w.sink; s.stream == nil && s.split > 0 && s.left < TrailerSize {
		t.Parts++
	}
	if err := w.write(t.encode()); err != nil {
		return err
	}
	if err := w.sink.commit(); err != nil {
		return err
	}
	// Re-open what is on disk, under its temporary names, as a reader
	// would, before it gets its final name.
	if w.sink.stream == nil {
		if corruptAfterSync != nil {
			corruptAfterSync(w.sink.tmp[len(w.sink.tmp)-1])
		}
		if err := w.reopen(); err != nil {
			return err
		}
	}
	if err := w.sink.publish(); err != nil {
		return err
	}
	w.done = true
	return nil
}

// corruptAfterSync is a test's stand-in for a disk that does not keep what
// was written to it.
var corruptAfterSync func(name string)

// reopen opens the synced parts as an image, with the reader's checks
// (header, parts, trailer, metadata and index checksums, index bounds,
// chain links), and fails with an internal error when any rejects them.
func (w *Writer) reopen() error {
	tmp := map[string]string{}
	for i, f := range w.sink.final {
		tmp[f] = w.sink.tmp[i]
	}
	open := func(name string) (io.ReaderAt, int64, io.Closer, error) {
		if t, ok := tmp[name]; ok {
			name = t
		}
		return OpenFile(name)
	}
	r, size, c, err := open(w.name)
	if err != nil {
		return fmt.Errorf("re-open %s: %w", w.name, err)
	}
	im, err := openImage(w.name, r, size, func(h *header, uuid [16]byte) (*partSet, error) {
		return openParts(w.name, r, size, c, open, h, uuid)
	}, OpenOptions{Workers: 1, key: w.aead})
	if err != nil {
		c.Close()
		return internalError("the image it wrote does not open", err)
	}
	defer im.Close()
	if p := w.opts.Parent; p != nil {
		if err := im.AttachChain(append(slices.Clone(p.chain), p)); err != nil {
			return internalError("the image it wrote does not attach to its chain", err)
		}
	}
	return nil
}

// internalError is a writer that would produce what its reader rejects: a
// bug in Lifeboat, never reported as success.
func internalError(what string, err error) error {
	if err != nil {
		what += ": " + err.Error()
	}
	return fmt.Errorf("internal error: %s; nothing was kept under the image's name. Please report this bug", what)
}

// Abort removes whatever was written under temporary names.
func (w *Writer) Abort() {
	if !w.done && w.sink != nil {
		w.sink.abort()
	}
	w.done = true
}

func indexAD(uuid [16]byte, hbytes, mbytes []byte) []byte {
	hs, ms := sha256.Sum256(hbytes), sha256.Sum256(mbytes)
	ad := append([]byte("lifeboat-index-v1"), uuid[:]...)
	ad = append(ad, hs[:]...)
	return append(ad, ms[:]...)
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// patchFor returns, for a point with a parent, the patch that turns the
// parent's bytes at [off, off+len(b)) of stream sid into b — when only a
// few of its 4 KiB blocks changed — or nil.
func (w *Writer) patchFor(sid uint32, off int64, b []byte) []byte {
	p := w.opts.Parent
	if p == nil || int(sid) >= len(p.x.Streams) || off+int64(len(b)) > p.x.Streams[sid].Size {
		return nil
	}
	// Where the parent held no data (free space then: a file written
	// since), there is nothing to patch against. After 5 % of the files
	// of the chain bench were rewritten, a third of the chunks tried were
	// such, and none of their patches paid.
	if ps := &p.x.Streams[sid]; 2*ps.dataIn(off, int64(len(b))) < int64(len(b)) {
		return nil
	}
	// Readers keep decode buffers of a chunk each: reuse them.
	sr, _ := w.parentReaders.Get().(*StreamReader)
	if sr == nil || sr.id != int(sid) {
		var err error
		if sr, err = p.Stream(int(sid)); err != nil {
			return nil
		}
	}
	defer w.parentReaders.Put(sr)
	base := make([]byte, len(b))
	if _, err := sr.ReadAt(base, off); err != nil {
		return nil // no base: store the chunk whole
	}
	return makePatch(b, base)
}
