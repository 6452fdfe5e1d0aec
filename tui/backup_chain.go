package tui

import (
	"fmt"
	"path/filepath"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The backup wizard's chain steps: a folder that already holds backups of
// the same source offers a full, incremental or differential backup; the
// new point takes the chain's compression and encryption, and an
// encrypted chain's password is asked once.

// backupChain is what the chain steps chose.
type backupChain struct {
	base     *engine.ImageInfo // the newest image of the same source in the folder, or nil
	kind     images.PointKind  // "" (no earlier backup) or the kind chosen
	password []byte            // the chain's password
}

type folderMsg struct {
	dir  string
	base *engine.ImageInfo // the newest image of the same source, or nil
}

// chained says the backup adds a point to an existing chain.
func (c *backupChain) chained() bool {
	return c.base != nil && (c.kind == images.PointIncremental || c.kind == images.PointDifferential)
}

// apply puts the chain into the backup's options.
func (c *backupChain) apply(o *engine.BackupOptions) {
	if !c.chained() {
		return
	}
	o.Compression, o.Password = c.base.Compression, nil
	if c.kind == images.PointIncremental {
		o.Incremental = c.base.Image
	} else {
		o.Differential = c.base.Image
	}
	if c.base.Cipher != images.CipherNone {
		pw := c.password
		o.ChainPassword = func() ([]byte, error) { return pw, nil }
	}
}

// scanFolder looks, in the background, for images of the same source in
// the chosen folder: the newest is what an incremental or differential
// backup builds on.
func (w *backupWizard) scanFolder() tea.Cmd {
	dir, b, list, ctx := w.dest, w.u.o.Backend, w.u.o.FolderImages, w.u.ctx
	size, kind := w.u.deviceSize(w.source), w.kind()
	w.u.note = "Looking for earlier backups in " + dir + " ..."
	return func() tea.Msg {
		var base *engine.ImageInfo
		if size <= 0 {
			return folderMsg{dir: dir}
		}
		for _, p := range list(dir) {
			ii, err := b.Info(ctx, p, nil)
			if err != nil || len(ii.Meta.Streams) == 0 {
				continue
			}
			s := ii.Meta.Streams[0]
			if s.Size != size || s.Kind != kind {
				continue
			}
			if base == nil || ii.Created.After(base.Created) {
				base = ii
			}
		}
		return folderMsg{dir: dir, base: base}
	}
}

func (w *backupWizard) gotFolder(msg folderMsg) {
	if (w.s.cur != stBackupDest && w.s.cur != stBackupFolder) || msg.dir != w.dest {
		return // the user moved on
	}
	w.u.note = ""
	w.chain = backupChain{base: msg.base}
	if msg.base == nil {
		w.askName()
		return
	}
	w.s.push(w.u, stBackupType)
	l := newList(
		item{label: "Full backup (new chain)", key: string(images.PointFull)},
		item{label: "Incremental (only what changed since the latest point)", key: string(images.PointIncremental)},
		item{label: "Differential (only what changed since the full backup)", key: string(images.PointDifferential)},
	)
	l.cur = 1
	w.s.setList(stBackupType, l)
}

func (c *backupChain) typeBody(u *ui, s *steps, dest, source string, rows int) []string {
	b := c.base
	when := b.Created.UTC().Format("2006-01-02 15:04")
	kind := images.PointFull
	if b.Meta.Point != nil {
		kind = b.Meta.Point.Kind
	}
	return u.listBody(s.list(), fmt.Sprintf("%s already holds backups of %s. The newest is %s (%s, %s backup).", dest, source, filepath.Base(b.Image), when, kind), rows,
		"Incremental and differential backups build on it and take its compression and encryption; restoring one needs the earlier points beside it.")
}

// summaryLine is the summary's Type line; "" when the folder holds no
// earlier backup of the source.
func (c *backupChain) summaryLine() string {
	switch {
	case c.chained():
		return fmt.Sprintf("  Type     %s, in the chain of %s", c.kind, filepath.Base(c.base.Image))
	case c.base != nil:
		return "  Type     full backup (new chain)"
	}
	return ""
}
