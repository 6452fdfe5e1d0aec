//go:build !linux

package blockdev

import (
	"io/fs"
	"os"
)

// openPlain opens a regular file with the portable os package; off Linux
// that is all Open can do. flags must never include O_CREATE or O_TRUNC.
func openPlain(path string, mode Mode, open func(path string, flags int) (*os.File, error)) (*Device, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, openError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notDevice(path, fi)
	}
	flags := os.O_RDONLY
	if mode.writable() {
		flags = os.O_RDWR
	}
	f, err := open(path, flags)
	if err != nil {
		return nil, openError(path, err)
	}
	// The open file is the authority: the path may have changed since it
	// was stat'ed.
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notDevice(path, fi)
	}
	return &Device{Path: path, Size: fi.Size(), SectorSize: 512, f: f, mode: mode}, nil
}

func osOpen(path string, flags int) (*os.File, error) { return os.OpenFile(path, flags, 0) }

// sameFileHolds is Holds for a plain file devicePath, where no loop devices
// exist that could put one file inside another.
func sameFileHolds(dfi fs.FileInfo, filePath string) (bool, error) {
	_, ffi, err := existingPath(filePath)
	if err != nil {
		return false, &os.PathError{Op: "holds", Path: filePath, Err: err}
	}
	return os.SameFile(dfi, ffi), nil
}
