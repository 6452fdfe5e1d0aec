package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// PasswordEnv is the environment variable an image password may be given
// in. The CLI reads it once at start and removes it from its own
// environment; the engine also leaves it out of the environment of every
// tool it runs (childEnv), for a library user who sets it later.
const PasswordEnv = "LIFEBOAT_PASSWORD"

// childEnv is the environment of every process the engine starts: its own,
// without PasswordEnv. resize2fs and e2fsck have no use for an image
// password, and a child's environment is readable by whatever it runs in
// turn and, on some systems, through /proc by the same user.
func childEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		if runtime.GOOS == "windows" {
			return strings.EqualFold(name, PasswordEnv)
		}
		return name == PasswordEnv
	})
}

// Encryption is what an operation demands of the encryption of the images
// it reads: the image it is given and every earlier point of its chain.
// The zero value demands nothing.
type Encryption struct {
	// Require refuses an image that is not encrypted, with a
	// *RefusedError, before anything is written: an encrypted backup
	// swapped for an unencrypted one of the same name would otherwise be
	// read (and restored) without a word.
	Require bool
	// PasswordGiven says the user supplied a password before the image was
	// opened (a file, the environment). An image that is not encrypted is
	// then named to Warn: the password was not used, and the user may
	// believe the image is protected.
	PasswordGiven bool
	// Warn is called with that warning, on the caller's goroutine, before
	// anything is written.
	Warn func(msg string)
}

// check applies e to the image opened as name: point is the image the
// user named (warned about), or false for an earlier point of its chain
// (only refused: the chain's points share one password).
func (e Encryption) check(name string, im *images.Image, point bool) error {
	switch {
	case im.Encrypted():
		return nil
	case e.Require:
		req := opt.Use{Option: opt.RequireEncrypted}
		return refuseBecause(name, opt.With("use the encrypted backup, or leave out {} if this image is the right one", req), nil,
			because("it is not encrypted, and an encrypted image is required ({})", req))
	case point && e.PasswordGiven && e.Warn != nil:
		e.Warn(fmt.Sprintf("image %s is not encrypted; the password was not used", name))
	}
	return nil
}

// ErrEmptyPasswordFile: a password file holds no password.
var ErrEmptyPasswordFile = errors.New("password file is empty")

// ReadPasswordFile reads a password from the first line of a file (editors
// add a final newline; it is not part of the password).
func ReadPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s; put the password on its first line", ErrEmptyPasswordFile, path)
	}
	return b, nil
}

// ChildEnv is the environment for a program lifeboat starts: its own,
// without the image password.
func ChildEnv() []string { return childEnv() }
