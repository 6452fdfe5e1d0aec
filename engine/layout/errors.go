package layout

import (
	"fmt"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// Error is why a table cannot be read, planned or written. Every error
// this package returns is one (errors.As finds it), so callers read the
// reason and the fix as fields instead of taking the message apart.
// Nothing has been written when PlanLayout, AddPartition or Correspond
// return one.
type Error struct {
	// Partition is the partition the error is about (its Number), or 0
	// for the table or the disk as a whole.
	Partition int
	// Reason says what is wrong, without this package's name or the fix.
	// Each "{}" in it stands for the next of Names: an option the user
	// gave that the reason is about, worded by the front end.
	Reason string
	Names  []opt.Use
	// Fix is what would make it work, as data (opt.Fix): front ends word
	// the options it names. Zero when nothing the user chooses helps.
	Fix opt.Fix
	// Err is the cause, if any.
	Err error
}

// Error is "layout: " and Text: the message as it always read, options
// worded as flags.
func (e *Error) Error() string { return "layout: " + e.Text() }

// Text is the reason and the fix (options worded as flags), without the
// package name: for a caller that puts it inside a sentence of its own.
func (e *Error) Text() string { return e.Worded(opt.Flag) }

// Worded is Text with every option, in the reason and in the fix, worded
// by word: the CLI's flags, the TUI's screens.
func (e *Error) Worded(word func(opt.Use) string) string {
	t := opt.Fix{Text: e.Reason, Uses: e.Names}.Format(word)
	if e.Fix.IsZero() {
		return t
	}
	return t + "; " + e.Fix.Format(word)
}

func (e *Error) Unwrap() error { return e.Err }

// errorf is an *Error with a reason and no fix; a %w in format is kept as
// the cause.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Reason: err.Error(), Err: err}
}

// refusal is an *Error about partition n (0: the table) with a fix.
func refusal(n int, fix opt.Fix, format string, args ...any) error {
	return &Error{Partition: n, Reason: fmt.Sprintf(format, args...), Fix: fix}
}
