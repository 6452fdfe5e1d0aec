package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
	system  bool // clone the partitions the running system boots from
	target  string
	mode    layout.Mode
	sbs     bool // sector by sector
	newIDs  bool
}

func newClone(u *ui) *cloneWizard {
	w := &cloneWizard{u: u}
	w.s.push(u, stSource)
	l := deviceList(u, deviceQuery{disks: true, parts: true})
	if sys := systemDisk(u.disks); sys != "" {
		// As lifeboat clone system: what the running system needs to
		// boot, without the data partitions beside it.
		l.items = append(l.items, item{label: "The running system on " + sys + ": only the partitions it boots from", key: "system:" + sys})
	}
	w.s.setList(stSource, l)
	return w
}

func (w *cloneWizard) layoutStep() {
	l := layoutList(!w.srcPart, !w.system)
	if !w.srcPart {
		l.items = append(l.items, toggle("newids", "New disk and partition IDs (both disks stay in one machine)", w.newIDs), fitItem)
	}
	w.s.setList(stLayout, l)
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
			sys, system := strings.CutPrefix(path, "system:")
			if system {
				path = sys
			}
			w.source, w.srcPart, w.system = path, w.u.isPartition(path), system
			w.s.push(w.u, stTarget)
			w.s.setList(stTarget, deviceList(w.u, deviceQuery{disks: !w.srcPart, parts: w.srcPart, writable: true, exclude: w.source, typed: true}))
			return nil
		}
		w.target = path
		w.s.push(w.u, stLayout)
		w.layoutStep()
	case stLayout:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		if it.key == "newids" {
			w.newIDs = !w.newIDs
			w.layoutStep()
			return nil
		}
		w.mode, w.sbs = layout.Keep, it.key == "sbs"
		switch it.key {
		case "fill":
			w.mode = layout.Fill
		case "fit":
			w.mode = layout.Fit
		}
		return w.start()
	}
	return nil
}

func (w *cloneWizard) start() tea.Cmd {
	b, rescue := w.u.o.Backend, w.u.o.Rescue
	kind := engine.CloneDisk
	switch {
	case w.system:
		kind = engine.CloneSystem
	case w.srcPart:
		kind = engine.ClonePartition
	}
	o := engine.CloneOptions{Kind: kind, Source: w.source, Target: w.target, SectorBySector: w.sbs,
		Layout: engine.LayoutOptions{Mode: w.mode, Align: 1 << 20, NewIDs: w.newIDs}}
	c := confirmView{verb: "Clone", copies: "only the blocks the filesystems use", layout: w.mode, bars: true}
	if w.sbs {
		c.copies = "every sector (sector by sector)"
	}
	source := w.source
	heading := fmt.Sprintf("Clone %s to %s", w.source, w.target)
	if w.system {
		heading = fmt.Sprintf("Clone the system on %s to %s", w.source, w.target)
	}
	return w.u.launch(job{
		flow: flowClone, heading: heading,
		prepare: w.target, sources: []string{w.source}, target: w.target, confirm: c,
		run: func(ctx context.Context, h hooks) ([]string, error) {
			o.Progress, o.Confirm, o.Written = h.progress, h.confirm, h.written
			res, err := b.Clone(ctx, o)
			if err != nil {
				return nil, err
			}
			lines := restoreLines(&res.RestoreResult, "Cloned "+source, rescue)
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
		intro := "Pick what to clone: a whole disk, or one partition."
		if systemDisk(u.disks) != "" {
			intro = "Pick what to clone: a whole disk, one partition, or (last) the running system."
		}
		return u.listBody(s.list(), intro, rows)
	case stTarget:
		intro := "Pick the disk to copy " + w.source + " onto. Everything on it will be overwritten."
		if w.system {
			intro = "Pick the disk to copy the system on " + w.source + " onto (its boot and system partitions). Everything on it will be overwritten."
		}
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

// systemDisk is the disk the running system's root (/) is mounted from,
// "" when there is none (the rescue system runs from memory).
func systemDisk(disks []engine.DiskInfo) string {
	for _, d := range disks {
		if slices.Contains(diskMounts(d), "/") {
			return d.Path
		}
	}
	return ""
}
