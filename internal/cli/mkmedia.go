package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/mkmedia"
)

type mediaFlags struct {
	output, bundle, appendArgs, title string
	timeout                           time.Duration
}

func (f *mediaFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.bundle, "bundle", "", `rescue bundle folder (default: "rescue" next to the lifeboat binary, else out/rescue)`)
	fl.StringVar(&f.appendArgs, "append", "", `extra kernel arguments, e.g. "lifeboat.action=restore …" for unattended media`)
	fl.StringVar(&f.title, "title", "", "title of the default boot menu entry")
	fl.DurationVar(&f.timeout, "timeout", 0, "boot menu timeout (default 5s; negative boots at once)")
}

func (f *mediaFlags) menu() mkmedia.MenuOptions {
	return mkmedia.MenuOptions{Append: f.appendArgs, Timeout: f.timeout, Title: f.title}
}

// bundleDir finds the rescue bundle: --bundle, else "rescue" next to the
// lifeboat binary (release archives), else out/rescue (a source tree).
func (f *mediaFlags) bundleDir() (string, error) {
	if f.bundle != "" {
		return f.bundle, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		d := filepath.Join(filepath.Dir(exe), "rescue")
		if _, err := os.Stat(filepath.Join(d, "bundle.json")); err == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	d := filepath.Join("out", "rescue")
	if _, err := os.Stat(filepath.Join(d, "bundle.json")); err == nil {
		return d, nil
	}
	tried = append(tried, d)
	return "", fmt.Errorf("no rescue bundle in %s: %w; build one with make rescue or name it with --bundle DIR", strings.Join(tried, " or "), fs.ErrNotExist)
}

func mkmediaCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "mkmedia",
		Short: "Write bootable rescue media (ISO or USB stick)",
		Long: `mkmedia writes the rescue environment onto media that boot under legacy
BIOS and UEFI: an ISO image (for a CD, a VM, or written raw to a stick) or a
USB stick (or its image file) with a LIFEBOAT data partition for images.`,
	}
	c.AddCommand(mkmediaISOCmd(e), mkmediaUSBCmd(e))
	return c
}

func mkmediaISOCmd(e *env) *cobra.Command {
	var f mediaFlags
	var volID string
	c := &cobra.Command{
		Use:   "iso -o FILE",
		Short: "Write a hybrid ISO image (boots as CD and as disk, BIOS and UEFI)",
		Args:  exactArgs(0, "no arguments (the file goes after -o)"),
		RunE: func(c *cobra.Command, args []string) error {
			if f.output == "" {
				return usagef("no output file: add -o FILE, e.g. -o lifeboat.iso")
			}
			if err := engine.CheckOutput(f.output, engine.WriteFile, true); err != nil {
				return err
			}
			dir, err := f.bundleDir()
			if err != nil {
				return err
			}
			start := time.Now()
			if err := mkmedia.WriteISO(c.Context(), f.output, dir, mkmedia.ISOOptions{MenuOptions: f.menu(), VolumeID: volID}); err != nil {
				return err
			}
			reportMedia(e, f.output, "ISO image", start)
			return nil
		},
	}
	c.Flags().StringVarP(&f.output, "output", "o", "", "ISO file to write (replaced if it exists)")
	c.Flags().StringVar(&volID, "volume-id", "", "ISO volume ID (default derived from the bundle)")
	f.add(c)
	return c
}

func mkmediaUSBCmd(e *env) *cobra.Command {
	var f mediaFlags
	var target, size, dataFS string
	c := &cobra.Command{
		Use:   "usb (--target DISK | -o FILE [--size SIZE])",
		Short: "Write a bootable USB stick, or an image file of one",
		Long: `Write a bootable USB stick: GPT with a BIOS boot partition, an EFI System
Partition holding GRUB, the kernel and the initramfs, and a data partition
(GPT name LIFEBOAT-DATA, FAT32 label LIFEBOAT) filling the rest, for images.

  lifeboat mkmedia usb --target /dev/sdb     erases the whole stick (asks first)
  lifeboat mkmedia usb -o stick.img --size 8G`,
		Args: exactArgs(0, "no arguments (use --target DISK or -o FILE)"),
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case (target == "") == (f.output == ""):
				return usagef("give either --target DISK (a USB stick) or -o FILE (an image file)")
			case target != "" && size != "":
				return usagef("--size applies to image files (-o); a stick is used whole")
			}
			if target != "" {
				if err := engine.CheckOutput(target, engine.WriteDisk, true); err != nil {
					return err
				}
			} else if err := engine.CheckOutput(f.output, engine.WriteFile, true); err != nil {
				return err
			}
			o := mkmedia.USBOptions{MenuOptions: f.menu(), DataFS: dataFS, Log: e.log()}
			if size != "" {
				n, err := engine.ParseSize(size)
				if err != nil {
					return &usageError{err}
				}
				o.Size = n
			}
			dir, err := f.bundleDir()
			if err != nil {
				return err
			}
			start := time.Now()
			if target != "" {
				o.Confirm = confirmErase(e)
				if err := mkmedia.WriteUSB(c.Context(), target, dir, o); err != nil {
					return err
				}
				reportMedia(e, target, "USB stick", start)
				return nil
			}
			if err := mkmedia.WriteUSB(c.Context(), f.output, dir, o); err != nil {
				return err
			}
			reportMedia(e, f.output, "USB image", start)
			return nil
		},
	}
	c.Flags().StringVar(&target, "target", "", "the USB stick's whole disk, e.g. /dev/sdb (everything on it is erased)")
	c.Flags().StringVarP(&f.output, "output", "o", "", "image file to write instead (replaced if it exists)")
	c.Flags().StringVar(&size, "size", "", "size of the image file, e.g. 8G (default: the minimum)")
	c.Flags().StringVar(&dataFS, "data-fs", mkmedia.DataFAT32, "filesystem of the data partition (fat32)")
	f.add(c)
	return c
}

// confirmErase asks the user to type the disk's name before a whole disk
// is erased. WriteUSB calls it after its own checks (not mounted, not the
// system disk, large enough), so a refused disk is never asked about.
func confirmErase(e *env) func(string, int64) error {
	return func(target string, size int64) error {
		desc := fmt.Sprintf("%s (%s)", target, human(size))
		if disks, err := blockdev.List(); err == nil {
			for _, d := range disks {
				if d.Path == target && d.Model != "" {
					desc += ", " + strings.TrimSpace(d.Model)
				}
			}
		}
		return confirmTyped(e, "writing a rescue stick erases "+target, fmt.Sprintf("EVERYTHING on %s will be erased and replaced by a Lifeboat rescue stick.", desc), target)
	}
}

func reportMedia(e *env, path, what string, start time.Time) {
	size := ""
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		size = " (" + human(fi.Size()) + ")"
	}
	fmt.Fprintf(e.stdout, "Wrote %s %s%s in %s\n", what, path, size, time.Since(start).Round(10*time.Millisecond))
}
