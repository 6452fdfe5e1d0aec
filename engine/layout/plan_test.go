package layout

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

func TestModeString(t *testing.T) {
	for _, m := range []Mode{Keep, Fill, Manual} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("grow"); err == nil {
		t.Error("ParseMode(grow) succeeded")
	}
	if s := Mode(7).String(); s != "Mode(7)" {
		t.Errorf("Mode(7) = %q", s)
	}
}

// planCase makes a source disk with a real tool, plans it onto a larger
// (or smaller) disk, writes the plan, and checks the result with the
// tool and with Read.
type planCase struct {
	src       tableCase
	targetMiB int64
	opts      PlanOptions
	wantType  TableType
	wantGrown int            // the partition that must end at the end of the usable area
	wantSizes map[int]int64  // partition sizes that must be kept (or set)
	wantTypes map[int]string // partition types on the target
	check     func(*testing.T, *Table, *Table, *Plan)
}

var (
	gptESPExt4NTFS = tableCase{
		name: "gpt-esp-ext4-ntfs", sizeMiB: 64, tool: "sgdisk",
		args: []string{"-o", "-n", "1:2048:+32M", "-t", "1:ef00", "-c", "1:EFI system",
			"-n", "2:0:+16M", "-t", "2:8300", "-A", "2:set:2", "-A", "2:set:60",
			"-n", "3:0:0", "-t", "3:0700", "-c", "3:Windows", "IMG"},
	}
	mbr3 = tableCase{
		name: "mbr3", sizeMiB: 64, tool: "sfdisk", args: []string{"-q", "IMG"},
		stdin: "label: dos\nlabel-id: 0x1234abcd\n2048,16M,83,*\n,16M,c\n,,83\n",
	}
	mbrLogical = tableCase{
		name: "mbr-logical", sizeMiB: 64, tool: "sfdisk", args: []string{"-q", "IMG"},
		stdin: "label: dos\nlabel-id: 0x0badcafe\n2048,8M,83\n,,5\n,8M,83\n,8M,82\n,,7,*\n",
	}
)

