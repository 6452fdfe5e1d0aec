package images

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// Password is called once if the image is encrypted. Without it an
	// encrypted image opens locked: its metadata can be read, its data
	// cannot until Unlock.
	Password func() ([]byte, error)
	// Workers bounds parallel decoding; 0: one per CPU.
	Workers int

	key cipher.AEAD // the writer's own key, for re-opening what it wrote
}

// Image is an opened image: metadata at once, data through Stream.
// Its methods are safe for concurrent use once Open (and Unlock) returned.
type Image struct {
	Name string
	Meta Metadata

	h      *header
	hbytes []byte
	mbytes []byte
	uuid   [16]byte
	src    io.ReaderAt
	ps     *partSet
	tr     *trailer
	x      *index
	aead   cipher.AEAD
	dec    *zstd.Decoder
	// decNoSum decodes without checking the frames' content checksums:
	// for reads after a Verify passed (below), which checked them; made
	// by that Verify.
	decNoSum *zstd.Decoder
	workers  int
	chain    []*Image // the earlier points x.Chain names, once attached
	parent   *Image   // the point this one was made from (patch bases), once attached
	// verified says a Verify that decoded every record passed.
	verified atomic.Bool
}

// Open opens the image whose first part is at path, with every split part.
func Open(path string, o OpenOptions) (*Image, error) {
	if strings.HasSuffix(path, ".partial") {
		// A writer's temporary name: whatever it holds was never
		// committed (the writer was stopped before its final rename).
		return nil, &CorruptError{Image: path, Part: path, What: "it is an unfinished image (the backup or merge writing it was interrupted); run it again", Err: ErrIncomplete}
	}
	return OpenWith(path, OpenFile, o)
}

// PartOpener opens one file of an image by name (the first part's name, or
// a later part's name from PartName) and says how long it is. A part that
// does not exist must give an error wrapping fs.ErrNotExist.
type PartOpener func(name string) (r io.ReaderAt, size int64, c io.Closer, err error)

// OpenFile opens one file of an image on this machine (a PartOpener).
func OpenFile(name string) (io.ReaderAt, int64, io.Closer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s is a folder; name the image file inside it", name)
	}
	return f, st.Size(), f, nil
}

// OpenWith opens an image whose parts come from open: files, HTTP URLs.
func OpenWith(name string, open PartOpener, o OpenOptions) (*Image, error) {
	r, size, c, err := open(name)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	im, err := openImage(name, r, size, func(h *header, uuid [16]byte) (*partSet, error) {
		return openParts(name, r, size, c, open, h, uuid)
	}, o)
	if err != nil {
		c.Close()
	}
	return im, err
}

// OpenReaderAt opens an unsplit image held by r (an HTTP range reader, a
// memory buffer). name is used in messages.
func OpenReaderAt(r io.ReaderAt, size int64, name string, o OpenOptions) (*Image, error) {
	return openImage(name, r, size, func(h *header, _ [16]byte) (*partSet, error) {
		if h.SplitSize != 0 {
			return nil, fmt.Errorf("image %s is split into parts; open it by file name so its parts can be found", name)
		}
		return &partSet{name: name, parts: []partFile{{name: name, r: r, n: size}}, size: size}, nil
	}, o)
}

