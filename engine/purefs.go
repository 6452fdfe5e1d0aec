package engine

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/lifeboat-rescue/lifeboat/engine/fsmount"
	"github.com/lifeboat-rescue/lifeboat/engine/fsprobe"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// pureGoPath says how pureFS reads, for the user.
const pureGoPath = "go-diskfs (pure Go, no mount)"

// pureFS reads the filesystem in r (size bytes) with go-diskfs, where
// nothing can mount it (Windows, a system without FUSE or loop devices):
// ext2/3/4 and FAT12/16/32, as an fs.FS ("." is the root).
func pureFS(r io.ReaderAt, size int64, fsType string) (fs.FS, error) {
	st := layout.ReadOnlyStorage(r, size)
	switch fsType {
	case "ext2", "ext3", "ext4":
		f, err := ext4.Read(st, size, 0, 512)
		if err != nil {
			return nil, fmt.Errorf("reading the %s filesystem with go-diskfs: %w", fsType, err)
		}
		return extFS{f}, nil
	case "vfat":
		info, err := fsprobe.Probe(r, size)
		if err != nil {
			return nil, err
		}
		var f fs.FS
		switch info.FATBits {
		case 12:
			f, err = fat12.Read(st, size, 0, 512)
		case 16:
			f, err = fat16.Read(st, size, 0, 512)
		default:
			f, err = fat32.Read(st, size, 0, 512)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the FAT%d filesystem with go-diskfs: %w", info.FATBits, err)
		}
		return foldFS{f}, nil
	}
	return nil, fmt.Errorf("%s can be read only by mounting it (Linux, the rescue environment); without a mount Lifeboat reads ext2/3/4 and FAT: %w", fsType, fsmount.ErrUnsupported)
}

// extFS is go-diskfs's ext4 reader with what a copy needs and its
// directory listing leaves out: each entry's permission bits (from the
// inode, as Stat reads them), symbolic links' targets (fs.ReadLinkFS), and
// "does not exist" errors that wrap fs.ErrNotExist.
type extFS struct{ f *ext4.FileSystem }

func (e extFS) Open(name string) (fs.File, error) { return e.f.Open(name) }

func (e extFS) Stat(name string) (fs.FileInfo, error) {
	if name == "." {
		return e.f.Stat(name)
	}
	fi, err := e.f.Stat(name)
	if err != nil || fi == nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fi, nil
}

// Lstat: ext4's Stat reads the path's own inode (it does not follow a
// link at the end).
func (e extFS) Lstat(name string) (fs.FileInfo, error) { return e.Stat(name) }

func (e extFS) ReadLink(name string) (string, error) { return e.f.ReadLink(name) }

func (e extFS) ReadDir(name string) ([]fs.DirEntry, error) {
	des, err := e.f.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(des))
	for i, d := range des {
		out[i] = extEntry{DirEntry: d, e: e, path: path.Join(name, d.Name())}
	}
	return out, nil
}

type extEntry struct {
	fs.DirEntry
	e    extFS
	path string
}

func (d extEntry) Info() (fs.FileInfo, error) { return d.e.Stat(d.path) }

// foldFS looks names up case-blind, as FAT does (/BOOT.TXT is /boot.txt).
type foldFS struct{ f fs.FS }

// resolve finds the stored spelling of name, component by component.
func (c foldFS) resolve(name string) (string, error) {
	if name == "." {
		return name, nil
	}
	at := "."
	for _, part := range strings.Split(name, "/") {
		des, err := fs.ReadDir(c.f, at)
		if err != nil {
			return "", err
		}
		found := ""
		for _, d := range des {
			if d.Name() == part {
				found = part
				break
			}
			if found == "" && strings.EqualFold(d.Name(), part) {
				found = d.Name()
			}
		}
		if found == "" {
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		at = path.Join(at, found)
	}
	return at, nil
}

func (c foldFS) Open(name string) (fs.File, error) {
	p, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	return c.f.Open(p)
}

func (c foldFS) Stat(name string) (fs.FileInfo, error) {
	p, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	fi, err := fs.Stat(c.f, p)
	if err != nil {
		return nil, err
	}
	return fatInfo{fi}, nil
}

func (c foldFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	des, err := fs.ReadDir(c.f, p)
	for i, d := range des {
		des[i] = fatEntry{d}
	}
	return des, err
}

// fatInfo gives FAT's files the modes Linux's vfat driver shows (go-diskfs
// leaves out even the directory bit): folders 0755, files 0644.
type fatInfo struct{ fs.FileInfo }

func (f fatInfo) Mode() fs.FileMode {
	if f.IsDir() {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

type fatEntry struct{ fs.DirEntry }

func (d fatEntry) Info() (fs.FileInfo, error) {
	fi, err := d.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	return fatInfo{fi}, nil
}

func (d fatEntry) Type() fs.FileMode {
	if d.IsDir() {
		return fs.ModeDir
	}
	return 0
}
