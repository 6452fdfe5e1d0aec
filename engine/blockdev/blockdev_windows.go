package blockdev

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/windows"
)

// Open opens a plain image file. Physical drives (\\.\PhysicalDriveN) and
// volumes are not supported yet on Windows. It never creates or truncates
// anything. Errors name the path and say what to do, and wrap the cause:
// errors.Is(err, fs.ErrNotExist), fs.ErrPermission and ErrBusy work.
func Open(path string, mode Mode) (*Device, error) {
	if err := checkMode(path, mode); err != nil {
		return nil, err
	}
	if isDevicePath(path) {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"writing to physical drives on Windows is not yet supported; use an image file, or boot the Lifeboat rescue system: %w",
			errors.ErrUnsupported)}
	}
	open := osOpen
	if mode == ReadWriteExclusive {
		open = openUnshared
	}
	return openPlain(path, mode, open)
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

// List is not supported on Windows yet.
func List() ([]Disk, error) {
	return nil, fmt.Errorf("list disks: not yet supported on Windows; give the path of an image file, or boot the Lifeboat rescue system: %w", errors.ErrUnsupported)
}

// MountPoints reports nothing for a plain file: Windows cannot attach a raw
// image file as a disk, and a .vhd/.vhdx it has attached is held open so
// that ReadWriteExclusive fails with ErrBusy. For a device path it returns an
// error wrapping errors.ErrUnsupported.
func MountPoints(path string) ([]string, error) {
	if isDevicePath(path) {
		return nil, unsupportedDevice("mount points", path)
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

// Holds reports whether filePath is the same file as the plain file at
// devicePath (filePath need not exist yet). For a device path it returns an
// error wrapping errors.ErrUnsupported.
func Holds(devicePath, filePath string) (bool, error) {
	if isDevicePath(devicePath) {
		return false, unsupportedDevice("holds", devicePath)
	}
	dfi, err := os.Stat(devicePath)
	if err != nil {
		return false, openError(devicePath, err)
	}
	return sameFileHolds(dfi, filePath)
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
