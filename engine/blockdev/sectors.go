package blockdev

import (
	"io"
	"sync"
)

// sectorReader reads any range from a device that takes only whole,
// sector-aligned ranges (a Windows disk handle fails others with
// ERROR_INVALID_PARAMETER): an aligned request goes straight through, any
// other reads the sectors around it into a buffer of its own.
type sectorReader struct {
	r      io.ReaderAt
	sector int64
}

func (s sectorReader) ReadAt(p []byte, off int64) (int, error) {
	if off%s.sector == 0 && int64(len(p))%s.sector == 0 {
		return s.r.ReadAt(p, off)
	}
	start := off / s.sector * s.sector
	end := (off + int64(len(p)) + s.sector - 1) / s.sector * s.sector
	buf := make([]byte, end-start)
	n, err := s.r.ReadAt(buf, start)
	// The bytes asked for that arrived: from off-start up to n.
	got := max(0, min(int64(n)-(off-start), int64(len(p))))
	copy(p, buf[off-start:off-start+got])
	if got == int64(len(p)) {
		return len(p), nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return int(got), err
}

// sectorWriter writes any range to a device that takes only whole,
// sector-aligned ranges: an aligned write goes straight through, any other
// reads the sectors around it, changes them and writes them back, one at a
// time (two such writes into one sector must not both read it first).
type sectorWriter struct {
	rw interface {
		io.ReaderAt
		io.WriterAt
	}
	sector int64
	mu     *sync.Mutex
}

func (s sectorWriter) WriteAt(p []byte, off int64) (int, error) {
	if off%s.sector == 0 && int64(len(p))%s.sector == 0 {
		return s.rw.WriteAt(p, off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := off / s.sector * s.sector
	end := (off + int64(len(p)) + s.sector - 1) / s.sector * s.sector
	buf := make([]byte, end-start)
	if n, err := s.rw.ReadAt(buf, start); n < len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	copy(buf[off-start:], p)
	if n, err := s.rw.WriteAt(buf, start); n < len(buf) {
		if err == nil {
			err = io.ErrShortWrite
		}
		// What of p reached the device is unknown; say none.
		return 0, err
	}
	return len(p), nil
}
