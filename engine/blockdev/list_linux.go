package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sysfs is where List and the safety checks read the kernel's view of block
// devices. The kernel reports sizes and starts there in 512-byte units
// whatever the logical sector size.
const sysfs = "/sys"

// List returns the disks the kernel knows, sorted by name, each with its
// partitions. RAM disks (ram*, zram*) and detached loop devices are left out;
// loop devices with a backing file are included, with Bus "loop".
func List() ([]Disk, error) {
	entries, err := os.ReadDir(sysfs + "/block")
	if err != nil {
		return nil, fmt.Errorf("list disks: %w; is /sys mounted?", err)
	}
	var disks []Disk
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		dir := sysfs + "/block/" + name
		d, err := readDisk(dir, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // went away while we looked, e.g. a loop device detached
		}
		if err != nil {
			return nil, fmt.Errorf("list disks: %s: %w", name, err)
		}
		if d.Bus == "loop" && (d.Size == 0 || d.BackingFile == "") {
			continue
		}
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

func readDisk(dir, name string) (Disk, error) {
	sectors, err := sysInt(dir + "/size")
	if err != nil {
		return Disk{}, err
	}
	d := Disk{
		Name:       name,
		Path:       devPath(dir, name),
		Size:       sectors * 512,
		SectorSize: 512,
		Removable:  sysString(dir+"/removable") == "1",
		ReadOnly:   sysString(dir+"/ro") == "1",
		Model:      sysString(dir + "/device/model"),
		Serial:     diskSerial(dir),
		Bus:        diskBus(dir, name),
	}
	if n, err := sysInt(dir + "/queue/logical_block_size"); err == nil && n > 0 {
		d.SectorSize = int(n)
	}
	if d.Bus == "loop" {
		d.BackingFile = loopBackingFile(dir)
	}
	if d.Model == "" || d.Serial == "" {
		udev := udevProps(dir)
		if d.Model == "" {
			d.Model = strings.ReplaceAll(udev["ID_MODEL"], "_", " ")
		}
		if d.Serial == "" {
			d.Serial = udev["ID_SERIAL_SHORT"]
		}
	}
	parts, err := readPartitions(dir)
	if err != nil {
		return Disk{}, err
	}
	d.Partitions = parts
	return d, nil
}

func readPartitions(dir string) ([]Partition, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []Partition
	for _, e := range entries {
		pdir := dir + "/" + e.Name()
		num, err := sysInt(pdir + "/partition")
		if err != nil {
			continue // not a partition: queue/, holders/, ...
		}
		start, err := sysInt(pdir + "/start")
		if err != nil {
			return nil, err
		}
		size, err := sysInt(pdir + "/size")
		if err != nil {
			return nil, err
		}
		parts = append(parts, Partition{
			Name:   e.Name(),
			Path:   devPath(pdir, e.Name()),
			Number: int(num),
			Start:  start * 512,
			Size:   size * 512,
		})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// diskBus tells how a disk is attached from where its sysfs directory sits
// in the device tree, e.g. /sys/devices/pci0000:00/.../usb2/.../block/sdb.
func diskBus(dir, name string) string {
	target, err := filepath.EvalSymlinks(dir)
	if err != nil {
		target = dir
	}
	switch {
	case strings.HasPrefix(name, "loop"):
		return "loop"
	case strings.Contains(target, "/usb"):
		// Before "scsi": USB sticks are driven as SCSI disks.
		return "usb"
	case strings.HasPrefix(name, "nvme") || strings.Contains(target, "/nvme"):
		return "nvme"
	case strings.Contains(target, "/ata"):
		return "sata"
	case strings.HasPrefix(name, "vd"):
		return "virtio"
	case strings.HasPrefix(name, "mmcblk") || strings.Contains(target, "/mmc_host/"):
		return "mmc"
	case strings.Contains(target, "/host") && strings.Contains(target, "/target"):
		// SCSI, SAS, and virtio-scsi disks (which are driven as SCSI).
		return "scsi"
	}
	return ""
}

// diskSerial tries the places drivers put a serial number: NVMe and MMC in
// device/serial, virtio-blk in serial, SCSI/SATA in VPD page 0x80.
func diskSerial(dir string) string {
	for _, f := range []string{"/device/serial", "/serial"} {
		if s := sysString(dir + f); s != "" {
			return s
		}
	}
	if b, err := os.ReadFile(dir + "/device/vpd_pg80"); err == nil && len(b) > 4 && b[1] == 0x80 {
		n := int(b[2])<<8 | int(b[3])
		b = b[4:]
		if n < len(b) {
			b = b[:n]
		}
		return string(bytes.TrimSpace(bytes.TrimRight(b, "\x00")))
	}
	return ""
}

// udevProps reads the properties udev stored for a device, if udev runs.
func udevProps(dir string) map[string]string {
	dev := sysString(dir + "/dev")
	if dev == "" {
		return nil
	}
	b, err := os.ReadFile("/run/udev/data/b" + dev)
	if err != nil {
		return nil
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(line, "E:"); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				props[k] = v
			}
		}
	}
	return props
}

func loopBackingFile(dir string) string {
	return sysString(dir + "/loop/backing_file")
}

// sysString reads a one-line sysfs attribute; "" when it is missing.
func sysString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func sysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// sysDev reads a sysfs "dev" attribute, "MAJOR:MINOR".
func sysDev(dir string) (uint64, error) {
	b, err := os.ReadFile(dir + "/dev")
	if err != nil {
		return 0, err
	}
	return parseDev(strings.TrimSpace(string(b)))
}

func parseDev(s string) (uint64, error) {
	maj, mnr, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("bad device number %q", s)
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(mnr, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad device number %q", s)
	}
	return unix.Mkdev(uint32(ma), uint32(mi)), nil
}
