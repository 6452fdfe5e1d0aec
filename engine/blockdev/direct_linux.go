package blockdev

import (
	"errors"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadDirect reads len(p) bytes at off around the page cache (O_DIRECT), so
// a read error on a block device concerns exactly the sectors asked for and
// not the whole cache page around them. off and len(p) must be multiples
// of SectorSize. Plain files, and devices that refuse O_DIRECT, are read
// through ReadAt.
func (d *Device) ReadDirect(p []byte, off int64) (int, error) {
	ss := int64(d.SectorSize)
	if !d.IsBlock || off%ss != 0 || int64(len(p))%ss != 0 {
		return d.ReadAt(p, off)
	}
	if off >= d.Size && len(p) > 0 {
		return 0, io.EOF
	}
	f, err := os.OpenFile(d.f.Name(), os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return d.ReadAt(p, off)
	}
	defer f.Close()
	// O_DIRECT wants a buffer aligned to the logical block size; an
	// over-allocated slice gives one.
	buf := make([]byte, len(p)+4096)
	a := int((4096 - uintptr(unsafe.Pointer(&buf[0]))%4096) % 4096)
	b := buf[a : a+len(p)]
	n, err := f.ReadAt(b, off)
	copy(p, b[:n])
	if err != nil && !errors.Is(err, io.EOF) {
		return n, &os.PathError{Op: "read", Path: d.Path, Err: err}
	}
	return n, err
}
