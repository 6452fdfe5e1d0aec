//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// The bootable system: a GPT disk whose ESP holds GRUB, which finds the
// ext4 partition by its label and boots the rescue kernel from there. So a
// restored copy reaches LIFEBOAT-READY only if both partitions came across
// and GRUB still finds the root filesystem after it moved.
const (
	sysDiskSize  = 160 << 20
	sysESPSize   = 40 << 20 // FAT32 below ~33 MiB is invalid for OVMF
	sysRootSize  = 100 << 20
	sysBigSize   = 240 << 20 // 50% larger: the target of restore and clone
	sysRootLabel = "LBROOT"
	// uefiBootTimeout covers OVMF, GRUB reading ~18 MB from ext4 through
	// the firmware's disk driver, and the rescue boot, all under TCG.
	uefiBootTimeout = 5 * time.Minute
)

// needRescueVM skips the test unless it can boot the rescue bundle that
// LIFEBOAT_RESCUE names in QEMU with the given tools; it returns the bundle.
func needRescueVM(t *testing.T, tools ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	dir := os.Getenv("LIFEBOAT_RESCUE")
	if dir == "" {
		t.Skip("LIFEBOAT_RESCUE is unset: run make rescue and set it to out/rescue")
	}
	for _, f := range []string{"vmlinuz", "initramfs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Skipf("LIFEBOAT_RESCUE=%s holds no %s (%v): run make rescue", dir, f, err)
		}
	}
	for _, tool := range append([]string{qemu.Binary, "go"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (%v)", tool, err)
		}
	}
	return dir
}

// hostLifeboat returns the lifeboat CLI for the host: LIFEBOAT_BIN if set
// (make build's bin/lifeboat), else one built from this tree.
func hostLifeboat(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LIFEBOAT_BIN"); p != "" {
		return p
	}
	return lifeboatBin(t)
}

// TestBootableSystemRestoreAndClone backs up a bootable GPT disk, restores
// it onto a 50% larger disk with --layout fill, and boots the result under
// OVMF; then the same with clone disk.
func TestBootableSystemRestoreAndClone(t *testing.T) {
	bundle := needRescueVM(t, "sgdisk", "mkfs.vfat", "mmd", "mcopy", "fsck.vfat", "grub-mkimage",
		"mkfs.ext4", "e2fsck", "dumpe2fs", "debugfs")
	if _, err := os.Stat(qemu.OVMF); err != nil {
		t.Skipf("no OVMF (%v): apt-get install ovmf", err)
	}
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi/moddep.lst"); err != nil {
		t.Skipf("no GRUB EFI modules (%v): apt-get install grub-efi-amd64-bin", err)
	}
	dir := t.TempDir()
	orig, marker := systemDisk(t, bundle, filepath.Join(dir, "orig.img"))

	ok := t.Run("original boots", func(t *testing.T) { bootsUEFI(t, orig) })
	if !ok {
		t.Fatal("the fixture does not boot; restore and clone cannot be judged")
	}
	lifeboat := hostLifeboat(t)

	t.Run("restore fill", func(t *testing.T) {
		img := filepath.Join(dir, "sys.lbi")
		run(t, lifeboat, "backup", "disk", orig, "-o", img)
		run(t, lifeboat, "info", img)
		big := sparse(t, filepath.Join(dir, "big.img"), sysBigSize)
		run(t, lifeboat, "restore", img, "--target", big, "--layout", "fill", "--yes")
		checkFilled(t, big, marker)
		bootsUEFI(t, big)
	})
	t.Run("clone fill", func(t *testing.T) {
		big := sparse(t, filepath.Join(dir, "big2.img"), sysBigSize)
		run(t, lifeboat, "clone", "disk", orig, "--target", big, "--layout", "fill", "--yes")
		checkFilled(t, big, marker)
		bootsUEFI(t, big)
	})
}

