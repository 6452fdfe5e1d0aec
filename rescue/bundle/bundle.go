//go:build linux

package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/command"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/lifeboat-rescue/lifeboat/mkmedia/grubprep"
	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// Options configure Build.
type Options struct {
	Out    string // output folder
	Source string // the lifeboat module root (where go.mod is)
	// Cache keeps the downloaded kernel and boot chain packages between
	// builds.
	Cache string
	// Kernel and Modules bring your own kernel instead of Debian's: a
	// bzImage and its /lib/modules/<version> folder. Such a bundle has no
	// Secure Boot chain (Info.SecureBoot is false): shim trusts only
	// kernels signed with Debian's key.
	Kernel, Modules string
	// ExtraModules are loaded in addition to kernel.DefaultModules.
	ExtraModules []string
	Version      string // recorded in lifeboat and bundle.json
	Log          *slog.Logger
}

// DefaultCmdline is the kernel command line media and PXE use unless told
// otherwise.
const DefaultCmdline = "console=tty0 console=ttyS0,115200 quiet"

// Commands are the u-root commands in the initramfs, built as one busybox.
var Commands = []string{
	"init", "gosh", "ls", "cat", "cp", "mv", "rm", "mkdir", "mount", "umount", "dmesg", "ip", "ps",
	"shutdown", "poweroff", "lsmod", "insmod", "df", "free", "echo", "grep", "hexdump", "sync", "uname", "blkid",
}

// Build writes the bundle into o.Out.
func Build(ctx context.Context, o Options) (*Info, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Cache == "" {
		o.Cache = filepath.Join(o.Out, "..", "cache")
	}
	for _, d := range []string{o.Out, o.Cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "lifeboat-rescue-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var k *kernel.Kernel
	if o.Kernel != "" || o.Modules != "" {
		if o.Kernel == "" || o.Modules == "" {
			return nil, errors.New("--kernel and --modules go together: give the bzImage and its /lib/modules/VERSION folder")
		}
		k, err = kernel.FromDirs(o.Kernel, o.Modules)
	} else {
		log.Info("kernel fetch started", "cache", o.Cache)
		k, err = kernel.Fetch(ctx, o.Cache, log)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	log.Info("kernel ready", "version", k.Version, "image", k.Image)

	mods, err := k.Resolve(append(append([]string{}, kernel.DefaultModules...), o.ExtraModules...))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	stage := filepath.Join(tmp, "stage")
	if err := k.Stage(stage, mods); err != nil {
		return nil, fmt.Errorf("stage kernel modules: %w", err)
	}

	// The lifeboat binary, static, as the uinit.
	lb := filepath.Join(tmp, "lifeboat")
	ld := "-s -w -X github.com/lifeboat-rescue/lifeboat/internal/version.Version=" + o.Version
	if err := run(ctx, o.Source, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
		"go", "build", "-trimpath", "-ldflags", ld, "-o", lb, "./cmd/lifeboat"); err != nil {
		return nil, err
	}

	files := []string{lb + ":bin/lifeboat", filepath.Join(stage, "lib") + ":lib"}
	// Host tools, with their shared libraries (uimage finds them with
	// ldd): ntfs-3g mounts NTFS over FUSE (Debian's kernel has no NTFS
	// driver); the others grow filesystems after a restore onto a larger
	// disk.
	for _, t := range hostTools {
		p, err := lookSbin(t.name)
		if err != nil {
			log.Warn(t.name+" not found on the build host: the rescue environment will lack it", "why", t.why, "package", t.pkg)
			continue
		}
		files = append(files, p+":bin/"+t.name)
	}
	cpio := filepath.Join(tmp, "initramfs.cpio")
	var pkgs []string
	for _, c := range Commands {
		pkgs = append(pkgs, "github.com/u-root/u-root/cmds/core/"+c)
	}
	l := llog.New(slog.LevelInfo, func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) })
	if err := os.MkdirAll(filepath.Join(tmp, "uimage"), 0o755); err != nil {
		return nil, err
	}
	log.Info("initramfs build started", "commands", len(pkgs))
	err = uimage.Create(l,
		uimage.WithEnv(golang.WithWorkingDir(o.Source), func(e *golang.Environ) { e.CgoEnabled = false; e.GOOS = "linux"; e.GOARCH = "amd64" }),
		uimage.WithTempDir(filepath.Join(tmp, "uimage")),
		uimage.WithBusyboxCommands(pkgs...),
		uimage.WithInit("init"),
		uimage.WithUinit("/bin/lifeboat", "rescue"),
		uimage.WithShell("gosh"),
		uimage.WithFiles(files...),
		uimage.WithCPIOOutput(cpio),
	)
	if err != nil {
		return nil, fmt.Errorf("build the initramfs with u-root: %w", err)
	}
	initrd := filepath.Join(o.Out, "initramfs")
	if err := compress(cpio, initrd); err != nil {
		return nil, err
	}
	// The bootloader pieces media need, made here once with grub-mkimage
	// so that mkmedia itself stays pure Go.
	log.Info("boot files started")
	if err := grubprep.Prepare(ctx, filepath.Join(o.Out, "boot")); err != nil {
		return nil, fmt.Errorf("boot files for media: %w", err)
	}
	vmlinuz := filepath.Join(o.Out, "vmlinuz")
	if err := copyFile(k.Image, vmlinuz); err != nil {
		return nil, err
	}
	info := &Info{Version: o.Version, KernelVersion: k.Version, Cmdline: DefaultCmdline,
		Created: time.Now().UTC().Truncate(time.Second), Files: map[string]File{}, Commands: Commands}
	if err := secureBoot(ctx, o, k, stage, info, log); err != nil {
		return nil, fmt.Errorf("secure boot chain: %w", err)
	}
	for _, m := range mods {
		info.Modules = append(info.Modules, m.Name)
	}
	sort.Strings(info.Modules)
	for _, f := range []string{vmlinuz, initrd} {
		fi, err := describe(f)
		if err != nil {
			return nil, err
		}
		info.Files[filepath.Base(f)] = fi
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(o.Out, "bundle.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	log.Info("bundle ready", "out", o.Out, "initramfs", info.Files["initramfs"].Size, "kernel", info.Files["vmlinuz"].Size,
		"secure_boot", info.SecureBoot)
	return info, nil
}

func run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	return command.Combined(ctx, c)
}

