package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// runFunc is one engine call, made from its own goroutine. It returns the
// result lines to show.
type runFunc func(ctx context.Context, p engine.Progress, confirm func(engine.Plan) error) ([]string, error)

// start runs the wizard's operation: the engine works in a goroutine and
// talks to the UI through m.events (progress, the confirmation, the end).
func (m *Model) start() tea.Cmd {
	b := m.o.Backend
	var pw func() ([]byte, error)
	if m.password != nil {
		p := m.password
		pw = func() ([]byte, error) { return p, nil }
	}
	lo := engine.LayoutOptions{Mode: m.mode, Align: 1 << 20}
	var run runFunc
	var title string
	var prepTarget string
	var sources []string
	switch m.flow {
	case flowRestore:
		title = fmt.Sprintf("Restore %s to %s", filepath.Base(m.image), m.target)
		prepTarget, sources = m.target, []string{m.image}
		o := engine.RestoreOptions{Image: m.image, Password: pw, Target: m.target, Partition: m.partition, Layout: lo}
		run = func(ctx context.Context, p engine.Progress, confirm func(engine.Plan) error) ([]string, error) {
			o.Progress, o.Confirm = p, confirm
			res, err := b.Restore(ctx, o)
			if err != nil {
				return nil, err
			}
			return restoreLines(res, "Restored "+m.image, m.o.Rescue), nil
		}
	case flowClone:
		title = fmt.Sprintf("Clone %s to %s", m.source, m.target)
		prepTarget, sources = m.target, []string{m.source}
		kind := engine.CloneDisk
		if m.srcPart {
			kind = engine.ClonePartition
		}
		o := engine.CloneOptions{Kind: kind, Source: m.source, Target: m.target, Layout: lo, SectorBySector: m.sbs}
		run = func(ctx context.Context, p engine.Progress, confirm func(engine.Plan) error) ([]string, error) {
			o.Progress, o.Confirm = p, confirm
			res, err := b.Clone(ctx, o)
			if err != nil {
				return nil, err
			}
			lines := restoreLines(&res.RestoreResult, "Cloned "+m.source, m.o.Rescue)
			for _, f := range res.Fallbacks {
				lines = append(lines, "Copied sector by sector: "+f)
			}
			return lines, nil
		}
	case flowBackup:
		out := filepath.Join(m.dest, m.name)
		title = fmt.Sprintf("Back up %s to %s", m.source, out)
		prepTarget, sources = m.dest, []string{m.source}
		kind := images.KindDisk
		if m.srcPart {
			kind = images.KindPartition
		}
		o := engine.BackupOptions{Source: m.source, Kind: kind, Output: out, Compression: m.level, Password: m.bpw, SplitSize: m.split, ToolVersion: m.o.Version}
		if m.chained() {
			o.Compression, o.Password = m.base.Compression, nil
			if m.btype == images.PointIncremental {
				o.Incremental = m.base.Image
			} else {
				o.Differential = m.base.Image
			}
			if m.base.Cipher != images.CipherNone {
				cpw := m.cpw
				o.ChainPassword = func() ([]byte, error) { return cpw, nil }
			}
		}
		run = func(ctx context.Context, p engine.Progress, _ func(engine.Plan) error) ([]string, error) {
			o.Progress = p
			res, err := b.Backup(ctx, o)
			if err != nil {
				return nil, err
			}
			lines := []string{
				fmt.Sprintf("Backed up %s (%s) into %s.", m.source, engine.HumanBytes(res.SourceSize), res.Image),
				fmt.Sprintf("Stored %s in %s.", engine.HumanBytes(res.Stored), clock(res.Elapsed)),
			}
			if res.Unused > 0 {
				lines = append(lines, fmt.Sprintf("%s that no filesystem uses was not stored.", engine.HumanBytes(res.Unused)))
			}
			for _, f := range res.Fallbacks {
				lines = append(lines, "Copied sector by sector: "+f)
			}
			return append(lines, "", "Next: check the image (Check image on the main menu) before relying on it."), nil
		}
	case flowCheck:
		title = "Check " + m.image
		o := engine.CheckOptions{Image: m.image, Password: pw}
		run = func(ctx context.Context, p engine.Progress, _ func(engine.Plan) error) ([]string, error) {
			o.Progress = p
			res, err := b.Check(ctx, o)
			if err != nil {
				return nil, err
			}
			return []string{
				fmt.Sprintf("%s is intact: every one of its %s of stored data was read and matches its checksums.", m.image, engine.HumanBytes(res.StoredBytes)),
				fmt.Sprintf("It restores %s of disk data. Checked in %s.", engine.HumanBytes(res.DiskBytes), clock(res.Elapsed)),
			}, nil
		}
	default:
		return nil
	}
	if m.o.PrepareWrite != nil && prepTarget != "" {
		if err := m.o.PrepareWrite(prepTarget, sources); err != nil {
			m.err = err.Error()
			return nil
		}
	}

	ctx, cancel := context.WithCancel(m.ctx)
	ch := make(chan tea.Msg, 64)
	m.events, m.cancel, m.running = ch, cancel, true
	m.confirmed, m.askStop, m.stopped, m.plan, m.reply = false, false, false, nil, nil
	m.status, m.stages, m.opTitle = engine.Status{}, nil, title
	m.stack = nil
	m.scr, m.err, m.note = scProgress, "", ""
	prog := engine.ProgressFunc(func(s engine.Status) {
		if s.Final {
			select {
			case ch <- progressMsg(s):
			case <-ctx.Done():
			}
			return
		}
		select { // never hold the engine up for a screen update
		case ch <- progressMsg(s):
		default:
		}
	})
	confirm := func(p engine.Plan) error {
		reply := make(chan error, 1)
		select {
		case ch <- confirmMsg{plan: p, reply: reply}:
		case <-ctx.Done():
			return fmt.Errorf("%w before anything was written", ctx.Err())
		}
		select {
		case err := <-reply:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w before anything was written", ctx.Err())
		}
	}
	go func() {
		lines, err := run(ctx, prog, confirm)
		ch <- doneMsg{lines: lines, err: err}
	}()
	return m.listen()
}

