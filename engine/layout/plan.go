package layout

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/google/uuid"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// Mode says how PlanLayout sizes the partitions on the target disk.
type Mode int

const (
	// Keep keeps every partition's size and, where alignment allows, its
	// start.
	Keep Mode = iota
	// Fill keeps the order and sizes but gives one partition (PlanOptions.Grow)
	// all the space the target disk has beyond the stored layout, or takes
	// it away down to that partition's used size.
	Fill
	// Manual sets the sizes given in PlanOptions.Sizes and grows nothing.
	Manual
	// Fit keeps every size when the target disk holds them, and otherwise
	// shrinks the partitions that may shrink (PlanOptions.MinSizes below
	// their size), each in proportion to the room it has above its
	// minimum, until the layout fits.
	Fit
)

func (m Mode) String() string {
	switch m {
	case Keep:
		return "keep"
	case Fill:
		return "fill"
	case Manual:
		return "manual"
	case Fit:
		return "fit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "keep", "fill", "fit" or "manual".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Keep, Fill, Fit, Manual} {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return 0, errorf("unknown layout mode %q; use keep, fill, fit or manual", s)
}

// PlanOptions say how to turn a stored table into a target layout.
type PlanOptions struct {
	Mode Mode
	// Grow (Fill) is the number of the partition that takes the extra
	// space; 0 means the last data partition on the disk (not an ESP,
	// BIOS boot, MSR, recovery, swap or extended partition), or the last
	// partition if there is none.
	Grow int
	// Sizes (Manual) are new sizes in bytes by partition number; a
	// partition without an entry (or with 0) keeps its size.
	Sizes map[int]int64
	// Align in bytes (e.g. 1<<20) moves starts up to multiples of it; 0
	// keeps the stored starts where they fit.
	Align int64
	// NewIDs gives the target a fresh disk GUID and partition GUIDs (GPT)
	// or disk signature (MBR). Without it they are kept, so PARTUUID=
	// references in fstab and boot loaders stay valid.
	NewIDs bool
	// Table is the target table type; None keeps the stored type.
	Table TableType
	// MinSizes are the bytes each partition needs at least (the used
	// extent of its filesystem). A partition without an entry cannot be
	// made smaller than its stored size.
	MinSizes map[int]int64
	// Used are the bytes each partition's filesystem holds, where known,
	// for messages only: a partition that cannot shrink below its stored
	// size (no MinSizes entry, or one equal to its size) is refused with
	// what it holds, so the user is not told it is unknown.
	Used map[int]int64
}

// Move says where one partition's contents go.
type Move struct {
	Number            int
	SrcStart, SrcSize int64 // in the stored table
	DstStart, DstSize int64 // on the target
}

// Plan is a target layout computed by PlanLayout.
type Plan struct {
	// Table is the target table; Raw is empty. For MBR it includes the
	// extended partition, resized to enclose its logical partitions.
	Table *Table
	// Moves has one entry per partition with contents, in Number order; an
	// MBR extended partition has none (Write makes its boot records).
	Moves    []Move
	DiskSize int64
	// Notes are lines for the user, e.g. "partition 3 grows from 1.0 GiB to
	// 1.5 GiB": the Text of each of Details, in the same order.
	Notes []string
	// Details are the notes as data: which partition, what changes.
	// Add them with AddNote, which keeps Notes in step.
	Details []Note
}

// Change is what a Note says happens.
type Change int

const (
	Other   Change = iota // anything else (alignment, identifiers, free space)
	Grows                 // the partition is made larger; its filesystem can be grown
	Shrinks               // the partition is made smaller
	Moves                 // the partition starts elsewhere
	Located               // a delta restore found the partition elsewhere on the target
)

func (c Change) String() string {
	switch c {
	case Other:
		return "other"
	case Grows:
		return "grows"
	case Shrinks:
		return "shrinks"
	case Moves:
		return "moves"
	case Located:
		return "located"
	}
	return fmt.Sprintf("Change(%d)", int(c))
}

// Note is one line about a plan, with what it is about.
type Note struct {
	Partition int // the partition's Number; 0 for the disk as a whole
	Change    Change
	Text      string
	// Fix is what the user could choose instead, as data; usually zero.
	Fix opt.Fix
}

// String is the note with its fix's options worded as flags, as Notes
// holds it.
func (n Note) String() string { return n.Worded(opt.Flag) }

// Worded is the note with its fix's options worded by word (the CLI's
// flags, the TUI's screens).
func (n Note) Worded(word func(opt.Use) string) string {
	if n.Fix.IsZero() {
		return n.Text
	}
	return n.Text + " (" + n.Fix.Format(word) + ")"
}

// WordedNotes is Notes with the options of each note's fix worded by
// word (the CLI's flags, the TUI's screens). A note added to Notes
// without AddNote has no detail and is kept as it is.
func (p *Plan) WordedNotes(word func(opt.Use) string) []string {
	out := make([]string, len(p.Notes))
	for i, text := range p.Notes {
		out[i] = text
		if i < len(p.Details) && p.Details[i].String() == text {
			out[i] = p.Details[i].Worded(word)
		}
	}
	return out
}

// AddNote appends a note to Details and its text to Notes.
func (p *Plan) AddNote(partition int, c Change, text string) {
	p.Details = append(p.Details, Note{Partition: partition, Change: c, Text: text})
	p.Notes = append(p.Notes, text)
}

// Well-known partition types.
const (
	typeESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeBIOSBoot  = "21686148-6449-6E6F-744E-656564454649"
	typeMSR       = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
	typeWinRE     = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"
	typeSwap      = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
	typeLinux     = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	typeRootX64   = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	typeHome      = "933AC7E1-2EB4-4F13-B844-0E14E2AEF915"
	typeBasicData = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	typeLVM       = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	typeRAID      = "A19D880F-05FC-4D3B-A006-743F0F84911E"

	attrLegacyBoot = 1 << 2

	// gptEntries is the size of the entry array Write makes (the UEFI
	// minimum of 16 KiB, as go-diskfs, sgdisk and sfdisk make it).
	gptEntries = 128
)

// isDataType reports whether a partition holds user data, so that Fill
// grows it by default.
func isDataType(typ string) bool {
	switch strings.ToUpper(typ) {
	case typeESP, typeBIOSBoot, typeMSR, typeWinRE, typeSwap,
		"0X05", "0X0F", "0X85", "0X27", "0XEF", "0X82":
		return false
	}
	return true
}

// gptToMBR maps GPT types to MBR types for GPT→MBR conversion.
var gptToMBR = map[string]string{
	typeESP:       "0xef",
	typeLinux:     "0x83",
	typeRootX64:   "0x83",
	typeHome:      "0x83",
	typeSwap:      "0x82",
	typeBasicData: "0x07",
	typeLVM:       "0x8e",
	typeRAID:      "0xfd",
	typeWinRE:     "0x27",
}

// mbrToGPT maps MBR types to GPT types for MBR→GPT conversion.
var mbrToGPT = map[string]string{
	"0x83": typeLinux,
	"0x07": typeBasicData,
	"0xef": typeESP,
	"0x82": typeSwap,
	"0x01": typeBasicData, // FAT12
	"0x04": typeBasicData, // FAT16 < 32 MiB
	"0x06": typeBasicData, // FAT16
	"0x0b": typeBasicData, // FAT32 CHS
	"0x0c": typeBasicData, // FAT32 LBA
	"0x0e": typeBasicData, // FAT16 LBA
	"0x8e": typeLVM,
	"0xfd": typeRAID,
	"0x27": typeWinRE,
}

// item is one partition being placed.
type item struct {
	src     Partition
	dst     Partition
	logical bool  // an MBR logical partition on the target
	min     int64 // smallest allowed size
	used    int64 // bytes its filesystem holds; -1 unknown
}

// PlanLayout computes the target layout for a disk of diskSize bytes with
// logical sector size sectorSize (0: the stored table's).
//
// It refuses, with an error that says what to do instead, layouts that do
// not fit the disk, that would shrink a partition below its MinSizes, and
// conversions the target table type cannot express.
func PlanLayout(src *Table, diskSize int64, sectorSize int, o PlanOptions) (*Plan, error) {
	if src == nil || src.Type == None {
		return nil, errorf("the image has no partition table to lay out; restore it as a whole disk")
	}
	if sectorSize == 0 {
		sectorSize = src.SectorSize
	}
	switch sectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, errorf("sector size %d is not supported; use 512 or 4096", sectorSize)
	}
	ss := int64(sectorSize)
	tt := o.Table
	if tt == None {
		tt = src.Type
	}
	if tt != MBR && tt != GPT {
		return nil, errorf("cannot plan a %v table", tt)
	}
	align := o.Align
	switch {
	case align < 0:
		return nil, errorf("negative alignment %d", align)
	case align == 0:
		align = ss
	case align%ss != 0:
		return nil, errorf("alignment %d is not a multiple of the %d-byte sector size", align, ss)
	}
	if o.Mode != Keep && o.Mode != Fill && o.Mode != Manual && o.Mode != Fit {
		return nil, errorf("unknown mode %v", o.Mode)
	}

	// The usable area [first, end) of the target.
	sectors := diskSize / ss
	var first, end int64
	var notes []Note
	if tt == GPT {
		arr := roundUp(gptEntries*128, ss)
		first = 2*ss + arr
		end = (sectors-1)*ss - arr
	} else {
		first = ss
		end = sectors * ss
		if sectors > 1<<32 {
			end = 1 << 32 * ss
			notes = append(notes, Note{Text: fmt.Sprintf("an MBR addresses only the first %s of the %s disk; the rest stays unused", humanize.IBytes(uint64(end)), humanize.IBytes(uint64(diskSize))),
				Fix: opt.With("use {} to use all of it", opt.Use{Option: opt.Table, Value: "gpt"})})
		}
	}
	if end <= first {
		return nil, errorf("the target disk (%d bytes) is too small to hold a %v partition table", diskSize, tt)
	}

	items, ext, err := planItems(src, tt, ss)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errorf("the stored %v table has no partitions to lay out", src.Type)
	}
	byNumber := map[int]*item{}
	for i := range items {
		byNumber[items[i].src.Number] = &items[i]
	}

	// Sizes and the smallest sizes allowed.
	for n, v := range o.Sizes {
		if byNumber[n] == nil {
			return nil, &Error{Partition: n, Names: []opt.Use{{Option: opt.Size}},
				Reason: fmt.Sprintf("{} names partition %d, but the image has no such partition (or it is an extended partition)", n)}
		}
		if v < 0 {
			return nil, errorf("negative size %d for partition %d", v, n)
		}
	}
	for i := range items {
		it := &items[i]
		it.dst.Size = it.src.Size
		it.min, it.used = it.src.Size, -1
		if u, ok := o.Used[it.src.Number]; ok && u >= 0 {
			it.used = u
		}
		if m, ok := o.MinSizes[it.src.Number]; ok && m >= 0 {
			it.min = roundUp(m, ss)
		}
		if v := o.Sizes[it.src.Number]; o.Mode == Manual && v > 0 {
			v = v / ss * ss
			if v < it.min {
				return nil, shrinkError(it, v)
			}
			it.dst.Size = v
		}
	}

	grow := -1
	if o.Mode == Fill {
		if o.Grow != 0 {
			it := byNumber[o.Grow]
			if it == nil {
				return nil, &Error{Partition: o.Grow, Names: []opt.Use{{Option: opt.Grow}},
					Reason: fmt.Sprintf("{} names partition %d, but the image has no such partition (or it is an extended partition)", o.Grow)}
			}
			grow = slices.IndexFunc(items, func(x item) bool { return x.src.Number == o.Grow })
		} else {
			grow = defaultGrow(items)
		}
	}

	need := func(cursor int64) int64 { return cursor + (sectors*ss - end) }
	switch o.Mode {
	case Keep:
		cursor := place(items, 0, len(items), true, first, align, ss)
		if cursor > end {
			return nil, tooSmall(items, diskSize, need(cursor), cursor-end, align, ss)
		}
	case Manual:
		cursor := place(items, 0, len(items), true, first, align, ss)
		if cursor > end {
			// Give up the stored starts and pack the partitions.
			cursor = place(items, 0, len(items), false, first, align, ss)
		}
		if cursor > end {
			return nil, refusal(0, opt.With("make partitions smaller ({}) or choose a larger disk", opt.Use{Option: opt.Size, Value: "N=SIZE"}),
				"the partitions with the sizes asked for need a disk of at least %s, but the target disk has %s", humanize.IBytes(uint64(need(cursor))), humanize.IBytes(uint64(diskSize)))
		}
	case Fit:
		if cursor := place(items, 0, len(items), true, first, align, ss); cursor > end {
			if err := fit(items, diskSize, first, end, align, ss); err != nil {
				return nil, err
			}
		}
	case Fill:
		g := &items[grow]
		place(items, 0, grow+1, true, first, align, ss)
		// The partitions after the grow partition go to the end of the
		// disk, in order, packed from the back.
		e := end
		for j := len(items) - 1; j > grow; j-- {
			it := &items[j]
			s := alignDown(e-it.dst.Size, align)
			it.dst.Start = s
			e = s
			if it.logical {
				e = s - align // room for its EBR
			}
		}
		if grow+1 < len(items) {
			e = alignDown(e, align) // the next partition starts aligned anyway
		}
		size := (e - g.dst.Start) / ss * ss
		if size < g.min {
			short := g.min - size
			if g.min == g.src.Size && g.used >= 0 {
				return nil, errorf("the target disk (%s) is %s too small for the stored layout: partition %d holds %s of data, but partitions are grown, never shrunk; choose a disk of at least %s", humanize.IBytes(uint64(diskSize)), humanize.IBytes(uint64(short)), g.src.Number, humanize.IBytes(uint64(g.used)), humanize.IBytes(uint64(diskSize+short)))
			}
			if _, ok := o.MinSizes[g.src.Number]; !ok {
				return nil, errorf("the target disk (%s) is %s too small for the stored layout: partition %d cannot shrink because how much of it is used is not known; choose a disk of at least %s", humanize.IBytes(uint64(diskSize)), humanize.IBytes(uint64(short)), g.src.Number, humanize.IBytes(uint64(diskSize+short)))
			}
			return nil, errorf("the target disk (%s) is too small: partition %d would get %s but holds %s of data; choose a disk of at least %s", humanize.IBytes(uint64(diskSize)), g.src.Number, humanize.IBytes(uint64(max(size, 0))), humanize.IBytes(uint64(g.min)), humanize.IBytes(uint64(diskSize+short)))
		}
		g.dst.Size = size
	}

	// Boot records of logical partitions, and the extended partition.
	if err := placeEBRs(items, ext, first, align, ss, o.Mode == Keep || o.Mode == Manual || o.Mode == Fit); err != nil {
		return nil, err
	}

	t, err := targetTable(src, tt, ss, items, ext, o.NewIDs)
	if err != nil {
		return nil, err
	}
	if err := check(t, diskSize); err != nil {
		return nil, errorf("internal error, the planned table is invalid: %w", err)
	}

	p := &Plan{Table: t, DiskSize: diskSize}
	moved := false // for alignment
	for _, it := range items {
		p.Moves = append(p.Moves, Move{
			Number:   it.src.Number,
			SrcStart: it.src.Start, SrcSize: it.src.Size,
			DstStart: it.dst.Start, DstSize: it.dst.Size,
		})
		if it.dst.Start != it.src.Start && it.src.Start%align != 0 {
			moved = true
		}
	}
	slices.SortFunc(p.Moves, func(a, b Move) int { return cmp.Compare(a.Number, b.Number) })
	for _, m := range p.Moves {
		switch {
		case m.DstSize > m.SrcSize:
			p.AddNote(m.Number, Grows, fmt.Sprintf("partition %d grows from %s to %s", m.Number, humanize.IBytes(uint64(m.SrcSize)), humanize.IBytes(uint64(m.DstSize))))
		case m.DstSize < m.SrcSize:
			p.AddNote(m.Number, Shrinks, fmt.Sprintf("partition %d shrinks from %s to %s", m.Number, humanize.IBytes(uint64(m.SrcSize)), humanize.IBytes(uint64(m.DstSize))))
		}
		if m.DstStart != m.SrcStart {
			p.AddNote(m.Number, Moves, fmt.Sprintf("partition %d moves from offset %s to %s", m.Number, humanize.IBytes(uint64(m.SrcStart)), humanize.IBytes(uint64(m.DstStart))))
			if strings.EqualFold(byNumber[m.Number].src.Type, typeBIOSBoot) {
				p.AddNote(m.Number, Other, fmt.Sprintf("partition %d is a BIOS boot partition; GRUB's MBR code points at its old place, so reinstall GRUB (grub-install) after restoring", m.Number))
			}
		}
	}
	if moved {
		p.AddNote(0, Other, fmt.Sprintf("partitions start on %s boundaries", humanize.IBytes(uint64(o.Align))))
	}
	if last := items[len(items)-1].dst; o.Mode != Fill && end-(last.Start+last.Size) >= max(align, 1<<20) {
		p.AddNote(0, Other, fmt.Sprintf("%s at the end of the disk stays unallocated", humanize.IBytes(uint64(end-(last.Start+last.Size)))))
	}
	switch {
	case src.Type != tt:
		p.AddNote(0, Other, fmt.Sprintf("the %v table becomes %v with new identifiers; update PARTUUID= references in fstab and the boot loader", src.Type, tt))
	case o.NewIDs:
		p.AddNote(0, Other, "the disk and its partitions get new identifiers; update PARTUUID= references in fstab and the boot loader")
	}
	if tt == GPT {
		p.AddNote(0, Other, fmt.Sprintf("the backup GPT is written at the end of the %s disk", humanize.IBytes(uint64(diskSize))))
	}
	for _, n := range slices.Backward(notes) {
		p.Details = slices.Insert(p.Details, 0, n)
		p.Notes = slices.Insert(p.Notes, 0, n.String())
	}
	return p, nil
}

