package layout

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"unicode/utf16"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// bootCodeSize is the part of sector 0 before the disk signature: the MBR
// boot code that Write keeps.
const bootCodeSize = 440

// Write writes the table t to the disk w of size bytes, with t.SectorSize
// sectors.
//
// For GPT it writes a protective MBR (with bootCode, the first 440 bytes of
// the stored sector 0, if non-nil), the primary header and entries, and the
// backup entries and header at the end of this disk. For MBR it writes
// sector 0 (bootCode, disk signature, the four primary entries) and an
// extended boot record for each logical partition, at Partition.EBR (for
// a zero EBR: the extended partition's start for partition 5, the sector
// before the partition for the others).
//
// Writing an MBR also zeroes the headers of a GPT left on the disk, which
// would make tools see a second table, but only in sectors outside every
// partition, so Write may run before or after the partitions' contents are
// written. If w is not also an io.ReaderAt it cannot check which sectors
// hold a GPT header and zeroes the header sectors (LBA 1 and the last) in
// any case: then write the gap before the first partition (where GRUB
// keeps its core image on MBR disks) after calling Write.
func Write(w io.WriterAt, size int64, t *Table, bootCode []byte) error {
	if t == nil {
		return errorf("no table to write")
	}
	if err := check(t, size); err != nil {
		return errorf("refusing to write an invalid table: %w", err)
	}
	if len(bootCode) > bootCodeSize {
		bootCode = bootCode[:bootCodeSize]
	}
	switch t.Type {
	case GPT:
		return writeGPT(w, size, t, bootCode, true)
	case MBR:
		return writeMBR(w, size, t, bootCode)
	}
	return errorf("cannot write a %v table", t.Type)
}

// WriteGPT writes the GPT t to w, a disk of size bytes, for media whose
// sector 0 holds a boot loader of their own (mkmedia's USB stick and
// hybrid ISO): the first 446 bytes of sector 0 (boot code, disk
// signature) stay as the caller wrote them; the protective MBR's four
// entries and boot signature, the primary header and entries, and the
// backup entries and header at the end of the disk are written. It is the
// same writer as Write's for a GPT, through the same go-diskfs adapter.
func WriteGPT(w io.WriterAt, size int64, t *Table) error {
	if t == nil || t.Type != GPT {
		return errorf("WriteGPT needs a GPT table")
	}
	if err := check(t, size); err != nil {
		return errorf("refusing to write an invalid table: %w", err)
	}
	return writeGPT(w, size, t, nil, false)
}

// writeGPT writes sector 0 whole (bootCode, then zeros up to the entries)
// when whole is set, or only from its partition entries on; then the GPT.
func writeGPT(w io.WriterAt, size int64, t *Table, bootCode []byte, whole bool) error {
	ss := int64(t.SectorSize)
	sectors := size / ss
	// go-diskfs writes the protective MBR with a 32-bit size that wraps
	// on disks over 2 TiB, and without CHS values, so we write sector 0
	// ourselves.
	s0 := make([]byte, ss)
	copy(s0, bootCode)
	pmbrSize := min(sectors-1, 0xFFFFFFFF)
	putMBREntry(s0[446:], false, 0xEE, 1, uint32(pmbrSize))
	s0[510], s0[511] = 0x55, 0xAA

	gt := &gpt.Table{
		LogicalSectorSize:  t.SectorSize,
		PhysicalSectorSize: t.SectorSize,
		GUID:               t.DiskGUID,
	}
	for _, p := range t.Partitions {
		attr := p.Attributes &^ attrLegacyBoot
		if p.Bootable {
			attr |= attrLegacyBoot
		}
		gt.Partitions = append(gt.Partitions, &gpt.Partition{
			Index:      p.Number,
			Start:      uint64(p.Start / ss),
			End:        uint64((p.Start+p.Size)/ss - 1),
			Size:       uint64(p.Size),
			Type:       gpt.Type(p.Type),
			Name:       p.Name,
			GUID:       p.GUID,
			Attributes: attr,
		})
	}
	off := int64(0)
	if !whole {
		s0, off = s0[446:512], 446
	}
	if err := writeAt(w, s0, off, "protective MBR"); err != nil {
		return err
	}
	if err := gt.Write(&writerFile{w: w, size: size}, size); err != nil {
		return errorf("writing GPT: %w", err)
	}
	return nil
}

