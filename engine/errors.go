package engine

import (
	"errors"
	"fmt"
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