func TestPlanWrite(t *testing.T) {
	cases := map[string]planCase{
		"gpt fill": {
			src: gptESPExt4NTFS, targetMiB: 96, wantType: GPT, wantGrown: 3,
			opts:      PlanOptions{Mode: Fill, Align: mib},
			wantSizes: map[int]int64{1: 32 * mib, 2: 16 * mib},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				sameIDs(t, src, got, true)
				if a := got.Partitions[1].Attributes; a != 1<<2|1<<60 || !got.Partitions[1].Bootable {
					t.Errorf("partition 2 attributes %#x, want bits 2 and 60", a)
				}
				if got.Partitions[2].Name != "Windows" {
					t.Errorf("name %q not kept", got.Partitions[2].Name)
				}
			},
		},
		"gpt fill new ids": {
			src: gptESPExt4NTFS, targetMiB: 96, wantType: GPT, wantGrown: 3,
			opts: PlanOptions{Mode: Fill, Align: mib, NewIDs: true},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				sameIDs(t, src, got, false)
			},
		},
		"gpt fill smaller": {
			src: gptESPExt4NTFS, targetMiB: 56, wantType: GPT, wantGrown: 3,
			opts: PlanOptions{Mode: Fill, Align: mib, MinSizes: map[int]int64{3: 4 * mib}},
		},
		"gpt keep larger": {
			src: gptESPExt4NTFS, targetMiB: 96, wantType: GPT,
			opts: PlanOptions{Mode: Keep},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				for i := range src.Partitions {
					if s, g := src.Partitions[i], got.Partitions[i]; s.Start != g.Start || s.Size != g.Size {
						t.Errorf("partition %d moved: %+v -> %+v", s.Number, s, g)
					}
				}
			},
		},
		"gpt manual": {
			src: gptESPExt4NTFS, targetMiB: 96, wantType: GPT,
			opts:      PlanOptions{Mode: Manual, Align: mib, Sizes: map[int]int64{2: 40 * mib}},
			wantSizes: map[int]int64{1: 32 * mib, 2: 40 * mib},
		},
		"bios boot esp root swap": {
			src: tableCase{
				name: "gpt-bios-swap", sizeMiB: 64, tool: "sgdisk",
				args: []string{"-o", "-n", "1:2048:+1M", "-t", "1:ef02", "-n", "2:0:+32M", "-t", "2:ef00",
					"-n", "3:0:+16M", "-t", "3:8304", "-n", "4:0:0", "-t", "4:8200", "IMG"},
			},
			targetMiB: 96, wantType: GPT,
			opts: PlanOptions{Mode: Fill, Align: mib},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				if g := got.Partitions; g[2].Start+g[2].Size != g[3].Start || g[2].Size <= src.Partitions[2].Size {
					t.Errorf("root did not grow up to swap: %+v", g)
				}
				if src.Partitions[3].Size != got.Partitions[3].Size {
					t.Errorf("swap size changed: %d -> %d", src.Partitions[3].Size, got.Partitions[3].Size)
				}
				end := int64(96*mib/512-33) * 512
				if e := got.Partitions[3].Start + got.Partitions[3].Size; end-e >= mib {
					t.Errorf("swap ends at %d, not near the end %d", e, end)
				}
			},
		},
		"mbr fill": {
			src: mbr3, targetMiB: 96, wantType: MBR, wantGrown: 3,
			opts:      PlanOptions{Mode: Fill, Align: mib},
			wantSizes: map[int]int64{1: 16 * mib, 2: 16 * mib},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				sameIDs(t, src, got, true)
				if !got.Partitions[0].Bootable {
					t.Error("boot flag of partition 1 lost")
				}
			},
		},
		"mbr logical fill": {
			src: mbrLogical, targetMiB: 96, wantType: MBR, wantGrown: 7,
			opts:      PlanOptions{Mode: Fill, Align: mib},
			wantSizes: map[int]int64{1: 8 * mib, 5: 8 * mib, 6: 8 * mib},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				if len(p.Moves) != 4 {
					t.Errorf("%d moves, want 4 (no extended partition): %+v", len(p.Moves), p.Moves)
				}
				if !got.Partitions[4].Bootable {
					t.Error("boot flag of partition 7 lost")
				}
			},
		},
		"mbr logical keep": {
			src: mbrLogical, targetMiB: 64, wantType: MBR,
			opts: PlanOptions{Mode: Keep, Align: mib},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				if !equalTables(withoutRaw(got), withoutRaw(src)) {
					t.Errorf("Keep changed the table:\n got %+v\nwant %+v", withoutRaw(got), withoutRaw(src))
				}
			},
		},
		"mbr logical manual": {
			src: mbrLogical, targetMiB: 96, wantType: MBR,
			opts:      PlanOptions{Mode: Manual, Align: mib, Sizes: map[int]int64{5: 20 * mib}},
			wantSizes: map[int]int64{1: 8 * mib, 5: 20 * mib, 6: 8 * mib},
		},
		"gpt to mbr": {
			src: gptESPExt4NTFS, targetMiB: 96, wantType: MBR, wantGrown: 3,
			opts:      PlanOptions{Mode: Fill, Align: mib, Table: MBR},
			wantTypes: map[int]string{1: "0xef", 2: "0x83", 3: "0x07"},
			check: func(t *testing.T, src, got *Table, p *Plan) {
				if !got.Partitions[1].Bootable {
					t.Error("legacy BIOS bootable attribute did not become the boot flag")
				}
			},
		},
		"mbr to gpt": {
			src: mbr3, targetMiB: 96, wantType: GPT, wantGrown: 3,
			opts:      PlanOptions{Mode: Fill, Align: mib, Table: GPT},
			wantTypes: map[int]string{1: typeLinux, 2: typeBasicData, 3: typeLinux},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // sgdisk spends its second waiting, not working
			dir := t.TempDir()
			srcImg := makeDisk(t, dir, c.src)
			bootCode := withBootCode(t, srcImg)
			src := readFile(t, srcImg, 512)
			size := c.targetMiB * mib
			p, err := PlanLayout(src, size, 512, c.opts)
			if err != nil {
				t.Fatalf("PlanLayout: %v", err)
			}
			for _, n := range p.Notes {
				t.Logf("note: %s", n)
			}
			img := sparseImage(t, dir, "target.img", size)
			writeTable(t, img, p.Table, bootCode)
			verifyWithTools(t, img, c.wantType)
			checkBootCode(t, img, bootCode)

			got := readFile(t, img, 512)
			if got.Type != c.wantType {
				t.Fatalf("target table %v, want %v", got.Type, c.wantType)
			}
			if g, w := withoutRaw(got), *p.Table; !equalTables(g, w) {
				t.Errorf("Read after Write:\n got %+v\nwant %+v", g, w)
			}
			end := size
			if got.Type == GPT {
				end = size - 33*512
			}
			for _, part := range got.Partitions {
				if got.Type == MBR && isExtendedByte(mbrType(part.Type)) {
					continue
				}
				if c.opts.Align != 0 && part.Start%c.opts.Align != 0 {
					t.Errorf("partition %d starts at %d, not a multiple of %d", part.Number, part.Start, c.opts.Align)
				}
				if part.Number == c.wantGrown && part.Start+part.Size != end {
					t.Errorf("partition %d ends at %d, want the end of the usable area %d", part.Number, part.Start+part.Size, end)
				}
				if w, ok := c.wantSizes[part.Number]; ok && part.Size != w {
					t.Errorf("partition %d has %d bytes, want %d", part.Number, part.Size, w)
				}
				if w, ok := c.wantTypes[part.Number]; ok && part.Type != w {
					t.Errorf("partition %d has type %s, want %s", part.Number, part.Type, w)
				}
			}
			for _, m := range p.Moves {
				part := partByNumber(got, m.Number)
				if part == nil || part.Start != m.DstStart || part.Size != m.DstSize {
					t.Errorf("move %+v does not match the written partition %+v", m, part)
				}
			}
			if c.check != nil {
				c.check(t, src, got, p)
			}
		})
	}
}