// systemDisk writes the bootable disk and returns it with the content of
// /marker on its ext4 partition. Loop devices show no partitions on this
// kind of host, so each filesystem is made in a file of its own and copied
// in at its partition's offset.
func systemDisk(t *testing.T, bundle, path string) (disk, marker string) {
	t.Helper()
	dir := t.TempDir()
	sparse(t, path, sysDiskSize)
	run(t, "sgdisk", "-o",
		"-n", "1:2048:+"+mib(sysESPSize), "-t", "1:ef00", "-c", "1:ESP",
		"-n", "2:0:+"+mib(sysRootSize), "-t", "2:8300", "-c", "2:"+sysRootLabel, path)
	parts := gptParts(t, path)

	// The ESP: GRUB as the removable-media boot file, with every module it
	// needs built in, and a grub.cfg beside it ($prefix).
	efi := filepath.Join(dir, "BOOTX64.EFI")
	run(t, "grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/BOOT", "-o", efi,
		"part_gpt", "fat", "ext2", "normal", "linux", "search", "search_label", "configfile", "echo", "efi_gop")
	cfg := filepath.Join(dir, "grub.cfg")
	writeFile(t, cfg, `set timeout=0
search --no-floppy --label `+sysRootLabel+` --set=root
echo "lifeboat test: the root filesystem is $root"
linux /boot/vmlinuz console=ttyS0,115200 quiet panic=-1
initrd /boot/initramfs
boot
`)
	esp := filepath.Join(dir, "esp.fat")
	run(t, "mkfs.vfat", "-F", "32", "-S", "512", "-s", "1", "-n", "ESP", "-C", esp, strconv.Itoa(sysESPSize/1024))
	run(t, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
	run(t, "mcopy", "-i", esp, efi, cfg, "::/EFI/BOOT/")

	// The root: the rescue kernel and initramfs, and a marker only this
	// run knows.
	tree := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(tree, "boot"), 0o755)
	for _, f := range []string{"vmlinuz", "initramfs"} {
		copyFile(t, filepath.Join(bundle, f), filepath.Join(tree, "boot", f))
	}
	b := make([]byte, 16)
	rand.Read(b)
	marker = "lifeboat system test " + hex.EncodeToString(b) + "\n"
	writeFile(t, filepath.Join(tree, "marker"), marker)
	root := filepath.Join(dir, "root.ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-L", sysRootLabel, "-d", tree, root, mib(sysRootSize))

	writeAt(t, path, esp, parts[0].start*512)
	writeAt(t, path, root, parts[1].start*512)
	run(t, "sgdisk", "-v", path)
	return path, marker
}

// checkFilled checks a disk restored or cloned with --layout fill: a clean
// GPT, 1 MiB aligned partitions, the root partition grown to the disk's
// end, its filesystem grown with it and holding the marker.
func checkFilled(t *testing.T, disk, marker string) {
	t.Helper()
	if out := run(t, "sgdisk", "-v", disk); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v %s:\n%s", disk, out)
	}
	parts := gptParts(t, disk)
	if len(parts) != 2 {
		t.Fatalf("%s has %d partitions, want 2: %+v", disk, len(parts), parts)
	}
	for _, p := range parts {
		if p.start%2048 != 0 {
			t.Errorf("partition %d starts at sector %d, not on a 1 MiB boundary", p.num, p.start)
		}
	}
	esp, root := parts[0], parts[1]
	if esp.size() < sysESPSize {
		t.Errorf("the ESP shrank to %d bytes", esp.size())
	}
	lastUsable := lastUsableSector(t, disk)
	if gap := (lastUsable + 1 - (root.end + 1)) * 512; gap < 0 || gap >= 1<<20 {
		t.Errorf("the root partition ends at sector %d, %d bytes before the last usable sector %d; want it grown to the end",
			root.end, gap, lastUsable)
	}
	rootImg := extract(t, disk, root)
	run(t, "e2fsck", "-fn", rootImg)
	hdr := output(t, "dumpe2fs", "-h", rootImg)
	blocks, bsize := dumpe2fsField(t, hdr, "Block count"), dumpe2fsField(t, hdr, "Block size")
	if fs := blocks * bsize; fs > root.size() || root.size()-fs >= 1<<20 || fs <= sysRootSize {
		t.Errorf("the root filesystem holds %d bytes in a %d-byte partition; want it grown to fill it", fs, root.size())
	}
	if got := run(t, "debugfs", "-R", "cat /marker", rootImg); !strings.Contains(got, strings.TrimSpace(marker)) {
		t.Errorf("/marker on the restored root holds %q, want %q", got, marker)
	}
	run(t, "fsck.vfat", "-n", extract(t, disk, esp))
}

