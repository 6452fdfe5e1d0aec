package blockdev

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests use real loop devices, filesystems and mounts, so they need
// root, /dev/loop-control, util-linux (losetup, sfdisk, partx) and e2fsprogs
// (mkfs.ext4). They skip, saying why, where losetup cannot attach a file.

// run runs a command and fails the test with its argv and output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (apt-get install util-linux fdisk e2fsprogs): %v", name, err)
	}
}

// attachLoop attaches file to a free loop device and detaches it when the
// test ends, even if it fails.
func attachLoop(t *testing.T, file string, partscan bool) string {
	t.Helper()
	needTool(t, "losetup")
	args := []string{"--find", "--show"}
	if partscan {
		args = append(args, "--partscan")
	}
	out, err := exec.Command("losetup", append(args, file)...).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach a loop device (needs root and /dev/loop-control): losetup %s: %v: %s",
			strings.Join(append(args, file), " "), err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Logf("attached %s to %s", file, loop)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", loop, err, out)
		}
	})
	return loop
}

// mountT mounts dev on a new directory and unmounts it when the test ends.
// Cleanups run last-in first-out, so this unmounts before the loop device
// it sits on is detached.
func mountT(t *testing.T, dev string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir()) // mountinfo shows real paths
	if err != nil {
		t.Fatal(err)
	}
	run(t, "mount", dev, dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func mkfsExt4(t *testing.T, dev string) {
	t.Helper()
	needTool(t, "mkfs.ext4")
	run(t, "mkfs.ext4", "-q", "-F", dev)
}

func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		t.Fatal(err)
	}
	return p
}

func findDisk(t *testing.T, path string) Disk {
	t.Helper()
	disks, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(disks, func(a, b Disk) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("List is not sorted by name: %v", disks)
	}
	for _, d := range disks {
		if strings.HasPrefix(d.Name, "ram") || strings.HasPrefix(d.Name, "zram") || (d.Bus == "loop" && d.Size == 0) {
			t.Errorf("List includes %s (size %d), which it should skip", d.Name, d.Size)
		}
	}
	for _, d := range disks {
		if d.Path == path {
			return d
		}
	}
	t.Fatalf("List does not include %s: %+v", path, disks)
	return Disk{}
}

