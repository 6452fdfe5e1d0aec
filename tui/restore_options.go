package tui

import (
	"fmt"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/dustin/go-humanize"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// The restore wizard's layout step with what `lifeboat restore` offers
// besides keep and fill: sizes given by hand (--layout manual), new disk
// and partition IDs (--new-ids) and a delta restore onto an older copy
// (--delta). A restore of one partition gets the same step with delta
// only.

// restoreOpts are the restore's options beyond the layout mode.
type restoreOpts struct {
	delta  bool
	newIDs bool
	sizes  map[int]int64 // manual sizes by partition number
}

// apply sets them in ro; a restore of one partition takes only delta
// (new IDs and sizes are the disk's).
func (o *restoreOpts) apply(ro *engine.RestoreOptions, onePartition bool) {
	ro.Delta = o.delta
	if onePartition {
		return
	}
	ro.Layout.NewIDs = o.newIDs
	if ro.Layout.Mode == layout.Manual {
		ro.Layout.Sizes = o.sizes
	}
}

// toggle is an on/off option drawn as a list item.
func toggle(key, label string, on bool) item {
	mark := "[ ]"
	if on {
		mark = "[x]"
	}
	return item{label: mark + " " + label, key: key}
}

const deltaLabel = "Delta: the target holds an older copy; write only what differs"

func (w *restoreWizard) layoutStep() {
	if w.intoPartition() {
		w.s.setList(stLayout, newList(
			item{label: "Write the partition as the image holds it", key: "keep"},
			toggle("delta", deltaLabel, w.opts.delta)))
		return
	}
	items := layoutList(true, false).items
	items = append(items,
		item{label: "Set the partition sizes by hand...", key: "manual"},
		toggle("newids", "New disk and partition IDs (both disks stay in one machine)", w.opts.newIDs),
		toggle("delta", deltaLabel, w.opts.delta),
		fitItem,
	)
	w.s.setList(stLayout, newList(items...))
}

func (w *restoreWizard) layoutKey(k tea.KeyMsg) tea.Cmd {
	it, ok := listKey(&w.s, k)
	if !ok {
		return nil
	}
	switch it.key {
	case "newids":
		w.opts.newIDs = !w.opts.newIDs
		w.layoutStep()
		return nil
	case "delta":
		w.opts.delta = !w.opts.delta
		w.layoutStep()
		return nil
	case "manual":
		w.s.textStep(w.u, stSizes, w.sizesText(), false)
		return nil
	case "fill":
		w.mode = layout.Fill
	case "fit":
		w.mode = layout.Fit
	default:
		w.mode = layout.Keep
	}
	return w.start()
}

// sizesText is the sizes as typed: the ones given before, else the
// image's.
func (w *restoreWizard) sizesText() string {
	s := w.img.stream()
	if s == nil || s.Table == nil {
		return ""
	}
	var f []string
	for _, p := range s.Table.Partitions {
		size := p.Size
		if n, ok := w.opts.sizes[p.Number]; ok {
			size = n
		}
		f = append(f, fmt.Sprintf("%d=%s", p.Number, strings.ReplaceAll(humanize.IBytes(uint64(size)), " ", "")))
	}
	return strings.Join(f, " ")
}

func (w *restoreWizard) sizesKey(k tea.KeyMsg) tea.Cmd {
	v, enter := textKey(&w.s.in, k)
	if !enter {
		return nil
	}
	sizes, err := parseSizes(v)
	if err != nil {
		w.u.err = err.Error()
		return nil
	}
	w.opts.sizes, w.mode = sizes, layout.Manual
	return w.start()
}

// parseSizes reads "1=512MiB 2=60GiB": partition numbers and sizes in
// go-humanize's grammar (MiB, GiB binary; MB, GB decimal).
func parseSizes(v string) (map[int]int64, error) {
	sizes := map[int]int64{}
	for _, f := range strings.Fields(v) {
		num, size, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("%q: write NUMBER=SIZE for each partition, e.g. 2=60GiB", f)
		}
		b, err := engine.ParseSize(size)
		if err != nil || b == 0 || b > 1<<62 {
			return nil, fmt.Errorf("%q: the size is not understood; write it as 60GiB or 512MiB", f)
		}
		sizes[n] = b
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("type at least one NUMBER=SIZE, e.g. 2=60GiB")
	}
	return sizes, nil
}

func (w *restoreWizard) sizesBody() []string {
	out := w.u.inputBody(&w.s.in, "New size of each partition on "+w.target+", as NUMBER=SIZE (MiB, GiB), e.g. 2=60GiB:",
		"A partition may shrink no lower than what its data needs; a grown partition's filesystem is grown to match. Partitions not named keep their size.")
	if s := w.img.stream(); s != nil && s.Table != nil {
		out = append(out, "", "In the image:")
		for _, p := range s.Table.Partitions {
			out = append(out, cut("  "+partLine(p), w.u.w))
		}
	}
	return out
}
