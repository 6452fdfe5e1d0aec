// Package layout reads a disk's partition table (MBR or GPT) so an image can
// record the partitions and store the table's sectors verbatim, plans the
// table for a restore onto another disk, and writes it.
//
// Parsing goes through go-diskfs; this package adds the checks that make it
// safe on untrusted disks (bounded sizes, partitions inside the disk),
// logical partitions of an MBR extended partition, Linux partition numbers,
// and the raw table sectors.
//
// PlanLayout turns a stored table into one for a target disk of another
// size: Keep keeps the sizes, Fill gives the spare space to one partition
// (by default the last data partition), Manual takes sizes per partition;
// starts can move to an alignment, GPT and MBR convert into each other, and
// layouts that do not fit are refused with what to do instead. Write puts a
// table on a disk, with the backup GPT at the end of that disk.
//
// The smallest use:
//
//	f, _ := os.Open("/dev/sdb")
//	size, _ := f.Seek(0, io.SeekEnd)
//	t, err := layout.Read(f, size, 512)
//	if err != nil { ... }
//	for _, p := range t.Partitions {
//		fmt.Println(p.Number, p.Start, p.Size, p.Type)
//	}
//
// and to restore that table onto a larger disk:
//
//	plan, err := layout.PlanLayout(t, newSize, 512, layout.PlanOptions{Mode: layout.Fill, Align: 1 << 20})
//	if err != nil { ... } // says why it does not fit and what to do
//	err = layout.Write(target, newSize, plan.Table, t.Raw[0].Data[:440])
//	for _, m := range plan.Moves {
//		// copy m.SrcSize bytes from m.SrcStart to m.DstStart, then grow
//		// the filesystem if m.DstSize > m.SrcSize
//	}
package layout

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// TableType is the kind of partition table on a disk. Its values are the
// words an image file stores for a table ("mbr", "gpt"; see
// images/FORMAT.md), so images.Table carries this type as it is and the
// image format does not depend on how Go numbers constants.
type TableType string

const (
	// None: the disk has no partition table (blank, or a filesystem on the
	// whole disk). As PlanOptions.Table it means "keep the stored type".
	None TableType = ""
	// MBR is a DOS partition table, with logical partitions if any.
	MBR TableType = "mbr"
	// GPT is a GUID partition table behind a protective (or hybrid) MBR.
	GPT TableType = "gpt"
)

func (t TableType) String() string {
	if t == None {
		return "none"
	}
	return string(t)
}

// Known reports whether t is a table this package reads and writes.
func (t TableType) Known() bool { return t == MBR || t == GPT }

// extendedTypes are the MBR partition types of extended partitions: the
// containers that hold the extended boot records and the logical
// partitions, not a filesystem. This is the one list; IsExtended and
// isExtendedByte read it.
var extendedTypes = [...]uint8{0x05, 0x0F, 0x85}

// IsExtended reports whether typ, an MBR partition type as a Partition
// stores it ("0x05"), is an extended partition (a container).
func IsExtended(typ string) bool {
	return len(typ) == 4 && (typ[:2] == "0x" || typ[:2] == "0X") && mbrType(typ) != 0 && isExtendedByte(mbrType(typ))
}

func isExtendedByte(t uint8) bool {
	for _, e := range extendedTypes {
		if t == e {
			return true
		}
	}
	return false
}

// Partition is one partition as Linux sees it.
type Partition struct {
	// Number is 1-based as Linux numbers them (sdb2 is 2): the GPT entry
	// index, the MBR slot 1-4, or 5 and up for logical partitions in the
	// order of the extended partition's chain.
	Number int
	// Start and Size are in bytes.
	Start, Size int64
	// Type is the upper-case GPT type GUID, or the MBR type as "0x83".
	Type string
	// Name is the GPT partition name ("" for MBR).
	Name string
	// GUID is the GPT unique partition GUID, upper case; for MBR it is the
	// PARTUUID Linux derives from the disk signature ("1234abcd-02").
	GUID string
	// Bootable is the MBR active flag or the GPT legacy-BIOS-bootable
	// attribute (bit 2).
	Bootable bool
	// Attributes are the GPT attribute flags (bit 0 required, bit 1 no
	// block IO protocol, bit 2 legacy BIOS bootable, bits 48-63 type
	// specific); 0 for MBR.
	Attributes uint64
	// EBR is, for an MBR logical partition (5 and up), the byte offset of
	// the extended boot record that describes it; 0 otherwise.
	EBR int64
}

