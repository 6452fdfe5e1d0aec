package tui

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// item is one line of a list; key is what Update acts on.
type item struct {
	label    string
	key      string
	disabled bool // shown, but the cursor skips it (read-only disks)
	note     bool // a line describing the item above it, never chosen
}

// list is a vertical menu: arrows move, Enter picks.
type list struct {
	items []item
	cur   int
}

func newList(items ...item) *list {
	l := &list{items: items}
	l.cur = -1
	l.move(1)
	return l
}

func (l *list) move(d int) {
	n := len(l.items)
	for i := l.cur + d; i >= 0 && i < n; i += d {
		if !l.items[i].disabled {
			l.cur = i
			return
		}
	}
	if l.cur < 0 {
		l.cur = 0
	}
}

func (l *list) selected() (item, bool) {
	if l == nil || l.cur < 0 || l.cur >= len(l.items) || l.items[l.cur].disabled {
		return item{}, false
	}
	return l.items[l.cur], true
}

// update moves the cursor; it reports whether Enter was pressed on an item.
func (l *list) update(k tea.KeyMsg) (item, bool) {
	switch k.String() {
	case "up", "k", "shift+tab":
		l.move(-1)
	case "down", "j", "tab":
		l.move(1)
	case "home", "pgup":
		l.cur = -1
		l.move(1)
	case "end", "pgdown":
		l.cur = len(l.items)
		l.move(-1)
	case "enter":
		return l.selected()
	}
	return item{}, false
}

// render draws at most rows lines, scrolled so the cursor shows. The
// selected line starts with "> " (and is reversed when colours are on),
// so the selection never depends on colour alone.
func (l *list) render(st styles, width, rows int) []string {
	off := 0
	if rows > 0 && l.cur >= rows {
		off = l.cur - rows + 1
	}
	var out []string
	for i := off; i < len(l.items) && (rows <= 0 || i < off+rows); i++ {
		it := l.items[i]
		line := "  " + it.label
		if i == l.cur {
			line = "> " + it.label
		}
		line = cut(line, width)
		if i == l.cur {
			line = st.sel.Render(line)
		} else if it.disabled {
			line = st.dim.Render(line)
		}
		out = append(out, line)
	}
	if off > 0 {
		out[0] = cut(out[0], width-4) + " ..."
	}
	return out
}

// input is a one-line text field; masked fields show '*'.
type input struct {
	value []rune
	mask  bool
}

func (in *input) update(k tea.KeyMsg) {
	switch k.Type {
	case tea.KeyRunes:
		in.value = append(in.value, k.Runes...)
	case tea.KeySpace:
		in.value = append(in.value, ' ')
	case tea.KeyBackspace, tea.KeyDelete:
		if len(in.value) > 0 {
			in.value = in.value[:len(in.value)-1]
		}
	case tea.KeyCtrlU:
		in.value = nil
	}
}

func (in *input) String() string { return string(in.value) }

func (in *input) set(s string) { in.value = []rune(s) }

func (in *input) render(width int) string {
	s := string(in.value)
	if in.mask {
		s = strings.Repeat("*", len(in.value))
	}
	s += "_"
	if len(s) > width-2 {
		s = s[len(s)-(width-2):]
	}
	return "  " + s
}

// cut shortens a line to width columns (the screens are ASCII).
func cut(s string, width int) string {
	r := []rune(s)
	if width > 0 && len(r) > width {
		return string(r[:width])
	}
	return s
}

// wrap breaks text into lines of at most width columns at spaces, keeping
// its own line breaks; an error is shown in full, never cut off.
func wrap(text string, width int) []string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			for len([]rune(w)) > width {
				if line != "" {
					out = append(out, line)
					line = ""
				}
				r := []rune(w)
				out = append(out, string(r[:width]))
				w = string(r[width:])
			}
			switch {
			case line == "":
				line = w
			case len([]rune(line))+1+len([]rune(w)) <= width:
				line += " " + w
			default:
				out = append(out, line)
				line = w
			}
		}
		out = append(out, line)
	}
	return out
}

func indent(lines []string, prefix string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = prefix + l
	}
	return out
}

// clock formats a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// seg is one partition drawn in a bar.
type seg struct {
	n           int
	start, size int64
}

// bar draws partitions on a disk of disk bytes, at width columns for
// scale bytes: every bar of a screen is drawn at the same scale, so the
// same partition is as wide in each and a smaller disk is a shorter bar.
// Each partition is its number repeated, free space is '.'; a partition
// too small for a column of its own still gets one.
func bar(segs []seg, disk, scale int64, width int) string {
	if scale <= 0 {
		return "[" + strings.Repeat(".", width) + "]"
	}
	col := func(off int64) int { return int(off * int64(width) / scale) }
	n := min(max(col(disk), 1), width)
	b := []byte(strings.Repeat(".", n))
	last := 0 // the column after the previous partition
	for _, s := range segs {
		// A partition after a tiny one gives up the column the tiny one
		// took; its end stays where the scale puts it.
		from, to := max(col(s.start), last), col(s.start+s.size)
		if to <= from {
			to = from + 1
		}
		last = to
		c := byte('#')
		if s.n >= 1 && s.n <= 9 {
			c = byte('0' + s.n)
		} else if s.n >= 10 && s.n < 36 {
			c = byte('a' + s.n - 10)
		}
		for i := max(from, 0); i < min(to, n); i++ {
			b[i] = c
		}
	}
	return "[" + string(b) + "]"
}

// textKey types k into in; on Enter it returns the text and true.
func textKey(in *input, k tea.KeyMsg) (string, bool) {
	if k.String() == "enter" {
		return in.String(), true
	}
	in.update(k)
	return "", false
}

// scrollKey moves a scrolled text (the disks, the log) by a line or a
// page; it reports whether k was a scrolling key. The body clamps the
// far end.
func scrollKey(pos *int, k tea.KeyMsg, page int) bool {
	switch k.String() {
	case "up", "k":
		*pos = max(*pos-1, 0)
	case "down", "j":
		*pos++
	case "pgup":
		*pos = max(*pos-page, 0)
	case "pgdown":
		*pos += page
	default:
		return false
	}
	return true
}
