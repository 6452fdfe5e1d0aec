package tui

import (
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The Disks screen, and how disks and partitions are described wherever
// they are listed.

func (m *Model) disksKey(k tea.KeyMsg) {
	switch k.String() {
	case "up", "k":
		m.scroll = max(m.scroll-1, 0)
	case "down", "j":
		m.scroll++
	case "pgdown":
		m.scroll += m.h - 6
	case "pgup":
		m.scroll = max(m.scroll-(m.h-6), 0)
	case "r":
		m.loadDisks()
	}
}

func (m *Model) disksBody(rows int) []string {
	lines := m.diskLines()
	if m.scroll > len(lines)-rows {
		m.scroll = max(len(lines)-rows, 0)
	}
	return lines[m.scroll:]
}

func (m *Model) diskLines() []string {
	var out []string
	if len(m.disks) == 0 {
		return []string{"No disks found."}
	}
	for _, d := range m.disks {
		out = append(out, cut(diskLine(d), m.w))
		if d.FS != nil {
			out = append(out, cut("         whole disk: "+fsText(d.FS), m.w))
		}
		if d.Error != "" {
			out = append(out, indent(wrap("cannot read: "+d.Error, m.w-9), "         ")...)
		}
		for _, p := range d.Partitions {
			l := fmt.Sprintf("  %-9s %9s  %s", p.Name, engine.HumanBytes(p.Size), fsText(p.FS))
			if p.Label != "" {
				l += "  name " + p.Label
			}
			out = append(out, cut(l, m.w))
		}
	}
	return out
}

func diskLine(d engine.DiskInfo) string {
	l := fmt.Sprintf("%-8s %-6s %9s", d.Name, d.Bus, engine.HumanBytes(d.Size))
	if d.Table != "" {
		l += "  " + d.Table
	} else {
		l += "  no table"
	}
	if d.Model != "" {
		l += "  " + d.Model
	}
	if d.Serial != "" {
		l += "  serial " + d.Serial
	}
	if d.ReadOnly {
		l += "  read-only"
	}
	return l
}

func fsText(fs *images.FS) string {
	if fs == nil {
		return "no filesystem found"
	}
	s := fs.Type
	if fs.Label != "" {
		s += fmt.Sprintf(" %q", fs.Label)
	}
	if fs.Used >= 0 && fs.Size > 0 {
		s += fmt.Sprintf(", %s used", engine.HumanBytes(fs.Used))
	}
	return s
}

func partLine(p images.Partition) string {
	l := fmt.Sprintf("%-2d %9s", p.Number, engine.HumanBytes(p.Size))
	if p.FS != nil {
		l += fmt.Sprintf("  %s %q", p.FS.Type, p.FS.Label)
	}
	if p.Name != "" {
		l += "  name " + p.Name
	}
	return l
}
