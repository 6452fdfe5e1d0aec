package command

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs sh")
	}
	ctx := t.Context()
	out, err := Run(ctx, exec.Command("sh", "-c", "echo out; echo err >&2"))
	if err != nil || string(out) != "out\n" {
		t.Fatalf("Run = %q, %v; want \"out\\n\", nil", out, err)
	}

	_, err = Run(ctx, exec.Command("sh", "-c", "echo no such device >&2; exit 3"))
	var ce *Error
	var ee *exec.ExitError
	if !errors.As(err, &ce) || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Run = %v; want an *Error wrapping exit status 3", err)
	}
	if want := "sh -c echo no such device >&2; exit 3: exit status 3: no such device"; err.Error() != want {
		t.Errorf("error reads %q, want %q", err, want)
	}

	_, err = Run(ctx, exec.Command("lifeboat-no-such-command"))
	if !errors.Is(err, exec.ErrNotFound) || !strings.HasPrefix(err.Error(), "lifeboat-no-such-command: ") {
		t.Errorf("Run of a missing command = %v; want exec.ErrNotFound with the argv", err)
	}

	err = Combined(ctx, exec.Command("sh", "-c", "echo one; echo two >&2; exit 1"))
	if want := "sh -c echo one; echo two >&2; exit 1: exit status 1: one\ntwo"; err == nil || err.Error() != want {
		t.Errorf("Combined = %v, want %q", err, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Run(cctx, exec.CommandContext(cctx, "sleep", "10"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v; want context.Canceled", err)
	}
}
