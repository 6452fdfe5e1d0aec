package blockdev

// Windows' storage IOCTLs answer in C structures; these are their decoders,
// kept free of any Windows call so that they are tested (and fuzzed) on
// every system, against buffers laid out as the Windows SDK's winioctl.h
// declares them (x64: natural alignment, little-endian). The calls that
// fill the buffers are in blockdev_windows.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The IOCTL and FSCTL codes used (winioctl.h): CTL_CODE(device type,
// function, method, access).
const (
	ioctlDiskGetDriveGeometryEx    = 0x000700a0 // DISK_GEOMETRY_EX
	ioctlDiskGetLengthInfo         = 0x0007405c // GET_LENGTH_INFORMATION
	ioctlDiskUpdateProperties      = 0x00070140 // re-read the partition table
	ioctlStorageQueryProperty      = 0x002d1400 // STORAGE_DEVICE_DESCRIPTOR, STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR
	ioctlStorageGetDeviceNumber    = 0x002d1080 // STORAGE_DEVICE_NUMBER
	ioctlVolumeGetVolumeDiskExtent = 0x00560000 // VOLUME_DISK_EXTENTS
	fsctlLockVolume                = 0x00090018
	fsctlDismountVolume            = 0x00090020

	storageDeviceProperty          = 0 // STORAGE_PROPERTY_ID
	storageAccessAlignmentProperty = 6
)

var errShort = errors.New("answer too short")

// decodeLengthInfo reads GET_LENGTH_INFORMATION: the size in bytes.
func decodeLengthInfo(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("GET_LENGTH_INFORMATION: %w (%d bytes)", errShort, len(b))
	}
	n := int64(binary.LittleEndian.Uint64(b))
	if n < 0 {
		return 0, fmt.Errorf("GET_LENGTH_INFORMATION: negative length %d", n)
	}
	return n, nil
}

// geometry is what DISK_GEOMETRY_EX says: the logical sector size and the
// disk's size.
type geometry struct {
	BytesPerSector int
	DiskSize       int64
}

// decodeGeometryEx reads DISK_GEOMETRY_EX: DISK_GEOMETRY (Cylinders
// LARGE_INTEGER at 0, MediaType at 8, TracksPerCylinder at 12,
// SectorsPerTrack at 16, BytesPerSector at 20) then DiskSize at 24.
func decodeGeometryEx(b []byte) (geometry, error) {
	if len(b) < 32 {
		return geometry{}, fmt.Errorf("DISK_GEOMETRY_EX: %w (%d bytes)", errShort, len(b))
	}
	g := geometry{BytesPerSector: int(binary.LittleEndian.Uint32(b[20:])), DiskSize: int64(binary.LittleEndian.Uint64(b[24:]))}
	if !validSectorSize(g.BytesPerSector) {
		return geometry{}, fmt.Errorf("DISK_GEOMETRY_EX: sector size %d is not a power of two from 512 to 64 KiB", g.BytesPerSector)
	}
	if g.DiskSize < 0 {
		return geometry{}, fmt.Errorf("DISK_GEOMETRY_EX: negative size %d", g.DiskSize)
	}
	return g, nil
}

func validSectorSize(n int) bool { return n >= 512 && n <= 65536 && n&(n-1) == 0 }

// alignment is STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR's sector sizes (4Kn
// disks: 4096 and 4096; 512e: 512 and 4096).
type alignment struct {
	Logical, Physical int
}

// decodeAlignment reads STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR: Version, Size,
// BytesPerCacheLine, BytesOffsetForCacheAlignment, BytesPerLogicalSector
// (16), BytesPerPhysicalSector (20), BytesOffsetForSectorAlignment, all
// DWORDs.
func decodeAlignment(b []byte) (alignment, error) {
	if len(b) < 28 {
		return alignment{}, fmt.Errorf("STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR: %w (%d bytes)", errShort, len(b))
	}
	a := alignment{Logical: int(binary.LittleEndian.Uint32(b[16:])), Physical: int(binary.LittleEndian.Uint32(b[20:]))}
	if !validSectorSize(a.Logical) || !validSectorSize(a.Physical) || a.Physical < a.Logical {
		return alignment{}, fmt.Errorf("STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR: sector sizes %d logical, %d physical make no sense", a.Logical, a.Physical)
	}
	return a, nil
}