func openImage(name string, first io.ReaderAt, firstSize int64, parts func(*header, [16]byte) (*partSet, error), o OpenOptions) (*Image, error) {
	fixed := make([]byte, headerFixed)
	n, err := first.ReadAt(fixed, 0)
	if n < headerFixed && err != nil && !errors.Is(err, io.EOF) {
		// A read that failed (a cancelled or broken HTTP read, a
		// failing disk) says so; only what was read can be "not an image".
		return nil, fmt.Errorf("%s: read the header: %w", name, err)
	}
	if n < headerFixed || string(fixed[:8]) != headerMagic {
		return nil, fmt.Errorf("%s: %w (no Lifeboat header); choose the first part (.lbi) of a Lifeboat backup", name, ErrNotImage)
	}
	corrupt := func(off int64, what string, err error) error {
		return &CorruptError{Image: name, Part: name, PartOff: off, Offset: off, What: what, Err: err}
	}
	hl, err := headerLen(fixed)
	if err != nil {
		return nil, corrupt(0, "its header is invalid", ErrCorrupt)
	}
	if int64(hl) > firstSize {
		return nil, corrupt(0, "the file ends inside its header", ErrIncomplete)
	}
	hb := make([]byte, hl)
	if _, err := first.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	h, err := decodeHeader(hb)
	if errors.Is(err, ErrCorrupt) {
		return nil, corrupt(0, "its header is damaged (its checksum or one of its fields is wrong)", ErrCorrupt)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	im := &Image{Name: name, h: h, hbytes: hb, workers: o.Workers}
	if im.workers <= 0 {
		im.workers = runtime.GOMAXPROCS(0)
	}
	if im.uuid, err = parseUUID(h.ImageUUID); err != nil {
		return nil, corrupt(0, "its header holds no valid image UUID", ErrCorrupt)
	}
	ps, err := parts(h, im.uuid)
	if err != nil {
		return nil, err
	}
	im.ps, im.src = ps, ps
	if err := im.readTail(int64(hl)); err != nil {
		ps.Close()
		return nil, err
	}
	if h.Cipher == CipherNone {
		err = im.loadIndex()
	} else if o.key != nil {
		im.aead = o.key
		err = im.loadIndex()
	} else if o.Password != nil {
		// A cost the machine cannot pay is refused before the
		// password is asked for.
		if err = checkKDF(name, h.KDF); err != nil {
			ps.Close()
			return nil, err
		}
		var pw []byte
		if pw, err = o.Password(); err == nil {
			err = im.Unlock(pw)
		}
	}
	if err != nil {
		ps.Close()
		return nil, err
	}
	return im, nil
}

// readTail finds and checks the trailer, metadata and (still sealed) index.
func (im *Image) readTail(dataStart int64) error {
	size := im.ps.size
	tb := make([]byte, TrailerSize)
	if size < dataStart+TrailerSize {
		return im.incomplete(size)
	}
	if _, err := im.src.ReadAt(tb, size-TrailerSize); err != nil {
		return fmt.Errorf("read %s: %w", im.Name, err)
	}
	t, ok := decodeTrailer(tb)
	if !ok {
		if bytes.Contains(tb, []byte(trailerMagic)) || bytes.HasPrefix(tb, []byte(trailerMagic[:4])) {
			return im.corruptAt(size-TrailerSize, "its trailer fails its checksum")
		}
		return im.incomplete(size)
	}
	if t.UUID != im.uuid {
		return im.corruptAt(size-TrailerSize, "its trailer belongs to a different image")
	}
	if int(t.Parts) != len(im.ps.parts) {
		if int(t.Parts) > len(im.ps.parts) {
			return &CorruptError{Image: im.Name, Part: PartName(im.Name, len(im.ps.parts)+1), Offset: size,
				What: fmt.Sprintf("split part %s (part %d of %d) is missing; put it next to %s",
					PartName(im.Name, len(im.ps.parts)+1), len(im.ps.parts)+1, t.Parts, im.Name), Err: ErrIncomplete}
		}
		return im.corruptAt(size-TrailerSize, "its trailer counts a different number of parts")
	}
	if t.SplitSize != im.h.SplitSize || t.TotalLen != size || t.MetaOff < dataStart ||
		t.MetaLen <= 0 || t.MetaLen > maxMetaLen || t.IndexLen <= 0 || t.IndexLen > maxIndexLen ||
		t.IndexOff != t.MetaOff+t.MetaLen || t.IndexOff+t.IndexLen != size-TrailerSize {
		return im.corruptAt(size-TrailerSize, "its trailer does not match the file's size")
	}
	im.tr = t
	mi := make([]byte, t.MetaLen+t.IndexLen)
	if _, err := im.src.ReadAt(mi, t.MetaOff); err != nil {
		return fmt.Errorf("read %s: %w", im.Name, err)
	}
	if sha256.Sum256(mi) != t.Sum {
		return im.corruptAt(t.MetaOff, "its metadata or index fails its checksum")
	}
	im.mbytes = mi[:t.MetaLen]
	if err := json.Unmarshal(im.mbytes, &im.Meta); err != nil || im.Meta.Version < 1 {
		return im.corruptAt(t.MetaOff, "its metadata cannot be read")
	}
	if im.Meta.Version > MetaVersion {
		return fmt.Errorf("image %s has metadata version %d; this lifeboat reads up to %d: use a newer lifeboat", im.Name, im.Meta.Version, MetaVersion)
	}
	return nil
}

func (im *Image) incomplete(size int64) error {
	what := "it ends without its trailer: the backup was interrupted or the file was truncated; use a complete copy"
	part, po := im.ps.locate(size)
	if im.h.SplitSize > 0 && len(im.ps.parts) > 0 {
		last := im.ps.parts[len(im.ps.parts)-1]
		next := PartName(im.Name, len(im.ps.parts)+1)
		switch {
		case last.skip+last.n == im.h.SplitSize:
			part, po = next, 0
			what = fmt.Sprintf("split part %s is missing (or the backup was interrupted); put it next to %s", part, im.Name)
		case im.ps.exists(next):
			// A part shorter than the split size ends the image, but
			// another part follows it: the short one was cut.
			part, po = last.name, last.skip+last.n
			what = fmt.Sprintf("split part %s is shorter than the others (%d of %d bytes): it was truncated; use a complete copy of it", last.name, last.skip+last.n, im.h.SplitSize)
		}
	}
	return &CorruptError{Image: im.Name, Part: part, PartOff: po, Offset: size, What: what, Err: ErrIncomplete}
}

func (im *Image) corruptAt(off int64, what string) error {
	part, po := im.ps.locate(off)
	return &CorruptError{Image: im.Name, Part: part, PartOff: po, Offset: off, What: what, Err: ErrCorrupt}
}

// Unlock opens an encrypted image's index with the password. It fails
// with ErrWrongPassword before any data is read.
func (im *Image) Unlock(password []byte) error {
	if im.x != nil {
		return nil
	}
	if err := checkKDF(im.Name, im.h.KDF); err != nil {
		return err
	}
	aead, err := unwrapKey(im.h, im.uuid, password)
	if errors.Is(err, ErrWrongPassword) {
		return fmt.Errorf("image %s: %w; give the password the backup was made with (typed, in the password file or in LIFEBOAT_PASSWORD)", im.Name, ErrWrongPassword)
	}
	if err != nil {
		return &CorruptError{Image: im.Name, Part: im.Name, What: "its key parameters are invalid", Err: ErrCorrupt}
	}
	im.aead = aead
	return im.loadIndex()
}

func (im *Image) loadIndex() error {
	ib := make([]byte, im.tr.IndexLen)
	if _, err := im.src.ReadAt(ib, im.tr.IndexOff); err != nil {
		return fmt.Errorf("read %s: %w", im.Name, err)
	}
	if im.aead != nil {
		var err error
		ib, err = im.aead.Open(ib[:0], chunkNonce(im.aead, indexNonceStrm, indexNonceChunk), ib, indexAD(im.uuid, im.hbytes, im.mbytes))
		if err != nil {
			return im.corruptAt(im.tr.IndexOff, "its index fails authentication")
		}
	}
	x, err := decodeIndex(ib, im.h.ChunkSize, int64(len(im.hbytes)), im.tr.MetaOff)
	if err != nil {
		return im.corruptAt(im.tr.IndexOff, strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "))
	}
	if len(x.Streams) != len(im.Meta.Streams) {
		return im.corruptAt(im.tr.MetaOff, "its metadata and index disagree on the number of streams")
	}
	for i, s := range x.Streams {
		if s.Size != im.Meta.Streams[i].Size {
			return im.corruptAt(im.tr.MetaOff, "its metadata and index disagree on a stream's size")
		}
	}
	if im.dec, err = im.newDecoder(); err != nil {
		return err
	}
	im.x = x
	return nil
}

// newDecoder makes a zstd decoder within the image's limits.
func (im *Image) newDecoder(more ...zstd.DOption) (*zstd.Decoder, error) {
	return zstd.NewReader(nil, append([]zstd.DOption{zstd.WithDecoderConcurrency(im.workers),
		zstd.WithDecoderMaxMemory(uint64(im.h.ChunkSize)), zstd.WithDecoderMaxWindow(uint64(windowFor(im.h.ChunkSize))),
		zstd.WithDecodeAllCapLimit(true)}, more...)...)
}

// Close releases the image's files.
func (im *Image) Close() error {
	if im.dec != nil {
		im.dec.Close()
	}
	if im.decNoSum != nil {
		im.decNoSum.Close()
	}
	return im.ps.Close()
}

// Info is what an image says about itself.
type Info struct {
	UUID, ParentUUID string
	Created          time.Time
	ToolVersion      string
	ChunkSize        int    // the largest chunk
	ChunkAverage     int    // what the writer aimed at (0: not recorded)
	ChunkHash        string // what names each chunk: BLAKE3 (format 2) or SHA-256
	// Codecs names the compressors the records use ("zstd", "S2", "zstd
	// and S2"; empty while locked or when none is compressed): the level
	// alone does not say, as fast was zstd before issue #19.
	Codecs      string
	Compression Level
	Cipher      Cipher
	SplitSize   int64
	Parts       []string
	FileSize    int64 // bytes of all parts
	Locked      bool  // encrypted and not unlocked
	Records     int   // stored chunks (0 while locked)
	DataBytes   int64 // bytes of stored chunks
}

// Info describes the image.
func (im *Image) Info() Info {
	i := Info{UUID: im.h.ImageUUID, ParentUUID: im.h.ParentUUID, Created: im.h.Created, ToolVersion: im.h.ToolVersion,
		ChunkSize: im.h.ChunkSize, ChunkAverage: im.ChunkAverage(), ChunkHash: im.h.hash.String(), Compression: im.h.Compression, Cipher: im.h.Cipher, SplitSize: im.h.SplitSize,
		Locked: im.x == nil, DataBytes: im.tr.MetaOff - int64(len(im.hbytes))}
	for _, p := range im.ps.parts {
		i.Parts = append(i.Parts, p.name)
		i.FileSize += p.skip + p.n
	}
	if im.x != nil {
		i.Records = len(im.x.Records)
		var used [3]bool
		for _, r := range im.x.Records {
			if c := r.Codec &^ CodecPatch; int(c) < len(used) {
				used[c] = true
			}
		}
		var names []string
		for _, c := range []Codec{CodecZstd, CodecS2} {
			if used[c] {
				names = append(names, c.displayName())
			}
		}
		i.Codecs = strings.Join(names, " and ")
	}
	return i
}

// Encrypted reports whether the image needs a password.
func (im *Image) Encrypted() bool { return im.h.Cipher != CipherNone }

// ChunkSize is the image's chunk size in bytes.
func (im *Image) ChunkSize() int { return im.h.ChunkSize }

var errLocked = errors.New("image is encrypted and locked; unlock it with its password first")

// decode reads record ri (this image's, or an earlier point's of its
// chain) and returns its verified plaintext, in out when it fits. stored
// is scratch space.
func (im *Image) decode(ri uint32, stored, out []byte) ([]byte, error) {
	return im.decodeChecked(ri, stored, out, checkRead)
}

// decodeChecked is decode with the checks c.
func (im *Image) decodeChecked(ri uint32, stored, out []byte, c checks) ([]byte, error) {
	r, member := im.x.ref(ri)
	if member >= 0 {
		if member >= len(im.chain) || im.chain[member] == nil {
			return nil, fmt.Errorf("image %s: %w: point %s of its chain is not attached", im.Name, ErrChainMissing, formatUUID(im.x.Chain[member]))
		}
		m := im.chain[member]
		return m.decodeRecord(r, fmt.Sprintf("a chunk of point %s", m.Name), stored, out, c)
	}
	return im.decodeRecord(r, fmt.Sprintf("stored chunk %d", ri), stored, out, c)
}

func (im *Image) decodeRecord(r *record, what string, stored, out []byte, c checks) ([]byte, error) {
	if cap(stored) < int(r.Len) {
		stored = make([]byte, r.Len)
	}
	stored = stored[:r.Len]
	if _, err := im.src.ReadAt(stored, r.Off); err != nil {
		return nil, fmt.Errorf("read %s: %w", im.Name, err)
	}
	if crc32c(stored) != r.CRC {
		return nil, im.corruptAt(r.Off, what+" fails its checksum")
	}
	return im.open(r, what, stored, out, c)
}

// checks says how open checks a record's plaintext.
type checks int

const (
	// checkRead, for reads: the record's own checks — a zstd frame's
	// content checksum (images written since milestone 2; the decoder
	// verifies it at a fraction of the chunk hash's cost), the AEAD tag
	// of a raw record of an encrypted image (it authenticated exactly the
	// plaintext) — else the chunk hash (hash.go); and none of these once a Verify of this
	// image passed: its stored bytes, CRC-checked again now, are those
	// whose plaintext it checked (restore's second pass).
	checkRead checks = iota
	// checkVerify, Verify's own: as checkRead, never relaxed by an
	// earlier Verify.
	checkVerify
	// checkThorough, lifeboat check: the chunk hash always, and the frame's
	// checksum too.
	checkThorough
)

// open decrypts and decompresses a record's stored bytes (already
// CRC-checked) and checks the plaintext as c says.
func (im *Image) open(r *record, what string, stored, out []byte, c checks) ([]byte, error) {
	p := stored
	if im.aead != nil {
		var err error
		p, err = im.aead.Open(stored[:0], chunkNonce(im.aead, r.Stream, r.Chunk), stored, chunkAD(im.uuid, r.Stream, r.Chunk, &r.Sum))
		if err != nil {
			return nil, im.corruptAt(r.Off, what+" fails authentication")
		}
	}
	framed, relaxed := false, c == checkRead && im.verified.Load()
	if r.Codec&^CodecPatch == CodecZstd {
		framed = r.Codec == CodecZstd && frameChecksummed(p)
		if cap(out) < int(r.RawLen) {
			out = make([]byte, r.RawLen)
		}
		// Once a Verify passed, the frame checksum (5 % of a restore's
		// CPU) is not computed again, as the chunk hash is not (below).
		dec := im.dec
		if relaxed {
			dec = im.decNoSum
		}
		var err error
		p, err = dec.DecodeAll(p, out[:0])
		if err != nil {
			return nil, im.corruptAt(r.Off, what+" does not decompress")
		}
	}
	if r.Codec&^CodecPatch == CodecS2 {
		// S2 blocks carry no checksum: the chunk hash checks them (below).
		n, err := s2.DecodedLen(p)
		if err != nil || n > im.h.ChunkSize {
			return nil, im.corruptAt(r.Off, what+" does not decompress")
		}
		if cap(out) < n {
			out = make([]byte, n)
		}
		if p, err = s2.Decode(out[:n], p); err != nil {
			return nil, im.corruptAt(r.Off, what+" does not decompress")
		}
	}
	if r.Codec&CodecPatch != 0 {
		var err error
		if p, err = im.applyPatch(r, p); err != nil {
			return nil, im.corruptAt(r.Off, what+": "+err.Error())
		}
	}
	covered := framed || r.Codec == CodecRaw && im.aead != nil || relaxed
	if len(p) != int(r.RawLen) || (c == checkThorough || !covered) && im.h.hash.sum(p) != r.Sum {
		return nil, im.corruptAt(r.Off, what+" does not match its hash")
	}
	return p, nil
}

// frameChecksummed says whether b starts a zstd frame whose header says it
// ends with a checksum of its content (Content_Checksum_flag, RFC 8878
// 3.1.1.1.1), which the decoder then verifies.
func frameChecksummed(b []byte) bool {
	return len(b) > 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd && b[4]&0x04 != 0
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Stored checks only the checksums of the stored bytes (fast: no
	// decryption, no decompression).
	Stored bool
	// Thorough compares every chunk's plaintext with its chunk hash, also
	// where the record's own checks cover it (a zstd frame's content
	// checksum, the AEAD tag of a raw record): lifeboat check. Without
	// it (restore's check before writing) the hash is compared only where
	// nothing else covers the plaintext.
	Thorough bool
	Progress func(n int64) // stored bytes checked, on the caller's goroutine
}

// Verify reads every stored byte of the image and checks it. It returns a
// *CorruptError naming the first bad offset.
func (im *Image) Verify(ctx context.Context, o VerifyOptions) error {
	if im.x == nil {
		return errLocked
	}
	type vres struct{ n int64 }
	window := 2*im.workers + 2
	bufs := newBufPool(window+im.workers, storedCap(im.h.ChunkSize))
	outs := newBufPool(window+im.workers, im.h.ChunkSize)
	produce := func(emit func(uint32) error) error {
		for i := range im.x.Records {
			if err := emit(uint32(i)); err != nil {
				return err
			}
		}
		return nil
	}
	work := func(ri uint32) (vres, error) {
		bp, op := bufs.Get(), outs.Get()
		defer bufs.Put(bp)
		defer outs.Put(op)
		r := &im.x.Records[ri]
		b := (*bp)[:0]
		if cap(b) < int(r.Len) {
			b = make([]byte, r.Len)
		}
		b = b[:r.Len]
		if _, err := im.src.ReadAt(b, r.Off); err != nil {
			if errors.Is(err, ErrIncomplete) || errors.Is(err, io.EOF) {
				return vres{}, im.corruptAt(r.Off, "the file is shorter than its index says")
			}
			return vres{}, fmt.Errorf("read %s: %w", im.Name, err)
		}
		if crc32c(b) != r.CRC {
			return vres{}, im.corruptAt(r.Off, fmt.Sprintf("stored chunk %d fails its checksum", ri))
		}
		if !o.Stored {
			c := checkVerify
			if o.Thorough {
				c = checkThorough
			}
			if _, err := im.open(r, fmt.Sprintf("stored chunk %d", ri), b, *op, c); err != nil {
				return vres{}, err
			}
		}
		return vres{int64(r.Len)}, nil
	}
	consume := func(v vres) error {
		if o.Progress != nil {
			o.Progress(v.n)
		}
		return nil
	}
	err := ordered(ctx, im.workers, window, produce, work, consume)
	if err == nil && !o.Stored {
		if im.decNoSum == nil {
			if im.decNoSum, err = im.newDecoder(zstd.IgnoreChecksum(true)); err != nil {
				return err
			}
		}
		im.verified.Store(true) // after decNoSum: readers that see it use that
	}
	return err
}

func parseUUID(s string) (u [16]byte, err error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 || len(s) != 36 {
		return u, errors.New("bad uuid")
	}
	copy(u[:], b)
	return u, nil
}

// ErrChainMissing: an image is a point of a chain (incremental or
// differential) and an earlier point it needs was not found or attached.
// Put the missing file back next to the image (or name its folder).
var ErrChainMissing = errors.New("an earlier backup point of the chain is missing")

// Chain lists the UUIDs of the earlier points this image refers to, oldest
// first; empty for a self-contained image. It needs the index (an unlocked
// image).
func (im *Image) Chain() []string {
	if im.x == nil {
		return nil
	}
	out := make([]string, len(im.x.Chain))
	for i, u := range im.x.Chain {
		out[i] = formatUUID(u)
	}
	return out
}

// AttachChain gives the image the earlier points it refers to, in the
// order Chain lists them, opened and unlocked. The image does not close
// them.
func (im *Image) AttachChain(points []*Image) error {
	if im.x == nil {
		return errLocked
	}
	if len(points) != len(im.x.Chain) {
		return fmt.Errorf("image %s refers to %d earlier points, %d given", im.Name, len(im.x.Chain), len(points))
	}
	for i, p := range points {
		if p.uuid != im.x.Chain[i] {
			return fmt.Errorf("image %s: point %d of its chain should be %s, not %s (%s)", im.Name, i+1, formatUUID(im.x.Chain[i]), p.h.ImageUUID, p.Name)
		}
		if p.x == nil {
			return fmt.Errorf("point %s: %w", p.Name, errLocked)
		}
		if p.h.ChunkSize > im.h.ChunkSize {
			return fmt.Errorf("point %s has larger chunks than %s: not the same chain", p.Name, im.Name)
		}
		if p.h.hash != im.h.hash {
			return fmt.Errorf("point %s names chunks by %v, %s by %v: not the same chain", p.Name, p.h.hash, im.Name, im.h.hash)
		}
	}
	im.chain = points
	for _, p := range points {
		if p.h.ImageUUID == im.h.ParentUUID {
			im.parent = p
		}
	}
	return nil
}

// UUID is the image's identity.
func (im *Image) UUID() string { return im.h.ImageUUID }

// ChunkAverage is the average chunk size the image was cut with: what a
// new image must use to share its chunks (0 if it records none).
func (im *Image) ChunkAverage() int {
	if im.h.Chunking == nil {
		return 0
	}
	return im.h.Chunking.Avg
}