func partByNumber(t *Table, n int) *Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Number == n {
			return &t.Partitions[i]
		}
	}
	return nil
}

// equalTables compares tables ignoring Raw and, for partitions, the EBR
// offsets of a table read back (Write places them as planned).
func equalTables(a, b Table) bool {
	if a.Type != b.Type || a.DiskGUID != b.DiskGUID || a.SectorSize != b.SectorSize || len(a.Partitions) != len(b.Partitions) {
		return false
	}
	for i := range a.Partitions {
		if a.Partitions[i] != b.Partitions[i] {
			return false
		}
	}
	return true
}

func sameIDs(t *testing.T, src, got *Table, same bool) {
	t.Helper()
	if (src.DiskGUID == got.DiskGUID) != same {
		t.Errorf("disk GUID %s -> %s, want kept=%v", src.DiskGUID, got.DiskGUID, same)
	}
	for i := range src.Partitions {
		if (src.Partitions[i].GUID == got.Partitions[i].GUID) != same {
			t.Errorf("partition %d GUID %s -> %s, want kept=%v", src.Partitions[i].Number, src.Partitions[i].GUID, got.Partitions[i].GUID, same)
		}
	}
}

func TestPlanRefuses(t *testing.T) {
	gpt3 := &Table{Type: GPT, SectorSize: 512, DiskGUID: "41432210-666B-4A1D-9026-BF604E652BB6", Partitions: []Partition{
		{Number: 1, Start: mib, Size: 32 * mib, Type: typeESP, GUID: "11111111-1111-1111-1111-111111111111"},
		{Number: 2, Start: 33 * mib, Size: 512 * mib, Type: typeLinux, GUID: "22222222-2222-2222-2222-222222222222"},
		{Number: 3, Start: 545 * mib, Size: 4 * mib, Type: typeSwap, GUID: "33333333-3333-3333-3333-333333333333"},
	}}
	gpt5 := &Table{Type: GPT, SectorSize: 512}
	for i := range 5 {
		gpt5.Partitions = append(gpt5.Partitions, Partition{Number: i + 1, Start: int64(i+1) * mib, Size: mib, Type: typeLinux})
	}
	bios := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: mib, Size: mib, Type: typeBIOSBoot},
		{Number: 2, Start: 2 * mib, Size: mib, Type: typeLinux},
	}}
	odd := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: 34 * 512, Size: mib, Type: typeLinux},
	}}
	cases := []struct {
		name string
		src  *Table
		size int64
		opts PlanOptions
		want []string
	}{
		{"keep too small", gpt3, 400 * mib, PlanOptions{Mode: Keep, MinSizes: map[int]int64{2: 100 * mib}},
			[]string{"target disk (400 MiB) is smaller than the 549 MiB", "choose a disk of at least 549 MiB", "--layout manual --size 2="}},
		{"keep too small, cannot shrink", gpt3, 400 * mib, PlanOptions{Mode: Keep, MinSizes: map[int]int64{2: 500 * mib}},
			[]string{"choose a disk of at least", "holds 500 MiB of data and cannot shrink enough"}},
		{"fill too small", gpt3, 400 * mib, PlanOptions{Mode: Fill, Align: mib, MinSizes: map[int]int64{2: 500 * mib}},
			[]string{"partition 2 would get", "holds 500 MiB of data", "choose a disk of at least"}},
		{"fill too small, used size unknown", gpt3, 400 * mib, PlanOptions{Mode: Fill, Align: mib},
			[]string{"partition 2 cannot shrink because how much of it is used is not known"}},
		{"fill too small, not shrunk, used size known", gpt3, 400 * mib, PlanOptions{Mode: Fill, Align: mib, Used: map[int]int64{2: 300 * mib}},
			[]string{"partition 2 holds 300 MiB of data, but partitions are grown, never shrunk", "choose a disk of at least"}},
		{"manual below stored size, used size known", gpt3, 1 << 30, PlanOptions{Mode: Manual, Sizes: map[int]int64{2: 100 * mib}, Used: map[int]int64{2: 60 * mib}},
			[]string{"partition 2 cannot shrink from", "holds 60 MiB of data", "never shrunk", "--size 2=512MiB or more"}},
		{"manual below used size", gpt3, 1 << 30, PlanOptions{Mode: Manual, Sizes: map[int]int64{2: 100 * mib}, MinSizes: map[int]int64{2: 200 * mib}},
			[]string{"partition 2 cannot shrink to 100 MiB", "uses 200 MiB", "--size 2=209715200"}},
		{"manual too big", gpt3, 400 * mib, PlanOptions{Mode: Manual, Sizes: map[int]int64{2: 1000 * mib}},
			[]string{"need a disk of at least", "make partitions smaller"}},
		{"manual unknown partition", gpt3, 1 << 30, PlanOptions{Mode: Manual, Sizes: map[int]int64{9: mib}},
			[]string{"no such partition"}},
		{"gpt with 5 partitions to mbr", gpt5, 1 << 30, PlanOptions{Mode: Keep, Table: MBR},
			[]string{"the image has 5 partitions but an MBR holds 4 primary partitions", "--table gpt", "--partition N"}},
		{"bios boot to mbr", bios, 1 << 30, PlanOptions{Mode: Keep, Table: MBR},
			[]string{"partition 1", "BIOS boot"}},
		{"4K sectors from 512", odd, 1 << 30, PlanOptions{Mode: Keep}, nil},
		{"no table", &Table{Type: None}, 1 << 30, PlanOptions{}, []string{"no partition table"}},
		{"alignment not sectors", gpt3, 1 << 30, PlanOptions{Align: 1000}, []string{"not a multiple"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ss := 512
			if c.want == nil {
				ss, c.want = 4096, []string{"does not fall on the target's 4096-byte sectors"}
			}
			p, err := PlanLayout(c.src, c.size, ss, c.opts)
			if err == nil {
				t.Fatalf("PlanLayout succeeded: %+v", p)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestPlanKeepAligns(t *testing.T) {
	src := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: 34 * 512, Size: 8 * mib, Type: typeLinux},
		{Number: 2, Start: 34*512 + 8*mib, Size: 8 * mib, Type: typeLinux},
	}}
	p, err := PlanLayout(src, 64*mib, 512, PlanOptions{Mode: Keep, Align: mib})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Table.Partitions; s[0].Start != mib || s[1].Start != 9*mib || s[1].Size != 8*mib {
		t.Errorf("aligned layout %+v", s)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "partitions start on 1.0 MiB boundaries") {
		t.Errorf("notes %q", p.Notes)
	}
	// Without alignment the stored starts are kept.
	p, err = PlanLayout(src, 64*mib, 512, PlanOptions{Mode: Keep})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Table.Partitions; s[0].Start != 34*512 || s[1].Start != 34*512+8*mib {
		t.Errorf("kept layout %+v", s)
	}
}

func TestPlan4KSectors(t *testing.T) {
	src := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: mib, Size: 8 * mib, Type: typeLinux},
	}}
	p, err := PlanLayout(src, 64*mib, 4096, PlanOptions{Mode: Fill, Align: mib})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Table.Partitions[0].Start+p.Table.Partitions[0].Size, int64(64*mib-5*4096); got != want {
		t.Errorf("4K GPT: partition ends at %d, want %d", got, want)
	}
	buf := &memDisk{b: make([]byte, 64*mib)}
	if err := Write(buf, 64*mib, p.Table, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Read(buf, 64*mib, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if g := withoutRaw(got); !equalTables(g, *p.Table) {
		t.Errorf("4K read back\n got %+v\nwant %+v", g, *p.Table)
	}
}

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memDisk) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m.b[off:]), nil }

