package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/version"
)

func disksCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "disks",
		Short: "List disks and partitions",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			ds, err := engine.Disks()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e, ds)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSIZE\tSECTOR\tBUS\tMODEL / NAME\tSERIAL\tTABLE\tFS\tLABEL\tMOUNTED AT")
			for _, d := range ds {
				fsType, label := "", ""
				if d.FS != nil {
					fsType, label = d.FS.Type, d.FS.Label
				}
				model := d.Model
				if d.BackingFile != "" {
					model = d.BackingFile
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Path, human(d.Size), d.SectorSize, d.Bus, model, d.Serial, d.Table, fsType, label, strings.Join(d.MountPoints, " "))
				if d.Error != "" {
					fmt.Fprintf(tw, "  (%s)\n", d.Error)
				}
				for _, p := range d.Partitions {
					fsType, label, used := "", "", ""
					if p.FS != nil {
						fsType, label = p.FS.Type, p.FS.Label
						if p.FS.Used >= 0 {
							used = " (" + human(p.FS.Used) + " used)"
						}
					}
					fmt.Fprintf(tw, "  %s\t%s\t\t\t%s\t\t\t%s\t%s\t%s\n", p.Path, human(p.Size), p.Label, fsType+used, label, strings.Join(p.MountPoints, " "))
				}
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	return c
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type backupFlags struct {
	output, compression, split, cipher, passwordFile, chunkSize, mode string
	incremental, differential, chainDir                               string
	encrypt, sectorBySector, overwrite, rescue, requireEncrypted      bool
}

func backupCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "backup",
		Short: "Back up a disk or a partition into an image",
	}
	for _, verb := range []string{"disk", "part", "system"} {
		var f backupFlags
		kind := images.KindDisk
		sub := &cobra.Command{
			Use:   "disk SOURCE -o IMAGE",
			Short: "Back up a whole disk (or a raw disk image file)",
			Args:  oneArg("one SOURCE (a disk, partition or disk image file; \"lifeboat disks\" lists them)", "image", "-o", &f.output),
			RunE:  func(c *cobra.Command, args []string) error { return runBackup(c, e, kind, args[0], &f) },
		}
		switch verb {
		case "part":
			kind = images.KindPartition
			sub.Use, sub.Short = "part SOURCE -o IMAGE", "Back up one partition"
		case "system":
			sub.Use, sub.Short = "system -o IMAGE", "Back up the whole disk the running system starts from (on Windows its mounted volumes through VSS)"
			sub.Args = cobra.NoArgs
			sub.RunE = func(c *cobra.Command, args []string) error {
				source, err := engine.SystemDisk()
				if errors.Is(err, engine.ErrSystemDiskUnknown) {
					return fmt.Errorf("%w; name the disk: lifeboat backup disk DISK -o IMAGE (\"lifeboat disks\" lists them)", err)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "The running system starts from %s: backing up that whole disk\n", source)
				return runBackup(c, e, kind, source, &f)
			}
		}
		fl := sub.Flags()
		fl.StringVarP(&f.output, "output", "o", "", "image file to write (- for standard output)")
		fl.StringVar(&f.compression, "compression", "normal", "none, fast (S2: half normal's CPU, about 30 % larger), normal (zstd -1 class) or high (zstd -3 class: about 3 % smaller for 1.3× the CPU)")
		fl.StringVar(&f.split, "split", "", "split the image into parts of at most SIZE (e.g. 4G; at least 50M)")
		fl.BoolVar(&f.encrypt, "encrypt", false, "encrypt the image with a password")
		fl.StringVar(&f.cipher, "cipher", "aes-256-gcm", "aes-256-gcm or xchacha20-poly1305 (with --encrypt)")
		fl.StringVar(&f.passwordFile, "password-file", "", "read the password from FILE (or set LIFEBOAT_PASSWORD)")
		fl.BoolVar(&f.sectorBySector, "sector-by-sector", false, "store every sector, used or not (default: only what the filesystems use)")
		fl.BoolVar(&f.rescue, "rescue", false, "keep going past read errors: unreadable sectors are stored as zeros and listed")
		fl.BoolVar(&f.overwrite, "overwrite", false, "replace an existing image of the same name")
		fl.StringVar(&f.chunkSize, "chunk-size", "", "average unit of compression and dedup, 64K to 16M (default 512K)")
		fl.StringVar(&f.incremental, "incremental", "", "store only what changed since the latest point of IMAGE's chain")
		fl.StringVar(&f.differential, "differential", "", "store only what changed since the full backup of IMAGE's chain")
		fl.StringVar(&f.chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
		addModeFlag(fl, &f.mode, "the image's files")
		addRequireEncrypted(fl, &f.requireEncrypted)
		c.AddCommand(sub)
	}
	return c
}

