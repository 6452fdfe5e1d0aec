package fsmount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/lifeboat-rescue/lifeboat/internal/command"
	"golang.org/x/sys/unix"
)

// Supported reports whether Mount can work on this system, and why not.
func Supported() error {
	for _, dev := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(dev); err != nil {
			return fmt.Errorf("%s is missing (load the %s module): %w", dev, strings.TrimPrefix(dev, "/dev/")[:4], ErrUnsupported)
		}
	}
	return nil
}

// Mount is a mounted filesystem. Close unmounts it.
type Mount struct {
	Dir    string
	Path   string // how the files are read, for the user
	dev    *Device
	tree   *fuse.Server // ServeFS: the files themselves over FUSE
	closed bool
}

// ReadErrors is how many reads of the image failed (each one an I/O error
// for the program that read).
func (m *Mount) ReadErrors() int64 {
	if m.dev == nil {
		return 0
	}
	return m.dev.errs.Load()
}

// Device is bytes served as a block device: a file over FUSE with a loop
// device on it. Close removes both.
type Device struct {
	Path   string // the loop device
	loop   *os.File
	fuse   *fuse.Server
	fuseAt string
	errs   atomic.Int64
}

// Volume is what a Device serves: bytes to read, and to write when it is
// an io.WriterAt too.
type Volume interface {
	io.ReaderAt
}

// NewDevice serves v (size bytes) as a loop device, read-only unless
// writable (then v must be an io.WriterAt).
func NewDevice(v Volume, size int64, name string, writable bool) (d *Device, err error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	var w io.WriterAt
	if writable {
		var ok bool
		if w, ok = v.(io.WriterAt); !ok {
			return nil, errors.New("fsmount: a writable device needs an io.WriterAt")
		}
	}
	at, err := os.MkdirTemp("", "lifeboat-fuse-")
	if err != nil {
		return nil, err
	}
	d = &Device{fuseAt: at}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	root := &root{file: &volume{r: v, w: w, size: size, errs: &d.errs}}
	sec := time.Hour // nothing below changes but through this file
	d.fuse, err = fs.Mount(at, root, &fs.Options{
		EntryTimeout: &sec, AttrTimeout: &sec,
		MountOptions: fuse.MountOptions{FsName: name, Name: "lifeboat", DirectMount: true, MaxReadAhead: 1 << 20},
	})
	if err != nil {
		return nil, fmt.Errorf("serving the partition over FUSE: %w", err)
	}
	if d.loop, err = AttachLoop(filepath.Join(at, volumeName), 0, 0, !writable); err != nil {
		return nil, err
	}
	d.Path = d.loop.Name()
	return d, nil
}

// Close lets go of the loop device (it goes once its last user is gone)
// and stops serving the file.
func (d *Device) Close() error {
	if d.loop != nil {
		d.loop.Close()
		d.loop = nil
	}
	if d.fuse != nil {
		// The loop device lets go of the file shortly after its last
		// user.
		if err := stopServer(d.fuse, d.fuseAt, 50); err != nil {
			unix.Unmount(d.fuseAt, unix.MNT_DETACH)
		}
		d.fuse.Wait()
		d.fuse = nil
	}
	if d.fuseAt != "" {
		os.Remove(d.fuseAt)
		d.fuseAt = ""
	}
	return nil
}

