package blockdev

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// strictDisk fails every read that is not whole sectors at a sector
// boundary, as a Windows disk handle does.
type strictDisk struct {
	data   []byte
	sector int64
}

var errUnaligned = errors.New("unaligned")

func (d strictDisk) ReadAt(p []byte, off int64) (int, error) {
	if off%d.sector != 0 || int64(len(p))%d.sector != 0 {
		return 0, errUnaligned
	}
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Random ranges (seeded; the seed is printed) read through sectorReader
// equal the bytes, for 512- and 4096-byte sectors, within and across the
// end of the disk.
func TestSectorReader(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for _, sector := range []int64{512, 4096} {
		data := make([]byte, 64*sector)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		s := sectorReader{strictDisk{data, sector}, sector}
		for range 2000 {
			off := r.Int64N(int64(len(data)))
			n := r.IntN(int(3 * sector))
			if r.IntN(4) == 0 {
				off = off / sector * sector
			}
			p := make([]byte, n)
			got, err := s.ReadAt(p, off)
			want := min(int64(n), int64(len(data))-off)
			if int64(got) != want || !bytes.Equal(p[:got], data[off:off+want]) {
				t.Fatalf("sector %d: ReadAt(%d bytes at %d) = %d, %v; want %d bytes", sector, n, off, got, err, want)
			}
			if want < int64(n) && err == nil {
				t.Fatalf("sector %d: short read at the end without an error", sector)
			}
			if want == int64(n) && err != nil {
				t.Fatalf("sector %d: ReadAt(%d at %d): %v", sector, n, off, err)
			}
		}
	}
}
