//go:build linux

package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/command"

	"golang.org/x/sys/unix"
)

// Kernel is an unpacked kernel: its image and its module tree, which holds
// modules.dep.
type Kernel struct {
	Version   string // kernel release, e.g. "6.1.0-56-amd64"
	Image     string // path to the bzImage (boot/vmlinuz-<Version>)
	ModuleDir string // <root>/lib/modules/<Version>
	// Package and PackageVersion name the Debian package Fetch unpacked
	// (linux-image-<Version> and its Debian version); both are empty for
	// a kernel the user brought (FromDirs).
	Package, PackageVersion string
}

// metaPackage is the Debian package that always depends on the current
// versioned amd64 kernel package.
const metaPackage = "linux-image-amd64"

// stampFile, inside an unpacked root, names the .deb it was unpacked from,
// so that a new Debian revision of the same kernel release is noticed.
const stampFile = ".lifeboat-deb"

// ErrNotBzImage is returned when a kernel image lacks the x86 boot
// protocol's "HdrS" signature; pass an x86 bzImage (vmlinuz), not a vmlinux
// ELF file or a compressed archive of one.
var ErrNotBzImage = errors.New("not an x86 bzImage")

// CommandError is a failed external command. Its message holds the command
// line and what the command wrote to stderr (Output), which usually says
// what to fix.
type CommandError = command.Error

// Fetch returns Debian's current amd64 kernel, unpacked in cacheDir. It asks
// apt which versioned package linux-image-amd64 depends on (running
// apt-get update once if apt knows no packages yet), downloads that .deb with
// apt-get download, unpacks it with dpkg -x and generates modules.dep with
// depmod; nothing is installed into the host.
//
// The cache holds, for kernel release KVER:
//
//	cacheDir/linux-image-KVER_DEBVERSION_amd64.deb
//	cacheDir/root-KVER/boot/vmlinuz-KVER
//	cacheDir/root-KVER/lib/modules/KVER/        (with modules.dep)
//	cacheDir/root-KVER/.lifeboat-deb            (names the .deb it came from)
//
// A second call finds all of it and only runs apt-cache and apt-get
// --print-uris, which read apt's local lists. Old releases are never
// removed. Concurrent calls on the same cacheDir wait for each other.
//
// log may be nil.
func Fetch(ctx context.Context, cacheDir string, log *slog.Logger) (*Kernel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cacheDir, unlock, err := openCache(ctx, cacheDir, "kernel")
	if err != nil {
		return nil, err
	}
	defer unlock()

	pkg, kver, err := currentPackage(ctx, log)
	if err != nil {
		return nil, err
	}
	log = log.With("package", pkg)

	// --print-uris prints nothing for a file already in the working
	// directory, so ask from an empty one; the download lands there too.
	tmp, err := os.MkdirTemp(cacheDir, "download.tmp-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	out, err := run(ctx, tmp, aptGet("download", "--print-uris", pkg)...)
	if err != nil {
		return nil, err
	}
	deb, err := parsePrintURIs(out)
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris %s: %w", pkg, err)
	}

	pkgVersion, err := debVersion(deb.name, pkg)
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris %s: %w", pkg, err)
	}
	root := filepath.Join(cacheDir, "root-"+kver)
	k := &Kernel{
		Version:        kver,
		Image:          filepath.Join(root, "boot", "vmlinuz-"+kver),
		ModuleDir:      filepath.Join(root, "lib", "modules", kver),
		Package:        pkg,
		PackageVersion: pkgVersion,
	}
	if stamp, err := os.ReadFile(filepath.Join(root, stampFile)); err == nil && string(stamp) == deb.name {
		if err := k.check(); err == nil {
			log.Debug("kernel: reusing cache", "root", root)
			return k, nil
		}
	}

	debPath := filepath.Join(cacheDir, deb.name)
	if err := hostApt.download(ctx, tmp, debPath, pkg, deb, log); err != nil {
		return nil, err
	}

	log.Info("kernel: unpack started", "deb", debPath, "root", root)
	start := time.Now()
	newRoot, err := os.MkdirTemp(cacheDir, "root-"+kver+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(newRoot) // a no-op after the rename below
	if _, err := run(ctx, "", "dpkg", "-x", debPath, newRoot); err != nil {
		log.Error("kernel: unpack failed", "err", err)
		return nil, err
	}
	if err := depmod(ctx, newRoot, kver); err != nil {
		log.Error("kernel: depmod failed", "err", err)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(newRoot, stampFile), []byte(deb.name), 0o644); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.RemoveAll(root); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(newRoot, root); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", debPath, err)
	}
	log.Info("kernel: unpack finished", "root", root, "took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// FromDirs describes a kernel the user brought (--kernel and --modules):
// image is its bzImage and moduleDir its lib/modules/<release> directory,
// whose name is taken as the release. If moduleDir lacks modules.dep and is
// writable, FromDirs runs depmod to create it.
func FromDirs(image, moduleDir string) (*Kernel, error) {
	moduleDir, err := filepath.Abs(filepath.Clean(moduleDir))
	if err != nil {
		return nil, err
	}
	k := &Kernel{Version: filepath.Base(moduleDir), Image: image, ModuleDir: moduleDir}
	if fi, err := os.Stat(moduleDir); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("kernel modules: %s is not a directory; pass lib/modules/<release>", moduleDir)
	}
	dep := filepath.Join(moduleDir, "modules.dep")
	if _, err := os.Stat(dep); errors.Is(err, os.ErrNotExist) {
		if unix.Access(moduleDir, unix.W_OK) != nil {
			return nil, fmt.Errorf("kernel modules: %s has no modules.dep and is not writable; run depmod for release %s or pass a writable copy", moduleDir, k.Version)
		}
		if err := depmodDir(context.Background(), moduleDir, k.Version); err != nil {
			return nil, err
		}
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// check makes sure the image is a bzImage of this release and the module
// tree has modules.dep.
func (k *Kernel) check() error {
	v, err := ImageVersion(k.Image)
	if err != nil {
		return err
	}
	if v != "" && v != k.Version {
		return fmt.Errorf("kernel image %s is release %s but the modules in %s are for %s; pass the matching pair", k.Image, v, k.ModuleDir, k.Version)
	}
	if _, err := os.Stat(filepath.Join(k.ModuleDir, "modules.dep")); err != nil {
		return fmt.Errorf("kernel modules: %w; run depmod for release %s", err, k.Version)
	}
	return nil
}

// ImageVersion returns the kernel release stored in a bzImage's setup
// header (the first word of its version string, as uname -r prints it), or
// "" if the header carries none. It wraps ErrNotBzImage if path is not an
// x86 bzImage.
func ImageVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("kernel image: %w", err)
	}
	defer f.Close()
	// Documentation/arch/x86/boot.rst: the "HdrS" magic at 0x202, the
	// offset of the version string minus 0x200 at 0x20E.
	hdr := make([]byte, 0x210)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("kernel image %s: %w", path, ErrNotBzImage)
	}
	off := binary.LittleEndian.Uint16(hdr[0x20E:])
	if off == 0 {
		return "", nil
	}
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, int64(off)+0x200)
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	fs := strings.Fields(string(buf))
	if len(fs) == 0 {
		return "", nil
	}
	return fs[0], nil
}
