// Package fsprobe identifies the filesystem in a partition from its bytes,
// the way blkid does, so the engine can choose how to image it (used-blocks
// copy for ext/FAT/NTFS, raw copy for unknown or encrypted content).
//
// It parses untrusted bytes: every read is bounded, every offset checked, and
// garbage yields Info{} rather than a panic.
//
// The smallest use:
//
//	f, _ := os.Open("/dev/sdb1")
//	fi, _ := f.Stat() // or the partition size from layout.Read
//	info, err := fsprobe.Probe(f, fi.Size())
//	if err != nil { ... } // an I/O error
//	fmt.Println(info.Type, info.Label, info.UUID)
package fsprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Info is what Probe learned about a filesystem. Its zero value means the
// content was not recognised.
type Info struct {
	// Type is the blkid TYPE: "ext2", "ext3", "ext4", "ext4dev", "jbd" (an
	// external ext journal), "vfat", "exfat", "ntfs", "swap", "crypto_LUKS",
	// "BitLocker", or "" when unknown.
	Type string
	// FATBits is 12, 16 or 32 for vfat and 0 otherwise.
	FATBits int `json:",omitempty"`
	// Label is the volume label as blkid prints it ("" if none).
	Label string
	// UUID is formatted as blkid prints it: ext, swap: 8-4-4-4-12 lowercase;
	// vfat, exfat: XXXX-XXXX; ntfs: 16 upper-case hex digits; LUKS: as
	// stored in the header.
	UUID string
	// BlockSize is the filesystem block or cluster size in bytes, 0 if unknown.
	BlockSize int64
	// Size is the filesystem size in bytes as recorded by the filesystem,
	// 0 if unknown. It may be smaller than the partition.
	Size int64
	// Used is the number of bytes in use as recorded by the filesystem
	// metadata, or -1 when the metadata does not say (or Type is "").
	// For ext it is (blocks - free blocks) × block size; for FAT32 it is
	// Size - free clusters × cluster size from a valid FSInfo sector.
	Used int64
}

// Probe reads the start of r (a partition or filesystem image of size bytes)
// and identifies the filesystem in it.
//
// The error is non-nil only for an I/O error from r; content that is not
// recognised, or is damaged, gives Info{} and a nil error.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	p := &prober{r: r, size: size}
	for _, probe := range []func(*prober) (Info, bool, error){
		// Order matters: LUKS and BitLocker hide a FAT-looking or opaque
		// header, and NTFS/exFAT boot sectors would fail the FAT checks
		// anyway but are cheaper to rule in first.
		probeLUKS,
		probeBitLocker,
		probeNTFS,
		probeExFAT,
		probeFAT,
		probeExt,
		probeSwap,
	} {
		info, ok, err := probe(p)
		if err != nil {
			return Info{}, err
		}
		if ok {
			return info, nil
		}
	}
	return Info{}, nil
}

// prober gives the probes bounded, checked reads with a small cache of the
// first 64 KiB, which is where every superblock lives.
type prober struct {
	r    io.ReaderAt
	size int64
	head []byte // first min(size, headSize) bytes, read lazily
	err  error
	done bool
}

const headSize = 64 << 10

// maxRead bounds any single read that a probe makes outside the head, so
// that garbage sizes in a superblock cannot make us allocate much.
const maxRead = 1 << 20

// read returns n bytes at off, or ok=false if they lie outside the device.
// The returned slice must not be modified.
func (p *prober) read(off, n int64) ([]byte, bool, error) {
	if off < 0 || n < 0 || n > maxRead || off > p.size || n > p.size-off {
		return nil, false, nil
	}
	if off+n <= headSize {
		if !p.done {
			p.done = true
			hn := min(p.size, headSize)
			p.head = make([]byte, hn)
			m, err := p.r.ReadAt(p.head, 0)
			if err != nil && !(errors.Is(err, io.EOF) && m == len(p.head)) {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					// The device is shorter than it claimed: keep what we got.
					p.head = p.head[:m]
				} else {
					p.err = fmt.Errorf("fsprobe: reading first %d bytes: %w", hn, err)
				}
			}
		}
		if p.err != nil {
			return nil, false, p.err
		}
		if off+n > int64(len(p.head)) {
			return nil, false, nil
		}
		return p.head[off : off+n], true, nil
	}
	b := make([]byte, n)
	m, err := p.r.ReadAt(b, off)
	if m == len(b) {
		return b, true, nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("fsprobe: reading %d bytes at offset %d: %w", n, off, err)
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

// cString returns b up to its first NUL, with invalid UTF-8 replaced.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// utf16String decodes little-endian UTF-16 up to the first NUL.
func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := le16(b, i)
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// uuidString formats 16 bytes as 8-4-4-4-12 lowercase hex.
func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// mulOK returns a*b, or ok=false if it overflows int64 or either is negative.
func mulOK(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > (1<<63-1)/b {
		return 0, false
	}
	return a * b, true
}
