package engine

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// verifier reads back what a restore wrote, behind the writer: the writer
// hands it segments; every verifyWindow bytes it flushes that range to the
// medium and drops it from the cache (FlushRange), and its readers read the
// range back and compare hashes while the writer goes on. Reading back thus
// overlaps decoding and writing instead of following them.
type verifier struct {
	ctx     context.Context
	dst     *blockdev.Device
	tr      *tracker
	windows chan []segment
	segs    chan segment
	pending []segment
	pendN   int64
	added   int64 // bytes handed over by add: the read-back's total
	wg      sync.WaitGroup
	mu      sync.Mutex
	first   error
	bad     int64
	stop    chan struct{}
	hseed   maphash.Seed // key of the read-back hashes
}

const (
	verifyWindow  = 64 << 20
	verifyReaders = 2
)

// newVerifier starts the read-back. Its progress stage reports only once
// the writing is done, with the total of what was written: that is all it
// reads back (holes a restore skipped, unused blocks and, for a delta,
// chunks the target already held are not read).
func newVerifier(ctx context.Context, dst *blockdev.Device, p Progress) *verifier {
	v := &verifier{ctx: ctx, dst: dst, tr: newTracker(p, StageVerify, 0), windows: make(chan []segment, 2),
		segs: make(chan segment, 64), bad: -1, stop: make(chan struct{}), hseed: maphash.MakeSeed()}
	v.wg.Add(1)
	go v.flusher()
	for range verifyReaders {
		v.wg.Add(1)
		go v.reader()
	}
	return v
}

// add is called by the writer, in order, after each segment is written.
func (v *verifier) add(s segment) {
	v.pending = append(v.pending, s)
	v.pendN += s.n
	v.added += s.n
	if v.pendN >= verifyWindow {
		v.flushPending()
	}
}

func (v *verifier) flushPending() {
	if len(v.pending) == 0 {
		return
	}
	select {
	case v.windows <- v.pending:
	case <-v.stop:
	}
	v.pending, v.pendN = nil, 0
}

func (v *verifier) flusher() {
	defer v.wg.Done()
	defer close(v.segs)
	for w := range v.windows {
		first, last := w[0], w[len(w)-1]
		if err := v.dst.FlushRange(first.off, last.off+last.n-first.off); err != nil {
			v.fail(first.off, &IOError{Op: "flush", Path: v.dst.Path, Offset: first.off, Err: err})
			continue
		}
		for _, s := range w {
			select {
			case v.segs <- s:
			case <-v.stop:
			}
		}
	}
}

func (v *verifier) reader() {
	defer v.wg.Done()
	buf := make([]byte, len(zeros))
	for s := range v.segs {
		if v.ctx.Err() != nil {
			continue // drain
		}
		if err := verifySegment(v.dst, s, v.hseed, buf, v.tr); err != nil {
			v.fail(s.off, err)
		}
	}
}

func (v *verifier) fail(off int64, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bad < 0 || off < v.bad {
		v.bad, v.first = off, err
	}
}

// wait finishes verification. If the restore itself failed (ok false), it
// stops at once; otherwise it verifies what is left, reporting progress,
// and returns the error at the lowest offset.
func (v *verifier) wait(ok bool) error {
	if ok {
		v.flushPending()
		v.tr.total = v.added // the ticker starts only now
		v.tr.run()
	} else {
		close(v.stop) // wait is called once
	}
	close(v.windows)
	v.wg.Wait()
	if ok {
		v.tr.end()
	}
	if v.first == nil && ok && v.ctx.Err() != nil {
		return fmt.Errorf("verification of %s cancelled (the restore itself finished): %w", v.dst.Path, v.ctx.Err())
	}
	return v.first
}