func TestLoopDevice(t *testing.T) {
	const size = 32 << 20
	img := sparseFile(t, size)
	loop := attachLoop(t, img, false)

	t.Run("open", func(t *testing.T) {
		d := openT(t, loop, ReadWrite)
		if !d.IsBlock || d.Size != size || d.SectorSize != 512 {
			t.Errorf("Open(%s) = IsBlock %v, Size %d, SectorSize %d; want true, %d, 512", loop, d.IsBlock, d.Size, d.SectorSize, size)
		}
		id, err := d.ID()
		if err != nil || !id.Block || id.Inode != 0 {
			t.Errorf("ID = %v, %v; want a block device", id, err)
		}
		if want := sysString("/sys/class/block/" + filepath.Base(loop) + "/dev"); !strings.HasSuffix(id.String(), " "+want) {
			t.Errorf("ID = %q, want block %s", id, want)
		}

		want := bytes.Repeat([]byte("lifeboat"), 512)
		if _, err := d.WriteAt(want, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := d.DropCache(); err != nil {
			t.Fatalf("DropCache: %v", err)
		}
		got := make([]byte, len(want))
		if _, err := d.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read back from %s: %v, equal %v", loop, err, bytes.Equal(got, want))
		}
		// The loop device writes through to its backing file.
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read back from %s: %v, equal %v", img, err, bytes.Equal(got, want))
		}
		if err := d.Zero(); !errors.Is(err, ErrNotFile) || !strings.Contains(err.Error(), loop) {
			t.Errorf("Zero on a block device: %v, want ErrNotFile naming %s", err, loop)
		}
	})

	t.Run("list", func(t *testing.T) {
		disk := findDisk(t, loop)
		if disk.Bus != "loop" || disk.Size != size || disk.SectorSize != 512 || disk.BackingFile != img || disk.Name != filepath.Base(loop) {
			t.Errorf("List entry %+v; want Bus loop, Size %d, SectorSize 512, BackingFile %s", disk, size, img)
		}
	})

	t.Run("not mounted", func(t *testing.T) {
		for _, p := range []string{loop, img} {
			if got, err := MountPoints(p); err != nil || got == nil || len(got) != 0 {
				t.Errorf("MountPoints(%s) = %#v, %v; want an empty slice", p, got, err)
			}
		}
	})

	// The image file is attached, so it is busy even before it is mounted.
	if d, err := Open(img, ReadWriteExclusive); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), loop) {
		if err == nil {
			d.Close()
		}
		t.Errorf("Open(%s, ReadWriteExclusive) while attached to %s: %v; want ErrBusy naming the loop device", img, loop, err)
	}

	mkfsExt4(t, loop)
	mnt := mountT(t, loop)
	inside := filepath.Join(mnt, "backup.img")
	if err := os.WriteFile(inside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "elsewhere.img")

	t.Run("mounted", func(t *testing.T) {
		for _, p := range []string{loop, img} {
			if got, err := MountPoints(p); err != nil || !reflect.DeepEqual(got, []string{mnt}) {
				t.Errorf("MountPoints(%s) = %q, %v; want [%s]", p, got, err, mnt)
			}
		}
	})

	t.Run("holds", func(t *testing.T) {
		tests := []struct {
			dev, file string
			want      bool
		}{
			{loop, inside, true},
			{loop, filepath.Join(mnt, "not", "yet", "made.img"), true},
			{loop, mnt, true},
			{img, inside, true}, // stored on the loop device backed by img
			{img, img, true},
			{loop, elsewhere, false},
			{loop, img, true}, // img is not on the loop device, but writing the loop device writes img
		}
		for _, tt := range tests {
			if got, err := Holds(tt.dev, tt.file); err != nil || got != tt.want {
				t.Errorf("Holds(%s, %s) = %v, %v; want %v", tt.dev, tt.file, got, err, tt.want)
			}
		}
	})

	t.Run("exclusive", func(t *testing.T) {
		d, err := Open(loop, ReadWriteExclusive)
		if err == nil {
			d.Close()
			t.Fatalf("Open(%s, ReadWriteExclusive) succeeded while mounted on %s", loop, mnt)
		}
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), loop) || !strings.Contains(err.Error(), "unmount it first") {
			t.Errorf("Open(%s, ReadWriteExclusive) = %v; want ErrBusy naming the device and saying to unmount", loop, err)
		}
		// A plain ReadWrite open is still allowed: the kernel does not
		// stop it, which is why the engine checks MountPoints too.
		openT(t, loop, ReadWrite)
	})
}

