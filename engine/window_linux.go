package engine

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// attachWindow makes bytes [off, off+size) of a disk or image file a block
// device of their own (a loop device), for tools that take a device.
func attachWindow(path string, off, size int64) (string, func(), error) {
	backing, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("no loop devices (/dev/loop-control: %w); load the loop module (modprobe loop)", err)
	}
	defer ctl.Close()
	for range 10 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return "", nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Offset, cfg.Info.Sizelimit = uint64(off), uint64(size)
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if err := unix.IoctlLoopConfigure(int(f.Fd()), &cfg); err != nil {
			f.Close()
			if err == unix.EBUSY {
				continue // taken between GET_FREE and CONFIGURE
			}
			return "", nil, fmt.Errorf("attach %s to %s: %w", dev, path, err)
		}
		// With autoclear the loop device goes away when the last user
		// closes it: the tool, then this descriptor.
		return dev, func() { f.Close(); time.Sleep(10 * time.Millisecond) }, nil
	}
	return "", nil, fmt.Errorf("no free loop device for %s", path)
}
