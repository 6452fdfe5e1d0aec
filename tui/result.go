package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The result screen every operation ends on: what was done, or what went
// wrong and the state the target is left in.

type result struct {
	ok    bool
	title string
	lines []string
}

func (r *result) body(st styles, w int) []string {
	var out []string
	if r.ok {
		out = append(out, st.good.Render(r.title))
	} else {
		out = append(out, st.bad.Render(r.title))
	}
	out = append(out, "")
	for _, l := range r.lines {
		if strings.HasPrefix(l, "  ") { // a table row: columns kept
			out = append(out, cut(l, w))
			continue
		}
		out = append(out, wrap(l, w)...)
	}
	return out
}

// outcome words a finished operation, with the target's state when it
// failed or was stopped.
func (o *operation) outcome(msg doneMsg) *result {
	name := o.flow.String()
	if msg.err == nil {
		return &result{ok: true, title: name + " finished", lines: msg.lines}
	}
	r := &result{title: name + " failed"}
	if o.stopped {
		r.title = name + " stopped"
	}
	r.lines = append(r.lines, msg.err.Error())
	switch {
	case errors.Is(msg.err, engine.ErrDeclined):
		r.title = name + " not confirmed" // the error says nothing was written
	case o.target == "":
		r.lines = append(r.lines, "", o.readOnly)
	case nothingWritten(msg.err, o.confirmed):
		r.lines = append(r.lines, "", "Nothing was written to "+o.target+".")
	case o.wrote && o.stopped:
		r.lines = append(r.lines, "", o.stoppedVerifying())
	default:
		r.lines = append(r.lines, "", o.target+" was partly written: it holds an incomplete copy that may not boot or mount. Run the "+strings.ToLower(name)+" again before using it.")
	}
	switch {
	case errors.Is(msg.err, images.ErrWrongPassword), errors.Is(msg.err, images.ErrPasswordNeeded):
		r.lines = append(r.lines, "Choose the image again and type its password.")
	case errors.Is(msg.err, engine.ErrVerify):
		r.lines = append(r.lines, "The target disk may be failing: try another disk.")
	}
	return r
}

// stoppedVerifying says what a stop during verification left: every byte
// was written, the new partition table too (the engine writes it before
// the read-back ends); grown filesystems were not grown yet.
func (o *operation) stoppedVerifying() string {
	verb := strings.ToLower(o.flow.String())
	if o.grows() {
		return fmt.Sprintf("All the data and the new partition table were written to %s; the stop came during the verification, before the filesystems were grown: the copy is complete but not proven, and grown partitions hold filesystems of the stored size. Run the %s again to have it verified and grown.", o.target, verb)
	}
	return fmt.Sprintf("All the data was written to %s; only the verification (reading it back) was stopped, so the copy is complete but not proven. Run the %s again to have it verified.", o.target, verb)
}

// grows says the confirmed plan grows partitions, whose filesystems the
// engine grows after the verification.
func (o *operation) grows() bool {
	if o.plan == nil || o.plan.Layout == nil || o.plan.LayoutKept {
		return false
	}
	for _, m := range o.plan.Layout.Moves {
		if m.DstSize > m.SrcSize {
			return true
		}
	}
	return false
}

// restoreLines is the result of a restore or clone: bytes and time, the
// verification, each partition written (the engine's results), the
// engine's notes and what to do next.
func restoreLines(res *engine.RestoreResult, what string, rescue bool) []string {
	lines := []string{fmt.Sprintf("%s to %s: %s in %s.", what, res.Target, engine.HumanBytes(res.Bytes), clock(res.Elapsed))}
	if res.Written > 0 && res.Written < res.Bytes {
		lines = append(lines, fmt.Sprintf("Written: %s; space no filesystem uses was not copied.", engine.HumanBytes(res.Written)))
	}
	if res.Verified {
		lines = append(lines, "Verified: everything written was read back from "+res.Target+" and matches.")
	} else {
		lines = append(lines, "Not verified: the target was not read back.")
	}
	lines = append(lines, partitionResults(res)...)
	lines = append(lines, res.Notes...)
	if !rescue {
		return append(lines, "", "Next: Enter goes back to the menu.")
	}
	return append(lines, "", "Next: remove the rescue media and choose Reboot / Power off on the menu (Enter goes there).")
}

// partitionResults lists what the engine did to each partition: its size
// on the target, filesystem, bytes written, time and verification.
func partitionResults(res *engine.RestoreResult) []string {
	if len(res.Partitions) == 0 {
		return nil
	}
	out := []string{"Partitions written:"}
	for _, q := range res.Partitions {
		fs := q.FS
		if q.Label != "" {
			fs += fmt.Sprintf(" %q", q.Label)
		}
		state := "verified"
		if !q.Verified {
			state = "not verified"
		}
		if q.Grown {
			state += ", filesystem grown"
		}
		out = append(out, fmt.Sprintf("  %-2d %-9s %-12s %s written in %s, %s", q.Number, engine.HumanBytes(q.Size), fs, engine.HumanBytes(q.Written), clock(q.Elapsed), state))
	}
	return out
}
