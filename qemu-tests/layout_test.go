//go:build linux

package qemutests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/mkmedia"
	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// Unattended restores onto disks of another size (lifeboat.layout=):
// fill grows the partition and its ext4 filesystem into a larger disk;
// fit shrinks them onto a smaller one (resize2fs on a copy-on-write view
// over FUSE and a loop device, inside the rescue environment). The host
// checks the filesystem and every file.
func TestUnattendedLayouts(t *testing.T) {
	dir := t.TempDir()
	fsImg := filepath.Join(dir, "fs.img")
	sums := sourceFS(t, fsImg, 95<<20)
	disk := sparse(t, filepath.Join(dir, "disk.img"), 96<<20+1<<20+34*512)
	sh(t, "sgdisk", "-n", "1:1MiB:+95MiB", "-t", "1:8300", disk)
	sh(t, "dd", "if="+fsImg, "of="+disk, "bs=1M", "seek=1", "conv=notrunc", "status=none")
	img := filepath.Join(dir, "pc1.lbi")
	sh(t, lifeboatBin(t), "backup", "disk", disk, "-o", img)
	store := imagesDisk(t, filepath.Join(dir, "images.img"), 64<<20, map[string]string{"pc1.lbi": img})
	for _, tc := range []struct {
		layout string
		size   int64
		grows  bool
	}{{"fill", 160 << 20, true}, {"fit", 48 << 20, false}} {
		t.Run(tc.layout, func(t *testing.T) {
			target := sparse(t, filepath.Join(t.TempDir(), "target.img"), tc.size)
			vm := boot(t, "lifeboat.action=restore lifeboat.image=LABEL=IMAGES:/pc1.lbi lifeboat.target=serial=TARGET lifeboat.layout="+tc.layout+" lifeboat.done=poweroff",
				[]qemu.Disk{{Path: store, Bus: qemu.Virtio, Serial: "IMAGES"}, {Path: target, Bus: qemu.Virtio, Serial: "TARGET"}}, qemu.NetNone)
			m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+) exit=(\d+)(.*)`, 4*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if m[1] != "ok" {
				t.Fatalf("result %s exit %s%s", m[1], m[2], m[3])
			}
			if err := vm.Wait(time.Minute); err != nil {
				t.Fatalf("the VM did not power off: %v", err)
			}
			f := strings.Fields(sh(t, "partx", "-g", "-o", "START,SECTORS", "-n", "1", target))
			start, _ := strconv.ParseInt(f[0], 10, 64)
			sectors, _ := strconv.ParseInt(f[1], 10, 64)
			part := filepath.Join(t.TempDir(), "part.img")
			sh(t, "dd", "if="+target, "of="+part, "bs=512", fmt.Sprintf("skip=%d", start), fmt.Sprintf("count=%d", sectors), "status=none")
			sh(t, "e2fsck", "-fn", part)
			fsBytes := e2fsBytes(t, part)
			t.Logf("%s onto %d MiB: partition %d MiB, filesystem %d MiB", tc.layout, tc.size>>20, sectors*512>>20, fsBytes>>20)
			if tc.grows && fsBytes <= 95<<20 || !tc.grows && fsBytes >= 48<<20 {
				t.Errorf("%s: the filesystem is %d bytes on a %d-byte disk", tc.layout, fsBytes, tc.size)
			}
			for name, sum := range sums {
				out, err := exec.Command("debugfs", "-R", "cat /"+name, part).Output()
				if err != nil || sha256.Sum256(out) != sum {
					t.Errorf("%s: checksum differs after restore (%v)", name, err)
				}
			}
			os.Remove(part)
		})
	}
}

// e2fsBytes is the size of the ext filesystem in img (block count × size).
func e2fsBytes(t *testing.T, img string) int64 {
	t.Helper()
	var count, size int64
	for _, l := range strings.Split(sh(t, "dumpe2fs", "-h", img), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "Block count":
			count = n
		case "Block size":
			size = n
		}
	}
	return count * size
}

// lifeboat export: a bootable disk (a Lifeboat stick: GPT, ESP, BIOS boot
// code) backed up, exported to qcow2 and VHDX, compared with a restore by
// qemu-img, and the qcow2 boots in QEMU (SeaBIOS, virtio) to the
// rescue prompt.
func TestExportBoots(t *testing.T) {
	dir := t.TempDir()
	lifeboat := hostLifeboat(t)
	stick := filepath.Join(dir, "stick.img")
	if err := mkmedia.WriteUSB(context.Background(), stick, rescueBundle(t), mkmedia.USBOptions{Size: 192 << 20,
		MenuOptions: mkmedia.MenuOptions{Append: "lifeboat.ui=prompt", Timeout: time.Second}}); err != nil {
		t.Fatal(err)
	}
	lbi := filepath.Join(dir, "stick.lbi")
	sh(t, lifeboat, "backup", "disk", stick, "-o", lbi)
	restored := filepath.Join(dir, "restored.img")
	sh(t, lifeboat, "restore", lbi, "--target", restored, "-y")
	for _, f := range []string{"qcow2", "vhdx"} {
		out := filepath.Join(dir, "stick."+f)
		sh(t, lifeboat, "export", lbi, "-o", out)
		sh(t, "qemu-img", "check", "-f", f, out)
		sh(t, "qemu-img", "compare", "-f", f, "-F", "raw", out, restored)
	}
	vm := startVM(t, qemu.Options{MemoryMB: 256, Log: t.Logf,
		Disks: []qemu.Disk{{Path: filepath.Join(dir, "stick.qcow2"), Format: "qcow2", Bus: qemu.Virtio}}}, 5*time.Minute)
	if _, err := vm.Expect(`lifeboat> $`, 3*time.Minute); err != nil {
		t.Fatalf("the exported qcow2 did not boot to the rescue prompt: %v", err)
	}
	t.Logf("the qcow2 export booted to the prompt in %.1fs", vm.Elapsed().Seconds())
}

// A bootable disk restored with --layout fit onto a smaller disk boots:
// a Lifeboat stick (BIOS boot partition, ESP, and its data partition made
// ext4 and filled) is backed up, restored with fit onto a disk too small
// for its partitions as they are (the ext4 one shrinks), checked, and the
// restored disk boots in QEMU (SeaBIOS) to the rescue prompt, mounting
// the shrunk filesystem on the way.
func TestFitRestoredDiskBoots(t *testing.T) {
	dir := t.TempDir()
	lifeboat := hostLifeboat(t)
	stick := filepath.Join(dir, "stick.img")
	if err := mkmedia.WriteUSB(context.Background(), stick, rescueBundle(t), mkmedia.USBOptions{Size: 256 << 20,
		MenuOptions: mkmedia.MenuOptions{Append: "lifeboat.ui=prompt", Timeout: time.Second}}); err != nil {
		t.Fatal(err)
	}
	data, detach := partLoop(t, stick, 3)
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "DATA", data)
	mnt := t.TempDir()
	sh(t, "mount", data, mnt)
	for i := range 8 { // 40 MB spread over the filesystem, half deleted
		sh(t, "dd", "if=/dev/urandom", "of="+filepath.Join(mnt, fmt.Sprintf("f%d", i)), "bs=1M", "count=10", "status=none")
	}
	for i := 0; i < 8; i += 2 {
		os.Remove(filepath.Join(mnt, fmt.Sprintf("f%d", i)))
	}
	want := sh(t, "sh", "-c", "cd "+mnt+" && sha256sum f*")
	sh(t, "umount", mnt)
	detach()

	lbi := filepath.Join(dir, "stick.lbi")
	sh(t, lifeboat, "backup", "disk", stick, "-o", lbi)
	target := sparse(t, filepath.Join(dir, "target.img"), 160<<20)
	out := sh(t, lifeboat, "restore", lbi, "--target", target, "--layout", "fit", "-y")
	if !strings.Contains(out, "shrank") {
		t.Fatalf("nothing shrank:\n%s", out)
	}
	t.Logf("%s", out)
	data, detach = partLoop(t, target, 3)
	sh(t, "e2fsck", "-fn", data)
	sh(t, "mount", "-o", "ro", data, mnt)
	got := sh(t, "sh", "-c", "cd "+mnt+" && sha256sum f*")
	sh(t, "umount", mnt)
	if got != want {
		t.Errorf("the files on the shrunk partition differ:\n%s\nwant\n%s", got, want)
	}
	detach()

	vm := startVM(t, qemu.Options{MemoryMB: 256, Log: t.Logf, Disks: []qemu.Disk{{Path: target, Bus: qemu.Virtio}}}, 5*time.Minute)
	if _, err := vm.Expect(`mounted /dev/vda3 \(ext4 "DATA"\)`, 3*time.Minute); err != nil {
		t.Fatalf("the booted system did not mount the shrunk filesystem: %v", err)
	}
	if _, err := vm.Expect(`lifeboat> $`, 3*time.Minute); err != nil {
		t.Fatalf("the disk restored with --layout fit did not boot to the rescue prompt: %v", err)
	}
	t.Logf("the fit-restored disk booted to the prompt in %.1fs", vm.Elapsed().Seconds())
}

// partLoop is a loop device over partition n of disk (by its place in the
// table); detach frees it, at the latest when the test ends, and only
// once: a second detach by name could free a device another test
// attached since.
func partLoop(t *testing.T, disk string, n int) (loop string, detach func()) {
	t.Helper()
	f := strings.Fields(sh(t, "partx", "-g", "-o", "START,SECTORS", "-n", fmt.Sprint(n), disk))
	if len(f) != 2 {
		t.Fatalf("partx: partition %d of %s: %q", n, disk, f)
	}
	start, _ := strconv.ParseInt(f[0], 10, 64)
	sectors, _ := strconv.ParseInt(f[1], 10, 64)
	loop = strings.TrimSpace(sh(t, "losetup", "-f", "--show", "-o", fmt.Sprint(start*512), "--sizelimit", fmt.Sprint(sectors*512), disk))
	detach = sync.OnceFunc(func() { exec.Command("losetup", "-d", loop).Run() })
	t.Cleanup(detach)
	return loop, detach
}
