// Package blockdev opens disks, partitions and plain image files the same
// way, as an io.ReaderAt and io.WriterAt of a fixed size, and answers the
// safety questions asked before writing to one: is it mounted (MountPoints),
// and does it hold the file we are about to read or write (Holds).
//
// The smallest use reads the first sector of a disk:
//
//	d, err := blockdev.Open("/dev/sda", blockdev.ReadOnly)
//	if err != nil {
//		return err // names the disk and what to do, e.g. "run as root"
//	}
//	defer d.Close()
//	mbr := make([]byte, d.SectorSize)
//	_, err = d.ReadAt(mbr, 0)
//
// Partitions are not a type of their own: open the partition's device, or
// view the disk through io.NewSectionReader / io.NewOffsetWriter using
// Partition.Start and Partition.Size from List.
//
// Everything works on Linux. On Windows plain image files work fully,
// whole disks (\\.\PhysicalDriveN) can be listed and read, MountPoints
// and Holds know their volumes, and writing to disks and opening volumes
// return errors wrapping errors.ErrUnsupported. Elsewhere plain image
// files can be read and written, and disks, exclusive opens and MountPoints
// return errors.ErrUnsupported, so that a caller refuses rather than guesses.
package blockdev

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBusy means the device is mounted, used as swap, or held open
// exclusively by another program (for example an LVM volume or RAID array).
// Unmount it or stop the program, then try again.
var ErrBusy = errors.New("device is in use")

// ErrNotFile means the operation works only on a plain image file, not on a
// block device. For a disk, write zeros over the range instead.
var ErrNotFile = errors.New("not a plain file")

// Mode says how Open opens a device. No mode creates or truncates anything.
type Mode int

const (
	// ReadOnly opens for reading only; WriteAt fails.
	ReadOnly Mode = iota
	// ReadWrite opens an existing device or file for reading and writing.
	ReadWrite
	// ReadWriteExclusive is ReadWrite that also fails with ErrBusy when the
	// device is in use: on Linux a block device is opened with O_EXCL (the
	// kernel refuses while it is mounted, swapped on or claimed by LVM/RAID),
	// and a plain file is refused while a loop device is attached to it; on
	// Windows a plain file is opened without sharing.
	ReadWriteExclusive
)

// String returns the mode's Go name, e.g. "ReadWrite".
func (m Mode) String() string {
	switch m {
	case ReadOnly:
		return "ReadOnly"
	case ReadWrite:
		return "ReadWrite"
	case ReadWriteExclusive:
		return "ReadWriteExclusive"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) writable() bool { return m == ReadWrite || m == ReadWriteExclusive }

// Device is an opened disk, partition or plain file. It is an io.ReaderAt and
// io.WriterAt; like *os.File, ReadAt and WriteAt may be called from several
// goroutines at once. Its size is set when it is opened (and only changed by
// Truncate): WriteAt refuses to write past Size, so a plain file behaves like
// a disk of that size.
type Device struct {
	Path       string // as given to Open
	Size       int64  // bytes
	SectorSize int    // logical sector size; 512 for plain files
	IsBlock    bool   // a block device (not a regular file)

	f    *os.File
	mode Mode
	// in reads for ReadAt and out writes for WriteAt when the device
	// takes only whole sectors (Windows' disks); nil uses f directly.
	in  io.ReaderAt
	out io.WriterAt
	// release runs at Close before f is closed (Windows: tell the system
	// the partition table changed, unlock the disk's volumes).
	release func() error
}

var (
	_ io.ReaderAt = (*Device)(nil)
	_ io.WriterAt = (*Device)(nil)
	_ io.Closer   = (*Device)(nil)
)

// DismountsOnOpen reports whether opening a disk for writing takes its
// mounted volumes away from the system itself (Windows: they are locked
// and dismounted until Close, and Open refuses while a program uses one),
// so that a caller need not refuse a disk because MountPoints lists
// something; elsewhere it is false: unmount first.
func DismountsOnOpen() bool { return dismountsOnOpen }

// Mode returns the mode the device was opened with.
func (d *Device) Mode() Mode { return d.mode }

// ReadAt reads len(p) bytes at off. Reading at or past Size returns io.EOF.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.Size && len(p) > 0 {
		return 0, io.EOF
	}
	in := io.ReaderAt(d.f)
	if d.in != nil {
		in = d.in
	}
	if rest := d.Size - off; int64(len(p)) > rest {
		n, err := in.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return in.ReadAt(p, off)
}

// WriteAt writes p at off. It refuses to write past Size; the bytes that fit
// are written first, as io.WriterAt requires a non-nil error when n < len(p).
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if !d.mode.writable() {
		return 0, &os.PathError{Op: "write", Path: d.Path, Err: errors.New("opened read-only; open it with blockdev.ReadWrite to write")}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: d.Path, Err: fmt.Errorf("negative offset %d", off)}
	}
	out := io.WriterAt(d.f)
	if d.out != nil {
		out = d.out
	}
	if rest := d.Size - off; int64(len(p)) > rest {
		n := 0
		if rest > 0 {
			var err error
			n, err = out.WriteAt(p[:rest], off)
			if err != nil {
				return n, err
			}
		}
		return n, &os.PathError{Op: "write", Path: d.Path, Err: fmt.Errorf(
			"%d bytes at offset %d go past the end of the device (%d bytes); use a larger target: %w",
			len(p), off, d.Size, io.ErrShortWrite)}
	}
	return out.WriteAt(p, off)
}

// Sync commits written data to the medium.
func (d *Device) Sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", d.Path, err)
	}
	return nil
}

