package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// The progress screen every operation shares: finished stages, the
// current one with a bar, bytes, speed and time left, and the stop
// question.

func (o *operation) progressBody(w int) []string {
	s := o.status
	out := append(wrap(o.heading, w), "")
	for _, f := range o.stages {
		if f.Stage != s.Stage || !s.Final {
			out = append(out, fmt.Sprintf("  done: %s, %s in %s", f.Stage, engine.HumanBytes(f.Done), clock(f.Elapsed)))
		}
	}
	if len(o.stages) > 0 {
		out = append(out, "")
	}
	if s.Stage == 0 {
		out = append(out, "  starting ...")
		return o.stopQuestion(out, w)
	}
	pct := 0.0
	if s.Total > 0 {
		pct = float64(s.Done) * 100 / float64(s.Total)
	}
	bw := w - 12
	filled := min(int(float64(bw)*pct/100), bw)
	rate := o.rate.rate()
	out = append(out,
		fmt.Sprintf("  Stage    %s", s.Stage),
		fmt.Sprintf("  [%s%s] %5.1f%%", strings.Repeat("#", filled), strings.Repeat(".", bw-filled), pct),
		fmt.Sprintf("  Done     %s of %s", engine.HumanBytes(s.Done), engine.HumanBytes(s.Total)),
		fmt.Sprintf("  Speed    %s/s", engine.HumanBytes(int64(rate))),
	)
	eta := "-"
	if rate > 0 && s.Total > s.Done {
		eta = clock(time.Duration(float64(s.Total-s.Done) / rate * float64(time.Second)))
	}
	out = append(out, fmt.Sprintf("  Elapsed  %s   ETA %s", clock(s.Elapsed), eta))
	return o.stopQuestion(out, w)
}

func (o *operation) stopQuestion(out []string, w int) []string {
	if !o.askStop {
		return out
	}
	q := "Stop now? Nothing has been written yet."
	switch {
	case o.target == "":
		q = o.stopAsk
	case o.wrote && o.grows():
		q = "Stop the verification? All the data and the new partition table have been written to " + o.target + "; reading it back and then growing the filesystems are left."
	case o.wrote:
		q = "Stop the verification? Everything has been written to " + o.target + "; only reading it back is left."
	case o.confirmed:
		q = "Stop now? The target will be left incomplete and must be written again."
	}
	out = append(out, "")
	return append(out, wrap(q+" Press y to stop, n to go on.", w)...)
}

// rateMeter is the speed over the last rateWindow of a stage, so the time
// left follows the current pace (a disk that slows down, a network that
// stalls) instead of the average since the stage started.
type rateMeter struct {
	samples []engine.Status
	last    float64 // the engine's rate since the stage started
}

const rateWindow = 10 * time.Second

func (r *rateMeter) add(s engine.Status) {
	r.last = s.Rate
	r.samples = append(r.samples, s)
	i := 0
	for i < len(r.samples)-2 && s.Elapsed-r.samples[i+1].Elapsed >= rateWindow {
		i++
	}
	r.samples = r.samples[i:]
}

// rate is bytes per second; the engine's average until two reports span
// some time.
func (r *rateMeter) rate() float64 {
	if len(r.samples) < 2 {
		return r.last
	}
	a, b := r.samples[0], r.samples[len(r.samples)-1]
	dt := (b.Elapsed - a.Elapsed).Seconds()
	if dt <= 0 || b.Done < a.Done {
		return r.last
	}
	return float64(b.Done-a.Done) / dt
}
