package engine

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// cowFile against a plain byte slice: random writes (partial blocks,
// across blocks, at the end) and reads, seeds printed; the base never
// changes.
func TestCOWMatchesAPlainCopy(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		size := int64(r.IntN(64*cowBlock) + 1)
		base := make([]byte, size)
		for i := range base {
			base[i] = byte(r.IntN(256))
		}
		orig := bytes.Clone(base)
		want := bytes.Clone(base)
		c, err := newCOW(bytes.NewReader(base), size, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			off := r.Int64N(size)
			n := r.Int64N(min(size-off, 3*cowBlock)) + 1
			if r.IntN(2) == 0 {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(r.IntN(256))
				}
				if _, err := c.WriteAt(p, off); err != nil {
					t.Fatalf("seed %d: write %d+%d: %v", seed, off, n, err)
				}
				copy(want[off:], p)
			} else {
				p := make([]byte, n)
				if _, err := c.ReadAt(p, off); err != nil {
					t.Fatalf("seed %d: read %d+%d: %v", seed, off, n, err)
				}
				if !bytes.Equal(p, want[off:off+n]) {
					t.Fatalf("seed %d: read %d+%d differs", seed, off, n)
				}
			}
		}
		all := make([]byte, size)
		if _, err := c.ReadAt(all, 0); err != nil || !bytes.Equal(all, want) || !bytes.Equal(base, orig) {
			t.Fatalf("seed %d: whole view differs (%v) or the base changed", seed, err)
		}
		if _, err := c.WriteAt([]byte{1}, size); err == nil {
			t.Errorf("seed %d: a write past the end was taken", seed)
		}
		c.Close()
	}
}
