package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// restoreWizard puts an image back: image (and password), backup point,
// whole disk or one partition, target, layout, then the shared
// confirmation, progress and result.
type restoreWizard struct {
	u         *ui
	s         steps
	img       imagePicker
	partition int // 0: the whole image
	target    string
	mode      layout.Mode
	opts      restoreOpts // restore_options.go
}

func newRestore(u *ui) (*restoreWizard, tea.Cmd) {
	w := &restoreWizard{u: u}
	return w, w.img.begin(u, &w.s)
}

func (w *restoreWizard) flow() flow  { return flowRestore }
func (w *restoreWizard) nav() *steps { return &w.s }

func (w *restoreWizard) key(k tea.KeyMsg) tea.Cmd {
	if cmd, ok := w.img.key(w.u, &w.s, k); ok {
		return cmd
	}
	switch w.s.cur {
	case stPoint:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		if it.key != w.img.path {
			return w.img.open(w.u, it.key, w.img.password)
		}
		w.afterPoint()
	case stScope:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		fmt.Sscan(it.key, &w.partition)
		w.targetStep()
	case stTarget, stDevicePath:
		path, _, ok := pickDevice(w.u, &w.s, k)
		if !ok {
			return nil
		}
		w.target = path
		// A disk with a table gets the layout step; one partition the
		// same step with what applies to it (delta).
		if s := w.img.stream(); s != nil && (w.partition == 0 && s.Table != nil || w.intoPartition()) {
			w.s.push(w.u, stLayout)
			w.layoutStep()
			return nil
		}
		w.mode = layout.Keep
		return w.start()
	case stLayout:
		return w.layoutKey(k)
	case stSizes:
		return w.sizesKey(k)
	}
	return nil
}

func (w *restoreWizard) msg(msg tea.Msg) tea.Cmd {
	if !w.img.take(w.u, &w.s, msg) {
		return nil
	}
	if w.s.cur == stPoint {
		// An earlier point was picked and is open now.
		w.afterPoint()
		return nil
	}
	w.pointStep()
	return nil
}

// pointStep lists the image's backup points: a single one, or the chain
// newest first, each restorable on its own.
func (w *restoreWizard) pointStep() {
	info := w.img.info
	w.s.push(w.u, stPoint)
	var what []string
	for _, s := range info.Meta.Streams {
		what = append(what, fmt.Sprintf("%s %s of %s", engine.HumanBytes(s.Size), s.Kind, s.Source))
	}
	if len(info.Chain) == 0 {
		created := info.Created.UTC().Format("2006-01-02 15:04")
		w.s.setList(stPoint, newList(item{label: fmt.Sprintf("%s  full backup: %s", created, strings.Join(what, ", ")), key: w.img.path}))
		return
	}
	var items []item
	for i := len(info.Chain) - 1; i >= 0; i-- {
		c := info.Chain[i]
		l := fmt.Sprintf("%s  %-12s %s", c.Created.UTC().Format("2006-01-02 15:04"), c.Kind, filepath.Base(c.File))
		if c.Missing {
			l += "  (missing)"
		}
		items = append(items, item{label: l, key: c.File, disabled: c.Missing})
	}
	w.s.setList(stPoint, newList(items...))
}

func (w *restoreWizard) afterPoint() {
	s := w.img.stream()
	if s != nil && s.Kind == images.KindDisk && s.Table != nil && len(s.Table.Partitions) > 0 {
		w.s.push(w.u, stScope)
		items := []item{{label: fmt.Sprintf("Whole disk: %s, %d partitions (%s)", engine.HumanBytes(s.Size), len(s.Table.Partitions), s.Table.Type), key: "0"}}
		for _, p := range s.Table.Partitions {
			items = append(items, item{label: "Partition " + partLine(p), key: fmt.Sprint(p.Number)})
		}
		w.s.setList(stScope, newList(items...))
		return
	}
	w.partition = 0
	w.targetStep()
}

