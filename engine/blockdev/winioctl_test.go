package blockdev

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// The buffers below are laid out field by field as winioctl.h declares the
// structures (x64), with the values a SATA SSD, a 4Kn disk, a USB stick and
// an NVMe drive report; no Windows machine was at hand to record real ones,
// so the layouts are the SDK's, not observed.

func le32(b []byte, at int, v uint32) { binary.LittleEndian.PutUint32(b[at:], v) }
func le64(b []byte, at int, v uint64) { binary.LittleEndian.PutUint64(b[at:], v) }

func geometryEx(bytesPerSector uint32, size int64) []byte {
	b := make([]byte, 40) // DISK_GEOMETRY_EX with its Data[1] padded
	if bytesPerSector > 0 {
		le64(b, 0, uint64(size/int64(bytesPerSector)/255/63))
	}
	le32(b, 8, 12) // FixedMedia
	le32(b, 12, 255)
	le32(b, 16, 63)
	le32(b, 20, bytesPerSector)
	le64(b, 24, uint64(size))
	return b
}

func alignmentDesc(logical, physical uint32) []byte {
	b := make([]byte, 28)
	le32(b, 0, 28)
	le32(b, 4, 28)
	le32(b, 8, 64)
	le32(b, 16, logical)
	le32(b, 20, physical)
	return b
}

// deviceDesc builds a STORAGE_DEVICE_DESCRIPTOR with its strings after the
// fixed part, as Windows returns it.
func deviceDesc(removable bool, bus uint32, vendor, product, serial string) []byte {
	b := make([]byte, 40)
	if removable {
		b[10] = 1
	}
	le32(b, 28, bus)
	for _, s := range []struct {
		at  int
		val string
	}{{12, vendor}, {16, product}, {20, "1.0"}, {24, serial}} {
		if s.val == "" {
			continue
		}
		le32(b, s.at, uint32(len(b)))
		b = append(b, s.val...)
		b = append(b, 0)
	}
	le32(b, 0, 1)
	le32(b, 4, uint32(len(b)))
	return b
}

func extentsBuf(ex ...extent) []byte {
	b := make([]byte, 8+24*len(ex))
	le32(b, 0, uint32(len(ex)))
	for i, e := range ex {
		le32(b, 8+24*i, uint32(e.Disk))
		le64(b, 8+24*i+8, uint64(e.Start))
		le64(b, 8+24*i+16, uint64(e.Length))
	}
	return b
}

