package blockdev

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
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

func (d strictDisk) WriteAt(p []byte, off int64) (int, error) {
	if off%d.sector != 0 || int64(len(p))%d.sector != 0 {
		return 0, errUnaligned
	}
	if off+int64(len(p)) > int64(len(d.data)) {
		return 0, io.ErrShortWrite
	}
	return copy(d.data[off:], p), nil
}

// Random writes (seeded) through sectorWriter, from several goroutines at
// once into neighbouring ranges, leave the disk as the same writes to a
// plain byte slice do.
func TestSectorWriter(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	for _, sector := range []int64{512, 4096} {
		disk := strictDisk{make([]byte, 64*sector), sector}
		want := make([]byte, len(disk.data))
		w := sectorWriter{disk, sector, &sync.Mutex{}}
		// Each goroutine owns a disjoint stripe of bytes, unaligned, so
		// stripes share sectors.
		const workers = 8
		stripe := int64(len(want)) / workers
		type write struct {
			off int64
			p   []byte
		}
		plans := make([][]write, workers)
		for g := range workers {
			for range 200 {
				n := 1 + r.Int64N(min(stripe-1, 3*sector))
				off := int64(g)*stripe + r.Int64N(stripe-n+1)
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(r.Uint32())
				}
				plans[g] = append(plans[g], write{off, p})
				copy(want[off:], p)
			}
		}
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, x := range plans[g] {
					if n, err := w.WriteAt(x.p, x.off); err != nil || n != len(x.p) {
						t.Errorf("WriteAt(%d at %d) = %d, %v", len(x.p), x.off, n, err)
					}
				}
			}()
		}
		wg.Wait()
		if !bytes.Equal(disk.data, want) {
			t.Fatalf("sector %d: the disk differs from the writes", sector)
		}
	}
	// A write past the end fails and says so.
	w := sectorWriter{strictDisk{make([]byte, 4096), 512}, 512, &sync.Mutex{}}
	if _, err := w.WriteAt([]byte{1, 2}, 4095); err == nil {
		t.Errorf("write across the end accepted")
	}
}