// planItems lists the partitions to place, in disk order, converted to the
// target table type, and returns the stored MBR extended partition if the
// target keeps it.
func planItems(src *Table, tt TableType, ss int64) ([]item, *Partition, error) {
	var items []item
	var ext *Partition
	for _, p := range src.Partitions {
		if p.Start%ss != 0 || p.Size%ss != 0 || p.EBR%ss != 0 {
			return nil, nil, errorf("partition %d (at byte %d, %d bytes) does not fall on the target's %d-byte sectors; restore to a disk with %d-byte sectors", p.Number, p.Start, p.Size, ss, src.SectorSize)
		}
		if src.Type == MBR && isExtendedByte(mbrType(p.Type)) {
			if tt == MBR {
				ext = &p
			}
			continue
		}
		it := item{src: p, dst: p}
		switch {
		case src.Type == GPT && tt == MBR:
			if n := len(src.Partitions); n > 4 {
				return nil, nil, refusal(0, toGPTOrOneByOne, "the image has %d partitions but an MBR holds 4 primary partitions", n)
			}
			if p.Number > 4 {
				return nil, nil, refusal(p.Number, toGPTOrOneByOne, "partition %d has no MBR slot (an MBR numbers its primary partitions 1 to 4)", p.Number)
			}
			typ, ok := gptToMBR[strings.ToUpper(p.Type)]
			if !ok {
				what := "its type " + p.Type + " has no MBR equivalent"
				switch strings.ToUpper(p.Type) {
				case typeBIOSBoot:
					what = "it is a BIOS boot partition, which only GPT disks use"
				case typeMSR:
					what = "it is a Microsoft reserved partition, which only GPT disks use"
				}
				return nil, nil, refusal(p.Number, toGPTOrOneByOne, "partition %d cannot go into an MBR: %s", p.Number, what)
			}
			it.dst.Type, it.dst.Name, it.dst.Attributes = typ, "", 0
		case src.Type == MBR && tt == GPT:
			typ, ok := mbrToGPT[strings.ToLower(p.Type)]
			if !ok {
				return nil, nil, refusal(p.Number, opt.With("restore to an MBR disk ({}) or restore partitions one by one with {}", opt.Use{Option: opt.Table, Value: "mbr"}, opt.Use{Option: opt.Partition, Value: "N"}),
					"partition %d has MBR type %s, which has no GPT equivalent we know", p.Number, p.Type)
			}
			it.dst.Type, it.dst.EBR, it.dst.Attributes = typ, 0, 0
			if p.Bootable {
				it.dst.Attributes = attrLegacyBoot
			}
		}
		if tt == GPT && p.Number > gptEntries {
			return nil, nil, refusal(p.Number, opt.With("restore partitions one by one with {}", opt.Use{Option: opt.Partition, Value: "N"}), "partition %d does not fit a %d-entry GPT", p.Number, gptEntries)
		}
		it.logical = tt == MBR && p.Number > 4
		items = append(items, it)
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.src.Start, b.src.Start) })
	// Linux numbers logical partitions in the order of the boot record
	// chain, which Write lays out in disk order.
	n := 5
	for _, it := range items {
		if it.logical {
			if it.src.Number != n {
				return nil, nil, errorf("the logical partitions are not in disk order (partition %d comes before partition %d); they cannot be re-laid out, restore the stored table as it is", it.src.Number, n)
			}
			n++
		}
	}
	if n == 5 {
		ext = nil // an empty extended partition is dropped
	}
	if n > 5 && ext == nil {
		return nil, nil, errorf("the table has logical partitions but no extended partition")
	}
	return items, ext, nil
}

