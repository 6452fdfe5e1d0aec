// Command lifeboat backs up, restores and checks disks and partitions.
// See README.md, or run lifeboat --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// LIFEBOAT_CPUPROFILE=FILE writes a CPU profile of the command (go
	// tool pprof -top bin/lifeboat FILE): how the backup's costs were found.
	// A %p in FILE becomes the process ID, to profile each command a
	// script (make bench) runs.
	if p := os.Getenv("LIFEBOAT_CPUPROFILE"); p != "" {
		if f, err := os.Create(strings.ReplaceAll(p, "%p", strconv.Itoa(os.Getpid()))); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	err := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifeboat: %v\n", err)
	}
	if code := cli.ExitCode(err); code != 0 {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}
