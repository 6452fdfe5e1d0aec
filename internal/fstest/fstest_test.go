//go:build linux

package fstest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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

// A seed always draws the same geometries (the property test's failures
// reproduce from it), and every geometry is whole sectors that fit their
// disk.
func TestRandomGeometry(t *testing.T) {
	for i := range 500 {
		a := RandomGeometry(rand.New(rand.NewPCG(7, uint64(i))))
		b := RandomGeometry(rand.New(rand.NewPCG(7, uint64(i))))
		if a.String() != b.String() || fmt.Sprint(a.Args) != fmt.Sprint(b.Args) {
			t.Fatalf("case %d drew %s %q, then %s %q", i, a, a.Args, b, b.Args)
		}
		for _, g := range []*Geometry{&a, a.Second} {
			if g == nil {
				continue
			}
			if g.Size <= 0 || g.Size%512 != 0 || g.Block < 512 || g.Block > 64<<10 {
				t.Errorf("case %d: %s: size %d, block %d", i, g, g.Size, g.Block)
			}
		}
		if a.Table != "" {
			end := a.Start + a.Size/512
			if s := a.Second; s != nil {
				if s.Start <= end {
					t.Errorf("case %d: %s: partition 2 at %d overlaps partition 1 (ends at %d)", i, a, s.Start, end)
				}
				end = s.Start + s.Size/512
			}
			if end*512 > a.DiskSize {
				t.Errorf("case %d: %s: partitions end at byte %d of a %d-byte disk", i, a, end*512, a.DiskSize)
			}
		}
	}
}
