//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// Keys as a serial terminal sends them.
const (
	keyEnter = "\r"
	keyDown  = "\x1b[B"
	keyUp    = "\x1b[A"
	keyEnd   = "\x1b[F"
)

// tuiDiskSize is the source disk: a GPT with one 40 MiB ext4 partition.
const (
	tuiDiskSize   = 48 << 20
	tuiPartStart  = 1 << 20
	tuiPartSize   = 40 << 20
	tuiTargetSize = 64 << 20
)

// TestTUIRestore boots the rescue environment into its text UI, with an
// image of a GPT disk on a data disk and a blank target disk, and types on
// the serial console: Restore → the image → its backup point → whole disk
// → the target → keep the layout → the target's name. The host then checks
// the target. A second boot types a wrong name: the UI says nothing was
// written, the target stays blank, and the UI goes back to the target with
// every choice kept, so only the name is typed again.
func TestTUIRestore(t *testing.T) {
	bundle := needRescueVM(t, "sgdisk", "mkfs.ext4", "e2fsck", "debugfs")
	dir := t.TempDir()
	part := filepath.Join(dir, "part.img")
	sums := sourceFS(t, part, tuiPartSize)
	disk := sparse(t, filepath.Join(dir, "disk.img"), tuiDiskSize)
	sh(t, "sgdisk", "-n", "1:2048:+40M", "-t", "1:8300", "-c", "1:data", disk)
	writeAt(t, disk, part, tuiPartStart)
	img := filepath.Join(dir, "pc1.lbi")
	sh(t, hostLifeboat(t), "backup", "disk", disk, "-o", img)
	store := imagesDisk(t, filepath.Join(dir, "images.img"), 64<<20, map[string]string{"pc1.lbi": img})

	t.Run("restore", func(t *testing.T) {
		target := sparse(t, filepath.Join(dir, "target.img"), tuiTargetSize)
		vm, dev := bootTUI(t, bundle, store, target)
		name := filepath.Base(dev)
		restoreSteps(t, vm)
		step(t, vm, "", `Type `+name+` and press Enter`, 3*time.Minute)
		step(t, vm, name+keyEnter, `Restore finished`, 4*time.Minute)
		if _, err := vm.Expect(`Verified: everything written was read back from `+dev, 30*time.Second); err != nil {
			t.Errorf("the result screen has no verification line: %v", err)
		}
		step(t, vm, keyEnter, `Main menu`, time.Minute)
		powerOff(t, vm)

		want, _ := os.ReadFile(part)
		got, _ := os.ReadFile(target)
		if len(got) != tuiTargetSize || !bytes.Equal(got[tuiPartStart:tuiPartStart+tuiPartSize], want) {
			t.Fatal("the target's partition 1 does not hold the source filesystem")
		}
		sh(t, "sgdisk", "-v", target)
		restored := filepath.Join(dir, "restored-part.img")
		os.WriteFile(restored, got[tuiPartStart:tuiPartStart+tuiPartSize], 0o644)
		sh(t, "e2fsck", "-fn", restored)
		for name, sum := range sums {
			out, err := exec.Command("debugfs", "-R", "cat /"+name, restored).Output()
			if err != nil || sha256.Sum256(out) != sum {
				t.Errorf("%s: checksum differs after restore (%v)", name, err)
			}
		}
	})

	t.Run("explore", func(t *testing.T) {
		// Explore → the image → partition 1 → mark dir1/ → x → type a
		// folder on an ext4 disk (mounted read-only at boot; the UI has
		// it mounted read-write first) → the files are there.
		dest := sparse(t, filepath.Join(dir, "dest.img"), 64<<20)
		sh(t, "mkfs.ext4", "-q", "-F", "-L", "DEST", dest)
		vm, dev := bootTUI(t, bundle, store, dest)
		folder := "/mnt/" + filepath.Base(dev) + "/recovered"
		step(t, vm, strings.Repeat(keyDown, 4)+keyEnter, `Pick the image to explore`, time.Minute)
		step(t, vm, keyEnter, `Pick the partition whose files you want`, 2*time.Minute)
		step(t, vm, keyEnter, `Partition 1: /`, 2*time.Minute)
		// Folders first, by name: dir0/, dir1/, dir2/, lost+found/.
		step(t, vm, keyDown+" ", `\(1 item marked\)`, time.Minute)
		step(t, vm, "x", `Copy the 1 marked item into which folder`, time.Minute)
		step(t, vm, keyEnd+keyEnter, `Type the folder to copy into`, time.Minute)
		step(t, vm, folder+keyEnter, `Explore image finished`, 3*time.Minute)
		step(t, vm, keyEnter, `Main menu`, time.Minute)
		powerOff(t, vm)
		n := 0
		for name, sum := range sums {
			if !strings.HasPrefix(name, "dir1/") {
				continue
			}
			n++
			out, err := exec.Command("debugfs", "-R", "cat /recovered/"+name, dest).Output()
			if err != nil || sha256.Sum256(out) != sum {
				t.Errorf("%s: not copied out by Explore (%v)", name, err)
			}
		}
		if n == 0 {
			t.Fatal("the source has no dir1/")
		}
		sh(t, "e2fsck", "-fn", dest)
	})

	t.Run("wrong name", func(t *testing.T) {
		target := sparse(t, filepath.Join(dir, "target2.img"), tuiTargetSize)
		vm, dev := bootTUI(t, bundle, store, target)
		name := filepath.Base(dev)
		restoreSteps(t, vm)
		step(t, vm, "", `Type `+name+` and press Enter`, 3*time.Minute)
		// One line says what happened; the next, that the target list is
		// back (the console reader takes both at once).
		step(t, vm, "sdz"+keyEnter, `not confirmed: you typed "sdz", not "`+name+`"; nothing was written to `+dev, time.Minute)
		b, _ := os.ReadFile(target)
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatal("the target was written to after a wrong confirmation")
		}
		// Every earlier choice is kept: Enter on the target, Enter on the
		// layout, and only the name is typed again.
		step(t, vm, keyEnter, `How should the partitions be laid out`, time.Minute)
		step(t, vm, keyEnter, `Type `+name+` and press Enter`, 3*time.Minute)
		step(t, vm, name+keyEnter, `Restore finished`, 4*time.Minute)
		step(t, vm, keyEnter, `Main menu`, time.Minute)
		powerOff(t, vm)
		want, _ := os.ReadFile(part)
		got, _ := os.ReadFile(target)
		if !bytes.Equal(got[tuiPartStart:tuiPartStart+tuiPartSize], want) {
			t.Fatal("after going back from the wrong name, the restore did not write the image")
		}
	})
}

