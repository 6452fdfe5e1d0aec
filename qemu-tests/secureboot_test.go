//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/mkmedia"
	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// Secure Boot media boots: OVMF with Secure Boot enforced and Microsoft's
// keys (qemu.UEFISecureBoot) → shim (Microsoft-signed) → Debian's signed
// GRUB → Debian's signed kernel, which locks itself down.
const (
	// sbMemoryMB is the RAM the Secure Boot boots get: the 256 MB the
	// rescue environment is meant to run in. The bundle's GRUB is
	// trixie's 2.12, which grows its heap on demand and starts the kernel
	// as an EFI image; bookworm's 2.06 kept a quarter of the RAM as heap
	// and allocated the kernel's 63.6 MiB init_size twice (handover and
	// EFI stub), and needed 320 MB here (OVMF's SMM build keeps 31 MiB).
	// With 2.12 the ISO as CD and the USB image reach LIFEBOAT-READY down
	// to 224 MB under Secure Boot. See README "Secure Boot" and FACTS.md.
	sbMemoryMB = 256
	// sbBootTimeout covers OVMF with SMM, shim, GRUB reading ~20 MB
	// through the firmware and the rescue boot, under TCG on a busy host.
	sbBootTimeout = 10 * time.Minute
)

// sbReady is the LIFEBOAT-READY line of a guest that booted with Secure
// Boot on and its kernel locked down (integrity: Debian's kernel under
// Secure Boot), as the rescue environment reads them.
var sbReady = `LIFEBOAT-READY .*secureboot=1 lockdown=integrity`

