package layout

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mib = 1 << 20

// sparseImage creates an empty sparse disk image of size bytes.
func sparseImage(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	img := filepath.Join(dir, name)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return img
}

// writeTable writes t to the image with Write.
func writeTable(t testing.TB, img string, tab *Table, bootCode []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, fi.Size(), tab, bootCode); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// verifyWithTools runs sgdisk -v (GPT) or sfdisk --verify (MBR) on img and
// fails on any complaint.
func verifyWithTools(t *testing.T, img string, typ TableType) {
	t.Helper()
	switch typ {
	case GPT:
		out := run(t, "", lookTool(t, "sgdisk"), "-v", img)
		if !strings.Contains(out, "No problems found") || strings.Contains(out, "nvalid") || strings.Contains(out, "Warning") {
			t.Errorf("sgdisk -v %s:\n%s", img, out)
		}
	case MBR:
		out := run(t, "", lookTool(t, "sfdisk"), "--verify", img)
		if !strings.Contains(out, "No errors detected") {
			t.Errorf("sfdisk --verify %s:\n%s", img, out)
		}
	}
	t.Logf("sfdisk -d:\n%s", run(t, "", lookTool(t, "sfdisk"), "-d", img))
}

// withBootCode puts a recognisable boot code into sector 0 of img and
// returns it.
func withBootCode(t *testing.T, img string) []byte {
	t.Helper()
	code := bytes.Repeat([]byte("BOOTCODE"), bootCodeSize/8)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(code, 0); err != nil {
		t.Fatal(err)
	}
	return code
}

func checkBootCode(t *testing.T, img string, want []byte) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, bootCodeSize)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("boot code not kept: %q", got[:16])
	}
}

func TestWriteStaleGPTZeroed(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, tableCase{
		name: "old-gpt", sizeMiB: 64, tool: "sgdisk",
		args: []string{"-o", "-n", "1:2048:+16M", "IMG"},
	})
	tab := &Table{Type: MBR, DiskGUID: "0badf00d", SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: mib, Size: 16 * mib, Type: "0x83", Bootable: true},
	}}
	writeTable(t, img, tab, nil)
	verifyWithTools(t, img, MBR)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("EFI PART")); n != 0 {
		t.Errorf("%d GPT headers left on the disk after writing an MBR", n)
	}
	got := readFile(t, img, 512)
	if got.Type != MBR || len(got.Partitions) != 1 || got.DiskGUID != "0badf00d" || !got.Partitions[0].Bootable {
		t.Errorf("Read after Write: %+v", withoutRaw(got))
	}
}

// TestWriteKeepsGap checks that Write leaves alone the sectors after the
// MBR where GRUB keeps its core image, when they hold no GPT header.
func TestWriteKeepsGap(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, mbr3)
	core := bytes.Repeat([]byte("GRUBCORE"), 4096)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(core, 512); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tab := withoutRaw(readFile(t, img, 512))
	writeTable(t, img, &tab, nil)
	verifyWithTools(t, img, MBR)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[512:512+len(core)], core) {
		t.Error("Write changed the gap after the MBR")
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	base := func() *Table {
		return &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
			{Number: 1, Start: mib, Size: 8 * mib, Type: typeLinux},
			{Number: 2, Start: 9 * mib, Size: 8 * mib, Type: typeLinux},
		}}
	}
	cases := []struct {
		name   string
		change func(*Table)
		want   string
	}{
		{"overlap", func(t *Table) { t.Partitions[1].Start = 8 * mib }, "overlap"},
		{"past the end", func(t *Table) { t.Partitions[1].Size = 64 * mib }, "outside the usable"},
		{"over backup GPT", func(t *Table) { t.Partitions[1].Size = 32*mib - 9*mib }, "outside the usable"},
		{"not sectors", func(t *Table) { t.Partitions[0].Size = mib + 100 }, "whole 512-byte sectors"},
		{"bad type", func(t *Table) { t.Partitions[0].Type = "0x83" }, "not a GUID"},
		{"mbr logical outside", func(t *Table) {
			t.Type = MBR
			t.Partitions[0].Type, t.Partitions[1].Type, t.Partitions[1].Number = "0x83", "0x83", 5
		}, "outside an extended"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := base()
			c.change(tab)
			err := Write(&bytesWriter{}, 32*mib, tab, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Write: %v, want an error with %q", err, c.want)
			}
		})
	}
}

type bytesWriter struct{ n int }

func (w *bytesWriter) WriteAt(p []byte, off int64) (int, error) { w.n++; return len(p), nil }

// TestWriteGPTKeepsBootSector: WriteGPT (mkmedia's writer) leaves the
// first 446 bytes of sector 0 as the caller wrote them, writes the same
// protective entry and GPT as Write, and sgdisk finds nothing wrong.
func TestWriteGPTKeepsBootSector(t *testing.T) {
	dir := t.TempDir()
	tab := &Table{Type: GPT, SectorSize: 512, DiskGUID: "8E1E4F4C-6A40-4A43-9F0C-2E6B1C3D5A71", Partitions: []Partition{
		{Number: 1, Start: 1 * mib, Size: 1 * mib, Type: "21686148-6E6F-744E-6565-6446494E4946", Name: "BIOS boot", GUID: "5E696EA7-6101-4549-94B2-FC75374CA385"},
		{Number: 2, Start: 2 * mib, Size: 8 * mib, Type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", Name: "EFI system partition", GUID: "0d5c3f0e-1b7a-4c1e-8a3e-2f1d0c9b8a77"},
	}}
	boot := bytes.Repeat([]byte{0xAB}, 446)
	viaWrite := sparseImage(t, dir, "write.img", 32*mib)
	writeTable(t, viaWrite, tab, boot[:bootCodeSize])
	viaGPT := sparseImage(t, dir, "gpt.img", 32*mib)
	f, err := os.OpenFile(viaGPT, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(boot, 0); err != nil {
		t.Fatal(err)
	}
	if err := WriteGPT(f, 32*mib, tab); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a, _ := os.ReadFile(viaWrite)
	b, _ := os.ReadFile(viaGPT)
	if !bytes.Equal(b[:446], boot) {
		t.Errorf("WriteGPT changed the boot code and disk signature")
	}
	// Write zeroes the disk signature (bytes 440-445); otherwise the same.
	copy(a[bootCodeSize:446], boot[bootCodeSize:])
	if !bytes.Equal(a, b) {
		t.Errorf("WriteGPT and Write give different disks")
	}
	verifyWithTools(t, viaGPT, GPT)
	if err := WriteGPT(f, 32*mib, &Table{Type: MBR, SectorSize: 512}); err == nil {
		t.Errorf("WriteGPT wrote an MBR")
	}
}
