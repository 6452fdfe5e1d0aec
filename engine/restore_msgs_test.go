package engine

// Messages and exit codes around restore and clone that misled new users
// (issue 11): each says what happened and what to do.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// smallDiskImage backs up a 100 MiB GPT disk: p1 NTFS 32 MiB, p2 ext4
// 64 MiB with a few files. It returns the disk and the image.
func smallDiskImage(t *testing.T) (disk, img string) {
	t.Helper()
	dir := t.TempDir()
	disk = deltaFile(t, filepath.Join(dir, "disk.img"), 100*deltaMiB)
	fstest.Run(t, fstest.Tool(t, "sgdisk"), "-n1:2048:+32M", "-t1:0700", "-n2:0:+64M", "-t2:8300", disk)
	ntfs := deltaFile(t, filepath.Join(dir, "p1.fs"), 32*deltaMiB)
	fstest.Run(t, fstest.Tool(t, "mkntfs"), "-F", "-Q", "-q", "-L", "data", ntfs)
	tree := filepath.Join(dir, "tree")
	fstest.WriteTree(t, tree, 3, 8*deltaMiB)
	ext4 := deltaFile(t, filepath.Join(dir, "p2.fs"), 64*deltaMiB)
	fstest.Run(t, fstest.Tool(t, "mkfs.ext4"), "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", tree, ext4)
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, fsf := range []string{ntfs, ext4} {
		b, _ := os.ReadFile(fsf)
		if _, err := f.WriteAt(b, int64(1+32*i)*deltaMiB); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	img = filepath.Join(dir, "disk.lbi")
	if _, err := Backup(context.Background(), BackupOptions{Source: disk, Kind: images.KindDisk, Output: img}); err != nil {
		t.Fatal(err)
	}
	return disk, img
}

// statuses collects progress reports.
type statuses struct {
	mu sync.Mutex
	l  []Status
}

func (s *statuses) Report(st Status) { s.mu.Lock(); s.l = append(s.l, st); s.mu.Unlock() }

func (s *statuses) final(stage Stage) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.l {
		if st.Stage == stage && st.Final {
			return st, true
		}
	}
	return Status{}, false
}

