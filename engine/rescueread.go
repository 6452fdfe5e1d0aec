package engine

import (
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// salvager reads a failing disk for a backup with --rescue: a read that
// fails is retried in halves down to single sectors, read around the page
// cache so an error concerns only the sectors asked for; sectors that still
// fail are recorded as damaged and read as zeros. Reads that succeed cost
// nothing extra.
type salvager struct {
	dev *blockdev.Device
	log *slog.Logger

	mu      sync.Mutex
	damaged []images.Range
}

// sectorRetries is how often a single failing sector is tried again.
const sectorRetries = 2

func (s *salvager) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.dev.ReadAt(p, off)
	if err == nil || n == len(p) || errors.Is(err, io.EOF) {
		return n, err
	}
	s.log.Warn("read error, salvaging", "device", s.dev.Path, "offset", off, "length", len(p), "err", err)
	s.salvage(p, off)
	return len(p), nil
}

func (s *salvager) salvage(p []byte, off int64) {
	ss := int64(s.dev.SectorSize)
	if ss <= 0 {
		ss = 512
	}
	// Align to sectors: the part before the first boundary and after the
	// last is read with its sector.
	if int64(len(p)) > ss && (off%ss != 0 || int64(len(p))%ss != 0) {
		lo := off - off%ss
		hi := off + int64(len(p))
		hi += (ss - hi%ss) % ss
		hi = min(hi, s.dev.Size)
		b := make([]byte, hi-lo)
		s.salvage(b, lo)
		copy(p, b[off-lo:])
		return
	}
	if _, err := s.dev.ReadDirect(p, off); err == nil {
		return
	}
	if int64(len(p)) > ss {
		half := (int64(len(p)) / ss / 2) * ss
		if half == 0 {
			half = ss
		}
		s.salvage(p[:half], off)
		s.salvage(p[half:], off+half)
		return
	}
	for range sectorRetries {
		if _, err := s.dev.ReadDirect(p, off); err == nil {
			return
		}
	}
	clear(p)
	s.mark(off, int64(len(p)))
}

func (s *salvager) mark(off, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := len(s.damaged) - 1; k >= 0 && s.damaged[k].Off+s.damaged[k].Len == off {
		s.damaged[k].Len += n
		return
	}
	s.damaged = append(s.damaged, images.Range{Off: off, Len: n})
	s.log.Warn("unreadable sector", "device", s.dev.Path, "offset", off)
}

// Damaged returns the unreadable ranges found so far, sorted and joined.
func (s *salvager) Damaged() []images.Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]images.Range(nil), s.damaged...)
	sortRanges(out)
	return mergeRanges(out)
}
