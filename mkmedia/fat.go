package mkmedia

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf16"
)

// A small FAT32 writer of our own. go-diskfs writes FAT32 too, but its file
// timestamps come from time.Now or the process-wide SOURCE_DATE_EPOCH (the
// "." and ".." entries cannot be reset afterwards), its reproducible mode sets
// the volume ID to zero, and it always writes the whole FAT. Media must be
// byte-identical for the same bundle, and a volume written to an 8G sparse
// image file should stay sparse, so the ESP and LIFEBOAT-DATA are written
// here: one pass, files laid out contiguously, nothing read back. Tests check
// the result with fsck.vfat and by reading it with go-diskfs.

// fatFile is one file of a new FAT32 volume.
type fatFile struct {
	Path string // slash-separated, relative to the root, e.g. "EFI/BOOT/BOOTX64.EFI"
	Data []byte
}

// fatVolume describes a FAT32 volume for writeFAT32.
type fatVolume struct {
	Size          int64  // bytes, a multiple of 512
	Label         string // at most 11 characters of A-Z 0-9 - _
	VolumeID      uint32
	Time          time.Time // every timestamp
	HiddenSectors uint32    // LBA of the partition, as the BPB records it
	Files         []fatFile
}

const (
	fatSector   = 512
	fatReserved = 32 // boot sector, FSInfo, backups at 6 and 7; as mkfs.fat
	fatMinClus  = 65525
	fatMaxClus  = 0x0ffffff5 - 2
	fatEOC      = 0x0fffffff
	// fatMinSize is the smallest volume writeFAT32 accepts: FAT32 needs
	// 65525 clusters, 32 MiB with 512-byte clusters, plus its FATs.
	fatMinSize = 33 << 20
)

// fatClusterBytes follows mkfs.fat's (and Windows') choice by volume size.
func fatClusterBytes(size int64) int64 {
	switch {
	case size <= 260<<20:
		return 512
	case size <= 8<<30:
		return 4 << 10
	case size <= 16<<30:
		return 8 << 10
	case size <= 32<<30:
		return 16 << 10
	}
	return 32 << 10
}

// fatGeometry computes the reserved sectors, sectors per FAT and cluster count.
func fatGeometry(size int64) (spc, reserved, fatSectors, clusters int64, err error) {
	total := size / fatSector
	spc = fatClusterBytes(size) / fatSector
	// Smallest FAT that covers the clusters that fit next to it (mkfs.fat's
	// closed form, then corrected upwards).
	fatSectors = (4*(total-fatReserved) + fatSector*spc + 8 - 1) / (fatSector*spc + 8)
	for {
		clusters = (total - fatReserved - 2*fatSectors) / spc
		if clusters+2 <= fatSectors*fatSector/4 {
			break
		}
		fatSectors++
	}
	// Align the data area (and so every cluster) to the cluster size.
	reserved = fatReserved
	if pad := (spc - (reserved+2*fatSectors)%spc) % spc; pad > 0 {
		reserved += pad
		clusters = (total - reserved - 2*fatSectors) / spc
	}
	switch {
	case clusters < fatMinClus:
		return 0, 0, 0, 0, fmt.Errorf("%d bytes hold only %d clusters; FAT32 needs %d (at least %d MiB)", size, clusters, fatMinClus, fatMinSize>>20)
	case clusters > fatMaxClus:
		return 0, 0, 0, 0, fmt.Errorf("%d bytes are too many for FAT32 (at most 2 TiB)", size)
	}
	return spc, reserved, fatSectors, clusters, nil
}

type fatNode struct {
	name     string
	dir      bool
	data     []byte
	children []*fatNode
	cluster  uint32 // first cluster; 0 for an empty file
	nclus    uint32
	entries  []byte // a directory's encoded entries
}

