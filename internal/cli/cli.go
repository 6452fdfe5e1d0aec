// Package cli is lifeboat's command line: flags in, engine calls out. It
// holds no logic of its own beyond asking for passwords and confirmations
// and rendering results; cmd/lifeboat only sets up signals and exits with
// ExitCode. Tests run it in-process with Execute.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/version"
	"github.com/lifeboat-rescue/lifeboat/rescue"
)

// Exit codes, documented in the README: engine's table.
const (
	ExitOK        = engine.ExitOK
	ExitFailure   = engine.ExitFailure
	ExitUsage     = engine.ExitUsage
	ExitImage     = engine.ExitImage
	ExitPassword  = engine.ExitPassword
	ExitRefused   = engine.ExitRefused
	ExitNotFound  = engine.ExitNotFound
	ExitIO        = engine.ExitIO
	ExitVerify    = engine.ExitVerify
	ExitCancelled = engine.ExitCancelled
)

// ExitCode maps an error from Execute to the process exit code.
func ExitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
		return ExitUsage
	}
	return engine.ExitCode(err)
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	quiet          bool
	yes            bool
	verbose        bool
	// interactive lets tests answer prompts through a non-terminal stdin.
	interactive bool
}

// log returns the logger the engine gets: steps with timings on stderr
// with --verbose, nothing otherwise.
func (e *env) log() *slog.Logger {
	if !e.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(e.stderr, nil))
}

// Execute runs the lifeboat command line. It never exits the process.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return execute(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

// ExecuteInteractive is Execute for callers that answer prompts through
// stdin although it is not a terminal (tests, a UI driving the CLI).
func ExecuteInteractive(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return execute(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, interactive: true}, args)
}

func execute(ctx context.Context, e *env, args []string) error {
	stdin, stdout, stderr := e.stdin, e.stdout, e.stderr
	root := &cobra.Command{
		Use:   "lifeboat",
		Short: "Back up, restore and check disks and partitions",
		Long: `Lifeboat backs up whole disks and partitions into compressed, optionally
encrypted and split image files, checks them, and restores them.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&e.quiet, "quiet", "q", false, "no progress bar")
	root.PersistentFlags().BoolVarP(&e.yes, "yes", "y", false, "do not ask for confirmation (for scripts)")
	root.PersistentFlags().BoolVarP(&e.verbose, "verbose", "v", false, "log each step with timings to standard error")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(disksCmd(e), backupCmd(e), infoCmd(e), checkCmd(e), restoreCmd(e), cloneCmd(e), mergeCmd(e), versionCmd(e), rescueCmd(e), pxeCmd(e), mkmediaCmd(e), tuiCmd(e))
	err := root.ExecuteContext(ctx)
	if err != nil && isCobraUsage(err) {
		err = &usageError{err}
	}
	return err
}

// isCobraUsage recognises cobra's own argument errors.
func isCobraUsage(err error) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return false
	}
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires ") || strings.Contains(s, "required flag") || strings.HasPrefix(s, "invalid argument")
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: expected %s, got %d arguments; see %s --help", c.CommandPath(), what, len(args), c.CommandPath())
		}
		return nil
	}
}

// rescueCmd is the uinit of the rescue environment (hidden: it loads
// drivers and mounts filesystems, which only makes sense there).
func rescueCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:    "rescue",
		Short:  "Run the rescue environment's start-up (inside the rescue media only)",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			return rescue.Run(c.Context(), rescue.Options{Version: version.Version})
		},
	}
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintf(e.stdout, "lifeboat %s (image format %d)\n", version.Version, images.FormatVersion)
			return nil
		},
	}
}

// parseSize reads sizes such as 4G, 700M, 50MiB, 1.5G or 123456 (bytes).
// K, M, G and T are binary multiples, as in most disk tools.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("size %q: use a number with an optional K, M, G or T suffix, e.g. 4G", s)
	}
	return int64(f * float64(mult)), nil
}
