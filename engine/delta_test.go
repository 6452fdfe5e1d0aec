package engine

// Delta restore onto a disk an earlier restore of the same chain laid out:
// fill (with new IDs), manual sizes, keep on a larger GPT disk; and a
// target whose partitions do not correspond, refused with nothing written.
// Real ext4 and NTFS filesystems, a full backup and an incremental.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

const deltaMiB = 1 << 20

// The source disk: 100 MiB GPT, p1 NTFS 32 MiB at 1 MiB, p2 ext4 64 MiB.
// Fill grows p2 (the last data partition); the manual case grows both.
type deltaDisk struct {
	dir, disk string
	cases     [2]fstest.Case
	fsFiles   [2]string // each filesystem, kept beside the disk and copied in
}

func newDeltaDisk(t *testing.T) *deltaDisk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("populating NTFS and ext4 mounts images: needs root")
	}
	for _, tool := range []string{"sgdisk", "mkntfs", "ntfs-3g", "ntfsfix", "ntfsresize", "ntfsinfo", "mkfs.ext4", "e2fsck", "resize2fs", "dumpe2fs"} {
		fstest.Tool(t, tool)
	}
	d := &deltaDisk{dir: t.TempDir()}
	ntfs, _ := fstest.Lookup("ntfs")
	ntfs.SizeMiB = 32
	ext4, _ := fstest.Lookup("ext4")
	ext4.SizeMiB = 64
	d.cases = [2]fstest.Case{ntfs, ext4}
	for i, c := range d.cases {
		d.fsFiles[i] = fstest.Make(t, d.dir, c)
		fstest.Populate(t, c, d.fsFiles[i])
	}
	d.disk = filepath.Join(d.dir, "disk.img")
	deltaFile(t, d.disk, 100*deltaMiB)
	fstest.Run(t, fstest.Tool(t, "sgdisk"), "-n1:2048:+32M", "-t1:0700", "-c1:data", "-n2:0:+64M", "-t2:8300", "-c2:root", d.disk)
	d.copyIn(t)
	return d
}

// copyIn copies the filesystems into the disk at their partitions.
func (d *deltaDisk) copyIn(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(d.disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, p := range deltaTable(t, d.disk).Partitions {
		b, err := os.ReadFile(d.fsFiles[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, p.Start); err != nil {
			t.Fatal(err)
		}
	}
}

// trees are the files each filesystem holds now.
func (d *deltaDisk) trees(t *testing.T) [2]map[string]string {
	t.Helper()
	var out [2]map[string]string
	for i, c := range d.cases {
		out[i] = fstest.ReadTree(t, c, d.fsFiles[i])
	}
	return out
}

// change rewrites about a tenth of each filesystem's files, adds one and
// deletes one: what happens between two backups.
func (d *deltaDisk) change(t *testing.T, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 11))
	for i, c := range d.cases {
		mnt := fstest.Mount(t, c, d.fsFiles[i], false)
		var files []string
		filepath.WalkDir(mnt, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() && !strings.Contains(p, "System Volume Information") && !strings.Contains(p, "lost+found") {
				files = append(files, p)
			}
			return nil
		})
		slices.Sort(files)
		r.Shuffle(len(files), func(a, b int) { files[a], files[b] = files[b], files[a] })
		for _, p := range files[:max(1, len(files)/10)] {
			fi, _ := os.Stat(p)
			b := make([]byte, min(fi.Size(), 256<<10))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Remove(files[len(files)-1]); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "new-since-full"), bytes.Repeat([]byte("new "), 50000), 0o644); err != nil {
			t.Fatal(err)
		}
		fstest.Run(t, "sync")
		fstest.Umount(t, mnt)
	}
	d.copyIn(t)
}

func deltaFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func deltaTable(t *testing.T, disk string) *layout.Table {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tab, err := layout.Read(f, fi.Size(), 512)
	if err != nil {
		t.Fatal(err)
	}
	tab.Raw = nil
	return tab
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// checkTarget checks a restored disk: a clean table, each filesystem clean
// with want's files, and (grown) filling its partition.
func checkTarget(t *testing.T, d *deltaDisk, target string, want [2]map[string]string, grown map[int]bool) (fsSizes []int64) {
	t.Helper()
	if deltaTable(t, target).Type == layout.MBR {
		if out := fstest.Run(t, fstest.Tool(t, "sfdisk"), "--verify", target); !strings.Contains(out, "No errors detected") {
			t.Errorf("sfdisk --verify %s: %s", target, out)
		}
	} else if out := fstest.Run(t, fstest.Tool(t, "sgdisk"), "-v", target); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v %s: %s", target, out)
	}
	src, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i, p := range deltaTable(t, target).Partitions {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.fs", p.Number))
		dst, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(dst, io.NewSectionReader(src, p.Start, p.Size))
		dst.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := d.cases[i]
		fstest.Check(t, c, file)
		fstest.SameTree(t, fmt.Sprintf("%s p%d", filepath.Base(target), p.Number), want[i], fstest.ReadTree(t, c, file))
		fsBytes := int64(0)
		switch c.FS {
		case "ext4":
			out := fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", file)
			fsBytes = fstest.E2fsField(t, out, "Block count") * fstest.E2fsField(t, out, "Block size")
		case "ntfs":
			out := fstest.Run(t, fstest.Tool(t, "ntfsinfo"), "-f", "-m", file)
			fsBytes = ntfsInfoField(t, out, "Volume Size in Clusters") * ntfsInfoField(t, out, "Cluster Size")
		}
		fsSizes = append(fsSizes, fsBytes)
		srcSize := int64(d.cases[i].SizeMiB) * deltaMiB
		switch {
		case grown[p.Number] && (fsBytes > p.Size || p.Size-fsBytes > 4*deltaMiB):
			t.Errorf("p%d: the %s is %d bytes in a partition of %d: not grown to fill it", p.Number, c.FS, fsBytes, p.Size)
		case !grown[p.Number] && fsBytes > srcSize:
			t.Errorf("p%d: the %s is %d bytes, larger than the %d stored", p.Number, c.FS, fsBytes, srcSize)
		}
	}
	return fsSizes
}

func ntfsInfoField(t *testing.T, out, name string) int64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == name {
			var n int64
			fmt.Sscan(strings.TrimSpace(v), &n)
			return n
		}
	}
	t.Fatalf("ntfsinfo shows no %q:\n%s", name, out)
	return 0
}

