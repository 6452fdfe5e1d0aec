package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"time"
)

// Byte layout constants; FORMAT.md is the prose version of this file.
const (
	// FormatVersion is the newest header version this lifeboat reads and
	// writes: 2 names the chunk hash (BLAKE3), 1 has none (SHA-256). A
	// writer writes version 1 where its chain's chunk hash is SHA-256
	// (hash.go).
	FormatVersion = 2
	// trailerVersion and the trailer's layout did not change with format 2.
	trailerVersion = 1

	headerMagic  = "LIFEBOAT"
	trailerMagic = "LBTRAILR"
	partMagic    = "LBIPART\x00"
	indexMagic   = "LBINDEX1"
	indexMagic2  = "LBINDEX2" // with a chain: records stored in earlier points

	headerFixed   = 16  // magic, version, flags, body length
	TrailerSize   = 128 // fixed, always the last bytes of the last part
	partHeaderLen = 32

	// maxHeaderBody bounds what a reader allocates for the header JSON.
	maxHeaderBody = 1 << 20
	// maxMetaLen and maxIndexLen bound what a reader allocates; an index of
	// 2^31 bytes describes tens of TB at 1 MiB chunks.
	maxMetaLen  = 64 << 20
	maxIndexLen = 2 << 30

	// DefaultChunkSize is the average chunk: the unit of compression, hashing, dedup and random
	// access. 512 KiB (128 KiB before issue #19): on make bench's cpu data
	// set it stores 3.3 % less than 128 KiB at the same level and CPU (zstd
	// sees more of the data at once), and dedup of copies loses 1.5 %; an
	// incremental after small changes stores patches of 4 KiB blocks, so
	// it did not grow (TestChains; 1 MiB chunks lost more to dedup than
	// they gained).
	DefaultChunkSize = 512 << 10
	minChunkSize     = 64 << 10
	maxChunkSize     = 16 << 20

	// MinSplitSize is the smallest part size the CLI accepts (as the seed
	// product does). The library accepts down to minLibSplit for tests.
	MinSplitSize = 50 << 20
	minLibSplit  = 64 << 10
)

// Special chunk references in a stream's chunk map.
const (
	refZero   = 0xFFFFFFFF // every byte of the chunk is zero
	refUnused = 0xFFFFFFFE // not stored: unused by the filesystem, content undefined
	maxRecord = 0xFFFFFFF0
)

// Codec is how a record's plaintext is stored.
type Codec uint8

const (
	CodecRaw  Codec = 0
	CodecZstd Codec = 1
	// CodecS2 is S2's block format (klauspost/compress/s2, a faster
	// relative of Snappy): --compression fast, since issue #19.
	CodecS2 Codec = 2
	// CodecPatch is a flag on the codec: the plaintext is a patch of
	// 4 KiB blocks over the parent point's bytes at the record's origin
	// (see patch.go); the record's length and hash are the patched chunk's.
	CodecPatch Codec = 0x80
)