func mbrType(s string) (t uint8) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 8)
	if err != nil {
		return 0
	}
	return uint8(v)
}

// defaultGrow picks the last data partition on the disk, or the last one.
func defaultGrow(items []item) int {
	for i := len(items) - 1; i >= 0; i-- {
		if isDataType(items[i].src.Type) {
			return i
		}
	}
	return len(items) - 1
}

// fit packs the items into [first, end), shrinking those that may shrink
// (min below their size) in proportion to how far each may shrink.
func fit(items []item, diskSize, first, end, align, ss int64) error {
	over := place(items, 0, len(items), false, first, align, ss) - end
	var slack int64
	for _, it := range items {
		slack += it.dst.Size - it.min
	}
	if over > slack {
		need := roundUp(diskSize+over-slack+align, 1<<20)
		var why []string
		for _, it := range items {
			if it.min < it.src.Size {
				why = append(why, fmt.Sprintf("partition %d needs %s", it.src.Number, humanize.IBytes(uint64(it.min))))
			}
		}
		reason := ", and no partition can shrink (none holds a filesystem whose minimum size is known: ext2/3/4 or NTFS)"
		if len(why) > 0 {
			reason = " even with every filesystem shrunk to its minimum (" + strings.Join(why, ", ") + ")"
		}
		return &Error{Reason: fmt.Sprintf("the target disk is %s too small for the image's data%s", humanize.IBytes(uint64(over-slack)), reason),
			Fix: opt.Text(fmt.Sprintf("choose a disk of at least %s", humanize.IBytes(uint64(need))))}
	}
	for i := range items {
		it := &items[i]
		if room := it.dst.Size - it.min; room > 0 {
			cut := min(room, roundUp((over*room+slack-1)/slack, ss))
			it.dst.Size -= cut
		}
	}
	// Alignment may leave a little over: take it from any that still may
	// shrink, the largest room first.
	for range len(items) * 4 {
		over = place(items, 0, len(items), false, first, align, ss) - end
		if over <= 0 {
			return nil
		}
		best := -1
		for i, it := range items {
			if r := it.dst.Size - it.min; r > 0 && (best < 0 || r > items[best].dst.Size-items[best].min) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		it := &items[best]
		it.dst.Size -= min(it.dst.Size-it.min, roundUp(over, ss))
	}
	over = place(items, 0, len(items), false, first, align, ss) - end
	if over > 0 {
		return &Error{Reason: fmt.Sprintf("the target disk is %s too small for the image's data with the partitions aligned", humanize.IBytes(uint64(over))),
			Fix: opt.Text("choose a larger disk")}
	}
	return nil
}

// place lays out items[from:to] in order from cursor: each starts at the
// next multiple of align, and with keep no earlier than its stored start.
// A logical partition leaves room for its boot record before it. It
// returns the end of the last one.
func place(items []item, from, to int, keep bool, cursor, align, ss int64) int64 {
	for i := from; i < to; i++ {
		it := &items[i]
		s := cursor
		if it.logical {
			s += ss
		}
		if keep && it.src.Start > s {
			s = it.src.Start
		}
		it.dst.Start = roundUp(s, align)
		cursor = it.dst.Start + it.dst.Size
	}
	return cursor
}

// placeEBRs puts each logical partition's boot record one alignment unit
// before it (or in the first free sector after the previous partition, if
// that is closer), keeps the stored place when keep and the partition did
// not move, and sizes the extended partition to enclose them.
func placeEBRs(items []item, ext *Partition, first, align, ss int64, keep bool) error {
	if ext == nil {
		return nil
	}
	prevEnd := first
	extStart, extEnd := int64(-1), int64(-1)
	for i := range items {
		it := &items[i]
		if it.logical {
			switch {
			case keep && it.dst.Start == it.src.Start && it.src.EBR >= prevEnd && it.src.EBR < it.dst.Start:
				it.dst.EBR = it.src.EBR
			case it.dst.Start-align >= prevEnd:
				it.dst.EBR = it.dst.Start - align
			default:
				it.dst.EBR = prevEnd
			}
			if it.dst.EBR < prevEnd || it.dst.EBR+ss > it.dst.Start {
				return errorf("internal error, no room for the boot record of logical partition %d", it.src.Number)
			}
			if extStart < 0 {
				extStart = it.dst.EBR
			}
			extEnd = it.dst.Start + it.dst.Size
		}
		prevEnd = it.dst.Start + it.dst.Size
	}
	if extStart < 0 {
		// An empty extended partition: keep it where it was if it is
		// free, else drop it.
		return nil
	}
	ext.Start, ext.Size, ext.EBR = extStart, extEnd-extStart, 0
	return nil
}

// targetTable assembles the planned table with its identifiers.
func targetTable(src *Table, tt TableType, ss int64, items []item, ext *Partition, newIDs bool) (*Table, error) {
	t := &Table{Type: tt, SectorSize: int(ss), DiskGUID: src.DiskGUID}
	fresh := newIDs || src.Type != tt
	if fresh || t.DiskGUID == "" {
		if tt == GPT {
			t.DiskGUID = newGUID()
		} else {
			var b [4]byte
			for binary.LittleEndian.Uint32(b[:]) == 0 {
				_, _ = rand.Read(b[:])
			}
			t.DiskGUID = fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b[:]))
		}
	}
	for _, it := range items {
		p := it.dst
		p.Number = it.src.Number
		switch {
		case tt == MBR:
			p.GUID = fmt.Sprintf("%s-%02x", t.DiskGUID, p.Number)
			p.Name, p.Attributes = "", 0
			if !it.logical {
				p.EBR = 0
			}
		case fresh || p.GUID == "":
			p.GUID = newGUID()
		}
		t.Partitions = append(t.Partitions, p)
	}
	if ext != nil && tt == MBR {
		e := *ext
		e.GUID = fmt.Sprintf("%s-%02x", t.DiskGUID, e.Number)
		t.Partitions = append(t.Partitions, e)
	}
	slices.SortFunc(t.Partitions, func(a, b Partition) int { return cmp.Compare(a.Number, b.Number) })
	return t, nil
}

