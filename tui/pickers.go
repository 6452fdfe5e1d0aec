package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// The pieces several wizards share: choosing a disk or partition
// (restore, clone, backup) and the layout choice (restore, clone). The
// image picker (restore, check) is in imagepick.go.

// deviceQuery says which devices a list offers.
type deviceQuery struct {
	disks, parts bool
	// writable: the device chosen is written. Read-only disks are greyed
	// out, and so is the disk holding image; the system disk and mounted
	// disks are marked before anyone picks them.
	writable bool
	exclude  string // a clone's source, not offered
	image    string // the image being restored, "" none
	typed    bool   // offer a typed device or file
}

// deviceList lists the disks (model, size, table) with what is on them
// and what makes them dangerous to write, and (with parts) their
// partitions as choices of their own.
func deviceList(u *ui, q deviceQuery) *list {
	u.loadDisks()
	var items []item
	note := func(s string) { items = append(items, item{label: s, note: true, disabled: true}) }
	for _, d := range u.disks {
		if d.Bus == "loop" && d.BackingFile == "" {
			continue
		}
		ro := q.writable && d.ReadOnly
		warn := diskWarnings(d, u.disks, q.image)
		if q.disks {
			holds := q.writable && q.image != "" && imageDisk(u.disks, q.image) == d.Path
			items = append(items, item{label: diskLine(d), key: d.Path, disabled: ro || d.Path == q.exclude || holds})
			if len(warn) > 0 && (q.writable || !q.parts) {
				note("           ! " + strings.Join(warn, "; "))
			}
		}
		for _, p := range d.Partitions {
			if !q.parts {
				note(partInfoLine(p))
				continue
			}
			items = append(items, item{label: partInfoLine(p), key: p.Path, disabled: ro || p.Path == q.exclude})
		}
	}
	if q.typed {
		items = append(items, item{label: "Type a device or file path...", key: "type"})
	}
	if len(items) == 0 {
		u.err = "No disks found."
	}
	return newList(items...)
}

// pickDevice acts on a key on a device list, or on the typed-path step
// opened from it. When a device is chosen it returns its path and the
// step it was chosen for.
func pickDevice(u *ui, s *steps, k tea.KeyMsg) (path string, at step, ok bool) {
	if s.cur == stDevicePath {
		v, enter := textKey(&s.in, k)
		if !enter {
			return "", 0, false
		}
		if v = strings.TrimSpace(v); v == "" {
			u.err = "Type a device (/dev/sdb) or a file path."
			return "", 0, false
		}
		return v, s.stack[len(s.stack)-1], true
	}
	it, picked := listKey(s, k)
	if !picked {
		return "", 0, false
	}
	if it.key == "type" {
		s.textStep(u, stDevicePath, "", false)
		return "", 0, false
	}
	return it.key, s.cur, true
}

const devicePathIntro = "Type the target: a device such as /dev/sdb, or a file (a missing file is created):"

// layoutList is the layout step's list: for a disk, keep or fill; for a
// partition, the used blocks; with sbs, sector by sector too.
func layoutList(disk, sbs bool) *list {
	var items []item
	if disk {
		items = append(items,
			item{label: "Keep the partition sizes (a larger disk keeps free space at the end)", key: "keep"},
			item{label: "Fill the disk: the last data partition grows into the extra space", key: "fill"})
	} else {
		items = append(items, item{label: "Copy the blocks the filesystem uses (fast)", key: "keep"})
	}
	if sbs {
		items = append(items, item{label: "Sector by sector: copy every sector, sizes kept (slow)", key: "sbs"})
	}
	return newList(items...)
}

// fitItem is the layout step's last entry for a disk: onto a smaller one.
var fitItem = item{label: "Fit a smaller disk: shrink ext and NTFS filesystems if their data allows", key: "fit"}

func layoutBody(u *ui, s *steps, target string, rows int) []string {
	return u.listBody(s.list(), "How should the partitions be laid out on "+target+"?", rows,
		"Partition starts are aligned to 1 MiB. Keep and fill never make a partition smaller than it is in the source; fit shrinks filesystems (checked before anything is written).")
}
