package layout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzRead from freshly made tables")

// tableCase makes one disk image with a real partitioning tool.
type tableCase struct {
	name       string
	sizeMiB    int64
	sectorSize int
	tool       string
	args       []string // "IMG" is replaced by the image path
	stdin      string
	want       TableType
}

var tableCases = []tableCase{
	{
		name: "mbr", sizeMiB: 64, sectorSize: 512, tool: "sfdisk", want: MBR,
		args:  []string{"-q", "IMG"},
		stdin: "label: dos\nlabel-id: 0x1234abcd\n2048,16M,83,*\n,16M,c\n,,8e\n",
	},
	{
		name: "mbr-logical", sizeMiB: 64, sectorSize: 512, tool: "sfdisk", want: MBR,
		args:  []string{"-q", "IMG"},
		stdin: "label: dos\nlabel-id: 0x0badcafe\n2048,8M,83\n,,5\n,8M,83\n,8M,82\n,,7,*\n",
	},
	{
		name: "gpt", sizeMiB: 64, sectorSize: 512, tool: "sgdisk", want: GPT,
		args: []string{"-o", "-U", "41432210-666B-4A1D-9026-BF604E652BB6",
			"-n", "1:2048:+16M", "-t", "1:ef00", "-c", "1:EFI",
			"-n", "2:0:+16M", "-t", "2:8300", "-c", "2:root", "-A", "2:set:2",
			"-n", "3:0:0", "-t", "3:8200", "-c", "3:swap space", "IMG"},
	},
	{
		name: "gpt-gaps", sizeMiB: 32, sectorSize: 512, tool: "sgdisk", want: GPT,
		args: []string{"-o", "-n", "2:2048:+4M", "-c", "2:two", "-n", "7:0:+4M", "-c", "7:seven", "-n", "128:0:0", "-c", "128:last", "IMG"},
	},
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Skipf("%s is not installed (Debian: apt-get install fdisk gdisk)", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func run(t testing.TB, stdin string, argv ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%q: %v\nstderr: %s", argv, err, stderr.String())
	}
	return stdout.String()
}

func makeDisk(t testing.TB, dir string, c tableCase) string {
	t.Helper()
	tool := lookTool(t, c.tool)
	img := filepath.Join(dir, c.name+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(c.sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	argv := []string{tool}
	for _, a := range c.args {
		argv = append(argv, strings.ReplaceAll(a, "IMG", img))
	}
	run(t, c.stdin, argv...)
	return img
}

// sfdiskJSON is the part of `sfdisk --json` we compare.
type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Device     string `json:"device"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func readFile(t testing.TB, img string, sectorSize int) *Table {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Read(f, fi.Size(), sectorSize)
	if err != nil {
		t.Fatalf("Read(%s): %v", img, err)
	}
	return tab
}

func TestReadMatchesSfdisk(t *testing.T) {
	dir := t.TempDir()
	for _, c := range tableCases {
		t.Run(c.name, func(t *testing.T) {
			img := makeDisk(t, dir, c)
			argv := []string{lookTool(t, "sfdisk"), "--json"}
			if c.sectorSize != 512 {
				argv = append(argv, "--sector-size", strconv.Itoa(c.sectorSize))
			}
			out := run(t, "", append(argv, img)...)
			var sj sfdiskJSON
			if err := json.Unmarshal([]byte(out), &sj); err != nil {
				t.Fatalf("sfdisk --json: %v\n%s", err, out)
			}
			want := sj.PartitionTable

			got := readFile(t, img, c.sectorSize)
			t.Logf("Read: %+v", withoutRaw(got))
			if got.Type != c.want {
				t.Fatalf("Type = %v, want %v", got.Type, c.want)
			}
			if wantLabel := map[TableType]string{MBR: "dos", GPT: "gpt"}[got.Type]; want.Label != wantLabel {
				t.Errorf("sfdisk label %q, Read says %v", want.Label, got.Type)
			}
			wantID := want.ID
			if got.Type == MBR {
				wantID = strings.TrimPrefix(wantID, "0x")
			}
			if got.DiskGUID != wantID {
				t.Errorf("DiskGUID = %q, sfdisk id %q", got.DiskGUID, want.ID)
			}
			if got.SectorSize != want.SectorSize {
				t.Errorf("SectorSize = %d, sfdisk %d", got.SectorSize, want.SectorSize)
			}
			if len(got.Partitions) != len(want.Partitions) {
				t.Fatalf("%d partitions, sfdisk %d", len(got.Partitions), len(want.Partitions))
			}
			ss := int64(want.SectorSize)
			for i, w := range want.Partitions {
				g := got.Partitions[i]
				num, err := strconv.Atoi(strings.TrimPrefix(w.Node, want.Device))
				if err != nil {
					t.Fatalf("sfdisk node %q: %v", w.Node, err)
				}
				wantType := w.Type
				wantGUID := w.UUID
				if got.Type == MBR {
					v, _ := strconv.ParseUint(w.Type, 16, 8)
					wantType = fmt.Sprintf("0x%02x", v)
					wantGUID = fmt.Sprintf("%s-%02x", wantID, num)
				}
				wp := Partition{
					Number:   num,
					Start:    w.Start * ss,
					Size:     w.Size * ss,
					Type:     wantType,
					Name:     w.Name,
					GUID:     wantGUID,
					Bootable: w.Bootable || strings.Contains(w.Attrs, "LegacyBIOSBootable"),
				}
				// sfdisk prints attributes by name; Bootable covers bit 2.
				wp.Attributes = g.Attributes
				if got.Type == MBR && g.Number > 4 && g.EBR == 0 {
					t.Errorf("logical partition %d has no EBR offset", g.Number)
				}
				wp.EBR = g.EBR
				if g != wp {
					t.Errorf("partition %d:\n got %+v\nwant %+v", i, g, wp)
				}
			}
			checkRaw(t, img, got)
		})
	}
}

func withoutRaw(t *Table) Table {
	c := *t
	c.Raw = nil
	return c
}

// checkRaw checks that Raw is a faithful copy of the disk and covers what
// it should.
func checkRaw(t *testing.T, img string, tab *Table) {
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	ss := int64(tab.SectorSize)
	var offsets []int64
	for _, r := range tab.Raw {
		if !bytes.Equal(r.Data, data[r.Offset:r.Offset+int64(len(r.Data))]) {
			t.Errorf("Raw at %d differs from the disk", r.Offset)
		}
		if r.Offset%ss != 0 || int64(len(r.Data))%ss != 0 {
			t.Errorf("Raw at %d (%d bytes) is not whole sectors", r.Offset, len(r.Data))
		}
		offsets = append(offsets, r.Offset, int64(len(r.Data)))
	}
	if len(offsets) == 0 || offsets[0] != 0 {
		t.Fatalf("Raw does not start with sector 0: %v", offsets)
	}
	if tab.Type == GPT {
		size := int64(len(data))
		// sectors 0-33 (pMBR, header, entries); backup entries and header
		wantOffsets := []int64{0, 34 * ss, size - 33*ss, 33 * ss}
		if fmt.Sprint(offsets) != fmt.Sprint(wantOffsets) {
			t.Errorf("GPT Raw (offset, length) %v, want %v", offsets, wantOffsets)
		}
	}
}

func TestReadNoTable(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty": nil,
		"zeros": make([]byte, 1<<20),
	}
	// A FAT filesystem on the whole disk has 0x55AA at 510 but no table.
	if mkfs := lookToolOptional("mkfs.vfat"); mkfs != "" {
		img := filepath.Join(dir, "fat.img")
		os.WriteFile(img, make([]byte, 8<<20), 0o644)
		run(t, "", mkfs, img)
		cases["whole-disk-vfat"], _ = os.ReadFile(img)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			tab, err := Read(bytes.NewReader(data), int64(len(data)), 512)
			if err != nil {
				t.Fatal(err)
			}
			if tab.Type != None || len(tab.Partitions) != 0 {
				t.Errorf("Read = %+v, want no table", tab)
			}
		})
	}
}

func lookToolOptional(name string) string {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	return ""
}

func TestReadDamaged(t *testing.T) {
	dir := t.TempDir()
	gptImg, err := os.ReadFile(makeDisk(t, dir, tableCases[3]))
	if err != nil {
		t.Fatal(err)
	}
	mbrImg, err := os.ReadFile(makeDisk(t, dir, tableCases[0]))
	if err != nil {
		t.Fatal(err)
	}
	size := len(gptImg)
	const ss = 512

	// fixHeaderCRC recomputes the CRC of the header at off after an edit.
	fixHeaderCRC := func(b []byte, off int) {
		h := b[off : off+92]
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	}
	edit := func(src []byte, f func(b []byte)) []byte {
		b := bytes.Clone(src)
		f(b)
		return b
	}

	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string // "" means Read succeeds
		check   func(t *testing.T, tab *Table)
	}{
		{
			name: "primary-gpt-header-corrupt",
			data: edit(gptImg, func(b []byte) { b[ss+20] ^= 0xFF }),
			check: func(t *testing.T, tab *Table) {
				if !tab.RecoveredFromBackup || len(tab.Partitions) != 3 {
					t.Errorf("want 3 partitions recovered from backup, got %+v", withoutRaw(tab))
				}
			},
		},
		{
			name:    "both-gpt-headers-corrupt",
			data:    edit(gptImg, func(b []byte) { b[ss+20] ^= 0xFF; b[size-ss+20] ^= 0xFF }),
			wantErr: "neither the primary GPT header",
		},
		{
			name: "huge-entry-count",
			data: edit(gptImg, func(b []byte) {
				binary.LittleEndian.PutUint32(b[ss+80:], 0xFFFFFFFF)
				fixHeaderCRC(b, ss)
			}),
			wantErr: "partition entries",
		},
		{
			name: "entry-size-not-128",
			data: edit(gptImg, func(b []byte) {
				binary.LittleEndian.PutUint32(b[ss+84:], 0x100000)
				fixHeaderCRC(b, ss)
			}),
			wantErr: "entry size",
		},
		{
			name:    "truncated-gpt-disk",
			data:    gptImg[:size/2],
			wantErr: "outside",
		},
		{
			name:    "mbr-bad-boot-flag",
			data:    edit(mbrImg, func(b []byte) { b[446+16] = 0x12 }),
			wantErr: "invalid boot flag",
		},
		{
			name:    "mbr-partition-past-end",
			data:    mbrImg[:32<<20],
			wantErr: "past the end",
		},
		{
			name: "ebr-loop",
			data: edit(mbrImg, func(b []byte) {
				// Make slot 3 an extended partition whose EBR links to itself.
				e := b[446+32:]
				e[4] = 0x05
				start := binary.LittleEndian.Uint32(e[8:])
				ebr := b[int(start)*ss:]
				ebr[510], ebr[511] = 0x55, 0xAA
				l := ebr[446+16:]
				l[4] = 0x05
				binary.LittleEndian.PutUint32(l[8:], 0)
				binary.LittleEndian.PutUint32(l[12:], 1)
			}),
			wantErr: "loops",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Read(bytes.NewReader(tc.data), int64(len(tc.data)), ss)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, tab)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Read = %+v, %v; want error containing %q", tab, err, tc.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}

type failingReader struct{}

var errDisk = errors.New("medium error")

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

func TestReadIOError(t *testing.T) {
	_, err := Read(failingReader{}, 1<<20, 512)
	if !errors.Is(err, errDisk) {
		t.Fatalf("err = %v, want it to wrap %v", err, errDisk)
	}
}

func TestTableTypeString(t *testing.T) {
	for tt, want := range map[TableType]string{None: "none", MBR: "mbr", GPT: "gpt", "apm": "apm"} {
		if got := tt.String(); got != want {
			t.Errorf("%q.String() = %q, want %q", string(tt), got, want)
		}
	}
}

func TestIsExtended(t *testing.T) {
	for typ, want := range map[string]bool{"0x05": true, "0x0f": true, "0x0F": true, "0X85": true, "0x83": false, "0x5": false, "": false,
		"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": false, "0x0500": false} {
		if got := IsExtended(typ); got != want {
			t.Errorf("IsExtended(%q) = %v, want %v", typ, got, want)
		}
	}
}

// seedSectors is how much of each test disk goes into the fuzz corpus: the
// MBR, the GPT header and a 128-entry array.
const seedSectors = 34

// TestUpdateSeedCorpus regenerates testdata/fuzz/FuzzRead with -update.
func TestUpdateSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz/FuzzRead")
	}
	dir := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range tableCases {
		data, err := os.ReadFile(makeDisk(t, dir, c))
		if err != nil {
			t.Fatal(err)
		}
		data = data[:seedSectors*c.sectorSize]
		file := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint32(%d)\n", data, c.sizeMiB<<20/512)
		if err := os.WriteFile(filepath.Join(out, c.name), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sparse is a disk whose first bytes are data and the rest zeros.
type sparse []byte

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < int64(len(s)) {
		copy(p, s[off:])
	}
	return len(p), nil
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, sectors uint32) {
		// The declared size may exceed the data, so tables whose partitions
		// lie beyond the seed's 34 sectors still parse.
		size := max(int64(len(data)), int64(sectors)*512)
		// CRCs are all but impossible to hit by mutation, so also try the
		// input with its primary GPT's CRCs made valid: that is what reaches
		// go-diskfs's entry parsing.
		for _, in := range []struct {
			data []byte
			ss   int
		}{{data, 512}, {data, 4096}, {withGPTCRCs(data, 512), 512}} {
			data, ss := in.data, in.ss
			tab, err := Read(sparse(data), size, ss)
			if err != nil {
				if tab != nil {
					t.Fatalf("Read returned a table with error %v", err)
				}
				continue
			}
			for _, p := range tab.Partitions {
				if p.Start < 0 || p.Size < 0 || p.Start+p.Size > size || p.Number < 1 {
					t.Fatalf("partition out of range on a %d-byte disk: %+v", size, p)
				}
			}
			for _, r := range tab.Raw {
				if r.Offset < 0 || r.Offset+int64(len(r.Data)) > size {
					t.Fatalf("raw range out of range: %d+%d", r.Offset, len(r.Data))
				}
			}
		}
	})
}

// TestReadMBR4K reads an MBR on a 4Kn disk, where the table counts 4096-byte
// sectors. The sfdisk here (util-linux 2.38) cannot make one in a file, so
// the sector is written by hand.
func TestReadMBR4K(t *testing.T) {
	const ss = 4096
	disk := make([]byte, 64<<20)
	binary.LittleEndian.PutUint32(disk[440:], 0xdeadbeef)
	e := disk[446:]
	e[0], e[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e[8:], 256)
	binary.LittleEndian.PutUint32(e[12:], 1024)
	disk[510], disk[511] = 0x55, 0xAA
	tab, err := Read(bytes.NewReader(disk), int64(len(disk)), ss)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{{Number: 1, Start: 256 * ss, Size: 1024 * ss, Type: "0x83", GUID: "deadbeef-01", Bootable: true}}
	if fmt.Sprint(tab.Partitions) != fmt.Sprint(want) || tab.SectorSize != ss || len(tab.Raw) != 1 || len(tab.Raw[0].Data) != ss {
		t.Errorf("Read = %+v, want partitions %+v and one 4096-byte raw sector", withoutRaw(tab), want)
	}
}

// withGPTCRCs returns data with the entry-array and header CRCs of an
// "EFI PART" header at LBA 1 recomputed, if the array lies within data.
func withGPTCRCs(data []byte, ss int) []byte {
	if len(data) < 2*ss || string(data[ss:ss+8]) != "EFI PART" {
		return data
	}
	b := bytes.Clone(data)
	h := b[ss:]
	lba := binary.LittleEndian.Uint64(h[72:])
	n := uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
	if lba < uint64(len(b)/ss) && n <= uint64(len(b))-lba*uint64(ss) {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(b[lba*uint64(ss):lba*uint64(ss)+n]))
	}
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	return b
}