// FuzzPlanLayout builds tables from the fuzzer's bytes and checks that
// PlanLayout either refuses them or produces a table Write accepts; an
// "internal error" means the planner made an invalid layout.
func FuzzPlanLayout(f *testing.F) {
	f.Add([]byte{1, 8, 1, 32, 2, 16, 3, 0}, uint16(96), uint8(1), uint8(1), false)
	f.Add([]byte{1, 8, 0, 0x83, 1, 8, 0, 0x82, 2, 20, 0, 0x07}, uint16(50), uint8(0), uint8(2), true)
	f.Add([]byte{1, 8, 5, 8, 1, 8, 2, 8, 7, 8}, uint16(40), uint8(2), uint8(0), true)
	types := []string{typeLinux, typeSwap, typeESP, typeBasicData, typeBIOSBoot}
	mbrTypes := []string{"0x83", "0x82", "0xef", "0x07", "0x05"}
	f.Fuzz(func(t *testing.T, data []byte, diskMiB uint16, mode, table uint8, isMBR bool) {
		src := &Table{Type: GPT, SectorSize: 512, DiskGUID: newGUID()}
		if isMBR {
			src = &Table{Type: MBR, SectorSize: 512, DiskGUID: "12345678"}
		}
		pos := int64(mib)
		used := map[int]bool{}
		for i := 0; i+3 < len(data) && len(src.Partitions) < 12; i += 4 {
			gap, size, num, typ := int64(data[i]%4)*mib/2, int64(data[i+1]%64+1)*mib/4, int(data[i+2]%10)+1, int(data[i+3])
			if used[num] {
				continue
			}
			used[num] = true
			p := Partition{Number: num, Start: pos + gap, Size: size, Type: types[typ%len(types)], GUID: newGUID()}
			if isMBR {
				p.Type = mbrTypes[typ%4]
				p.GUID = ""
			}
			src.Partitions = append(src.Partitions, p)
			pos = p.Start + p.Size
		}
		if isMBR {
			// Logical partitions need an extended partition around them;
			// keep the fuzzer to primaries here.
			var keep []Partition
			for _, p := range src.Partitions {
				if p.Number <= 4 {
					keep = append(keep, p)
				}
			}
			src.Partitions = keep
		}
		slices.SortFunc(src.Partitions, func(a, b Partition) int { return cmp.Compare(a.Number, b.Number) })
		size := int64(diskMiB%512+1) * mib
		o := PlanOptions{Mode: Mode(mode % 3), Align: mib, Table: TableType(table % 3),
			Sizes: map[int]int64{}, MinSizes: map[int]int64{}}
		for _, p := range src.Partitions {
			o.MinSizes[p.Number] = p.Size / 2
			if p.Number%2 == 0 {
				o.Sizes[p.Number] = p.Size * 3 / 4
			}
		}
		p, err := PlanLayout(src, size, 512, o)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("PlanLayout(%+v, %d, %+v): %v", src, size, o, err)
			}
			return
		}
		if err := Write(&bytesWriter{}, size, p.Table, nil); err != nil {
			t.Fatalf("Write of a planned table: %v", err)
		}
		for _, m := range p.Moves {
			if m.DstSize < o.MinSizes[m.Number] {
				t.Fatalf("partition %d got %d bytes, below its minimum %d", m.Number, m.DstSize, o.MinSizes[m.Number])
			}
		}
	})
}

