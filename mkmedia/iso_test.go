//go:build linux

package mkmedia_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/mkmedia"
	"github.com/lifeboat-rescue/lifeboat/mkmedia/grubprep"
	"github.com/lifeboat-rescue/lifeboat/rescue"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

func TestGrubConfig(t *testing.T) {
	info := &bundle.Info{Version: "v1", Cmdline: "console=tty0 console=ttyS0,115200 quiet"}
	for _, tc := range []struct {
		name    string
		o       mkmedia.MenuOptions
		want    []string
		notWant []string
	}{
		{"defaults", mkmedia.MenuOptions{}, []string{
			"insmod part_gpt\ninsmod part_msdos\ninsmod fat\ninsmod iso9660\n",
			"serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n",
			"set default=0\nset timeout=5\n",
			"menuentry 'Lifeboat rescue' --id rescue {",
			"  linux /boot/vmlinuz console=tty0 console=ttyS0,115200 quiet\n  initrd /boot/initramfs\n",
			"menuentry 'Lifeboat rescue (safe graphics, verbose)' ",
			"  linux /boot/vmlinuz console=tty0 console=ttyS0,115200 nomodeset loglevel=7\n",
			"menuentry 'Power off' --id poweroff {\n  halt\n}",
		}, nil},
		{"append and title", mkmedia.MenuOptions{Append: `lifeboat.action=restore lifeboat.image="/data/my image.lbi"`, Title: "Restore", Timeout: 1500 * time.Millisecond}, []string{
			"set timeout=2\n",
			"menuentry Restore ",
			` quiet lifeboat.action=restore 'lifeboat.image="/data/my image.lbi"'` + "\n",
			"menuentry 'Restore (safe graphics, verbose)' ",
		}, []string{"menuentry 'Lifeboat rescue"}},
		{"no wait", mkmedia.MenuOptions{Timeout: -1}, []string{"set timeout=0\n"}, nil},
		{"quoting", mkmedia.MenuOptions{Append: "a=$x b=it's"}, []string{` 'a=$x' 'b=it'\''s'` + "\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mkmedia.GrubConfig(info, tc.o)
			for _, w := range tc.want {
				if !strings.Contains(cfg, w) {
					t.Errorf("grub.cfg lacks %q:\n%s", w, cfg)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(cfg, w) {
					t.Errorf("grub.cfg has %q:\n%s", w, cfg)
				}
			}
		})
	}
}

// skipf skips loudly: a test that cannot run is not a pass.
func skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Skipf("SKIPPED, NOT A PASS: "+format, args...)
}

