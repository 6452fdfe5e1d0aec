package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FSType is a filesystem the filesystems part of the bench measures.
type FSType uint8

const (
	FSExt4 FSType = iota
	FSNTFS
)

func (t FSType) String() string {
	switch t {
	case FSExt4:
		return "ext4"
	case FSNTFS:
		return "ntfs"
	}
	return fmt.Sprintf("FSType(%d)", uint8(t))
}

// partclone is the partclone program for the filesystem.
func (t FSType) partclone() string {
	if t == FSNTFS {
		return "partclone.ntfs"
	}
	return "partclone.extfs"
}

// tools are the programs needed to make and check an image of the type.
func (t FSType) tools() []string {
	if t == FSNTFS {
		return []string{"mkntfs", "ntfs-3g", "ntfsfix", "ntfscluster", "losetup", "mount", "umount"}
	}
	return []string{"mkfs.ext4", "dumpe2fs", "e2fsck", "losetup", "mount", "umount"}
}

// fsImageSize is the size of each filesystem image; PlanFiles fills about
// half of it.
const fsImageSize = 2 << 30

// fsImage is a prepared filesystem image and what is known about it. The
// JSON form is kept next to the image; an image without it is not reused.
type fsImage struct {
	Path    string `json:"-"`
	Type    string `json:"type"`
	Version string `json:"version"` // FSDataVersion
	Seed    uint64 `json:"seed"`
	Size    int64  `json:"size"`
	Used    int64  `json:"used"`    // bytes in use, from the filesystem's own counters
	Written int64  `json:"written"` // file bytes written
	Kept    int64  `json:"kept"`    // file bytes left after the deletions
}

// dataSet is what a filesystem image is made of: its size and the files
// written into it.
type dataSet struct {
	// version names the rules of plan and of the file contents; it is part
	// of the cached image's name.
	version string
	size    int64
	plan    func(seed uint64) []FileSpec
}

// fsDataSet is the data set of the fs, chain, explore and stores parts.
var fsDataSet = dataSet{version: FSDataVersion, size: fsImageSize, plan: PlanFiles}

// prepareFS makes the image of type t for seed in dir, or reuses one made by
// the same FSDataVersion. Making it needs root: loop devices and mounts.
func prepareFS(ctx context.Context, dir string, t FSType, seed uint64, log logger) (*fsImage, error) {
	return prepareImage(ctx, dir, t, fsDataSet, seed, log)
}

// prepareImage makes the image of type t holding the data set ds for seed in
// dir, or reuses one made by the same ds.version.
func prepareImage(ctx context.Context, dir string, t FSType, ds dataSet, seed uint64, log logger) (*fsImage, error) {
	base := filepath.Join(dir, fmt.Sprintf("fs-%s-%s-%s-seed%d", t, ds.version, sizeLabel(ds.size), seed))
	img := &fsImage{Path: base + ".img"}
	if b, err := os.ReadFile(base + ".json"); err == nil {
		if json.Unmarshal(b, img) == nil && img.Version == ds.version && img.Type == t.String() && img.Size == ds.size {
			if fi, err := os.Stat(img.Path); err == nil && fi.Size() == ds.size {
				log.Info("reusing filesystem image", "path", img.Path, "used", img.Used)
				return img, nil
			}
		}
	}
	for _, tool := range t.tools() {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: making the %s image needs %s; install it (./scripts/deps.sh): %w", t, tool, err)
		}
	}
	log.Info("making filesystem image started", "path", img.Path)
	start := time.Now()
	*img = fsImage{Path: img.Path, Type: t.String(), Version: ds.version, Seed: seed, Size: ds.size}
	tmp := base + ".tmp"
	defer os.Remove(tmp)
	if err := makeFS(ctx, tmp, base+".mnt", t, img, ds.plan(seed)); err != nil {
		log.Error("making filesystem image failed", "path", img.Path, "err", err)
		return nil, err
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// The image first: metadata without its image is never trusted.
	if err := os.Rename(tmp, img.Path); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	log.Info("making filesystem image finished", "path", img.Path, "seconds", time.Since(start).Seconds(),
		"used", img.Used, "written", img.Written, "kept", img.Kept)
	return img, nil
}

