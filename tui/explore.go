package tui

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// exploreWizard gets files back without restoring a disk: image (and
// password, and the point of a chain: each point is its own image),
// partition, then a browser in which Space marks files and folders, then
// the folder they are copied into, then the shared progress and result.
type exploreWizard struct {
	u      *ui
	s      steps
	img    imagePicker
	part   engine.ViewPart
	dir    string          // the folder shown, inside the partition
	marked map[string]bool // paths inside the partition
	isDir  map[string]bool // of the folder shown
	parts  []engine.ViewPart
	dest   string
}

func newExplore(u *ui) (*exploreWizard, tea.Cmd) {
	w := &exploreWizard{u: u}
	return w, w.img.begin(u, &w.s)
}

func (w *exploreWizard) flow() flow  { return flowExplore }
func (w *exploreWizard) nav() *steps { return &w.s }

func (w *exploreWizard) options() engine.ExploreOptions {
	return engine.ExploreOptions{Image: w.img.path, Password: w.img.passwordFunc()}
}

func (w *exploreWizard) msg(msg tea.Msg) tea.Cmd {
	if !w.img.take(w.u, &w.s, msg) {
		return nil
	}
	parts, err := w.u.o.Backend.ExploreParts(w.u.ctx, w.options())
	if err != nil {
		w.u.err = refusalText(err)
		return nil
	}
	var items []item
	for _, p := range parts {
		fs, how := "no filesystem", ""
		if p.FS != nil && p.FS.Type != "" {
			fs = p.FS.Type
			if p.FS.Label != "" {
				fs += fmt.Sprintf(" %q", p.FS.Label)
			}
		}
		if p.FS == nil || p.FS.Type == "" {
			how = "  (nothing to browse)"
		}
		items = append(items, item{label: fmt.Sprintf("Partition %d  %s  %s%s", p.Number, engine.HumanBytes(p.Size), fs, how), key: fmt.Sprint(p.Number),
			disabled: how != ""})
	}
	if len(items) == 0 {
		w.u.err = "This image holds no partition with files to browse."
		return nil
	}
	w.s.push(w.u, stExplorePart)
	w.s.setList(stExplorePart, newList(items...))
	w.parts = parts
	return nil
}

func (w *exploreWizard) key(k tea.KeyMsg) tea.Cmd {
	if cmd, ok := w.img.key(w.u, &w.s, k); ok {
		return cmd
	}
	switch w.s.cur {
	case stExplorePart:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		for _, p := range w.parts {
			if fmt.Sprint(p.Number) == it.key {
				w.part = p
			}
		}
		w.marked = map[string]bool{}
		w.s.push(w.u, stBrowse)
		w.browse("/", "")
	case stBrowse:
		return w.browseKey(k)
	case stExtractDest:
		it, ok := listKey(&w.s, k)
		if !ok {
			return nil
		}
		if it.key == "" {
			w.s.textStep(w.u, stExtractFolder, "", false)
			return nil
		}
		w.dest = it.key
		return w.start()
	case stExtractFolder:
		v, ok := textKey(&w.s.in, k)
		if !ok {
			return nil
		}
		if !filepath.IsAbs(v) {
			w.u.err = "Type a full path, starting with /."
			return nil
		}
		w.dest = v
		return w.start()
	}
	return nil
}

