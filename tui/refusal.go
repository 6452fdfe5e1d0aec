package tui

import (
	"errors"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Refusals and declines: a failure that wrote nothing goes back into the
// wizard, to the step where the choice can be made again, and the engine's
// fix (data: which option, which value) is worded as that step, not as
// the CLI's flag.

// recoverTo takes a restore or clone back to the step where the failed
// choice is made again: the target list for a wrong typed name or a
// refused target; the layout step when the fix names a layout option
// (sizes, new IDs, delta), the scope step when it names one partition;
// srcStep (the image or the disk read) for a refused source or the
// image's password; and the step the operation was started from after
// Esc at the confirmation. Every other choice is kept.
func recoverTo(u *ui, s *steps, err error, target, source string, srcStep step) bool {
	var wrong *wrongNameError
	var ref *engine.RefusedError
	back := func(st step, next string) bool {
		if !s.backTo(st) {
			return false
		}
		u.err = refusalText(err) + " " + next
		return true
	}
	switch {
	case errors.As(err, &wrong):
		return back(stTarget, "Pick the target again (Enter keeps "+target+"); the other choices are kept.")
	case errors.Is(err, engine.ErrDeclined):
		return back(s.cur, "The choices are kept: Enter starts again, Esc goes back a step.")
	case errors.As(err, &ref) && ref.Object == source,
		errors.Is(err, images.ErrWrongPassword), errors.Is(err, images.ErrPasswordNeeded):
		return back(srcStep, "Nothing was written to "+target+"; choose the source again, the other choices are kept.")
	case errors.As(err, &ref) && namesAny(ref, opt.Layout, opt.Size, opt.NewIDs, opt.Delta, opt.Grow, opt.Table):
		return back(stLayout, "Nothing was written; change the layout, the other choices are kept.")
	case errors.As(err, &ref) && namesAny(ref, opt.Partition):
		return back(stScope, "Nothing was written; choose one partition, the other choices are kept.")
	case errors.As(err, &ref):
		return back(stTarget, "Nothing was written; pick another target, the other choices are kept.")
	}
	return false
}

// namesAny says whether a refusal's fix, or its reason, names one of os:
// a reason about an option the user gave ("the sizes name partition 5")
// is corrected where that option is chosen, as a fix naming it is.
func namesAny(ref *engine.RefusedError, os ...opt.Option) bool {
	reason := opt.Fix{Uses: ref.Names}
	for _, o := range os {
		if ref.Fix.Names(o) || reason.Names(o) {
			return true
		}
	}
	return false
}

// refusalText is an error as the UI says it: a refusal's fix names the
// screen where the choice is made, not the CLI's flag.
func refusalText(err error) string {
	var ref *engine.RefusedError
	if !errors.As(err, &ref) {
		return strings.TrimSuffix(err.Error(), ".") + "."
	}
	return strings.TrimSuffix(ref.Worded(screenWord), ".") + "."
}

// screenWord words an option as the step of the wizards that sets it.
// Options no wizard sets (the table type, the partition that grows, the
// encryption requirement) keep the command line's flag.
func screenWord(u opt.Use) string {
	switch u.Option {
	case opt.Partition:
		return "restore one partition (Whole disk or partition)"
	case opt.Layout:
		switch u.Value {
		case "fill":
			return "Fill the disk (Layout)"
		case "fit":
			return "Fit a smaller disk (Layout)"
		}
		return "another layout (Layout)"
	case opt.Size:
		return "sizes by hand (Layout)"
	case opt.NewIDs:
		return "new IDs (Layout)"
	case opt.Delta:
		return "delta (Layout)"
	case opt.Incremental, opt.Differential:
		return "another backup type (Backup type)"
	case opt.Overwrite:
		return "another file name"
	}
	return opt.Flag(u)
}

// nothingWritten says whether an operation that failed with err left its
// target untouched: the engine says so (a refusal, a decline, a failure
// before writing), or the failure came before the user confirmed.
func nothingWritten(err error, confirmed bool) bool {
	return engine.NothingWritten(err) || !confirmed
}
