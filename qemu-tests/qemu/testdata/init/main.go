//go:build linux

// Command init is the /init of the harness tests' initramfs: it loads the
// modules listed in /modules/order, prints "HARNESS READY" and then obeys
// one command per console line:
//
//	disks N   wait up to 30 s for N block devices, print "DISK name size=BYTES ro=0|1 serial=S" each, then "DISKS DONE"
//	net N     wait for N NICs, bring them up, print "NET name carrier=0|1" each, then "NET DONE"
//	echo TEXT print "ECHO TEXT"
//	read DISK SECTOR COUNT
//	          read COUNT 512-byte sectors of /sys/block/DISK from SECTOR with O_DIRECT (no cache, no readahead),
//	          print "READ DISK SECTOR COUNT ok" or "READ DISK SECTOR COUNT err=ERRNO"
//	poweroff  power the machine off
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	for _, m := range []struct{ fs, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}} {
		if err := syscall.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			fmt.Printf("INIT ERROR: mount %s: %v\n", m.dir, err)
		}
	}
	loadModules()
	// Firmware may have left a line unfinished ("Booting from ROM...").
	fmt.Println("\nHARNESS READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		n, _ := strconv.Atoi(arg)
		switch cmd {
		case "disks":
			disks(n)
		case "net":
			nics(n)
		case "echo":
			fmt.Println("ECHO " + arg)
		case "read":
			readSectors(arg)
		case "poweroff":
			poweroff()
		case "":
		default:
			fmt.Printf("INIT ERROR: unknown command %q\n", cmd)
		}
	}
	poweroff()
}

func poweroff() {
	syscall.Sync()
	if err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Printf("INIT ERROR: power off: %v\n", err)
	}
	select {}
}

// sysFinitModule is finit_module(2) on amd64; package syscall lacks it.
const sysFinitModule = 313

// loadModules loads /modules/NAME.ko for each name in /modules/order, which
// lists dependencies first.
func loadModules() {
	order, err := os.ReadFile("/modules/order")
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(order)) {
		f, err := os.Open("/modules/" + name + ".ko")
		if err != nil {
			fmt.Printf("INIT ERROR: %v\n", err)
			continue
		}
		params, _ := syscall.BytePtrFromString("")
		_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(params)), 0)
		f.Close()
		if errno != 0 && errno != syscall.EEXIST {
			fmt.Printf("INIT ERROR: load %s: %v\n", name, errno)
		}
	}
}

// waitFor lists dir every 100 ms until keep accepts n entries or 30 s pass.
func waitFor(dir string, n int, keep func(string) bool) []string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if keep(e.Name()) {
				names = append(names, e.Name())
			}
		}
		if len(names) >= n || time.Now().After(deadline) {
			return names
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func disks(n int) {
	names := waitFor("/sys/block", n, func(name string) bool {
		return !strings.HasPrefix(name, "loop") && !strings.HasPrefix(name, "ram") && !strings.HasPrefix(name, "zram")
	})
	for _, name := range names {
		dir := filepath.Join("/sys/block", name)
		sectors, _ := strconv.ParseInt(read(dir, "size"), 10, 64)
		fmt.Printf("DISK %s size=%d ro=%s serial=%s\n", name, sectors*512, read(dir, "ro"), serial(dir))
	}
	fmt.Println("DISKS DONE")
}

// serial finds a disk's serial where each driver puts it.
func serial(dir string) string {
	for _, f := range []string{"serial", "device/serial"} { // virtio-blk; NVMe
		if s := read(dir, f); s != "" {
			return s
		}
	}
	// SCSI disks through libata (SATA, IDE): VPD page 0x80, after its
	// 4-byte header.
	if b, err := os.ReadFile(filepath.Join(dir, "device/vpd_pg80")); err == nil && len(b) > 4 {
		return string(bytes.TrimSpace(bytes.Trim(b[4:], "\x00")))
	}
	// usb-storage reads no VPD pages; the USB device above the SCSI
	// device has the serial string descriptor.
	p, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	for ; err == nil && p != "/sys/devices"; p = filepath.Dir(p) {
		if s := read(p, "serial"); s != "" {
			return s
		}
	}
	return ""
}

func read(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b))
}

func nics(n int) {
	names := waitFor("/sys/class/net", n, func(name string) bool { return name != "lo" })
	for _, name := range names {
		if err := up(name); err != nil {
			fmt.Printf("INIT ERROR: %s up: %v\n", name, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // carrier follows IFF_UP asynchronously
	for _, name := range names {
		fmt.Printf("NET %s carrier=%s\n", name, read("/sys/class/net/"+name, "carrier"))
	}
	fmt.Println("NET DONE")
}

// up sets IFF_UP, as `ip link set NAME up` does.
func up(name string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], name)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

// readSectors does the read command; arg is "DISK SECTOR COUNT". The
// initramfs has no devtmpfs, so it makes the device node from sysfs.
func readSectors(arg string) {
	var name string
	var sector, count int64
	if _, err := fmt.Sscan(arg, &name, &sector, &count); err != nil || count <= 0 {
		fmt.Printf("INIT ERROR: read %q: want DISK SECTOR COUNT\n", arg)
		return
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(read("/sys/block/"+name, "dev"), "%d:%d", &major, &minor); err != nil {
		fmt.Printf("INIT ERROR: read: no disk %s in /sys/block\n", name)
		return
	}
	node := "/dev/" + name
	if err := syscall.Mknod(node, syscall.S_IFBLK|0o600, int(major<<8|minor&0xff|(minor&^0xff)<<12)); err != nil && err != syscall.EEXIST {
		fmt.Printf("INIT ERROR: mknod %s: %v\n", node, err)
		return
	}
	fd, err := syscall.Open(node, syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		fmt.Printf("INIT ERROR: open %s: %v\n", node, err)
		return
	}
	defer syscall.Close(fd)
	// O_DIRECT wants a buffer aligned to the logical block size.
	raw := make([]byte, count*512+4096)
	off := int(4096 - uintptr(unsafe.Pointer(&raw[0]))%4096)
	buf := raw[off : off+int(count*512)]
	result := "ok"
	if _, err := syscall.Pread(fd, buf, sector*512); err != nil {
		result = "err=" + err.Error()
	}
	fmt.Printf("READ %s %d %d %s\n", name, sector, count, result)
}
