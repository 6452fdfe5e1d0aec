package tui

import (
	"errors"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The pieces several wizards share: choosing and opening an image
// (restore, check), choosing a disk or partition (restore, clone,
// backup), and the layout choice (restore, clone).

// imagePicker owns the steps that choose and open an image: the images
// found, a typed path, an encrypted image's password.
type imagePicker struct {
	path     string // the image chosen (or being opened)
	info     *engine.ImageInfo
	password []byte
}

type infoMsg struct {
	path string
	info *engine.ImageInfo
	err  error
	pw   []byte
}

// begin opens the picker's first step.
func (p *imagePicker) begin(u *ui, s *steps) {
	s.push(u, stImage)
	p.fill(u, s)
}

func (p *imagePicker) fill(u *ui, s *steps) {
	var items []item
	for _, path := range u.o.Images() {
		items = append(items, item{label: path, key: path})
	}
	items = append(items, item{label: "Type a path or URL...", key: "type"}, item{label: "Look again (rescan the disks)", key: "rescan"})
	s.setList(stImage, newList(items...))
}

// key acts on the picker's steps; it reports false on a step not its own.
func (p *imagePicker) key(u *ui, s *steps, k tea.KeyMsg) (tea.Cmd, bool) {
	switch s.cur {
	case stImage:
		it, ok := listKey(s, k)
		if !ok {
			return nil, true
		}
		switch it.key {
		case "type":
			s.textStep(u, stImagePath, "", false)
		case "rescan":
			p.fill(u, s)
			u.note = "Looked again."
		default:
			return p.open(u, it.key, nil), true
		}
		return nil, true
	case stImagePath:
		v, enter := textKey(&s.in, k)
		if !enter {
			return nil, true
		}
		if v = strings.TrimSpace(v); v == "" {
			u.err = "Type the path of an image file (its first part), or an http:// URL."
			return nil, true
		}
		return p.open(u, v, nil), true
	case stPassword:
		v, enter := textKey(&s.in, k)
		if !enter {
			return nil, true
		}
		return p.open(u, p.path, []byte(v)), true
	}
	return nil, false
}

// open reads the image's description in the background.
func (p *imagePicker) open(u *ui, path string, pw []byte) tea.Cmd {
	b := u.o.Backend
	u.note = "Opening " + path + " ..."
	p.path = path
	var pwf func() ([]byte, error)
	if pw != nil {
		pwf = func() ([]byte, error) { return pw, nil }
	}
	return func() tea.Msg {
		info, err := b.Info(path, pwf)
		return infoMsg{path: path, info: info, err: err, pw: pw}
	}
}

// got takes an opened image. It reports true when the image is open
// (p.info is set); otherwise it asked for a password or shows an error.
func (p *imagePicker) got(u *ui, s *steps, msg infoMsg) bool {
	if msg.path != p.path {
		return false // an image chosen before the current one
	}
	u.note = ""
	if msg.err != nil {
		u.err = msg.err.Error()
		if s.cur == stPassword {
			s.in = input{mask: true}
			if errors.Is(msg.err, images.ErrWrongPassword) {
				u.err = "That password does not open the image (" + u.err + "); type it again."
			}
		}
		return false
	}
	if msg.info.Locked {
		if s.cur != stPassword {
			s.textStep(u, stPassword, "", true)
		} else {
			u.err = "That password does not open the image; type it again."
			s.in = input{mask: true}
		}
		return false
	}
	p.info, p.password = msg.info, msg.pw
	return true
}

// passwordFunc is the password as the engine asks for it.
func (p *imagePicker) passwordFunc() func() ([]byte, error) {
	if p.password == nil {
		return nil
	}
	pw := p.password
	return func() ([]byte, error) { return pw, nil }
}

// stream is the image's first stream, nil before it is open.
func (p *imagePicker) stream() *images.Stream {
	if p.info == nil || len(p.info.Meta.Streams) == 0 {
		return nil
	}
	return &p.info.Meta.Streams[0]
}

// body draws the picker's steps; false on a step not its own.
func (p *imagePicker) body(u *ui, s *steps, verb string, rows int) ([]string, bool) {
	switch s.cur {
	case stImage:
		var after []string
		if len(s.list().items) == 2 {
			after = append(after, "No images (*.lbi) were found on the disks. Attach the disk or stick that holds them and choose Look again, or type the path.")
		}
		return u.listBody(s.list(), "Pick the image to "+verb+":", rows, after...), true
	case stImagePath:
		return u.inputBody(&s.in, "Type the path of the image (its first part, for split images) or an http:// URL, then press Enter:"), true
	case stPassword:
		return u.inputBody(&s.in, p.path+" is encrypted. Type its password, then press Enter:"), true
	}
	return nil, false
}

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

func layoutBody(u *ui, s *steps, target string, rows int) []string {
	return u.listBody(s.list(), "How should the partitions be laid out on "+target+"?", rows,
		"Partition starts are aligned to 1 MiB. Partitions are never made smaller than they are in the source.")
}