// testBundle returns a temporary copy of the real rescue bundle (the one
// LIFEBOAT_RESCUE names, else ../out/rescue) with the GRUB boot files made
// by grubprep. The real bundle is not modified.
func testBundle(t testing.TB) string {
	t.Helper()
	src := os.Getenv("LIFEBOAT_RESCUE")
	if src == "" {
		src = filepath.Join("..", "out", "rescue")
	}
	if _, err := os.Stat(filepath.Join(src, "bundle.json")); err != nil {
		skipf(t, "no rescue bundle at %s (%v); run `make rescue` first, or set LIFEBOAT_RESCUE", src, err)
	}
	for _, tool := range []string{"grub-mkimage", "xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipf(t, "%s not installed; run `make deps` (grub-pc-bin, grub-efi-amd64-bin, xorriso)", tool)
		}
	}
	dir := t.TempDir()
	for _, name := range []string{"bundle.json", "vmlinuz", "initramfs"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Debian's signed chain, which bundle.json lists when the bundle is
	// Secure Boot capable.
	if info, err := bundle.Read(src); err == nil {
		for _, sf := range info.Signed {
			if filepath.Dir(sf.File) != "boot" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, sf.File))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
			if err := os.WriteFile(filepath.Join(dir, sf.File), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := grubprep.Prepare(context.Background(), filepath.Join(dir, "boot")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGrubprepFiles(t *testing.T) {
	dir := testBundle(t)
	if grubprep.MarkerFile != mkmedia.MarkerFile {
		t.Errorf("grubprep.MarkerFile = %q, mkmedia.MarkerFile = %q", grubprep.MarkerFile, mkmedia.MarkerFile)
	}
	boot := mkmedia.BundleBootFiles(dir)
	for _, name := range []string{mkmedia.BootEFI, mkmedia.BootCoreBIOS, mkmedia.BootMBR, mkmedia.BootElTorito, mkmedia.BootHybridMBR} {
		st, err := os.Stat(boot.Path(name))
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s: %d bytes", name, st.Size())
	}
}

func TestISOWithoutBootFiles(t *testing.T) {
	dir := testBundle(t)
	if err := os.RemoveAll(filepath.Join(dir, "boot")); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(t.TempDir(), "x.iso")
	err := mkmedia.WriteISO(context.Background(), iso, dir, mkmedia.ISOOptions{})
	if !errors.Is(err, mkmedia.ErrNoBootFiles) {
		t.Fatalf("WriteISO without boot files: %v, want ErrNoBootFiles", err)
	}
	if !strings.Contains(err.Error(), "make rescue") {
		t.Errorf("error %q does not say what to do", err)
	}
	if _, err := os.Stat(iso); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteISO left %s behind: %v", iso, err)
	}
	if err := mkmedia.WriteISO(context.Background(), iso, dir, mkmedia.ISOOptions{VolumeID: "bad id"}); err == nil {
		t.Error("WriteISO accepted volume ID \"bad id\"")
	}
}

func sha(t testing.TB, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestISO(t *testing.T) {
	dir := testBundle(t)
	out := t.TempDir()
	iso := filepath.Join(out, "lifeboat.iso")
	// A short menu timeout keeps the boots below quick; the menu still shows.
	o := mkmedia.ISOOptions{MenuOptions: mkmedia.MenuOptions{Timeout: time.Second}}
	start := time.Now()
	if err := mkmedia.WriteISO(context.Background(), iso, dir, o); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(iso)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ISO: %d bytes (%.1f MB), written in %v", st.Size(), float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))

	t.Run("reproducible", func(t *testing.T) {
		again := filepath.Join(out, "again.iso")
		// Cross a FAT timestamp tick (2 s) so a clock-derived byte shows.
		time.Sleep(2100 * time.Millisecond)
		if err := mkmedia.WriteISO(context.Background(), again, dir, o); err != nil {
			t.Fatal(err)
		}
		if sha(t, iso) != sha(t, again) {
			t.Error("two ISOs from the same bundle and options differ")
		}
	})

	t.Run("xorriso", func(t *testing.T) {
		cmd := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain", "-find", "/", "-type", "f")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
		}
		report := string(b)
		for _, w := range []string{
			"El Torito boot img :   1  BIOS  y   none",
			"El Torito boot img :   2  UEFI  y   none",
			"El Torito img path :   1  /boot/grub/eltorito.img",
			"El Torito img opts :   1  boot-info-table grub2-boot-info",
			"El Torito img path :   2  /boot/grub/efiboot.img",
			"'/boot/vmlinuz'", "'/boot/initramfs'", "'/boot/grub/grub.cfg'", "'/lifeboat.id'",
		} {
			if !strings.Contains(report, w) {
				t.Errorf("xorriso report lacks %q:\n%s", w, report)
			}
		}
		// Booted as a CD, Debian's signed GRUB reads the ISO 9660 volume:
		// its config must be there.
		if info, err := bundle.Read(dir); err == nil && info.SecureBootCapable() == nil &&
			!strings.Contains(report, "'"+mkmedia.SignedGrubDir+"/grub.cfg'") {
			t.Errorf("xorriso report of a Secure Boot ISO lacks %s/grub.cfg:\n%s", mkmedia.SignedGrubDir, report)
		}
		if t.Failed() {
			return
		}
		// The files on the ISO are the bundle's.
		for _, f := range []struct{ iso, bundle string }{{"/boot/vmlinuz", "vmlinuz"}, {"/boot/initramfs", "initramfs"}} {
			x := filepath.Join(t.TempDir(), "x")
			cmd := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", f.iso, x)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
			}
			if sha(t, x) != sha(t, filepath.Join(dir, f.bundle)) {
				t.Errorf("%s on the ISO differs from the bundle's %s", f.iso, f.bundle)
			}
		}
	})

	t.Run("sgdisk", func(t *testing.T) {
		if _, err := exec.LookPath("sgdisk"); err != nil {
			skipf(t, "sgdisk not installed (Debian gdisk); run `make deps`")
		}
		cmd := exec.Command("sgdisk", "-v", iso)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "No problems found") {
			t.Errorf("%v: %v\n%s", cmd.Args, err, b)
		}
	})

	t.Run("boot", func(t *testing.T) {
		if testing.Short() {
			skipf(t, "QEMU boots do not run with -short")
		}
		if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
			skipf(t, "qemu-system-x86_64 not installed (Debian qemu-system-x86); run `make deps`")
		}
		cdrom := []string{"-drive", "file=" + iso + ",media=cdrom,format=raw,readonly=on"}
		usb := []string{"-drive", "if=none,id=stick,format=raw,readonly=on,file=" + iso,
			"-device", "qemu-xhci", "-device", "usb-storage,drive=stick,bootindex=1"}
		for _, tc := range []struct {
			name string
			uefi bool
			args []string
		}{
			{"bios-cd", false, cdrom},
			{"uefi-cd", true, cdrom},
			{"bios-usb", false, usb},
			{"uefi-usb", true, usb},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := tc.args
				if tc.uefi {
					if _, err := os.Stat(ovmf); err != nil {
						skipf(t, "%s missing (Debian ovmf); run `make deps`", ovmf)
					}
					args = append([]string{"-bios", ovmf}, args...)
				}
				d := bootToReady(t, args)
				t.Logf("%s: %s after %v", tc.name, rescue.ReadyMarker, d.Round(100*time.Millisecond))
			})
		}
	})
}

