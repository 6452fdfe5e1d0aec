// Command lifeboat backs up, restores and checks disks and partitions.
// See README.md, or run lifeboat --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifeboat: %v\n", err)
	}
	os.Exit(cli.ExitCode(err))
}
