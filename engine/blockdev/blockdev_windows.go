package blockdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// Open opens a plain image file, or a whole disk (\\.\PhysicalDriveN).
// A disk opened for writing has every volume on it locked and dismounted
// until Close, and the disk Windows runs from is refused. Volumes
// (\\.\C:) are not supported on Windows yet. It never creates or truncates anything. Errors name the
// path and say what to do, and wrap the cause: errors.Is(err,
// fs.ErrNotExist), fs.ErrPermission and ErrBusy work.
func Open(path string, mode Mode) (*Device, error) {
	if err := checkMode(path, mode); err != nil {
		return nil, err
	}
	if isDevicePath(path) {
		if n, ok := DiskNumber(path); ok {
			return openDisk(path, n, mode)
		}
		if !mode.writable() {
			return openVolume(path, mode)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"writing to a volume is not supported on Windows; restore the partition within its disk (lifeboat restore IMAGE --target DISK --partition N): %w", errors.ErrUnsupported)}
	}
	open := osOpen
	if mode == ReadWriteExclusive {
		open = openUnshared
	}
	return openPlain(path, mode, open)
}

// openDisk opens disk n (path is its \\.\PhysicalDriveN name): its size
// and logical sector size from the storage IOCTLs, reads and writes
// aligned to whole sectors, as a disk handle requires. For writing, the
// disk's volumes are locked and dismounted (lockDisk) until Close, which
// also has Windows re-read the partition table.
func openDisk(path string, n int, mode Mode) (*Device, error) {
	if err := needElevation(path); err != nil {
		return nil, err
	}
	access := uint32(windows.GENERIC_READ)
	if mode.writable() {
		access |= windows.GENERIC_WRITE
	}
	h, err := openHandle(path, access)
	if err != nil {
		return nil, diskOpenError(path, n, err)
	}
	f := os.NewFile(uintptr(h), path)
	size, sector, err := diskSize(h)
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	d := &Device{Path: path, Size: size, SectorSize: sector, IsBlock: true, f: f, mode: mode,
		in: sectorReader{f, int64(sector)}}
	if !mode.writable() {
		return d, nil
	}
	unlock, err := lockDisk(winVolumes{}, path, n)
	if err != nil {
		f.Close()
		return nil, err
	}
	d.out = sectorWriter{f, int64(sector), &sync.Mutex{}}
	d.release = func() error {
		_, uerr := ioctl(h, ioctlDiskUpdateProperties, nil, 0)
		if uerr != nil {
			uerr = fmt.Errorf("%s: tell Windows to re-read the partition table (IOCTL_DISK_UPDATE_PROPERTIES): %w; unplug and replug the disk, or rescan in Disk Management", path, uerr)
		}
		return errors.Join(uerr, unlock())
	}
	return d, nil
}

// openVolume opens a volume (\\.\C:, C:, \\?\Volume{…}, a snapshot's
// \\?\GLOBALROOT\Device\HarddiskVolumeShadowCopyN) for reading, in
// whole sectors.
func openVolume(path string, mode Mode) (*Device, error) {
	if err := needElevation(path); err != nil {
		return nil, err
	}
	h, err := openHandle(volumeDevice(path), windows.GENERIC_READ)
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return nil, &os.PathError{Op: "open", Path: path, Err: &hintError{
				msg:  "access denied: reading a volume needs administrator rights; run lifeboat from an elevated prompt (right-click the terminal, Run as administrator)",
				errs: []error{err, fs.ErrPermission}}}
		}
		return nil, openError(path, err)
	}
	f := os.NewFile(uintptr(h), path)
	b, err := ioctl(h, ioctlDiskGetLengthInfo, nil, 8)
	var size int64
	if err == nil {
		size, err = decodeLengthInfo(b)
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("IOCTL_DISK_GET_LENGTH_INFO: %w", err)}
	}
	// The disk's sector size where the volume passes the question on;
	// else 4096, which whole 512-byte sectors divide too.
	sector := 4096
	if b, err := ioctl(h, ioctlDiskGetDriveGeometryEx, nil, 256); err == nil {
		if g, err := decodeGeometryEx(b); err == nil {
			sector = g.BytesPerSector
		}
	}
	return &Device{Path: path, Size: size, SectorSize: sector, IsBlock: true, f: f, mode: mode,
		in: sectorReader{f, int64(sector)}}, nil
}

// winVolumes is volumeAPI with Windows' own calls.
type winVolumes struct{}

func (winVolumes) volumes() ([]winVolume, error) { return listVolumes() }