func TestDeltaOntoLaidOutDisk(t *testing.T) {
	d := newDeltaDisk(t)
	ctx := context.Background()
	full, inc := filepath.Join(d.dir, "full.lbi"), filepath.Join(d.dir, "inc.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: d.disk, Kind: images.KindDisk, Output: full}); err != nil {
		t.Fatal(err)
	}
	wantFull := d.trees(t)
	d.change(t, 1)
	if _, err := Backup(ctx, BackupOptions{Source: d.disk, Kind: images.KindDisk, Output: inc, Incremental: full}); err != nil {
		t.Fatal(err)
	}
	wantInc := d.trees(t)
	if fmt.Sprint(wantInc) == fmt.Sprint(wantFull) {
		t.Fatal("the change made no difference")
	}
	restore := func(image, target string, lo LayoutOptions, delta bool) (*RestoreResult, error) {
		return Restore(ctx, RestoreOptions{Image: image, Target: target, Layout: lo, Delta: delta, Log: testLogger(t),
			Confirm: func(p Plan) error {
				if delta && p.Layout != nil && !p.LayoutKept {
					t.Errorf("the confirmation of a delta restore shows a new layout: %+v", p.Layout)
				}
				return nil
			}})
	}

	// The baseline: a delta onto a copy of the full backup as stored.
	same := filepath.Join(t.TempDir(), "same.img")
	if _, err := restore(full, same, LayoutOptions{}, false); err != nil {
		t.Fatal(err)
	}
	base, err := restore(inc, same, LayoutOptions{}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("delta onto the stored layout: %d chunks kept, %d written", base.SameChunks, base.ChangedChunks)

	for _, tc := range []struct {
		name  string
		size  int64
		lo    LayoutOptions
		grown map[int]bool
	}{
		{"fill-new-ids", 160, LayoutOptions{Mode: layout.Fill, Align: deltaMiB, NewIDs: true}, map[int]bool{2: true}},
		{"manual", 160, LayoutOptions{Mode: layout.Manual, Align: deltaMiB, Sizes: map[int]int64{1: 48 * deltaMiB, 2: 80 * deltaMiB}}, map[int]bool{1: true, 2: true}},
		{"keep-larger", 160, LayoutOptions{Align: deltaMiB}, nil},
		// GPT converted to MBR by the earlier restore.
		{"fill-to-mbr", 160, LayoutOptions{Mode: layout.Fill, Align: deltaMiB, Table: layout.MBR}, map[int]bool{2: true}},
		// Same size and layout, new IDs: the IDs stay.
		{"keep-same-size-new-ids", 100, LayoutOptions{Align: deltaMiB, NewIDs: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := deltaFile(t, filepath.Join(t.TempDir(), "big.img"), tc.size*deltaMiB)
			if _, err := restore(full, target, tc.lo, false); err != nil {
				t.Fatal(err)
			}
			checkTarget(t, d, target, wantFull, tc.grown)
			before := deltaTable(t, target)

			res, err := restore(inc, target, LayoutOptions{}, true)
			if err != nil {
				t.Fatalf("delta restore onto the %s layout: %v", tc.name, err)
			}
			t.Logf("delta: %d chunks kept, %d written; notes %q", res.SameChunks, res.ChangedChunks, res.Notes)
			if after := deltaTable(t, target); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the target's table changed:\nbefore %+v\nafter  %+v", before, after)
			}
			got := checkTarget(t, d, target, wantInc, tc.grown)
			// The same as a full restore of the incremental with that
			// layout: the same partitions, filesystems of the same size.
			fresh := deltaFile(t, filepath.Join(t.TempDir(), "fresh.img"), tc.size*deltaMiB)
			if _, err := restore(inc, fresh, tc.lo, false); err != nil {
				t.Fatal(err)
			}
			if want := checkTarget(t, d, fresh, wantInc, tc.grown); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after the delta the filesystems are %v bytes; a full restore makes them %v", got, want)
			}
			ft, at := deltaTable(t, fresh), deltaTable(t, target)
			for i := range ft.Partitions {
				if f, a := ft.Partitions[i], at.Partitions[i]; f.Start != a.Start || f.Size != a.Size {
					t.Errorf("p%d at %d+%d after the delta; a full restore puts it at %d+%d", f.Number, a.Start, a.Size, f.Start, f.Size)
				}
			}
			// Only what changed is written: what the baseline writes, and
			// a few chunks of filesystem metadata the earlier grow changed.
			if res.SameChunks == 0 || res.ChangedChunks == 0 || res.ChangedChunks > base.ChangedChunks+12 {
				t.Errorf("the delta wrote %d chunks and kept %d; onto the stored layout it writes %d", res.ChangedChunks, res.SameChunks, base.ChangedChunks)
			}
		})
	}

	// One partition, onto the disk a fill restore laid out: compared with
	// (and grown again in) its partition there; the other is not touched.
	t.Run("partition-into-disk", func(t *testing.T) {
		target := deltaFile(t, filepath.Join(t.TempDir(), "big.img"), 160*deltaMiB)
		if _, err := restore(full, target, LayoutOptions{Mode: layout.Fill, Align: deltaMiB}, false); err != nil {
			t.Fatal(err)
		}
		before := deltaTable(t, target)
		res, err := Restore(ctx, RestoreOptions{Image: inc, Target: target, Partition: 2, Delta: true, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("delta: %d chunks kept, %d written; notes %q", res.SameChunks, res.ChangedChunks, res.Notes)
		if after := deltaTable(t, target); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the target's table changed:\nbefore %+v\nafter  %+v", before, after)
		}
		checkTarget(t, d, target, [2]map[string]string{wantFull[0], wantInc[1]}, map[int]bool{2: true})
		if res.SameChunks == 0 || res.ChangedChunks == 0 || res.ChangedChunks > base.ChangedChunks+12 {
			t.Errorf("the delta wrote %d chunks and kept %d", res.ChangedChunks, res.SameChunks)
		}

		// Its partition there is smaller than the image's: refused.
		small := deltaFile(t, filepath.Join(t.TempDir(), "small.img"), 160*deltaMiB)
		fstest.Run(t, fstest.Tool(t, "sgdisk"), "-n1:2048:+32M", "-t1:0700", "-n2:0:+40M", "-t2:8300", small)
		sum := fileHash(t, small)
		_, err = Restore(ctx, RestoreOptions{Image: inc, Target: small, Partition: 2, Delta: true})
		if ExitCode(err) != ExitRefused || !strings.Contains(err.Error(), "smaller than") {
			t.Errorf("exit %d, %v; want a refusal saying partition 2 is too small", ExitCode(err), err)
		}
		if fileHash(t, small) != sum {
			t.Error("a refused delta restore wrote to the target")
		}
	})

	// Partitions that do not correspond: refused, exit 5, nothing written.
	for _, tc := range []struct{ name, want string }{
		{"-n1:2048:+32M -t1:8300 -n2:0:+64M -t2:0700", "partition 1 is of type"},
		{"-n1:2048:+32M -t1:0700", "the target has 1"},
		{"-n1:2048:+32M -t1:0700 -n2:0:+40M -t2:8300", "partition 2 is 40 MiB on the target, smaller"},
		{"", "no partition table"},
	} {
		t.Run("refused"+strings.ReplaceAll(tc.name, " ", ""), func(t *testing.T) {
			target := deltaFile(t, filepath.Join(t.TempDir(), "other.img"), 160*deltaMiB)
			if tc.name != "" {
				fstest.Run(t, append(append([]string{fstest.Tool(t, "sgdisk")}, strings.Fields(tc.name)...), target)...)
			}
			f, _ := os.OpenFile(target, os.O_RDWR, 0)
			f.WriteAt(bytes.Repeat([]byte("old data "), 8*deltaMiB/9), 2*deltaMiB)
			f.Close()
			sum := fileHash(t, target)
			_, err := restore(inc, target, LayoutOptions{}, true)
			if ExitCode(err) != ExitRefused || err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "without --delta") {
				t.Errorf("exit %d, %v; want a refusal (5) saying %q and what to do", ExitCode(err), err, tc.want)
			}
			if fileHash(t, target) != sum {
				t.Error("a refused delta restore wrote to the target")
			}
		})
	}
}

// testLogger logs the engine's steps through t.Logf.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
