//go:build linux

// Package qemu boots a Linux kernel and initramfs in QEMU for end-to-end
// tests: it attaches raw disk images on the buses PCs have (virtio, AHCI,
// NVMe, USB, IDE), optionally with unreadable sectors (Disk.BadSectors),
// gives the guest no network, a NIC without a cable, a NIC without DHCP,
// or QEMU's user network, and drives the serial console like a person
// would: wait for a line, type a line.
//
// The smallest use, in a test:
//
//	vm, err := qemu.Start(ctx, qemu.Options{
//		Kernel: "vmlinuz",
//		Initrd: "initramfs.cpio",
//		Append: "console=ttyS0 quiet panic=-1",
//		Disks:  []qemu.Disk{{Path: "disk.img", Bus: qemu.NVMe, Serial: "TARGET"}},
//		Log:    t.Logf,
//	})
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(vm.Kill)
//	if _, err := vm.Expect(`READY`, time.Minute); err != nil {
//		t.Fatal(err)
//	}
//
// Guests run under TCG unless [KVMUsable] finds that KVM really runs code
// (on a nested host /dev/kvm may exist and still hang guests). QEMU runs
// with -no-reboot, so a guest that powers off or reboots ends the VM, and
// [VM.Wait] sees it.
//
// The harness borrows its shape from github.com/hugelgupf/vmtest (u-root's
// harness) and gokrazy's integration tests, kept to the standard library.
package qemu