// Close closes the device. It does not sync; call Sync first to learn about
// write errors.
func (d *Device) Close() error {
	var err error
	if d.release != nil {
		err = d.release()
		d.release = nil
	}
	return errors.Join(err, d.f.Close())
}

// Zero makes a plain file read as all zeros, quickly: it truncates the file
// to 0 and back to Size, which leaves a sparse file where the filesystem
// supports that. For a block device it returns an error wrapping ErrNotFile.
func (d *Device) Zero() error {
	if err := d.checkResizable("zero"); err != nil {
		return err
	}
	if err := d.f.Truncate(0); err != nil {
		return err
	}
	return d.f.Truncate(d.Size)
}

// Truncate sets a plain file's size and updates Size. It must not run
// concurrently with other methods. For a block device, whose size cannot
// change, it returns an error wrapping ErrNotFile.
func (d *Device) Truncate(size int64) error {
	if err := d.checkResizable("truncate"); err != nil {
		return err
	}
	if err := d.f.Truncate(size); err != nil {
		return err
	}
	d.Size = size
	return nil
}

func (d *Device) checkResizable(op string) error {
	if d.IsBlock {
		return &os.PathError{Op: op, Path: d.Path, Err: fmt.Errorf(
			"is a block device, not a plain file; write zeros over it instead: %w", ErrNotFile)}
	}
	if !d.mode.writable() {
		return &os.PathError{Op: op, Path: d.Path, Err: errors.New("opened read-only; open it with blockdev.ReadWrite to change it")}
	}
	return nil
}

// ID identifies storage: two open things with equal IDs are the same disk,
// partition or file.
type ID struct {
	// Dev is, for a block device, its own device number (dev_t); for a
	// plain file, the device number of the filesystem holding it (on
	// Windows, the volume serial number).
	Dev uint64
	// Inode is a plain file's inode number (on Windows, its file index),
	// and 0 for a block device.
	Inode uint64
	// Block is true for a block device.
	Block bool
}

// String returns "block MAJOR:MINOR" or "file DEV/INODE".
func (id ID) String() string {
	if id.Block {
		return "block " + formatDev(id.Dev)
	}
	return fmt.Sprintf("file %s/%d", formatDev(id.Dev), id.Inode)
}

// Disk is a whole disk found by List.
type Disk struct {
	Name   string // kernel name, e.g. "sda", "nvme0n1", "loop3"
	Path   string // e.g. "/dev/sda"
	Model  string // as the drive reports it; may be empty
	Serial string // may be empty
	// Bus is how the disk is attached: "virtio", "sata", "nvme", "usb",
	// "scsi", "mmc", "loop", or "" when unknown or virtual (dm, md).
	Bus         string
	BackingFile string // for a loop device, the image file behind it
	Size        int64  // bytes
	SectorSize  int    // logical sector size
	Removable   bool
	ReadOnly    bool
	Partitions  []Partition // ordered by Number
}

// Partition is a partition of a Disk as the kernel sees it.
type Partition struct {
	Name   string // e.g. "sda1", "nvme0n1p2"
	Path   string // e.g. "/dev/sda1"
	Number int    // 1-based, as in the partition table
	Start  int64  // bytes from the start of the disk
	Size   int64  // bytes
}

// hintError is the Err of an *os.PathError whose text says what to do, while
// errors.Is still sees the underlying errors (errno, fs.ErrNotExist, ErrBusy).
type hintError struct {
	msg  string
	errs []error
}

func (e *hintError) Error() string   { return e.msg }
func (e *hintError) Unwrap() []error { return e.errs }

// openError turns an error from opening path into one that names the path
// and says what to do next.
func openError(path string, err error) error {
	if err == nil {
		return nil
	}
	inner := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		inner = pe.Err
	}
	var msg string
	errs := []error{inner}
	switch {
	case errors.Is(err, ErrBusy):
		return &os.PathError{Op: "open", Path: path, Err: inner}
	case isBusy(err):
		msg = "is in use (mounted or held by another program); unmount it first"
		errs = []error{ErrBusy, inner}
	case errors.Is(err, fs.ErrNotExist):
		msg = `no such disk or file; run "lifeboat disks" to list disks`
	case errors.Is(err, fs.ErrPermission):
		msg = "permission denied; run as root (or Administrator)"
	case isReadOnlyFS(err):
		msg = "is read-only (write-protected medium or read-only filesystem); open it read-only or choose another target"
	case isNoMedium(err):
		msg = "has no medium; insert the disk or card, or choose another device"
	default:
		return &os.PathError{Op: "open", Path: path, Err: inner}
	}
	return &os.PathError{Op: "open", Path: path, Err: &hintError{msg: msg, errs: errs}}
}

// checkMode rejects unknown modes before anything is opened.
func checkMode(path string, mode Mode) error {
	switch mode {
	case ReadOnly, ReadWrite, ReadWriteExclusive:
		return nil
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("unknown %v; use blockdev.ReadOnly, ReadWrite or ReadWriteExclusive", mode)}
}

// notDevice is the error for a path that is neither a block device nor a
// regular file.
func notDevice(path string, fi fs.FileInfo) error {
	what := "not a disk, partition or regular file"
	if fi.IsDir() {
		what = "a directory"
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("is %s; give a disk (see \"lifeboat disks\") or an image file", what)}
}

// existingPath returns p if it exists, else its nearest existing ancestor:
// Holds is asked about output files that are about to be created, maybe in
// directories that are about to be created.
func existingPath(p string) (string, fs.FileInfo, error) {
	for {
		fi, err := os.Stat(p)
		if err == nil {
			return p, fi, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", nil, err
		}
		p = parent
	}
}
