//go:build linux

package main

// Acceptance: for ext4, ext3, FAT32, FAT16, exFAT and NTFS, a backup in the
// default (intelligent) mode stores no more than the filesystem's used
// bytes + 2%, and the restored filesystem passes its own checker and holds
// the same files.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// imageInfo is the part of `lifeboat info --json` these tests read.
type imageInfo struct {
	FileSize int64 `json:"file_size"`
	Meta     struct {
		Streams []struct {
			Kind        string
			Size        int64
			Mode        string
			StoredBytes int64 `json:"stored_bytes"`
			UnusedBytes int64 `json:"unused_bytes"`
			FS          *struct {
				Type string
				Used int64
			}
		}
	}
}

func readInfo(t *testing.T, img string) imageInfo {
	t.Helper()
	var info imageInfo
	r := mustLB(t, nil, "info", "--json", img)
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, r.stdout)
	}
	if len(info.Meta.Streams) == 0 {
		t.Fatalf("info --json lists no streams:\n%s", r.stdout)
	}
	return info
}

// statfsUsed mounts img and returns (f_blocks − f_bfree) × f_frsize: what
// the filesystem driver itself reports as in use, metadata included
// (exfat-fuse counts the whole volume in clusters and the free clusters of
// the allocation bitmap).
func statfsUsed(t testing.TB, c fstest.Case, img string) int64 {
	t.Helper()
	mnt := fstest.Mount(t, c, img, true)
	defer fstest.Umount(t, mnt)
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Frsize
}

// ntfsUsed is (Volume Size in Clusters − Free Clusters) × Cluster Size from
// ntfsinfo -m, which counts NTFS's own $Bitmap.
func ntfsUsed(t testing.TB, img string) int64 {
	t.Helper()
	out := fstest.Run(t, fstest.Tool(t, "ntfsinfo"), "-m", img)
	return (ntfsField(t, out, "Volume Size in Clusters") - ntfsField(t, out, "Free Clusters")) * ntfsField(t, out, "Cluster Size")
}

// ntfsField returns the number after "name:" in ntfsinfo -m output.
func ntfsField(t testing.TB, ntfsinfo, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `:\s+(\d+)`).FindStringSubmatch(ntfsinfo)
	if m == nil {
		t.Fatalf("ntfsinfo -m has no %q:\n%s", name, ntfsinfo)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func fsCase(t testing.TB, name string) fstest.Case {
	t.Helper()
	c, ok := fstest.Lookup(name)
	if !ok {
		t.Fatalf("fstest.Cases has no %s", name)
	}
	return c
}

func TestIntelligentBackupStoresOnlyUsed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// used is the filesystem's own count of bytes in use.
		used  func(t testing.TB, c fstest.Case, img string) int64
		short bool // also run with -short
	}{
		{"ext4", func(t testing.TB, _ fstest.Case, img string) int64 { return fstest.E2fsUsed(t, img) }, true},
		{"ext3", func(t testing.TB, _ fstest.Case, img string) int64 { return fstest.E2fsUsed(t, img) }, false},
		// fsck.fat -nv: data area offset + used clusters × cluster size.
		{"vfat32", func(t testing.TB, _ fstest.Case, img string) int64 { return fstest.FATUsed(t, img) }, true},
		{"vfat16", func(t testing.TB, _ fstest.Case, img string) int64 { return fstest.FATUsed(t, img) }, false},
		// fsck.exfat prints no usage; exfat-fuse's statfs does.
		{"exfat", statfsUsed, false},
		{"ntfs", func(t testing.TB, _ fstest.Case, img string) int64 { return ntfsUsed(t, img) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && !tc.short {
				t.Skip("skipped with -short")
			}
			c := fsCase(t, tc.name)
			dir := t.TempDir()
			// Free blocks hold random garbage, and Populate leaves deleted
			// files' data behind: none of it may be stored.
			src := fstest.MakeDirty(t, dir, c)
			want := fstest.HashTree(t, fstest.Populate(t, c, src))
			used := tc.used(t, c, src)

			img := filepath.Join(dir, "x.lbi")
			mustLB(t, nil, "backup", "part", src, "-o", img)
			info := readInfo(t, img)
			fi, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			s := info.Meta.Streams[0]
			limit := used + used/50 + 64<<10
			t.Logf("%s: %d MiB volume, %d bytes used by the filesystem, image file %d bytes (%+.2f%%), stored %d, unused %d",
				tc.name, c.SizeMiB, used, fi.Size(), 100*float64(fi.Size()-used)/float64(used), s.StoredBytes, s.UnusedBytes)
			if s.Mode != "used-blocks" {
				t.Errorf("mode %q, want used-blocks", s.Mode)
			}
			if s.UnusedBytes <= 0 {
				t.Errorf("unused_bytes = %d, want > 0", s.UnusedBytes)
			}
			if s.StoredBytes > used+used/50 {
				t.Errorf("stored_bytes %d > used %d + 2%%", s.StoredBytes, used)
			}
			if fi.Size() > limit {
				t.Errorf("image file is %d bytes, more than the %d used + 2%% + 64 KiB = %d: free blocks (holding deleted data) were stored",
					fi.Size(), used, limit)
			}

			out := filepath.Join(dir, "out.img")
			mustLB(t, nil, "restore", img, "--target", out, "--yes")
			if ofi, err := os.Stat(out); err != nil || ofi.Size() != c.SizeMiB<<20 {
				t.Fatalf("restored file: %v, %v; want %d bytes", ofi, err, c.SizeMiB<<20)
			}
			fstest.Check(t, c, out)
			fstest.SameTree(t, "the restored filesystem", want, fstest.ReadTree(t, c, out))
		})
	}
}

// Sector by sector: every byte, free blocks and their deleted data too.
func TestSectorBySectorPart(t *testing.T) {
	c := fsCase(t, "ext3")
	dir := t.TempDir()
	src := fstest.Make(t, dir, c)
	fstest.Populate(t, c, src)
	img := filepath.Join(dir, "x.lbi")
	mustLB(t, nil, "backup", "part", src, "-o", img, "--sector-by-sector")
	if s := readInfo(t, img).Meta.Streams[0]; s.Mode != "sector-by-sector" || s.UnusedBytes != 0 {
		t.Errorf("mode %q, unused_bytes %d; want sector-by-sector and 0", s.Mode, s.UnusedBytes)
	}
	out := filepath.Join(dir, "out.img")
	mustLB(t, nil, "restore", img, "--target", out, "--yes")
	sameFiles(t, src, out)
}
