package engine

import (
	"context"
	"errors"
	"hash/maphash"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// The read-back verification catches a byte that changed on the medium
// after it was written, in data and in holes, and names the offset.
func TestVerifierCatchesChangedBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   int64
	}{{"data", 90<<20 + 12345}, {"hole", 100<<20 + 7}, {"none", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.img")
			f, _ := os.Create(path)
			f.Truncate(160 << 20)
			f.Close()
			dst, err := blockdev.Open(path, blockdev.ReadWrite)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			v := newVerifier(context.Background(), dst, nil)
			r := rand.New(rand.NewPCG(1, 2))
			var off int64
			for off < 96<<20 {
				b := make([]byte, 256<<10+r.IntN(1<<20))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				dst.WriteAt(b, off)
				v.add(segment{off: off, n: int64(len(b)), sum: maphash.Bytes(v.hseed, b)})
				off += int64(len(b))
			}
			dst.Sync()
			if tc.at >= 0 {
				// The medium changes behind the writer's back, after the
				// write and before the read-back of that range: everything
				// past the first 64 MiB window is still pending here (the
				// window is handed over only when the hole below fills it).
				raw, _ := os.OpenFile(path, os.O_RDWR, 0)
				raw.WriteAt([]byte{0xAA}, tc.at)
				raw.Close()
			}
			v.add(segment{off: off, n: dst.Size - off, zero: true}) // a long hole
			err = v.wait(true)
			if tc.at < 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrVerify naming %s", err, path)
			}
		})
	}
}