func (winVolumes) systemDisks() ([]int, error) {
	dir, err := windows.GetSystemWindowsDirectory()
	if err != nil {
		return nil, err
	}
	ex, err := fileExtents(dir)
	if err != nil {
		return nil, err
	}
	var disks []int
	for _, e := range ex {
		disks = append(disks, e.Disk)
	}
	return disks, nil
}

func (winVolumes) lockDismount(name string) (func() error, error) {
	h, err := openHandle(volumeDevice(name), windows.GENERIC_READ|windows.GENERIC_WRITE)
	if err != nil {
		return nil, err
	}
	if _, err := ioctl(h, fsctlLockVolume, nil, 0); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("FSCTL_LOCK_VOLUME: %w", err)
	}
	if _, err := ioctl(h, fsctlDismountVolume, nil, 0); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("FSCTL_DISMOUNT_VOLUME: %w", err)
	}
	// Closing the handle ends the lock; Windows mounts the volume again
	// when it is next used.
	return func() error { return windows.CloseHandle(h) }, nil
}

// needElevation refuses, before anything is opened, when this process
// lacks an administrator's full token: Windows would deny the disk with
// ERROR_ACCESS_DENIED, which says nothing about what to do.
func needElevation(path string) error {
	if windows.GetCurrentProcessToken().IsElevated() {
		return nil
	}
	return &os.PathError{Op: "open", Path: path, Err: &hintError{
		msg:  "disks and volumes need administrator rights, and this prompt is not elevated; run lifeboat from an elevated prompt (right-click the terminal, Run as administrator)",
		errs: []error{fs.ErrPermission}}}
}

// openHandle opens a disk or volume name with access (0: only to ask it
// questions, which needs no elevation), sharing it with everyone.
func openHandle(name string, access uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return windows.InvalidHandle, err
	}
	return windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
}

