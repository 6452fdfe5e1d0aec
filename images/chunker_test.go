package images

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The cutter reads pieces straight into chunk buffers (feed). It must cut
// every stream exactly as the cutter that copied each block in from a read
// buffer (addByCopy, below: the code of images written before), whatever
// the read size: otherwise an incremental made now would not find the
// chunks of a full backup made before. Random pieces (odd lengths, data,
// 0xFF, zero runs short and long), flushes between them (file cuts),
// chunk sizes and read sizes; the seed is printed.
func TestFeedCutsAsCopying(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 11))
	for round := range 150 {
		ck := newChunking([]int{64 << 10, 128 << 10, 512 << 10}[r.IntN(3)])
		type piece struct {
			b     []byte
			flush bool
		}
		var pieces []piece
		for range 40 + r.IntN(80) {
			n := 1 + r.IntN(9000)
			if r.IntN(4) == 0 {
				n = 1 + r.IntN(700<<10)
			}
			b := make([]byte, n)
			switch r.IntN(4) {
			case 0:
				for i := range b {
					b[i] = byte(r.Uint32())
				}
			case 1:
				for i := range b {
					b[i] = 0xFF
				}
			case 2: // zeros with a few data bytes
				for range r.IntN(4) {
					b[r.IntN(n)] = byte(1 + r.IntN(255))
				}
			}
			pieces = append(pieces, piece{b, r.IntN(5) == 0})
		}
		run := func(byCopy bool, readSize int) []string {
			var out []string
			get := func() *[]byte { return newBuf(ck.Max) }
			c := newCutter(ck, get, func(b *[]byte, zero int64) error {
				if b == nil {
					out = append(out, fmt.Sprintf("hole %d", zero))
				} else {
					out = append(out, fmt.Sprintf("chunk %d %x", len(*b), sha256.Sum256(*b)))
				}
				return nil
			})
			c.readSize = readSize
			for _, p := range pieces {
				var err error
				if byCopy {
					err = c.addByCopy(p.b)
				} else {
					err = c.add(p.b)
				}
				if err == nil && p.flush {
					err = c.flush()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			return out
		}
		want := run(true, 0)
		for _, rs := range []int{readChunk, 1 + r.IntN(5000), 1 + r.IntN(300<<10)} {
			got := run(false, rs)
			for i := range max(len(got), len(want)) {
				g, w := "(none)", "(none)"
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Fatalf("seed %d round %d (avg %d, read size %d): piece %d of the cut is %s, copying cut %s", seed, round, ck.Avg, rs, i, g, w)
				}
			}
		}
	}
}

// addByCopy is how the cutter cut a piece before it read into chunk
// buffers: each block copied in. The reference for TestFeedCutsAsCopying.
func (c *cutter) addByCopy(p []byte) error {
	for len(p) > 0 {
		// Pieces of the source need not be Block-aligned (1 KiB filesystem
		// blocks, short zero gaps), so a block may also be cut short to end
		// exactly at Max: a chunk never grows past it.
		n := min(len(p), c.ck.Block)
		if c.cur != nil {
			n = min(n, c.ck.Max-len(*c.cur))
		}
		b := p[:n]
		p = p[len(b):]
		if allZero(b) {
			if c.inZero > 0 {
				c.inZero += int64(len(b))
				continue
			}
			c.appendCopy(b)
			c.zeroTail += len(b)
			if c.zeroTail >= c.ck.ZeroRun {
				// The zeros become a hole; what came before them a chunk.
				c.inZero = int64(c.zeroTail)
				*c.cur = (*c.cur)[:len(*c.cur)-c.zeroTail]
				c.zeroTail = 0
				if len(*c.cur) > 0 {
					if err := c.cut(); err != nil {
						return err
					}
				}
			} else if len(*c.cur) >= c.ck.Max {
				if err := c.cut(); err != nil {
					return err
				}
			}
			continue
		}
		if c.inZero > 0 {
			if err := c.emit(nil, c.inZero); err != nil {
				return err
			}
			c.inZero = 0
		}
		c.appendCopy(b)
		c.zeroTail = 0
		if n := len(*c.cur); n >= c.ck.Max || n >= c.ck.Min && crc32c(b) < c.thresh {
			if err := c.cut(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cutter) append(b []byte) {
	if c.cur == nil {
		c.cur = c.get()
	}
	*c.cur = append(*c.cur, b...)
}

func (c *cutter) appendCopy(b []byte) {
	if c.cur == nil {
		c.cur = c.get()
	}
	*c.cur = append(*c.cur, b...)
}