// Table is a disk's partition table.
type Table struct {
	Type TableType
	// DiskGUID is the upper-case GPT disk GUID, or for MBR the 32-bit disk
	// signature as blkid's PTUUID prints it ("1234abcd").
	DiskGUID string
	// SectorSize is the logical sector size the table was read with.
	SectorSize int
	// Partitions are in the order of their Number.
	Partitions []Partition
	// Raw holds the sectors that make up the table, so an image can store
	// and later write them verbatim: for MBR, sector 0 and every extended
	// boot record; for GPT, sector 0 (the protective MBR), the primary
	// header and entry array, and the backup entry array and header.
	// Ranges are sorted by offset, and ranges that touch are joined (so a
	// standard GPT gives two: sectors 0-33 and the last 33 sectors).
	Raw []RawRange
	// RecoveredFromBackup is set when the primary GPT was damaged and the
	// table was read from the backup at the end of the disk. The primary
	// should be repaired (sgdisk -e, or writing the table back) before the
	// disk is trusted; Raw still holds the damaged primary as found.
	RecoveredFromBackup bool
}

// RawRange is a run of bytes of the disk at Offset.
type RawRange struct {
	Offset int64
	Data   []byte
}

// maxEntryArray bounds the GPT entry array we are willing to read. The UEFI
// minimum is 16 KiB (128 entries of 128 bytes); no tool we know makes one
// larger than 1 MiB.
const maxEntryArray = 4 << 20

// maxLogical bounds the extended-partition chain; Linux itself stops at 256
// partitions per disk (DISK_MAX_PARTS).
const maxLogical = 256

// Read reads the partition table of a disk of size bytes with the given
// logical sector size (512 or 4096; 0 means 512).
//
// A disk without a table, or with a filesystem on the whole disk, gives
// &Table{Type: None}. A table that is present but damaged, or that
// describes partitions outside the disk, gives an error saying what is
// wrong. I/O errors from r are wrapped.
func Read(r io.ReaderAt, size int64, sectorSize int) (t *Table, err error) {
	if sectorSize == 0 {
		sectorSize = 512
	}
	switch sectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, errorf("sector size %d is not supported; use 512 or 4096", sectorSize)
	}
	if size < 0 {
		return nil, errorf("negative disk size %d", size)
	}
	// go-diskfs is not written for hostile input; a panic in it must not
	// take the whole program down.
	defer func() {
		if v := recover(); v != nil {
			t, err = nil, errorf("partition table parser failed on malformed data: %v", v)
		}
	}()

	d := &disk{r: r, size: size}
	ss := int64(sectorSize)
	if size < ss {
		return &Table{Type: None, SectorSize: sectorSize}, nil
	}
	mbr0, err := d.read(0, ss)
	if err != nil {
		return nil, err
	}
	if mbr0[510] != 0x55 || mbr0[511] != 0xAA {
		return &Table{Type: None, SectorSize: sectorSize}, nil
	}
	if isProtectiveMBR(mbr0) {
		return readGPT(d, ss, mbr0)
	}
	if isVBR(mbr0) {
		return &Table{Type: None, SectorSize: sectorSize}, nil
	}
	return readMBR(d, ss, mbr0)
}

// disk adapts an io.ReaderAt of known size for our reads and, through
// storage, for go-diskfs.
type disk struct {
	r    io.ReaderAt
	size int64
}

func (d *disk) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return nil, errorf("%d bytes at offset %d lie outside the %d-byte disk", n, off, d.size)
	}
	b := make([]byte, n)
	m, err := d.r.ReadAt(b, off)
	if m == len(b) {
		return b, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, errorf("reading %d bytes at offset %d: %w", n, off, err)
}

// isProtectiveMBR reports whether any MBR slot has type 0xEE, as libfdisk
// and the Linux kernel decide (a hybrid MBR counts too).
func isProtectiveMBR(b []byte) bool {
	for i := range 4 {
		if b[446+16*i+4] == 0xEE {
			return true
		}
	}
	return false
}