// bootTUI boots with the images disk (read-only) and the target, waits for
// the text UI, and returns the target's device name in the guest.
func bootTUI(t *testing.T, bundle, store, target string) (*qemu.VM, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	vm, err := qemu.Start(ctx, qemu.Options{
		Kernel:   filepath.Join(bundle, "vmlinuz"),
		Initrd:   filepath.Join(bundle, "initramfs"),
		Append:   "console=ttyS0,115200 quiet panic=-1",
		MemoryMB: 384,
		Disks: []qemu.Disk{
			{Path: store, Bus: qemu.Virtio, Serial: "IMAGES", ReadOnly: true},
			{Path: target, Bus: qemu.Virtio, Serial: "LB-TARGET"},
		},
		Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	if _, err := vm.Expect(`LIFEBOAT-READY`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	dev := guestDisk(t, vm, "LB-TARGET")
	if _, err := vm.Expect(`Main menu`, time.Minute); err != nil {
		t.Fatalf("the text UI did not start: %v", err)
	}
	return vm, dev
}

// step types keys and waits for the screen to show a pattern.
func step(t *testing.T, vm *qemu.VM, keys, want string, timeout time.Duration) {
	t.Helper()
	// Arrow keys are sent one by one, so an escape sequence is never
	// split across reads (a lone ESC is the Esc key).
	for keys != "" {
		k := keys[:1]
		for _, seq := range []string{keyDown, keyUp, keyEnd} {
			if strings.HasPrefix(keys, seq) {
				k = seq
			}
		}
		if err := vm.Send(k); err != nil {
			t.Fatal(err)
		}
		keys = keys[len(k):]
		if k == keyDown || k == keyUp || k == keyEnd {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if _, err := vm.Expect(want, timeout); err != nil {
		t.Fatalf("after typing, the screen never showed %q: %v", want, err)
	}
}

// restoreSteps goes from the main menu to the confirmation of a whole-disk
// restore of the first image onto the first writable disk, sizes kept.
func restoreSteps(t *testing.T, vm *qemu.VM) {
	t.Helper()
	step(t, vm, keyEnter, `Pick the image to restore`, time.Minute)
	step(t, vm, keyEnter, `Backup points in /mnt/vda/pc1.lbi`, time.Minute)
	step(t, vm, keyEnter, `Restore the whole disk, or only one partition`, time.Minute)
	step(t, vm, keyEnter, `Pick the disk to restore onto`, time.Minute)
	step(t, vm, keyEnter, `How should the partitions be laid out`, time.Minute)
	// Down to "Fill" and back up to "Keep": the arrows work.
	step(t, vm, keyDown+keyUp+keyEnter, `Restore > (Working|Confirm)`, time.Minute)
}

// powerOff goes from the main menu to Power off and waits for the VM to
// end.
func powerOff(t *testing.T, vm *qemu.VM) {
	t.Helper()
	step(t, vm, strings.Repeat(keyDown, 9)+keyEnter, `Reboot or power off`, time.Minute)
	step(t, vm, keyDown+keyEnter, `lifeboat: poweroff`, time.Minute)
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
}
