package images_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
)

// ReadAt with a chunk cache: every read is right whatever the budget, a
// cache that holds the whole stream decodes each chunk once, and one too
// small for the reads decodes again (the budget is kept, not exceeded).
func TestReadAtCache(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 3))
	disk := make([]byte, 8<<20)
	for i := range disk {
		disk[i] = byte(r.IntN(16)) // compressible, not constant
	}
	path := filepath.Join(t.TempDir(), "d.lbi")
	w, err := images.Create(path, images.WriterOptions{Compression: images.LevelFast})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream(ctx, bytes.NewReader(disk), int64(len(disk)), images.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&images.Metadata{Streams: []images.Stream{{Kind: images.KindDisk, Source: "t"}}}); err != nil {
		t.Fatal(err)
	}
	im, err := images.Open(path, images.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	for _, budget := range []int64{0, 1 << 20, 64 << 20} {
		sr, _ := im.Stream(0)
		sr.SetCache(budget)
		for pass := range 2 {
			for off := int64(0); off < int64(len(disk)); off += 4096 {
				// Each chunk is read in several pieces, out of order.
				o := (off * 7919) % int64(len(disk)) / 4096 * 4096
				b := make([]byte, 4096)
				if _, err := sr.ReadAt(b, o); err != nil || !bytes.Equal(b, disk[o:o+4096]) {
					t.Fatalf("budget %d pass %d: read at %d differs (%v)", budget, pass, o, err)
				}
			}
		}
		chunks := sr.Decoded()
		t.Logf("budget %d: %d chunks decoded for 2 passes", budget, chunks)
		if budget == 64<<20 && chunks > int64(len(disk)/(32<<10)) {
			t.Errorf("a cache that holds the stream decoded %d chunks", chunks)
		}
		if budget == 0 && chunks < 1000 {
			t.Errorf("a one-chunk cache decoded only %d chunks for scattered reads", chunks)
		}
	}
}
