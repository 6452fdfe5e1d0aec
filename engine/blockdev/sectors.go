package blockdev

import "io"

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
