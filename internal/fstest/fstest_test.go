package fstest

import (
	"bytes"
	"os"
	"testing"
)

func TestCases(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Cases {
		if seen[c.Name] || c.Tool == "" || c.SizeMiB <= 0 || (c.FS != "swap" && len(c.Fsck) == 0) {
			t.Errorf("bad or repeated case %+v", c)
		}
		seen[c.Name] = true
		if got, ok := Lookup(c.Name); !ok || got.Name != c.Name {
			t.Errorf("Lookup(%q) = %+v, %v", c.Name, got, ok)
		}
	}
	if _, ok := Lookup("no such fs"); ok {
		t.Error("Lookup found a case that does not exist")
	}
}

// MakeDirty leaves garbage where mkfs writes nothing, and a valid,
// populated filesystem the checker accepts.
func TestMakeDirty(t *testing.T) {
	c, _ := Lookup("vfat12")
	img := MakeDirty(t, t.TempDir(), c)
	want := HashTree(t, Populate(t, c, img))
	Check(t, c, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if tail := b[len(b)-4096:]; bytes.Count(tail, []byte{0}) > 100 {
		t.Errorf("the last 4 KiB hold %d zero bytes; want garbage", bytes.Count(tail, []byte{0}))
	}
	SameTree(t, "the image", want, ReadTree(t, c, img))
}