func newGUID() string { return strings.ToUpper(uuid.New().String()) }

// shrinkError explains why a partition cannot be as small as asked.
func shrinkError(it *item, size int64) error {
	n := it.src.Number
	if it.min == it.src.Size && it.used >= 0 {
		return refusal(n, opt.With("give it {} or more (to make it smaller, shrink the filesystem on the source, e.g. with resize2fs or ntfsresize, and back up again)", opt.Use{Option: opt.Size, Value: fmt.Sprintf("%d=%s", n, sizeArg(it.src.Size))}),
			"partition %d cannot shrink from %s to %s: its filesystem holds %s of data, but partitions are grown, never shrunk, so it needs at least its stored size", n, humanize.IBytes(uint64(it.src.Size)), humanize.IBytes(uint64(size)), humanize.IBytes(uint64(it.used)))
	}
	if it.min == it.src.Size {
		return refusal(n, opt.With("keep its size ({} or more)", opt.Use{Option: opt.Size, Value: fmt.Sprintf("%d=%d", n, it.src.Size)}),
			"partition %d cannot shrink from %s to %s: how much of it is used is not known", n, humanize.IBytes(uint64(it.src.Size)), humanize.IBytes(uint64(size)))
	}
	return refusal(n, opt.With("give it at least that ({})", opt.Use{Option: opt.Size, Value: fmt.Sprintf("%d=%d", n, it.min)}),
		"partition %d cannot shrink to %s: its filesystem uses %s", n, humanize.IBytes(uint64(size)), humanize.IBytes(uint64(it.min)))
}

