package images

import (
	"context"
	"sync"
)

// ordered runs work on the items produce emits, on several goroutines, and
// hands the results to consume one at a time in the order they were
// emitted. At most window items are between emit and consume, which bounds
// memory. A work error is reported when its turn to be consumed comes, so
// the first error in stream order wins (check reports the first bad offset).
//
// produce runs on its own goroutine; work on `workers` goroutines; consume
// on the caller's.
func ordered[T, R any](ctx context.Context, workers, window int,
	produce func(emit func(T) error) error,
	work func(item T) (R, error),
	consume func(R) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers = max(workers, 1)
	window = max(window, workers+1)

	type job struct {
		seq  int
		item T
	}
	type res struct {
		seq int
		r   R
		err error
	}
	tokens := make(chan struct{}, window)
	jobs := make(chan job)
	results := make(chan res, window)
	prodErr := make(chan error, 1)

	go func() {
		seq := 0
		err := produce(func(it T) error {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			select {
			case jobs <- job{seq, it}:
				seq++
				return nil
			case <-ctx.Done():
				<-tokens
				return context.Cause(ctx)
			}
		})
		close(jobs)
		prodErr <- err
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var r R
				err := context.Cause(ctx)
				if err == nil {
					r, err = work(j.item)
				}
				results <- res{j.seq, r, err}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	pending := map[int]res{}
	next := 0
	var first error
	for r := range results {
		if first != nil {
			continue // drain so every goroutine ends
		}
		pending[r.seq] = r
		for first == nil {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-tokens
			if p.err != nil {
				first = p.err
			} else {
				first = consume(p.r)
			}
			if first != nil {
				cancel(first)
			}
		}
	}
	if err := <-prodErr; first == nil {
		first = err
	}
	return first
}

// bufPool is a free list of byte buffers of at least one capacity, for the
// chunk buffers a pipeline hands around. Unlike sync.Pool, which every
// garbage collection empties, it keeps up to keep buffers for as long as
// it lives, so a pipeline allocates (and the runtime zeroes) its 2.3 MB
// buffers once, not again after every collection. keep bounds what it
// retains; buffers beyond it go to the collector.
type bufPool struct {
	free chan *[]byte
	size int
}

func newBufPool(keep, size int) *bufPool {
	return &bufPool{free: make(chan *[]byte, keep), size: size}
}

// Get returns an empty buffer with a capacity of at least the pool's size.
func (p *bufPool) Get() *[]byte {
	select {
	case b := <-p.free:
		*b = (*b)[:0]
		return b
	default:
		b := make([]byte, 0, p.size)
		return &b
	}
}

// Put gives b back; one too small (an encoder replaced it) is dropped.
func (p *bufPool) Put(b *[]byte) {
	if b == nil || cap(*b) < p.size {
		return
	}
	select {
	case p.free <- b:
	default:
	}
}
