package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
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
			"Measures lifeboat backup and restore against dd | zstd on a generated mixed disk (part disk),\n"+
			"and against partclone | zstd, qemu-img and dd | zstd on ext4 and NTFS images (part fs),\n"+
			"and CPU time, output size and wall time against those and restic, warm and cold (part cpu).\n"+
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
	fs.IntVar(&o.FSReps, "fs-reps", 2, "repetitions of each backup and restore in the fs part; the table shows the median")
	cpuSize := sizeLabel(DefaultCPUSize)
	fs.StringVar(&cpuSize, "cpu-size", cpuSize, "size of the cpu part's ext4 image, about 60 % full (issue #19 measured 4GiB)")
	fs.IntVar(&o.CPUReps, "cpu-reps", 2, "repetitions of each backup and restore, cold and warm, in the cpu part; the table shows the median")
	parts := "disk,fs,chain,explore,stores,cpu"
	fs.StringVar(&parts, "parts", parts, "parts to run, comma-separated: disk (lifeboat against dd | zstd on the generated raw disk) fs (ext4 and NTFS images against partclone, qemu-img and dd; needs root) chain (full, incremental and delta restore on the ext4 image, qemu-img -B as the peer; needs root) explore (cat, extract and export on the ext4 image against restore+mount+copy and qemu-img convert; needs root) stores (backup to and restore from an S3 server on loopback and an SMB server in a network namespace of its own, against a local file; needs root, versitygw built from the module proxy, Samba) and cpu (CPU-seconds, output size and wall time, cold and warm page cache, on an ext4 image about 60 % full against qemu-img zstd, dd | zstd, partclone | zstd and restic; needs root)")
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
	if o.Reps < 1 || o.FSReps < 1 || o.CPUReps < 1 {
		return UsageError{fmt.Errorf("-reps %d, -fs-reps %d, -cpu-reps %d: want at least 1", o.Reps, o.FSReps, o.CPUReps)}
	}
	if o.CPUSize, err = ParseSize(cpuSize); err != nil {
		return UsageError{fmt.Errorf("-cpu-size: %w", err)}
	}
	if o.CPUSize < 512<<20 {
		return UsageError{fmt.Errorf("-cpu-size %s: want at least 512M, so that mkfs.ext4 makes 4 KiB blocks", cpuSize)}
	}
	if o.Parts, err = ParseParts(parts); err != nil {
		return UsageError{fmt.Errorf("-parts: %w", err)}
	}
	if *generate != "" {
		return GenerateFile(ctx, *generate, o.Size, o.Seed)
	}
	if exe, err := os.Executable(); err == nil {
		o.Generator = []string{exe, "-size", strconv.FormatInt(o.Size, 10), "-seed", strconv.FormatUint(o.Seed, 10), "-generate"}
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, nil))
	var errs []error
	if o.Parts.Has(PartDisk) {
		if err := Run(ctx, o, stdout); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	if o.Parts.Has(PartFS) {
		errs = append(errs, RunFS(ctx, o, stdout))
	}
	if o.Parts.Has(PartChain) && ctx.Err() == nil {
		errs = append(errs, RunChain(ctx, o, stdout))
	}
	if o.Parts.Has(PartExplore) && ctx.Err() == nil {
		errs = append(errs, RunExplore(ctx, o, stdout))
	}
	if o.Parts.Has(PartStores) && ctx.Err() == nil {
		errs = append(errs, RunStores(ctx, o, stdout))
	}
	if o.Parts.Has(PartCPU) && ctx.Err() == nil {
		errs = append(errs, RunCPU(ctx, o, stdout))
	}
	return errors.Join(errs...)
}

// Part is one part of the bench, selected with -parts.
type Part uint8

const (
	// PartDisk is lifeboat against dd | zstd on the generated raw disk (Run).
	PartDisk Part = iota
	// PartFS is ext4 and NTFS images against partclone, qemu-img and dd
	// (RunFS).
	PartFS
	// PartChain is full, incremental and delta restore on the ext4 image,
	// with qemu-img's backing files as the peer (RunChain).
	PartChain
	// PartExplore is cat, extract and export on the ext4 image (RunExplore).
	PartExplore
	// PartStores is backup to and restore from S3 and SMB (RunStores).
	PartStores
	// PartCPU is CPU time, output size and wall time against qemu-img,
	// dd, partclone and restic, cold and warm (RunCPU).
	PartCPU
	numParts
)

func (p Part) String() string {
	switch p {
	case PartDisk:
		return "disk"
	case PartFS:
		return "fs"
	case PartChain:
		return "chain"
	case PartExplore:
		return "explore"
	case PartStores:
		return "stores"
	case PartCPU:
		return "cpu"
	}
	return fmt.Sprintf("Part(%d)", uint8(p))
}

// Parts is a set of Part.
type Parts uint8

// Has reports whether p is in the set.
func (s Parts) Has(p Part) bool { return s&(1<<p) != 0 }

// ParseParts parses a comma-separated list of part names, like "disk,fs".
func ParseParts(list string) (Parts, error) {
	var s Parts
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for p := range numParts {
			if name == p.String() {
				s |= 1 << p
				found = true
			}
		}
		if !found {
			var names []string
			for p := range numParts {
				names = append(names, p.String())
			}
			return 0, fmt.Errorf("unknown part %q in %q; the parts are %s", name, list, strings.Join(names, ", "))
		}
	}
	return s, nil
}