// bootsUEFI boots the disk under OVMF and waits for the rescue kernel,
// loaded by the disk's GRUB, to report ready.
func bootsUEFI(t *testing.T, disk string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), uefiBootTimeout+time.Minute)
	defer cancel()
	vm, err := qemu.Start(ctx, qemu.Options{
		Firmware: qemu.UEFI,
		MemoryMB: 384,
		// A snapshot: the rescue environment may mount the partitions,
		// and the disk is checked from outside afterwards.
		Disks: []qemu.Disk{{Path: disk, Bus: qemu.Virtio, ReadOnly: true}},
		Log:   t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.Expect(`lifeboat test: the root filesystem is`, uefiBootTimeout); err != nil {
		t.Fatalf("GRUB did not find the root filesystem: %v", err)
	}
	if _, err := vm.Expect(`LIFEBOAT-READY`, uefiBootTimeout); err != nil {
		t.Fatal(err)
	}
}

type gptPart struct {
	num        int
	start, end int64 // sectors, end inclusive
}

func (p gptPart) size() int64 { return (p.end + 1 - p.start) * 512 }

var sgdiskPart = regexp.MustCompile(`(?m)^\s+(\d+)\s+(\d+)\s+(\d+)\s`)

// gptParts reads the partition table with sgdisk -p.
func gptParts(t *testing.T, disk string) []gptPart {
	t.Helper()
	var ps []gptPart
	for _, m := range sgdiskPart.FindAllStringSubmatch(output(t, "sgdisk", "-p", disk), -1) {
		n, _ := strconv.Atoi(m[1])
		s, _ := strconv.ParseInt(m[2], 10, 64)
		e, _ := strconv.ParseInt(m[3], 10, 64)
		ps = append(ps, gptPart{n, s, e})
	}
	return ps
}

func lastUsableSector(t *testing.T, disk string) int64 {
	t.Helper()
	out := output(t, "sgdisk", "-p", disk)
	m := regexp.MustCompile(`last usable sector is (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sgdisk -p %s names no last usable sector:\n%s", disk, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func dumpe2fsField(t *testing.T, hdr, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(\d+)`).FindStringSubmatch(hdr)
	if m == nil {
		t.Fatalf("dumpe2fs -h shows no %q:\n%s", name, hdr)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// extract copies partition p of disk into a file of its own.
func extract(t *testing.T, disk string, p gptPart) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.img", p.num))
	src, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sparse(t, out, 0)
	copySparse(t, out, io.NewSectionReader(src, p.start*512, p.size()), 0)
	return out
}

// writeAt copies the file src into dst at offset off, leaving dst's size.
func writeAt(t *testing.T, dst, src string, off int64) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	copySparse(t, dst, f, off)
}

// copySparse writes r into dst from offset off, skipping zero MiBs so
// sparse files stay sparse.
func copySparse(t *testing.T, dst string, r io.Reader, off int64) {
	t.Helper()
	w, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	end := off
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := w.WriteAt(buf[:n], end); err != nil {
				t.Fatal(err)
			}
		}
		end += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := w.Stat(); err == nil && fi.Size() < end {
		if err := w.Truncate(end); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b))
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a command, logs its output and fails the test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// output runs a command for its output, which it logs only on failure.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mib(n int64) string { return strconv.FormatInt(n>>20, 10) + "M" }
