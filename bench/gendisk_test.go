package bench

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os/exec"
	"testing"
)

func sumGenerate(t *testing.T, size int64, seed uint64) [32]byte {
	t.Helper()
	h := sha256.New()
	if err := Generate(h, size, seed); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func TestGenerateDeterministic(t *testing.T) {
	const size = 64 << 20
	first := sumGenerate(t, size, 1)
	for _, tc := range []struct {
		name string
		seed uint64
		same bool
	}{
		{"same seed", 1, true},
		{"other seed", 2, false},
		{"seed zero", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sumGenerate(t, size, tc.seed)
			if (got == first) != tc.same {
				t.Errorf("seed %d: SHA-256 %x, seed 1: %x; want same=%v", tc.seed, got, first, tc.same)
			}
		})
	}
}

// TestGenerateLayout checks the segment rules and the mix of kinds by bytes.
func TestGenerateLayout(t *testing.T) {
	for _, tc := range []struct {
		size      int64
		seed      uint64
		tolerance float64 // percentage points
	}{
		{2 << 30, 1, 2},
		{2 << 30, 7, 2},
		{256 << 20, 1, 5},
		{64 << 20, 1, 12}, // a few segments of up to 16 MiB: only roughly
		{64<<20 + 123, 3, 12},
	} {
		segs := Plan(tc.size, tc.seed)
		var bytesOf [numKinds]int64
		var off int64
		for i, s := range segs {
			if s.Offset != off {
				t.Fatalf("size %d seed %d: segment %d at %d, want %d", tc.size, tc.seed, i, s.Offset, off)
			}
			last := i == len(segs)-1
			if !last && (s.Length%blockSize != 0 || s.Length < minSegment || s.Length > maxSegment) {
				t.Errorf("size %d seed %d: segment %d is %d bytes; want a multiple of 4 KiB in [64 KiB, 16 MiB]", tc.size, tc.seed, i, s.Length)
			}
			if s.Kind == KindDup {
				src := segs[s.Source]
				if s.Source >= i || src.Kind == KindZero || src.Kind == KindDup || s.Content != src.Kind || s.Length > src.Length {
					t.Errorf("size %d seed %d: segment %d duplicates %+v; want an earlier, at least as long text or random segment", tc.size, tc.seed, i, src)
				}
			} else if s.Source != i || s.Content != s.Kind {
				t.Errorf("size %d seed %d: segment %d is %+v; want Source = own index, Content = Kind", tc.size, tc.seed, i, s)
			}
			bytesOf[s.Kind] += s.Length
			off += s.Length
		}
		if off != tc.size {
			t.Fatalf("size %d seed %d: segments cover %d bytes", tc.size, tc.seed, off)
		}
		for k := range numKinds {
			got := 100 * float64(bytesOf[k]) / float64(tc.size)
			if d := got - float64(kindPercent[k]); d > tc.tolerance || d < -tc.tolerance {
				t.Errorf("size %d seed %d: %v is %.1f%% of bytes, want %d%% ± %.0f", tc.size, tc.seed, k, got, kindPercent[k], tc.tolerance)
			}
		}
		t.Logf("size %d seed %d: %d segments; text %.1f%%, random %.1f%%, zero %.1f%%, dup %.1f%%", tc.size, tc.seed, len(segs),
			100*float64(bytesOf[KindText])/float64(tc.size), 100*float64(bytesOf[KindRandom])/float64(tc.size),
			100*float64(bytesOf[KindZero])/float64(tc.size), 100*float64(bytesOf[KindDup])/float64(tc.size))
	}
}

// TestGenerateContent checks that the bytes Generate writes match the plan:
// each segment holds what its kind says, and duplicates equal their source.
func TestGenerateContent(t *testing.T) {
	const size, seed = 64 << 20, 5
	var disk bytes.Buffer
	// A writer without ReadFrom, so Generate's own writes are what is tested.
	if err := Generate(struct{ io.Writer }{&disk}, size, seed); err != nil {
		t.Fatal(err)
	}
	if disk.Len() != size {
		t.Fatalf("Generate wrote %d bytes, want %d", disk.Len(), size)
	}
	b := disk.Bytes()
	kinds := map[Kind]int{}
	for i, s := range Plan(size, seed) {
		seg := b[s.Offset : s.Offset+s.Length]
		kinds[s.Kind]++
		switch s.Kind {
		case KindZero:
			if !bytes.Equal(seg, make([]byte, len(seg))) {
				t.Errorf("zero segment %d at %d holds non-zero bytes", i, s.Offset)
			}
		case KindText:
			for j, c := range seg {
				if c != '\n' && (c < ' ' || c > '~') {
					t.Errorf("text segment %d at %d: byte %d is %#x", i, s.Offset, j, c)
					break
				}
			}
		case KindRandom:
			var high int
			for _, c := range seg {
				high += int(c >> 7)
			}
			if f := float64(high) / float64(len(seg)); f < 0.45 || f > 0.55 {
				t.Errorf("random segment %d at %d: %.2f of bytes have the top bit set, want about half", i, s.Offset, f)
			}
		case KindDup:
			src := Plan(size, seed)[s.Source]
			if !bytes.Equal(seg, b[src.Offset:src.Offset+s.Length]) {
				t.Errorf("dup segment %d at %d differs from its source at %d", i, s.Offset, src.Offset)
			}
		}
	}
	t.Logf("segments by kind: %v", kinds)
}

// TestTextCompressibility cross-checks with the zstd CLI that text segments
// compress like prose at level 3 (2.5–4×), not like a repeated pool.
func TestTextCompressibility(t *testing.T) {
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd not installed:", err)
	}
	text := segmentContent(nil, Segment{Length: 16 << 20, Kind: KindText, Content: KindText, Source: 3}, 1, newVocabulary(1))
	cmd := exec.Command(zstd, "-3", "-q", "-c")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	ratio := float64(len(text)) / float64(len(out))
	t.Logf("zstd -3: %d → %d bytes, %.2f×", len(text), len(out), ratio)
	if ratio < 2.5 || ratio > 4 {
		t.Errorf("text compresses %.2f× with zstd -3, want 2.5–4×", ratio)
	}
}

func BenchmarkGenerate(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	for b.Loop() {
		if err := Generate(io.Discard, size, 1); err != nil {
			b.Fatal(err)
		}
	}
}
