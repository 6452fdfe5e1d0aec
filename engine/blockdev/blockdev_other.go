//go:build !linux && !windows

package blockdev

import (
	"errors"
	"fmt"
	"os"
)

// Open opens a plain image file read-only or read-write. Disks and
// ReadWriteExclusive need Linux (or, for files, Windows); on this system they
// return an error wrapping errors.ErrUnsupported.
func Open(path string, mode Mode) (*Device, error) {
	if err := checkMode(path, mode); err != nil {
		return nil, err
	}
	if mode == ReadWriteExclusive {
		// Without a way to see whether the file is attached as a disk
		// image, an "exclusive" open would be a promise we cannot keep.
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"exclusive open is supported only on Linux and Windows; make sure nothing uses the file and open it with blockdev.ReadWrite, or boot the Lifeboat rescue system: %w",
			errors.ErrUnsupported)}
	}
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, unsupported("open", path)
	}
	return openPlain(path, mode, osOpen)
}

// DropCache syncs written data; dropping cached pages is not possible here.
func (d *Device) DropCache() error {
	if !d.mode.writable() {
		return nil
	}
	return d.Sync()
}

// ID is not supported on this system.
func (d *Device) ID() (ID, error) {
	return ID{}, unsupported("stat", d.Path)
}

// List is not supported on this system.
func List() ([]Disk, error) {
	return nil, fmt.Errorf("list disks: supported only on Linux; boot the Lifeboat rescue system: %w", errors.ErrUnsupported)
}

// MountPoints is not supported on this system: whether a disk or an attached
// image is mounted cannot be told, so callers must refuse rather than guess.
func MountPoints(path string) ([]string, error) {
	return nil, unsupported("mount points", path)
}

// Holds reports whether filePath is the same file as the plain file at
// devicePath (filePath need not exist yet). For disks it returns an error
// wrapping errors.ErrUnsupported.
func Holds(devicePath, filePath string) (bool, error) {
	dfi, err := os.Stat(devicePath)
	if err != nil {
		return false, openError(devicePath, err)
	}
	if !dfi.Mode().IsRegular() {
		return false, unsupported("holds", devicePath)
	}
	return sameFileHolds(dfi, filePath)
}

func unsupported(op, path string) error {
	return &os.PathError{Op: op, Path: path, Err: fmt.Errorf(
		"disks are supported only on Linux; boot the Lifeboat rescue system, or use an image file: %w", errors.ErrUnsupported)}
}

func formatDev(dev uint64) string { return fmt.Sprintf("%#x", dev) }

func isBusy(error) bool       { return false }
func isReadOnlyFS(error) bool { return false }
func isNoMedium(error) bool   { return false }

// RereadPartitions has nothing to do here: plain image files have no
// partition devices.
func (d *Device) RereadPartitions() error { return nil }

// FlushRange syncs the whole device: there is no range sync here, and the
// cache cannot be dropped, so a read-back may come from the cache.
func (d *Device) FlushRange(off, n int64) error { return d.DropCache() }

// dismountsOnOpen: see DismountsOnOpen.
const dismountsOnOpen = false

// MountedVolumes is for Windows, where a live backup snapshots the mounted
// volumes of a disk; here it returns an error wrapping
// errors.ErrUnsupported (unmount, or back up from the rescue media).
func MountedVolumes(diskPath string) ([]MountedVolume, error) {
	return nil, &os.PathError{Op: "mounted volumes", Path: diskPath, Err: errors.ErrUnsupported}
}

// RunningSystemDisk is for Windows; here it returns an error wrapping
// errors.ErrUnsupported (the caller finds the disk of "/").
func RunningSystemDisk() (string, error) {
	return "", errors.ErrUnsupported
}
