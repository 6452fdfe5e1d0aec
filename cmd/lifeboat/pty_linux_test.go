package main

// The binary on a real pseudo-terminal, as a user at a keyboard has it:
// Ctrl-C and Ctrl-D at the prompts, binary output to a terminal.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

// ptyRun is the binary started with a pseudo-terminal as its controlling
// terminal and as stdin, stdout and stderr.
type ptyRun struct {
	cmd    *exec.Cmd
	master *os.File
	slave  *os.File // kept open to read the terminal's modes afterwards
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

// openPty opens a new pseudo-terminal pair (no cgo, no extra module).
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func startPty(t *testing.T, env []string, args ...string) *ptyRun {
	t.Helper()
	m, s := openPty(t)
	cmd := exec.Command(lifeboat, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TERM=dumb"}, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The reader below sees EOF only when every slave is closed; the
	// test keeps one, so wait() does not wait for EOF.
	p := &ptyRun{cmd: cmd, master: m, slave: s, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.done)
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		m.Close()
		s.Close()
	})
	return p
}

func (p *ptyRun) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal shows s.
func (p *ptyRun) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", s, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *ptyRun) send(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// cooked reports whether the terminal is back in its ordinary modes (echo,
// line editing, signals), as it was before the prompt.
func (p *ptyRun) cooked(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) == unix.ECHO|unix.ICANON|unix.ISIG
}

// wait returns the exit code; a process still waiting after 30 s fails.
func (p *ptyRun) wait(t *testing.T) int {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- p.cmd.Wait() }()
	select {
	case err := <-ch:
		time.Sleep(100 * time.Millisecond) // the rest of the output
		t.Logf("terminal:\n%s", p.output())
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after the key; terminal:\n%s", p.output())
	}
	return -1
}

// Ctrl-C and Ctrl-D at the typed confirmation and at the password prompt
// cancel with exit 130 and leave the target as it was.
func TestPromptCancelKeys(t *testing.T) {
	plain := newFixture(t, false)
	enc := newFixture(t, true)
	for _, tc := range []struct {
		name, key, prompt string
		fx                *fixture
	}{
		{"confirm/ctrl-c", "\x03", "to continue", plain},
		{"confirm/ctrl-d", "\x04", "to continue", plain},
		{"confirm/ctrl-c after typing", "targ\x03", "to continue", plain},
		{"password/ctrl-c", "\x03", "Password of", enc},
		{"password/ctrl-d", "\x04", "Password of", enc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPty(t, nil, "restore", tc.fx.img, "--target", tc.fx.target)
			p.waitFor(t, tc.prompt)
			p.send(t, tc.key)
			if code := p.wait(t); code != cli.ExitCancelled {
				t.Fatalf("exit code %d, want %d", code, cli.ExitCancelled)
			}
			if !strings.Contains(p.output(), "cancelled") || !strings.Contains(p.output(), "nothing was written") {
				t.Errorf("no clear cancel message:\n%s", p.output())
			}
			if !p.cooked(t) {
				t.Error("the terminal was left in raw mode")
			}
			tc.fx.untouched(t)
		})
	}
	// The new password of an encrypted backup: nothing is created.
	for _, key := range []string{"\x03", "\x04"} {
		t.Run("new password/"+map[string]string{"\x03": "ctrl-c", "\x04": "ctrl-d"}[key], func(t *testing.T) {
			out := filepath.Join(plain.dir, "new.lbi")
			p := startPty(t, nil, "backup", "disk", plain.disk, "-o", out, "--encrypt")
			p.waitFor(t, "New image password")
			p.send(t, "secret\r")
			p.waitFor(t, "Type it again")
			p.send(t, key)
			if code := p.wait(t); code != cli.ExitCancelled {
				t.Fatalf("exit code %d, want %d", code, cli.ExitCancelled)
			}
			if m, _ := filepath.Glob(out + "*"); len(m) > 0 {
				t.Errorf("left behind: %v", m)
			}
		})
	}
	// The terminal still works after a prompt: the typed name confirms.
	t.Run("confirm/typed", func(t *testing.T) {
		p := startPty(t, nil, "restore", plain.img, "--target", plain.target, "--no-verify")
		p.waitFor(t, "to continue")
		p.send(t, "tarx\x7fget.img\r")
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit code %d after typing the name", code)
		}
	})
}

// Binary image data is not written to a terminal.
func TestBackupToTerminalRefused(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "src.img")
	mkext4(t, disk, 16<<20, 2<<20)
	p := startPty(t, nil, "backup", "disk", disk, "-o", "-")
	code := p.wait(t)
	if code != cli.ExitRefused {
		t.Fatalf("exit code %d, want %d", code, cli.ExitRefused)
	}
	out := p.output()
	if !strings.Contains(out, "not writing binary data to a terminal") || !strings.Contains(out, "> FILE") {
		t.Errorf("message: %s", out)
	}
	if len(out) > 1000 {
		t.Errorf("%d bytes reached the terminal", len(out))
	}
}
