package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// TestWordedFlags: the CLI words a fix's options as its own flags, and
// the error stays what it was for errors.Is/As and the exit code.
func TestWordedFlags(t *testing.T) {
	re := &engine.RefusedError{Object: "/dev/sdx", Reason: "it is too small",
		Fix: opt.With("add {} or leave {} out", opt.Use{Option: opt.Partition, Value: "N"}, opt.Use{Option: opt.RequireEncrypted})}
	err := worded(fmt.Errorf("restore: %w", re))
	if want := "restore: refusing /dev/sdx: it is too small; add --partition N or leave --require-encrypted out"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, engine.ErrRefused) || ExitCode(err) != ExitRefused || !engine.NothingWritten(err) {
		t.Errorf("worded error lost its kind: exit %d", ExitCode(err))
	}
	le := &layout.Error{Reason: "partition 2 has no MBR slot", Fix: opt.With("use {}", opt.Use{Option: opt.Table, Value: "gpt"})}
	if got, want := worded(le).Error(), "layout: partition 2 has no MBR slot; use --table gpt"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	fe := &engine.FixError{Err: errors.New("image x is encrypted"), Fix: opt.With("give it with {}", opt.Use{Option: opt.PasswordFile, Value: "FILE"})}
	if got, want := worded(fe).Error(), "image x is encrypted; give it with --password-file FILE"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	plain := errors.New("plain")
	if worded(plain) != plain || worded(nil) != nil {
		t.Errorf("worded wrapped an error without a fix")
	}
	for o := range flagNames {
		if flagWord(opt.Use{Option: o}) != opt.Flag(opt.Use{Option: o}) {
			t.Errorf("%s: the CLI's flag %q differs from the engine's legacy wording %q; update opt.Flag's callers' messages", o, flagWord(opt.Use{Option: o}), opt.Flag(opt.Use{Option: o}))
		}
	}
}
