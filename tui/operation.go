package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// runFunc is one engine call, made from its own goroutine, with what the
// UI hands the engine. It returns the result lines to show.
type runFunc func(ctx context.Context, h hooks) ([]string, error)

// hooks are the UI's side of an engine call: the progress, the
// confirmation, and written, which a restore or clone passes as its
// Written (everything is on the target; the read-back goes on).
type hooks struct {
	progress engine.Progress
	confirm  func(engine.Plan) error
	written  func()
}

// job is an operation a wizard launches: the engine call, and what the
// shared confirmation, progress and result screens say of it.
type job struct {
	flow    flow
	heading string // the progress screen's heading
	// prepare is what Options.PrepareWrite gets ready ("" nothing), with
	// the files or devices the operation reads.
	prepare string
	sources []string
	// target is the disk, partition or file written after the typed
	// confirmation; "" for a job that writes no target (backup, check).
	target string
	// readOnly is said when a job without a target fails or stops: what
	// became of what it read and wrote.
	readOnly string
	// stopAsk is the stop question of a job without a target.
	stopAsk string
	confirm confirmView
	run     runFunc
}

// confirmView is what the confirmation shows besides the engine's plan.
type confirmView struct {
	verb    string // "Restore", "Clone"
	copies  string // what is copied: the used blocks, every sector
	srcSize int64  // the source's size; 0: the plan's Bytes
	layout  layout.Mode
	bars    bool // draw the Source/After bars
}

// operation is a job running, waiting for confirmation, or finished.
type operation struct {
	job
	u      *ui
	events chan tea.Msg
	cancel context.CancelFunc

	confirmed bool // the user confirmed: the target may have been written
	askStop   bool
	stopped   bool
	wrote     bool            // the engine said everything is on the target (Written)
	status    engine.Status   // the latest report
	stages    []engine.Status // finished stages
	rate      rateMeter
	plan      *engine.Plan
	reply     chan error // waiting for the typed name while set
	in        input
	res       *result // set when finished
}

type progressMsg engine.Status
type confirmMsg struct {
	plan  engine.Plan
	reply chan error
}
type writtenMsg struct{}
type doneMsg struct {
	lines []string
	err   error
}

func (o *operation) confirming() bool { return o.reply != nil && o.res == nil }

func (o *operation) listen() tea.Cmd {
	ch := o.events
	return func() tea.Msg { return <-ch }
}

// start runs a wizard's job: the engine works in a goroutine and talks to
// the UI through the operation's events (progress, the confirmation, the
// end).
func (m *Model) start(j job) tea.Cmd {
	if m.o.PrepareWrite != nil && j.prepare != "" {
		if err := m.o.PrepareWrite(j.prepare, j.sources); err != nil {
			m.err = err.Error()
			m.logf(true, "%s: not started: %v", j.heading, err)
			return nil
		}
	}
	ctx, cancel := context.WithCancel(m.ctx)
	ch := make(chan tea.Msg, 64)
	op := &operation{job: j, u: m.ui, events: ch, cancel: cancel}
	m.op, m.err, m.note = op, "", ""
	m.logf(false, "started: %s", j.heading)
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
			return engine.BeforeWriting(fmt.Errorf("%w before anything was written", ctx.Err()))
		}
		select {
		case err := <-reply:
			return err
		case <-ctx.Done():
			return engine.BeforeWriting(fmt.Errorf("%w before anything was written", ctx.Err()))
		}
	}
	go func() {
		written := func() {
			select {
			case ch <- writtenMsg{}:
			case <-ctx.Done():
			}
		}
		lines, err := j.run(ctx, hooks{progress: prog, confirm: confirm, written: written})
		ch <- doneMsg{lines: lines, err: err}
	}()
	return op.listen()
}

// opMsg takes the running operation's events. A failure that wrote
// nothing goes back into the wizard, to the step where the choice that
// failed can be made again.
func (m *Model) opMsg(msg tea.Msg) tea.Cmd {
	op := m.op
	if op == nil {
		return nil
	}
	switch msg := msg.(type) {
	case progressMsg:
		op.report(engine.Status(msg))
		return op.listen()
	case writtenMsg:
		op.wrote = true
		op.u.logf(false, "everything is written to %s; reading it back goes on", op.target)
		return op.listen()
	case confirmMsg:
		// The engine waits in Confirm: no listening until the user answers.
		p := msg.plan
		op.plan, op.reply, op.in = &p, msg.reply, input{}
		m.err = ""
	case doneMsg:
		op.cancel()
		op.logDone(msg)
		if msg.err != nil && !op.stopped && nothingWritten(msg.err, op.confirmed) && m.wiz != nil && m.wiz.recover(msg.err) {
			m.op = nil
			return nil
		}
		op.res = op.outcome(msg)
		m.err, m.note = "", ""
	}
	return nil
}

func (o *operation) report(s engine.Status) {
	if s.Final {
		o.stages = append(o.stages, s)
		o.u.logf(false, "%s: %s of %s in %s", s.Stage, engine.HumanBytes(s.Done), engine.HumanBytes(s.Total), clock(s.Elapsed))
	}
	if s.Stage != o.status.Stage {
		o.rate = rateMeter{}
	}
	o.rate.add(s)
	o.status = s
}

func (m *Model) opKey(k tea.KeyMsg) tea.Cmd {
	op := m.op
	switch {
	case op.res != nil:
		if s := k.String(); s == "enter" || s == "esc" || s == "ctrl+c" {
			m.home()
		}
		return nil
	case op.confirming():
		return op.confirmKey(k)
	}
	op.stopKey(k)
	return nil
}

func (o *operation) stopKey(k tea.KeyMsg) {
	if o.askStop {
		switch k.String() {
		case "y", "Y":
			o.askStop, o.stopped = false, true
			o.u.note = "Stopping ..."
			o.cancel()
		case "n", "N", "esc":
			o.askStop = false
		}
		return
	}
	switch k.String() {
	case "esc", "ctrl+c", "s":
		o.askStop = true
	}
}

// title is the crumb of the operation's current screen.
func (o *operation) title() string {
	switch {
	case o.res != nil:
		return "Result"
	case o.confirming():
		return "Confirm"
	}
	return "Working"
}

func (o *operation) keys() string {
	switch {
	case o.res != nil:
		return "Enter main menu   l log"
	case o.confirming():
		return "Type the name, Enter confirm   Esc cancel"
	case o.askStop:
		return "y stop   n go on"
	}
	return "Esc stop   l log"
}

func (o *operation) body(w int) []string {
	switch {
	case o.res != nil:
		return o.res.body(o.u.st, w)
	case o.confirming():
		return o.confirmBody(w)
	}
	return o.progressBody(w)
}

// logDone records how the operation ended: its result lines, or the
// error (a warning), and whether the user stopped it.
func (o *operation) logDone(msg doneMsg) {
	if msg.err != nil {
		what := "failed"
		if o.stopped {
			what = "stopped"
		}
		o.u.logf(true, "%s %s: %v", o.heading, what, msg.err)
		return
	}
	o.u.logf(false, "finished: %s", o.heading)
	for _, l := range msg.lines {
		if l != "" && !strings.HasPrefix(l, "Next:") {
			o.u.logf(strings.HasPrefix(l, "Warning:"), "  %s", strings.TrimSpace(l))
		}
	}
}
