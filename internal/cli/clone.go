package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// layoutFlags are the partition-layout options of restore and clone.
type layoutFlags struct {
	mode, align, table string
	grow               int
	sizes              []string
	newIDs             bool
}

func (f *layoutFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.mode, "layout", "keep", "keep (as stored), fill (grow a partition to use a larger disk), fit (shrink ext and NTFS filesystems onto a smaller disk) or manual (--size)")
	fl.IntVar(&f.grow, "grow", 0, "with --layout fill: the partition that takes the extra space (default: the last data partition)")
	fl.StringArrayVar(&f.sizes, "size", nil, "with --layout manual: N=SIZE sets partition N's size (e.g. 3=200G); repeat for more")
	fl.StringVar(&f.align, "align", "1MiB", "move partition starts to multiples of SIZE (SSD alignment); 0 keeps them")
	fl.BoolVar(&f.newIDs, "new-ids", false, "give the disk and its partitions new GUIDs (MBR: a new disk signature)")
	fl.StringVar(&f.table, "table", "", "partition table of the target: gpt or mbr (default: as stored)")
}

func (f *layoutFlags) options() (engine.LayoutOptions, error) {
	var o engine.LayoutOptions
	m, err := layout.ParseMode(f.mode)
	if err != nil {
		return o, usagef("--layout %s: use keep, fill, fit or manual", f.mode)
	}
	o.Mode, o.Grow, o.NewIDs = m, f.grow, f.newIDs
	if f.grow != 0 && m != layout.Fill {
		return o, usagef("--grow needs --layout fill")
	}
	if len(f.sizes) > 0 && m != layout.Manual {
		return o, usagef("--size needs --layout manual")
	}
	if m == layout.Manual && len(f.sizes) == 0 {
		return o, usagef("--layout manual needs at least one --size N=SIZE")
	}
	for _, s := range f.sizes {
		k, v, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(k)
		if !ok || err != nil || n < 1 {
			return o, usagef("--size %s: use N=SIZE, e.g. 2=100G", s)
		}
		size, err := engine.ParseSize(v)
		if err != nil {
			return o, &usageError{fmt.Errorf("--size %s: %w", s, err)}
		}
		if o.Sizes == nil {
			o.Sizes = map[int]int64{}
		}
		o.Sizes[n] = size
	}
	switch strings.ToLower(f.align) {
	case "0", "none", "off", "":
	default:
		a, err := engine.ParseSize(f.align)
		if err != nil || a%512 != 0 {
			return o, usagef("--align %s: use a multiple of 512 bytes, e.g. 1MiB, or 0 to keep the starts", f.align)
		}
		o.Align = a
	}
	switch strings.ToLower(f.table) {
	case "":
	case "gpt":
		o.Table = layout.GPT
	case "mbr", "dos", "msdos":
		o.Table = layout.MBR
	default:
		return o, usagef("--table %s: use gpt or mbr", f.table)
	}
	return o, nil
}

func cloneCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "clone",
		Short: "Copy a disk, a partition or a system straight to another disk",
	}
	for _, kind := range []engine.CloneKind{engine.CloneDisk, engine.ClonePartition, engine.CloneSystem} {
		var lf layoutFlags
		var target string
		var osPart int
		var sectorBySector, rescue, noVerify bool
		use, short := "disk SOURCE --target DISK", "Clone a whole disk, laid out for the target's size"
		switch kind {
		case engine.ClonePartition:
			use, short = "part SOURCE --target PARTITION", "Clone one partition onto another partition or file"
		case engine.CloneSystem:
			use, short = "system [DISK] --target DISK", "Clone the partitions the system needs to boot (ESP, MSR, recovery, /boot, the OS)"
		}
		sub := &cobra.Command{
			Use:   use,
			Short: short,
			Args: func(c *cobra.Command, args []string) error {
				if kind == engine.CloneSystem && len(args) == 0 {
					return nil // the disk the running system is on
				}
				return oneArg("one SOURCE", "target", "--target", &target)(c, args)
			},
			RunE: func(c *cobra.Command, args []string) error {
				if target == "" {
					return usagef("no target: add --target DISK")
				}
				target = diskName(target)
				lo, err := lf.options()
				if err != nil {
					return err
				}
				source := ""
				if len(args) > 0 {
					source = diskName(args[0])
				}
				if source == "" {
					if source, err = engine.SystemDisk(); err != nil {
						return systemDiskHint(err, target)
					}
				}
				bar := newBar(e)
				res, err := engine.Clone(c.Context(), engine.CloneOptions{Kind: kind, Source: source, Target: target, OS: osPart,
					Layout: lo, SectorBySector: sectorBySector, Rescue: rescue, NoVerify: noVerify, Progress: bar, Log: e.log(),
					Confirm: func(p engine.Plan) error {
						bar.pause()
						defer bar.resume()
						return confirmPlan(e, "Clone", p, -1, -1)
					}})
				if err != nil {
					return err
				}
				v := "not verified (--no-verify)"
				if res.Verified {
					v = "verified by reading it back"
				}
				fmt.Fprintf(e.stdout, "Cloned %s to %s: %s (%s written) in %s, %s\n", source, target, human(res.Bytes), human(res.Written), res.Elapsed.Round(100*time.Millisecond), v)
				if len(res.Copied) > 0 && kind == engine.CloneSystem {
					fmt.Fprintf(e.stdout, "Partitions copied: %v\n", res.Copied)
				}
				printPartitions(e.stdout, res.Partitions)
				for _, fb := range res.Fallbacks {
					fmt.Fprintf(e.stdout, "Every sector copied: %s\n", fb)
				}
				for _, n := range res.Notes {
					fmt.Fprintf(e.stdout, "Note: %s\n", n)
				}
				for _, d := range res.Damaged {
					fmt.Fprintf(e.stdout, "WARNING: damaged: %d+%d (unreadable in the source, written as zeros)\n", d.Off, d.Len)
				}
				return nil
			},
		}
		fl := sub.Flags()
		fl.StringVarP(&target, "target", "t", "", "disk, partition or image file to overwrite (a missing file is created)")
		lf.add(fl)
		fl.BoolVar(&sectorBySector, "sector-by-sector", false, "copy every sector, used or not")
		fl.BoolVar(&rescue, "rescue", false, "keep going past read errors: unreadable sectors are written as zeros and listed")
		fl.BoolVar(&noVerify, "no-verify", false, "skip reading the target back after writing")
		if kind == engine.CloneSystem {
			fl.IntVar(&osPart, "os", 0, "the partition holding the operating system (default: the one mounted at /, or the only candidate)")
		}
		c.AddCommand(sub)
	}
	return c
}

