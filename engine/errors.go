package engine

import (
	"errors"
	"fmt"
	"syscall"
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
type RefusedError struct {
	Object string // the path refused
	Reason string
	Fix    string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing %s: %s; %s", e.Object, e.Reason, e.Fix)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

func refuse(object, reason, fix string, args ...any) error {
	return &RefusedError{Object: object, Reason: fmt.Sprintf(reason, args...), Fix: fix}
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
