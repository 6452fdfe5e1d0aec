package images

// Content-defined chunking on block boundaries.
//
// A stream is read in 4 KiB blocks (the unit filesystems allocate in) and
// cut into chunks after a block whose CRC-32C falls below a threshold, once
// the chunk holds at least Min bytes, and always at Max. Because the cut
// depends on the content, a file copied to another place on the disk (at
// any 4 KiB offset) is cut the same way a short distance into the copy, and
// its chunks are stored once: the dedup that fixed 1 MiB chunks would miss.
// Runs of zero blocks of at least ZeroRun bytes become holes of any length.

// chunking is recorded in the header so that later writers (incremental
// backups) can cut the same way.
type chunking struct {
	Block   int `json:"block"`
	Min     int `json:"min"`
	Avg     int `json:"avg"`
	Max     int `json:"max"`
	ZeroRun int `json:"zero_run"`
}

const (
	chunkBlock = 4096
	readSize   = 4 << 20 // a multiple of chunkBlock
)

func newChunking(avg int) chunking {
	c := chunking{Block: chunkBlock, Avg: avg, Min: avg / 4, Max: min(avg*4, maxChunkSize), ZeroRun: 64 << 10}
	c.Min -= c.Min % chunkBlock
	return c
}

// threshold makes a cut after a block with probability Block/(Avg-Min), so
// chunks average about Avg bytes.
func (c chunking) threshold() uint32 {
	return uint32(min((uint64(1)<<32)*uint64(c.Block)/uint64(c.Avg-c.Min), 1<<32-1))
}

// cutter turns a byte stream into chunks (emit(buf, 0)) and zero holes
// (emit(nil, n)).
type cutter struct {
	ck       chunking
	thresh   uint32
	readSize int // how much feed reads at a time: readChunk, tests set others
	get      func() *[]byte
	emit     func(buf *[]byte, zero int64) error
	cur      *[]byte
	zeroTail int   // trailing zero bytes in cur
	inZero   int64 // length of the hole being collected
}

func newCutter(ck chunking, get func() *[]byte, emit func(*[]byte, int64) error) *cutter {
	return &cutter{ck: ck, thresh: ck.threshold(), readSize: readChunk, get: get, emit: emit}
}

// readChunk is how much feed reads at a time: bytes read past a cut are
// moved to the next chunk's buffer, half a read on average.
const readChunk = 128 << 10

// add cuts p, the next piece of the stream.
func (c *cutter) add(p []byte) error {
	return c.feed(int64(len(p)), func(dst []byte) error {
		p = p[copy(dst, p):]
		return nil
	})
}

// feed cuts the next n bytes of the stream, one piece, exactly as the
// blocks of a piece are cut (below), but fill writes them (reads them from
// the source, or clears them for a gap) straight into the chunk's buffer,
// readChunk at a time, instead of their being copied there from a read
// buffer: that copy was 8 % of an incremental backup's CPU. Bytes read
// but not yet cut (pending) lie past the buffer's length; those read past
// a cut move to the next chunk's buffer.
//
// Blocks: a piece need not be Block-aligned (1 KiB filesystem blocks,
// short zero gaps), and a block is cut short to end exactly at Max (a
// chunk never grows past it), so blocks follow from the piece's start and
// the cuts, never from how it is read.
func (c *cutter) feed(n int64, fill func(dst []byte) error) error {
	var r, p int // pending bytes: (*c.cur)[r:r+p], beyond its length
	for n > 0 {
		if c.cur == nil {
			c.cur = c.get()
		}
		bn := int(min(n, int64(c.ck.Block), int64(c.ck.Max-len(*c.cur))))
		if p < bn {
			// Read on, right after what the chunk holds (moving the few
			// pending bytes, < Block, there first).
			l := len(*c.cur)
			buf := (*c.cur)[:cap(*c.cur)]
			copy(buf[l:], buf[r:r+p])
			r = l
			k := int(min(n-int64(p), int64(max(c.readSize, bn-p)), int64(len(buf)-l-p)))
			if err := fill(buf[l+p : l+p+k]); err != nil {
				return err
			}
			p += k
		}
		b := (*c.cur)[r : r+bn : r+bn]
		r, p, n = r+bn, p-bn, n-int64(bn)
		if allZero(b) {
			if c.inZero > 0 {
				c.inZero += int64(bn)
				continue
			}
			c.keep(b)
			c.zeroTail += bn
			if c.zeroTail >= c.ck.ZeroRun {
				// The zeros become a hole; what came before them a chunk.
				c.inZero = int64(c.zeroTail)
				*c.cur = (*c.cur)[:len(*c.cur)-c.zeroTail]
				c.zeroTail = 0
				if len(*c.cur) > 0 {
					if err := c.cutMoving(&r, p); err != nil {
						return err
					}
				}
			} else if len(*c.cur) >= c.ck.Max {
				if err := c.cutMoving(&r, p); err != nil {
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
		c.keep(b)
		c.zeroTail = 0
		if l := len(*c.cur); l >= c.ck.Max || l >= c.ck.Min && crc32c(b) < c.thresh {
			if err := c.cutMoving(&r, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// keep adds block b, which lies in the chunk's buffer at or after its
// end, to the chunk: in place when it follows the end (the usual case),
// else moved down (after zeros that were dropped).
func (c *cutter) keep(b []byte) {
	l := len(*c.cur)
	*c.cur = (*c.cur)[:l+len(b)]
	if d := (*c.cur)[l:]; &d[0] != &b[0] {
		copy(d, b)
	}
}

// cutMoving cuts the chunk, first moving the p pending bytes at *r to the
// next chunk's buffer (the emitted one is the worker's from then on).
func (c *cutter) cutMoving(r *int, p int) error {
	if p == 0 {
		return c.cut()
	}
	next := c.get()
	copy((*next)[:p], (*c.cur)[*r:*r+p])
	*r = 0
	err := c.cut()
	c.cur = next
	return err
}

func (c *cutter) cut() error {
	buf := c.cur
	c.cur, c.zeroTail = nil, 0
	return c.emit(buf, 0)
}

// flush emits what is left at the end of the stream.
func (c *cutter) flush() error {
	if c.inZero > 0 {
		if err := c.emit(nil, c.inZero); err != nil {
			return err
		}
		c.inZero = 0
	}
	if c.cur == nil || len(*c.cur) == 0 {
		return nil
	}
	if c.zeroTail == len(*c.cur) {
		// Only zeros since the last cut: a hole. The buffer stays for the
		// next chunk (dropping it cost a 2.3 MB allocation at every
		// file-boundary cut that followed a short zero run).
		n := int64(c.zeroTail)
		*c.cur, c.zeroTail = (*c.cur)[:0], 0
		return c.emit(nil, n)
	}
	return c.cut()
}

// release returns the unfinished chunk's buffer after a failure.
func (c *cutter) release(put func(*[]byte)) {
	if c.cur != nil {
		put(c.cur)
		c.cur = nil
	}
}
