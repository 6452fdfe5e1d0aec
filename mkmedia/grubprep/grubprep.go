//go:build linux

// Package grubprep makes the GRUB pieces of a rescue bundle: the images that
// only Debian's GRUB tools can produce (grub-mkimage) and the boot sectors
// Debian ships. It runs once, on Linux, when the bundle is built; package
// mkmedia then writes media from these files without running any tool, so
// media creation also works on Windows.
//
// Smallest use, after the kernel and initramfs are in out/rescue:
//
//	err := grubprep.Prepare(ctx, "out/rescue/boot")
//
// Every image embeds the same early config (EarlyConfig): it finds the
// volume holding MarkerFile, preferring the device GRUB was started from
// and the partitions of that disk, and loads /boot/grub/grub.cfg from it.
// All modules the menu needs are built in, so media carry no module folder.
package grubprep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/lifeboat-rescue/lifeboat/internal/command"
)

// The names match the Boot* constants of package mkmedia, which cannot be
// imported here: the bundle builder may call Prepare, and mkmedia imports
// the bundle package. A test keeps the two in step.
const (
	fileEFI       = "bootx64.efi"
	fileCoreBIOS  = "core.img"
	fileMBR       = "boot.img"
	fileElTorito  = "eltorito.img"
	fileHybridMBR = "boot_hybrid.img"
	fileEarly     = "early.cfg"
)

// MarkerFile is the file the early config searches for; it must equal
// mkmedia.MarkerFile.
const MarkerFile = "/lifeboat.id"

// Debian's module folders, and the package that provides each.
const (
	pcDir  = "/usr/lib/grub/i386-pc"
	efiDir = "/usr/lib/grub/x86_64-efi"
	pcPkg  = "grub-pc-bin"
	efiPkg = "grub-efi-amd64-bin"
)

// EarlyConfig is embedded in every image. GRUB runs it with its rescue
// parser (no if/else), then loads normal mode, which reads
// $prefix/grub.cfg. $root starts as the device GRUB was loaded from: the
// CD, a stick's ESP, the El Torito FAT image's partition, or a whole BIOS
// disk. The hints make search look there and on the partitions of that
// disk before anywhere else, so with two Lifeboat sticks plugged in GRUB
// keeps to the one it was started from. If nothing holds MarkerFile, normal
// mode reports that grub.cfg is missing and GRUB offers its prompt.
const EarlyConfig = `serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set lb_boot="$root"
regexp --set=1:lb_disk "^([^,]*)" "$root"
search --no-floppy --file --set=root --hint="$lb_boot" --hint="$lb_disk" --hint="${lb_disk}," ` + MarkerFile + `
set prefix="($root)/boot/grub"
`

// Modules built into every image: finding the volume (partition tables,
// FAT on sticks, ISO 9660 on CDs and hybrid sticks), the menu, the serial
// console, and loading Linux.
var commonModules = []string{
	"part_gpt", "part_msdos", "fat", "iso9660",
	"search", "search_fs_file", "search_fs_uuid", "search_label", "regexp", "test", "true",
	"normal", "configfile", "echo", "ls", "cat", "sleep", "halt", "reboot",
	"serial", "terminal", "linux", "gzio", "all_video",
}

type image struct {
	name    string
	format  string
	dir     string
	pkg     string
	modules []string
}

var images = []image{
	// UEFI: BOOTX64.EFI in the El Torito FAT image and on a stick's ESP.
	{fileEFI, "x86_64-efi", efiDir, efiPkg, nil},
	// BIOS CD: the El Torito no-emulation image (cdboot.img + diskboot.img +
	// core). The hybrid ISO's MBR also starts it through its diskboot.img.
	{fileElTorito, "i386-pc-eltorito", pcDir, pcPkg, []string{"biosdisk"}},
	// BIOS stick: diskboot.img + core for a GPT BIOS-boot partition.
	{fileCoreBIOS, "i386-pc", pcDir, pcPkg, []string{"biosdisk"}},
}

// Files copied as they are from Debian's grub-pc-bin.
var copies = []struct{ name, src string }{
	{fileMBR, filepath.Join(pcDir, "boot.img")},
	{fileHybridMBR, filepath.Join(pcDir, "boot_hybrid.img")},
}

// ErrMissingTool is wrapped when a GRUB tool or module folder is not
// installed; the message names the Debian package to install.
var ErrMissingTool = errors.New("GRUB tools missing")

// Option changes what Prepare does.
type Option func(*config)

type config struct {
	log    *slog.Logger
	mkimg  string
	pcDir  string
	efiDir string
}

// WithLogger logs started/finished lines for each image.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Prepare writes the GRUB boot files into dir (normally <bundle>/boot),
// creating it. Files are written under temporary names and renamed.
func Prepare(ctx context.Context, dir string, opts ...Option) error {
	c := config{log: slog.New(slog.DiscardHandler), mkimg: "grub-mkimage", pcDir: pcDir, efiDir: efiDir}
	for _, o := range opts {
		o(&c)
	}
	if _, err := exec.LookPath(c.mkimg); err != nil {
		return fmt.Errorf("%w: %s not found (%v); install Debian's grub-common, %s and %s", ErrMissingTool, c.mkimg, err, pcPkg, efiPkg)
	}
	for _, d := range []struct{ dir, pkg string }{{pcDir, pcPkg}, {efiDir, efiPkg}} {
		if _, err := os.Stat(filepath.Join(d.dir, "moddep.lst")); err != nil {
			return fmt.Errorf("%w: %s: %v; install Debian's %s", ErrMissingTool, d.dir, err, d.pkg)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	early := filepath.Join(dir, fileEarly)
	if err := writeFile(early, []byte(EarlyConfig)); err != nil {
		return err
	}
	for _, im := range images {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("grubprep: %w", err)
		}
		out := filepath.Join(dir, im.name)
		tmp := out + ".tmp"
		argv := []string{c.mkimg, "--format", im.format, "--directory", im.dir,
			"--prefix", "/boot/grub", "--config", early, "--output", tmp}
		argv = append(argv, commonModules...)
		argv = append(argv, im.modules...)
		c.log.Info("grub-mkimage started", "image", im.name, "format", im.format)
		if err := command.Combined(ctx, exec.CommandContext(ctx, argv[0], argv[1:]...)); err != nil {
			os.Remove(tmp)
			if ctx.Err() != nil {
				return fmt.Errorf("grubprep: %s: %w", im.name, ctx.Err())
			}
			c.log.Error("grub-mkimage failed", "image", im.name, "err", err)
			return fmt.Errorf("grubprep: %w (is Debian's %s complete?)", err, im.pkg)
		}
		if err := os.Rename(tmp, out); err != nil {
			return err
		}
		c.log.Info("grub-mkimage finished", "image", im.name)
	}
	for _, cp := range copies {
		b, err := os.ReadFile(cp.src)
		if err != nil {
			return fmt.Errorf("%w: %v; install Debian's %s", ErrMissingTool, err, pcPkg)
		}
		if err := writeFile(filepath.Join(dir, cp.name), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(b)); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, name)
}