// writeFAT32 writes the volume to w at offsets 0 to v.Size. It writes every
// byte the filesystem depends on (reserved area, both FATs, every allocated
// cluster), so w need not be zeroed first; with sparse set it skips blocks
// that are all zeros, for a w that reads as zeros already (a new file).
func writeFAT32(w io.WriterAt, v fatVolume, sparse bool) error {
	if v.Size%fatSector != 0 {
		return fmt.Errorf("FAT32 volume size %d is not a multiple of %d", v.Size, fatSector)
	}
	spc, reserved, fatSectors, clusters, err := fatGeometry(v.Size)
	if err != nil {
		return err
	}
	clusterBytes := spc * fatSector

	// Build the tree in the order the files are given.
	root := &fatNode{dir: true}
	for _, f := range v.Files {
		parts := strings.Split(strings.Trim(path.Clean("/"+f.Path), "/"), "/")
		n := root
		for i, p := range parts {
			var c *fatNode
			for _, ch := range n.children {
				if strings.EqualFold(ch.name, p) {
					c = ch
				}
			}
			last := i == len(parts)-1
			if c == nil {
				c = &fatNode{name: p, dir: !last}
				n.children = append(n.children, c)
			}
			if c.dir == last {
				return fmt.Errorf("FAT32 volume: %s is both a file and a folder", f.Path)
			}
			if last {
				c.data = f.Data
			}
			n = c
		}
	}

	// Allocate clusters: directories and files contiguously, pre-order.
	next := uint32(2)
	var alloc func(n, parent *fatNode) error
	alloc = func(n, parent *fatNode) error {
		if n.dir {
			var err error
			n.entries, err = dirEntries(n, parent, n == root, v)
			if err != nil {
				return err
			}
			// Cluster numbers are needed in the entries: allocate first,
			// encode again after the children have theirs.
			n.nclus = uint32(max(1, (int64(len(n.entries))+clusterBytes-1)/clusterBytes))
		} else {
			n.nclus = uint32((int64(len(n.data)) + clusterBytes - 1) / clusterBytes)
		}
		if n.nclus > 0 {
			n.cluster = next
			next += n.nclus
		}
		if int64(next-2) > clusters {
			return fmt.Errorf("FAT32 volume of %d bytes is too small for its files", v.Size)
		}
		for _, c := range n.children {
			if err := alloc(c, n); err != nil {
				return err
			}
		}
		return nil
	}
	if err := alloc(root, nil); err != nil {
		return err
	}
	used := next - 2

	put := func(b []byte, off int64) error {
		if sparse && isZero(b) {
			return nil
		}
		if _, err := w.WriteAt(b, off); err != nil {
			return fmt.Errorf("write FAT32 volume at byte %d: %w", off, err)
		}
		return nil
	}

	// Reserved area.
	res := make([]byte, reserved*fatSector)
	bs := res[:fatSector]
	copy(bs, []byte{0xeb, 0x58, 0x90})
	copy(bs[3:11], "LIFEBOAT")
	binary.LittleEndian.PutUint16(bs[11:], fatSector)
	bs[13] = byte(spc)
	binary.LittleEndian.PutUint16(bs[14:], uint16(reserved))
	bs[16] = 2    // FATs
	bs[21] = 0xf8 // fixed disk
	binary.LittleEndian.PutUint16(bs[24:], 63)
	binary.LittleEndian.PutUint16(bs[26:], 255)
	binary.LittleEndian.PutUint32(bs[28:], v.HiddenSectors)
	binary.LittleEndian.PutUint32(bs[32:], uint32(v.Size/fatSector))
	binary.LittleEndian.PutUint32(bs[36:], uint32(fatSectors))
	binary.LittleEndian.PutUint32(bs[44:], 2) // root directory cluster
	binary.LittleEndian.PutUint16(bs[48:], 1) // FSInfo sector
	binary.LittleEndian.PutUint16(bs[50:], 6) // backup boot sector
	bs[64] = 0x80
	bs[66] = 0x29
	binary.LittleEndian.PutUint32(bs[67:], v.VolumeID)
	copy(bs[71:82], fatLabel(v.Label))
	copy(bs[82:90], "FAT32   ")
	// Not bootable itself: int 18h hands over to the next boot device.
	copy(bs[90:], []byte{0xcd, 0x18, 0xf4, 0xeb, 0xfd})
	bs[510], bs[511] = 0x55, 0xaa
	fsi := res[fatSector : 2*fatSector]
	binary.LittleEndian.PutUint32(fsi[0:], 0x41615252)
	binary.LittleEndian.PutUint32(fsi[484:], 0x61417272)
	binary.LittleEndian.PutUint32(fsi[488:], uint32(clusters)-used)
	binary.LittleEndian.PutUint32(fsi[492:], next)
	binary.LittleEndian.PutUint32(fsi[508:], 0xaa550000)
	copy(res[6*fatSector:8*fatSector], res[:2*fatSector])
	if err := put(res, 0); err != nil {
		return err
	}

	// FATs, in chunks so that a large volume needs little memory.
	fatBytes := fatSectors * fatSector
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var chains []*fatNode
	var collect func(n *fatNode)
	collect = func(n *fatNode) {
		if n.nclus > 0 {
			chains = append(chains, n)
		}
		for _, c := range n.children {
			collect(c)
		}
	}
	collect(root)
	entry := func(i uint32) uint32 {
		switch {
		case i == 0:
			return 0x0fffff00 | 0xf8
		case i == 1:
			return fatEOC
		case i >= next:
			return 0
		}
		for _, n := range chains {
			if i >= n.cluster && i < n.cluster+n.nclus {
				if i == n.cluster+n.nclus-1 {
					return fatEOC
				}
				return i + 1
			}
		}
		return 0
	}
	for off := int64(0); off < fatBytes; off += chunk {
		b := buf[:min(chunk, fatBytes-off)]
		clear(b)
		first := uint32(off / 4)
		if first < next {
			for i := range uint32(len(b) / 4) {
				binary.LittleEndian.PutUint32(b[4*i:], entry(first+i))
			}
		}
		for copyN := range int64(2) {
			if err := put(b, reserved*fatSector+copyN*fatBytes+off); err != nil {
				return err
			}
		}
	}

	// Directories and files.
	dataStart := (reserved + 2*fatSectors) * fatSector
	var emit func(n, parent *fatNode) error
	emit = func(n, parent *fatNode) error {
		var body []byte
		if n.dir {
			var err error
			if body, err = dirEntries(n, parent, n == root, v); err != nil {
				return err
			}
		} else {
			body = n.data
		}
		if n.nclus > 0 {
			b := make([]byte, int64(n.nclus)*clusterBytes)
			copy(b, body)
			if err := put(b, dataStart+int64(n.cluster-2)*clusterBytes); err != nil {
				return err
			}
		}
		for _, c := range n.children {
			if err := emit(c, n); err != nil {
				return err
			}
		}
		return nil
	}
	return emit(root, nil)
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func fatLabel(s string) []byte {
	if s == "" {
		s = "NO NAME"
	}
	return []byte(fmt.Sprintf("%-11.11s", strings.ToUpper(s)))
}

// fatDateTime encodes t in FAT's local-time format (we store UTC).
func fatDateTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

// dirEntries encodes a directory's entries: ".", ".." (or the volume label
// in the root), then each child with long-name entries where its name is not
// an upper-case 8.3 name.
func dirEntries(n, parent *fatNode, isRoot bool, v fatVolume) ([]byte, error) {
	date, tm := fatDateTime(v.Time)
	var out bytes.Buffer
	short := func(name [11]byte, attr byte, cluster uint32, size uint32) {
		e := make([]byte, 32)
		copy(e[0:11], name[:])
		e[11] = attr
		binary.LittleEndian.PutUint16(e[14:], tm)
		binary.LittleEndian.PutUint16(e[16:], date)
		binary.LittleEndian.PutUint16(e[18:], date)
		binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
		binary.LittleEndian.PutUint16(e[22:], tm)
		binary.LittleEndian.PutUint16(e[24:], date)
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		binary.LittleEndian.PutUint32(e[28:], size)
		out.Write(e)
	}
	if isRoot {
		var l [11]byte
		copy(l[:], fatLabel(v.Label))
		short(l, 0x08, 0, 0)
	} else {
		dot, dotdot := [11]byte{}, [11]byte{}
		copy(dot[:], ".          ")
		copy(dotdot[:], "..         ")
		short(dot, 0x10, n.cluster, 0)
		pc := uint32(0)
		if parent != nil && parent.name != "" {
			pc = parent.cluster
		}
		short(dotdot, 0x10, pc, 0)
	}
	taken := map[[11]byte]bool{}
	for _, c := range n.children {
		sn, exact, err := shortName(c.name, taken)
		if err != nil {
			return nil, err
		}
		taken[sn] = true
		if !exact {
			out.Write(lfnEntries(c.name, sn))
		}
		attr, size := byte(0x20), uint32(len(c.data))
		if c.dir {
			attr, size = 0x10, 0
		}
		if len(c.data) > 0xffffffff {
			return nil, fmt.Errorf("FAT32 volume: %s is larger than 4 GiB", c.name)
		}
		short(sn, attr, c.cluster, size)
	}
	return out.Bytes(), nil
}

const fatShortChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~"

// shortName returns the 8.3 name for name; exact reports that name is its
// own short name (no long-name entries needed).
func shortName(name string, taken map[[11]byte]bool) (sn [11]byte, exact bool, err error) {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return sn, false, fmt.Errorf("FAT32 volume: bad file name %q", name)
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	clean := func(s string) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(s) {
			if strings.ContainsRune(fatShortChars, r) {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	ub, ue := clean(base), clean(ext)
	fits := len(ub) > 0 && len(ub) <= 8 && len(ue) <= 3 && ub == strings.ToUpper(base) && ue == strings.ToUpper(ext)
	copy(sn[:], fmt.Sprintf("%-8s%-3s", ub, ue))
	if fits && !taken[sn] {
		return sn, name == strings.ToUpper(name), nil
	}
	if ub == "" {
		ub = "_"
	}
	for i := 1; i < 1000000; i++ {
		tail := fmt.Sprintf("~%d", i)
		b := ub
		if len(b) > 8-len(tail) {
			b = b[:8-len(tail)]
		}
		copy(sn[:], fmt.Sprintf("%-8s%-3.3s", b+tail, ue))
		if !taken[sn] {
			return sn, false, nil
		}
	}
	return sn, false, fmt.Errorf("FAT32 volume: no short name left for %q", name)
}

// lfnEntries encodes name as VFAT long-name entries, last part first.
func lfnEntries(name string, sn [11]byte) []byte {
	var sum byte
	for _, c := range sn {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u)%13 != 0 {
		u = append(u, 0xffff)
	}
	out := make([]byte, 0, 32*n)
	for i := n; i >= 1; i-- {
		e := make([]byte, 32)
		e[0] = byte(i)
		if i == n {
			e[0] |= 0x40
		}
		e[11] = 0x0f
		e[13] = sum
		part := u[(i-1)*13 : i*13]
		for j, ch := range part {
			var off int
			switch {
			case j < 5:
				off = 1 + 2*j
			case j < 11:
				off = 14 + 2*(j-5)
			default:
				off = 28 + 2*(j-11)
			}
			binary.LittleEndian.PutUint16(e[off:], ch)
		}
		out = append(out, e...)
	}
	return out
}

// fat12SetTimes sets every timestamp in a FAT12 image's directories to t.
// go-diskfs stamps ".", ".." and the volume label with the clock, and the
// EFI boot image inside the ISO must not change from one build to the next.
func fat12SetTimes(img []byte, t time.Time) error {
	if len(img) < 512 {
		return fmt.Errorf("FAT image too short")
	}
	bps := int(binary.LittleEndian.Uint16(img[11:]))
	spc := int(img[13])
	reserved := int(binary.LittleEndian.Uint16(img[14:]))
	nfats := int(img[16])
	rootEntries := int(binary.LittleEndian.Uint16(img[17:]))
	fatSectors := int(binary.LittleEndian.Uint16(img[22:]))
	if bps == 0 || spc == 0 {
		return fmt.Errorf("FAT image has no geometry")
	}
	fat := img[reserved*bps : (reserved+fatSectors)*bps]
	rootStart := (reserved + nfats*fatSectors) * bps
	dataStart := rootStart + rootEntries*32
	clusterBytes := spc * bps
	next := func(c int) int {
		o := c * 3 / 2
		if o+1 >= len(fat) {
			return 0xfff
		}
		v := int(fat[o]) | int(fat[o+1])<<8
		if c%2 == 1 {
			return v >> 4
		}
		return v & 0xfff
	}
	date, tm := fatDateTime(t)
	var walk func(dir []byte, depth int)
	// Directory bytes are patched in place, so walk over slices of img.
	walkChain := func(c int, depth int) {
		for n := 0; c >= 2 && c < 0xff8 && n < 4096; n++ {
			o := dataStart + (c-2)*clusterBytes
			if o+clusterBytes > len(img) {
				return
			}
			walk(img[o:o+clusterBytes], depth)
			c = next(c)
		}
	}
	walk = func(dir []byte, depth int) {
		for i := 0; i+32 <= len(dir); i += 32 {
			e := dir[i : i+32]
			if e[0] == 0 {
				return
			}
			if e[0] == 0xe5 || e[11] == 0x0f {
				continue
			}
			e[13] = 0
			binary.LittleEndian.PutUint16(e[14:], tm)
			binary.LittleEndian.PutUint16(e[16:], date)
			binary.LittleEndian.PutUint16(e[18:], date)
			binary.LittleEndian.PutUint16(e[22:], tm)
			binary.LittleEndian.PutUint16(e[24:], date)
			if e[11]&0x10 != 0 && e[0] != '.' && depth < 8 {
				walkChain(int(binary.LittleEndian.Uint16(e[26:])), depth+1)
			}
		}
	}
	walk(img[rootStart:dataStart], 0)
	return nil
}
