package blockdev

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// MountPoints returns where the device at path, any of its partitions, or
// anything stacked on them (device-mapper, LVM, RAID: sysfs holders) is
// mounted, read from /proc/self/mountinfo. Active swap on them is reported as
// "[SWAP]", as lsblk does. For a plain file it reports the same for the loop
// devices backed by that file. The slice is empty, not nil, when nothing is
// mounted.
func MountPoints(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, safetyError("mount points", path, err)
	}
	loops, err := listLoops()
	if err != nil {
		return nil, err
	}
	roots, err := rootDevs(path, fi, loops)
	if err != nil {
		return nil, err
	}
	set := devSet{}
	for _, r := range roots {
		set.addStack(r)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	points := []string{}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			points = append(points, p)
		}
	}
	for _, m := range mounts {
		if set[m.dev] || set.hasSource(m.source) {
			add(m.mountPoint)
		}
	}
	swaps, err := readSwaps()
	if err != nil {
		return nil, err
	}
	for _, s := range swaps {
		if set.hasSource(s) {
			add("[SWAP]")
		}
	}
	return points, nil
}

// Holds reports whether the file at filePath is stored on the device at
// devicePath: on the device itself, one of its partitions, anything stacked on
// them (LVM, RAID), or a loop device backed by a file stored there. When
// devicePath is a plain file, it reports whether filePath is that same file
// or is stored on a loop device backed by it. filePath need not exist yet:
// then its nearest existing parent directory is asked about.
//
// The restore engine uses it to refuse restoring onto the disk that holds
// the image, and backup to refuse writing its output inside the source.
func Holds(devicePath, filePath string) (bool, error) {
	dfi, err := os.Stat(devicePath)
	if err != nil {
		return false, safetyError("holds", devicePath, err)
	}
	_, ffi, err := existingPath(filePath)
	if err != nil {
		return false, safetyError("holds", filePath, err)
	}
	if dfi.Mode().IsRegular() && os.SameFile(dfi, ffi) {
		return true, nil
	}
	// One listing of the loop devices serves every question below.
	loops, err := listLoops()
	if err != nil {
		return false, err
	}
	roots, err := rootDevs(devicePath, dfi, loops)
	if err != nil {
		return false, err
	}
	// Writing the device writes whatever lies beneath it: a loop
	// device (or a partition of one, or a mapping built on one) backed
	// by the file itself.
	below := devSet{}
	for _, r := range roots {
		below.addLower(r)
	}
	for _, l := range loops {
		if below[l.dev] && l.backing != nil && os.SameFile(l.backing, ffi) {
			return true, nil
		}
	}
	set := devSet{}
	for _, r := range roots {
		set.addStack(r)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return false, err
	}
	set.addLoopsOnSet(mounts, loops)
	return set.holdsFile(ffi, mounts), nil
}

// safetyError names the path and, for the usual causes, what to do.
func safetyError(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg = `no such disk or file; run "lifeboat disks" to list disks`
	case errors.Is(err, fs.ErrPermission):
		msg = "permission denied; run as root"
	}
	return &os.PathError{Op: op, Path: path, Err: &hintError{msg: msg, errs: []error{err}}}
}

// rootDevs returns the block devices a path stands for: a block device
// itself, or the loop devices a plain file is attached to.
func rootDevs(path string, fi fs.FileInfo, loops []loopDev) ([]uint64, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no stat information", path)
	}
	switch {
	case fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0:
		return []uint64{uint64(st.Rdev)}, nil
	case fi.Mode().IsRegular():
		var devs []uint64
		for _, l := range loops {
			if l.backing != nil && os.SameFile(l.backing, fi) {
				devs = append(devs, l.dev)
			}
		}
		return devs, nil
	}
	return nil, notDevice(path, fi)
}

// devSet is a set of block device numbers.
type devSet map[uint64]bool

// addStack adds dev, its partitions and, recursively, its holders (the
// device-mapper and md devices built on it) and their partitions.
func (s devSet) addStack(dev uint64) {
	if s[dev] {
		return
	}
	s[dev] = true
	dir := fmt.Sprintf("%s/dev/block/%s", sysfs, formatDev(dev))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // not in sysfs (gone, or sysfs not mounted): just dev itself
	}
	for _, e := range entries {
		if _, err := os.Stat(dir + "/" + e.Name() + "/partition"); err == nil {
			if p, err := sysDev(dir + "/" + e.Name()); err == nil {
				s.addStack(p)
			}
		}
	}
	holders, _ := os.ReadDir(dir + "/holders")
	for _, h := range holders {
		if hd, err := sysDev(sysfs + "/class/block/" + h.Name()); err == nil {
			s.addStack(hd)
		}
	}
}

