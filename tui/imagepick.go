package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// imagePicker owns the steps that choose and open an image: the images
// found, a typed path, an encrypted image's password.
type imagePicker struct {
	path     string // the image chosen (or being opened)
	info     *engine.ImageInfo
	password []byte
	found    int                          // images in the list
	details  map[string]*engine.ImageInfo // the images listed, as described in the background
}

type infoMsg struct {
	path string
	info *engine.ImageInfo
	err  error
	pw   []byte
}

// begin opens the picker's first step.
func (p *imagePicker) begin(u *ui, s *steps) tea.Cmd {
	s.push(u, stImage)
	return p.fill(u, s)
}

// fill lists the images found, and describes them in the background.
func (p *imagePicker) fill(u *ui, s *steps) tea.Cmd {
	paths := u.o.Images()
	var items []item
	for _, path := range paths {
		items = append(items, item{label: path, key: path})
	}
	items = append(items, item{label: "Type a path or URL...", key: "type"}, item{label: "Look again (rescan the disks)", key: "rescan"})
	s.setList(stImage, newList(items...))
	p.found = len(paths)
	return describeImages(u.ctx, u.o.Backend, paths)
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
			u.note = "Looked again."
			return p.fill(u, s), true
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
	b, ctx := u.o.Backend, u.ctx
	u.note = "Opening " + path + " ..."
	p.path = path
	var pwf func() ([]byte, error)
	if pw != nil {
		pwf = func() ([]byte, error) { return pw, nil }
	}
	return func() tea.Msg {
		info, err := b.Info(ctx, path, pwf)
		return infoMsg{path: path, info: info, err: err, pw: pw}
	}
}

// take handles the picker's background results. It reports true when
// the image chosen is open (p.info is set); otherwise it may have asked
// for a password or shown an error.
func (p *imagePicker) take(u *ui, s *steps, m tea.Msg) bool {
	if d, ok := m.(imagesMsg); ok {
		p.described(s, d)
		return false
	}
	msg, ok := m.(infoMsg)
	if !ok || msg.path != p.path {
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
		if p.found == 0 {
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

// imagesMsg describes the images listed.
type imagesMsg struct {
	infos map[string]*engine.ImageInfo
}

// describeImages opens each image listed (an encrypted one's description
// needs no password) to show its date, source, size, kind and
// encryption.
func describeImages(ctx context.Context, b Backend, paths []string) tea.Cmd {
	if len(paths) == 0 {
		return nil
	}
	return func() tea.Msg {
		infos := map[string]*engine.ImageInfo{}
		for _, p := range paths {
			if ii, err := b.Info(ctx, p, nil); err == nil {
				infos[p] = ii
			}
		}
		return imagesMsg{infos}
	}
}

// described puts a line under each image of the list: its date, kind and
// place in its chain, source, size and encryption.
func (p *imagePicker) described(s *steps, msg imagesMsg) {
	p.details = msg.infos
	l := s.lists[stImage]
	if l == nil {
		return
	}
	cur, _ := l.selected()
	var items []item
	for _, it := range l.items {
		if it.note {
			continue
		}
		ii := p.details[it.key]
		if ii != nil && ii.Cipher != images.CipherNone {
			it.label = it.key + "  [encrypted]"
		}
		items = append(items, it)
		if ii != nil {
			items = append(items, item{label: "  " + p.describe(ii), note: true, disabled: true})
		}
	}
	nl := newList(items...)
	for i, it := range items {
		if it.key == cur.key && !it.note {
			nl.cur = i
		}
	}
	s.lists[stImage] = nl
}

// describe is one image in a line: date, kind and place in its chain,
// what was backed up and its size.
func (p *imagePicker) describe(ii *engine.ImageInfo) string {
	l := ii.Created.UTC().Format("2006-01-02 15:04") + "  " + p.kindText(ii)
	if len(ii.Meta.Streams) > 0 {
		st := ii.Meta.Streams[0]
		l += fmt.Sprintf("  %s %s %s", st.Kind, st.Source, engine.HumanBytes(st.Size))
	}
	return l
}

// kindText is an image's kind and place in its chain: "full", "full,
// base of 2 later points", "incremental, point 3 of chain".
func (p *imagePicker) kindText(ii *engine.ImageInfo) string {
	kind := images.PointFull
	if ii.Meta.Point != nil {
		kind = ii.Meta.Point.Kind
	}
	if len(ii.Chain) > 1 {
		return fmt.Sprintf("%s, point %d of chain", kind, len(ii.Chain))
	}
	if n := p.later(ii); n > 0 {
		return fmt.Sprintf("%s, base of %s", kind, plural(n, "later point"))
	}
	return string(kind)
}

// later counts the points the engine found that build on ii.
func (p *imagePicker) later(ii *engine.ImageInfo) int {
	if ii == nil {
		return 0
	}
	return len(ii.Later)
}

// plural is "1 later point", "2 later points".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