// TestSecureBoot writes the ISO and the USB image of the Secure Boot
// capable bundle and boots them under Secure Boot: the ISO as a CD and as
// a USB disk to LIFEBOAT-READY, and the USB image through an unattended
// restore from its data partition of a disk with ext4 and NTFS, then, at
// the prompt, the same image onto two larger disks with --layout fill,
// growing the NTFS partition (ntfsresize) on one and the ext4 partition
// (resize2fs) on the other under lockdown, beside an NTFS disk the rescue
// environment mounts with ntfs-3g (FUSE). The negative control is
// the same USB image made from the bundle without its signed chain: its
// GRUB (grub-mkimage's, unsigned) as BOOTX64.EFI, which the firmware
// refuses.
func TestSecureBoot(t *testing.T) {
	dir0 := rescueBundle(t)
	info, err := bundle.Read(dir0)
	if err != nil {
		t.Fatal(err)
	}
	if err := info.SecureBootCapable(); err != nil {
		t.Fatalf("bundle %s cannot boot under Secure Boot: %v", dir0, err)
	}
	for _, tool := range []string{"mkfs.ext4", "mkntfs", "sgdisk", "mcopy", "e2fsck", "ntfsfix", "ntfsresize", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (%v); run make deps", tool, err)
		}
	}
	dir := t.TempDir()
	ctx := context.Background()
	iso := filepath.Join(dir, "lifeboat.iso")
	if err := mkmedia.WriteISO(ctx, iso, dir0, mkmedia.ISOOptions{MenuOptions: mkmedia.MenuOptions{Timeout: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(iso); err == nil {
		t.Logf("Secure Boot ISO: %d bytes (%.1f MB)", st.Size(), float64(st.Size())/1e6)
	}

	t.Run("iso-cd", func(t *testing.T) {
		t.Parallel()
		sbBootReady(t, qemu.Options{CDROM: iso})
	})
	t.Run("iso-usb", func(t *testing.T) {
		t.Parallel()
		sbBootReady(t, qemu.Options{Disks: []qemu.Disk{{Path: iso, Bus: qemu.USB, ReadOnly: true}}})
	})
	t.Run("usb-restore", func(t *testing.T) {
		t.Parallel()
		sbUSBRestore(t, dir0)
	})
	t.Run("unsigned-refused", func(t *testing.T) {
		t.Parallel()
		// The bundle as a --kernel build leaves it: no signed chain, so
		// mkmedia puts the bundle's own GRUB on the ESP.
		unsigned := t.TempDir()
		if err := os.CopyFS(unsigned, os.DirFS(dir0)); err != nil {
			t.Fatal(err)
		}
		u := *info
		u.SecureBoot, u.Signed, u.NoSecureBoot = false, nil, "negative control: the signed chain removed"
		b, _ := json.Marshal(u)
		if err := os.WriteFile(filepath.Join(unsigned, "bundle.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(t.TempDir(), "unsigned-usb.img")
		if err := mkmedia.WriteUSB(ctx, img, unsigned, mkmedia.USBOptions{MenuOptions: mkmedia.MenuOptions{Timeout: time.Second}}); err != nil {
			t.Fatal(err)
		}
		// OVMF tries the stick, refuses its loader, and goes on to the
		// next boot option.
		sbRefused(t, img, `BdsDxe: failed to (load|start) .*USB.*: (Access Denied|Security Violation)`, "the firmware", "the unsigned GRUB")
	})
	t.Run("tampered-grub-refused", func(t *testing.T) {
		t.Parallel()
		// The signed chain with one byte of GRUB's code changed on the
		// stick: the firmware accepts shim, shim refuses GRUB.
		img := filepath.Join(t.TempDir(), "tampered-usb.img")
		if err := mkmedia.WriteUSB(ctx, img, dir0, mkmedia.USBOptions{MenuOptions: mkmedia.MenuOptions{Timeout: time.Second}}); err != nil {
			t.Fatal(err)
		}
		grub, err := os.ReadFile(filepath.Join(dir0, "boot", mkmedia.BootGrubSigned))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		// The ESP writer stores files in contiguous clusters: the 4 KiB
		// from the middle of GRUB's image are found once.
		mid := len(grub) / 2
		probe := grub[mid : mid+4096]
		at := bytes.Index(raw, probe)
		if at < 0 || bytes.Index(raw[at+1:], probe) >= 0 {
			t.Fatalf("GRUB's image is not on the stick exactly once (at %d)", at)
		}
		raw[at+100] ^= 0x01
		if err := os.WriteFile(img, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		sbRefused(t, img, `Verification failed`, "shim", "the tampered GRUB")
	})
}

// sbRefused boots the stick img under Secure Boot and expects refusal
// (what who prints) before GRUB or the kernel runs what.
func sbRefused(t *testing.T, img, refusal, who, what string) {
	t.Helper()
	vm := sbStart(t, qemu.Options{Disks: []qemu.Disk{{Path: img, Bus: qemu.USB, ReadOnly: true}}})
	i, m, err := vm.ExpectAny(sbBootTimeout, refusal, `Welcome to GRUB|GNU GRUB|LIFEBOAT-READY`)
	if err != nil {
		t.Fatal(err)
	}
	if i != 0 {
		t.Fatalf("%s ran under Secure Boot: %q", what, m[0])
	}
	t.Logf("%s refused %s: %q", who, what, m[0])
	vm.Kill()
	if regexp.MustCompile(`Welcome to GRUB|GNU GRUB|Linux version`).MatchString(vm.Console()) {
		t.Error("GRUB or the kernel started after the refusal")
	}
}

// sbStart boots o under UEFISecureBoot with sbMemoryMB.
func sbStart(t *testing.T, o qemu.Options) *qemu.VM {
	t.Helper()
	o.Firmware, o.MemoryMB, o.Log = qemu.UEFISecureBoot, sbMemoryMB, t.Logf
	return startVM(t, o, 2*sbBootTimeout)
}

// sbBootReady boots o under Secure Boot to LIFEBOAT-READY through shim and
// the signed GRUB, and checks the guest's own report of the state.
func sbBootReady(t *testing.T, o qemu.Options) *qemu.VM {
	t.Helper()
	vm := sbStart(t, o)
	// GRUB 2.06 greets with "Welcome to GRUB!"; trixie's 2.12, which
	// the media carry, only shows its menu ("GNU GRUB  version 2.12…").
	if _, err := vm.Expect(`Welcome to GRUB|GNU GRUB`, sbBootTimeout); err != nil {
		t.Fatal(err)
	}
	m, err := vm.Expect(`LIFEBOAT-READY .*`, sbBootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LIFEBOAT-READY under Secure Boot %.1fs after start (TCG, %d MB): %s", vm.Elapsed().Seconds(), sbMemoryMB, m[0])
	if !regexp.MustCompile(sbReady).MatchString(m[0]) {
		t.Fatalf("ready line %q does not match %q", m[0], sbReady)
	}
	return vm
}

// sbUSBRestore is the USB image's part of TestSecureBoot.
func sbUSBRestore(t *testing.T, bundleDir string) {
	dir := t.TempDir()
	lifeboat := hostLifeboat(t)
	src, sums := twoFSDisk(t, filepath.Join(dir, "pc.img"))
	lbi := filepath.Join(dir, "pc.lbi")
	sh(t, lifeboat, "backup", "disk", src, "-o", lbi)

	img := filepath.Join(dir, "usb.img")
	job := "lifeboat.action=restore lifeboat.image=LABEL=" + mkmedia.DataLabel + ":/pc.lbi lifeboat.target=first-empty-disk" +
		" lifeboat.done=shell lifeboat.ui=prompt"
	if err := mkmedia.WriteUSB(context.Background(), img, bundleDir, mkmedia.USBOptions{Size: 192 << 20,
		MenuOptions: mkmedia.MenuOptions{Append: job, Timeout: time.Second}}); err != nil {
		t.Fatal(err)
	}
	parts := gptParts(t, img)
	sh(t, "mcopy", "-i", img+"@@"+strconv.FormatInt(parts[2].start*512, 10), lbi, "::/pc.lbi")

	// An NTFS disk the rescue environment mounts through ntfs-3g (FUSE).
	ntfsDisk := sparse(t, filepath.Join(dir, "ntfs.img"), 16<<20)
	sh(t, "mkntfs", "-q", "-F", "-f", "-L", "LBNTFS", ntfsDisk)
	same := sparse(t, filepath.Join(dir, "same.img"), twoFSDiskSize)
	big := sparse(t, filepath.Join(dir, "big.img"), twoFSDiskSize*3/2)
	big2 := sparse(t, filepath.Join(dir, "big2.img"), twoFSDiskSize*3/2)

	vm := sbStart(t, qemu.Options{Disks: []qemu.Disk{
		{Path: img, Bus: qemu.USB},
		{Path: ntfsDisk, Bus: qemu.Virtio, Serial: "NTFS"},
		{Path: same, Bus: qemu.Virtio, Serial: "SAME"},
		{Path: big, Bus: qemu.Virtio, Serial: "BIG"},
		{Path: big2, Bus: qemu.Virtio, Serial: "BIG2"},
	}})
	if _, err := vm.Expect(`mounted /dev/vd\w+ \(ntfs "LBNTFS"\)`, sbBootTimeout); err != nil {
		t.Errorf("ntfs-3g did not mount the NTFS disk under lockdown: %v", err)
	}
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, sbBootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unattended restore under Secure Boot: %s (%.1fs after start)", m[0], vm.Elapsed().Seconds())
	if m[1] != "ok" || !regexp.MustCompile(`secureboot=1 lockdown=integrity`).MatchString(m[0]) {
		t.Fatalf("unattended restore: %s", m[0])
	}
	if _, err := vm.Expect(`lifeboat> $`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	con := &promptConsole{t: t, vm: vm}
	bigDev := guestDisk(t, vm, "BIG")
	mnt := regexp.MustCompile(`mounted /dev/sd\w+ \(vfat "` + mkmedia.DataLabel + `"\) read-only at (\S+)`).FindStringSubmatch(vm.Console())
	if mnt == nil {
		t.Fatalf("the data partition %s was not mounted", mkmedia.DataLabel)
	}
	for _, r := range []struct{ dev, grow string }{{bigDev, ""}, {guestDisk(t, vm, "BIG2"), " --grow 1"}} {
		out, code := con.run("restore " + mnt[1] + "/pc.lbi --target " + r.dev + " --layout fill" + r.grow + " --yes")
		if code != 0 {
			t.Fatalf("restore --layout fill%s under lockdown: exit %d\n%s", r.grow, code, out)
		}
	}
	con.send("poweroff")
	if err := vm.Wait(3 * time.Minute); err != nil {
		t.Errorf("no power-off: %v", err)
	}
	checkTwoFS(t, same, sums, 0)
	checkTwoFS(t, big, sums, 2)
	checkTwoFS(t, big2, sums, 1)
}

// twoFSDiskSize is the fixture disk: GPT, an ext4 and an NTFS partition.
const twoFSDiskSize = 96 << 20

// twoFSDisk writes a GPT disk with an ext4 partition (label LBEXT) and an
// NTFS one (label LBNTFSP), each made in a file of its own and copied in,
// and returns the checksums of a file on each.
func twoFSDisk(t *testing.T, path string) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	sparse(t, path, twoFSDiskSize)
	sh(t, "sgdisk", "-o", "-n", "1:2048:+40M", "-t", "1:8300", "-c", "1:LBEXT",
		"-n", "2:0:+40M", "-t", "2:0700", "-c", "2:LBNTFSP", path)
	parts := gptParts(t, path)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	content := strings.Repeat("lifeboat secure boot ext4\n", 20000)
	writeFile(t, filepath.Join(tree, "marker"), content)
	ext := filepath.Join(dir, "ext.img")
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "LBEXT", "-d", tree, ext, "40M")
	ntfs := sparse(t, filepath.Join(dir, "ntfs.img"), 40<<20)
	sh(t, "mkntfs", "-q", "-F", "-f", "-L", "LBNTFSP", "-p", strconv.FormatInt(parts[1].start, 10), "-H", "64", "-S", "32", ntfs)
	writeAt(t, path, ext, parts[0].start*512)
	writeAt(t, path, ntfs, parts[1].start*512)
	return path, map[string]string{"ext4": content}
}

// checkTwoFS checks a restored copy of twoFSDisk: both filesystems clean,
// the ext4 marker intact, and partition grown (1 ext4, 2 NTFS; 0 none)
// larger than the source's 40 MiB with its filesystem grown along to fill
// it.
func checkTwoFS(t *testing.T, disk string, sums map[string]string, grown int) {
	t.Helper()
	parts := gptParts(t, disk)
	if len(parts) != 2 {
		t.Fatalf("%s: %d partitions, want 2", disk, len(parts))
	}
	ext, ntfs := extract(t, disk, parts[0]), extract(t, disk, parts[1])
	run(t, "e2fsck", "-fn", ext)
	// stdout only: debugfs prints its banner on stderr.
	if got, err := exec.Command("debugfs", "-R", "cat /marker", ext).Output(); err != nil || string(got) != sums["ext4"] {
		t.Errorf("%s: /marker on ext4 differs after the restore (%d bytes, %v)", disk, len(got), err)
	}
	run(t, "ntfsfix", "-n", ntfs)
	switch grown {
	case 1:
		if parts[0].size() <= 40<<20 {
			t.Errorf("%s: the ext4 partition has %d bytes; want it grown", disk, parts[0].size())
		}
		hdr := output(t, "dumpe2fs", "-h", ext)
		if fs := dumpe2fsField(t, hdr, "Block count") * dumpe2fsField(t, hdr, "Block size"); fs <= 40<<20 || parts[0].size()-fs >= 1<<20 {
			t.Errorf("%s: ext4 holds %d bytes in a %d-byte partition; want it grown (resize2fs in the guest)", disk, fs, parts[0].size())
		}
	case 2:
		if gap := (lastUsableSector(t, disk) - parts[1].end) * 512; gap >= 1<<20 {
			t.Errorf("%s: the NTFS partition ends %d bytes before the disk's last usable sector; want it grown", disk, gap)
		}
		info := output(t, "ntfsresize", "--info", "--force", "--no-progress-bar", ntfs)
		m := regexp.MustCompile(`Current volume size: (\d+) bytes`).FindStringSubmatch(info)
		if m == nil || len(m[1]) == 0 {
			t.Fatalf("ntfsresize --info says:\n%s", info)
		}
		if vol, _ := strconv.ParseInt(m[1], 10, 64); vol <= 40<<20 || parts[1].size()-vol >= 1<<20 {
			t.Errorf("%s: the NTFS volume holds %d bytes in a %d-byte partition; want it grown (ntfsresize in the guest)", disk, vol, parts[1].size())
		}
	}
}
