package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// ExtractOptions copy files and folders out of one partition of an image.
type ExtractOptions struct {
	ExploreOptions
	// Partition is the partition's number (0: the only one with a
	// filesystem).
	Partition int
	// Paths inside the filesystem ("/" for all of it).
	Paths []string
	// Dest is the folder they are copied into (created if missing); a
	// name that is already there is refused before anything is copied.
	Dest     string
	Progress Progress
}

// ExtractResult says what was copied.
type ExtractResult struct {
	Files, Dirs, Links int
	Skipped            []string // special files (devices, pipes, sockets), not copied
	Bytes              int64
	Partition          ViewPart
	ReadPath           string // how the files were read
	ChunksRead         int64  // image chunks read and decoded
	Elapsed            time.Duration
}

// ExtractError lists what could not be read (a damaged filesystem in the
// image, or damaged chunks): everything else was copied.
type ExtractError struct {
	Failed []string // "path: why"
}

func (e *ExtractError) Error() string {
	more := ""
	if len(e.Failed) > 5 {
		more = fmt.Sprintf(" (and %d more)", len(e.Failed)-5)
	}
	return fmt.Sprintf("%d files or folders could not be read from the image and were not copied: %s%s", len(e.Failed), strings.Join(e.Failed[:min(5, len(e.Failed))], "; "), more)
}

// Extract copies o.Paths out of the image with their modes, times and (as
// root) owners. Every path is looked up, and the room on Dest checked,
// before the first file is written; a file is written under a temporary
// name and renamed when complete, so an interrupted or failed copy never
// leaves a partial file under the real name.
func Extract(ctx context.Context, o ExtractOptions) (*ExtractResult, error) {
	start := time.Now()
	res := &ExtractResult{}
	err := WithFiles(ctx, o.ExploreOptions, o.Partition, func(v *View, p ViewPart, f Files) error {
		res.Partition, res.ReadPath = p, f.ReadPath
		defer func() { res.ChunksRead = v.ChunksRead() }()
		return extractFrom(ctx, f.FS, o, res)
	})
	res.Elapsed = time.Since(start)
	return res, err
}

func extractFrom(ctx context.Context, fsys fs.FS, o ExtractOptions, res *ExtractResult) error {
	if len(o.Paths) == 0 {
		o.Paths = []string{"/"}
	}
	var total int64
	type job struct{ src, dst string }
	var jobs []job
	for _, name := range o.Paths {
		src := fsPath(name)
		if _, err := fs.Lstat(fsys, src); err != nil {
			return notInImage(name, res.Partition, o.Image)
		}
		dst := filepath.Join(o.Dest, path.Base(src))
		if src == "." {
			dst = o.Dest
		} else if _, err := os.Lstat(dst); err == nil {
			return &FixError{Err: fmt.Errorf("%s already exists: %w", dst, fs.ErrExist), Fix: opt.Text("move it away or extract into another folder")}
		}
		fs.WalkDir(fsys, src, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return nil
		})
		jobs = append(jobs, job{src, dst})
	}
	if free, ok := freeSpace(existingParent(o.Dest)); ok && total > free {
		return &FixError{Err: fmt.Errorf("%s has %s free; the files need %s: %w", o.Dest, HumanBytes(free), HumanBytes(total), syscall.ENOSPC), Fix: opt.Text("free some space or extract onto a larger disk")}
	}
	if err := os.MkdirAll(o.Dest, 0o755); err != nil {
		return err
	}
	tr := startStage(o.Progress, StageExtract, total)
	defer tr.end()
	x := &extractor{ctx: ctx, fsys: fsys, res: res, tr: tr, asRoot: os.Geteuid() == 0}
	for _, j := range jobs {
		if err := x.copyTree(j.src, j.dst); err != nil {
			return err
		}
	}
	if len(x.failed) > 0 {
		return &ExtractError{Failed: x.failed}
	}
	return nil
}

type extractor struct {
	ctx    context.Context
	fsys   fs.FS
	res    *ExtractResult
	tr     *tracker
	asRoot bool
	failed []string
	dirs   []dirMeta
	buf    []byte // one copy buffer for all files
}

type dirMeta struct {
	path string
	info fs.FileInfo
}

// copyTree copies src to dst. Read failures are collected and the copy
// goes on; a failure to write ends it.
func (x *extractor) copyTree(src, dst string) error {
	defer func() {
		for i := len(x.dirs) - 1; i >= 0; i-- {
			x.setMeta(x.dirs[i].path, x.dirs[i].info, false)
		}
		x.dirs = x.dirs[:0]
	}()
	return fs.WalkDir(x.fsys, src, func(p string, d fs.DirEntry, err error) error {
		if cerr := x.ctx.Err(); cerr != nil {
			return cerr
		}
		to := dst
		if p != src {
			rel := p
			if src != "." {
				rel = strings.TrimPrefix(p, src+"/")
			}
			to = filepath.Join(dst, filepath.FromSlash(rel))
		}
		shown := "/" + p
		if p == "." {
			shown = "/"
		}
		if err != nil {
			x.failed = append(x.failed, notCopied(shown, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			x.failed = append(x.failed, notCopied(shown, err))
			return nil
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(to, 0o700); err != nil {
				return err
			}
			x.res.Dirs++
			// Modes and times of folders are set after their contents.
			x.dirs = append(x.dirs, dirMeta{to, info})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(x.fsys, p)
			if err != nil {
				x.failed = append(x.failed, notCopied(shown, err))
				return nil
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
			x.res.Links++
			x.setMeta(to, info, true)
		case d.Type().IsRegular():
			if err := x.copyFile(p, to, info); err != nil {
				if isWriteError(err) {
					return err
				}
				x.failed = append(x.failed, notCopied(shown, err))
				return nil
			}
			x.res.Files++
		default:
			x.res.Skipped = append(x.res.Skipped, shown)
		}
		return nil
	})
}

// writeError marks a failure on the destination (as opposed to reading
// the image): it ends the extraction.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// notCopied is a failed read as the list of what was not copied says
// it: the name inside the partition and the reason, without the private
// folder the partition was mounted on.
func notCopied(name string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return name + ": " + err.Error()
}

func isWriteError(err error) bool {
	var we *writeError
	return errors.As(err, &we)
}

func (x *extractor) copyFile(src, dst string, info fs.FileInfo) error {
	in, err := x.fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".lifeboat-partial")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return &writeError{err}
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	if x.buf == nil {
		x.buf = make([]byte, 1<<20)
	}
	buf := x.buf
	for {
		if err := x.ctx.Err(); err != nil {
			return &writeError{err}
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return &writeError{fmt.Errorf("writing %s: %w", dst, err)}
			}
			x.tr.add(int64(n))
			x.res.Bytes += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := out.Close(); err != nil {
		return &writeError{fmt.Errorf("writing %s: %w", dst, err)}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return &writeError{err}
	}
	ok = true
	x.setMeta(dst, info, false)
	return nil
}

// existingParent is dir or its nearest ancestor that exists.
func existingParent(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}
