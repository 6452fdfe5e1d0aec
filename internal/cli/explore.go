package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/fsmount"
	"github.com/lifeboat-rescue/lifeboat/engine/vdisk"
)

// exploreFlags are the flags of the commands that read files from an image.
type exploreFlags struct {
	partition        int
	noMount          bool
	passwordFile     string
	chainDir         string
	requireEncrypted bool
}

func (f *exploreFlags) add(c *cobra.Command) {
	c.Flags().IntVarP(&f.partition, "partition", "p", 0, "partition N of a disk image (needed when it holds more than one filesystem)")
	f.addImage(c)
	c.Flags().BoolVar(&f.noMount, "no-mount", false, "read ext2/3/4 and FAT with go-diskfs instead of mounting (as on Windows)")
}

// addImage adds the flags that open the image.
func (f *exploreFlags) addImage(c *cobra.Command) {
	c.Flags().StringVar(&f.passwordFile, "password-file", "", "password of an encrypted image, from FILE (or set LIFEBOAT_PASSWORD)")
	c.Flags().StringVar(&f.chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
	addRequireEncrypted(c.Flags(), &f.requireEncrypted)
}

func (f *exploreFlags) options(e *env, image string) engine.ExploreOptions {
	return engine.ExploreOptions{Image: image, ChainDir: f.chainDir, Password: existingPassword(e, f.passwordFile, image),
		Encryption: e.encryption(f.passwordFile, f.requireEncrypted), PureGo: f.noMount}
}

// sayPath tells on standard error how the files are read.
func (e *env) sayPath(p engine.ViewPart, how string) {
	if !e.quiet && p.FS != nil && how != "" {
		fmt.Fprintf(e.stderr, "Partition %d (%s): read through %s\n", p.Number, p.FS.Type, how)
	}
}

func lsCmd(e *env) *cobra.Command {
	var f exploreFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls IMAGE [PATH]",
		Short: "List an image's partitions, or a folder inside one of them",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("%s: expected IMAGE and an optional PATH, got %d arguments; see %s --help", c.CommandPath(), len(args), c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			o := f.options(e, args[0])
			if len(args) == 1 && f.partition == 0 {
				return listParts(c.Context(), e, o, asJSON)
			}
			dir := "/"
			if len(args) == 2 {
				dir = args[1]
			}
			l, err := engine.ListFiles(c.Context(), o, f.partition, dir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e, l.Entries)
			}
			e.sayPath(l.Part, l.ReadPath)
			for _, x := range l.Entries {
				name := x.Name
				if x.Link != "" {
					name += " -> " + x.Link
				}
				fmt.Fprintf(e.stdout, "%s %12d %s %s\n", modeString(x.Mode), x.Size, x.ModTime.Local().Format("2006-01-02 15:04:05"), name)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	return c
}

func listParts(ctx context.Context, e *env, o engine.ExploreOptions, asJSON bool) error {
	v, err := engine.OpenView(ctx, o)
	if err != nil {
		return err
	}
	defer v.Close()
	if asJSON {
		return writeJSON(e, v.Parts)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(w, "PART\tSIZE\tFILESYSTEM\tLABEL\tUSED\tNAME")
	for _, p := range v.Parts {
		fsType, label, used := "-", "", "-"
		if p.FS != nil && p.FS.Type != "" {
			fsType, label = p.FS.Type, p.FS.Label
			if p.FS.Used >= 0 && p.FS.Size > 0 {
				used = fmt.Sprintf("%s of %s", human(p.FS.Used), human(p.FS.Size))
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Number, human(p.Size), fsType, label, used, p.Name)
	}
	return w.Flush()
}

func catCmd(e *env) *cobra.Command {
	var f exploreFlags
	c := &cobra.Command{
		Use:   "cat IMAGE PATH",
		Short: "Write a file from inside an image to standard output",
		Args:  exactArgs(2, "IMAGE and PATH"),
		RunE: func(c *cobra.Command, args []string) error {
			return engine.CatFile(c.Context(), f.options(e, args[0]), f.partition, args[1], e.stdout)
		},
	}
	f.add(c)
	return c
}

func extractCmd(e *env) *cobra.Command {
	var f exploreFlags
	var dest string
	c := &cobra.Command{
		Use:   "extract IMAGE PATH... -o FOLDER",
		Short: "Copy files and folders out of an image, with their modes and times",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("%s needs IMAGE and at least one PATH inside it (/ for everything): %s", c.CommandPath(), useLine(c))
			}
			if dest == "" {
				return usagef("%s needs the folder to copy into: add -o FOLDER", c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			bar := newBar(e)
			res, err := engine.Extract(c.Context(), engine.ExtractOptions{ExploreOptions: f.options(e, args[0]), Partition: f.partition,
				Paths: args[1:], Dest: dest, Progress: bar})
			e.sayPath(res.Partition, res.ReadPath)
			if err != nil && res.Files+res.Dirs == 0 {
				return err
			}
			fmt.Fprintf(e.stdout, "Copied %d files (%s), %d folders and %d links into %s in %s; %d chunks of the image read\n",
				res.Files, human(res.Bytes), res.Dirs, res.Links, dest, res.Elapsed.Round(100*time.Millisecond), res.ChunksRead)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(e.stdout, "Not copied: %d special files (devices, pipes, sockets), e.g. %s\n", len(res.Skipped), res.Skipped[0])
			}
			return err
		},
	}
	f.add(c)
	c.Flags().StringVarP(&dest, "output", "o", "", "the folder to copy into (created if missing)")
	return c
}

func mountCmd(e *env) *cobra.Command {
	var f exploreFlags
	c := &cobra.Command{
		Use:   "mount IMAGE FOLDER",
		Short: "Mount a partition of an image read-only until Ctrl-C or lifeboat umount",
		Args:  exactArgs(2, "IMAGE and an empty FOLDER to mount it on"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := f.options(e, args[0])
			v, err := engine.OpenView(ctx, o)
			if err != nil {
				return err
			}
			defer v.Close()
			p, m, err := o.MountPart(ctx, v, f.partition, args[1])
			if err != nil {
				return err
			}
			defer m.Close()
			e.sayPath(p, m.Path)
			fmt.Fprintf(e.stdout, "Partition %d of %s is mounted read-only at %s; Ctrl-C or `lifeboat umount %s` ends it\n", p.Number, args[0], args[1], args[1])
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for !m.Gone() {
				select {
				case <-ctx.Done():
					if err := m.Close(); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "Unmounted %s\n", args[1])
					return nil
				case <-t.C:
				}
			}
			if n := m.ReadErrors(); n > 0 {
				fmt.Fprintf(e.stderr, "%d reads of the image failed while it was mounted (damaged chunks); programs saw I/O errors\n", n)
			}
			return nil
		},
	}
	f.add(c)
	return c
}

func umountCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "umount FOLDER",
		Short: "Unmount what lifeboat mount mounted",
		Args:  exactArgs(1, "the FOLDER an image is mounted on"),
		RunE: func(c *cobra.Command, args []string) error {
			return fsmount.Unmount(args[0])
		},
	}
}