func writeMBR(w io.WriterAt, size int64, t *Table, bootCode []byte) error {
	ss := int64(t.SectorSize)
	sig, err := strconv.ParseUint(t.DiskGUID, 16, 32)
	if err != nil && t.DiskGUID != "" {
		return errorf("MBR disk signature %q is not 8 hex digits", t.DiskGUID)
	}
	s0 := make([]byte, ss)
	copy(s0, bootCode)
	binary.LittleEndian.PutUint32(s0[440:], uint32(sig))
	var ext *Partition
	var logical []Partition
	for _, p := range t.Partitions {
		if p.Number > 4 {
			logical = append(logical, p)
			continue
		}
		typ := mbrType(p.Type)
		if isExtendedByte(typ) {
			ext = &p
		}
		putMBREntry(s0[446+16*(p.Number-1):], p.Bootable, typ, uint32(p.Start/ss), uint32(p.Size/ss))
	}
	s0[510], s0[511] = 0x55, 0xAA

	// Stale GPT structures first, so they can never overwrite ours.
	if err := zeroStale(w, size, t); err != nil {
		return err
	}
	slices.SortFunc(logical, func(a, b Partition) int { return cmp.Compare(a.Number, b.Number) })
	ebrs := ebrOffsets(t, ext, logical)
	if ext != nil && len(logical) == 0 {
		// An empty extended partition: no valid boot record at its start.
		if err := writeAt(w, make([]byte, ss), ext.Start, "extended boot record"); err != nil {
			return err
		}
	}
	for i, p := range logical {
		b := make([]byte, ss)
		putMBREntry(b[446:], p.Bootable, mbrType(p.Type), uint32((p.Start-ebrs[i])/ss), uint32(p.Size/ss))
		if i+1 < len(logical) {
			n := logical[i+1]
			putMBREntry(b[462:], false, 0x05, uint32((ebrs[i+1]-ext.Start)/ss), uint32((n.Start+n.Size-ebrs[i+1])/ss))
		}
		b[510], b[511] = 0x55, 0xAA
		if err := writeAt(w, b, ebrs[i], fmt.Sprintf("extended boot record of partition %d", p.Number)); err != nil {
			return err
		}
	}
	return writeAt(w, s0, 0, "MBR")
}

// ebrOffsets gives the boot record offsets of the logical partitions.
func ebrOffsets(t *Table, ext *Partition, logical []Partition) []int64 {
	ss := int64(t.SectorSize)
	var out []int64
	for i, p := range logical {
		switch {
		case p.EBR != 0:
			out = append(out, p.EBR)
		case i == 0:
			out = append(out, ext.Start)
		default:
			out = append(out, p.Start-ss)
		}
	}
	return out
}

// zeroStale zeroes the GPT headers (of 512- or 4096-byte sectors) at the
// start and end of the disk, except in sector 0 and the partitions. If w
// can also read, only sectors that hold a GPT header are zeroed, along with
// their entry arrays, so boot loader code in the gap before the first
// partition (GRUB's core.img) survives; otherwise just the header sectors.
func zeroStale(w io.WriterAt, size int64, t *Table) error {
	r, canRead := w.(io.ReaderAt)
	var stale [][2]int64
	for _, gs := range []int64{512, 4096} {
		arr := roundUp(gptEntries*128, gs)
		last := size/gs*gs - gs
		if 2*gs+arr > size {
			continue
		}
		for _, h := range []struct{ hdr, arr int64 }{{gs, 2 * gs}, {last, last - arr}} {
			if !canRead {
				stale = append(stale, [2]int64{h.hdr, h.hdr + gs})
				continue
			}
			sig := make([]byte, 8)
			if _, err := r.ReadAt(sig, h.hdr); err != nil || string(sig) != "EFI PART" {
				continue
			}
			stale = append(stale, [2]int64{h.hdr, h.hdr + gs}, [2]int64{h.arr, h.arr + arr})
		}
	}
	used := [][2]int64{{0, int64(t.SectorSize)}}
	for _, p := range t.Partitions {
		used = append(used, [2]int64{p.Start, p.Start + p.Size})
	}
	for _, r := range stale {
		for _, free := range subtract(r, used) {
			if err := writeAt(w, make([]byte, free[1]-free[0]), free[0], "stale GPT"); err != nil {
				return err
			}
		}
	}
	return nil
}

