package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

const passwordEnv = "LIFEBOAT_PASSWORD"

// terminalFd returns the descriptor of r or w if it is a terminal.
func terminalFd(f any) (int, bool) {
	if file, ok := f.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		return int(file.Fd()), true
	}
	return 0, false
}

func readPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	// The first line is the password; editors add a final newline.
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return nil, usagef("password file %s is empty; put the password on its first line", path)
	}
	return b, nil
}

func (e *env) prompt(msg string) ([]byte, error) {
	fd, ok := terminalFd(e.stdin)
	if !ok {
		return nil, errors.New("no terminal")
	}
	fmt.Fprint(e.stderr, msg)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(e.stderr)
	return b, err
}

// newPassword gets the password for a new encrypted image: from the file,
// the environment, or typed twice on the terminal. Never from argv.
func newPassword(e *env, file string) ([]byte, error) {
	switch {
	case file != "":
		return readPasswordFile(file)
	case e.getenv(passwordEnv) != "":
		return []byte(e.getenv(passwordEnv)), nil
	}
	if _, ok := terminalFd(e.stdin); !ok {
		return nil, usagef("--encrypt needs a password: give --password-file FILE or set %s (no terminal to ask on)", passwordEnv)
	}
	for {
		a, err := e.prompt("New image password: ")
		if err != nil {
			return nil, err
		}
		if len(a) == 0 {
			fmt.Fprintln(e.stderr, "The password must not be empty.")
			continue
		}
		b, err := e.prompt("Type it again: ")
		if err != nil {
			return nil, err
		}
		if bytes.Equal(a, b) {
			return a, nil
		}
		fmt.Fprintln(e.stderr, "The passwords differ; try again.")
	}
}

// existingPassword returns a callback the engine calls only for an
// encrypted image.
func existingPassword(e *env, file, image string) func() ([]byte, error) {
	return func() ([]byte, error) {
		switch {
		case file != "":
			return readPasswordFile(file)
		case e.getenv(passwordEnv) != "":
			return []byte(e.getenv(passwordEnv)), nil
		}
		if _, ok := terminalFd(e.stdin); !ok {
			return nil, fmt.Errorf("image %s is encrypted: %w; give --password-file FILE or set %s", image, images.ErrPasswordNeeded, passwordEnv)
		}
		return e.prompt(fmt.Sprintf("Password of %s: ", filepath.Base(image)))
	}
}

// confirmTyped shows details and asks for the object's base name to be
// typed; without a terminal (and without --yes) it refuses with summary.
// Every path that returns an error wrote nothing.
func confirmTyped(e *env, summary, details, object string) error {
	if e.yes {
		return nil
	}
	if _, ok := terminalFd(e.stdin); !ok && !e.interactive {
		return fmt.Errorf("%w: %s; pass --yes to confirm when not on a terminal (nothing was written)", engine.ErrDeclined, summary)
	}
	name := filepath.Base(object)
	fmt.Fprintf(e.stderr, "\n%s\nType %q to continue: ", details, name)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return err
	}
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("%w: you typed %q, not %q; nothing was written to %s", engine.ErrDeclined, strings.TrimSpace(line), name, object)
	}
	return nil
}

// bar renders engine progress on a terminal; it is silent otherwise.
type bar struct {
	e      *env
	on     bool
	mu     sync.Mutex
	paused bool
	width  int
}

func newBar(e *env) *bar {
	_, tty := terminalFd(e.stderr)
	return &bar{e: e, on: tty && !e.quiet}
}

func (b *bar) Report(s engine.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on || b.paused {
		return
	}
	line := fmt.Sprintf("%-15s %s", s.Stage, human(s.Done))
	if s.Total > 0 {
		pct := float64(s.Done) * 100 / float64(s.Total)
		line = fmt.Sprintf("%-15s %5.1f%%  %s / %s", s.Stage, pct, human(s.Done), human(s.Total))
	}
	line += fmt.Sprintf("  %s/s", human(int64(s.Rate)))
	if s.Final {
		line += fmt.Sprintf("  in %s", s.Elapsed.Round(time.Second))
	} else if s.Total > 0 && s.Rate > 0 {
		eta := time.Duration(float64(s.Total-s.Done) / s.Rate * float64(time.Second))
		line += fmt.Sprintf("  ETA %s", eta.Round(time.Second))
	}
	pad := max(0, b.width-len(line))
	b.width = len(line)
	fmt.Fprintf(b.e.stderr, "\r%s%s", line, strings.Repeat(" ", pad))
	if s.Final {
		fmt.Fprintln(b.e.stderr)
		b.width = 0
	}
}

func (b *bar) pause()  { b.mu.Lock(); b.paused = true; b.mu.Unlock() }
func (b *bar) resume() { b.mu.Lock(); b.paused = false; b.mu.Unlock() }

var human = engine.HumanBytes
