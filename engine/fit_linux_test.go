package engine

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// shrinkFS on a copy-on-write view: the filesystem fits its new size and
// checks clean there, its files are all there, and the source file is
// untouched.
func TestShrinkOnAView(t *testing.T) {
	for _, name := range []string{"ext4", "ntfs"} {
		t.Run(name, func(t *testing.T) {
			c, _ := fstest.Lookup(name)
			dir := t.TempDir()
			img := fstest.Make(t, dir, c)
			mnt, umount := fstest.MountGeometry(t, c, img, false)
			fstest.FillRandom(t, filepath.Join(mnt, "a.bin"), 20<<20, 3)
			want := fstest.Snapshot(t, mnt, false)
			umount()
			before := fileSum(t, img)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			ctx := context.Background()
			min, err := fsMinSize(ctx, f, st.Size(), c.FS)
			if err != nil {
				t.Fatal(err)
			}
			newSize := (min + min/50 + 16<<20) / 4096 * 4096
			t.Logf("%s: %d bytes, minimum %d, shrinking to %d", name, st.Size(), min, newSize)
			cow, err := shrinkFS(ctx, f, st.Size(), newSize, c.FS)
			if err != nil {
				t.Fatal(err)
			}
			defer cow.Close()
			if fileSum(t, img) != before {
				t.Error("the source changed")
			}
			out := filepath.Join(dir, "shrunk.img")
			b := make([]byte, newSize)
			if _, err := cow.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(out, b, 0o600)
			fstest.Check(t, c, out)
			m2, umount2 := fstest.MountGeometry(t, c, out, true)
			defer umount2()
			if d := want.Diff(fstest.Snapshot(t, m2, false), 5); len(d) > 0 {
				t.Errorf("after the shrink: %v", d)
			}
			t.Logf("scratch: %d bytes", cow.ScratchBytes())
		})
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