func TestRestoreMessages(t *testing.T) {
	_, img := smallDiskImage(t)
	ctx := context.Background()
	untouched := func(t *testing.T, path string, sum [32]byte) {
		t.Helper()
		if fileHash(t, path) != sum {
			t.Error("the refused target was written to")
		}
	}

	// A whole disk image onto a partition: say --partition N and list
	// the image's partitions, before anything is written.
	t.Run("disk-onto-partition", func(t *testing.T) {
		old := partitionOf
		t.Cleanup(func() { partitionOf = old })
		partitionOf = func(string) (string, int, bool) { return "/dev/loop7", 1, true }
		d := &delivery{meta: mustMeta(t, img), origin: img, target: "/dev/loop7p1"}
		err := d.checkPartitionTarget(&blockdev.Device{Path: "/dev/loop7p1", IsBlock: true})
		for _, want := range []string{"partition 1 of /dev/loop7", "--partition N", `partition 1: ntfs "data"`, `partition 2: ext4 "root"`, "name the disk /dev/loop7"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not say %q", err, want)
			}
		}
		if ExitCode(err) != ExitRefused {
			t.Errorf("exit %d, want %d", ExitCode(err), ExitRefused)
		}
		// A clone says clone part instead.
		d.stage = StageClone
		err = d.checkPartitionTarget(&blockdev.Device{Path: "/dev/loop7p1", IsBlock: true})
		if err == nil || !strings.Contains(err.Error(), "clone part") || strings.Contains(err.Error(), "--partition") {
			t.Errorf("a clone onto a partition: %v; want a hint at clone part", err)
		}
		// A file the size of a partition: the too-small refusal says it too.
		part := deltaFile(t, filepath.Join(t.TempDir(), "part.img"), 64*deltaMiB)
		sum := fileHash(t, part)
		_, err = Restore(ctx, RestoreOptions{Image: img, Target: part})
		if ExitCode(err) != ExitRefused || !strings.Contains(err.Error(), "--partition N") || !strings.Contains(err.Error(), `partition 2: ext4 "root"`) {
			t.Errorf("exit %d, %v; want a refusal that suggests --partition N with the image's partitions", ExitCode(err), err)
		}
		untouched(t, part, sum)
	})

	// --layout manual smaller than stored: the used size is known and said.
	t.Run("manual-shrink-says-used", func(t *testing.T) {
		target := deltaFile(t, filepath.Join(t.TempDir(), "big.img"), 160*deltaMiB)
		sum := fileHash(t, target)
		_, err := Restore(ctx, RestoreOptions{Image: img, Target: target, Layout: LayoutOptions{Mode: layout.Manual, Sizes: map[int]int64{2: 40 * deltaMiB}}})
		if ExitCode(err) != ExitRefused || err == nil || strings.Contains(err.Error(), "not known") || !strings.Contains(err.Error(), "of data") || !strings.Contains(err.Error(), "never shrunk") {
			t.Errorf("exit %d, %v; want a refusal that says how much partition 2 holds and that partitions are not shrunk", ExitCode(err), err)
		}
		untouched(t, target, sum)
	})

	// --partition 5 of a two-partition image: it does not exist (exit 6).
	t.Run("missing-partition", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "p5.img")
		_, err := Restore(ctx, RestoreOptions{Image: img, Target: target, Partition: 5})
		if ExitCode(err) != ExitNotFound || err == nil || !strings.Contains(err.Error(), "no partition 5; it has partitions 1, 2") {
			t.Errorf("exit %d, %v; want %d and the partitions it has", ExitCode(err), err, ExitNotFound)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Error("the target was created")
		}
	})

	// --layout fill onto a file that does not exist yet: it has no size
	// to fill; say how to make one.
	t.Run("fill-onto-missing-file", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "new.img")
		_, err := Restore(ctx, RestoreOptions{Image: img, Target: target, Layout: LayoutOptions{Mode: layout.Fill}})
		if ExitCode(err) != ExitRefused || err == nil || !strings.Contains(err.Error(), "truncate -s") {
			t.Errorf("exit %d, %v; want a refusal saying to create the file at the size wanted", ExitCode(err), err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Error("the target was created")
		}
	})

	// The verify stage ends at 100 %: its total is what it reads back.
	t.Run("verify-progress-complete", func(t *testing.T) {
		var st statuses
		res, err := Restore(ctx, RestoreOptions{Image: img, Target: filepath.Join(t.TempDir(), "copy.img"), Progress: &st})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := st.final(StageVerify)
		if !ok || v.Total == 0 || v.Done != v.Total || v.Total >= res.Bytes {
			t.Errorf("final verify report %+v (found %v): want Done == Total, the bytes read back, below the %d the restore covers", v, ok, res.Bytes)
		}
		if StageVerify.String() != "reading back" {
			t.Errorf("the verify stage is labelled %q: say that it reads back what was written", StageVerify)
		}
	})

	// A clone reports "cloning", not "restoring".
	t.Run("clone-progress", func(t *testing.T) {
		disk, _ := smallDiskImage(t)
		var st statuses
		if _, err := Clone(ctx, CloneOptions{Kind: CloneDisk, Source: disk, Target: filepath.Join(t.TempDir(), "clone.img"), Progress: &st}); err != nil {
			t.Fatal(err)
		}
		if _, ok := st.final(StageClone); !ok {
			t.Error("no cloning stage reported")
		}
		if _, ok := st.final(StageRestore); ok {
			t.Error("a clone reported a restoring stage")
		}
		if StageClone.String() != "cloning" {
			t.Errorf("StageClone is %q", StageClone)
		}
	})
}

func mustMeta(t *testing.T, img string) *images.Stream {
	t.Helper()
	c, err := openChain(context.Background(), img, "", nil, Encryption{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sr, err := c.point.Stream(0)
	if err != nil {
		t.Fatal(err)
	}
	return sr.Meta
}
