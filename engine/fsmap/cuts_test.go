package fsmap

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestCutsAtLargeFiles: on real ext2/3/4 (extents and indirect maps, 1 and
// 4 KiB blocks, bigalloc), Cuts hold where every run of a large file's data
// starts and ends, and nothing inside a small file.
func TestCutsAtLargeFiles(t *testing.T) {
	dir := t.TempDir()
	big, small := filepath.Join(dir, "big"), filepath.Join(dir, "small")
	rnd := rand.New(rand.NewSource(5))
	for _, f := range []struct {
		path string
		n    int
	}{{big, CutMinFile + 300<<10 + 123}, {small, CutMinFile - 5000}} {
		b := make([]byte, f.n)
		rnd.Read(b)
		if err := os.WriteFile(f.path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		fstest.Case
		bs int64
	}{
		{fstest.Case{Name: "ext4", SizeMiB: 32, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "4096"}}, 4096},
		{fstest.Case{Name: "ext2-1k", SizeMiB: 16, Tool: "mkfs.ext2", Args: []string{"-q", "-F", "-b", "1024"}}, 1024},
		{fstest.Case{Name: "ext3-2k", SizeMiB: 16, Tool: "mkfs.ext3", Args: []string{"-q", "-F", "-b", "2048"}}, 2048},
		{fstest.Case{Name: "ext4-bigalloc", SizeMiB: 32, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-O", "bigalloc", "-b", "1024", "-C", "16384"}}, 1024},
	} {
		t.Run(c.Name, func(t *testing.T) {
			img := fstest.Make(t, t.TempDir(), c.Case)
			debugfsW(t, img, "write "+small+" a-small", "write "+big+" big", "mkdir d", "write "+small+" d/small", "write "+big+" d/copy")
			m := readMap(t, img)
			if m.Reason != "" {
				t.Fatalf("fell back: %s", m.Reason)
			}
			if !slices.IsSorted(m.Cuts) || len(slices.Compact(slices.Clone(m.Cuts))) != len(m.Cuts) {
				t.Fatalf("cuts not sorted and distinct: %v", m.Cuts)
			}
			want := map[int64]bool{}
			for _, f := range []string{"/big", "/d/copy"} {
				for _, r := range blockRuns(extFileBlocks(t, img, f)) {
					want[r[0]*c.bs], want[r[1]*c.bs] = true, true
					for _, off := range []int64{r[0] * c.bs, r[1] * c.bs} {
						if _, ok := slices.BinarySearch(m.Cuts, off); !ok {
							t.Errorf("%s: no cut at %d, where a run of its data starts or ends (cuts %v)", f, off, m.Cuts)
						}
					}
				}
			}
			for _, f := range []string{"/a-small", "/d/small"} {
				for _, r := range blockRuns(extFileBlocks(t, img, f)) {
					for _, cut := range m.Cuts {
						if cut > r[0]*c.bs && cut <= r[1]*c.bs && !want[cut] {
							t.Errorf("%s (smaller than CutMinFile): cut at %d, inside or at the end of its blocks %d–%d", f, cut, r[0], r[1])
						}
					}
				}
			}
		})
	}
}

// blockRuns turns a list of blocks into runs [first, end).
func blockRuns(blks []int64) [][2]int64 {
	var runs [][2]int64
	for _, b := range blks {
		if k := len(runs) - 1; k >= 0 && runs[k][1] == b {
			runs[k][1]++
			continue
		}
		runs = append(runs, [2]int64{b, b + 1})
	}
	return runs
}

// TestCutsByContent: on FAT32, exFAT and NTFS (files written by mtools,
// the kernel and ntfs-3g), a large file and its copy each start and end at
// a cut: found by their content in the image, as written contiguously on a
// fresh volume.
func TestCutsByContent(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	data := make([]byte, CutMinFile+200<<10+77)
	rand.New(rand.NewSource(6)).Read(data)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fstest.Case
		cluster int64
		fill    func(t *testing.T, img string)
	}{
		{fstest.Case{Name: "vfat32", SizeMiB: 40, Tool: "mkfs.vfat", Args: []string{"-F", "32", "-s", "1"}}, 512, func(t *testing.T, img string) {
			fstest.Run(t, fstest.Tool(t, "mcopy"), "-i", img, big, "::/big")
			fstest.Run(t, fstest.Tool(t, "mmd"), "-i", img, "::/d")
			fstest.Run(t, fstest.Tool(t, "mcopy"), "-i", img, big, "::/d/copy")
		}},
		{fstest.Case{Name: "exfat", SizeMiB: 16, Tool: "mkfs.exfat", Args: []string{"-c", "8192"}, FS: "exfat"}, 8192, func(t *testing.T, img string) {
			ec, _ := fstest.Lookup("exfat")
			mnt := fstest.Mount(t, ec, img, false)
			fstest.Run(t, "cp", big, filepath.Join(mnt, "big"))
			fstest.Run(t, "mkdir", filepath.Join(mnt, "d"))
			fstest.Run(t, "cp", big, filepath.Join(mnt, "d", "copy"))
			fstest.Umount(t, mnt)
		}},
		{fstest.Case{Name: "ntfs", SizeMiB: 32, Tool: "mkntfs", Args: []string{"-F", "-Q", "-q", "-c", "4096"}, FS: "ntfs", Access: fstest.ViaNTFS3G}, 4096, func(t *testing.T, img string) {
			mnt := fstest.Mount(t, fstest.Case{Name: "ntfs", FS: "ntfs", Access: fstest.ViaNTFS3G}, img, false)
			fstest.Run(t, "cp", big, filepath.Join(mnt, "big"))
			fstest.Run(t, "mkdir", filepath.Join(mnt, "d"))
			fstest.Run(t, "cp", big, filepath.Join(mnt, "d", "copy"))
			fstest.Umount(t, mnt)
		}},
	} {
		t.Run(c.Name, func(t *testing.T) {
			img := fstest.Make(t, t.TempDir(), c.Case)
			c.fill(t, img)
			m := readMap(t, img)
			if m.Reason != "" {
				t.Fatalf("fell back: %s", m.Reason)
			}
			all := readAll(t, img)
			found := 0
			for o := 0; ; {
				k := bytes.Index(all[o:], data[:4096])
				if k < 0 {
					break
				}
				off := int64(o + k)
				o += k + 1
				if !bytes.Equal(all[off:off+int64(len(data))], data) {
					t.Fatalf("the file at %d is not contiguous", off)
				}
				found++
				end := off + (int64(len(data))+c.cluster-1)/c.cluster*c.cluster
				for _, cut := range []int64{off, end} {
					if _, ok := slices.BinarySearch(m.Cuts, cut); !ok {
						t.Errorf("no cut at %d, where a copy of the file starts or ends (cuts %v)", cut, m.Cuts)
					}
				}
			}
			if found != 2 {
				t.Fatalf("the file is %d times in the image, want 2", found)
			}
		})
	}
}
