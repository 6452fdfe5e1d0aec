package fsmount

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ServeFS mounts fsys (a filesystem read by a Go library, go-diskfs) at
// dir as a read-only FUSE filesystem: for what no kernel driver here
// reads. how says how the files are read, for Mount.Path.
func ServeFS(fsys iofs.FS, dir, name, how string) (*Mount, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("/dev/fuse is missing (load the fuse module): %w", ErrUnsupported)
	}
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	sec := time.Hour // nothing changes while mounted
	root := &treeNode{fsys: fsys, path: "."}
	srv, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout: &sec, AttrTimeout: &sec, NegativeTimeout: &sec,
		MountOptions: fuse.MountOptions{FsName: name, Name: "lifeboat", DirectMount: true, Options: []string{"ro", "nodev", "nosuid", "noexec"}},
	})
	if err != nil {
		return nil, fmt.Errorf("serving the files over FUSE: %w", err)
	}
	return &Mount{Dir: dir, Path: how + ", served read-only over FUSE", tree: srv}, nil
}

// treeNode is a file, folder or link of fsys.
type treeNode struct {
	fs.Inode
	fsys iofs.FS
	path string
}

var (
	_ fs.NodeLookuper   = (*treeNode)(nil)
	_ fs.NodeReaddirer  = (*treeNode)(nil)
	_ fs.NodeGetattrer  = (*treeNode)(nil)
	_ fs.NodeOpener     = (*treeNode)(nil)
	_ fs.NodeReader     = (*treeNode)(nil)
	_ fs.NodeReadlinker = (*treeNode)(nil)
)

func lstat(fsys iofs.FS, p string) (iofs.FileInfo, error) { return iofs.Lstat(fsys, p) }

func (n *treeNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := path.Join(n.path, name)
	fi, err := lstat(n.fsys, p)
	if err != nil {
		return nil, syscall.ENOENT
	}
	fillAttr(fi, &out.Attr)
	child := &treeNode{fsys: n.fsys, path: p}
	return n.NewInode(ctx, child, fs.StableAttr{Mode: out.Attr.Mode & syscall.S_IFMT}), 0
}

func (n *treeNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	des, err := iofs.ReadDir(n.fsys, n.path)
	if err != nil {
		return nil, syscall.EIO
	}
	out := make([]fuse.DirEntry, 0, len(des))
	for _, d := range des {
		out = append(out, fuse.DirEntry{Name: d.Name(), Mode: typeBits(d.Type())})
	}
	return fs.NewListDirStream(out), 0
}

func (n *treeNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fi, err := lstat(n.fsys, n.path)
	if err != nil {
		return syscall.EIO
	}
	fillAttr(fi, &out.Attr)
	return 0
}

func (n *treeNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := iofs.ReadLink(n.fsys, n.path)
	if err != nil {
		return nil, syscall.EIO
	}
	return []byte(t), 0
}

func (n *treeNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, err := n.fsys.Open(n.path)
	if err != nil {
		return nil, 0, syscall.EIO
	}
	return &treeFile{f: f}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *treeNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*treeFile)
	if !ok {
		return nil, syscall.EBADF
	}
	m, err := h.readAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) { // a read past the end is short
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:m]), 0
}

// treeFile is an open file; reads at an offset go through ReadAt where
// the library has it, else Seek and Read under a lock.
type treeFile struct {
	mu sync.Mutex
	f  iofs.File
}

var _ fs.FileReleaser = (*treeFile)(nil)

func (h *treeFile) Release(ctx context.Context) syscall.Errno {
	h.f.Close()
	return 0
}

func (h *treeFile) readAt(p []byte, off int64) (int, error) {
	if ra, ok := h.f.(io.ReaderAt); ok {
		return ra.ReadAt(p, off)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.f.(io.Seeker)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	if _, err := s.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(h.f, p)
}

func typeBits(m iofs.FileMode) uint32 {
	switch {
	case m.IsDir():
		return syscall.S_IFDIR
	case m&iofs.ModeSymlink != 0:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

func fillAttr(fi iofs.FileInfo, a *fuse.Attr) {
	m := fi.Mode()
	a.Mode = typeBits(m) | uint32(m.Perm())
	if m&iofs.ModeSetuid != 0 {
		a.Mode |= syscall.S_ISUID
	}
	if m&iofs.ModeSetgid != 0 {
		a.Mode |= syscall.S_ISGID
	}
	if m&iofs.ModeSticky != 0 {
		a.Mode |= syscall.S_ISVTX
	}
	a.Size = uint64(fi.Size())
	a.Blocks = (a.Size + 511) / 512
	a.Nlink = 1
	mt := fi.ModTime()
	a.SetTimes(&mt, &mt, &mt)
	if st, ok := fi.Sys().(*ext4.StatT); ok {
		a.Uid, a.Gid = st.UID, st.GID
		if !st.AccessTime.IsZero() {
			at := st.AccessTime
			a.SetTimes(&at, nil, nil)
		}
	}
}