func TestDecodeGeometryAndAlignment(t *testing.T) {
	for _, tc := range []struct {
		name              string
		logical, physical uint32
		size              int64
	}{
		{"512n", 512, 512, 500107862016},
		{"512e", 512, 4096, 2000398934016},
		{"4Kn", 4096, 4096, 4000787030016},
	} {
		g, err := decodeGeometryEx(geometryEx(tc.logical, tc.size))
		if err != nil || g.BytesPerSector != int(tc.logical) || g.DiskSize != tc.size {
			t.Errorf("%s: geometry %+v, %v", tc.name, g, err)
		}
		a, err := decodeAlignment(alignmentDesc(tc.logical, tc.physical))
		if err != nil || a.Logical != int(tc.logical) || a.Physical != int(tc.physical) {
			t.Errorf("%s: alignment %+v, %v", tc.name, a, err)
		}
	}
	n, err := decodeLengthInfo([]byte{0, 0, 0x10, 0, 0, 0, 0, 0})
	if err != nil || n != 1<<20 {
		t.Errorf("length %d, %v", n, err)
	}
	// Refused: short answers, nonsense sector sizes, negative sizes.
	for name, err := range map[string]error{
		"geometry short":     second(decodeGeometryEx(make([]byte, 31))),
		"geometry 1000":      second(decodeGeometryEx(geometryEx(1000, 1<<30))),
		"geometry 0":         second(decodeGeometryEx(geometryEx(0, 1<<30))),
		"geometry negative":  second(decodeGeometryEx(geometryEx(512, -512))),
		"alignment short":    second(decodeAlignment(make([]byte, 27))),
		"alignment 4096/512": second(decodeAlignment(alignmentDesc(4096, 512))),
		"length short":       second(decodeLengthInfo(make([]byte, 7))),
		"length negative":    second(decodeLengthInfo([]byte{0, 0, 0, 0, 0, 0, 0, 0x80})),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestDecodeDescriptor(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want descriptor
	}{
		{"sata ssd", deviceDesc(false, 0xb, "", "Samsung SSD 870 EVO 1TB", "S6PTNM0R123456   "),
			descriptor{Product: "Samsung SSD 870 EVO 1TB", Serial: "S6PTNM0R123456", Bus: "sata"}},
		{"usb stick", deviceDesc(true, 0x7, "SanDisk ", "Ultra           ", "4C530001230519105083"),
			descriptor{Vendor: "SanDisk", Product: "Ultra", Serial: "4C530001230519105083", Bus: "usb", Removable: true}},
		{"nvme", deviceDesc(false, 0x11, "NVMe    ", "WD_BLACK SN770 1TB", "E823_8FA6_BF53_0001_001B_448B_4A2C_1234."),
			descriptor{Vendor: "NVMe", Product: "WD_BLACK SN770 1TB", Serial: "E823_8FA6_BF53_0001_001B_448B_4A2C_1234.", Bus: "nvme"}},
		{"virtual, no serial", deviceDesc(false, 0xe, "Msft    ", "Virtual Disk    ", ""),
			descriptor{Vendor: "Msft", Product: "Virtual Disk", Bus: ""}},
	} {
		got, err := decodeDescriptor(tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	// An offset past the answer, or into the fixed part, is refused.
	b := deviceDesc(false, 0xb, "", "Disk", "")
	le32(b, 16, uint32(len(b)+10))
	if _, err := decodeDescriptor(b); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("offset past the end: %v", err)
	}
	le32(b, 16, 8)
	if _, err := decodeDescriptor(b); err == nil {
		t.Errorf("offset into the fixed part accepted")
	}
	// A string that runs to the end of the answer without its NUL.
	b = deviceDesc(false, 0xb, "", "Disk", "")
	b = b[:len(b)-1]
	le32(b, 4, uint32(len(b)))
	if d, err := decodeDescriptor(b); err != nil || d.Product != "Disk" {
		t.Errorf("unterminated string: %+v, %v", d, err)
	}
}

func TestDecodeExtents(t *testing.T) {
	want := []extent{{Disk: 0, Start: 1 << 20, Length: 100 << 20}, {Disk: 2, Start: 16 << 20, Length: 1 << 30}}
	got, err := decodeExtents(extentsBuf(want...))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%+v, %v", got, err)
	}
	b := extentsBuf(want...)
	le32(b, 0, 3) // claims more than it holds
	if _, err := decodeExtents(b); err == nil {
		t.Errorf("3 extents in the room of 2 accepted")
	}
	if _, err := decodeExtents(extentsBuf(extent{Start: -1, Length: 5})); err == nil {
		t.Errorf("negative start accepted")
	}
	if _, err := decodeExtents(extentsBuf(extent{Start: 1 << 62, Length: 1 << 62})); err == nil {
		t.Errorf("overflowing extent accepted")
	}
	n, err := decodeDeviceNumber([]byte{7, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	if err != nil || n != 3 {
		t.Errorf("device number %d, %v", n, err)
	}
}

func TestDiskNumber(t *testing.T) {
	for in, want := range map[string]int{
		"0": 0, "12": 12, `\\.\PhysicalDrive0`: 0, `\\.\physicaldrive3`: 3, "//./PhysicalDrive1": 1, "PhysicalDrive2": 2,
	} {
		if n, ok := DiskNumber(in); !ok || n != want {
			t.Errorf("DiskNumber(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
	for _, in := range []string{"", "C:", `\\.\C:`, "disk.img", "-1", "01", "1234", `\\.\PhysicalDrive`, `\\.\PhysicalDrive1x`, "1.5", " 1"} {
		if n, ok := DiskNumber(in); ok {
			t.Errorf("DiskNumber(%q) = %d, want not a disk", in, n)
		}
	}
	if p := PhysicalDrivePath(4); p != `\\.\PhysicalDrive4` {
		t.Errorf("PhysicalDrivePath(4) = %s", p)
	}
}

func TestVolumesOn(t *testing.T) {
	vols := []winVolume{
		{Name: `\\?\Volume{a}\`, Paths: []string{`C:\`}, Extents: []extent{{Disk: 0, Start: 1 << 20}}},
		{Name: `\\?\Volume{b}\`, Extents: []extent{{Disk: 0, Start: 200 << 20}}}, // the recovery partition: no letter
		{Name: `\\?\Volume{c}\`, Paths: []string{`D:\`, `C:\Data\`}, Extents: []extent{{Disk: 1}}},
		{Name: `\\?\Volume{d}\`, Paths: []string{`E:\`}, Extents: []extent{{Disk: 2}, {Disk: 0, Start: 300 << 20}}}, // spanned
	}
	var got []string
	for _, v := range volumesOn(vols, 0) {
		got = append(got, volumeWords(v))
	}
	if want := []string{`C:\`, `\\?\Volume{b}\`, `E:\`}; !reflect.DeepEqual(got, want) {
		t.Errorf("volumes on disk 0: %q, want %q", got, want)
	}
	if v := volumesOn(vols, 1); len(v) != 1 || volumeWords(v[0]) != `D:\, C:\Data\` {
		t.Errorf("volumes on disk 1: %+v", v)
	}
	if v := volumesOn(vols, 5); v != nil {
		t.Errorf("volumes on disk 5: %+v", v)
	}
}

// The decoders read what a driver (or a filter in its path) answers: no
// input may make them panic, and what they accept must make sense.
func FuzzDecodeDescriptor(f *testing.F) {
	f.Add(deviceDesc(true, 0x7, "SanDisk ", "Ultra", "4C53"))
	f.Add(deviceDesc(false, 0x11, "", "", ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDescriptor(b)
		if err != nil {
			return
		}
		for _, s := range []string{d.Vendor, d.Product, d.Serial} {
			if strings.TrimSpace(s) != s || strings.ContainsAny(s, "\x00\n\r") {
				t.Fatalf("string %q not cleaned", s)
			}
		}
	})
}

func FuzzDecodeExtents(f *testing.F) {
	f.Add(extentsBuf(extent{Disk: 1, Start: 1 << 20, Length: 1 << 30}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ex, err := decodeExtents(b)
		if err != nil {
			return
		}
		for _, e := range ex {
			if e.Start < 0 || e.Length < 0 || e.Start+e.Length < e.Start {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}

func FuzzDecodeGeometry(f *testing.F) {
	f.Add(geometryEx(4096, 1<<40))
	f.Add(alignmentDesc(512, 4096))
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := decodeGeometryEx(b); err == nil && (!validSectorSize(g.BytesPerSector) || g.DiskSize < 0) {
			t.Fatalf("accepted %+v", g)
		}
		if a, err := decodeAlignment(b); err == nil && (a.Physical < a.Logical || !validSectorSize(a.Logical)) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func driveLayout(style uint32, parts ...Partition) []byte {
	b := make([]byte, layoutHeader+layoutEntry*len(parts))
	le32(b, 0, style)
	le32(b, 4, uint32(len(parts)))
	for i, p := range parts {
		e := layoutHeader + layoutEntry*i
		le32(b, e, style)
		le64(b, e+8, uint64(p.Start))
		le64(b, e+16, uint64(p.Size))
		le32(b, e+24, uint32(p.Number))
	}
	return b
}

func TestDecodeDriveLayout(t *testing.T) {
	gpt := []Partition{{Number: 1, Start: 1 << 20, Size: 100 << 20}, {Number: 2, Start: 101 << 20, Size: 16 << 20}, {Number: 3, Start: 117 << 20, Size: 50 << 30}}
	style, got, err := decodeDriveLayout(driveLayout(1, gpt...))
	if err != nil || style != "gpt" || !reflect.DeepEqual(got, gpt) {
		t.Errorf("gpt: %s %+v %v", style, got, err)
	}
	// MBR: four slots, one empty, an extended container (number 0) and a
	// logical partition after it.
	mbr := []Partition{{Number: 1, Start: 1 << 20, Size: 500 << 20}, {Number: 0, Start: 501 << 20, Size: 1 << 30}, {}, {}, {Number: 5, Start: 502 << 20, Size: 100 << 20}}
	style, got, err = decodeDriveLayout(driveLayout(0, mbr...))
	if want := []Partition{mbr[0], mbr[4]}; err != nil || style != "mbr" || !reflect.DeepEqual(got, want) {
		t.Errorf("mbr: %s %+v %v; want %+v", style, got, err, want)
	}
	if style, got, err = decodeDriveLayout(driveLayout(2)); err != nil || style != "" || got != nil {
		t.Errorf("raw: %q %+v %v", style, got, err)
	}
	b := driveLayout(1, gpt...)
	le32(b, 4, 4)
	if _, _, err := decodeDriveLayout(b); err == nil {
		t.Errorf("4 partitions in the room of 3 accepted")
	}
	if _, _, err := decodeDriveLayout(driveLayout(7)); err == nil {
		t.Errorf("style 7 accepted")
	}
	if _, _, err := decodeDriveLayout(driveLayout(1, Partition{Number: 1, Start: -4096, Size: 1})); err == nil {
		t.Errorf("negative start accepted")
	}
}

func FuzzDecodeDriveLayout(f *testing.F) {
	f.Add(driveLayout(1, Partition{Number: 1, Start: 1 << 20, Size: 1 << 30}))
	f.Add(driveLayout(0, Partition{Number: 1, Start: 1 << 20, Size: 1 << 30}, Partition{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, parts, err := decodeDriveLayout(b)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p.Number == 0 || p.Size <= 0 || p.Start < 0 || p.Start+p.Size < p.Start {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}

func TestExtentsOverlap(t *testing.T) {
	c := []extent{{Disk: 0, Start: 100 << 20, Length: 50 << 30}}
	for _, tc := range []struct {
		b    []extent
		want bool
	}{
		{[]extent{{Disk: 0, Start: 100 << 20, Length: 50 << 30}}, true},     // the same volume
		{[]extent{{Disk: 0, Start: 1 << 20, Length: 99 << 20}}, false},      // the one before, touching
		{[]extent{{Disk: 0, Start: 100<<20 + 50<<30, Length: 1}}, false},    // the one after, touching
		{[]extent{{Disk: 1, Start: 100 << 20, Length: 50 << 30}}, false},    // another disk
		{[]extent{{Disk: 2}, {Disk: 0, Start: 200 << 20, Length: 1}}, true}, // spanned, one piece inside
		{nil, false}, // a network share
	} {
		if got := extentsOverlap(c, tc.b); got != tc.want {
			t.Errorf("extentsOverlap(%v, %v) = %v", c, tc.b, got)
		}
	}
}

func TestVolumeNames(t *testing.T) {
	for in, want := range map[string]string{"C:": "C:", `c:\`: "C:", `\\.\D:`: "D:", "//./e:": "E:"} {
		if got, ok := driveLetter(in); !ok || got != want {
			t.Errorf("driveLetter(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "C", "1:", `\\.\PhysicalDrive0`, `C:\x`, `\\?\Volume{a}\`} {
		if got, ok := driveLetter(in); ok {
			t.Errorf("driveLetter(%q) = %q, want none", in, got)
		}
	}
	for in, want := range map[string]string{"C:": `\\.\C:`, `\\?\Volume{a}\`: `\\?\Volume{a}`,
		`\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3`: `\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3`} {
		if got := volumeDevice(in); got != want {
			t.Errorf("volumeDevice(%q) = %q, want %q", in, got, want)
		}
	}
	vols := []winVolume{{Name: "{c}", Paths: []string{`C:\`}}, {Name: "{e}", Paths: []string{`C:\Photos\`, `e:\`}}}
	if v, ok := volumeByLetter(vols, "E:"); !ok || v.Name != "{e}" {
		t.Errorf("volumeByLetter E: = %+v, %v", v, ok)
	}
	if _, ok := volumeByLetter(vols, "D:"); ok {
		t.Errorf("volumeByLetter D: found one")
	}
}