const (
	ovmf        = "/usr/share/ovmf/OVMF.fd"
	bootTimeout = 90 * time.Second
)

// bootToReady starts QEMU (TCG: the KVM here cannot run guests) with the
// serial console on a pipe and waits for the rescue environment's ready
// marker. It returns the time from start to the marker. The guest has 256
// MB, the RAM the rescue environment is meant to run in, on every path
// (UEFI ones boot through the bundle's signed GRUB 2.12).
func bootToReady(t *testing.T, args []string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	argv := append([]string{"-machine", "q35", "-accel", "tcg", "-m", "256", "-nic", "none",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"}, args...)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", argv...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu-system-x86_64 %s: %v", strings.Join(argv, " "), err)
	}
	var (
		mu      sync.Mutex
		console bytes.Buffer
	)
	found := make(chan time.Duration, 1)
	go func() {
		r := bufio.NewReader(stdout)
		var line []byte
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			mu.Lock()
			console.WriteByte(b)
			mu.Unlock()
			line = append(line, b)
			if b == '\n' || len(line) > 4096 {
				if bytes.Contains(line, []byte(rescue.ReadyMarker)) {
					found <- time.Since(start)
					io.Copy(io.Discard, r)
					return
				}
				line = line[:0]
			}
		}
	}()
	defer func() {
		cancel()
		cmd.Wait()
	}()
	select {
	case d := <-found:
		return d
	case <-ctx.Done():
		mu.Lock()
		tail := console.String()
		mu.Unlock()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("no %s within %v from qemu-system-x86_64 %s\nstderr: %s\nconsole tail:\n%s",
			rescue.ReadyMarker, bootTimeout, strings.Join(argv, " "), stderr.String(), tail)
	}
	return 0
}

func BenchmarkWriteISO(b *testing.B) {
	dir := testBundle(b)
	out := filepath.Join(b.TempDir(), "lifeboat.iso")
	for b.Loop() {
		if err := mkmedia.WriteISO(context.Background(), out, dir, mkmedia.ISOOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if st, err := os.Stat(out); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "MB")
	}
}
