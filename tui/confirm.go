package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// The confirmation: the engine's plan (what is copied, where, the layout
// before and after, what is overwritten) and the target's name typed.
// Restore and clone share it.

// confirmName is what the user types to confirm: the target's base name.
func confirmName(target string) string { return filepath.Base(target) }

// wrongNameError is a confirmation refused by a typed name that is not
// the target's. Nothing was written.
type wrongNameError struct {
	typed, want, target string
}

func (e *wrongNameError) Error() string {
	return fmt.Sprintf("%s: you typed %q, not %q; nothing was written to %s", engine.ErrDeclined, e.typed, e.want, e.target)
}

func (e *wrongNameError) Unwrap() error { return engine.ErrDeclined }

func (o *operation) confirmKey(k tea.KeyMsg) tea.Cmd {
	name := confirmName(o.plan.Target)
	switch k.String() {
	case "esc", "ctrl+c":
		o.reply <- fmt.Errorf("%w: cancelled at the confirmation; nothing was written to %s", engine.ErrDeclined, o.plan.Target)
	case "enter":
		typed := strings.TrimSpace(o.in.String())
		if typed == name {
			o.confirmed = true
			o.u.logf(false, "confirmed: write to %s", o.plan.Target)
			o.reply <- nil
		} else {
			o.reply <- &wrongNameError{typed: typed, want: name, target: o.plan.Target}
		}
	default:
		o.in.update(k)
		return nil
	}
	o.reply = nil
	return o.listen()
}

func (o *operation) confirmBody(w int) []string {
	p, c := o.plan, o.confirm
	var out []string
	size := engine.HumanBytes(p.TargetSize)
	if p.Create {
		size = "a new file"
	}
	out = append(out, "Check what will happen before anything is written:", "")
	srcSize := p.Bytes
	if c.srcSize > 0 {
		srcSize = c.srcSize
	}
	out = append(out, cut(fmt.Sprintf("  %-8s %s: %s, %s", c.verb, p.Image, p.What, engine.HumanBytes(srcSize)), w))
	out = append(out, cut(fmt.Sprintf("  %-8s %s (%s)", "Onto", p.Target, size), w))
	out = append(out, cut(fmt.Sprintf("  %-8s %s", "Copies", c.copies), w))
	if p.Layout != nil {
		out = append(out, cut(fmt.Sprintf("  %-8s %s, starts aligned to 1 MiB, %s table", "Layout", layoutWord(c.layout), p.Layout.Table.Type), w))
		for _, n := range p.Layout.WordedNotes(screenWord) {
			out = append(out, indent(wrap(n, w-11), "           ")...)
		}
	}
	if len(p.Before) > 0 && c.bars {
		out = append(out, layoutBars(p, srcSize, w)...)
	}
	out = append(out, "")
	if len(p.Overwrites) == 0 {
		out = append(out, cut("  "+p.Target+" holds nothing recognisable now (blank or unknown data).", w))
	} else {
		out = append(out, cut("  Now on "+p.Target+", to be overwritten:", w))
		for i, ov := range p.Overwrites {
			if i == 4 && len(p.Overwrites) > 5 {
				out = append(out, fmt.Sprintf("    ... and %d more", len(p.Overwrites)-4))
				break
			}
			out = append(out, cut("    "+ov, w))
		}
	}
	return append(out, "", fmt.Sprintf("Type %s and press Enter to write; Esc cancels.", confirmName(p.Target)), o.in.render(w))
}

// layoutBars draws the source's layout and what the target gets.
func layoutBars(p *engine.Plan, srcSize int64, w int) []string {
	bw := w - 12
	var before, after []seg
	for _, q := range p.Before {
		before = append(before, seg{q.Number, q.Start, q.Size})
		srcSize = max(srcSize, q.Start+q.Size)
	}
	total := p.TargetSize
	if p.Layout != nil {
		for _, mv := range p.Layout.Moves {
			after = append(after, seg{mv.Number, mv.DstStart, mv.DstSize})
		}
		total = max(total, p.Layout.DiskSize)
	} else {
		after = before
	}
	if total <= 0 {
		total = srcSize
	}
	scale := max(srcSize, total)
	out := []string{"", "  Source  " + bar(before, srcSize, scale, bw),
		"  After   " + bar(after, total, scale, bw)}
	if len(p.Before) <= 4 {
		for _, q := range p.Before {
			l := fmt.Sprintf("          %d = %s", q.Number, engine.HumanBytes(q.Size))
			for _, a := range after {
				if a.n == q.Number && a.size != q.Size {
					l += " -> " + engine.HumanBytes(a.size)
				}
			}
			if q.FS != nil {
				l += fmt.Sprintf("  %s %q", q.FS.Type, q.FS.Label)
			}
			out = append(out, cut(l, w))
		}
	}
	return out
}

func layoutWord(md layout.Mode) string {
	switch md {
	case layout.Fill:
		return "fill the disk"
	case layout.Fit:
		return "fit the disk (filesystems shrunk)"
	case layout.Manual:
		return "sizes given"
	}
	return "keep the sizes"
}
