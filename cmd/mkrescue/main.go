//go:build linux

// Command mkrescue builds the rescue bundle (kernel, initramfs, boot files
// with Debian's signed Secure Boot chain, bundle.json) into out/rescue;
// `make rescue` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		os.Exit(engine.ExitCancelled)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(engine.ExitOK)
	default:
		fmt.Fprintf(os.Stderr, "mkrescue: %v\n", err)
		os.Exit(engine.ExitFailure)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mkrescue", flag.ContinueOnError)
	var o bundle.Options
	fs.StringVar(&o.Out, "o", "out/rescue", "output folder")
	fs.StringVar(&o.Source, "source", ".", "the lifeboat source tree (where go.mod is)")
	fs.StringVar(&o.Cache, "cache", "out/cache", "where the downloaded kernel and boot chain packages are kept between builds")
	fs.StringVar(&o.Kernel, "kernel", "", "your own kernel bzImage instead of Debian's (with --modules)")
	fs.StringVar(&o.Modules, "modules", "", "the /lib/modules/VERSION folder of --kernel")
	fs.StringVar(&o.Version, "version", "dev", "version recorded in the bundle")
	verbose := fs.Bool("v", false, "log each step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	info, err := bundle.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("rescue bundle in %s: kernel %s (%d bytes), initramfs %d bytes, %d modules\n",
		o.Out, info.KernelVersion, info.Files["vmlinuz"].Size, info.Files["initramfs"].Size, len(info.Modules))
	if err := info.SecureBootCapable(); err != nil {
		fmt.Printf("Secure Boot: no (%v)\n", err)
		return nil
	}
	fmt.Print("Secure Boot: yes;")
	for _, s := range info.Signed {
		fmt.Printf(" %s (%s %s)", s.File, s.Package, s.Version)
	}
	fmt.Println()
	return nil
}
