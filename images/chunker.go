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
	get      func() *[]byte
	emit     func(buf *[]byte, zero int64) error
	cur      *[]byte
	zeroTail int   // trailing zero bytes in cur
	inZero   int64 // length of the hole being collected
}

func newCutter(ck chunking, get func() *[]byte, emit func(*[]byte, int64) error) *cutter {
	return &cutter{ck: ck, thresh: ck.threshold(), get: get, emit: emit}
}

func (c *cutter) add(p []byte) error {
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
			c.append(b)
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
		c.append(b)
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