// logger is the part of *slog.Logger the bench uses.
type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// makeFS writes zeros over the whole file first, so that, as on a real
// partition, free blocks are stored on the disk and cost reads, not holes
// that every tool skips for free. It then makes the filesystem without
// discarding, mounts it through a loop device, writes and deletes the files
// of the data set, unmounts, checks it and reads the used size.
func makeFS(ctx context.Context, path, mnt string, t FSType, img *fsImage, files []FileSpec) (err error) {
	if err := writeZeros(ctx, path, img.Size); err != nil {
		return err
	}
	if err := mkfs(ctx, t, path); err != nil {
		return err
	}
	loop, err := commandOutput(ctx, "losetup", "--find", "--show", path)
	if err != nil {
		return err
	}
	loop = strings.TrimSpace(loop)
	// Detach and unmount even when ctx is cancelled.
	defer func() {
		if derr := command(context.Background(), "losetup", "-d", loop); err == nil {
			err = derr
		}
	}()
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	fstype := "ext4"
	if t == FSNTFS {
		fstype = "ntfs-3g" // Debian's kernel has no NTFS driver; ntfs-3g mounts the loop device as fuseblk
	}
	if err := command(ctx, "mount", "-t", fstype, loop, mnt); err != nil {
		return err
	}
	mounted := true
	defer func() {
		if mounted {
			command(context.Background(), "umount", mnt)
		}
		os.Remove(mnt)
	}()
	img.Written, img.Kept, err = writeFiles(ctx, mnt, img.Seed, files)
	if err != nil {
		return err
	}
	syncAll()
	// A fuseblk unmount waits for ntfs-3g to write everything back.
	if err := command(ctx, "umount", mnt); err != nil {
		return err
	}
	mounted = false
	if err := checkFS(ctx, t, path); err != nil {
		return fmt.Errorf("bench: the new %s image fails its check: %w", t, err)
	}
	img.Used, err = usedBytes(ctx, t, path)
	return err
}

// mkfs makes a filesystem of type t on path, without discarding and with
// every inode table and the journal written now, so that no kernel thread
// initialises them later while a measured step runs.
func mkfs(ctx context.Context, t FSType, path string) error {
	if t == FSNTFS {
		return command(ctx, "mkntfs", "-F", "-Q", "-q", "-L", "lbbench", path)
	}
	return command(ctx, "mkfs.ext4", "-F", "-q", "-L", "lbbench", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", path)
}

func writeZeros(ctx context.Context, path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0 && err == nil; left -= int64(len(zeros)) {
		if err = ctx.Err(); err == nil {
			_, err = f.Write(zeros[:min(left, int64(len(zeros)))])
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

// checkFS runs the filesystem's checker on an image without changing it.
func checkFS(ctx context.Context, t FSType, path string) error {
	if t == FSNTFS {
		return command(ctx, "ntfsfix", "-n", path)
	}
	return command(ctx, "e2fsck", "-fn", path)
}

// usedBytes reads the bytes in use from the filesystem's own counters: the
// superblock's block and free-block counts for ext4, and ntfscluster's
// volume and free-space sizes (from $Bitmap) for NTFS.
func usedBytes(ctx context.Context, t FSType, path string) (int64, error) {
	var out string
	var err error
	var fields map[string]int64
	switch t {
	case FSExt4:
		out, err = commandOutput(ctx, "dumpe2fs", "-h", path)
		if err == nil {
			fields, err = numberFields(out, "Block count", "Free blocks", "Block size")
		}
		if err == nil {
			return (fields["Block count"] - fields["Free blocks"]) * fields["Block size"], nil
		}
	case FSNTFS:
		out, err = commandOutput(ctx, "ntfscluster", path)
		if err == nil {
			fields, err = numberFields(out, "bytes per volume", "bytes of free space")
		}
		if err == nil {
			return fields["bytes per volume"] - fields["bytes of free space"], nil
		}
	}
	return 0, fmt.Errorf("bench: used size of %s: %w", path, err)
}

// numberFields finds "name: number" lines (dumpe2fs, ntfscluster) for each
// name in out.
func numberFields(out string, names ...string) (map[string]int64, error) {
	got := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		for _, name := range names {
			if k == name {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					got[name] = n
				}
			}
		}
	}
	var errs []error
	for _, name := range names {
		if _, ok := got[name]; !ok {
			errs = append(errs, fmt.Errorf("no %q line in %q", name, out))
		}
	}
	return got, errors.Join(errs...)
}

// command runs argv; its error carries the argv and the output.
func command(ctx context.Context, argv ...string) error {
	_, err := commandOutput(ctx, argv...)
	return err
}

func commandOutput(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("bench: %s: %w", argv[0], ctx.Err())
		}
		return "", fmt.Errorf("bench: %s: %w: %s%s", strings.Join(argv, " "), err, stderr.String(), lastLines(string(out)))
	}
	return string(out), nil
}

// lastLines returns the end of a command's stdout for an error message.
func lastLines(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1000 {
		s = "…" + s[len(s)-1000:]
	}
	if s != "" {
		s = "; stdout: " + s
	}
	return s
}
