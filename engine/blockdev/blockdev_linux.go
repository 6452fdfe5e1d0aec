package blockdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Open opens a disk, partition or plain image file. It never creates or
// truncates anything. Errors name the path and say what to do, and wrap the
// cause: errors.Is(err, fs.ErrNotExist), fs.ErrPermission and ErrBusy work.
func Open(path string, mode Mode) (*Device, error) {
	if err := checkMode(path, mode); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, openError(path, err)
	}
	isBlock := fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0
	if !isBlock && !fi.Mode().IsRegular() {
		return nil, notDevice(path, fi)
	}

	flags := os.O_RDONLY
	if mode.writable() {
		flags = os.O_RDWR
	}
	if mode == ReadWriteExclusive {
		if isBlock {
			// Without O_CREAT, O_EXCL on a block device asks the kernel
			// for an exclusive claim: it fails with EBUSY while the device
			// is mounted, swapped on, or part of LVM/RAID.
			flags |= unix.O_EXCL
		} else if loops, err := loopsBackedBy(fi); err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		} else if len(loops) > 0 {
			// O_EXCL means nothing for regular files, but a file attached
			// to a loop device is in use all the same. This is checked
			// before opening, so a loop device attached just after is
			// missed; that is as good as the kernel's own check for disks.
			return nil, &os.PathError{Op: "open", Path: path, Err: &hintError{
				msg:  fmt.Sprintf("is in use as loop device %s; detach it first (losetup -d %s)", loops[0], loops[0]),
				errs: []error{ErrBusy, syscall.EBUSY},
			}}
		}
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	d := &Device{Path: path, IsBlock: isBlock, SectorSize: 512, f: f, mode: mode}
	if err := d.probe(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// probe fills in Size and SectorSize from the open file, which is the
// authority: the path may have changed since it was stat'ed.
func (d *Device) probe() error {
	var st unix.Stat_t
	var size uint64
	var sector uint32
	var ioErr error
	err := d.control(func(fd int) {
		if ioErr = unix.Fstat(fd, &st); ioErr != nil {
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return
		}
		// BLKGETSIZE64 writes a u64 on every architecture, so it cannot go
		// through IoctlGetInt (a 32-bit int on 32-bit systems).
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
			ioErr = fmt.Errorf("BLKGETSIZE64: %w", e)
			return
		}
		if sector, ioErr = unix.IoctlGetUint32(fd, unix.BLKSSZGET); ioErr != nil {
			ioErr = fmt.Errorf("BLKSSZGET: %w", ioErr)
		}
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: d.Path, Err: err}
	}
	d.IsBlock = st.Mode&unix.S_IFMT == unix.S_IFBLK
	if !d.IsBlock {
		d.Size = st.Size
		return nil
	}
	d.Size = int64(size)
	if sector != 0 {
		d.SectorSize = int(sector)
	}
	return nil
}

// control runs fn with the raw descriptor without making the file blocking
// (which f.Fd would).
func (d *Device) control(fn func(fd int)) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// DropCache makes later reads come from the medium rather than the page
// cache, so that a read-back verification checks what was really written.
// It syncs first, then drops the file's cached pages (posix_fadvise
// DONTNEED) and, for a block device, the device's buffer cache (BLKFLSBUF,
// which needs root).
func (d *Device) DropCache() error {
	if err := d.Sync(); err != nil {
		return err
	}
	var opErr error
	err := d.control(func(fd int) {
		if e := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); e != nil {
			opErr = fmt.Errorf("posix_fadvise DONTNEED: %w", e)
			return
		}
		if d.IsBlock {
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKFLSBUF, 0); e != 0 {
				opErr = fmt.Errorf("BLKFLSBUF: %w", e)
			}
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			err = &hintError{msg: err.Error() + "; run as root", errs: []error{err}}
		}
		return &os.PathError{Op: "drop cache", Path: d.Path, Err: err}
	}
	return nil
}

// ID returns the identity of the opened storage: for a block device its
// dev_t, for a plain file its (st_dev, inode) pair.
func (d *Device) ID() (ID, error) {
	var st unix.Stat_t
	var statErr error
	err := d.control(func(fd int) { statErr = unix.Fstat(fd, &st) })
	if err == nil {
		err = statErr
	}
	if err != nil {
		return ID{}, &os.PathError{Op: "stat", Path: d.Path, Err: err}
	}
	return statID(&st), nil
}

func statID(st *unix.Stat_t) ID {
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return ID{Dev: uint64(st.Rdev), Block: true}
	}
	return ID{Dev: uint64(st.Dev), Inode: st.Ino}
}

func formatDev(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}

func isBusy(err error) bool       { return errors.Is(err, syscall.EBUSY) }
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
func isNoMedium(err error) bool {
	return errors.Is(err, syscall.ENOMEDIUM) || errors.Is(err, syscall.ENXIO)
}

// devPath returns the /dev path of a sysfs block device directory, from its
// uevent DEVNAME (which knows that "cciss!c0d0" lives at /dev/cciss/c0d0).
func devPath(sysDir, name string) string {
	if b, err := os.ReadFile(sysDir + "/uevent"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				return "/dev/" + v
			}
		}
	}
	return "/dev/" + strings.ReplaceAll(name, "!", "/")
}

// RereadPartitions asks the kernel to read the disk's partition table
// again (BLKRRPART), after a restore wrote a new one, so that its partition
// devices match it. Plain files and devices without partitions (a loop
// device attached without partition scanning) have nothing to re-read: nil.
func (d *Device) RereadPartitions() error {
	if !d.IsBlock {
		return nil
	}
	var opErr error
	err := d.control(func(fd int) {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKRRPART, 0); e != 0 && e != unix.EINVAL {
			opErr = fmt.Errorf("re-read the partition table of %s (BLKRRPART): %w; unplug and replug the disk, or reboot, before using its partitions", d.Path, e)
		}
	})
	if err != nil {
		return err
	}
	return opErr
}

// FlushRange writes [off, off+n) to the medium and waits for it
// (sync_file_range), then drops those pages from the cache so the next read
// of the range comes from the medium: a restore verifies each range while
// it goes on writing the next. It does not flush the disk's own write cache
// or file metadata; Sync does, at the end.
func (d *Device) FlushRange(off, n int64) error {
	var opErr error
	err := d.control(func(fd int) {
		if e := unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); e != nil {
			opErr = fmt.Errorf("sync_file_range %s: %w", d.Path, e)
			return
		}
		if e := unix.Fadvise(fd, off, n, unix.FADV_DONTNEED); e != nil {
			opErr = fmt.Errorf("posix_fadvise %s: %w", d.Path, e)
		}
	})
	if err != nil {
		return err
	}
	return opErr
}

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