// TestPlanErrorFields: a layout that does not fit is an *Error whose fix
// names options as data, and whose message reads as it always did.
func TestPlanErrorFields(t *testing.T) {
	gpt5 := &Table{Type: GPT, SectorSize: 512}
	for i := range 5 {
		gpt5.Partitions = append(gpt5.Partitions, Partition{Number: i + 1, Start: int64(i+1) * mib, Size: mib, Type: typeLinux})
	}
	_, err := PlanLayout(gpt5, 64*mib, 512, PlanOptions{Table: MBR})
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want a *layout.Error", err, err)
	}
	if !le.Fix.Names(opt.Table) || !le.Fix.Names(opt.Partition) || le.Fix.Names(opt.Delta) {
		t.Errorf("fix %+v does not name --table and --partition", le.Fix)
	}
	want := "layout: the image has 5 partitions but an MBR holds 4 primary partitions; restore to a GPT disk (--table gpt, the default) or restore partitions one by one with --partition N"
	if err.Error() != want || le.Text() != strings.TrimPrefix(want, "layout: ") || strings.Contains(le.Reason, "--") {
		t.Errorf("message %q, reason %q", err, le.Reason)
	}
	_, err = PlanLayout(gpt5, 64*mib, 512, PlanOptions{Mode: Manual, Sizes: map[int]int64{9: mib}})
	if !errors.As(err, &le) || le.Partition != 9 {
		t.Errorf("--size for a missing partition: %v, want an *Error about partition 9", err)
	}
}