// descriptor is what STORAGE_DEVICE_DESCRIPTOR says about a disk.
type descriptor struct {
	Vendor, Product, Serial string
	Bus                     string // as Disk.Bus spells it
	Removable               bool
}

// decodeDescriptor reads STORAGE_DEVICE_DESCRIPTOR: Version (0), Size (4),
// DeviceType (8), DeviceTypeModifier (9), RemovableMedia (10),
// CommandQueueing (11), VendorIdOffset (12), ProductIdOffset (16),
// ProductRevisionOffset (20), SerialNumberOffset (24), BusType (28),
// RawPropertiesLength (32). The strings are NUL-terminated at their
// offsets within the answer; offset 0 means none. Drives fill them with
// spaces, which are trimmed.
func decodeDescriptor(b []byte) (descriptor, error) {
	if len(b) < 36 {
		return descriptor{}, fmt.Errorf("STORAGE_DEVICE_DESCRIPTOR: %w (%d bytes)", errShort, len(b))
	}
	if size := binary.LittleEndian.Uint32(b[4:]); int64(size) < int64(len(b)) {
		b = b[:max(size, 36)] // strings live within the size it claims
	}
	str := func(at int) (string, error) {
		off := binary.LittleEndian.Uint32(b[at:])
		if off == 0 {
			return "", nil
		}
		if off < 36 || int64(off) >= int64(len(b)) {
			return "", fmt.Errorf("STORAGE_DEVICE_DESCRIPTOR: string offset %d outside the %d-byte answer", off, len(b))
		}
		s := b[off:]
		if i := strings.IndexByte(string(s), 0); i >= 0 {
			s = s[:i]
		}
		return strings.TrimSpace(strings.Map(printable, string(s))), nil
	}
	var d descriptor
	var err error
	if d.Vendor, err = str(12); err != nil {
		return descriptor{}, err
	}
	if d.Product, err = str(16); err != nil {
		return descriptor{}, err
	}
	if d.Serial, err = str(24); err != nil {
		return descriptor{}, err
	}
	d.Removable = b[10] != 0
	d.Bus = busName(binary.LittleEndian.Uint32(b[28:]))
	return d, nil
}

// printable drops what a drive may put in its strings that is not text.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f || r > 0x7e {
		return -1
	}
	return r
}

// busName maps STORAGE_BUS_TYPE onto Disk.Bus's words ("" when unknown or
// virtual, as on Linux).
func busName(t uint32) string {
	switch t {
	case 0x1, 0xa: // BusTypeScsi, BusTypeSas
		return "scsi"
	case 0x2, 0x3, 0xb: // BusTypeAtapi, BusTypeAta, BusTypeSata
		return "sata"
	case 0x7:
		return "usb"
	case 0xc, 0xd: // BusTypeSd, BusTypeMmc
		return "mmc"
	case 0x11:
		return "nvme"
	}
	return ""
}

// extent is one piece of a volume on a disk (DISK_EXTENT).
type extent struct {
	Disk          int
	Start, Length int64
}