// subtract returns the parts of r outside every range of used.
func subtract(r [2]int64, used [][2]int64) [][2]int64 {
	out := [][2]int64{r}
	for _, u := range used {
		var next [][2]int64
		for _, f := range out {
			if u[1] <= f[0] || u[0] >= f[1] {
				next = append(next, f)
				continue
			}
			if f[0] < u[0] {
				next = append(next, [2]int64{f[0], u[0]})
			}
			if u[1] < f[1] {
				next = append(next, [2]int64{u[1], f[1]})
			}
		}
		out = next
	}
	return out
}

// putMBREntry encodes a 16-byte partition entry with CHS addresses for
// the usual 255-head, 63-sector geometry, as sfdisk writes them.
func putMBREntry(e []byte, boot bool, typ uint8, start, size uint32) {
	if boot {
		e[0] = 0x80
	} else {
		e[0] = 0
	}
	copy(e[1:4], chs(uint64(start)))
	e[4] = typ
	copy(e[5:8], chs(uint64(start)+uint64(size)-1))
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], size)
}

func chs(lba uint64) []byte {
	const heads, spt = 255, 63
	c := lba / (heads * spt)
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	h := (lba / spt) % heads
	s := lba%spt + 1
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

func writeAt(w io.WriterAt, b []byte, off int64, what string) error {
	if _, err := w.WriteAt(b, off); err != nil {
		return errorf("writing %s at byte %d: %w", what, off, err)
	}
	return nil
}

// check reports what makes t unwritable to a disk of size bytes.
func check(t *Table, size int64) error {
	switch t.SectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("sector size %d is not supported", t.SectorSize)
	}
	ss := int64(t.SectorSize)
	sectors := size / ss
	var first, end int64
	switch t.Type {
	case GPT:
		arr := roundUp(gptEntries*128, ss)
		first, end = 2*ss+arr, (sectors-1)*ss-arr
		if _, err := uuid.Parse(t.DiskGUID); err != nil && t.DiskGUID != "" {
			return fmt.Errorf("disk GUID %q: %w", t.DiskGUID, err)
		}
	case MBR:
		first, end = ss, min(sectors, 1<<32)*ss
	default:
		return fmt.Errorf("table type %v cannot be written", t.Type)
	}
	var ext *Partition
	seen := map[int]bool{}
	var data []Partition
	for _, p := range t.Partitions {
		if seen[p.Number] {
			return fmt.Errorf("partition %d appears twice", p.Number)
		}
		seen[p.Number] = true
		if p.Start%ss != 0 || p.Size%ss != 0 || p.Size <= 0 {
			return fmt.Errorf("partition %d (%d bytes at byte %d) is not whole %d-byte sectors", p.Number, p.Size, p.Start, ss)
		}
		if p.Start < first || p.Start+p.Size > end {
			return fmt.Errorf("partition %d (bytes %d to %d) lies outside the usable bytes %d to %d of the %d-byte disk", p.Number, p.Start, p.Start+p.Size, first, end, size)
		}
		switch t.Type {
		case GPT:
			if p.Number < 1 || p.Number > gptEntries {
				return fmt.Errorf("partition number %d is outside 1 to %d", p.Number, gptEntries)
			}
			if _, err := uuid.Parse(p.Type); err != nil {
				return fmt.Errorf("partition %d type %q is not a GUID", p.Number, p.Type)
			}
			if _, err := uuid.Parse(p.GUID); err != nil && p.GUID != "" {
				return fmt.Errorf("partition %d GUID %q: %w", p.Number, p.GUID, err)
			}
			if n := len(utf16.Encode([]rune(p.Name))); n > 36 {
				return fmt.Errorf("partition %d name %q is longer than 36 UTF-16 units", p.Number, p.Name)
			}
		case MBR:
			if p.Number < 1 || p.Number > 4+maxLogical {
				return fmt.Errorf("partition number %d is outside 1 to %d", p.Number, 4+maxLogical)
			}
			if !validMBRType(p.Type) {
				return fmt.Errorf("partition %d type %q is not an MBR type like 0x83", p.Number, p.Type)
			}
			if p.Number <= 4 && isExtendedByte(mbrType(p.Type)) {
				if ext != nil {
					return fmt.Errorf("two extended partitions, %d and %d", ext.Number, p.Number)
				}
				ext = &p
				continue
			}
		}
		data = append(data, p)
	}
	slices.SortFunc(data, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	for i := 1; i < len(data); i++ {
		if a, b := data[i-1], data[i]; a.Start+a.Size > b.Start {
			return fmt.Errorf("partitions %d and %d overlap", a.Number, b.Number)
		}
	}
	if t.Type != MBR {
		return nil
	}
	var logical []Partition
	for _, p := range data {
		inExt := ext != nil && p.Start >= ext.Start && p.Start+p.Size <= ext.Start+ext.Size
		switch {
		case p.Number > 4 && !inExt:
			return fmt.Errorf("logical partition %d lies outside an extended partition", p.Number)
		case p.Number <= 4 && ext != nil && p.Start < ext.Start+ext.Size && ext.Start < p.Start+p.Size:
			return fmt.Errorf("primary partition %d overlaps extended partition %d", p.Number, ext.Number)
		case p.Number > 4:
			logical = append(logical, p)
		}
	}
	slices.SortFunc(logical, func(a, b Partition) int { return cmp.Compare(a.Number, b.Number) })
	for i, p := range logical {
		if p.Number != 5+i {
			return fmt.Errorf("logical partitions are not numbered 5, 6, … in order (partition %d)", p.Number)
		}
	}
	for i, e := range ebrOffsets(t, ext, logical) {
		if e%ss != 0 || e < ext.Start || e >= ext.Start+ext.Size || (i == 0 && e != ext.Start) {
			return fmt.Errorf("boot record of logical partition %d at byte %d is not inside extended partition %d (or, for the first, at its start)", logical[i].Number, e, ext.Number)
		}
		for _, p := range data {
			if e < p.Start+p.Size && p.Start < e+ss {
				return fmt.Errorf("boot record of logical partition %d at byte %d lies inside partition %d", logical[i].Number, e, p.Number)
			}
		}
	}
	return nil
}

func validMBRType(s string) bool {
	if len(s) != 4 || s[:2] != "0x" && s[:2] != "0X" {
		return false
	}
	_, err := strconv.ParseUint(s[2:], 16, 8)
	return err == nil && mbrType(s) != 0 && mbrType(s) != 0xEE
}

// writerFile adapts an io.WriterAt to the backend.WritableFile that
// go-diskfs's gpt.Table.Write takes; it only ever writes.
type writerFile struct {
	w    io.WriterAt
	size int64
}

func (f *writerFile) WriteAt(b []byte, off int64) (int, error) { return f.w.WriteAt(b, off) }
func (f *writerFile) ReadAt([]byte, int64) (int, error) {
	return 0, errorf("the disk is opened for writing the partition table only")
}
func (f *writerFile) Read([]byte) (int, error) { return f.ReadAt(nil, 0) }
func (f *writerFile) Seek(int64, int) (int64, error) {
	return 0, errorf("the disk is opened for writing the partition table only")
}
func (f *writerFile) Stat() (fs.FileInfo, error) { return fileInfo{size: f.size}, nil }
func (f *writerFile) Close() error               { return nil }

// Sync flushes the disk if it can be flushed; go-diskfs syncs between the
// GPT's parts so a crash leaves one consistent copy.
func (f *writerFile) Sync() error {
	if s, ok := f.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}