func runBackup(c *cobra.Command, e *env, kind images.StreamKind, source string, f *backupFlags) error {
	source = diskName(source)
	if f.output == "" {
		return usagef("no output image: add -o FILE (or -o - for standard output)")
	}
	if f.output == "-" {
		if _, tty := terminalFd(e.stdout); tty {
			// As zstd does: the image would scroll past as garbage and
			// can leave the terminal in a strange state.
			return &engine.RefusedError{Object: "standard output", Reason: "it is a terminal, and lifeboat is not writing binary data to a terminal",
				Fix: opt.Text(fmt.Sprintf("redirect it: lifeboat backup %s %s -o - > FILE", kindWord(kind), source))}
		}
	}
	lvl, err := images.ParseLevel(f.compression)
	if err != nil {
		return &usageError{err}
	}
	o := engine.BackupOptions{Source: source, Kind: kind, Output: f.output, Stdout: e.stdout, Compression: lvl,
		SectorBySector: f.sectorBySector, Rescue: f.rescue, Overwrite: f.overwrite, ToolVersion: version.Version, Log: e.log(),
		Warn: e.warn}
	if o.Mode, err = parseMode(f.mode); err != nil {
		return err
	}
	if f.output == "-" && c.Flags().Changed("mode") {
		return usagef("--mode sets the permissions of an image file; standard output has none (drop --mode, or write to a file with -o FILE)")
	}
	if f.chunkSize != "" {
		cs, err := engine.ParseSize(f.chunkSize)
		if err != nil || cs < 64<<10 || cs > 16<<20 || cs%4096 != 0 {
			return usagef("--chunk-size %s: use a multiple of 4K between 64K and 16M", f.chunkSize)
		}
		o.ChunkSize = int(cs)
	}
	if f.split != "" {
		if f.output == "-" {
			return usagef("--split needs a file output, not standard output")
		}
		if o.SplitSize, err = engine.ParseSize(f.split); err != nil {
			return &usageError{err}
		}
		if o.SplitSize < images.MinSplitSize {
			return usagef("--split %s is too small: parts must be at least 50M", f.split)
		}
	}
	if f.incremental != "" || f.differential != "" {
		if f.incremental != "" && f.differential != "" {
			return usagef("give --incremental or --differential, not both")
		}
		if f.encrypt || f.chunkSize != "" {
			return usagef("a point of a chain has its chain's encryption and chunk size; drop --encrypt and --chunk-size")
		}
		base := f.incremental + f.differential
		o.Incremental, o.Differential, o.ChainDir = f.incremental, f.differential, f.chainDir
		o.ChainPassword = existingPassword(e, f.passwordFile, base)
		o.ChainEncryption = e.encryption(f.passwordFile, f.requireEncrypted)
	} else if f.requireEncrypted {
		return usagef("--require-encrypted checks the image an --incremental or --differential backup builds on; to encrypt a new full backup use --encrypt")
	} else if f.encrypt {
		if o.Cipher, err = images.ParseCipher(f.cipher); err != nil || o.Cipher == images.CipherNone {
			return usagef("--cipher %q: use aes-256-gcm or xchacha20-poly1305", f.cipher)
		}
		if o.Password, err = newPassword(e, f.passwordFile); err != nil {
			return err
		}
	} else if f.passwordFile != "" {
		return usagef("--password-file is given but --encrypt is not; add --encrypt to encrypt the image")
	} else if f.chainDir != "" {
		return usagef("--chain-dir goes with --incremental or --differential")
	} else if e.password != "" {
		e.warn(fmt.Sprintf("image %s is not encrypted; the password was not used (%s is set: add --encrypt to encrypt the image)", f.output, passwordEnv))
	}
	out := e.stdout
	if f.output == "-" {
		out = e.stderr // standard output carries the image
	}
	bar := newBar(e)
	o.Progress = bar
	res, err := engine.Backup(c.Context(), o)
	if err != nil {
		return err
	}
	parts := ""
	if o.SplitSize > 0 {
		if im, err := images.Open(f.output, images.OpenOptions{}); err == nil {
			parts = fmt.Sprintf(" in %d parts", len(im.Info().Parts))
			im.Close()
		}
	}
	read := res.SourceSize - res.Unused
	fmt.Fprintf(out, "Backed up %s (%s, %s in use) to %s%s: %s stored, in %s (%s/s)\n", source, human(res.SourceSize), human(read), f.output, parts,
		human(res.Stored), res.Elapsed.Round(100*time.Millisecond), human(int64(float64(read)/max(res.Elapsed.Seconds(), 1e-3))))
	if res.Parent != "" {
		fmt.Fprintf(out, "This %s point builds on %s: %s of the source it already held were not stored again\n", res.Point, res.Parent, human(res.ParentBytes))
	}
	fmt.Fprintf(out, "In use: %s\n", inUseWhat)
	for _, fb := range res.Fallbacks {
		fmt.Fprintf(out, "Copied whole: %s\n", fb)
	}
	if len(res.Damaged) > 0 {
		var n int64
		for _, d := range res.Damaged {
			n += d.Len
		}
		fmt.Fprintf(out, "WARNING: %s of %s could not be read and is stored as zeros (%d ranges); \"lifeboat info %s\" lists them:\n", human(n), source, len(res.Damaged), f.output)
		for i, d := range res.Damaged {
			if i == 20 {
				fmt.Fprintf(out, "  … %d more\n", len(res.Damaged)-20)
				break
			}
			fmt.Fprintf(out, "  damaged: %d+%d\n", d.Off, d.Len)
		}
	}
	return nil
}

