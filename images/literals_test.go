package images

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// TestLiteralOnlyDataCompresses: data without repeats but with few
// distinct bytes (base64, as mail and certificates hold it, and hex) is
// compressed by entropy coding alone. klauspost's encoder stores such
// blocks raw unless told to code every block's literals, and C zstd codes
// them: without that, normal and high stored base64 attachments whole.
func TestLiteralOnlyDataCompresses(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 19))
	raw := make([]byte, 3<<20)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	for _, c := range []struct {
		name string
		data []byte
		max  float64 // of the input: 6 of 8 bits for base64, 4 for hex
	}{
		{"base64", []byte(base64.StdEncoding.EncodeToString(raw)), 0.80},
		{"hex", []byte(hex.EncodeToString(raw)), 0.55},
	} {
		for _, level := range []Level{LevelNormal, LevelHigh} {
			var buf bytes.Buffer
			w, err := NewStreamWriter(&buf, "lit", WriterOptions{Compression: level})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.AddStream(context.Background(), bytes.NewReader(c.data), int64(len(c.data)), StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}}); err != nil {
				t.Fatal(err)
			}
			im := openBytes(t, buf.Bytes(), "lit")
			checkReads(t, im, c.data)
			got := float64(im.Info().DataBytes) / float64(len(c.data))
			t.Logf("%s at %v: %.3f of its size", c.name, level, got)
			if got > c.max {
				t.Errorf("%s at %v is stored at %.2f of its size, want at most %.2f: its literals were not entropy-coded", c.name, level, got, c.max)
			}
		}
	}
}