func (c Codec) String() string {
	switch c {
	case CodecRaw:
		return "raw"
	case CodecZstd:
		return "zstd"
	case CodecS2:
		return "s2"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// displayName is how a compressor is named to users.
func (c Codec) displayName() string {
	if c == CodecS2 {
		return "S2"
	}
	return c.String()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is the JSON body at the start of every image. Everything a
// streaming writer knows before the first chunk is here; the rest is in the
// metadata at the end.
type header struct {
	ImageUUID   string     `json:"image_uuid"`
	ParentUUID  string     `json:"parent_uuid,omitempty"`
	Created     time.Time  `json:"created"`
	ToolVersion string     `json:"tool_version"`
	ChunkSize   int        `json:"chunk_size"` // the largest plaintext of a record
	Chunking    *chunking  `json:"chunking,omitempty"`
	Compression Level      `json:"compression"`
	Cipher      Cipher     `json:"cipher"`
	KDF         *kdfParams `json:"kdf,omitempty"`
	WrappedKey  []byte     `json:"wrapped_key,omitempty"`
	SplitSize   int64      `json:"split_size,omitempty"`
	// ChunkHash is "blake3" in format 2 and absent in format 1 (SHA-256).
	ChunkHash string `json:"chunk_hash,omitempty"`

	hash chunkHash // from the version and ChunkHash (chunkHashOf)
}

func encodeHeader(h *header) ([]byte, error) {
	body, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	b := make([]byte, headerFixed, headerFixed+len(body)+sha256.Size)
	copy(b, headerMagic)
	binary.LittleEndian.PutUint16(b[8:], h.hash.version())
	binary.LittleEndian.PutUint32(b[12:], uint32(len(body)))
	b = append(b, body...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// headerLen returns the full header length from its fixed prefix.
func headerLen(fixed []byte) (int, error) {
	if len(fixed) < headerFixed || string(fixed[:8]) != headerMagic {
		return 0, errNotImage
	}
	n := binary.LittleEndian.Uint32(fixed[12:])
	if n == 0 || n > maxHeaderBody {
		return 0, errBadHeader
	}
	return headerFixed + int(n) + sha256.Size, nil
}

func decodeHeader(b []byte) (*header, error) {
	body := b[:len(b)-sha256.Size]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], b[len(body):]) || binary.LittleEndian.Uint16(b[10:]) != 0 {
		return nil, errBadHeader
	}
	// Only a header that passed its checksum can claim a newer version.
	v := binary.LittleEndian.Uint16(b[8:])
	if v < 1 || v > FormatVersion {
		return nil, fmt.Errorf("format version %d is not supported by this lifeboat (it reads versions 1 to %d); use a newer lifeboat", v, FormatVersion)
	}
	h := new(header)
	dec := json.NewDecoder(bytes.NewReader(body[headerFixed:]))
	if err := dec.Decode(h); err != nil {
		return nil, errBadHeader
	}
	if h.ChunkSize < minChunkSize || h.ChunkSize > maxChunkSize || h.ChunkSize%4096 != 0 {
		return nil, errBadHeader
	}
	if !h.Compression.valid() || !h.Cipher.valid() || (h.Cipher != CipherNone) != (h.KDF != nil) {
		return nil, errBadHeader
	}
	if h.SplitSize != 0 && h.SplitSize < minLibSplit {
		return nil, errBadHeader
	}
	var ok bool
	if h.hash, ok = chunkHashOf(v, h.ChunkHash); !ok {
		return nil, errBadHeader
	}
	return h, nil
}

// trailer is the fixed-size record at the very end of an image.
type trailer struct {
	Parts     uint32
	UUID      [16]byte
	MetaOff   int64
	MetaLen   int64
	IndexOff  int64
	IndexLen  int64
	Sum       [32]byte // SHA-256 of the bytes [MetaOff, IndexOff+IndexLen)
	SplitSize int64
	TotalLen  int64 // logical length of the image including this trailer
}

func (t *trailer) encode() []byte {
	b := make([]byte, TrailerSize)
	copy(b, trailerMagic)
	binary.LittleEndian.PutUint16(b[8:], trailerVersion)
	binary.LittleEndian.PutUint32(b[12:], t.Parts)
	copy(b[16:32], t.UUID[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(t.MetaOff))
	binary.LittleEndian.PutUint64(b[40:], uint64(t.MetaLen))
	binary.LittleEndian.PutUint64(b[48:], uint64(t.IndexOff))
	binary.LittleEndian.PutUint64(b[56:], uint64(t.IndexLen))
	copy(b[64:96], t.Sum[:])
	binary.LittleEndian.PutUint64(b[96:], uint64(t.SplitSize))
	binary.LittleEndian.PutUint64(b[104:], uint64(t.TotalLen))
	binary.LittleEndian.PutUint32(b[124:], crc32c(b[:124]))
	return b
}

func decodeTrailer(b []byte) (*trailer, bool) {
	if len(b) != TrailerSize || string(b[:8]) != trailerMagic {
		return nil, false
	}
	if crc32c(b[:124]) != binary.LittleEndian.Uint32(b[124:]) ||
		binary.LittleEndian.Uint16(b[8:]) != trailerVersion || binary.LittleEndian.Uint16(b[10:]) != 0 ||
		!allZero(b[112:124]) {
		return nil, false
	}
	t := &trailer{
		Parts:     binary.LittleEndian.Uint32(b[12:]),
		MetaOff:   int64(binary.LittleEndian.Uint64(b[32:])),
		MetaLen:   int64(binary.LittleEndian.Uint64(b[40:])),
		IndexOff:  int64(binary.LittleEndian.Uint64(b[48:])),
		IndexLen:  int64(binary.LittleEndian.Uint64(b[56:])),
		SplitSize: int64(binary.LittleEndian.Uint64(b[96:])),
		TotalLen:  int64(binary.LittleEndian.Uint64(b[104:])),
	}
	copy(t.UUID[:], b[16:32])
	copy(t.Sum[:], b[64:96])
	return t, true
}

func encodePartHeader(uuid [16]byte, n int) []byte {
	b := make([]byte, partHeaderLen)
	copy(b, partMagic)
	copy(b[8:24], uuid[:])
	binary.LittleEndian.PutUint32(b[24:], uint32(n))
	binary.LittleEndian.PutUint32(b[28:], crc32c(b[:28]))
	return b
}

// checkPartHeader says what is wrong with a part header, or nil.
func checkPartHeader(b []byte, uuid [16]byte, n int) error {
	if len(b) != partHeaderLen || string(b[:8]) != partMagic ||
		crc32c(b[:28]) != binary.LittleEndian.Uint32(b[28:]) {
		return errBadPart
	}
	if !bytes.Equal(b[8:24], uuid[:]) {
		return errForeignPart
	}
	if int(binary.LittleEndian.Uint32(b[24:])) != n {
		return errBadPart
	}
	return nil
}

// record is one stored payload: a chunk's plaintext, compressed or raw,
// encrypted when the image is.
type record struct {
	Off    int64  // logical offset in the image
	Len    uint32 // stored bytes (ciphertext including the AEAD tag)
	RawLen uint32 // plaintext bytes
	Codec  Codec
	Stream uint32 // origin: the chunk whose encryption nonce and AD this record uses
	Chunk  uint64
	CRC    uint32   // CRC-32C of the stored bytes
	Sum    [32]byte // chunk hash of the plaintext (hash.go)
}

const recordSize = 8 + 4 + 4 + 1 + 4 + 8 + 4 + 32

// extent is a run of a stream's bytes: stored in a record, or a hole.
type extent struct {
	Len uint64
	Ref uint32 // record number, refZero or refUnused
}

const extentSize = 12

// streamIndex is one virtual device's map: extents in order, tiling it.
type streamIndex struct {
	Size int64
	Ext  []extent
	off  []int64 // off[i] is where extent i starts; derived when decoding
}

// find returns the extent holding byte off (0 <= off < Size).
func (s *streamIndex) find(off int64) int {
	lo, hi := 0, len(s.off)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if s.off[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// dataIn is how many bytes of [off, off+n) the stream holds as data: not
// zero or unused.
func (s *streamIndex) dataIn(off, n int64) int64 {
	if off < 0 || n <= 0 || off >= s.Size || len(s.off) == 0 {
		return 0
	}
	var d int64
	for ei := s.find(off); ei < len(s.Ext) && s.off[ei] < off+n; ei++ {
		if r := s.Ext[ei].Ref; r != refZero && r != refUnused {
			d += min(s.off[ei]+int64(s.Ext[ei].Len), off+n) - max(s.off[ei], off)
		}
	}
	return d
}

func (s *streamIndex) index() {
	s.off = make([]int64, len(s.Ext))
	var o int64
	for i, e := range s.Ext {
		s.off[i] = o
		o += int64(e.Len)
	}
}

type index struct {
	Streams []streamIndex
	Records []record
	// Chain lists the earlier points (image UUIDs) whose records this
	// image refers to; Foreign are those records, as their images hold
	// them. Extent references from len(Records) on are Foreign records.
	Chain   [][16]byte
	Foreign []foreignRecord
}

// foreignRecord is a record kept in an earlier point of a chain.
type foreignRecord struct {
	Image uint32 // index into Chain
	record
}

// maxChain bounds the points a chain may hold.
const maxChain = 1024

// ref resolves an extent reference to its record and the chain member
// holding it (-1: this image).
func (x *index) ref(r uint32) (*record, int) {
	if int(r) < len(x.Records) {
		return &x.Records[r], -1
	}
	f := &x.Foreign[int(r)-len(x.Records)]
	return &f.record, int(f.Image)
}

func (x *index) encode() []byte {
	n := 8 + 4
	for _, s := range x.Streams {
		n += 8 + 8 + extentSize*len(s.Ext)
	}
	n += 4 + recordSize*len(x.Records)
	chained := len(x.Chain) > 0
	if chained {
		n += 4 + 16*len(x.Chain) + 4 + (4+recordSize)*len(x.Foreign)
	}
	b := make([]byte, 0, n)
	if chained {
		b = append(b, indexMagic2...)
	} else {
		b = append(b, indexMagic...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Streams)))
	for _, s := range x.Streams {
		b = binary.LittleEndian.AppendUint64(b, uint64(s.Size))
		b = binary.LittleEndian.AppendUint64(b, uint64(len(s.Ext)))
		for _, e := range s.Ext {
			b = binary.LittleEndian.AppendUint64(b, e.Len)
			b = binary.LittleEndian.AppendUint32(b, e.Ref)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Records)))
	for _, r := range x.Records {
		b = r.append(b)
	}
	if chained {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Chain)))
		for _, u := range x.Chain {
			b = append(b, u[:]...)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Foreign)))
		for _, f := range x.Foreign {
			b = binary.LittleEndian.AppendUint32(b, f.Image)
			b = f.record.append(b)
		}
	}
	return b
}

