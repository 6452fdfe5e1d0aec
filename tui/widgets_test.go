package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// The Source and After bars share one scale: a partition kept at its size
// is as wide in both, and a disk its partitions fill shows no free space.
func TestBarScale(t *testing.T) {
	src := []seg{{1, 0, 200 * MiB}, {2, 200 * MiB, 800 * MiB}}
	dst := []seg{{1, 0, 200 * MiB}, {2, 200 * MiB, 1800 * MiB}}
	for _, width := range []int{37, 68, 80} {
		s := bar(src, 1000*MiB, 2000*MiB, width)
		d := bar(dst, 2000*MiB, 2000*MiB, width)
		if a, b := strings.Count(s, "1"), strings.Count(d, "1"); a != b {
			t.Errorf("width %d: partition 1 is %d columns in %s and %d in %s", width, a, s, b, d)
		}
		if strings.Contains(s, ".") || strings.Contains(d, ".") {
			t.Errorf("width %d: free space drawn on full disks: %s %s", width, s, d)
		}
		if len(d) != width+2 || len(s) != width/2+2 {
			t.Errorf("width %d: bars %d and %d wide", width, len(s), len(d))
		}
	}
	// A tiny partition keeps a column.
	if got := bar([]seg{{1, 0, 1}, {2, MiB, 99 * MiB}}, 100*MiB, 100*MiB, 10); got != "[1222222222]" {
		t.Errorf("tiny partition: %s", got)
	}
}

// The speed (and so the time left) follows the last ten seconds, not the
// average since the stage started.
func TestRateMeter(t *testing.T) {
	var r rateMeter
	r.add(engine.Status{Done: 0, Elapsed: 0, Rate: 0})
	if got := r.rate(); got != 0 {
		t.Errorf("one report: rate %v", got)
	}
	// 100 MiB/s for 20 s, then 10 MiB/s for 20 s.
	done := int64(0)
	for s := 1; s <= 40; s++ {
		if s <= 20 {
			done += 100 * MiB
		} else {
			done += 10 * MiB
		}
		el := time.Duration(s) * time.Second
		r.add(engine.Status{Done: done, Elapsed: el, Rate: float64(done) / el.Seconds()})
	}
	if got := r.rate() / float64(MiB); got < 9.9 || got > 10.1 {
		t.Errorf("rate %.1f MiB/s, want 10 (the last ten seconds)", got)
	}
	if len(r.samples) > 12 {
		t.Errorf("%d samples kept", len(r.samples))
	}
}
