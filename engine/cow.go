package engine

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// cowFile is a writable view of read-only bytes (a partition in an image):
// writes go to a sparse scratch file, in whole blocks, and reads take each
// block from the scratch file once written, else from the base. A tool
// may change the view (shrink the filesystem in it) while the base, and
// the target of a restore, stay untouched; the scratch file holds only the
// blocks written.
type cowFile struct {
	base    io.ReaderAt
	size    int64
	scratch *os.File

	mu      sync.RWMutex
	written []uint64 // bit per block
}

const cowBlock = 4096

// newCOW makes a view of base's first size bytes with its scratch file in
// dir ("" for the system's temporary folder); Close removes it.
func newCOW(base io.ReaderAt, size int64, dir string) (*cowFile, error) {
	f, err := os.CreateTemp(dir, "lifeboat-shrink-*.scratch")
	if err != nil {
		return nil, fmt.Errorf("scratch file for the shrink: %w", err)
	}
	os.Remove(f.Name()) // gone with the last descriptor, also on a crash
	blocks := (size + cowBlock - 1) / cowBlock
	return &cowFile{base: base, size: size, scratch: f, written: make([]uint64, (blocks+63)/64)}, nil
}

func (c *cowFile) Close() error { return c.scratch.Close() }

func (c *cowFile) isWritten(b int64) bool { return c.written[b/64]&(1<<(b%64)) != 0 }

// ScratchBytes is what the scratch file holds.
func (c *cowFile) ScratchBytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var n int64
	for _, w := range c.written {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n * cowBlock
}

func (c *cowFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	done := 0
	for len(p) > 0 {
		if off >= c.size {
			return done, io.EOF
		}
		b := off / cowBlock
		// A run of blocks from the same side.
		from := c.isWritten(b)
		end := (b + 1) * cowBlock
		for end < c.size && end < off+int64(len(p)) && c.isWritten(end/cowBlock) == from {
			end += cowBlock
		}
		n := int(min(int64(len(p)), end-off, c.size-off))
		src := c.base
		if from {
			src = c.scratch
		}
		if m, err := src.ReadAt(p[:n], off); m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done + m, err
		}
		p, off, done = p[n:], off+int64(n), done+n
	}
	return done, nil
}

func (c *cowFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > c.size {
		return 0, fmt.Errorf("write at %d+%d outside the %d-byte view", off, len(p), c.size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Blocks written in part take the rest of their bytes from the base
	// first.
	for _, b := range []int64{off / cowBlock, (off + int64(len(p)) - 1) / cowBlock} {
		if len(p) == 0 || c.isWritten(b) {
			continue
		}
		start := b * cowBlock
		if start >= off && min(start+cowBlock, c.size) <= off+int64(len(p)) {
			continue // wholly overwritten
		}
		buf := make([]byte, min(cowBlock, c.size-start))
		if _, err := c.base.ReadAt(buf, start); err != nil && err != io.EOF {
			return 0, err
		}
		if _, err := c.scratch.WriteAt(buf, start); err != nil {
			return 0, fmt.Errorf("scratch file for the shrink: %w", err)
		}
		c.written[b/64] |= 1 << (b % 64)
	}
	n, err := c.scratch.WriteAt(p, off)
	if err != nil {
		return n, fmt.Errorf("scratch file for the shrink: %w", err)
	}
	for b := off / cowBlock; b <= (off+int64(n)-1)/cowBlock && n > 0; b++ {
		c.written[b/64] |= 1 << (b % 64)
	}
	return n, nil
}
