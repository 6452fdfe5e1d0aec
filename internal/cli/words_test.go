package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
	// Reasons about an option the user gave: the engine's delta and layout
	// refusals, a layout error's own reason, and incremental-or-differential.
	delta := &engine.RefusedError{Object: "/dev/sdx", Reason: "{} with {} compares with partition 2", Names: []opt.Use{{Option: opt.Delta}, {Option: opt.Partition, Value: "2"}},
		Fix: opt.With("restore without {}", opt.Use{Option: opt.Delta})}
	if got, want := worded(delta).Error(), "refusing /dev/sdx: --delta with --partition 2 compares with partition 2; restore without --delta"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	sized := &layout.Error{Partition: 9, Reason: "{} names partition 9", Names: []opt.Use{{Option: opt.Size}}}
	if got, want := worded(fmt.Errorf("plan: %w", sized)).Error(), "plan: layout: --size names partition 9"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	both := &engine.FixError{Err: errors.New("a new point is incremental or differential, not both"), Fix: opt.With("give {} or {}", opt.Use{Option: opt.Incremental}, opt.Use{Option: opt.Differential})}
	if got, want := worded(both).Error(), "a new point is incremental or differential, not both; give --incremental or --differential"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	unknown := fmt.Errorf("%w: no disk holds its root filesystem", engine.ErrSystemDiskUnknown)
	if got := systemDiskHint(unknown, "/dev/sdb").Error(); !strings.HasSuffix(got, "; name the disk: lifeboat clone system DISK --target /dev/sdb") || !errors.Is(systemDiskHint(unknown, "x"), engine.ErrSystemDiskUnknown) {
		t.Errorf("clone system hint: %q", got)
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

// TestPrintPartitions: the engine's per-partition results, one line each.
func TestPrintPartitions(t *testing.T) {
	var b strings.Builder
	printPartitions(&b, []engine.PartitionResult{
		{Number: 1, FS: "vfat", Label: "EFI", Size: 512 << 20, Written: 30 << 20, Elapsed: 2 * time.Second, Verified: true},
		{Number: 3, Size: 1 << 30, Written: 1 << 30, Elapsed: 1500 * time.Millisecond, Grown: true},
	})
	want := "Partition 1: vfat \"EFI\", 512 MiB, 30 MiB written in 2s, verified\n" +
		"Partition 3: 1.0 GiB, 1.0 GiB written in 1.5s, not verified, filesystem grown\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
