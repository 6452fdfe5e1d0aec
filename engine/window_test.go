package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestWindowReader: random reads, from several goroutines at once, of a
// generated file through windowReader return the file's bytes; a failing
// fetch fails only the reads of its window, and a later read retries it.
func TestWindowReader(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 5))
	data := make([]byte, 3*windowSize*windows/2+r.IntN(windowSize))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	// Each reader gets its own counters: read-ahead of an earlier one may
	// still be running.
	getter := func(gets, failNext *atomic.Int64) func(buf []byte, off int64) ([]byte, error) {
		return func(buf []byte, off int64) ([]byte, error) {
			gets.Add(1)
			// failNext holds 1 + the offset of the one fetch to fail.
			if failNext.CompareAndSwap(off+1, 0) {
				return nil, errors.New("injected")
			}
			copy(buf, data[off:off+int64(len(buf))])
			return buf, nil
		}
	}
	var g1, f1 atomic.Int64
	wr := newWindowReader(getter(&g1, &f1), int64(len(data)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rr := rand.New(rand.NewPCG(seed, uint64(g)))
			for range 60 {
				off := rr.Int64N(int64(len(data)))
				p := make([]byte, 1+rr.IntN(windowSize))
				n, err := wr.ReadAt(p, off)
				want := min(len(p), len(data)-int(off))
				if n != want || (n < len(p) && err != io.EOF) || (n == len(p) && err != nil) || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- fmt.Errorf("ReadAt(%d bytes at %d) = %d, %v", len(p), off, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Sequential reading fetches each window about once.
	var gets, f2 atomic.Int64
	wr = newWindowReader(getter(&gets, &f2), int64(len(data)))
	p := make([]byte, 100<<10)
	for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
		wr.ReadAt(p, off)
	}
	if want := int64((len(data) + windowSize - 1) / windowSize); gets.Load() != want {
		t.Errorf("a sequential read fetched %d windows, the file has %d", gets.Load(), want)
	}
	// A failed fetch is not kept.
	var g3, failNext atomic.Int64
	wr = newWindowReader(getter(&g3, &failNext), int64(len(data)))
	failNext.Store(1)
	if _, err := wr.ReadAt(p, 0); err == nil {
		t.Fatal("the injected failure was not reported")
	}
	if _, err := wr.ReadAt(p, 0); err != nil {
		t.Fatalf("a read after a failed fetch: %v", err)
	}
}
