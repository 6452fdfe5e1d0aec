package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Intent is what a command means to write at a path. Every command that
// writes (backup, merge, restore, clone, mkmedia) checks its output with
// CheckOutput before the first byte is written.
type Intent int

const (
	// WriteFile: a new file — an image, an ISO, a stick image. Never a
	// device node, never a path under /dev.
	WriteFile Intent = iota
	// WriteDisk: an existing block device (a USB stick, a disk).
	WriteDisk
	// WriteDiskOrFile: a restore or clone target: an existing block
	// device, or a regular file (created when missing, outside /dev).
	WriteDiskOrFile
)

func (in Intent) String() string {
	switch in {
	case WriteFile:
		return "file"
	case WriteDisk:
		return "disk"
	case WriteDiskOrFile:
		return "disk or file"
	}
	return fmt.Sprintf("Intent(%d)", int(in))
}

// CheckOutput refuses an output path that is not what the command means to
// write: a device node where a file is meant (it would be replaced by a
// regular file), a missing or non-block node where a disk is meant (a typo
// such as /dev/sdzz would become a regular file in /dev), a folder, a FIFO,
// or an existing file without overwrite. Refusals wrap ErrRefused (exit
// 5); a disk that does not exist wraps fs.ErrNotExist (exit 6).
func CheckOutput(path string, in Intent, overwrite bool) error {
	switch path {
	case "":
		return fmt.Errorf("no output given")
	case "-":
		return refuseFix("standard output", opt.With("name a file with {}", opt.Use{Option: opt.Output, Value: "FILE"}), nil, "this command cannot write to standard output (only backup can)")
	}
	if IsURL(path) {
		return refuse(path, "this command writes to a local file or disk (only backup and merge write images to s3:// and smb://)", "write to a file here, then copy it to the store")
	}
	if runtime.GOOS == "windows" && in != WriteFile && looksLikeDevice(path) {
		return nil // \\.\PhysicalDriveN cannot be stat'ed; opening it tells
	}
	fi, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check output %s: %w", path, err)
	}
	exists := err == nil
	if lfi, lerr := os.Lstat(path); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 && in == WriteFile {
		return refuse(path, "it is a symbolic link (the link, not its target, would be replaced)", "name the file itself")
	}
	block := exists && isBlockDevice(path, fi)
	inDev := onDevFS(path)
	switch {
	case exists && fi.IsDir():
		return refuse(path, "it is a folder", "name a file inside it, e.g. "+filepath.Join(path, "pc1.lbi"))
	case !exists && inDev:
		what := "a disk"
		if in == WriteFile {
			what = "a file"
		}
		return &NotFoundError{Path: path, Msg: fmt.Sprintf("%s does not exist, and %s is not written into %s; run \"lifeboat disks\" to list disks, or name a file elsewhere", path, what, filepath.Dir(path))}
	case in == WriteFile && exists && !fi.Mode().IsRegular():
		kind := "a device"
		if block {
			kind = "a block device (a disk)"
		}
		return refuse(path, "it is %s, not a file; it would be replaced by a regular file", "write the image to a file on a mounted filesystem; to write a disk, restore the image onto it", kind)
	case in == WriteFile && inDev:
		return refuse(path, "it is in the device folder %s", "write the file to a mounted filesystem", filepath.Dir(path))
	case in == WriteDisk && !exists:
		return &NotFoundError{Path: path, Msg: fmt.Sprintf("disk %s does not exist; run \"lifeboat disks\" to list disks", path)}
	case in == WriteDisk && !block:
		return refuseFix(path, opt.With("name a whole disk such as /dev/sdb, or write an image file with {}", opt.Use{Option: opt.Output, Value: "FILE"}), nil, "it is not a disk (block device)")
	case in == WriteDiskOrFile && exists && !block && !fi.Mode().IsRegular():
		return refuse(path, "it is neither a disk nor a regular file", "name a disk, a partition or an image file")
	case in == WriteFile && exists && !overwrite:
		return refuseFix(path, opt.With("choose another name, or pass {} to replace it", opt.Use{Option: opt.Overwrite}), nil, "it already exists")
	}
	if in == WriteFile {
		dir := parentDir(path)
		if st, err := os.Stat(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("output folder %s does not exist; create it first or choose another: %w", dir, err)
			}
			return fmt.Errorf("output folder %s: %w", dir, err)
		} else if !st.IsDir() {
			return refuse(path, "its folder "+dir+" is not a folder", "choose another output path")
		}
	}
	return nil
}

// NotFoundError: a named object does not exist. It wraps fs.ErrNotExist.
type NotFoundError struct {
	Path string
	Msg  string
}

func (e *NotFoundError) Error() string { return e.Msg }
func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

func isBlockDevice(path string, fi fs.FileInfo) bool {
	if runtime.GOOS == "windows" {
		return looksLikeDevice(path)
	}
	return fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0
}

// onDevFS reports whether path is in the device folder, where only the
// kernel makes files.
func onDevFS(path string) bool {
	if runtime.GOOS == "windows" {
		return strings.HasPrefix(path, `\\.\`)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(d, filepath.Base(abs))
	}
	return abs == "/dev" || strings.HasPrefix(abs, "/dev/")
}

// checkOutput refuses image outputs (backup, merge) that would
// destroy or corrupt something: CheckOutput's rules, the source holding
// the output, and — for split images — later part names that are in the
// way and not parts of the image being replaced. Files left by an
// interrupted writer of the same name are not in the way: the writer
// removes them.
func checkOutput(o BackupOptions) error {
	if err := CheckOutput(o.Output, WriteFile, o.Overwrite); err != nil {
		return err
	}
	if o.Source != "" {
		inside, err := blockdev.Holds(o.Source, o.Output)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("check output %s: %w", o.Output, err)
		}
		if inside {
			return refuse(o.Output, "it is stored on %s, the source being backed up (the image would copy itself)",
				"write the image to another disk, e.g. an external drive", o.Source)
		}
	}
	if o.SplitSize > 0 {
		if err := images.CheckParts(o.Output, o.Overwrite); err != nil {
			var ee *images.ExistsError
			if errors.As(err, &ee) {
				return refuse(ee.Path, "%s, in the way of the split image %s", "move it away or choose another output name", ee.What, o.Output)
			}
			return err
		}
	}
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	switch {
	case i < 0:
		return "."
	case i == 0:
		return p[:1]
	}
	return p[:i]
}
