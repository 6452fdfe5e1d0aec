package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// fitDisk is a 4 GiB GPT disk: an ESP (FAT32, 64 MiB), ext4 (2 GiB) and
// NTFS (the rest), about 30 % used, its files spread over the whole of
// each filesystem (written, then every other one deleted, so that data
// also lies above the end of the smaller disk). It returns the disk and
// the files each partition holds (as read through an independent mount).
func fitDisk(t *testing.T, dir string, seed uint64) (disk string, want map[int]meta) {
	t.Helper()
	disk = filepath.Join(dir, "disk.img")
	sh(t, "truncate", "-s", "4G", disk)
	sh(t, "sgdisk", "-n", "1:1MiB:+64MiB", "-t", "1:ef00", "-n", "2:0:+2GiB", "-t", "2:8300", "-n", "3:0:0", "-t", "3:0700", disk)
	p1, p2, p3 := partLoop(t, disk, 1, false), partLoop(t, disk, 2, false), partLoop(t, disk, 3, false)
	sh(t, "mkfs.vfat", "-F", "32", "-n", "ESP", p1)
	sh(t, "mkfs.ext4", "-q", "-F", p2)
	sh(t, "mkntfs", "-F", "-Q", "-q", p3)
	r := rand.New(rand.NewPCG(seed, 1))
	fill := func(mnt string, total int64) {
		var written int64
		for i := 0; written < 2*total; i++ {
			d := filepath.Join(mnt, fmt.Sprintf("d%02d", i%17))
			os.MkdirAll(d, 0o755)
			n := int64(r.IntN(24<<20) + 1)
			fstest.FillRandom(t, filepath.Join(d, fmt.Sprintf("f%04d.bin", i)), n, r.Uint64())
			written += n
		}
		// Every other file goes: the rest lies all over the filesystem.
		for i := 0; ; i += 2 {
			m, _ := filepath.Glob(filepath.Join(mnt, "d*", fmt.Sprintf("f%04d.bin", i)))
			if len(m) == 0 {
				break
			}
			os.Remove(m[0])
		}
		sh(t, "sync")
	}
	want = map[int]meta{}
	mnt := t.TempDir()
	sh(t, "mount", p2, mnt)
	fill(mnt, 640<<20)
	want[2] = readMeta(t, mnt, true)
	sh(t, "umount", mnt)
	sh(t, "ntfs-3g", p3, mnt)
	fill(mnt, 560<<20)
	want[3] = readMeta(t, mnt, true)
	sh(t, "umount", mnt)
	return disk, want
}

// Acceptance 4 of the explore issue: a 4 GiB disk (ESP + ext4 + NTFS,
// about 30 % used, data also above 2 GiB) restores with --layout fit onto
// a 2 GiB disk: filesystems shrunk and checker-clean, every file
// identical; a 1 GiB target is refused before any write, naming the
// smallest disk that would do.
func TestLayoutFitOntoSmallerDisk(t *testing.T) {
	need(t, "sgdisk", "mkfs.vfat", "mkfs.ext4", "mkntfs", "ntfs-3g", "resize2fs", "ntfsresize", "e2fsck", "ntfsfix", "fsck.vfat")
	dir := t.TempDir()
	seed := uint64(0x51f7)
	t.Logf("seed %#x", seed)
	disk, want := fitDisk(t, dir, seed)
	lbi := filepath.Join(dir, "disk.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", lbi, "-q", "--compression", "fast")

	small := filepath.Join(dir, "small.img")
	sh(t, "truncate", "-s", "1G", small)
	r := lb(t, nil, "restore", lbi, "--target", small, "--layout", "fit", "-y", "-q")
	if r.code != 5 || !strings.Contains(r.stderr, "choose a disk of at least") {
		t.Errorf("a 1 GiB target: exit %d, %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(small); strings.Trim(string(b), "\x00") != "" {
		t.Errorf("the refused 1 GiB target was written")
	}

	for _, how := range []string{"restore", "clone"} {
		t.Run(how, func(t *testing.T) {
			target := filepath.Join(dir, how+".img")
			sh(t, "truncate", "-s", "2G", target)
			var r result
			if how == "restore" {
				r = mustLB(t, nil, "restore", lbi, "--target", target, "--layout", "fit", "-y", "-q")
			} else {
				r = mustLB(t, nil, "clone", "disk", disk, "--target", target, "--layout", "fit", "-y", "-q")
			}
			if !strings.Contains(r.stdout, "shrank") {
				t.Errorf("the result does not say what shrank:\n%s", r.stdout)
			}
			checkFit(t, target, want)
		})
	}
}

// checkFit: the three filesystems on target check clean and hold want.
func checkFit(t *testing.T, target string, want map[int]meta) {
	t.Helper()
	q1, q2, q3 := partLoop(t, target, 1, true), partLoop(t, target, 2, true), partLoop(t, target, 3, true)
	sh(t, "fsck.vfat", "-n", q1)
	sh(t, "e2fsck", "-f", "-n", q2)
	sh(t, "ntfsfix", "-n", q3)
	mnt := t.TempDir()
	sh(t, "mount", "-o", "ro", q2, mnt)
	sameMeta(t, "ext4 after fit", want[2], readMeta(t, mnt, true))
	sh(t, "umount", mnt)
	sh(t, "ntfs-3g", "-o", "ro", q3, mnt)
	sameMeta(t, "ntfs after fit", want[3], readMeta(t, mnt, true))
	sh(t, "umount", mnt)
	t.Logf("%s", sh(t, "sgdisk", "-p", target))
}

// partLoop is a loop device over partition n of disk (by its place in the
// table: this kernel may not scan loop devices for partitions), removed
// when the test ends.
func partLoop(t *testing.T, disk string, n int, ro bool) string {
	t.Helper()
	f := strings.Fields(sh(t, "partx", "-g", "-o", "START,SECTORS", "-n", fmt.Sprint(n), disk))
	if len(f) != 2 {
		t.Fatalf("partx: partition %d of %s: %q", n, disk, f)
	}
	start, _ := strconv.ParseInt(f[0], 10, 64)
	sectors, _ := strconv.ParseInt(f[1], 10, 64)
	args := []string{"-f", "--show", "-o", fmt.Sprint(start * 512), "--sizelimit", fmt.Sprint(sectors * 512)}
	if ro {
		args = append(args, "-r")
	}
	loop := strings.TrimSpace(sh(t, "losetup", append(args, disk)...))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	return loop
}
