package tasks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// Hook is a pre or post command's run, as the log keeps it.
type Hook struct {
	Command  string        `json:"command"`
	Exit     int           `json:"exit"`             // -1: it did not end by itself
	Output   string        `json:"output,omitempty"` // stdout and stderr, the last 16 KiB
	Error    string        `json:"error,omitempty"`  // why it did not run or was stopped
	TimedOut bool          `json:"timed_out,omitempty"`
	Elapsed  time.Duration `json:"elapsed"`
}

// OK reports whether the command ran and exited 0.
func (h *Hook) OK() bool { return h.Exit == 0 && h.Error == "" }

// Outcome words a failed hook for a message.
func (h *Hook) Outcome() string {
	out := ""
	if s := lastLine(h.Output); s != "" {
		out = ": " + s
	}
	switch {
	case h.TimedOut:
		return fmt.Sprintf("%q did not finish in %s and was stopped%s", h.Command, h.Elapsed.Round(time.Second), out)
	case h.Error != "":
		return fmt.Sprintf("%q could not run: %s", h.Command, h.Error)
	}
	return fmt.Sprintf("%q failed with exit code %d%s", h.Command, h.Exit, out)
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l[len(l)-1])
}

// DefaultHookTimeout bounds a pre or post command that names no timeout.
const DefaultHookTimeout = 30 * time.Minute

func hookTimeout(s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return DefaultHookTimeout
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	b   []byte
	max int
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b, t.cut = t.b[len(t.b)-t.max:], true
	}
	return len(p), nil
}

func (t *tail) String() string {
	if t.cut {
		return "[…]" + string(t.b)
	}
	return string(t.b)
}

// runHook runs a command line through the platform's shell (sh -c; cmd /C
// on Windows), stopping it and everything it started after timeout.
func runHook(ctx context.Context, command string, timeout time.Duration) *Hook {
	h := &Hook{Command: command}
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := shell(tctx, command)
	c.Env = engine.ChildEnv()
	out := &tail{max: 16 << 10}
	c.Stdout, c.Stderr = out, out
	killGroup(c)
	// A command that leaves a child holding its output open must not
	// keep the run waiting past its timeout.
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	h.Elapsed, h.Output = time.Since(start), out.String()
	var ee *exec.ExitError
	switch {
	case tctx.Err() != nil && ctx.Err() == nil:
		h.TimedOut, h.Exit, h.Error = true, -1, fmt.Sprintf("stopped after %s (its timeout)", timeout)
	case ctx.Err() != nil:
		h.Exit, h.Error = -1, "stopped: the run was cancelled"
	case errors.As(err, &ee):
		h.Exit = ee.ExitCode()
		if h.Exit < 0 {
			h.Error = ee.String()
		}
	case err != nil:
		h.Exit, h.Error = -1, err.Error()
	}
	return h
}