// decodeExtents reads VOLUME_DISK_EXTENTS: NumberOfDiskExtents (DWORD,
// padded to 8), then DISK_EXTENTs of 24 bytes: DiskNumber (DWORD, padded),
// StartingOffset, ExtentLength.
func decodeExtents(b []byte) ([]extent, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("VOLUME_DISK_EXTENTS: %w (%d bytes)", errShort, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if int64(n) > int64(len(b)-8)/24 {
		return nil, fmt.Errorf("VOLUME_DISK_EXTENTS: %d extents do not fit in %d bytes", n, len(b))
	}
	out := make([]extent, 0, n)
	for i := range int(n) {
		e := b[8+24*i:]
		x := extent{Disk: int(binary.LittleEndian.Uint32(e)), Start: int64(binary.LittleEndian.Uint64(e[8:])), Length: int64(binary.LittleEndian.Uint64(e[16:]))}
		if x.Start < 0 || x.Length < 0 || x.Start > x.Start+x.Length {
			return nil, fmt.Errorf("VOLUME_DISK_EXTENTS: extent %d (start %d, length %d) makes no sense", i, x.Start, x.Length)
		}
		out = append(out, x)
	}
	return out, nil
}

// decodeDeviceNumber reads STORAGE_DEVICE_NUMBER: DeviceType, DeviceNumber,
// PartitionNumber (DWORDs); it returns the disk's number.
func decodeDeviceNumber(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, fmt.Errorf("STORAGE_DEVICE_NUMBER: %w (%d bytes)", errShort, len(b))
	}
	return int(binary.LittleEndian.Uint32(b[4:])), nil
}

// physicalDrivePrefix is how Windows names a whole disk: \\.\PhysicalDriveN.
const physicalDrivePrefix = `\\.\PhysicalDrive`