// addLower adds dev and, recursively, what it is built on: the disk a
// partition belongs to, and the devices a device-mapper or md device sits
// on (its slaves).
func (s devSet) addLower(dev uint64) {
	if s[dev] {
		return
	}
	s[dev] = true
	dir := fmt.Sprintf("%s/dev/block/%s", sysfs, formatDev(dev))
	if _, err := os.Stat(dir + "/partition"); err == nil {
		if p, err := sysDev(dir + "/.."); err == nil {
			s.addLower(p)
		}
	}
	slaves, _ := os.ReadDir(dir + "/slaves")
	for _, sl := range slaves {
		if d, err := sysDev(sysfs + "/class/block/" + sl.Name()); err == nil {
			s.addLower(d)
		}
	}
}

// hasSource reports whether a mount source or swap file name is a block
// device in the set. Filesystems such as btrfs report an anonymous device
// number in mountinfo, so the source is the only link to the disk.
func (s devSet) hasSource(source string) bool {
	if !strings.HasPrefix(source, "/") {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(source, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFBLK {
		return false
	}
	return s[uint64(st.Rdev)]
}

// holdsFile reports whether the file's filesystem lives on a device in the
// set, looking through anonymous device numbers (btrfs) to the mount source.
func (s devSet) holdsFile(fi fs.FileInfo, mounts []mountEntry) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	dev := uint64(st.Dev)
	if s[dev] {
		return true
	}
	for _, m := range mounts {
		if m.dev == dev && s.hasSource(m.source) {
			return true
		}
	}
	return false
}

// addLoopsOnSet adds loop devices whose backing file is stored on a device
// in the set, until nothing changes: an image inside an ISO that is loop
// mounted from the disk is still on the disk.
func (s devSet) addLoopsOnSet(mounts []mountEntry, loops []loopDev) {
	for changed := true; changed; {
		changed = false
		for _, l := range loops {
			if !s[l.dev] && l.backing != nil && s.holdsFile(l.backing, mounts) {
				s.addStack(l.dev)
				changed = true
			}
		}
	}
}

type loopDev struct {
	path    string      // /dev/loopN
	dev     uint64      // its device number
	backing fs.FileInfo // the backing file; nil if it is gone
}

// listLoops returns the attached loop devices.
func listLoops() ([]loopDev, error) {
	entries, err := os.ReadDir(sysfs + "/block")
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w; is /sys mounted?", err)
	}
	var loops []loopDev
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		dir := sysfs + "/block/" + e.Name()
		file := loopBackingFile(dir)
		if file == "" {
			continue
		}
		dev, err := sysDev(dir)
		if err != nil {
			continue
		}
		l := loopDev{path: devPath(dir, e.Name()), dev: dev}
		// A deleted backing file is shown with this suffix; it can no
		// longer be named, so nothing can be compared against it.
		if !strings.HasSuffix(file, " (deleted)") {
			if fi, err := os.Stat(file); err == nil {
				l.backing = fi
			}
		}
		loops = append(loops, l)
	}
	return loops, nil
}

// loopsBackedBy returns the loop devices attached to the file fi.
func loopsBackedBy(fi fs.FileInfo) ([]string, error) {
	loops, err := listLoops()
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, l := range loops {
		if l.backing != nil && os.SameFile(l.backing, fi) {
			paths = append(paths, l.path)
		}
	}
	return paths, nil
}

type mountEntry struct {
	dev        uint64 // st_dev of files on this mount
	mountPoint string
	fsType     string
	source     string // e.g. /dev/sda1, or "tmpfs"
}

func readMountinfo() ([]mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w; is /proc mounted?", err)
	}
	return parseMountinfo(b)
}

// parseMountinfo parses proc(5) mountinfo lines:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountinfo(b []byte) ([]mountEntry, error) {
	var mounts []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("read mounts: bad mountinfo line %q", line)
		}
		dev, err := parseDev(fields[2])
		if err != nil {
			return nil, fmt.Errorf("read mounts: %w in line %q", err, line)
		}
		mounts = append(mounts, mountEntry{
			dev:        dev,
			mountPoint: unescapeOctal(fields[4]),
			fsType:     fields[sep+1],
			source:     unescapeOctal(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return mounts, nil
}

// readSwaps returns the active swap devices and files from /proc/swaps.
func readSwaps() ([]string, error) {
	b, err := os.ReadFile("/proc/swaps")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // kernel without swap support
	}
	if err != nil {
		return nil, fmt.Errorf("read swaps: %w", err)
	}
	var swaps []string
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] { // the first is a header
		if f := strings.Fields(line); len(f) > 0 {
			swaps = append(swaps, unescapeOctal(f[0]))
		}
	}
	return swaps, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs, newlines
// and backslashes in mount points and sources.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}