// intoPartition says the restore writes one partition (of a disk image, or
// a partition image).
func (w *restoreWizard) intoPartition() bool {
	s := w.img.stream()
	return w.partition != 0 || s != nil && s.Kind == images.KindPartition
}

func (w *restoreWizard) targetStep() {
	w.s.push(w.u, stTarget)
	w.s.setList(stTarget, deviceList(w.u, deviceQuery{disks: true, parts: w.intoPartition(), writable: true, image: w.img.path, typed: true}))
}

func (w *restoreWizard) start() tea.Cmd {
	b, rescue := w.u.o.Backend, w.u.o.Rescue
	image := w.img.path
	o := engine.RestoreOptions{Image: image, Password: w.img.passwordFunc(), Target: w.target, Partition: w.partition,
		Layout: engine.LayoutOptions{Mode: w.mode, Align: 1 << 20}}
	w.opts.apply(&o, w.intoPartition())
	c := confirmView{verb: "Restore", copies: "only the blocks the filesystems use", layout: w.mode, bars: w.partition == 0}
	if s := w.img.stream(); s != nil {
		if s.Mode == images.ModeAllSectors {
			c.copies = "every sector (the image was made sector by sector)"
		}
		if w.partition == 0 {
			c.srcSize = s.Size
		}
	}
	return w.u.launch(job{
		flow: flowRestore, heading: fmt.Sprintf("Restore %s to %s", filepath.Base(image), w.target),
		prepare: w.target, sources: []string{image}, target: w.target, confirm: c,
		run: func(ctx context.Context, h hooks) ([]string, error) {
			o.Progress, o.Confirm, o.Written = h.progress, h.confirm, h.written
			res, err := b.Restore(ctx, o)
			if err != nil {
				return nil, err
			}
			return restoreLines(res, "Restored "+image, rescue), nil
		},
	})
}

// recover: a wrong name or a refused target goes back to the target list
// (the cursor on the target chosen), a refused image to the image list,
// Esc at the confirmation to the step it was started from.
func (w *restoreWizard) recover(err error) bool {
	if w.mode == layout.Manual && errors.Is(err, engine.ErrRefused) && w.s.backTo(stSizes) {
		w.u.err = refusalText(err) + " Nothing was written; change the sizes, the other choices are kept."
		return true
	}
	return recoverTo(w.u, &w.s, err, w.target, w.img.path, stImage)
}

func (w *restoreWizard) body(rows int) []string {
	u, s := w.u, &w.s
	if out, ok := w.img.body(u, s, "restore", rows); ok {
		return out
	}
	switch s.cur {
	case stPoint:
		if w.img.info != nil && len(w.img.info.Chain) > 0 {
			return u.listBody(s.list(), "Backup points in the chain of "+w.img.path+", newest first:", rows,
				"Each point restores the whole state at its time; earlier points are read from the files beside it.")
		}
		after := "This image holds a single backup point: a full backup, and no later points building on it were found."
		if n := w.img.later(w.img.info); n > 0 {
			after = fmt.Sprintf("This image is the full backup at the start of a chain, the base of %s found beside it. Restoring it restores the state of its own time; choose a later point's image for a later state.", plural(n, "later point"))
		}
		return u.listBody(s.list(), "Backup points in "+w.img.path+":", rows, after)
	case stScope:
		return u.listBody(s.list(), "Restore the whole disk, or only one partition of it?", rows)
	case stTarget:
		intro := "Pick the disk to restore onto. Everything on it will be overwritten."
		if w.intoPartition() {
			intro = "Pick the partition to restore onto, or a disk to add a new partition in its free space."
		}
		return u.listBody(s.list(), intro, rows, "You will see a summary and type the target's name before anything is written.")
	case stDevicePath:
		return u.inputBody(&s.in, devicePathIntro)
	case stLayout:
		if w.intoPartition() {
			return u.listBody(s.list(), "How should the partition be written to "+w.target+"?", rows,
				"A delta restore compares with the older copy "+w.target+" holds and writes only the chunks that differ.")
		}
		return layoutBody(u, s, w.target, rows)
	case stSizes:
		return w.sizesBody()
	}
	return nil
}