// compress writes src as a zstd stream the kernel can unpack
// (CONFIG_RD_ZSTD): one frame with its content size, no checksum needed.
func compress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst + ".partial")
	if err != nil {
		return err
	}
	defer os.Remove(dst + ".partial")
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(8<<20))
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(enc, in); err != nil {
		out.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".partial", dst)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func describe(p string) (File, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return File{}, err
	}
	s := sha256.Sum256(b)
	return File{Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}, nil
}

// hostTools are the build host's programs the rescue environment carries.
var hostTools = []struct{ name, pkg, why string }{
	{"ntfs-3g", "ntfs-3g", "NTFS disks will not mount"},
	{"ntfsresize", "ntfs-3g", "NTFS filesystems will not grow after a restore onto a larger disk"},
	{"e2fsck", "e2fsprogs", "ext2/3/4 filesystems will not grow after a restore onto a larger disk"},
	{"resize2fs", "e2fsprogs", "ext2/3/4 filesystems will not grow after a restore onto a larger disk"},
}

// lookSbin finds a program in PATH or the sbin folders (which a non-root
// PATH lacks).
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// secureBoot puts Debian's signed shim and GRUB into <out>/boot/ and
// records in info what they are, when the kernel is Debian's signed one;
// info.SecureBoot is true only when the kernel image carries its
// Authenticode signature and every staged module (under stage) its
// appended signature, which lockdown requires. A kernel the user brought
// leaves the bundle without the chain, and info says so.
func secureBoot(ctx context.Context, o Options, k *kernel.Kernel, stage string, info *Info, log *slog.Logger) error {
	boot := filepath.Join(o.Out, "boot")
	if k.Package == "" {
		// A previous build's chain must not make media believe this
		// kernel boots under Secure Boot.
		for _, f := range signedFiles {
			if err := os.Remove(filepath.Join(boot, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		info.NoSecureBoot = "built with --kernel/--modules: shim boots only kernels signed with Debian's key, so media of this bundle boot with Secure Boot off only"
		log.Warn("no Secure Boot chain", "why", info.NoSecureBoot)
		return nil
	}
	pkgs := map[string]*kernel.Package{}
	for _, f := range signedFiles {
		key := f.suite + "/" + f.pkg
		p := pkgs[key]
		if p == nil {
			var err error
			if p, err = kernel.FetchPackageFrom(ctx, o.Cache, f.suite, f.pkg, log); err != nil {
				return err
			}
			pkgs[key] = p
		}
		dst := filepath.Join(boot, f.name)
		if err := copyFile(p.File(f.src), dst); err != nil {
			return fmt.Errorf("%s %s: %w", f.pkg, p.Version, err)
		}
		if ok, err := Authenticode(dst); err != nil || !ok {
			return fmt.Errorf("%s from %s %s carries no Authenticode signature (%v); is the package right?", f.src, f.pkg, p.Version, err)
		}
		d, err := describe(dst)
		if err != nil {
			return err
		}
		info.Signed = append(info.Signed, Signed{File: "boot/" + f.name, Package: f.pkg, Suite: f.suite, Version: p.Version,
			Source: f.src, Size: d.Size, SHA256: d.SHA256, Signer: f.signer})
	}
	vmlinuz := filepath.Join(o.Out, "vmlinuz")
	d, err := describe(vmlinuz)
	if err != nil {
		return err
	}
	info.Signed = append(info.Signed, Signed{File: "vmlinuz", Package: k.Package, Version: k.PackageVersion,
		Source: "boot/vmlinuz-" + k.Version, Size: d.Size, SHA256: d.SHA256, Signer: debianCA})
	if ok, err := Authenticode(vmlinuz); err != nil || !ok {
		info.NoSecureBoot = fmt.Sprintf("the kernel %s of %s %s carries no Authenticode signature (%v)", k.Image, k.Package, k.PackageVersion, err)
		log.Warn("no Secure Boot", "why", info.NoSecureBoot)
		return nil
	}
	var unsigned []string
	err = filepath.WalkDir(stage, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(p) != ".ko" {
			return err
		}
		ok, err := moduleSigned(p)
		if err != nil {
			return err
		}
		if !ok {
			unsigned = append(unsigned, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(unsigned) > 0 {
		info.NoSecureBoot = fmt.Sprintf("modules without their signature, which lockdown refuses to load: %v", unsigned)
		log.Warn("no Secure Boot", "why", info.NoSecureBoot)
		return nil
	}
	info.SecureBoot = true
	return nil
}