// kindWord is the backup subcommand for kind.
func kindWord(kind images.StreamKind) string {
	if kind == images.KindPartition {
		return "part"
	}
	return "disk"
}

// inUseWhat defines the one "in use" figure that backup and info show: the
// bytes a backup reads, size minus what no filesystem uses. It is more than
// the filesystems' own "used" figures, which count only files and metadata.
const inUseWhat = "what the filesystems use, plus partition tables, boot areas and partitions copied whole"

func infoCmd(e *env) *cobra.Command {
	var asJSON, rawSectors, requireEncrypted bool
	var passwordFile, chainDir string
	c := &cobra.Command{
		Use:   "info IMAGE",
		Short: "Show what an image holds",
		Args:  exactArgs(1, "one IMAGE"),
		RunE: func(c *cobra.Command, args []string) error {
			var pw func() ([]byte, error)
			if e.passwordGiven(passwordFile) {
				pw = existingPassword(e, passwordFile, args[0])
			}
			ii, err := engine.InfoIn(c.Context(), args[0], chainDir, pw, e.encryption(passwordFile, requireEncrypted))
			if err != nil {
				return err
			}
			if asJSON {
				ii.RawSectors = rawSectors
				return writeJSON(e, ii)
			}
			printInfo(e, ii)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	c.Flags().BoolVar(&rawSectors, "raw-sectors", false, "with --json: include the partition table's raw sectors (base64)")
	c.Flags().StringVar(&passwordFile, "password-file", "", "unlock an encrypted image with the password in FILE")
	c.Flags().StringVar(&chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
	addRequireEncrypted(c.Flags(), &requireEncrypted)
	return c
}

func printInfo(e *env, ii *engine.ImageInfo) {
	w := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%s:\t%s\n", k, fmt.Sprintf(f, a...)) }
	p("Image", "%s (%s)", ii.Image, human(ii.FileSize))
	if len(ii.Parts) > 1 {
		p("Parts", "%d parts of at most %s: %s", len(ii.Parts), human(ii.SplitSize), strings.Join(baseNames(ii.Parts), " "))
	}
	p("UUID", "%s", ii.UUID)
	if ii.Meta.Point != nil {
		p("Point", "%s", ii.Meta.Point.Kind)
	}
	if ii.ParentUUID != "" {
		p("Parent", "%s", ii.ParentUUID)
	}
	for i, cp := range ii.Chain {
		state := ""
		if cp.Missing {
			state = "  MISSING: restoring this image needs it"
		}
		p(fmt.Sprintf("Chain %d", i+1), "%-12s %s  %s  %s%s", cp.Kind, cp.Created.Local().Format("2006-01-02 15:04"), human(cp.Size), cp.File, state)
	}
	for i, cp := range ii.Later {
		p(fmt.Sprintf("Later %d", i+1), "%-12s %s  %s  %s", cp.Kind, cp.Created.Local().Format("2006-01-02 15:04"), human(cp.Size), cp.File)
	}
	p("Created", "%s by lifeboat %s", ii.Created.Local().Format("2006-01-02 15:04:05 MST"), ii.ToolVersion)
	// The records say which compressor they use; a locked image's level
	// says it for images since issue #19 (fast: S2, else zstd).
	codec := "zstd, "
	switch {
	case ii.Codecs != "":
		codec = ii.Codecs + ", "
	case ii.Compression == images.LevelNone:
		codec = ""
	case ii.Compression == images.LevelFast:
		codec = "S2, "
	}
	if ii.ChunkAverage > 0 {
		p("Compression", "%s (%schunks of %s on average, at most %s, named by %s)", ii.Compression, codec, human(int64(ii.ChunkAverage)), human(int64(ii.ChunkSize)), ii.ChunkHash)
	} else {
		p("Compression", "%s (%schunks of at most %s, named by %s)", ii.Compression, codec, human(int64(ii.ChunkSize)), ii.ChunkHash)
	}
	if ii.Cipher != images.CipherNone {
		lock := ""
		if ii.Locked {
			lock = " — locked: give the password for chunk statistics"
		}
		p("Encryption", "%s, key from the password by Argon2id%s", ii.Cipher, lock)
	} else {
		p("Encryption", "none")
	}
	for i, s := range ii.Meta.Streams {
		p(fmt.Sprintf("Stream %d", i+1), "%s %s, %s, %d-byte sectors, %s", s.Kind, s.Source, human(s.Size), s.SectorSize, s.Mode)
		p("  In use", "%s of %s: %s", human(s.Size-s.Unused), human(s.Size), inUseWhat)
		if s.Unused > 0 {
			p("  Unused", "%s not stored: no filesystem uses it", human(s.Unused))
		}
		if s.Stored != s.Size-s.Unused {
			p("  Not zeros", "%s of what is in use holds data; the rest is zeros, stored as holes", human(s.Stored))
		}
		if s.ModeReason != "" {
			p("  Copied whole", "%s", s.ModeReason)
		}
		for _, d := range s.Damaged {
			fmt.Fprintf(w, "  damaged: %d+%d\t(unreadable in the source, restored as zeros)\n", d.Off, d.Len)
		}
		if s.Model != "" || s.Serial != "" {
			p("  Model", "%s %s", s.Model, s.Serial)
		}
		if s.FS != nil {
			p("  Filesystem", "%s", fsLine(s.FS))
		}
		if s.Table != nil {
			p("  Table", "%s %s", s.Table.Type, s.Table.DiskGUID)
			for _, pt := range s.Table.Partitions {
				line := fmt.Sprintf("start %s, size %s, type %s", human(pt.Start), human(pt.Size), pt.Type)
				if pt.Name != "" {
					line += fmt.Sprintf(", name %q", pt.Name)
				}
				if pt.FS != nil {
					line += ", " + fsLine(pt.FS)
				}
				p(fmt.Sprintf("  Partition %d", pt.Number), "%s", line)
				if r := engine.ModeNote(pt); r != "" {
					p("    Copied whole", "%s", r)
				}
			}
		}
	}
	if !ii.Locked {
		p("Stored", "%s in %d chunks", human(ii.DataBytes), ii.Records)
	}
	for _, n := range ii.Meta.Notes {
		p("Note", "%s", n)
	}
	w.Flush()
}

func fsLine(f *images.FS) string {
	s := f.Type
	if f.Label != "" {
		s += fmt.Sprintf(" %q", f.Label)
	}
	if f.UUID != "" {
		s += " " + f.UUID
	}
	if f.Used >= 0 && f.Size > 0 {
		s += fmt.Sprintf(", %s of %s used by the filesystem", human(f.Used), human(f.Size))
	}
	return s
}

func baseNames(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.Base(p)
	}
	return out
}

func checkCmd(e *env) *cobra.Command {
	var passwordFile, chainDir string
	var requireEncrypted bool
	c := &cobra.Command{
		Use:   "check IMAGE",
		Short: "Verify every byte of an image",
		Args:  exactArgs(1, "one IMAGE"),
		RunE: func(c *cobra.Command, args []string) error {
			bar := newBar(e)
			res, err := engine.Check(c.Context(), engine.CheckOptions{Image: args[0], ChainDir: chainDir, Password: existingPassword(e, passwordFile, args[0]),
				Encryption: e.encryption(passwordFile, requireEncrypted), Progress: bar})
			if err != nil {
				return err
			}
			chain := ""
			if res.Points > 1 {
				chain = fmt.Sprintf(" with the %d earlier points it needs", res.Points-1)
			}
			fmt.Fprintf(e.stdout, "Image %s%s is intact: %s of chunks verified, describing %s, in %s\n",
				args[0], chain, human(res.StoredBytes), human(res.DiskBytes), res.Elapsed.Round(100*time.Millisecond))
			return nil
		},
	}
	c.Flags().StringVar(&passwordFile, "password-file", "", "password of an encrypted image, from FILE (or set LIFEBOAT_PASSWORD)")
	c.Flags().StringVar(&chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
	addRequireEncrypted(c.Flags(), &requireEncrypted)
	return c
}

// imageInUse is the size and the "in use" figure of what a restore writes,
// read from the image's metadata (readable without its password), or -1.
func imageInUse(ctx context.Context, image, chainDir string, partition int) (size, inUse int64) {
	ii, err := engine.InfoIn(ctx, image, chainDir, nil, engine.Encryption{})
	if err != nil || len(ii.Meta.Streams) != 1 {
		return -1, -1
	}
	s := ii.Meta.Streams[0]
	if partition == 0 {
		return s.Size, s.Size - s.Unused
	}
	if s.Table != nil {
		for _, p := range s.Table.Partitions {
			if p.Number == partition {
				return p.Size, -1 // "in use" is not recorded per partition
			}
		}
	}
	return -1, -1
}

func restoreCmd(e *env) *cobra.Command {
	var target, passwordFile, chainDir, mode string
	var partition int
	var noVerify, noPrecheck, delta, requireEncrypted bool
	var lf layoutFlags
	c := &cobra.Command{
		Use:   "restore IMAGE --target DEVICE",
		Short: "Restore an image (or one partition of it) to a disk, partition or file",
		Args:  oneArg("one IMAGE", "target", "--target", &target),
		RunE: func(c *cobra.Command, args []string) error {
			if target == "" {
				return usagef("no target: add --target DEVICE (a disk, a partition or an image file)")
			}
			target = diskName(target)
			if partition < 0 {
				return usagef("--partition %d: partitions are numbered from 1", partition)
			}
			lo, err := lf.options()
			if err != nil {
				return err
			}
			fileMode, err := parseMode(mode)
			if err != nil {
				return err
			}
			bar := newBar(e)
			res, err := engine.Restore(c.Context(), engine.RestoreOptions{
				Image: args[0], Target: target, Partition: partition, NoVerify: noVerify, NoPrecheck: noPrecheck, Log: e.log(), Layout: lo,
				ChainDir: chainDir, Delta: delta,
				Password: existingPassword(e, passwordFile, args[0]), Encryption: e.encryption(passwordFile, requireEncrypted),
				Mode:     fileMode,
				Progress: bar,
				Confirm: func(p engine.Plan) error {
					bar.pause()
					defer bar.resume()
					size, inUse := imageInUse(c.Context(), args[0], chainDir, partition)
					return confirmPlan(e, "Restore", p, size, inUse)
				},
			})
			if err != nil {
				return err
			}
			v := "not verified (--no-verify)"
			if res.Verified {
				v = "verified by reading it back"
			}
			fmt.Fprintf(e.stdout, "Restored %s to %s: %s (%s written) in %s, %s\n", args[0], target, human(res.Bytes), human(res.Written), res.Elapsed.Round(100*time.Millisecond), v)
			if delta {
				fmt.Fprintf(e.stdout, "Delta: %d chunks were already on the target, %d written\n", res.SameChunks, res.ChangedChunks)
			}
			printPartitions(e.stdout, res.Partitions)
			for _, n := range res.Notes {
				fmt.Fprintf(e.stdout, "Note: %s\n", n)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
	fl.BoolVar(&delta, "delta", false, "the target holds an older copy: compare, and write only the chunks that differ")
	fl.StringVarP(&target, "target", "t", "", "disk, partition or image file to overwrite (a missing file is created)")
	fl.IntVar(&partition, "partition", 0, "restore only partition N of a disk image")
	fl.BoolVar(&noVerify, "no-verify", false, "skip reading the target back after writing")
	fl.BoolVar(&noPrecheck, "no-precheck", false, "skip authenticating and decompressing every chunk before writing (only stored checksums are compared first); "+
		"RISK: a damaged chunk is then found only while writing, leaving the target half-written")
	fl.StringVar(&passwordFile, "password-file", "", "password of an encrypted image, from FILE (or set LIFEBOAT_PASSWORD)")
	addRequireEncrypted(fl, &requireEncrypted)
	addModeFlag(fl, &mode, "the target file when restore creates it (an existing target keeps its own)")
	lf.add(fl)
	return c
}

// printPartitions lists what a restore or clone did to each partition.
func printPartitions(w io.Writer, ps []engine.PartitionResult) {
	for _, p := range ps {
		what := p.FS
		if p.Label != "" {
			what += fmt.Sprintf(" %q", p.Label)
		}
		if what != "" {
			what += ", "
		}
		state := "not verified"
		if p.Verified {
			state = "verified"
		}
		if p.Grown {
			state += ", filesystem grown"
		}
		fmt.Fprintf(w, "Partition %d: %s%s, %s written in %s, %s\n", p.Number, what, human(p.Size), human(p.Written), p.Elapsed.Round(100*time.Millisecond), state)
	}
}
