//go:build linux

package qemu_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// Boot a kernel with one NVMe disk, wait for the guest to say it is ready,
// type a line and wait for the guest to power off.
func Example() {
	ctx := context.Background()
	vm, err := qemu.Start(ctx, qemu.Options{
		Kernel: "vmlinuz",
		Initrd: "initramfs.cpio",
		Append: "console=ttyS0 quiet panic=-1",
		Disks:  []qemu.Disk{{Path: "target.img", Bus: qemu.NVMe, Serial: "TARGET"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer vm.Kill()
	if _, err := vm.Expect(`READY`, time.Minute); err != nil {
		fmt.Println(err) // quotes the last 40 console lines
		return
	}
	vm.Send("poweroff\n")
	if err := vm.Wait(30 * time.Second); err != nil {
		fmt.Println(err)
	}
}
