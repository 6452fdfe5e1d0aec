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
// was written; with a new layout the partition table (written after the
// verification) was not.
func (o *operation) stoppedVerifying() string {
	verb := strings.ToLower(o.flow.String())
	if o.newLayout() {
		return fmt.Sprintf("All the data was written to %s, but the stop came during the verification, before the new partition table was written and the filesystems grown: the partitions will not show. Run the %s again.", o.target, verb)
	}
	return fmt.Sprintf("All the data was written to %s; only the verification (reading it back) was stopped, so the copy is complete but not proven. Run the %s again to have it verified.", o.target, verb)
}

// newLayout says the target gets a new partition table, which the engine
// writes after the verification.
func (o *operation) newLayout() bool {
	return o.plan != nil && o.plan.Layout != nil && !o.plan.LayoutKept
}

// keepPlan passes the confirmation on and keeps the plan confirmed, for
// the result. Both run on the operation's goroutine.
func keepPlan(plan **engine.Plan, confirm func(engine.Plan) error) func(engine.Plan) error {
	return func(p engine.Plan) error {
		*plan = &p
		return confirm(p)
	}
}

// restoreLines is the result of a restore or clone: bytes and time, the
// verification, each partition written (from the plan confirmed), the
// engine's notes and what to do next.
func restoreLines(res *engine.RestoreResult, plan *engine.Plan, what string, rescue bool) []string {
	lines := []string{fmt.Sprintf("%s to %s: %s in %s.", what, res.Target, engine.HumanBytes(res.Bytes), clock(res.Elapsed))}
	if res.Written > 0 && res.Written < res.Bytes {
		lines = append(lines, fmt.Sprintf("Written: %s; space no filesystem uses was not copied.", engine.HumanBytes(res.Written)))
	}
	if res.Verified {
		lines = append(lines, "Verified: everything written was read back from "+res.Target+" and matches.")
	} else {
		lines = append(lines, "Not verified: the target was not read back.")
	}
	lines = append(lines, partitionResults(plan)...)
	lines = append(lines, res.Notes...)
	if !rescue {
		return append(lines, "", "Next: Enter goes back to the menu.")
	}
	return append(lines, "", "Next: remove the rescue media and choose Reboot / Power off on the menu (Enter goes there).")
}

// partitionResults lists the partitions a whole-disk restore or clone
// wrote, with their new sizes. The engine reports no per-partition
// results yet, so this is the plan that was confirmed and carried out.
func partitionResults(plan *engine.Plan) []string {
	if plan == nil || len(plan.Before) == 0 || !strings.HasPrefix(plan.What, "disk") {
		return nil
	}
	out := []string{"Partitions written:"}
	for _, q := range plan.Before {
		size := engine.HumanBytes(q.Size)
		if plan.Layout != nil {
			for _, mv := range plan.Layout.Moves {
				if mv.Number == q.Number && mv.DstSize != q.Size {
					size += " -> " + engine.HumanBytes(mv.DstSize)
				}
			}
		}
		l := fmt.Sprintf("  %-2d %-24s", q.Number, size)
		if q.FS != nil {
			l += fmt.Sprintf(" %s %q", q.FS.Type, q.FS.Label)
		}
		out = append(out, strings.TrimRight(l, " "))
	}
	return out
}
