package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// TestRefusedFixIsData: a refusal carries its fix as options, and its
// message reads as it did when the fix was text.
func TestRefusedFixIsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pc.lbi")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckOutput(path, WriteFile, false)
	var re *RefusedError
	if !errors.As(err, &re) || !re.Fix.Names(opt.Overwrite) {
		t.Fatalf("err = %v, want a refusal whose fix names the overwrite option", err)
	}
	if want := "refusing " + path + ": it already exists; choose another name, or pass --overwrite to replace it"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !NothingWritten(err) || ExitCode(err) != ExitRefused {
		t.Errorf("NothingWritten = %v, exit %d", NothingWritten(err), ExitCode(err))
	}
}

// TestRefusedCause: the layout error behind a refusal is reachable, and
// the refusal's reason quotes it without the package name.
func TestRefusedCause(t *testing.T) {
	cause := &layout.Error{Partition: 3, Reason: "it does not fit", Fix: opt.With("use {}", opt.Use{Option: opt.Table, Value: "gpt"})}
	err := fmt.Errorf("restore: %w", refuseFix("/dev/sdx", opt.Text("nothing was written"), cause, "it is 1 GiB and %s", layoutText(cause)))
	var le *layout.Error
	if !errors.As(err, &le) || le.Partition != 3 {
		t.Fatalf("errors.As found %v", le)
	}
	if want := "restore: refusing /dev/sdx: it is 1 GiB and it does not fit; use --table gpt; nothing was written"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !errors.Is(err, ErrRefused) || ExitCode(err) != ExitRefused {
		t.Errorf("not a refusal: exit %d", ExitCode(err))
	}
}

func TestNothingWritten(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("write /dev/sdx: input/output error"), false},
		{&IOError{Op: "write", Path: "/dev/sdx", Err: errors.New("EIO")}, false},
		{context.Canceled, false},
		{fmt.Errorf("%w: you typed no", ErrDeclined), true},
		{refuse("/dev/sdx", "it is mounted", "unmount it"), true},
		{BeforeWriting(context.Canceled), true},
		{fmt.Errorf("restore: %w", BeforeWriting(errors.New("stopped"))), true},
	} {
		if got := NothingWritten(c.err); got != c.want {
			t.Errorf("NothingWritten(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if err := BeforeWriting(context.Canceled); !errors.Is(err, context.Canceled) || err.Error() != context.Canceled.Error() || ExitCode(err) != ExitCancelled {
		t.Errorf("BeforeWriting changed the error: %v", err)
	}
}