// DiskNumber reads the disks Windows users name: "2", `\\.\PhysicalDrive2`
// (any case, / for \), or "PhysicalDrive2". ok is false for anything else
// (an image file, a volume such as C:).
func DiskNumber(name string) (n int, ok bool) {
	s := strings.ReplaceAll(name, "/", `\`)
	if len(s) >= len(physicalDrivePrefix) && strings.EqualFold(s[:len(physicalDrivePrefix)], physicalDrivePrefix) {
		s = s[len(physicalDrivePrefix):]
	} else if len(s) >= len("PhysicalDrive") && strings.EqualFold(s[:len("PhysicalDrive")], "PhysicalDrive") {
		s = s[len("PhysicalDrive"):]
	}
	if s == "" || len(s) > 3 || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// PhysicalDrivePath is Windows' name of disk n.
func PhysicalDrivePath(n int) string { return physicalDrivePrefix + strconv.Itoa(n) }

// winVolume is a mounted volume as Windows lists it: its GUID name
// (\\?\Volume{…}\), drive letters and folders, and where it lies.
type winVolume struct {
	Name    string
	Paths   []string // "C:\", "D:\Mount\"
	Extents []extent
}

// volumesOn returns the volumes with an extent on disk, in the order
// given: the ones to lock and dismount before the disk is written, and the
// ones whose letters a refusal names.
func volumesOn(vols []winVolume, disk int) []winVolume {
	var out []winVolume
	for _, v := range vols {
		for _, e := range v.Extents {
			if e.Disk == disk {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// volumeWords names a volume for a message: its letters and folders, or
// its GUID name when it has none.
func volumeWords(v winVolume) string {
	if len(v.Paths) > 0 {
		return strings.Join(v.Paths, ", ")
	}
	return v.Name
}

// Drive layouts (IOCTL_DISK_GET_DRIVE_LAYOUT_EX).
const (
	ioctlDiskGetDriveLayoutEx = 0x00070050
	layoutHeader              = 48  // PartitionStyle, PartitionCount, the MBR/GPT union (40)
	layoutEntry               = 144 // PARTITION_INFORMATION_EX
)

// decodeDriveLayout reads DRIVE_LAYOUT_INFORMATION_EX: PartitionStyle (0
// MBR, 1 GPT, 2 raw), PartitionCount, then from byte 48 that many
// PARTITION_INFORMATION_EX of 144 bytes: StartingOffset (8),
// PartitionLength (16), PartitionNumber (24). Empty MBR slots and the
// extended partition's container (number 0) are left out; the rest is
// ordered as Windows lists it.
func decodeDriveLayout(b []byte) (style string, parts []Partition, err error) {
	if len(b) < layoutHeader {
		return "", nil, fmt.Errorf("DRIVE_LAYOUT_INFORMATION_EX: %w (%d bytes)", errShort, len(b))
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0:
		style = "mbr"
	case 1:
		style = "gpt"
	case 2:
		style = ""
	default:
		return "", nil, fmt.Errorf("DRIVE_LAYOUT_INFORMATION_EX: unknown partition style %d", binary.LittleEndian.Uint32(b))
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if int64(n) > int64(len(b)-layoutHeader)/layoutEntry {
		return "", nil, fmt.Errorf("DRIVE_LAYOUT_INFORMATION_EX: %d partitions do not fit in %d bytes", n, len(b))
	}
	for i := range int(n) {
		e := b[layoutHeader+layoutEntry*i:]
		p := Partition{Start: int64(binary.LittleEndian.Uint64(e[8:])), Size: int64(binary.LittleEndian.Uint64(e[16:])), Number: int(binary.LittleEndian.Uint32(e[24:]))}
		if p.Number == 0 || p.Size == 0 {
			continue
		}
		if p.Start < 0 || p.Size < 0 || p.Start > p.Start+p.Size {
			return "", nil, fmt.Errorf("DRIVE_LAYOUT_INFORMATION_EX: partition %d (start %d, length %d) makes no sense", p.Number, p.Start, p.Size)
		}
		parts = append(parts, p)
	}
	return style, parts, nil
}

// MountedVolume is a volume the running system has mounted from one range
// of a disk: what a live backup reads through a snapshot.
type MountedVolume struct {
	Name  string   // the system's name for it (Windows: \\?\Volume{…}\)
	Paths []string // drive letters and folders, e.g. `C:\`
	Start int64    // bytes from the start of the disk
	Size  int64
}

// Words names the volume for a message: its letters and folders, or its
// name when it has none.
func (v MountedVolume) Words() string {
	return volumeWords(winVolume{Name: v.Name, Paths: v.Paths})
}

// mountedOn turns the volumes on disk n into MountedVolumes; a volume
// spanning several extents cannot be read as one range of the disk and is
// returned in spanned instead.
func mountedOn(vols []winVolume, n int) (one []MountedVolume, spanned []string) {
	for _, v := range volumesOn(vols, n) {
		if len(v.Extents) != 1 {
			spanned = append(spanned, volumeWords(v))
			continue
		}
		one = append(one, MountedVolume{Name: v.Name, Paths: v.Paths, Start: v.Extents[0].Start, Size: v.Extents[0].Length})
	}
	return one, spanned
}

// extentsOverlap reports whether any extent of a shares bytes of a disk
// with any of b.
func extentsOverlap(a, b []extent) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Disk == y.Disk && x.Start < y.Start+y.Length && y.Start < x.Start+x.Length {
				return true
			}
		}
	}
	return false
}

// driveLetter reads a volume named by its drive letter: "C:", `C:\`,
// `\\.\C:` (any case, / for \) give "C:".
func driveLetter(path string) (string, bool) {
	s := strings.TrimSuffix(strings.TrimPrefix(strings.ReplaceAll(path, "/", `\`), `\\.\`), `\`)
	if len(s) != 2 || s[1] != ':' || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return "", false
	}
	return strings.ToUpper(s), true
}

// volumeDevice is the name that opens the volume path names: `\\.\C:` for
// a drive letter ("C:" alone would open C:'s current folder), else path
// without its final backslash (\\?\Volume{…}, a snapshot's device).
func volumeDevice(path string) string {
	if l, ok := driveLetter(path); ok {
		return `\\.\` + l
	}
	return strings.TrimSuffix(path, `\`)
}

// volumeByLetter finds the volume mounted at a drive letter ("C:").
func volumeByLetter(vols []winVolume, letter string) (winVolume, bool) {
	for _, v := range vols {
		for _, p := range v.Paths {
			if strings.EqualFold(p, letter+`\`) {
				return v, true
			}
		}
	}
	return winVolume{}, false
}