// TestPlanNoteDetails: every note has a Detail in the same order, and a
// grown partition's says so with its number.
func TestPlanNoteDetails(t *testing.T) {
	src := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: mib, Size: 32 * mib, Type: typeESP},
		{Number: 2, Start: 33 * mib, Size: 64 * mib, Type: typeLinux},
	}}
	p, err := PlanLayout(src, 512*mib, 512, PlanOptions{Mode: Fill})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Details) != len(p.Notes) {
		t.Fatalf("%d details for %d notes", len(p.Details), len(p.Notes))
	}
	grown := 0
	for i, d := range p.Details {
		if d.Text != p.Notes[i] {
			t.Errorf("detail %d %q, note %q", i, d.Text, p.Notes[i])
		}
		if d.Change == Grows {
			grown = d.Partition
		}
	}
	if grown != 2 {
		t.Errorf("details %+v: want partition 2 to grow", p.Details)
	}
}

// TestPlanReasonsNameOptionsAsData: a reason about an option the user
// gave, and a note's advice, keep the option as data, so each front end
// words it; only Error and String spell flags.
func TestPlanReasonsNameOptionsAsData(t *testing.T) {
	src := &Table{Type: MBR, SectorSize: 512, Partitions: []Partition{{Number: 1, Start: mib, Size: 64 * mib, Type: "0x83"}}}
	word := func(u opt.Use) string { return "<" + string(u.Option) + ">" }
	for _, c := range []struct {
		name string
		o    PlanOptions
		want opt.Option
	}{
		{"size", PlanOptions{Mode: Manual, Sizes: map[int]int64{9: 64 * mib}}, opt.Size},
		{"grow", PlanOptions{Mode: Fill, Grow: 9}, opt.Grow},
	} {
		_, err := PlanLayout(src, 128*mib, 512, c.o)
		var le *Error
		if !errors.As(err, &le) {
			t.Fatalf("%s: err = %v, want a *layout.Error", c.name, err)
		}
		if le.Partition != 9 || len(le.Names) != 1 || le.Names[0].Option != c.want || strings.Contains(le.Reason, "--") {
			t.Errorf("%s: %+v: want partition 9 and the option %s as data", c.name, le, c.want)
		}
		if got := le.Worded(word); !strings.HasPrefix(got, "<"+string(c.want)+"> names partition 9") {
			t.Errorf("%s: Worded = %q", c.name, got)
		}
		if !strings.Contains(err.Error(), "--"+string(c.want)+" names partition 9") {
			t.Errorf("%s: Error = %q", c.name, err)
		}
	}

	p, err := PlanLayout(src, 3<<40, 512, PlanOptions{Mode: Keep})
	if err != nil {
		t.Fatal(err)
	}
	n := p.Details[0]
	if !strings.HasPrefix(n.Text, "an MBR addresses only the first 2.0 TiB of the 3.0 TiB disk") || strings.Contains(n.Text, "--") || !n.Fix.Names(opt.Table) {
		t.Errorf("first note %+v: want the MBR limit, its fix as data", n)
	}
	if p.Notes[0] != n.Text+" (use --table gpt to use all of it)" {
		t.Errorf("Notes[0] = %q", p.Notes[0])
	}
	if got := p.WordedNotes(word)[0]; got != n.Text+" (use <table> to use all of it)" {
		t.Errorf("WordedNotes[0] = %q", got)
	}
}
