package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
)

// UsageError is a mistake in the command line; cmd/lbbench exits 2 on it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Execute is the lbbench command: it parses args (without the program name),
// runs the benchmark, prints the table to stdout and progress to stderr.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: lbbench [flags]\n\n"+
			"Measures lifeboat backup and restore against dd | zstd on a generated mixed disk.\n"+
			"The table goes to stdout, progress to stderr.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	o := Options{}
	size := "2G"
	fs.StringVar(&o.Lifeboat, "lifeboat", "bin/lifeboat", "lifeboat binary; its runs are skipped if it does not exist")
	fs.StringVar(&o.Dir, "dir", "out/bench", "work directory: the generated disk is kept here and reused")
	fs.StringVar(&size, "size", size, "size of the generated disk, like 2G or 512M (binary units)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the generated disk")
	fs.IntVar(&o.Reps, "reps", 3, "repetitions of the main comparison; the table shows the median")
	generate := fs.String("generate", "", "only write the test disk (of -size and -seed) to `FILE`, and exit")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return UsageError{err}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Errorf("unexpected arguments %q; lbbench takes only flags", fs.Args())}
	}
	var err error
	if o.Size, err = ParseSize(size); err != nil {
		return UsageError{fmt.Errorf("-size: %w", err)}
	}
	if o.Reps < 1 {
		return UsageError{fmt.Errorf("-reps %d: want at least 1", o.Reps)}
	}
	if *generate != "" {
		return GenerateFile(ctx, *generate, o.Size, o.Seed)
	}
	if exe, err := os.Executable(); err == nil {
		o.Generator = []string{exe, "-size", strconv.FormatInt(o.Size, 10), "-seed", strconv.FormatUint(o.Seed, 10), "-generate"}
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, nil))
	return Run(ctx, o, stdout)
}