// New mounts the filesystem held in r (size bytes) at o.Dir, read-only.
func New(ctx context.Context, r io.ReaderAt, size int64, o Options) (m *Mount, err error) {
	if err := supportedType(o.FSType); err != nil {
		return nil, err
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	if err := emptyDir(o.Dir); err != nil {
		return nil, err
	}
	m = &Mount{Dir: o.Dir}
	if m.dev, err = NewDevice(r, size, o.Name, false); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	loop := m.dev.Path
	d, err := pickDriver(o.FSType)
	if err != nil {
		return nil, err
	}
	m.Path = d.path()
	if d.tool == "" {
		// ext: noload, so that a journal left unreplayed is left so;
		// nothing is written to a read-only device.
		data := map[string]string{"ext4": "noload"}[d.kernel]
		err = unix.Mount(loop, o.Dir, d.kernel, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, data)
	} else {
		err = command.Combined(ctx, exec.CommandContext(ctx, d.tool, "-o", "ro", loop, o.Dir))
	}
	if err != nil {
		return nil, fmt.Errorf("mounting the %s filesystem read-only: %w", o.FSType, err)
	}
	// The mount holds the loop device now.
	m.dev.loop.Close()
	m.dev.loop = nil
	return m, nil
}

// driver is what reads a filesystem type: a kernel driver, or a FUSE
// program (tool) where the kernel has none.
type driver struct {
	kernel string // filesystem type for mount(2)
	tool   string // a FUSE mount program, given -o ro DEVICE DIR
	pkg    string // its Debian package
}

func (d driver) path() string {
	if d.tool != "" {
		return d.tool + " (FUSE) on a read-only loop device over FUSE"
	}
	return "the kernel's " + d.kernel + " driver on a read-only loop device over FUSE"
}

// drivers lists, per filesystem type, what may read it, best first.
var drivers = map[string][]driver{
	"ext2": {{kernel: "ext4"}},
	"ext3": {{kernel: "ext4"}},
	"ext4": {{kernel: "ext4"}},
	// Without the kernel's vfat, FAT is read with go-diskfs (ServeFS):
	// fusefat shows 8.3 names stored in lower case in upper case, and
	// every time a month late (fusefat 0.1a).
	"vfat":  {{kernel: "vfat"}},
	"exfat": {{kernel: "exfat"}, {tool: "mount.exfat-fuse", pkg: "exfat-fuse"}},
	// Debian's kernel has no NTFS driver (NTFS3 is off).
	"ntfs": {{tool: "ntfs-3g", pkg: "ntfs-3g"}},
}

func pickDriver(fsType string) (driver, error) {
	var want []string
	for _, d := range drivers[fsType] {
		if d.kernel != "" {
			if kernelReads(d.kernel) {
				return d, nil
			}
			want = append(want, "the kernel's "+d.kernel+" module")
			continue
		}
		if _, err := exec.LookPath(d.tool); err == nil {
			return d, nil
		}
		want = append(want, d.tool+" (Debian package "+d.pkg+")")
	}
	return driver{}, fmt.Errorf("nothing here reads %s: it needs %s: %w", fsType, strings.Join(want, " or "), ErrUnsupported)
}

// KernelReads reports whether the kernel itself reads filesystems of
// fsprobe type fsType (loading its module if it can).
func KernelReads(fsType string) bool {
	for _, d := range drivers[fsType] {
		if d.kernel != "" {
			return kernelReads(d.kernel)
		}
	}
	return false
}

// kernelReads reports whether the kernel has filesystem type t, loading
// its module first if it can.
func kernelReads(t string) bool {
	has := func() bool {
		b, _ := os.ReadFile("/proc/filesystems")
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == t {
				return true
			}
		}
		return false
	}
	if has() {
		return true
	}
	exec.Command("modprobe", "-q", t).Run()
	return has()
}

// Close unmounts the filesystem, then the FUSE file under it (the loop
// device goes with the last user). It is safe to call twice.
func (m *Mount) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var first error
	if m.dev != nil && m.dev.loop == nil && isMountPoint(m.Dir) {
		if err := unmount(m.Dir); err != nil {
			first = fmt.Errorf("unmounting %s: %w", m.Dir, err)
		}
	}
	if m.dev != nil {
		m.dev.Close()
	}
	if m.tree != nil {
		if err := stopServer(m.tree, m.Dir, 20); err != nil && first == nil {
			first = fmt.Errorf("unmounting %s: %w", m.Dir, err)
		}
		m.tree.Wait()
	}
	return first
}

