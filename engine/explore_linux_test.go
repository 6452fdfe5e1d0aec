package engine

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// exploreDisk is a GPT disk image holding an ext4 partition (2) with
// bulk data plus a small folder, behind a small FAT partition (1) with
// one file.
func exploreDisk(t *testing.T) (disk string, small map[string][]byte) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (mounts)")
	}
	dir := t.TempDir()
	c, _ := fstest.Lookup("ext4")
	img := fstest.Make(t, dir, c)
	mnt, umount := fstest.MountGeometry(t, c, img, false)
	fstest.FillRandom(t, filepath.Join(mnt, "bulk.bin"), 80<<20, 7)
	small = map[string][]byte{"small/a.txt": []byte("alpha\n"), "small/sub/b.txt": bytes.Repeat([]byte("beta "), 3000)}
	for p, b := range small {
		os.MkdirAll(filepath.Dir(filepath.Join(mnt, p)), 0o755)
		if err := os.WriteFile(filepath.Join(mnt, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	umount()
	disk = filepath.Join(dir, "disk.img")
	fstest.Run(t, "truncate", "-s", "160M", disk)
	fstest.Run(t, "sgdisk", "-n", "1:1MiB:+16MiB", "-t", "1:0700", "-n", "2:17MiB:+128MiB", disk)
	fstest.CopyRange(t, disk, 17<<20, img, 0, 128<<20)
	fat := filepath.Join(dir, "fat.img")
	fstest.Run(t, "truncate", "-s", "16M", fat)
	fstest.Run(t, fstest.Tool(t, "mkfs.vfat"), "-n", "EFI", fat)
	os.WriteFile(filepath.Join(dir, "boot.txt"), []byte("boot\n"), 0o644)
	fstest.Run(t, fstest.Tool(t, "mcopy"), "-i", fat, filepath.Join(dir, "boot.txt"), "::/")
	fstest.CopyRange(t, disk, 1<<20, fat, 0, 16<<20)
	return disk, small
}

// Acceptance 2 of the explore issue: extracting a small folder reads only
// the chunks it needs (counted), not the partition; and what a user can
// get wrong is refused with the object named, nothing written.
func TestExploreReadsOnlyWhatItNeeds(t *testing.T) {
	ctx := context.Background()
	disk, small := exploreDisk(t)
	lbi := filepath.Join(t.TempDir(), "d.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: lbi}); err != nil {
		t.Fatal(err)
	}
	o := ExploreOptions{Image: lbi}
	v, err := OpenView(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	sr, _ := v.c.point.Stream(0)
	for _, r := range sr.UsedRanges() {
		stored += int(r.Len / int64(v.c.point.ChunkAverage()))
	}
	if len(v.Parts) != 2 || v.Parts[1].Number != 2 || v.Parts[1].FS == nil || v.Parts[1].FS.Type != "ext4" || v.Parts[0].FS == nil || v.Parts[0].FS.Type != "vfat" {
		t.Fatalf("parts: %+v", v.Parts)
	}
	v.Close()

	out := t.TempDir()
	res, err := Extract(ctx, ExtractOptions{ExploreOptions: o, Partition: 2, Paths: []string{"/small"}, Dest: out})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range small {
		if got, err := os.ReadFile(filepath.Join(out, p)); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %d bytes, %v", p, len(got), err)
		}
	}
	t.Logf("extract of /small: %d chunks read of about %d stored (%s via %s)", res.ChunksRead, stored, res.Partition.FS.Type, res.ReadPath)
	if res.ChunksRead == 0 || res.ChunksRead*10 > int64(stored) {
		t.Errorf("extracting 15 KB read %d chunks of about %d: more than a tenth of the image", res.ChunksRead, stored)
	}

	// Bad input: each refused before anything is written.
	for _, tc := range []struct {
		name string
		o    ExtractOptions
		want string
		is   error
	}{
		{"missing path", ExtractOptions{ExploreOptions: o, Partition: 2, Paths: []string{"/small", "/nope"}, Dest: filepath.Join(out, "n1")}, "/nope: not found in partition 2", fs.ErrNotExist},
		{"no such partition", ExtractOptions{ExploreOptions: o, Partition: 5, Paths: []string{"/"}, Dest: filepath.Join(out, "n2")}, "has no partition 5", fs.ErrNotExist},
		{"several partitions", ExtractOptions{ExploreOptions: o, Paths: []string{"/"}, Dest: filepath.Join(out, "n3")}, "holds several partitions", nil},
		{"already there", ExtractOptions{ExploreOptions: o, Partition: 2, Paths: []string{"/small"}, Dest: out}, "already exists", fs.ErrExist},
		{"missing image", ExtractOptions{ExploreOptions: ExploreOptions{Image: lbi + ".gone"}, Partition: 2, Paths: []string{"/"}, Dest: filepath.Join(out, "n4")}, "", fs.ErrNotExist},
	} {
		_, err := Extract(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if tc.o.Dest != out {
			if _, serr := os.Stat(tc.o.Dest); serr == nil {
				t.Errorf("%s: %s was created", tc.name, tc.o.Dest)
			}
		}
	}
	// The FAT partition, through whatever reads FAT here.
	var buf bytes.Buffer
	if err := CatFile(ctx, o, 1, "/BOOT.TXT", &buf); err != nil || buf.String() != "boot\n" {
		t.Errorf("cat of partition 1's file: %q %v", buf.String(), err)
	}
}

// Bad input around a good image: a damaged filesystem inside it gives
// back what it can and names what it could not (the kernel refuses one
// file whose extent tree was broken with debugfs); a destination without
// room is refused before anything is written; a point whose earlier point
// is missing is refused naming it.
func TestExploreBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, _ := fstest.Lookup("ext4")
	img := fstest.Make(t, dir, c)
	mnt, umount := fstest.MountGeometry(t, c, img, false)
	for _, n := range []string{"a", "b", "c"} {
		fstest.FillRandom(t, filepath.Join(mnt, n), 3<<20, uint64(n[0]))
	}
	umount()
	// b's extent tree header gets a bad magic: the kernel refuses to read
	// it (EFSCORRUPTED), a and c are fine.
	fstest.Run(t, fstest.Tool(t, "debugfs"), "-w", "-R", "sif /b block[0] 0x1234", img)
	lbi := filepath.Join(dir, "p.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: img, Kind: images.KindPartition, Output: lbi}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, err := Extract(ctx, ExtractOptions{ExploreOptions: ExploreOptions{Image: lbi}, Paths: []string{"/"}, Dest: out})
	var ee *ExtractError
	if !errors.As(err, &ee) || len(ee.Failed) != 1 || !strings.HasPrefix(ee.Failed[0], "/b: ") {
		t.Fatalf("damaged file: %v (%+v)", err, res)
	}
	t.Logf("%v", err)
	if res.Files != 2 {
		t.Errorf("%d files copied, want a and c", res.Files)
	}
	if _, err := os.Stat(filepath.Join(out, "b")); err == nil {
		t.Error("the unreadable file was left half-copied under its name")
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*lifeboat-partial")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}

	// A destination with 1 MiB of room for 6 MB of files.
	small := filepath.Join(dir, "small.img")
	fstest.Run(t, "truncate", "-s", "4M", small)
	fstest.Run(t, fstest.Tool(t, "mkfs.ext4"), "-q", "-F", small)
	dst := t.TempDir()
	fstest.Run(t, "mount", "-o", "loop", small, dst)
	defer fstest.Run(t, "umount", dst)
	_, err = Extract(ctx, ExtractOptions{ExploreOptions: ExploreOptions{Image: lbi}, Paths: []string{"/a", "/c"}, Dest: filepath.Join(dst, "x")})
	if err == nil || !strings.Contains(err.Error(), "free; the files need") || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a full destination: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "x")); err == nil {
		t.Error("the refused extract created its folder")
	}

	// An incremental point without its full backup.
	inc := filepath.Join(dir, "inc.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: img, Kind: images.KindPartition, Output: inc, Incremental: lbi}); err != nil {
		t.Fatal(err)
	}
	os.Rename(lbi, lbi+".away")
	if _, err := ListFiles(ctx, ExploreOptions{Image: inc}, 0, "/"); err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "p.lbi") {
		t.Errorf("a missing earlier point: %v", err)
	}
}
