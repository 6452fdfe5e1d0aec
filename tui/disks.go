package tui

import (
	"fmt"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The Disks screen, and how disks and partitions are described wherever
// they are listed.

func (m *Model) disksKey(k tea.KeyMsg) {
	if !scrollKey(&m.scroll, k, m.h-6) && k.String() == "r" {
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
		if w := diskWarnings(d, m.disks, ""); len(w) > 0 {
			out = append(out, cut("         ! "+strings.Join(w, "; "), m.w))
		}
		if d.FS != nil {
			out = append(out, cut("         whole disk: "+fsText(d.FS), m.w))
		}
		if d.Error != "" {
			out = append(out, indent(wrap("cannot read: "+d.Error, m.w-9), "         ")...)
		}
		for _, p := range d.Partitions {
			out = append(out, cut(partInfoLine(p), m.w))
		}
	}
	return out
}

// partInfoLine describes a partition of a disk: name, size, filesystem
// and its label, GPT name, where it is mounted.
func partInfoLine(p engine.PartitionInfo) string {
	l := fmt.Sprintf("  %-9s %9s  %s", p.Name, engine.HumanBytes(p.Size), fsText(p.FS))
	if p.Label != "" && (p.FS == nil || p.FS.Label != p.Label) {
		l += "  name " + p.Label
	}
	if m := mountText(p.MountPoints); m != "" {
		l += "  [" + m + "]"
	}
	return l
}

// mountText says where a device is in use: "mounted at /boot/efi", "swap".
func mountText(mps []string) string {
	var at []string
	swap := false
	for _, mp := range mps {
		if mp == "[SWAP]" {
			swap = true
		} else {
			at = append(at, mp)
		}
	}
	var out []string
	if len(at) > 0 {
		out = append(out, "mounted at "+strings.Join(at, ", "))
	}
	if swap {
		out = append(out, "in use as swap")
	}
	return strings.Join(out, ", ")
}

// diskMounts are the mount points on a disk and its partitions.
func diskMounts(d engine.DiskInfo) []string {
	mps := append([]string(nil), d.MountPoints...)
	for _, p := range d.Partitions {
		mps = append(mps, p.MountPoints...)
	}
	return mps
}

// imageDisk is the disk holding path: the one with the longest mount
// point that path lies under; "" when none does.
func imageDisk(disks []engine.DiskInfo, path string) string {
	best, bestLen := "", -1
	for _, d := range disks {
		for _, mp := range diskMounts(d) {
			under := path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")
			if strings.HasPrefix(mp, "/") && under && len(mp) > bestLen {
				best, bestLen = d.Path, len(mp)
			}
		}
	}
	return best
}

// diskOf is the disk a disk or partition path is on, "" if unknown.
func diskOf(disks []engine.DiskInfo, path string) string {
	for _, d := range disks {
		if d.Path == path {
			return d.Path
		}
		for _, p := range d.Partitions {
			if p.Path == path {
				return d.Path
			}
		}
	}
	return ""
}

// diskWarnings says, before a disk is chosen, why writing to it is
// dangerous or impossible: the running system is on it, it is mounted,
// it holds the image (path, "" for none).
func diskWarnings(d engine.DiskInfo, disks []engine.DiskInfo, image string) []string {
	var w []string
	mps := diskMounts(d)
	if slices.Contains(mps, "/") {
		w = append(w, "the running system is on it (/)")
	}
	if m := mountText(slices.DeleteFunc(mps, func(s string) bool { return s == "/" })); m != "" {
		w = append(w, m)
	}
	if image != "" && imageDisk(disks, image) == d.Path {
		w = append(w, "holds the image, cannot be written")
	}
	return w
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