func TestLoopPartitions(t *testing.T) {
	needTool(t, "sfdisk")
	img := sparseFile(t, 64<<20)
	// Sectors of 512 bytes: p1 at 1 MiB for 10 MiB, p2 at 11 MiB for 20 MiB.
	script := "label: dos\nstart=2048, size=20480, type=83\nstart=22528, size=40960, type=83\n"
	cmd := exec.Command("sfdisk", "--quiet", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s", img, err, out)
	}
	loop := attachLoop(t, img, true)
	waitPartitions(t, loop, 2)

	disk := findDisk(t, loop)
	want := []Partition{
		{Name: disk.Name + "p1", Path: loop + "p1", Number: 1, Start: 2048 * 512, Size: 20480 * 512},
		{Name: disk.Name + "p2", Path: loop + "p2", Number: 2, Start: 22528 * 512, Size: 40960 * 512},
	}
	if !reflect.DeepEqual(disk.Partitions, want) {
		t.Fatalf("partitions of %s:\n got %+v\nwant %+v", loop, disk.Partitions, want)
	}

	p2 := openT(t, loop+"p2", ReadOnly)
	if !p2.IsBlock || p2.Size != want[1].Size {
		t.Errorf("Open(%sp2) = IsBlock %v, Size %d; want true, %d", loop, p2.IsBlock, p2.Size, want[1].Size)
	}
	p2.Close()

	mkfsExt4(t, loop+"p2")
	mnt := mountT(t, loop+"p2")
	file := filepath.Join(mnt, "image.lbi")

	tests := []struct {
		path  string
		mnts  []string
		holds bool
	}{
		{loop, []string{mnt}, true}, // the whole disk: a partition is mounted
		{loop + "p1", []string{}, false},
		{loop + "p2", []string{mnt}, true},
		{img, []string{mnt}, true}, // the image file behind the disk
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			if got, err := MountPoints(tt.path); err != nil || !reflect.DeepEqual(got, tt.mnts) {
				t.Errorf("MountPoints(%s) = %q, %v; want %q", tt.path, got, err, tt.mnts)
			}
			if got, err := Holds(tt.path, file); err != nil || got != tt.holds {
				t.Errorf("Holds(%s, %s) = %v, %v; want %v", tt.path, file, got, err, tt.holds)
			}
		})
	}

	// The kernel refuses an exclusive claim on a disk one of whose
	// partitions is mounted.
	if d, err := Open(loop, ReadWriteExclusive); !errors.Is(err, ErrBusy) {
		if err == nil {
			d.Close()
		}
		t.Errorf("Open(%s, ReadWriteExclusive) with p2 mounted: %v; want ErrBusy", loop, err)
	}
	d := openT(t, loop+"p1", ReadWriteExclusive) // p1 is free
	d.Close()
}

// waitPartitions waits for the kernel to show n partitions of loop in sysfs.
// losetup --partscan asks for a scan, but on some kernels the scan runs
// before the device has its size and finds nothing; partx then adds them.
func waitPartitions(t *testing.T, loop string, n int) {
	t.Helper()
	last := filepath.Join("/sys/class/block", filepath.Base(loop), filepath.Base(loop)+"p"+string(rune('0'+n)))
	seen := func() bool {
		for range 20 {
			if _, err := os.Stat(last); err == nil {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	if seen() {
		return
	}
	needTool(t, "partx")
	t.Logf("%s: no partitions after losetup --partscan; adding them with partx", loop)
	run(t, "partx", "--add", loop)
	if !seen() {
		t.Fatalf("%s: the kernel shows no partition %d after losetup --partscan and partx --add", loop, n)
	}
}

func TestListSkipsRAMDisks(t *testing.T) {
	disks, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range disks {
		t.Logf("%s %s bus=%q model=%q serial=%q size=%d sector=%d parts=%d", d.Name, d.Path, d.Bus, d.Model, d.Serial, d.Size, d.SectorSize, len(d.Partitions))
		if strings.HasPrefix(d.Name, "ram") || strings.HasPrefix(d.Name, "zram") {
			t.Errorf("List includes RAM disk %s", d.Name)
		}
		if !strings.HasPrefix(d.Path, "/dev/") {
			t.Errorf("%s: Path %q is not under /dev", d.Name, d.Path)
		}
	}
}

// Defect 4 of issue 11: a loop device backed by the image itself (or a
// partition of one) holds the image: writing it destroys the image.
func TestHoldsItsOwnBackingFile(t *testing.T) {
	needTool(t, "sfdisk")
	img := sparseFile(t, 16<<20)
	cmd := exec.Command("sfdisk", "--quiet", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=8192, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s", img, err, out)
	}
	other := sparseFile(t, 1<<20)
	loop := attachLoop(t, img, true)
	waitPartitions(t, loop, 1)
	for _, tt := range []struct {
		dev, file string
		holds     bool
	}{
		{loop, img, true},
		{loop + "p1", img, true},
		{loop, other, false},
		{loop + "p1", other, false},
	} {
		if got, err := Holds(tt.dev, tt.file); err != nil || got != tt.holds {
			t.Errorf("Holds(%s, %s) = %v, %v; want %v", tt.dev, tt.file, got, err, tt.holds)
		}
	}
}
