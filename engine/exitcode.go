package engine

import (
	"context"
	"errors"
	"io/fs"

	"github.com/lifeboat-rescue/lifeboat/images"
)

// Exit codes, documented in the README. The CLI exits with them and the
// rescue environment reports them in its LIFEBOAT-RESULT line.
const (
	ExitOK        = 0
	ExitFailure   = 1   // anything not listed below
	ExitUsage     = 2   // wrong command line (mapped by the CLI)
	ExitImage     = 3   // image damaged, incomplete or not an image
	ExitPassword  = 4   // password wrong or missing
	ExitRefused   = 5   // refused before writing (target/output unsuitable) or not confirmed
	ExitNotFound  = 6   // source, target, image or a point of its chain missing, or no permission
	ExitIO        = 7   // read or write error on a device
	ExitVerify    = 8   // restored data does not read back as written
	ExitCancelled = 130 // interrupted (Ctrl-C)
)

// ExitCode maps an error from an operation to its exit code: the one table
// every client uses.
func ExitCode(err error) int {
	var ioe *IOError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitCancelled
	case errors.Is(err, images.ErrWrongPassword), errors.Is(err, images.ErrPasswordNeeded):
		return ExitPassword
	case errors.Is(err, images.ErrCorrupt), errors.Is(err, images.ErrIncomplete), errors.Is(err, images.ErrNotImage):
		return ExitImage
	case errors.Is(err, ErrRefused), errors.Is(err, ErrDeclined), errors.Is(err, fs.ErrExist):
		return ExitRefused
	case errors.Is(err, ErrVerify):
		return ExitVerify
	case errors.As(err, &ioe):
		return ExitIO
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), errors.Is(err, images.ErrChainMissing):
		return ExitNotFound
	}
	return ExitFailure
}
