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
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	// password is what engine.PasswordEnv held when the command line
	// started (takePasswordEnv); "" when it was not set.
	password string
	quiet    bool
	yes      bool
	verbose  bool
	// interactive lets tests answer prompts through a non-terminal stdin.
	interactive bool
	// ctx is the command's context: a prompt waiting for the user gives
	// up when it is cancelled.
	ctx context.Context
	// args are the command line as given, for messages that show it
	// corrected.
	args []string
}

// log returns the logger the engine gets: steps with timings on stderr
// with --verbose, nothing otherwise.
func (e *env) log() *slog.Logger {
	if !e.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(e.stderr, nil))
}

// Execute runs the lifeboat command line. It never exits the process. It
// takes the password from LIFEBOAT_PASSWORD, removing it from the process's
// environment (see takePasswordEnv).
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return execute(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, password: takePasswordEnv()}, args)
}

// ExecuteInteractive is Execute for callers that answer prompts through
// stdin although it is not a terminal (tests, a UI driving the CLI).
func ExecuteInteractive(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return execute(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, password: takePasswordEnv(), interactive: true}, args)
}

func execute(ctx context.Context, e *env, args []string) error {
	stdin, stdout, stderr := e.stdin, e.stdout, e.stderr
	e.ctx, e.args = ctx, args
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
	var s3Endpoint string
	root.PersistentFlags().StringVar(&s3Endpoint, "s3-endpoint", "", "the S3-compatible server of s3:// images, http(s)://HOST[:PORT] (default: AWS_ENDPOINT_URL, else AWS S3)")
	var smbCreds string
	root.PersistentFlags().StringVar(&smbCreds, "credentials-file", "", "user name and password of smb:// shares: a file with username=, password= (and domain=) lines, as mount.cifs reads")
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if s3Endpoint != "" {
			if err := os.Setenv(engine.S3EndpointEnv, s3Endpoint); err != nil {
				return err
			}
		}
		if smbCreds != "" {
			abs, _ := filepath.Abs(smbCreds)
			return os.Setenv(engine.SMBCredentialsEnv, abs)
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(disksCmd(e), backupCmd(e), infoCmd(e), checkCmd(e), restoreCmd(e), cloneCmd(e), mergeCmd(e), versionCmd(e), rescueCmd(e), pxeCmd(e), mkmediaCmd(e), tuiCmd(e),
		lsCmd(e), catCmd(e), extractCmd(e), mountCmd(e), umountCmd(e), exportCmd(e), taskCmd(e), logCmd(e), ambackupCmd(e), imagesCmd(e))
	for _, c := range root.Commands() {
		if c.HasSubCommands() {
			groupArgs(e, c)
		}
	}
	err := root.ExecuteContext(ctx)
	if err != nil && isCobraUsage(err) {
		err = &usageError{err}
	}
	return worded(err)
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

// useLine is how the command is used, without cobra's "[flags]".
func useLine(c *cobra.Command) string {
	return strings.TrimSuffix(c.UseLine(), " [flags]")
}

// oneArg is the check of a command taking one argument (what) and a second
// name by a flag (role, e.g. the target by --target): when the flag is
// missing and two arguments are given, it shows the command corrected.
func oneArg(what, role, flag string, value *string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) == 1:
			return nil
		case len(args) == 0:
			return usagef("%s needs %s: %s", c.CommandPath(), what, useLine(c))
		case len(args) == 2 && value != nil && *value == "":
			return usagef("%s takes the %s with %s: %s %s %s %s", c.CommandPath(), role, flag, c.CommandPath(), args[0], flag, args[1])
		}
		return usagef("%s takes %s, not %d arguments (%s): %s", c.CommandPath(), what, len(args), strings.Join(args, " "), useLine(c))
	}
}

// groupArgs makes a command that only groups others (backup, clone, pxe,
// mkmedia) say what the right form is instead of cobra's "unknown
// shorthand flag" or a help text with exit 0 when its arguments are out of
// order: "backup /dev/sda disk -o x.lbi" names the kind too late.
func groupArgs(e *env, c *cobra.Command) {
	c.FParseErrWhitelist.UnknownFlags = true
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		i := slices.Index(e.args, c.Name())
		if i < 0 || i == len(e.args)-1 {
			return c.Help() // just the group: show its commands
		}
		var forms []string
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			forms = append(forms, useLine(sub))
			// The kind given after the source: move it up front.
			if j := slices.Index(e.args[i+1:], sub.Name()); j >= 0 {
				j += i + 1
				fixed := append([]string{"lifeboat"}, e.args[:i+1]...)
				fixed = append(append(fixed, sub.Name()), e.args[i+1:j]...)
				fixed = append(fixed, e.args[j+1:]...)
				return usagef("%q goes right after %q: %s", sub.Name(), c.Name(), strings.Join(fixed, " "))
			}
		}
		return usagef("%s needs one of: %s", c.CommandPath(), strings.Join(forms, "; "))
	}
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

// addModeFlag adds --mode to a command that writes image files (what says
// which files).
func addModeFlag(fl *pflag.FlagSet, v *string, what string) {
	fl.StringVar(v, "mode", "0600", "permissions of "+what+", in octal whatever the umask (0600: only you; 0640: your group may read too)")
}

// parseMode reads --mode: octal permission bits that images.CheckMode
// accepts ("0640", "640" or "0o640"). It refuses anything else before a
// byte is written.
func parseMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err == nil {
		err = images.CheckMode(fs.FileMode(v))
	}
	if err != nil {
		return 0, usagef("--mode %s: give the permissions in octal, read and write bits with the owner's, from 0600 to 0666; e.g. --mode 0640 lets your group read the image (the default 0600: only you)", s)
	}
	return fs.FileMode(v), nil
}
