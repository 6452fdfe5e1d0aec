package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestBackupDamagedExt is the end-to-end half of fsmap's
// TestDamagedFilesystems: an ext4 whose block bitmap calls a directory's
// block free (and a free block used, so that every count and checksum
// still agrees) goes through Backup, Info and Restore. The backup must copy
// every sector and say why, and e2fsck must recover as many intact files
// from the restore as from the original. Before the reference walk, the
// directory block was left out and its files were lost.
func TestBackupDamagedExt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("populating ext4 mounts it: run as root")
	}
	debugfs := fstest.Tool(t, "debugfs")
	c := fstest.Case{Name: "ext4", SizeMiB: 32, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "1024"}, FS: "ext4"}
	dir := t.TempDir()
	img := fstest.MakeDirty(t, dir, c)
	want := fstest.HashTree(t, fstest.Populate(t, c, img))

	// Swap /d0's only block with a free block of its group.
	u, err := strconv.ParseInt(strings.TrimSpace(fstest.Run(t, debugfs, "-R", "blocks /d0", img)), 10, 64)
	if err != nil {
		t.Fatalf("debugfs blocks /d0: %v", err)
	}
	dump := fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", img)
	bpg, first := fstest.E2fsField(t, dump, "Blocks per group"), fstest.E2fsField(t, dump, "First block")
	out := fstest.Run(t, debugfs, "-R", fmt.Sprintf("ffb 1 %d", first+(u-first)/bpg*bpg), img)
	m := regexp.MustCompile(`Free blocks found: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs ffb: %s", out)
	}
	fstest.Run(t, debugfs, "-w", "-R", fmt.Sprintf("freeb %d", u), img)
	fstest.Run(t, debugfs, "-w", "-R", "setb "+m[1], img)

	ctx := context.Background()
	lbi := filepath.Join(dir, "damaged.lbi")
	res, err := Backup(ctx, BackupOptions{Source: img, Kind: images.KindPartition, Output: lbi})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	info, err := Info(t.Context(), lbi, nil)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	s := info.Meta.Streams[0]
	t.Logf("backup: mode %s, reason %q, %d of %d bytes unused", s.Mode, s.ModeReason, res.Unused, res.SourceSize)
	if s.Mode != images.ModeAllSectors || !strings.Contains(s.ModeReason, "damaged filesystem") {
		t.Errorf("info: mode %s, reason %q; want every sector copied because the filesystem is damaged", s.Mode, s.ModeReason)
	}
	restored := filepath.Join(dir, "restored.img")
	if _, err := Restore(ctx, RestoreOptions{Image: lbi, Target: restored}); err != nil {
		t.Fatalf("restore: %v", err)
	}

	nOrig, nRest := e2fsckRecovered(t, img, want), e2fsckRecovered(t, restored, want)
	t.Logf("e2fsck -fy recovers %d of %d files from the original, %d from the restore", nOrig, len(want), nRest)
	if nRest < nOrig {
		t.Errorf("e2fsck recovers %d intact files from the restore, %d from the original", nRest, nOrig)
	}
}

// e2fsckRecovered repairs img in place and counts the files of want it
// then holds with the same contents (read with debugfs rdump, no mount).
func e2fsckRecovered(t *testing.T, img string, want map[string]string) int {
	out, err := exec.Command(fstest.Tool(t, "e2fsck"), "-fy", img).CombinedOutput()
	t.Logf("e2fsck -fy %s: %v\n%.1500s", filepath.Base(img), err, out)
	dir := t.TempDir()
	if out, err := exec.Command(fstest.Tool(t, "debugfs"), "-R", "rdump / "+dir, img).CombinedOutput(); err != nil {
		t.Logf("debugfs rdump: %v\n%.500s", err, out)
	}
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		if want[filepath.ToSlash(rel)] == hex.EncodeToString(sum[:]) {
			n++
		}
		return nil
	})
	return n
}