func restoreLines(res *engine.RestoreResult, what string, rescue bool) []string {
	lines := []string{fmt.Sprintf("%s to %s: %s in %s.", what, res.Target, engine.HumanBytes(res.Bytes), clock(res.Elapsed))}
	if res.Verified {
		lines = append(lines, "Verified: everything written was read back from "+res.Target+" and matches.")
	} else {
		lines = append(lines, "Not verified: the target was not read back.")
	}
	lines = append(lines, res.Notes...)
	if !rescue {
		return append(lines, "", "Next: Enter goes back to the menu.")
	}
	return append(lines, "", "Next: remove the rescue media and choose Reboot / Power off on the menu (Enter goes there).")
}

// finished shows an operation's outcome, with the target's state when it
// failed or was stopped.
func (m *Model) finished(msg doneMsg) {
	m.running, m.events, m.askStop = false, nil, false
	if m.cancel != nil {
		m.cancel()
	}
	m.scr, m.stack, m.err, m.note = scResult, nil, "", ""
	if msg.err == nil {
		m.result = result{ok: true, title: m.flow.String() + " finished", lines: msg.lines}
		return
	}
	r := result{title: m.flow.String() + " failed"}
	r.lines = append(r.lines, msg.err.Error())
	target := m.target
	switch {
	case errors.Is(msg.err, engine.ErrDeclined):
		r.title = m.flow.String() + " not confirmed"
		if !strings.Contains(msg.err.Error(), "nothing was written") {
			r.lines = append(r.lines, "Nothing was written to "+target+".")
		}
	case m.flow == flowBackup:
		if m.stopped {
			r.title = "Backup stopped"
		}
		r.lines = append(r.lines, "", "No image was left behind: an unfinished image is removed. The source was only read.")
	case m.flow == flowCheck:
		if m.stopped {
			r.title = "Check stopped"
		}
		r.lines = append(r.lines, "", "The image was only read; it is unchanged.")
	case !m.confirmed:
		if m.stopped {
			r.title = m.flow.String() + " stopped"
		}
		r.lines = append(r.lines, "", "Nothing was written to "+target+".")
	default:
		if m.stopped {
			r.title = m.flow.String() + " stopped"
		}
		r.lines = append(r.lines, "", target+" was partly written: it holds an incomplete copy that may not boot or mount. Run the "+strings.ToLower(m.flow.String())+" again before using it.")
	}
	switch {
	case errors.Is(msg.err, images.ErrWrongPassword), errors.Is(msg.err, images.ErrPasswordNeeded):
		r.lines = append(r.lines, "Choose the image again and type its password.")
	case errors.Is(msg.err, engine.ErrVerify):
		r.lines = append(r.lines, "The target disk may be failing: try another disk.")
	}
	m.result = r
}

func (m *Model) progressKey(k tea.KeyMsg) tea.Cmd {
	if m.askStop {
		switch k.String() {
		case "y", "Y":
			m.askStop, m.stopped = false, true
			m.note = "Stopping ..."
			m.cancel()
		case "n", "N", "esc":
			m.askStop = false
		}
		return nil
	}
	switch k.String() {
	case "esc", "ctrl+c", "s":
		m.askStop = true
	}
	return nil
}

// confirmName is what the user types to confirm: the target's base name.
func confirmName(target string) string { return filepath.Base(target) }

func (m *Model) confirmKey(k tea.KeyMsg) tea.Cmd {
	name := confirmName(m.plan.Target)
	switch k.String() {
	case "esc", "ctrl+c":
		m.reply <- fmt.Errorf("%w: cancelled at the confirmation; nothing was written to %s", engine.ErrDeclined, m.plan.Target)
	case "enter":
		typed := strings.TrimSpace(m.in.String())
		if typed == name {
			m.confirmed = true
			m.reply <- nil
		} else {
			m.reply <- fmt.Errorf("%w: you typed %q, not %q; nothing was written to %s", engine.ErrDeclined, typed, name, m.plan.Target)
		}
	default:
		m.in.update(k)
		return nil
	}
	m.scr = scProgress
	return m.listen()
}
