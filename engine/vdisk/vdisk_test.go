package vdisk

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Every format against qemu-img: generated disks (sizes not multiples of
// the block sizes, data in runs of random length at random places, writes
// cut at random lengths as image chunks are), checked with qemu-img check
// and compared with the same bytes written plainly. Seeds are printed.
func TestFormatsAgainstQemuImg(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img is missing: run make deps")
	}
	for seed := uint64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewPCG(seed, 2))
		size := (int64(r.IntN(96<<20)) + 1<<20) / 512 * 512
		if seed == 1 {
			size = 600 << 20 // more than one qcow2 L2 table's 512 MiB
		}
		dir := t.TempDir()
		ref := filepath.Join(dir, "ref.raw")
		rf, _ := os.Create(ref)
		rf.Truncate(size)
		outs := map[string]Writer{}
		files := map[string]*os.File{}
		for _, f := range Formats {
			fh, err := os.Create(filepath.Join(dir, "disk."+f))
			if err != nil {
				t.Fatal(err)
			}
			w, err := New(fh, f, size)
			if err != nil {
				t.Fatal(err)
			}
			outs[f], files[f] = w, fh
		}
		var off int64
		for off < size {
			off += r.Int64N(8 << 20) // a hole
			n := min(r.Int64N(3<<20)+1, size-off)
			if n <= 0 {
				break
			}
			p := make([]byte, n)
			for i := range p {
				if r.IntN(8) != 0 {
					p[i] = byte(r.IntN(256))
				}
			}
			rf.WriteAt(p, off)
			for _, w := range outs {
				for done := int64(0); done < n; { // cut as chunks are
					m := min(n-done, r.Int64N(200<<10)+1)
					if _, err := w.WriteAt(p[done:done+m], off+done); err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
					done += m
				}
			}
			off += n
		}
		rf.Close()
		for f, w := range outs {
			if err := w.Close(); err != nil {
				t.Fatalf("seed %d %s: %v", seed, f, err)
			}
			files[f].Close()
			p := files[f].Name()
			if f != "raw" {
				if out, err := exec.Command("qemu-img", "check", "-f", f, p).CombinedOutput(); err != nil {
					t.Errorf("seed %d: qemu-img check %s: %v\n%s", seed, f, err, out)
				}
			}
			if out, err := exec.Command("qemu-img", "compare", "-f", f, "-F", "raw", p, ref).CombinedOutput(); err != nil {
				t.Errorf("seed %d (%d bytes): qemu-img compare %s: %v\n%s", seed, size, f, err, out)
			}
			st, _ := os.Stat(p)
			t.Logf("seed %d: %s of a %d MiB disk: %d MiB file", seed, f, size>>20, st.Size()>>20)
		}
		if _, err := outs["raw"].WriteAt([]byte{1}, 0); err == nil {
			t.Errorf("a write before the last one was taken")
		}
	}
}