// isVBR reports whether sector 0 is the boot sector of a filesystem on the
// whole disk (a "superfloppy"), whose 0x55AA is not an MBR's. libblkid
// applies the same exception for FAT and NTFS.
func isVBR(b []byte) bool {
	oem := string(b[3:11])
	if oem == "NTFS    " || oem == "EXFAT   " {
		return true
	}
	if b[0] != 0xEB && b[0] != 0xE9 {
		return false
	}
	// A FAT BPB: power-of-two sector and cluster sizes, reserved sectors,
	// at least one FAT, and a valid media byte.
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	media := b[21]
	return bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 &&
		spc != 0 && spc&(spc-1) == 0 &&
		binary.LittleEndian.Uint16(b[14:]) != 0 && b[16] != 0 &&
		(media == 0xF0 || media >= 0xF8) &&
		(string(b[54:59]) == "FAT12" || string(b[54:59]) == "FAT16" || string(b[82:87]) == "FAT32")
}

func readMBR(d *disk, ss int64, b []byte) (*Table, error) {
	// Linux only honours boot flags 0x00 and 0x80; anything else means
	// sector 0 is not (or no longer) an MBR.
	for i := range 4 {
		if f := b[446+16*i]; f != 0 && f != 0x80 {
			return nil, errorf("MBR partition entry %d has invalid boot flag 0x%02x; sector 0 is damaged or is not a partition table", i+1, f)
		}
	}
	mt, err := mbr.Read(d.storage(), int(ss), int(ss))
	if err != nil {
		return nil, errorf("reading MBR: %w", err)
	}
	t := &Table{
		Type:       MBR,
		DiskGUID:   mt.UUID(),
		SectorSize: int(ss),
		Raw:        []RawRange{{Offset: 0, Data: b}},
	}
	var ext *mbr.Partition
	for _, p := range mt.Partitions {
		if p.Size == 0 {
			continue // an unused slot; Linux skips it but keeps the number
		}
		if isExtended(p.Type) {
			if ext != nil {
				return nil, errorf("MBR has two extended partitions (%d and %d)", ext.Index, p.Index)
			}
			ext = p
		}
		part, err := mbrPartition(d, ss, t.DiskGUID, p.Index, p, int64(p.Start), 0)
		if err != nil {
			return nil, err
		}
		t.Partitions = append(t.Partitions, part)
	}
	if ext != nil {
		if err := readLogical(d, ss, t, ext); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func isExtended(t mbr.Type) bool { return isExtendedByte(uint8(t)) }

// mbrPartition converts an entry whose first sector is at absolute LBA start.
// ebr is the LBA of the extended boot record of a logical partition.
func mbrPartition(d *disk, ss int64, diskID string, number int, p *mbr.Partition, start, ebr int64) (Partition, error) {
	part := Partition{
		Number:   number,
		Start:    start * ss,
		Size:     int64(p.Size) * ss,
		Type:     fmt.Sprintf("0x%02x", uint8(p.Type)),
		GUID:     fmt.Sprintf("%s-%02x", diskID, number),
		Bootable: p.Bootable,
	}
	if number > 4 {
		part.EBR = ebr * ss
	}
	if part.Start+part.Size > d.size {
		return Partition{}, errorf("MBR partition %d (bytes %d to %d) extends past the end of the %d-byte disk", number, part.Start, part.Start+part.Size, d.size)
	}
	return part, nil
}

// readLogical follows the chain of extended boot records (EBRs). Each EBR's
// first entry is a logical partition relative to the EBR; its second entry
// links to the next EBR relative to the start of the extended partition.
func readLogical(d *disk, ss int64, t *Table, ext *mbr.Partition) error {
	extStart, extEnd := int64(ext.Start), int64(ext.Start)+int64(ext.Size)
	seen := map[int64]bool{}
	number := 5
	for ebr := extStart; ; {
		if seen[ebr] {
			return errorf("extended partition chain loops back to sector %d", ebr)
		}
		if len(seen) >= maxLogical {
			return errorf("extended partition chain is longer than %d records", maxLogical)
		}
		seen[ebr] = true
		if ebr < extStart || ebr >= extEnd {
			return errorf("extended boot record at sector %d lies outside the extended partition (sectors %d to %d)", ebr, extStart, extEnd)
		}
		b, err := d.read(ebr*ss, ss)
		if err != nil {
			return err
		}
		t.Raw = append(t.Raw, RawRange{Offset: ebr * ss, Data: b})
		if b[510] != 0x55 || b[511] != 0xAA {
			if ebr == extStart {
				return nil // an empty extended partition, as fdisk leaves it
			}
			return errorf("extended boot record at sector %d has no 0x55AA signature", ebr)
		}
		data, link := mbrEntry(b, 0), mbrEntry(b, 1)
		if data.size != 0 && !isExtended(data.typ) {
			p := &mbr.Partition{Bootable: data.boot == 0x80, Type: data.typ, Size: data.size}
			start := ebr + int64(data.start)
			part, err := mbrPartition(d, ss, t.DiskGUID, number, p, start, ebr)
			if err != nil {
				return err
			}
			if start+int64(data.size) > extEnd {
				return errorf("logical partition %d (sectors %d to %d) extends past its extended partition (ends at sector %d)", number, start, start+int64(data.size), extEnd)
			}
			t.Partitions = append(t.Partitions, part)
			number++
		}
		if link.size == 0 || !isExtended(link.typ) {
			return nil
		}
		ebr = extStart + int64(link.start)
	}
}

type rawEntry struct {
	boot        byte
	typ         mbr.Type
	start, size uint32
}

func mbrEntry(b []byte, i int) rawEntry {
	e := b[446+16*i:]
	return rawEntry{
		boot:  e[0],
		typ:   mbr.Type(e[4]),
		start: binary.LittleEndian.Uint32(e[8:]),
		size:  binary.LittleEndian.Uint32(e[12:]),
	}
}

// gptHeader holds the fields of a GPT header that we check before handing
// the disk to go-diskfs, which would otherwise allocate whatever the entry
// count × entry size of a corrupt (but CRC-valid) header asks for.
type gptHeader struct {
	myLBA, altLBA  uint64
	firstUsable    uint64
	lastUsable     uint64
	entriesLBA     uint64
	entries, esize uint32
}

var errNoGPT = errors.New("no valid GPT header")

// parseGPTHeader returns errNoGPT for a sector that go-diskfs would reject
// itself (bad signature, revision, size or CRC) and a descriptive error for
// a valid header with impossible geometry.
func parseGPTHeader(b []byte, ss, size int64) (gptHeader, error) {
	if string(b[0:8]) != "EFI PART" ||
		binary.LittleEndian.Uint32(b[8:]) != 0x00010000 ||
		binary.LittleEndian.Uint32(b[12:]) != 92 {
		return gptHeader{}, errNoGPT
	}
	h := make([]byte, 92)
	copy(h, b)
	crc := binary.LittleEndian.Uint32(h[16:])
	clear(h[16:20])
	if crc32.ChecksumIEEE(h) != crc {
		return gptHeader{}, errNoGPT
	}
	g := gptHeader{
		myLBA:       binary.LittleEndian.Uint64(b[24:]),
		altLBA:      binary.LittleEndian.Uint64(b[32:]),
		firstUsable: binary.LittleEndian.Uint64(b[40:]),
		lastUsable:  binary.LittleEndian.Uint64(b[48:]),
		entriesLBA:  binary.LittleEndian.Uint64(b[72:]),
		entries:     binary.LittleEndian.Uint32(b[80:]),
		esize:       binary.LittleEndian.Uint32(b[84:]),
	}
	sectors := uint64(size / ss)
	arr := uint64(g.entries) * uint64(g.esize)
	switch {
	case g.esize != gpt.PartitionEntrySize:
		return g, fmt.Errorf("GPT header at LBA %d has partition entry size %d; only %d is supported", g.myLBA, g.esize, gpt.PartitionEntrySize)
	case arr > maxEntryArray:
		return g, fmt.Errorf("GPT header at LBA %d declares %d partition entries (%d bytes), more than the %d bytes we accept", g.myLBA, g.entries, arr, maxEntryArray)
	case g.entriesLBA >= sectors || arr > (sectors-g.entriesLBA)*uint64(ss):
		return g, fmt.Errorf("GPT header at LBA %d puts its partition entries at LBA %d, outside the %d-sector disk", g.myLBA, g.entriesLBA, sectors)
	case g.myLBA >= sectors || g.altLBA >= sectors:
		return g, fmt.Errorf("GPT header at LBA %d names LBAs %d and %d, outside the %d-sector disk; was the disk image truncated? (sgdisk -e moves the backup to the end)", g.myLBA, g.myLBA, g.altLBA, sectors)
	}
	return g, nil
}

func readGPT(d *disk, ss int64, mbr0 []byte) (*Table, error) {
	sectors := d.size / ss
	if sectors < 3 {
		return nil, errorf("disk has a protective MBR but only %d sectors, too few for a GPT", sectors)
	}
	// Check both headers before go-diskfs reads them; see gptHeader.
	primary, err := d.read(ss, ss)
	if err != nil {
		return nil, err
	}
	ph, perr := parseGPTHeader(primary, ss, d.size)
	if perr != nil && perr != errNoGPT {
		return nil, errorf("primary %w", perr)
	}
	backupLBA := sectors - 1
	if perr == nil {
		backupLBA = int64(ph.altLBA)
	}
	backup, err := d.read(backupLBA*ss, ss)
	if err != nil {
		return nil, err
	}
	bh, berr := parseGPTHeader(backup, ss, d.size)
	if berr != nil && berr != errNoGPT {
		return nil, errorf("backup %w", berr)
	}
	// go-diskfs falls back to a header in the last sector, which is not
	// where the primary says the backup is when the disk has grown.
	if backupLBA != sectors-1 {
		last, err := d.read((sectors-1)*ss, ss)
		if err != nil {
			return nil, err
		}
		if _, err := parseGPTHeader(last, ss, d.size); err != nil && err != errNoGPT {
			return nil, errorf("GPT header in the last sector: %w", err)
		}
	}
	if perr == errNoGPT && berr == errNoGPT {
		return nil, errorf("disk has a protective MBR but neither the primary GPT header (LBA 1) nor the backup (LBA %d) is valid", backupLBA)
	}

	gt, err := gpt.Read(d.storage(), int(ss), int(ss))
	if err != nil {
		return nil, errorf("reading GPT: %w", err)
	}
	t := &Table{
		Type:                GPT,
		DiskGUID:            strings.ToUpper(gt.GUID),
		SectorSize:          int(ss),
		RecoveredFromBackup: gt.RecoveredFromBackup,
		Raw:                 []RawRange{{Offset: 0, Data: mbr0}, {Offset: ss, Data: primary}},
	}
	for _, p := range gt.Partitions {
		if p.End < p.Start {
			return nil, errorf("GPT partition %d ends (LBA %d) before it starts (LBA %d)", p.Index, p.End, p.Start)
		}
		if p.End >= uint64(sectors) {
			return nil, errorf("GPT partition %d (LBA %d to %d) extends past the end of the %d-sector disk", p.Index, p.Start, p.End, sectors)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number:     p.Index,
			Start:      int64(p.Start) * ss,
			Size:       int64(p.End-p.Start+1) * ss,
			Type:       strings.ToUpper(string(p.Type)),
			Name:       p.Name,
			GUID:       strings.ToUpper(p.GUID),
			Bootable:   p.Attributes&attrLegacyBoot != 0,
			Attributes: p.Attributes,
		})
	}

	// Raw: each valid header's entry array, and the backup header.
	addArray := func(h gptHeader) error {
		b, err := d.read(int64(h.entriesLBA)*ss, roundUp(int64(h.entries)*int64(h.esize), ss))
		if err != nil {
			return err
		}
		t.Raw = append(t.Raw, RawRange{Offset: int64(h.entriesLBA) * ss, Data: b})
		return nil
	}
	if perr == nil {
		if err := addArray(ph); err != nil {
			return nil, err
		}
	}
	if berr == nil {
		if err := addArray(bh); err != nil {
			return nil, err
		}
	}
	t.Raw = append(t.Raw, RawRange{Offset: backupLBA * ss, Data: backup})
	t.Raw = mergeRaw(t.Raw)
	return t, nil
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// mergeRaw sorts ranges by offset and joins those that overlap or touch,
// so a GPT's protective MBR, header and entries come out as one range.
func mergeRaw(rs []RawRange) []RawRange {
	slices.SortStableFunc(rs, func(a, b RawRange) int { return cmp.Compare(a.Offset, b.Offset) })
	var out []RawRange
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			end := last.Offset + int64(len(last.Data))
			if r.Offset <= end {
				if rEnd := r.Offset + int64(len(r.Data)); rEnd > end {
					last.Data = append(last.Data[:len(last.Data):len(last.Data)], r.Data[end-r.Offset:]...)
				}
				continue
			}
		}
		out = append(out, RawRange{Offset: r.Offset, Data: r.Data})
	}
	return out
}
