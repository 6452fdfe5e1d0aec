// Command lbbench measures lifeboat's backup and restore throughput, output
// size and peak memory, and prints the comparison as tables: against
// dd | zstd on a generated mixed test disk (-parts disk), and against
// partclone | zstd, qemu-img and dd | zstd on ext4 and NTFS images about half
// full of a generated data set (-parts fs; needs root); CPU-seconds,
// output size and wall time with a cold and a warm page cache against
// those and restic (-parts cpu; needs root). `make bench` runs every part;
// see package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-rescue/lifeboat/bench"
	"github.com/lifeboat-rescue/lifeboat/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code := exitCode(err)
	if code != 0 && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
	}
	os.Exit(code)
}

// exitCode maps errors to the exit codes of engine's one table.
func exitCode(err error) int {
	var usage bench.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return engine.ExitOK
	case errors.Is(err, context.Canceled):
		return engine.ExitCancelled
	case errors.As(err, &usage):
		return engine.ExitUsage
	default:
		return engine.ExitFailure
	}
}
