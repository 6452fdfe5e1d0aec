package mkmedia

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// BootFiles are the bootloader pieces package grubprep writes into
// <bundle>/boot/ when the rescue bundle is built. Media writers only copy
// (and patch) these bytes; they never run a tool.
type BootFiles struct{ Dir string }

// BundleBootFiles returns the boot files of the bundle in bundleDir.
func BundleBootFiles(bundleDir string) BootFiles {
	return BootFiles{Dir: filepath.Join(bundleDir, "boot")}
}

// File names inside <bundle>/boot/.
const (
	// BootEFI is GRUB for x86_64-efi with all modules and the early config
	// built in: it finds the volume holding MarkerFile and loads
	// /boot/grub/grub.cfg from it. It becomes EFI/BOOT/BOOTX64.EFI.
	BootEFI = "bootx64.efi"
	// BootCoreBIOS is GRUB's i386-pc core image (diskboot.img + core) with
	// the same modules and early config, for a GPT BIOS-boot partition.
	// Its first sector's blocklist must point at the partition's second
	// sector (grub-setup's job; USB images patch it).
	BootCoreBIOS = "core.img"
	// BootMBR is GRUB's boot.img for the MBR of a stick; its kernel_sector
	// (offset 0x5c) must point at core.img.
	BootMBR = "boot.img"
	// BootElTorito is GRUB's i386-pc-eltorito image: cdboot.img, then
	// diskboot.img, then the core. It is the BIOS El Torito boot image of
	// the ISO, and the hybrid ISO's MBR starts its diskboot.img.
	BootElTorito = "eltorito.img"
	// BootHybridMBR is GRUB's boot_hybrid.img: MBR code that reads a 64-bit
	// sector number at 0x1b0 (leaving the partition table alone).
	BootHybridMBR = "boot_hybrid.img"
)

// ErrNoBootFiles is wrapped when a bundle lacks its boot/ folder or a file
// in it: rebuild the bundle with make rescue, which runs grubprep.
var ErrNoBootFiles = errors.New("rescue bundle has no GRUB boot files")

// Path returns the path of the boot file name.
func (b BootFiles) Path(name string) string { return filepath.Join(b.Dir, name) }

// Read returns the content of the boot file name.
func (b BootFiles) Read(name string) ([]byte, error) {
	data, err := os.ReadFile(b.Path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing; rebuild the bundle with make rescue (it runs mkmedia/grubprep)", ErrNoBootFiles, b.Path(name))
	}
	return data, err
}

// MarkerFile is the file GRUB's early config (built into every image)
// searches for to find its volume; media put it at the root of the volume
// that holds /boot/grub/grub.cfg, /boot/vmlinuz and /boot/initramfs. Its
// content is MarkerContent: the bundle's identity, so the rescue
// environment and a person can tell media apart. GRUB itself tells two
// Lifeboat sticks apart by searching its own boot device first.
const MarkerFile = "/lifeboat.id"

// MarkerContent is the content of MarkerFile for info.
func MarkerContent(info *bundle.Info) []byte {
	return []byte("lifeboat " + info.Version + " " + BundleID(info) + "\n")
}

// BundleID identifies a bundle by its content: a hash of its files'
// checksums, version and command line.
func BundleID(info *bundle.Info) string {
	h := sha256.New()
	fmt.Fprintf(h, "version %q\ncmdline %q\n", info.Version, info.Cmdline)
	names := make([]string, 0, len(info.Files))
	for n := range info.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file %q %d %s\n", n, info.Files[n].Size, info.Files[n].SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// MenuOptions shape the GRUB menu.
type MenuOptions struct {
	// Append is added to the kernel command line of the rescue entries
	// (unattended media: lifeboat.action=… etc.). It is split at spaces
	// outside double quotes, like the kernel splits its command line.
	Append string
	// Timeout before the default entry boots; 0 means 5 s, a negative
	// value boots at once.
	Timeout time.Duration
	// Title of the default entry; default "Lifeboat rescue".
	Title string
}

// Paths of the rescue system on every medium, relative to the volume
// holding MarkerFile.
const (
	KernelPath   = "/boot/vmlinuz"
	InitrdPath   = "/boot/initramfs"
	GrubCfgPath  = "/boot/grub/grub.cfg"
	defaultTitle = "Lifeboat rescue"
)

// GrubConfig returns /boot/grub/grub.cfg: the rescue environment (default),
// the same with safe graphics and a verbose boot, and power off. GRUB uses
// the screen and the first serial port. The config works wherever the early
// config found the volume: an ISO as CD or as a disk, or a stick's ESP.
func GrubConfig(info *bundle.Info, o MenuOptions) string {
	title := o.Title
	if title == "" {
		title = defaultTitle
	}
	timeout := 5
	switch {
	case o.Timeout < 0:
		timeout = 0
	case o.Timeout > 0:
		timeout = int((o.Timeout + time.Second - 1) / time.Second)
	}
	args := append(splitArgs(info.Cmdline), splitArgs(o.Append)...)
	var verbose []string
	for _, a := range args {
		if a == "quiet" || strings.HasPrefix(a, "loglevel=") {
			continue
		}
		verbose = append(verbose, a)
	}
	verbose = append(verbose, "nomodeset", "loglevel=7")

	var b strings.Builder
	fmt.Fprintf(&b, "# Lifeboat rescue menu for bundle %s (%s), written by mkmedia.\n", info.Version, BundleID(info))
	b.WriteString(`insmod part_gpt
insmod part_msdos
insmod fat
insmod iso9660
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
if [ ! -f "($root)` + MarkerFile + `" ]; then
  search --no-floppy --file --set=root ` + MarkerFile + `
fi
`)
	fmt.Fprintf(&b, "set default=0\nset timeout=%d\nset timeout_style=menu\n\n", timeout)
	entry := func(id, name string, args []string) {
		fmt.Fprintf(&b, "menuentry %s --id %s {\n", grubQuote(name), id)
		fmt.Fprintf(&b, "  echo %s\n", grubQuote("Loading "+name+" ..."))
		b.WriteString("  linux " + KernelPath)
		for _, a := range args {
			b.WriteString(" " + grubQuote(a))
		}
		b.WriteString("\n  initrd " + InitrdPath + "\n}\n")
	}
	entry("rescue", title, args)
	entry("rescue-verbose", title+" (safe graphics, verbose)", verbose)
	b.WriteString("menuentry 'Power off' --id poweroff {\n  halt\n}\n")
	return b.String()
}

// splitArgs splits a kernel command line at spaces outside double quotes.
func splitArgs(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote bool
		has   bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quote = !quote
			cur.WriteRune(r)
			has = true
		case (r == ' ' || r == '\t' || r == '\n') && !quote:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

// grubQuote quotes s as one word of GRUB's script language when it holds
// anything GRUB would interpret.
func grubQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._,=:/+-@%", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
