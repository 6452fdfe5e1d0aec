//go:build linux

package rescue

import (
	"context"
	"fmt"

	"github.com/lifeboat-rescue/lifeboat/internal/command"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

type mount struct {
	dev, dir, fstype, label, uuid string
	disk                          string // the whole disk it is on
	partName                      string // GPT partition name, also matched by LABEL=
}

// mountNew mounts every filesystem it can read on disks it has not seen,
// read-only, at MountRoot/<device name> (for example /mnt/sdb1), and
// returns how many disks were new.
func (e *env) mountNew(disks []engine.DiskInfo) int {
	n := 0
	for _, d := range disks {
		if d.Bus == "loop" || strings.HasPrefix(d.Name, "zram") || e.known[d.Path] {
			continue
		}
		e.known[d.Path] = true
		n++
		if len(d.Partitions) == 0 {
			e.tryMount(d.Path, d.Path, d.Name, "", d.FS)
		}
		for _, p := range d.Partitions {
			e.tryMount(d.Path, p.Path, p.Name, p.Label, p.FS)
		}
	}
	return n
}

// watch goes on loading drivers for devices that appear after ready (USB
// enumeration is slow), shows and mounts new disks, and closes e.settled
// once nothing new has appeared for a while.
func (e *env) watch(seen []engine.DiskInfo) {
	defer close(e.settled)
	start, last := time.Now(), time.Now()
	quiet := 1500 * time.Millisecond
	if e.drv.usbSeen() {
		quiet = 3 * time.Second
	}
	for time.Since(last) < quiet && time.Since(start) < 20*time.Second {
		time.Sleep(200 * time.Millisecond)
		e.mu.Lock()
		if e.drv.coldplug() > 0 {
			last = time.Now()
		}
		disks, err := engine.Disks()
		if err == nil {
			var fresh []engine.DiskInfo
			for _, d := range disks {
				if !e.known[d.Path] && d.Bus != "loop" {
					fresh = append(fresh, d)
				}
			}
			if e.mountNew(fresh) > 0 {
				last = time.Now()
				e.showDisks(fresh)
				for _, im := range e.findImages() {
					e.say("image: %s", im)
				}
			}
		}
		e.mu.Unlock()
	}
}

func (e *env) tryMount(disk, dev, name, partName string, fs *images.FS) {
	var fstype, label, uuid string
	if fs != nil {
		fstype, label, uuid = fs.Type, fs.Label, fs.UUID
	} else if strings.HasPrefix(name, "sr") && isISO9660(dev) {
		fstype = "iso9660"
	} else {
		return
	}
	dir := filepath.Join(e.o.MountRoot, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, m := range fsModules[fstype] {
		e.drv.load(m)
	}
	var err error
	switch fstype {
	case "ext2", "ext3", "ext4":
		err = unix.Mount(dev, dir, "ext4", unix.MS_RDONLY, "noload")
	case "vfat", "exfat", "iso9660":
		err = unix.Mount(dev, dir, fstype, unix.MS_RDONLY, "")
	case "ntfs":
		// Debian's kernel has no NTFS driver: ntfs-3g over FUSE.
		err = command.Combined(context.Background(), exec.Command("ntfs-3g", "-o", "ro", dev, dir))
	default:
		os.Remove(dir)
		return
	}
	if err != nil {
		e.say("mount %s (%s): %v", dev, fstype, err)
		os.Remove(dir)
		return
	}
	e.mounts = append(e.mounts, mount{dev: dev, dir: dir, fstype: fstype, label: label, uuid: uuid, disk: disk, partName: partName})
	e.say("mounted %s (%s %q) read-only at %s", dev, fstype, label, dir)
}

// isISO9660 looks for the CD001 signature; an empty drive fails to read.
func isISO9660(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 5)
	_, err = f.ReadAt(b, 32769)
	return err == nil && string(b) == "CD001"
}

// fsModules are loaded before the first mount of each filesystem type
// (ext4's crc32c is a soft dependency that the loader does not follow).
var fsModules = map[string][]string{
	"ext2": {"crc32c_generic", "ext4"}, "ext3": {"crc32c_generic", "ext4"}, "ext4": {"crc32c_generic", "ext4"},
	"vfat": {"nls_cp437", "nls_ascii", "nls_iso8859_1", "nls_utf8", "vfat"}, "exfat": {"nls_utf8", "exfat"},
	"iso9660": {"isofs"}, "ntfs": {"fuse"},
}

// unmountDisk releases our read-only mounts on a disk about to be written.
func (e *env) unmountDisk(disk string) error {
	var keep []mount
	for _, m := range e.mounts {
		if m.disk != disk {
			keep = append(keep, m)
			continue
		}
		if err := unix.Unmount(m.dir, 0); err != nil {
			return fmt.Errorf("unmount %s from %s: %w", m.dev, m.dir, err)
		}
	}
	e.mounts = keep
	return nil
}

var splitPart = regexp.MustCompile(`\.\d{3}\.lbi$`)

// findImages lists *.lbi first parts on the mounted filesystems, a few
// folders deep.
func (e *env) findImages() []string {
	var out []string
	for _, m := range e.mounts {
		filepath.WalkDir(m.dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.Count(strings.TrimPrefix(p, m.dir), "/") > 3 {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".lbi") && !splitPart.MatchString(p) {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

func (e *env) showDisks(disks []engine.DiskInfo) {
	for _, d := range disks {
		if d.Bus == "loop" {
			continue
		}
		line := fmt.Sprintf("disk: %s %s bus=%s", d.Path, engine.HumanBytes(d.Size), d.Bus)
		if d.Model != "" {
			line += fmt.Sprintf(" model=%q", d.Model)
		}
		if d.Serial != "" {
			line += " serial=" + d.Serial
		}
		if d.Table != "" {
			line += " table=" + d.Table
		}
		e.say("%s", line)
		for _, p := range d.Partitions {
			l := fmt.Sprintf("  %s %s", p.Path, engine.HumanBytes(p.Size))
			if p.FS != nil {
				l += fmt.Sprintf(" %s %q", p.FS.Type, p.FS.Label)
			}
			e.say("%s", l)
		}
	}
}
