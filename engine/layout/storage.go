package layout

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// errReadOnly is returned by storage's write paths: layout only reads.
var errReadOnly = errors.New("layout: disk is opened read-only for reading the partition table")

// storage adapts an io.ReaderAt of known size to go-diskfs's backend.Storage.
// It is read-only, reports no OS file, and checks every offset against the
// size so a corrupt table cannot make go-diskfs read outside the disk.
type storage struct {
	d   *disk
	pos int64
}

var _ backend.Storage = (*storage)(nil)

func (d *disk) storage() *storage { return &storage{d: d} }

func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("layout: negative offset")
	}
	if off >= s.d.size {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > s.d.size-off {
		p = p[:s.d.size-off]
		short = true
	}
	n, err := s.d.r.ReadAt(p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (s *storage) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *storage) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.d.size
	default:
		return 0, errors.New("layout: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("layout: negative position")
	}
	s.pos = offset
	return offset, nil
}

func (s *storage) Stat() (fs.FileInfo, error)              { return fileInfo{size: s.d.size}, nil }
func (s *storage) Close() error                            { return nil }
func (s *storage) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error) { return nil, errReadOnly }
func (s *storage) Path() string                            { return "" }

type fileInfo struct{ size int64 }

func (fi fileInfo) Name() string       { return "disk" }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }

// ReadOnlyStorage is r (size bytes) as a read-only go-diskfs backend, for
// reading a filesystem with go-diskfs.
func ReadOnlyStorage(r io.ReaderAt, size int64) backend.Storage {
	return (&disk{r: r, size: size}).storage()
}