// modeString is a mode as ls -l shows it (l for links, not Go's L).
func modeString(m fs.FileMode) string {
	s := m.String()
	if m&fs.ModeSymlink != 0 {
		s = "l" + s[1:]
	}
	return s
}

func exportCmd(e *env) *cobra.Command {
	var f exploreFlags
	var out, format, mode string
	var overwrite bool
	c := &cobra.Command{
		Use:   "export IMAGE -o FILE.qcow2|.vhdx|.img",
		Short: "Write an image's disk as a virtual disk (qcow2, VHDX or raw) for a virtual machine",
		Args:  oneArg("one IMAGE", "output", "-o", &out),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usagef("%s needs the file to write: add -o FILE.qcow2 (or .vhdx, .img)", c.CommandPath())
			}
			if format != "" && !slices.Contains(vdisk.Formats, format) {
				return usagef("--format %s: use qcow2, vhdx or raw", format)
			}
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			res, err := engine.Export(c.Context(), engine.ExportOptions{ExploreOptions: f.options(e, args[0]), Output: out, Format: format,
				Overwrite: overwrite, Mode: m, Progress: newBar(e)})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Exported %s to %s (%s, a %s disk in a %s file) in %s\n", args[0], out, res.Format, human(res.Size), human(res.FileSize), res.Elapsed.Round(100*time.Millisecond))
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the virtual disk file to write")
	c.Flags().StringVar(&format, "format", "", "qcow2, vhdx or raw (default: from the file name)")
	c.Flags().BoolVar(&overwrite, "overwrite", false, "replace an existing file")
	addModeFlag(c.Flags(), &mode, "the file")
	f.addImage(c)
	return c
}
