//go:build !linux

package fsmount

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"runtime"
)

// Supported reports whether Mount can work on this system, and why not.
func Supported() error {
	return fmt.Errorf("mounting an image's filesystem needs FUSE and loop devices (Linux), not %s: %w", runtime.GOOS, ErrUnsupported)
}

// Mount is a mounted filesystem. Close unmounts it.
type Mount struct{ Dir, Path string }

// New mounts the filesystem held in r at o.Dir, read-only.
func New(ctx context.Context, r io.ReaderAt, size int64, o Options) (*Mount, error) {
	if err := supportedType(o.FSType); err != nil {
		return nil, err
	}
	return nil, Supported()
}

func (m *Mount) Close() error      { return nil }
func (m *Mount) Gone() bool        { return true }
func (m *Mount) ReadErrors() int64 { return 0 }

// Unmount unmounts what Mount mounted at dir.
func Unmount(dir string) error { return Supported() }

// KernelReads: nothing is mounted here.
func KernelReads(fsType string) bool { return false }

// ServeFS mounts fsys at dir; not here.
func ServeFS(fsys fs.FS, dir, name, how string) (*Mount, error) { return nil, Supported() }