// confirmPlan shows what a restore or clone will overwrite — the target by
// name and size, what it holds now, and what will be written (the image's
// figures, not the target's) — with the partition layout before and
// after, and asks for the target's name. size and inUse are the image's
// figures for what is written (-1: unknown).
func confirmPlan(e *env, verb string, p engine.Plan, size, inUse int64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s from %s onto %s\n", verb, p.What, p.Image, p.Target)
	switch {
	case p.Create:
		fmt.Fprintf(&b, "  Target:        %s does not exist yet; it will be created\n", p.Target)
	default:
		kind := "file"
		if p.TargetIsDev {
			kind = "device"
		}
		fmt.Fprintf(&b, "  Target:        %s (%s %s)\n", p.Target, kind, human(p.TargetSize))
		if len(p.Overwrites) == 0 {
			fmt.Fprintf(&b, "  It now holds:  no partition table or filesystem that lifeboat recognises\n")
		}
		for i, l := range p.Overwrites {
			label := "It now holds:"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(&b, "  %-14s %s\n", label, l)
		}
	}
	if size <= 0 {
		size = p.Bytes
	}
	written := human(size)
	if inUse >= 0 && inUse < size {
		written = fmt.Sprintf("%s, of which %s in use", human(size), human(inUse))
	}
	if p.Bytes != size {
		written += fmt.Sprintf(", over %s of the target", human(p.Bytes))
	}
	from := "image"
	if verb == "Clone" {
		from = "source"
	}
	fmt.Fprintf(&b, "  Will write:    the %s's %s (%s)", from, p.What, written)
	switch {
	case p.Create:
	case p.LayoutKept && strings.Contains(p.What, "differ"):
		fmt.Fprintf(&b, "\n  Only the chunks that differ from what %s holds are written; they are overwritten.", p.Target)
	default:
		fmt.Fprintf(&b, "\n  EVERYTHING on %s in the written range will be overwritten.", p.Target)
	}
	if p.Layout != nil {
		if p.LayoutKept {
			fmt.Fprintf(&b, "\n  Partitions on the target (its %s table is kept):", p.Layout.Table.Type)
		} else {
			fmt.Fprintf(&b, "\n  New %s layout on %s:", p.Layout.Table.Type, human(p.Layout.DiskSize))
		}
		for _, m := range p.Layout.Moves {
			fmt.Fprintf(&b, "\n    partition %d: %s at %s  →  %s at %s", m.Number, human(m.SrcSize), human(m.SrcStart), human(m.DstSize), human(m.DstStart))
		}
		for _, n := range p.Layout.WordedNotes(flagWord) {
			fmt.Fprintf(&b, "\n  %s", n)
		}
	}
	return confirmTyped(e, strings.ToLower(verb)+" overwrites "+p.Target, b.String(), p.Target)
}

// systemDiskHint says how to name the disk when clone system cannot find
// it: the engine says what is unknown, the CLI how to say it.
func systemDiskHint(err error, target string) error {
	if errors.Is(err, engine.ErrSystemDiskUnknown) {
		return fmt.Errorf("%w; name the disk: lifeboat clone system DISK --target %s", err, target)
	}
	return err
}
