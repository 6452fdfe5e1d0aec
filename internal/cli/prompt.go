package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

const passwordEnv = engine.PasswordEnv

// takePasswordEnv reads the password from LIFEBOAT_PASSWORD once, before
// anything runs, and removes it from the process's environment: no child
// process lifeboat starts (e2fsck, resize2fs, ntfs-3g, the rescue shell)
// inherits it, whoever starts it. The engine's own runner leaves it out too.
func takePasswordEnv() string {
	v := os.Getenv(passwordEnv)
	os.Unsetenv(passwordEnv)
	return v
}

// passwordGiven says whether the user gave a password before any image was
// opened: a file or the environment (a prompt is shown only for an
// encrypted image).
func (e *env) passwordGiven(file string) bool { return file != "" || e.password != "" }

// encryption is what a command that reads images demands of their
// encryption: --require-encrypted, and a warning on stderr when a password
// was given for an image that is not encrypted.
func (e *env) encryption(passwordFile string, require bool) engine.Encryption {
	return engine.Encryption{Require: require, PasswordGiven: e.passwordGiven(passwordFile), Warn: e.warn}
}

// addRequireEncrypted adds --require-encrypted to a command that reads
// images.
func addRequireEncrypted(fl *pflag.FlagSet, v *bool) {
	fl.BoolVar(v, "require-encrypted", false, "refuse (exit 5) an image that is not encrypted, before anything is written")
}

// warn tells the user something on stderr without stopping.
func (e *env) warn(msg string) { fmt.Fprintf(e.stderr, "WARNING: %s\n", msg) }

// terminalFd returns the descriptor of r or w if it is a terminal.
func terminalFd(f any) (int, bool) {
	if file, ok := f.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		return int(file.Fd()), true
	}
	return 0, false
}

func readPasswordFile(path string) ([]byte, error) {
	b, err := engine.ReadPasswordFile(path)
	if errors.Is(err, engine.ErrEmptyPasswordFile) {
		return nil, &usageError{err}
	}
	return b, err
}

func (e *env) prompt(msg string) ([]byte, error) {
	fd, ok := terminalFd(e.stdin)
	if !ok {
		return nil, errors.New("no terminal")
	}
	return e.readTerminalLine(fd, msg, false)
}

// promptCancelled is a prompt left with Ctrl-C or Ctrl-D. It is a
// context.Canceled, so the process exits 130 like any other cancel.
type promptCancelled struct{ key string }

func (e *promptCancelled) Error() string {
	return fmt.Sprintf("cancelled with %s at the prompt; nothing was written", e.key)
}

func (e *promptCancelled) Unwrap() error { return context.Canceled }

func errPromptCancelled(key string) error { return engine.BeforeWriting(&promptCancelled{key}) }

// readTerminalLine shows prompt (one line, no newline) and reads one line
// typed on the terminal fd (which is e.stdin), echoing it when echo is
// set. The prompt appears only once the terminal is in raw mode, so a key
// pressed as soon as it shows cannot reach the terminal in its old mode. The terminal is in raw mode
// meanwhile, so that Ctrl-C (0x03), Ctrl-D (0x04) and Ctrl-\ (0x1c) arrive
// as bytes and cancel, instead of raising a signal the blocked read would
// never notice (or, for Ctrl-D, ending the line). The terminal's state is
// restored on every path. A cancelled context (SIGTERM, or SIGINT sent from
// elsewhere) ends the wait too.
func (e *env) readTerminalLine(fd int, prompt string, echo bool) ([]byte, error) {
	if e.ctx != nil && e.ctx.Err() != nil {
		return nil, engine.BeforeWriting(fmt.Errorf("cancelled before the prompt; nothing was written: %w", e.ctx.Err()))
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(fd, old)
	fmt.Fprint(e.stderr, prompt)
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := readRawLine(e.stdin, e.stderr, echo)
		done <- result{line, err}
	}()
	ctx := e.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case r := <-done:
		// Raw mode does no output processing: end the line by hand.
		fmt.Fprint(e.stderr, "\r\n")
		return r.line, r.err
	case <-ctx.Done():
		fmt.Fprint(e.stderr, "\r\n")
		return nil, engine.BeforeWriting(fmt.Errorf("cancelled at the prompt; nothing was written: %w", ctx.Err()))
	}
}

// readRawLine reads bytes from a terminal in raw mode up to Enter, with
// backspace and Ctrl-U line editing. Escape sequences (arrow and function
// keys) are dropped rather than becoming part of the line.
func readRawLine(in io.Reader, out io.Writer, echo bool) ([]byte, error) {
	var line []byte
	buf := make([]byte, 64)
	esc := 0 // 1: after ESC; 2: inside a CSI or SS3 sequence
	for {
		n, err := in.Read(buf)
		for _, c := range buf[:n] {
			switch {
			case esc == 1 && (c == '[' || c == 'O'):
				esc = 2
				continue
			case esc == 1:
				esc = 0
				continue
			case esc == 2:
				if c >= 0x40 && c <= 0x7e {
					esc = 0 // the sequence's final byte
				}
				continue
			}
			switch c {
			case 0x1b:
				esc = 1
			case 0x03:
				return nil, errPromptCancelled("Ctrl-C")
			case 0x04:
				return nil, errPromptCancelled("Ctrl-D")
			case 0x1c:
				return nil, errPromptCancelled("Ctrl-\\")
			case '\r', '\n':
				return line, nil
			case 0x7f, 0x08:
				if len(line) > 0 {
					_, size := utf8.DecodeLastRune(line)
					line = line[:len(line)-size]
					if echo {
						fmt.Fprint(out, "\b \b")
					}
				}
			case 0x15: // Ctrl-U: start over
				if echo {
					fmt.Fprint(out, strings.Repeat("\b \b", utf8.RuneCount(line)))
				}
				line = line[:0]
			default:
				if c < 0x20 {
					continue // other control keys are not part of a name or password
				}
				line = append(line, c)
				if echo {
					out.Write([]byte{c})
				}
			}
		}
		if err == io.EOF || (err == nil && n == 0) {
			return nil, errPromptCancelled("end of input")
		}
		if err != nil {
			return nil, err
		}
	}
}

// newPassword gets the password for a new encrypted image: from the file,
// the environment, or typed twice on the terminal. Never from argv.
func newPassword(e *env, file string) ([]byte, error) {
	switch {
	case file != "":
		return readPasswordFile(file)
	case e.password != "":
		return []byte(e.password), nil
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
		case e.password != "":
			return []byte(e.password), nil
		}
		if _, ok := terminalFd(e.stdin); !ok {
			return nil, fmt.Errorf("%s: %w; give --password-file FILE or set %s (no terminal to ask on)", image, images.ErrPasswordNeeded, passwordEnv)
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
	fmt.Fprintf(e.stderr, "\n%s\n", details)
	ask := fmt.Sprintf("Type %q to continue (Ctrl-C cancels): ", name)
	var typed string
	if fd, ok := terminalFd(e.stdin); ok {
		b, err := e.readTerminalLine(fd, ask, true)
		if err != nil {
			return err
		}
		typed = string(b)
	} else {
		fmt.Fprint(e.stderr, ask)
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err == io.EOF && line == "" {
			return errPromptCancelled("end of input")
		}
		if err != nil && err != io.EOF {
			return err
		}
		typed = line
	}
	if strings.TrimSpace(typed) != name {
		return fmt.Errorf("%w: you typed %q, not %q; nothing was written to %s", engine.ErrDeclined, strings.TrimSpace(typed), name, object)
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
