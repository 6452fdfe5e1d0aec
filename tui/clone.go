package tui

import (
	"context"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// cloneWizard copies a disk or partition straight to another: source,
// target, layout (or sector by sector), then the shared confirmation,
// progress and result.
type cloneWizard struct {
	u       *ui
	s       steps
	source  string
	srcPart bool // the source is a partition
	target  string
	mode    layout.Mode
	sbs     bool // sector by sector
}

func newClone(u *ui) *cloneWizard {
	w := &cloneWizard{u: u}
	w.s.push(u, stSource)
	w.s.setList(stSource, deviceList(u, deviceQuery{disks: true, parts: true}))
	return w
}

func (w *cloneWizard) flow() flow  { return flowClone }
func (w *cloneWizard) nav() *steps { return &w.s }
func (w *cloneWizard) msg(tea.Msg) tea.Cmd {
	return nil
}

func (w *cloneWizard) key(k tea.KeyMsg) tea.Cmd {
	switch w.s.cur {
	case stSource, stTarget, stDevicePath:
		path, at, ok := pickDevice(w.u, &w.s, k)
		if !ok {
			return nil
		}
		if at == stSource {
			w.source, w.srcPart = path, w.u.isPartition(path)
			w.s.push(w.u, stTarget)
			w.s.setList(stTarget, deviceList(w.u, deviceQuery{disks: !w.srcPart, parts: w.srcPart, writable: true, exclude: w.source, typed: true}))
			return nil
		}
		w.target = path
		w.s.push(w.u, stLayout)
		w.s.setList(stLayout, layoutList(!w.srcPart, true))
	case stLayout:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		w.mode, w.sbs = layout.Keep, it.key == "sbs"
		if it.key == "fill" {
			w.mode = layout.Fill
		}
		return w.start()
	}
	return nil
}

func (w *cloneWizard) start() tea.Cmd {
	b, rescue := w.u.o.Backend, w.u.o.Rescue
	kind := engine.CloneDisk
	if w.srcPart {
		kind = engine.ClonePartition
	}
	o := engine.CloneOptions{Kind: kind, Source: w.source, Target: w.target, Layout: engine.LayoutOptions{Mode: w.mode, Align: 1 << 20}, SectorBySector: w.sbs}
	c := confirmView{verb: "Clone", copies: "only the blocks the filesystems use", layout: w.mode, bars: true}
	if w.sbs {
		c.copies = "every sector (sector by sector)"
	}
	source := w.source
	return w.u.launch(job{
		flow: flowClone, heading: fmt.Sprintf("Clone %s to %s", w.source, w.target),
		prepare: w.target, sources: []string{w.source}, target: w.target, confirm: c,
		run: func(ctx context.Context, p engine.Progress, confirm func(engine.Plan) error) ([]string, error) {
			var plan *engine.Plan
			o.Progress, o.Confirm = p, keepPlan(&plan, confirm)
			res, err := b.Clone(ctx, o)
			if err != nil {
				return nil, err
			}
			lines := restoreLines(&res.RestoreResult, plan, "Cloned "+source, rescue)
			for _, f := range res.Fallbacks {
				lines = append(lines, "Copied sector by sector: "+f)
			}
			return lines, nil
		},
	})
}

func (w *cloneWizard) recover(err error) bool {
	return recoverTo(w.u, &w.s, err, w.target, w.source, stSource)
}

func (w *cloneWizard) body(rows int) []string {
	u, s := w.u, &w.s
	switch s.cur {
	case stSource:
		return u.listBody(s.list(), "Pick what to clone: a whole disk, or one partition.", rows)
	case stTarget:
		intro := "Pick the disk to copy " + w.source + " onto. Everything on it will be overwritten."
		if w.srcPart {
			intro = "Pick the partition to copy " + w.source + " onto. Everything on it will be overwritten."
		}
		return u.listBody(s.list(), intro, rows, "You will see a summary and type the target's name before anything is written.")
	case stDevicePath:
		return u.inputBody(&s.in, devicePathIntro)
	case stLayout:
		return layoutBody(u, s, w.target, rows)
	}
	return nil
}
