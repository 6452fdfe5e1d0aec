package tui

import (
	"context"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"
)

// Run shows the UI on o.Input/o.Output (a terminal) until the user leaves
// it, and returns what they chose to do next. Cancelling ctx stops any
// running operation and ends the UI.
func Run(ctx context.Context, o Options) (Action, error) {
	if o.Input == nil {
		o.Input = os.Stdin
	}
	if o.Output == nil {
		o.Output = os.Stdout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := New(ctx, o)
	// A termenv.Output with a fixed profile: otherwise bubbletea asks the
	// terminal for its colours and waits seconds for an answer a serial
	// console never gives, eating the first keys typed meanwhile.
	profile := termenv.Ascii
	if o.Colour {
		profile = termenv.ANSI
	}
	out := termenv.NewOutput(o.Output, termenv.WithProfile(profile))
	p := tea.NewProgram(m, tea.WithInput(o.Input), tea.WithOutput(out), tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return m.Action(), err
}

// ColourTerm says whether a TERM value has colours (and reverse video
// that is worth using); serial consoles (vt100, vt220, dumb, unset) and
// the Linux console's vt102 mode get plain text.
func ColourTerm(term string) bool {
	switch term {
	case "", "dumb", "vt100", "vt102", "vt220", "linux", "ansi":
		return false
	}
	return true
}