// toGPTOrOneByOne is the fix for a GPT layout that does not go into an MBR.
var toGPTOrOneByOne = opt.With("restore to a GPT disk ({}, the default) or restore partitions one by one with {}",
	opt.Use{Option: opt.Table, Value: "gpt"}, opt.Use{Option: opt.Partition, Value: "N"})

// tooSmall explains a Keep layout that does not fit: how big a disk it
// needs and which partition could shrink instead.
func tooSmall(items []item, diskSize, need, over, align, ss int64) error {
	msg := fmt.Sprintf("the target disk (%s) is smaller than the %s the stored layout needs", humanize.IBytes(uint64(diskSize)), humanize.IBytes(uint64(need)))
	it := &items[defaultGrow(items)]
	size := alignDown(it.src.Size-over-align, ss)
	if size >= it.min && size > 0 {
		return &Error{Reason: msg, Fix: opt.With(fmt.Sprintf("choose a disk of at least %s, or restore with {} {} to shrink partition %d", humanize.IBytes(uint64(need)), it.src.Number),
			opt.Use{Option: opt.Layout, Value: "manual"}, opt.Use{Option: opt.Size, Value: fmt.Sprintf("%d=%d", it.src.Number, size)})}
	}
	if it.min < it.src.Size {
		return &Error{Reason: msg, Fix: opt.Text(fmt.Sprintf("choose a disk of at least %s (partition %d holds %s of data and cannot shrink enough)", humanize.IBytes(uint64(need)), it.src.Number, humanize.IBytes(uint64(it.min))))}
	}
	return &Error{Reason: msg, Fix: opt.Text(fmt.Sprintf("choose a disk of at least %s", humanize.IBytes(uint64(need))))}
}

// sizeArg writes a size for --size N=SIZE: "64MiB" where that is exact,
// else bytes.
func sizeArg(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprint(n)
}

func alignDown(n, m int64) int64 {
	if n < 0 {
		return -roundUp(-n, m)
	}
	return n / m * m
}
