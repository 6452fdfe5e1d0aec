// Package fsmap tells which byte ranges of a filesystem are in use, by
// reading the filesystem's own allocation structures: ext2/3/4 block
// bitmaps, the FAT, the exFAT allocation bitmap, NTFS's $Bitmap. The engine
// copies only those ranges when it images a partition; everything else reads
// back as zeros after a restore, and the filesystem does not care.
//
// It parses untrusted bytes. Anything it cannot map with certainty — an
// unknown or encrypted filesystem, a failed checksum, counts or locations
// that do not add up — gives the every-sector map with Reason saying why,
// never a map that leaves out blocks the filesystem uses. Allocation maps
// are not taken on trust either: after building the map from them, a
// reference walk checks that everything the filesystem still points at
// lies inside it (every block of every in-use ext inode, every cluster
// chain reachable from a FAT or exFAT root directory, NTFS's own metadata
// files), because a repair tool rebuilds the maps from those references
// and would find zeros where the map left a block out. Memory stays
// bounded whatever the input: bitmaps are streamed in pieces, and the
// walks are bounded by the volume's block count, so loops and
// cross-linked garbage end in the fallback, never in a hang.
//
// The smallest use:
//
//	f, _ := os.Open("/dev/sdb1")
//	fi, _ := f.Stat() // or the partition size from layout.Read
//	m, err := fsmap.Read(f, fi.Size())
//	if err != nil { ... } // an I/O error
//	if m.Reason != "" { log.Printf("copying every sector: %s", m.Reason) }
//	for _, r := range m.Used { copyRange(f, r.Off, r.Len) }
package fsmap

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/lifeboat-rescue/lifeboat/engine/fsprobe"
)

// Range is a byte range relative to the start of the filesystem.
type Range struct{ Off, Len int64 }

// Map says which bytes of a filesystem must be copied to image it.
type Map struct {
	// FS is the fsprobe type name: "ext2", "ext3", "ext4", "vfat",
	// "exfat", "ntfs", "swap", "crypto_LUKS", "BitLocker", ..., or ""
	// when unknown.
	FS string
	// BlockSize is the allocation unit (block or cluster) in bytes; 512
	// for the every-sector fallback.
	BlockSize int64
	// Used is sorted, non-overlapping and merged (no two ranges touch),
	// inside [0, size), and covers everything that must be copied.
	Used []Range
	// UsedBytes is the sum of the lengths in Used.
	UsedBytes int64
	// Reason is non-empty when the map fell back to every sector (Used is
	// [{0, size}]); it is a sentence for the user saying why. It is empty
	// when the map is exact.
	Reason string
	// Cuts are byte offsets, sorted and distinct, where the data of a
	// large file starts or ends (each extent or run of contiguous clusters
	// of it, on ext2/3/4, FAT, exFAT and NTFS). A
	// backup starts a chunk at each, so that a copy of a file elsewhere on
	// the disk is cut into the same chunks as the original, and stored
	// once. They are hints: any set of cuts, or none, images the same
	// bytes; only exact maps from ReadWithCuts have them.
	Cuts []int64
}

// CutMinFile is the smallest file whose extents become Cuts: smaller files
// share a chunk with their neighbours anyway, and cutting around them
// would only make chunks smaller.
const CutMinFile = 256 << 10

// maxCuts bounds Cuts (8 bytes each); a filesystem of more large-file
// extents than that gets cuts for the first ones only.
const maxCuts = 1 << 20

// Full returns the every-sector map of size bytes, for content that cannot
// be mapped; reason says why, for the user.
func Full(size int64, reason string) *Map {
	m := &Map{BlockSize: 512, Reason: reason}
	if size > 0 {
		m.Used = []Range{{0, size}}
		m.UsedBytes = size
	}
	return m
}

// Read maps the filesystem of size bytes that r holds.
//
// The error is non-nil only when r fails (an I/O error, wrapped, naming the
// offset); unknown, encrypted, inconsistent or damaged content gives the
// every-sector map with Reason set.
func Read(r io.ReaderAt, size int64) (*Map, error) { return read(r, size, false) }

// ReadWithCuts is Read that also fills in Cuts, for a backup's chunker. On
// NTFS it reads the whole MFT for them, which Read does not.
func ReadWithCuts(r io.ReaderAt, size int64) (*Map, error) { return read(r, size, true) }

