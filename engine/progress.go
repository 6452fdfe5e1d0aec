package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stage names a step of a long operation.
type Stage int

const (
	StageBackup Stage = iota + 1
	StagePrecheck
	StageRestore
	StageVerify
	StageCheck
	StageMerge
	StageClone
	StageExtract
	StageExport
	// StageCompare: a delta restore reads the target and compares it
	// with the image, before it writes anything.
	StageCompare
)

func (s Stage) String() string {
	switch s {
	case StageBackup:
		return "backing up"
	case StagePrecheck:
		return "checking image"
	case StageRestore:
		return "restoring"
	case StageVerify:
		// It reads back what was written, not the whole target: the
		// label says so, beside a total of the bytes written.
		return "reading back"
	case StageCheck:
		return "checking"
	case StageMerge:
		return "merging"
	case StageClone:
		return "cloning"
	case StageExtract:
		return "extracting"
	case StageExport:
		return "exporting"
	case StageCompare:
		return "comparing with the target"
	}
	return "working"
}

// Status is a snapshot of a running stage.
type Status struct {
	Stage   Stage
	Done    int64   // bytes
	Total   int64   // bytes; 0 if unknown
	Rate    float64 // bytes per second since the stage started
	Elapsed time.Duration
	// Final is set on the last report of a stage.
	Final bool
}

// Progress receives status reports. The engine calls Report from one
// goroutine at a time, a few times a second and once with Final set when a
// stage ends (also when it fails). Implementations must not block for long.
type Progress interface {
	Report(Status)
}

// NoProgress discards reports.
type NoProgress struct{}

func (NoProgress) Report(Status) {}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(Status)

func (f ProgressFunc) Report(s Status) { f(s) }

// tracker counts bytes from any goroutine and reports on a ticker.
type tracker struct {
	p     Progress
	stage Stage
	total int64
	start time.Time
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex // serialises Report calls
}

const reportEvery = 250 * time.Millisecond

func startStage(p Progress, stage Stage, total int64) *tracker {
	t := newTracker(p, stage, total)
	t.run()
	return t
}

// newTracker counts without reporting until run: a stage that works in
// the background of another one (verification behind a restore) reports
// only once it is the one the user waits for.
func newTracker(p Progress, stage Stage, total int64) *tracker {
	if p == nil {
		p = NoProgress{}
	}
	return &tracker{p: p, stage: stage, total: total, start: time.Now(), stop: make(chan struct{})}
}

func (t *tracker) run() {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(reportEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				t.report(false)
			case <-t.stop:
				return
			}
		}
	}()
}

func (t *tracker) add(n int64) { t.done.Add(n) }

func (t *tracker) report(final bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el := time.Since(t.start)
	d := t.done.Load()
	s := Status{Stage: t.stage, Done: d, Total: t.total, Elapsed: el, Final: final}
	if el > 0 {
		s.Rate = float64(d) / el.Seconds()
	}
	t.p.Report(s)
}

// end stops the ticker and sends the final report.
func (t *tracker) end() {
	close(t.stop)
	t.wg.Wait()
	t.report(true)
}
