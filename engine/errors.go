package engine

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// ErrRefused: the operation was refused before anything was written,
// because the target or output is unsuitable. Errors wrapping it are
// *RefusedError and say what to do instead.
var ErrRefused = errors.New("refused")

// ErrVerify: what was written does not read back as the image says. The
// target disk may be failing; try another disk.
var ErrVerify = errors.New("verification failed")

// ErrDeclined: the user did not confirm the operation.
var ErrDeclined = errors.New("not confirmed")

// RefusedError says which object was refused, why, and what to do.
// Nothing was written when an operation returns one (NothingWritten).
type RefusedError struct {
	Object string // the path refused
	// Reason says why. Each "{}" in it stands for the next entry of
	// Names: an option the user gave that the reason is about ("{} needs
	// an image to restore"), worded by the front end as it words Fix.
	Reason string
	Names  []opt.Use
	// Fix is what to do instead, as data: the options it names are
	// opt.Use values that each front end words (the CLI as flags, see
	// internal/cli; the TUI as the screen for that choice).
	Fix opt.Fix
	// Cause is the error behind the refusal, if any: a *layout.Error
	// when the target's table cannot be read or the layout does not fit.
	// errors.As reaches it through the RefusedError.
	Cause error
}

// Error words the fix's options as flags (opt.Fix.String), as it always
// read; front ends that word them otherwise use the fields.
func (e *RefusedError) Error() string { return e.Worded(opt.Flag) }

// Worded is the message with every option, in the reason and in the fix,
// worded by word: the CLI's flags, the TUI's screens.
func (e *RefusedError) Worded(word func(opt.Use) string) string {
	t := "refusing " + e.Object + ": " + e.ReasonWorded(word)
	if !e.Fix.IsZero() {
		t += "; " + e.Fix.Format(word)
	}
	return t
}

// ReasonWorded is Reason with its options worded by word.
func (e *RefusedError) ReasonWorded(word func(opt.Use) string) string {
	return opt.Fix{Text: e.Reason, Uses: e.Names}.Format(word)
}

func (e *RefusedError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, e.Cause}
}

// refuse is a refusal whose fix names no option.
func refuse(object, reason, fix string, args ...any) error {
	return &RefusedError{Object: object, Reason: fmt.Sprintf(reason, args...), Fix: opt.Text(fix)}
}

// refuseFix is a refusal with a fix as data and the error behind it (or
// nil). The reason has no options in it.
func refuseFix(object string, fix opt.Fix, cause error, reason string, args ...any) error {
	return &RefusedError{Object: object, Reason: fmt.Sprintf(reason, args...), Fix: fix, Cause: cause}
}

// reason is a reason that names options at its "{}" marks: the text and
// the options, in order.
type reason struct {
	text  string
	names []opt.Use
}

// because is a reason: text (already formatted) whose "{}" marks stand
// for the options the user gave, in order.
func because(text string, names ...opt.Use) reason { return reason{text: text, names: names} }

// then is r followed by o.
func (r reason) then(o reason) reason {
	return reason{text: r.text + o.text, names: append(append([]opt.Use(nil), r.names...), o.names...)}
}

// refuseBecause is a refusal whose reason names options.
func refuseBecause(object string, fix opt.Fix, cause error, r reason) error {
	return &RefusedError{Object: object, Reason: r.text, Names: r.names, Fix: fix, Cause: cause}
}

// layoutReason is a layout error's reason and fix, its options left as
// marks, to go on a reason of the engine's own (with then).
func layoutReason(err error) reason {
	le, ok := err.(*layout.Error)
	if !ok {
		return reason{text: err.Error()}
	}
	r := reason{text: le.Reason, names: le.Names}
	if !le.Fix.IsZero() {
		r.text += "; " + le.Fix.Text
		r.names = append(append([]opt.Use(nil), r.names...), le.Fix.Uses...)
	}
	return r
}

// IOError is a failure to read the source or write the target at an offset.
type IOError struct {
	Op     string // "read" or "write"
	Path   string
	Offset int64
	Err    error
}

func (e *IOError) Error() string {
	return fmt.Sprintf("%s %s at offset %d: %v; the device may be failing or was removed", e.Op, e.Path, e.Offset, e.Err)
}

func (e *IOError) Unwrap() error { return e.Err }

// noteError is an error whose message is rewritten for the user while
// errors.Is and errors.As still see the original.
type noteError struct {
	msg string
	err error
}

func (e *noteError) Error() string { return e.msg }
func (e *noteError) Unwrap() error { return e.err }

// outputFull rewrites a write error that means the disk holding the output
// is full: the chain of wrapped messages names the file two or three
// times, and says nothing of what to do.
func outputFull(output string, err error) error {
	if !errors.Is(err, syscall.ENOSPC) {
		return nil
	}
	return &noteError{fmt.Sprintf("no space left on the disk holding %s; free space there or write the image to a larger disk", output), err}
}

// FixError is a failure that is not a refusal but that the user can
// work around, with the fix as data (the options to use). errors.Is and
// errors.As see Err.
type FixError struct {
	Err error
	Fix opt.Fix
}

// Error words the fix's options as flags (opt.Fix.String), as it always
// read; front ends word them from the fields.
func (e *FixError) Error() string { return e.Worded(opt.Flag) }

// Worded is the message with the fix's options worded by word.
func (e *FixError) Worded(word func(opt.Use) string) string {
	return e.Err.Error() + "; " + e.Fix.Format(word)
}
func (e *FixError) Unwrap() error { return e.Err }

// NothingWritten reports whether err stopped an operation before it wrote
// anything to its target or output: a refusal (ErrRefused, *RefusedError),
// a declined confirmation (ErrDeclined), or an error marked with
// BeforeWriting. Front ends use it to say "nothing was written" instead
// of reading the message; for any other error the target may hold a
// partial copy. A nil error reports false.
func NothingWritten(err error) bool {
	var bw *beforeWriting
	return err != nil && (errors.Is(err, ErrRefused) || errors.Is(err, ErrDeclined) || errors.As(err, &bw))
}

// BeforeWriting marks err as having stopped an operation before anything
// was written (a cancel at a prompt, a failure while planning), so
// NothingWritten reports true. The message, errors.Is and errors.As are
// err's own.
func BeforeWriting(err error) error {
	if err == nil {
		return nil
	}
	return &beforeWriting{err}
}

type beforeWriting struct{ err error }

func (e *beforeWriting) Error() string { return e.err.Error() }
func (e *beforeWriting) Unwrap() error { return e.err }