// stopServer unmounts a FUSE server's mount at dir, trying for tries
// tenths of a second while it is busy; nothing to do once it is gone.
func stopServer(srv *fuse.Server, dir string, tries int) error {
	var err error
	for range tries {
		if !isMountPoint(dir) {
			return nil
		}
		if err = srv.Unmount(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Unmount unmounts what Mount mounted at dir (lifeboat umount); the
// process that mounted it sees it gone (Gone) and ends.
func Unmount(dir string) error {
	if !isMountPoint(dir) {
		return fmt.Errorf("nothing is mounted at %s: %w", dir, os.ErrNotExist)
	}
	return unmount(dir)
}

func unmount(dir string) error {
	var err error
	for range 20 {
		if err = unix.Unmount(dir, 0); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%s is in use (a shell or program has it open; leave it and try again): %w", dir, err)
	}
	return err
}

// Gone reports whether the filesystem is no longer mounted at m.Dir
// (someone ran lifeboat umount or umount).
func (m *Mount) Gone() bool { return !isMountPoint(m.Dir) }

// isMountPoint: dir is on another device than its parent.
func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Join(dir, ".."), &b) != nil {
		return false
	}
	return a.Dev != b.Dev || a.Ino == b.Ino
}

func emptyDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mount point %s: %w (create the directory first)", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	if isMountPoint(dir) {
		return fmt.Errorf("mount point %s is in use: something is mounted there (lifeboat umount %s, or choose another directory)", dir, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("mount point %s is not empty (%d entries); choose an empty directory", dir, len(ents))
	}
	return nil
}

// AttachLoop makes bytes [off, off+size) of file (size 0: to its end) a
// loop device that goes away when its last user closes it; it returns the
// device, open (read-only or read-write as asked).
func AttachLoop(file string, off, size int64, readOnly bool) (*os.File, error) {
	mode := os.O_RDWR
	if readOnly {
		mode = os.O_RDONLY
	}
	f, err := os.OpenFile(file, mode, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no loop devices (/dev/loop-control: %w); load the loop module (modprobe loop)", err)
	}
	defer ctl.Close()
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		ld, err := os.OpenFile(dev, mode, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Offset, cfg.Info.Sizelimit = uint64(off), uint64(size)
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if readOnly {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:], "lifeboat")
		err = unix.IoctlLoopConfigure(int(ld.Fd()), &cfg)
		if err == nil {
			return ld, nil
		}
		ld.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("attach %s to %s: %w", dev, file, err)
		}
		// Another program took the same free device first.
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no free loop device for %s after 20 tries", file)
}

const volumeName = "volume"

// root is the FUSE file system's root directory: one file, volume.
type root struct {
	fs.Inode
	file *volume
}

var _ fs.NodeOnAdder = (*root)(nil)

func (r *root) OnAdd(ctx context.Context) {
	r.AddChild(volumeName, r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG}), false)
}

// volume serves the partition's bytes, read-only unless w is set.
type volume struct {
	fs.Inode
	r    io.ReaderAt
	w    io.WriterAt
	size int64
	errs *atomic.Int64
}

var (
	_ fs.NodeWriter  = (*volume)(nil)
	_ fs.NodeFsyncer = (*volume)(nil)
	_ fs.NodeFlusher = (*volume)(nil)
)

// Fsync and Flush succeed: what a Device serves is a view that lives as
// long as the process (a scratch file), never the only copy of anything;
// the loop driver's flushes must not fail the tools that write to it.
func (v *volume) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno { return 0 }
func (v *volume) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno               { return 0 }

func (v *volume) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if v.w == nil {
		return 0, syscall.EROFS
	}
	if off < 0 || off+int64(len(data)) > v.size {
		return 0, syscall.ENOSPC
	}
	n, err := v.w.WriteAt(data, off)
	if err != nil {
		v.errs.Add(1)
		return uint32(n), syscall.EIO
	}
	return uint32(n), 0
}

var (
	_ fs.NodeGetattrer = (*volume)(nil)
	_ fs.NodeOpener    = (*volume)(nil)
	_ fs.NodeReader    = (*volume)(nil)
)

func (v *volume) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	if v.w != nil {
		out.Mode |= 0o200
	}
	out.Size = uint64(v.size)
	return 0
}

func (v *volume) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if v.w == nil && flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (v *volume) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= v.size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), v.size-off)]
	n, err := v.r.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(dest)) {
		v.errs.Add(1)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}
