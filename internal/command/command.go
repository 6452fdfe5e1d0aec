// Package command is the one runner for external commands (resize2fs,
// e2fsck and ntfsresize in the engine, grub-mkimage for the media, ntfs-3g
// in the rescue environment; go, apt-get, dpkg and depmod when the bundle
// is built) so that a failure says what ran and what it printed:
//
//	out, err := command.Run(ctx, exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir))
//	// err: dpkg-deb -x pkg.deb /tmp/x: exit status 2: dpkg-deb: error: …
package command

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Error is a failed external command: its argv, its directory, what it
// wrote to stderr (usually what to fix) and the cause, an
// *exec.ExitError, exec.ErrNotFound or the context's error.
type Error struct {
	Argv   []string
	Dir    string // working directory, "" for the current one
	Output string // stderr (Run) or stdout and stderr (Combined)
	Err    error
}

// Error names the command, the cause and the last lines of its output
// (Output keeps all of it).
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if s := lastLines(e.Output, 10); s != "" {
		msg += ": " + s
	}
	return msg
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.TrimSpace(strings.Join(l, "\n"))
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs c and returns what it wrote to stdout. Stdout and stderr that c
// does not send elsewhere are captured: stdout is returned, stderr goes
// into the *Error of a failure. A command that failed because ctx ended
// (exec.CommandContext kills it) fails with ctx's error.
func Run(ctx context.Context, c *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	if c.Stdout == nil {
		c.Stdout = &stdout
	}
	if c.Stderr == nil {
		c.Stderr = &stderr
	}
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &Error{Argv: c.Args, Dir: c.Dir, Output: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

// Combined runs c for its effect, for commands that mix their messages on
// stdout and stderr (go build, ntfs-3g): both go, in order, into the
// *Error of a failure.
func Combined(ctx context.Context, c *exec.Cmd) error {
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return &Error{Argv: c.Args, Dir: c.Dir, Output: out.String(), Err: err}
	}
	return nil
}