func read(r io.ReaderAt, size int64, cuts bool) (*Map, error) {
	if size < 0 {
		return nil, fmt.Errorf("fsmap: negative size %d", size)
	}
	info, err := fsprobe.Probe(r, size)
	if err != nil {
		return nil, fmt.Errorf("fsmap: %w", err)
	}
	d := &dev{r: r, size: size}
	b := &builder{size: size, wantCuts: cuts}
	var bs int64
	switch info.Type {
	case "ext2", "ext3", "ext4", "ext4dev":
		bs, err = mapExt(d, b, info.Type)
	case "vfat":
		bs, err = mapFAT(d, b)
	case "exfat":
		bs, err = mapExFAT(d, b)
	case "ntfs":
		bs, err = mapNTFS(d, b)
	case "swap":
		// Only the header page (signature, UUID, label) means anything;
		// mkswap's layout is rebuilt by the kernel on every swapon.
		bs = info.BlockSize
		b.add(0, bs)
	case "crypto_LUKS":
		err = fallbackf("LUKS encrypted volume: its used blocks cannot be read without the key")
	case "BitLocker":
		err = fallbackf("BitLocker encrypted volume: its used blocks cannot be read without the key")
	case "jbd":
		err = fallbackf("external ext3/ext4 journal device: it has no allocation bitmap")
	case "":
		err = fallbackf("unknown filesystem (no ext2/3/4, FAT, exFAT, NTFS or swap signature)")
	default:
		err = fallbackf("%s: no allocation map reader for this filesystem", info.Type)
	}
	var fb *fallbackError
	if errors.As(err, &fb) {
		m := Full(size, fb.reason)
		m.FS = info.Type
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	m := &Map{FS: info.Type, BlockSize: bs, Used: b.finish(), Cuts: b.finishCuts()}
	for _, r := range m.Used {
		m.UsedBytes += r.Len
	}
	return m, nil
}

// fallbackError makes Read return the every-sector map with reason.
type fallbackError struct{ reason string }

func (e *fallbackError) Error() string { return e.reason }

func fallbackf(format string, args ...any) error {
	return &fallbackError{reason: fmt.Sprintf(format, args...)}
}

// dev gives bounded, checked reads of the filesystem.
type dev struct {
	r    io.ReaderAt
	size int64
}

// chunk is the largest single read: bitmaps and FATs are streamed in pieces
// of this size so that a hostile (or merely huge) volume cannot make us
// allocate much.
const chunk = 1 << 20

// read fills b from off. A range outside [0, size) is a fallback (the
// metadata points past the end); a failing r is an error.
func (d *dev) read(b []byte, off int64, what string) error {
	n := int64(len(b))
	if off < 0 || off > d.size || n > d.size-off {
		return fallbackf("%s at byte %d lies outside the %d-byte volume", what, off, d.size)
	}
	m, err := d.r.ReadAt(b, off)
	if m == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("fsmap: reading %s (%d bytes at offset %d): %w", what, n, off, err)
}

// builder collects ranges. Bitmap walks add them in ascending order, so a
// range that touches the last one extends it; metadata added out of order
// is sorted out in finish.
type builder struct {
	size int64
	rs   []Range
	// gap is the largest gap compact has bridged so far.
	gap int64
	// cuts are Map.Cuts, in the order found, when wantCuts.
	cuts     []int64
	wantCuts bool
}

// cut records a Map.Cuts offset; those outside (0, size) mean nothing.
func (b *builder) cut(off int64) {
	if b.wantCuts && off > 0 && off < b.size && len(b.cuts) < maxCuts {
		b.cuts = append(b.cuts, off)
	}
}

func (b *builder) finishCuts() []int64 {
	slices.Sort(b.cuts)
	return slices.Compact(b.cuts)
}

// maxRanges bounds the collected ranges (16 bytes each). A pathological
// bitmap (every other block used on a multi-TiB volume) would otherwise
// need gigabytes; compact bridges the smallest gaps instead, which copies a
// few free blocks more but never fewer.
const maxRanges = 1 << 22

// add records [off, off+n), clamped to [0, size).
func (b *builder) add(off, n int64) {
	if n <= 0 || off >= b.size {
		return
	}
	end := off + n
	if end < off || end > b.size { // end < off: off+n overflowed
		end = b.size
	}
	off = max(off, 0)
	if end <= off {
		return
	}
	if k := len(b.rs); k > 0 {
		last := &b.rs[k-1]
		if off >= last.Off && off <= last.Off+last.Len+b.gap {
			last.Len = max(last.Len, end-last.Off)
			return
		}
	}
	b.rs = append(b.rs, Range{off, end - off})
	if len(b.rs) >= maxRanges {
		b.compact()
	}
}

// compact sorts and merges, then bridges ever larger gaps until at most
// half of maxRanges remain.
func (b *builder) compact() {
	b.rs = merge(b.rs, b.gap)
	for len(b.rs) > maxRanges/2 {
		b.gap = max(2*b.gap, 4096)
		b.rs = merge(b.rs, b.gap)
	}
}

func (b *builder) finish() []Range {
	return merge(b.rs, b.gap)
}

// merge sorts rs and joins ranges that overlap, touch, or are at most gap
// bytes apart.
func merge(rs []Range, gap int64) []Range {
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.Off, b.Off) })
	out := rs[:0]
	for _, r := range rs {
		if k := len(out); k > 0 && r.Off <= out[k-1].Off+out[k-1].Len+gap {
			out[k-1].Len = max(out[k-1].Len, r.Off+r.Len-out[k-1].Off)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// bitRuns calls add(first, n) for each run of set bits in bits[0:nbits]
// (LSB first within a byte), numbered from base.
func bitRuns(bits []byte, nbits, base int64, add func(first, n int64)) {
	nbits = min(nbits, int64(len(bits))*8)
	start := int64(-1)
	for i := int64(0); i < nbits; {
		if i%8 == 0 && i+8 <= nbits {
			switch bits[i/8] {
			case 0x00:
				if start >= 0 {
					add(base+start, i-start)
					start = -1
				}
				i += 8
				continue
			case 0xFF:
				if start < 0 {
					start = i
				}
				i += 8
				continue
			}
		}
		if bits[i/8]&(1<<(i%8)) != 0 {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			add(base+start, i-start)
			start = -1
		}
		i++
	}
	if start >= 0 {
		add(base+start, nbits-start)
	}
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