func (r *record) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Off))
	b = binary.LittleEndian.AppendUint32(b, r.Len)
	b = binary.LittleEndian.AppendUint32(b, r.RawLen)
	b = append(b, byte(r.Codec))
	b = binary.LittleEndian.AppendUint32(b, r.Stream)
	b = binary.LittleEndian.AppendUint64(b, r.Chunk)
	b = binary.LittleEndian.AppendUint32(b, r.CRC)
	return append(b, r.Sum[:]...)
}

// parseRecord reads one record from the front of p (len(p) >= recordSize).
func parseRecord(p []byte) record {
	var r record
	r.Off = int64(binary.LittleEndian.Uint64(p))
	r.Len = binary.LittleEndian.Uint32(p[8:])
	r.RawLen = binary.LittleEndian.Uint32(p[12:])
	r.Codec = Codec(p[16])
	r.Stream = binary.LittleEndian.Uint32(p[17:])
	r.Chunk = binary.LittleEndian.Uint64(p[21:])
	r.CRC = binary.LittleEndian.Uint32(p[29:])
	copy(r.Sum[:], p[33:65])
	return r
}

// decodeIndex parses and validates an index against the header's largest
// chunk size and the data area [dataStart, dataEnd) it must tile exactly.
func decodeIndex(b []byte, chunkSize int, dataStart, dataEnd int64) (*index, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", errBadIndex, what) }
	if len(b) < 12 || string(b[:8]) != indexMagic && string(b[:8]) != indexMagic2 {
		return nil, bad("no index magic")
	}
	chained := string(b[:8]) == indexMagic2
	p := b[8:]
	u32 := func() (uint32, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(p)
		p = p[4:]
		return v, true
	}
	u64 := func() (uint64, bool) {
		if len(p) < 8 {
			return 0, false
		}
		v := binary.LittleEndian.Uint64(p)
		p = p[8:]
		return v, true
	}
	ns, _ := u32()
	if ns == 0 || ns > 1024 {
		return nil, bad("stream count")
	}
	x := &index{Streams: make([]streamIndex, ns)}
	for i := range x.Streams {
		size, ok1 := u64()
		next, ok2 := u64()
		if !ok1 || !ok2 || int64(size) < 0 || next > uint64(len(p))/extentSize || (size > 0) != (next > 0) {
			return nil, bad("stream size")
		}
		ext := make([]extent, next)
		var total uint64
		for j := range ext {
			l, _ := u64()
			r, _ := u32()
			if l == 0 || l > size-total {
				return nil, bad(fmt.Sprintf("stream %d extent %d length", i, j))
			}
			total += l
			ext[j] = extent{Len: l, Ref: r}
		}
		if total != size {
			return nil, bad(fmt.Sprintf("stream %d extents do not add up to its size", i))
		}
		x.Streams[i] = streamIndex{Size: int64(size), Ext: ext}
		x.Streams[i].index()
	}
	nr, ok := u32()
	if !ok || uint64(nr)*recordSize > uint64(len(p)) || !chained && uint64(nr)*recordSize != uint64(len(p)) || nr > maxRecord {
		return nil, bad("record count")
	}
	x.Records = make([]record, nr)
	next := dataStart
	for i := range x.Records {
		r := &x.Records[i]
		*r = parseRecord(p)
		p = p[recordSize:]
		if r.Off != next || r.Len == 0 || int64(r.Len) > dataEnd-next {
			return nil, bad(fmt.Sprintf("record %d is not where the previous one ends", i))
		}
		next += int64(r.Len)
		if r.RawLen == 0 || int(r.RawLen) > chunkSize || r.Codec&^CodecPatch > CodecS2 ||
			int(r.Stream) >= len(x.Streams) || r.Chunk >= uint64(len(x.Streams[r.Stream].Ext)) {
			return nil, bad(fmt.Sprintf("record %d fields", i))
		}
	}
	if next != dataEnd {
		return nil, bad("records do not fill the data area")
	}
	if chained {
		nc, ok := u32()
		if !ok || nc == 0 || nc > maxChain || uint64(nc)*16 > uint64(len(p)) {
			return nil, bad("chain length")
		}
		x.Chain = make([][16]byte, nc)
		for i := range x.Chain {
			copy(x.Chain[i][:], p[:16])
			p = p[16:]
		}
		nf, ok := u32()
		if !ok || uint64(nf)*(4+recordSize) != uint64(len(p)) || uint64(nf)+uint64(nr) > maxRecord {
			return nil, bad("chain record count")
		}
		x.Foreign = make([]foreignRecord, nf)
		for i := range x.Foreign {
			f := &x.Foreign[i]
			f.Image, _ = u32()
			f.record = parseRecord(p)
			p = p[recordSize:]
			if f.Image >= nc || f.Len == 0 || f.Off < 0 || f.RawLen == 0 || int(f.RawLen) > chunkSize || f.Codec&^CodecPatch > CodecS2 {
				return nil, bad(fmt.Sprintf("chain record %d fields", i))
			}
		}
	}
	total := nr + uint32(len(x.Foreign))
	for si, s := range x.Streams {
		for ei, e := range s.Ext {
			if e.Ref == refZero || e.Ref == refUnused {
				continue
			}
			if e.Ref >= total {
				return nil, bad(fmt.Sprintf("stream %d extent %d refers to a missing record", si, ei))
			}
			if r, _ := x.ref(e.Ref); uint64(r.RawLen) != e.Len {
				return nil, bad(fmt.Sprintf("stream %d extent %d length", si, ei))
			}
		}
	}
	return x, nil
}

// IsZero reports whether every byte of b is zero (compared 64 KiB at a
// time with bytes.Equal, which is vectorised).
func IsZero(b []byte) bool { return allZero(b) }

func allZero(b []byte) bool {
	for len(b) >= len(zeroBlock) {
		if !bytes.Equal(b[:len(zeroBlock)], zeroBlock[:]) {
			return false
		}
		b = b[len(zeroBlock):]
	}
	return bytes.Equal(b, zeroBlock[:len(b)])
}

var zeroBlock [64 << 10]byte
