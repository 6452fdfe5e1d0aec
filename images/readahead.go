package images

import (
	"fmt"
	"io"
	"sync"
)

// readAhead reads what AddStream chunks — each used range (or the whole
// stream) in pieces of readSize, in order — on its own goroutine, up to
// depth pieces ahead of the cutter, so reading the source overlaps
// cutting it. The pieces are exactly those AddStream read itself before,
// so chunks are cut at the same places (an incremental still finds its
// parent's chunks).
type readAhead struct {
	pieces chan piece
	free   chan []byte
	done   chan struct{}
	wg     sync.WaitGroup
}

type piece struct {
	off int64
	b   []byte
	err error // a *ReadError; the piece is the last one
}

func startReadAhead(src io.ReaderAt, size int64, used []Range, depth int) *readAhead {
	ra := &readAhead{pieces: make(chan piece, depth), free: make(chan []byte, depth+1), done: make(chan struct{})}
	for range depth + 1 {
		ra.free <- make([]byte, readSize)
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(ra.pieces)
		read := func(off, end int64) bool {
			for off < end {
				var b []byte
				select {
				case b = <-ra.free:
				case <-ra.done:
					return false
				}
				b = b[:min(int64(cap(b)), end-off)]
				p := piece{off: off, b: b}
				if m, err := src.ReadAt(b, off); m < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					p.err = &ReadError{Offset: off + int64(m), Err: err}
				}
				select {
				case ra.pieces <- p:
				case <-ra.done:
					return false
				}
				if p.err != nil {
					return false
				}
				off += int64(len(b))
			}
			return true
		}
		if used == nil {
			read(0, size)
			return
		}
		for _, r := range used {
			if !read(r.Off, r.Off+r.Len) {
				return
			}
		}
	}()
	return ra
}

// next returns the piece that starts at off, which must be the next one.
// Its bytes are the caller's until it hands them back with release.
func (ra *readAhead) next(off int64) ([]byte, error) {
	p, ok := <-ra.pieces
	switch {
	case !ok:
		return nil, fmt.Errorf("internal error: read-ahead ended before byte %d", off)
	case p.off != off:
		return nil, fmt.Errorf("internal error: read-ahead is at byte %d, the cutter at %d", p.off, off)
	}
	return p.b, p.err
}

// release gives back a piece's buffer (never blocks: there is room for
// every buffer).
func (ra *readAhead) release(b []byte) { ra.free <- b[:cap(b)] }

// stop ends the reading and waits for it; the pieces not taken are dropped.
func (ra *readAhead) stop() {
	close(ra.done)
	ra.wg.Wait()
}