// diskOpenError says what to do when disk n cannot be opened: elevate, or
// pick a disk that exists.
func diskOpenError(path string, n int, err error) error {
	switch {
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		return &os.PathError{Op: "open", Path: path, Err: &hintError{
			msg:  "access denied: reading a disk needs administrator rights; run lifeboat from an elevated prompt (right-click the terminal, Run as administrator)",
			errs: []error{err, fs.ErrPermission}}}
	case errors.Is(err, windows.ERROR_FILE_NOT_FOUND), errors.Is(err, windows.ERROR_PATH_NOT_FOUND):
		return &os.PathError{Op: "open", Path: path, Err: &hintError{
			msg:  fmt.Sprintf("there is no disk %d; lifeboat disks lists the disks", n),
			errs: []error{err, fs.ErrNotExist}}}
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// diskSize asks an open disk for its logical sector size and its size
// (GET_LENGTH_INFO, else the geometry's DiskSize).
func diskSize(h windows.Handle) (size int64, sector int, err error) {
	b, err := ioctl(h, ioctlDiskGetDriveGeometryEx, nil, 256)
	if err != nil {
		return 0, 0, fmt.Errorf("IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: %w", err)
	}
	g, err := decodeGeometryEx(b)
	if err != nil {
		return 0, 0, err
	}
	size = g.DiskSize
	if b, err := ioctl(h, ioctlDiskGetLengthInfo, nil, 8); err == nil {
		if size, err = decodeLengthInfo(b); err != nil {
			return 0, 0, err
		}
	}
	if size%int64(g.BytesPerSector) != 0 {
		return 0, 0, fmt.Errorf("the disk's size %d is not a multiple of its %d-byte sectors", size, g.BytesPerSector)
	}
	return size, g.BytesPerSector, nil
}

// ioctl sends code with in and returns the answer, growing the buffer from
// size while the driver says it is too small (up to 1 MiB).
func ioctl(h windows.Handle, code uint32, in []byte, size int) ([]byte, error) {
	var inp *byte
	if len(in) > 0 {
		inp = &in[0]
	}
	for {
		out := make([]byte, size)
		var outp *byte
		if size > 0 {
			outp = &out[0]
		}
		var n uint32
		err := windows.DeviceIoControl(h, code, inp, uint32(len(in)), outp, uint32(len(out)), &n, nil)
		if (errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || errors.Is(err, windows.ERROR_MORE_DATA)) && size < 1<<20 {
			size = max(4*size, 256)
			continue
		}
		if err != nil {
			return nil, err
		}
		return out[:n], nil
	}
}

// storageQuery asks IOCTL_STORAGE_QUERY_PROPERTY for a standard property
// (STORAGE_PROPERTY_QUERY: PropertyId, QueryType 0, padded to 12 bytes).
func storageQuery(h windows.Handle, property uint32) ([]byte, error) {
	in := make([]byte, 12)
	binary.LittleEndian.PutUint32(in, property)
	return ioctl(h, ioctlStorageQueryProperty, in, 1024)
}

// isDevicePath reports whether path names a device rather than a file:
// \\.\PhysicalDrive0, \\.\C:, \\?\Volume{...}, or a bare drive "C:".
func isDevicePath(path string) bool {
	p := strings.ReplaceAll(path, "/", `\`)
	if strings.HasPrefix(p, `\\.\`) {
		return true
	}
	if rest, ok := strings.CutPrefix(p, `\\?\`); ok {
		return strings.HasPrefix(strings.ToLower(rest), "volume{") || strings.HasPrefix(strings.ToLower(rest), "globalroot")
	}
	return len(p) == 2 && p[1] == ':'
}

// openUnshared opens without sharing, so that Windows refuses while another
// program (or an attached virtual disk) has the file open, and refuses
// everybody else while we have it.
func openUnshared(path string, flags int) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	access := uint32(windows.GENERIC_READ)
	if flags&os.O_RDWR != 0 {
		access |= windows.GENERIC_WRITE
	}
	h, err := windows.CreateFile(p, access, 0, nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// DropCache syncs written data. Windows has no way to drop one file's cached
// pages short of reopening it unbuffered, so later reads may still come from
// the cache.
func (d *Device) DropCache() error {
	if !d.mode.writable() {
		return nil // FlushFileBuffers needs write access
	}
	return d.Sync()
}

// ID returns the identity of the opened file: its volume serial number and
// file index.
func (d *Device) ID() (ID, error) {
	rc, err := d.f.SyscallConn()
	if err == nil && d.IsBlock {
		// A disk: its number (STORAGE_DEVICE_NUMBER).
		var num int
		var numErr error
		if err := rc.Control(func(h uintptr) {
			var b []byte
			if b, numErr = ioctl(windows.Handle(h), ioctlStorageGetDeviceNumber, nil, 12); numErr == nil {
				num, numErr = decodeDeviceNumber(b)
			}
		}); err != nil {
			numErr = err
		}
		if numErr != nil {
			return ID{}, &os.PathError{Op: "stat", Path: d.Path, Err: numErr}
		}
		return ID{Dev: uint64(num), Block: true}, nil
	}
	if err != nil {
		return ID{}, &os.PathError{Op: "stat", Path: d.Path, Err: err}
	}
	var info windows.ByHandleFileInformation
	var infoErr error
	if err := rc.Control(func(h uintptr) {
		infoErr = windows.GetFileInformationByHandle(windows.Handle(h), &info)
	}); err != nil {
		infoErr = err
	}
	if infoErr != nil {
		return ID{}, &os.PathError{Op: "stat", Path: d.Path, Err: infoErr}
	}
	return ID{
		Dev:   uint64(info.VolumeSerialNumber),
		Inode: uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow),
	}, nil
}

// List returns the disks Windows numbers (\\.\PhysicalDrive0 to 63),
// ordered by number: size, sector size, bus, model and serial from the
// storage IOCTLs, which need no elevation; the partitions, whose table
// Windows reads only for an administrator, named by their drive letters
// where a volume starts at one.
func List() ([]Disk, error) {
	vols, _ := listVolumes() // without volumes, disks are still listed
	var disks []Disk
	for n := range 64 {
		path := PhysicalDrivePath(n)
		h, err := openHandle(path, 0)
		if err != nil {
			continue
		}
		d := Disk{Name: fmt.Sprintf("PhysicalDrive%d", n), Path: path}
		if size, sector, err := diskSize(h); err == nil {
			d.Size, d.SectorSize = size, sector
		}
		if b, err := storageQuery(h, storageDeviceProperty); err == nil {
			if desc, err := decodeDescriptor(b); err == nil {
				d.Model = strings.TrimSpace(desc.Vendor + " " + desc.Product)
				d.Serial, d.Bus, d.Removable = desc.Serial, desc.Bus, desc.Removable
			}
		}
		windows.CloseHandle(h)
		if h, err := openHandle(path, windows.GENERIC_READ); err == nil {
			if b, err := ioctl(h, ioctlDiskGetDriveLayoutEx, nil, 4096); err == nil {
				if _, parts, err := decodeDriveLayout(b); err == nil {
					d.Partitions = nameByVolume(parts, volumesOn(vols, n), n)
				}
			}
			windows.CloseHandle(h)
		}
		disks = append(disks, d)
	}
	return disks, nil
}

// nameByVolume names each partition by the volume that starts where it
// starts on disk n (its first drive letter, e.g. "C:", and \\.\C: as its
// path), else "PhysicalDriveN partition K" with no path.
func nameByVolume(parts []Partition, vols []winVolume, n int) []Partition {
	for i := range parts {
		parts[i].Name = fmt.Sprintf("PhysicalDrive%d partition %d", n, parts[i].Number)
		for _, v := range vols {
			if len(v.Extents) == 0 || v.Extents[0].Disk != n || v.Extents[0].Start != parts[i].Start {
				continue
			}
			for _, p := range v.Paths {
				if len(p) == 3 && p[1] == ':' {
					parts[i].Name, parts[i].Path = p[:2], `\\.\`+p[:2]
					break
				}
			}
		}
	}
	return parts
}

// listVolumes lists the system's volumes with their paths (drive letters
// and mounted folders) and extents.
func listVolumes() ([]winVolume, error) {
	buf := make([]uint16, windows.MAX_PATH+1)
	fh, err := windows.FindFirstVolume(&buf[0], uint32(len(buf)))
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	defer windows.FindVolumeClose(fh)
	var vols []winVolume
	for {
		name := windows.UTF16ToString(buf)
		v := winVolume{Name: name, Paths: volumePaths(name)}
		// The volume's device is its name without the final backslash.
		if h, err := openHandle(volumeDevice(name), 0); err == nil {
			if b, err := ioctl(h, ioctlVolumeGetVolumeDiskExtent, nil, 256); err == nil {
				v.Extents, _ = decodeExtents(b)
			}
			windows.CloseHandle(h)
		}
		vols = append(vols, v)
		if err := windows.FindNextVolume(fh, &buf[0], uint32(len(buf))); err != nil {
			break // ERROR_NO_MORE_FILES
		}
	}
	return vols, nil
}

// volumePaths are a volume's drive letters and mounted folders.
func volumePaths(name string) []string {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil
	}
	buf := make([]uint16, 1024)
	var n uint32
	if err := windows.GetVolumePathNamesForVolumeName(p, &buf[0], uint32(len(buf)), &n); err != nil {
		return nil
	}
	var out []string
	// A list of NUL-terminated names, ended by an empty one.
	for _, s := range strings.Split(string(utf16.Decode(buf[:min(int(n), len(buf))])), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// MountPoints returns, for a disk, the drive letters and folders of the
// volumes on it; for a volume by its letter (C:, \\.\C:), its own; for a
// plain file nothing: Windows cannot attach a raw image file as a disk, and
// a .vhd/.vhdx it has attached is held open so that ReadWriteExclusive
// fails with ErrBusy. For other volume names it returns an error wrapping
// errors.ErrUnsupported.
func MountPoints(path string) ([]string, error) {
	if isDevicePath(path) {
		n, isDisk := DiskNumber(path)
		letter, isLetter := driveLetter(path)
		if !isDisk && !isLetter {
			return nil, unsupportedDevice("mount points", path)
		}
		vols, err := listVolumes()
		if err != nil {
			return nil, &os.PathError{Op: "mount points", Path: path, Err: err}
		}
		points := []string{}
		if isLetter {
			if v, ok := volumeByLetter(vols, letter); ok {
				points = append(points, v.Paths...)
			}
			return points, nil
		}
		for _, v := range volumesOn(vols, n) {
			points = append(points, v.Paths...)
		}
		return points, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, openError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notDevice(path, fi)
	}
	return []string{}, nil
}

// Holds reports whether filePath (which need not exist yet) is the same
// file as the plain file at devicePath, or, for a disk, lies on a volume
// with a piece on that disk. For a volume path it returns an error
// wrapping errors.ErrUnsupported.
func Holds(devicePath, filePath string) (bool, error) {
	if isDevicePath(devicePath) {
		ex, err := fileExtents(filePath)
		if err != nil {
			return false, &os.PathError{Op: "holds", Path: filePath, Err: err}
		}
		if n, ok := DiskNumber(devicePath); ok {
			for _, e := range ex {
				if e.Disk == n {
					return true, nil
				}
			}
			return false, nil
		}
		// A volume: does the file's volume share a piece of disk with it?
		h, err := openHandle(volumeDevice(devicePath), 0)
		if err != nil {
			return false, openError(devicePath, err)
		}
		defer windows.CloseHandle(h)
		b, err := ioctl(h, ioctlVolumeGetVolumeDiskExtent, nil, 256)
		if err != nil {
			return false, unsupportedDevice("holds", devicePath)
		}
		vex, err := decodeExtents(b)
		if err != nil {
			return false, &os.PathError{Op: "holds", Path: devicePath, Err: err}
		}
		return extentsOverlap(vex, ex), nil
	}
	dfi, err := os.Stat(devicePath)
	if err != nil {
		return false, openError(devicePath, err)
	}
	return sameFileHolds(dfi, filePath)
}

// fileExtents are the disk extents of the volume that holds filePath (or
// would, once created).
func fileExtents(filePath string) ([]extent, error) {
	abs, err := filepath.Abs(filePath)
	if err != nil {
		return nil, err
	}
	p, err := windows.UTF16PtrFromString(abs)
	if err != nil {
		return nil, err
	}
	root := make([]uint16, windows.MAX_PATH+1)
	if err := windows.GetVolumePathName(p, &root[0], uint32(len(root))); err != nil {
		return nil, fmt.Errorf("the volume of %s: %w", abs, err)
	}
	name := make([]uint16, windows.MAX_PATH+1)
	if err := windows.GetVolumeNameForVolumeMountPoint(&root[0], &name[0], uint32(len(name))); err != nil {
		return nil, fmt.Errorf("the volume at %s: %w", windows.UTF16ToString(root), err)
	}
	h, err := openHandle(volumeDevice(windows.UTF16ToString(name)), 0)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(h)
	b, err := ioctl(h, ioctlVolumeGetVolumeDiskExtent, nil, 256)
	if err != nil {
		// Network shares and RAM disks have no disk extents: they are
		// on no disk.
		return nil, nil
	}
	return decodeExtents(b)
}

func unsupportedDevice(op, path string) error {
	return &os.PathError{Op: op, Path: path, Err: fmt.Errorf(
		"disks are not yet supported on Windows; use an image file, or boot the Lifeboat rescue system: %w", errors.ErrUnsupported)}
}

func formatDev(dev uint64) string { return fmt.Sprintf("%#x", dev) }

func isBusy(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
func isReadOnlyFS(err error) bool { return errors.Is(err, windows.ERROR_WRITE_PROTECT) }
func isNoMedium(err error) bool   { return errors.Is(err, windows.ERROR_NOT_READY) }

// RereadPartitions has nothing to do here: plain image files have no
// partition devices.
func (d *Device) RereadPartitions() error { return nil }

// FlushRange syncs the whole device: there is no range sync here, and the
// cache cannot be dropped, so a read-back may come from the cache.
func (d *Device) FlushRange(off, n int64) error { return d.DropCache() }

// dismountsOnOpen: openDisk locks and dismounts a disk's volumes (lockDisk).
const dismountsOnOpen = true

// MountedVolumes lists the volumes mounted from disk diskPath
// (\\.\PhysicalDriveN), each as one range of it. A volume spanning disks
// (a dynamic disk's spanned or striped volume) is an error: it cannot be
// snapshotted as a range of one disk.
func MountedVolumes(diskPath string) ([]MountedVolume, error) {
	if !isDevicePath(diskPath) {
		return nil, nil // an image file has none
	}
	vols, err := listVolumes()
	if err != nil {
		return nil, err
	}
	n, ok := DiskNumber(diskPath)
	if !ok {
		// A volume given itself (C:, \\.\C:): all of it, if mounted.
		letter, _ := driveLetter(diskPath)
		v, ok := volumeByLetter(vols, letter)
		if !ok {
			return nil, nil
		}
		var size int64
		for _, e := range v.Extents {
			size += e.Length
		}
		return []MountedVolume{{Name: v.Name, Paths: v.Paths, Size: size}}, nil
	}
	one, spanned := mountedOn(vols, n)
	if len(spanned) > 0 {
		return nil, fmt.Errorf("volumes %s span several disks or pieces of disk %d, which a live backup cannot read through snapshots; back the disk up from the Lifeboat rescue media", strings.Join(spanned, ", "), n)
	}
	return one, nil
}

// RunningSystemDisk is the disk the running Windows lies on (the one that
// holds its Windows directory), as \\.\PhysicalDriveN.
func RunningSystemDisk() (string, error) {
	disks, err := winVolumes{}.systemDisks()
	if err != nil {
		return "", fmt.Errorf("find the disk Windows runs from: %w", err)
	}
	switch len(disks) {
	case 0:
		return "", errors.New("the Windows directory lies on no disk")
	case 1:
		return PhysicalDrivePath(disks[0]), nil
	}
	return "", fmt.Errorf("Windows lies on several disks (%v); back them up one by one with lifeboat backup disk N", disks)
}
