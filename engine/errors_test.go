package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// the refusal's reason quotes it without the package name; the options in
// the reasons and fixes of both stay data, worded by each front end.
func TestRefusedCause(t *testing.T) {
	cause := &layout.Error{Partition: 3, Reason: "{} names partition 3, which does not fit", Names: []opt.Use{{Option: opt.Grow}},
		Fix: opt.With("use {}", opt.Use{Option: opt.Table, Value: "gpt"})}
	err := fmt.Errorf("restore: %w", refuseBecause("/dev/sdx", opt.With("restore without {}", opt.Use{Option: opt.Delta}), cause,
		because("it is 1 GiB and {} says ", opt.Use{Option: opt.Layout, Value: "fill"}).then(layoutReason(cause))))
	var le *layout.Error
	if !errors.As(err, &le) || le.Partition != 3 {
		t.Fatalf("errors.As found %v", le)
	}
	if want := "restore: refusing /dev/sdx: it is 1 GiB and --layout fill says --grow names partition 3, which does not fit; use --table gpt; restore without --delta"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatal("no RefusedError")
	}
	word := func(u opt.Use) string { return "<" + string(u.Option) + ":" + u.Value + ">" }
	if got, want := re.Worded(word), "refusing /dev/sdx: it is 1 GiB and <layout:fill> says <grow:> names partition 3, which does not fit; use <table:gpt>; restore without <delta:>"; got != want {
		t.Errorf("Worded = %q, want %q", got, want)
	}
	if strings.Contains(re.Reason, "--") || strings.Contains(le.Reason, "--") {
		t.Errorf("a reason spells a flag: %q / %q", re.Reason, le.Reason)
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