// browse shows folder dir of the partition with the cursor on focus (a
// path in it; "" the first entry, or where it was when dir is shown
// again).
func (w *exploreWizard) browse(dir, focus string) {
	l, err := w.u.o.Backend.ListFiles(w.u.ctx, w.options(), w.part.Number, dir)
	if err != nil {
		w.u.err = refusalText(err)
		if w.s.lists[stBrowse] == nil {
			w.s.setList(stBrowse, newList(item{label: "(nothing could be read)", disabled: true}))
		}
		return
	}
	same := w.dir == dir
	w.dir = dir
	w.u.note = ""
	if l.ReadPath != "" {
		w.u.note = "Read through " + l.ReadPath + "."
	}
	ents := slices.Clone(l.Entries)
	slices.SortFunc(ents, func(a, b engine.FileEntry) int {
		if a.Mode.IsDir() != b.Mode.IsDir() {
			if a.Mode.IsDir() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	var items []item
	if dir != "/" {
		items = append(items, item{label: "    ../", key: ".."})
	}
	w.isDir = map[string]bool{}
	for _, e := range ents {
		p := path.Join(dir, e.Name)
		mark := "[ ]"
		if w.marked[p] {
			mark = "[x]"
		}
		name, size := e.Name, engine.HumanBytes(e.Size)
		switch {
		case e.Mode.IsDir():
			name, size = name+"/", ""
			w.isDir[p] = true
		case e.Link != "":
			name, size = name+" -> "+e.Link, ""
		}
		items = append(items, item{label: fmt.Sprintf("%s %-40s %9s  %s", mark, cut(name, 40), size, e.ModTime.Local().Format("2006-01-02 15:04")), key: p})
	}
	l2 := newList(items...)
	if i := slices.IndexFunc(items, func(it item) bool { return it.key == focus }); i >= 0 {
		l2.cur = i
	} else if old := w.s.lists[stBrowse]; old != nil && same {
		l2.cur = min(old.cur, len(items)-1)
	}
	w.s.lists[stBrowse] = l2
}

func (w *exploreWizard) browseKey(k tea.KeyMsg) tea.Cmd {
	l := w.s.list()
	switch k.String() {
	case " ":
		if it, ok := l.selected(); ok && it.key != ".." {
			w.marked[it.key] = !w.marked[it.key]
			if !w.marked[it.key] {
				delete(w.marked, it.key)
			}
			w.browse(w.dir, it.key)
		}
		return nil
	case "x", "e":
		if len(w.marked) == 0 {
			w.u.err = "Mark files or folders with Space first."
			return nil
		}
		w.destStep()
		return nil
	case "backspace", "left", "h":
		if w.dir != "/" {
			w.browse(path.Dir(w.dir), w.dir)
		}
		return nil
	}
	it, ok := l.update(k)
	if !ok {
		return nil
	}
	if it.key == ".." {
		w.browse(path.Dir(w.dir), w.dir)
		return nil
	}
	if w.isDir[it.key] {
		w.browse(it.key, "")
		return nil
	}
	// Enter on a file marks it, as Space does.
	w.marked[it.key] = !w.marked[it.key]
	if !w.marked[it.key] {
		delete(w.marked, it.key)
	}
	w.browse(w.dir, it.key)
	return nil
}

// destStep offers the writable folders (another disk, a USB stick) and
// typing one.
func (w *exploreWizard) destStep() {
	w.s.push(w.u, stExtractDest)
	var items []item
	if w.u.o.Destinations != nil {
		for _, d := range w.u.o.Destinations() {
			items = append(items, item{label: d, key: d})
		}
	}
	items = append(items, item{label: "Type a folder...", key: ""})
	w.s.setList(stExtractDest, newList(items...))
}

func (w *exploreWizard) markedPaths() []string {
	var out []string
	for p := range w.marked {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (w *exploreWizard) start() tea.Cmd {
	b, image := w.u.o.Backend, w.img.path
	o := engine.ExtractOptions{ExploreOptions: w.options(), Partition: w.part.Number, Paths: w.markedPaths(), Dest: w.dest}
	return w.u.launch(job{
		flow: flowExplore, heading: fmt.Sprintf("Extract from %s", filepath.Base(image)),
		prepare: w.dest, sources: []string{image},
		readOnly: "The image was only read. Files copied completely are in the folder; none is there half-written.",
		stopAsk:  "Stop copying?",
		run: func(ctx context.Context, h hooks) ([]string, error) {
			o.Progress = h.progress
			res, err := b.Extract(ctx, o)
			if err != nil && (res == nil || res.Files+res.Dirs == 0) {
				return nil, err
			}
			lines := []string{fmt.Sprintf("Copied %s (%s), %s and %s from partition %d of %s into %s.",
				plural(res.Files, "file"), engine.HumanBytes(res.Bytes), plural(res.Dirs, "folder"), plural(res.Links, "link"), w.part.Number, image, w.dest)}
			if res.ReadPath != "" {
				lines = append(lines, "Read through "+res.ReadPath+"; "+plural(int(res.ChunksRead), "chunk")+" of the image read.")
			}
			var ee *engine.ExtractError
			if errors.As(err, &ee) {
				lines = append(lines, "Not copied (the image's filesystem could not give them back): "+strings.Join(ee.Failed, "; "))
			}
			return lines, nil
		},
	})
}

// recover: a wrong password goes back to the image list; a refused
// folder to the folder step.
func (w *exploreWizard) recover(err error) bool {
	if errors.Is(err, images.ErrWrongPassword) || errors.Is(err, images.ErrPasswordNeeded) {
		if w.s.backTo(stImage) {
			w.u.err = err.Error() + ". Choose the image again and type its password."
			return true
		}
		return false
	}
	if w.s.backTo(stExtractDest) {
		w.u.err = refusalText(err) + " Choose another folder; the marked files are kept."
		return true
	}
	return false
}

func (w *exploreWizard) body(rows int) []string {
	u, s := w.u, &w.s
	if out, ok := w.img.body(u, s, "explore", rows); ok {
		return out
	}
	switch s.cur {
	case stExplorePart:
		return u.listBody(s.list(), "Pick the partition whose files you want:", rows,
			"The image is only read: its partitions are mounted read-only, and only the parts you open are read.")
	case stBrowse:
		return u.listBody(s.list(), fmt.Sprintf("Partition %d: %s   (%s marked)", w.part.Number, w.dir, plural(len(w.marked), "item")), rows-1,
			"Enter opens a folder, Space marks, Backspace goes up, x copies the marked items out.")
	case stExtractDest:
		return u.listBody(s.list(), fmt.Sprintf("Copy the %s into which folder?", plural(len(w.marked), "marked item")), rows,
			"Choose a folder on another disk, e.g. a USB stick. Existing files are never overwritten.")
	case stExtractFolder:
		return u.inputBody(&s.in, "Type the folder to copy into (created if missing):")
	}
	return nil
}
