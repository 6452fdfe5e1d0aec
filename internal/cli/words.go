package cli

import (
	"errors"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
)

// flagNames are the flags that set each option the engine's errors name
// in their fixes: the CLI, not the engine, decides how an option is
// spelled on the command line.
var flagNames = map[opt.Option]string{
	opt.Partition:        "--partition",
	opt.Layout:           "--layout",
	opt.Size:             "--size",
	opt.Grow:             "--grow",
	opt.Table:            "--table",
	opt.NewIDs:           "--new-ids",
	opt.Delta:            "--delta",
	opt.Overwrite:        "--overwrite",
	opt.RequireEncrypted: "--require-encrypted",
	opt.PasswordFile:     "--password-file",
	opt.ChainDir:         "--chain-dir",
	opt.Rescue:           "--rescue",
	opt.Incremental:      "--incremental",
	opt.Differential:     "--differential",
	opt.OS:               "--os",
	opt.Append:           "--append",
	opt.Output:           "-o",
}

// flagWord words one option of a fix as this CLI's flag.
func flagWord(u opt.Use) string {
	f, ok := flagNames[u.Option]
	if !ok {
		f = "--" + string(u.Option)
	}
	if u.Value == "" {
		return f
	}
	return f + " " + u.Value
}

// worded gives err the CLI's wording: the fix of a refusal or of a layout
// error names this CLI's flags. errors.Is/As and ExitCode see err
// unchanged.
func worded(err error) error {
	if err == nil {
		return nil
	}
	var re *engine.RefusedError
	var le *layout.Error
	var fe *engine.FixError
	if !errors.As(err, &re) && !errors.As(err, &le) && !errors.As(err, &fe) {
		return err
	}
	return &wordedError{err}
}

type wordedError struct{ err error }

func (e *wordedError) Unwrap() error { return e.err }

func (e *wordedError) Error() string {
	msg := e.err.Error()
	var re *engine.RefusedError
	if errors.As(e.err, &re) {
		return strings.Replace(msg, re.Error(), re.Worded(flagWord), 1)
	}
	var fe *engine.FixError
	if errors.As(e.err, &fe) {
		return strings.Replace(msg, fe.Error(), fe.Worded(flagWord), 1)
	}
	var le *layout.Error
	if errors.As(e.err, &le) {
		return strings.Replace(msg, le.Error(), "layout: "+le.Worded(flagWord), 1)
	}
	return msg
}
