//go:build linux

package main

// Acceptance: a GPT disk with an ESP (FAT32), ext4 and NTFS, restored or
// cloned to a disk 50% larger with --layout fill, has partitions aligned
// to 1 MiB, the last one and its filesystem grown, a table sgdisk -v finds
// clean, checkers clean and the same files. Same for MBR, whose boot code
// and post-MBR gap (GRUB's core) survive. Also --grow, --new-ids, --layout
// manual and keep, refusals, clone part and single-partition restore.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

const (
	mib    = 1 << 20
	sector = 512
)

// The source disk: 300 MiB, p1 ESP 40 MiB at 1 MiB, p2 ext4 120 MiB,
// p3 NTFS 100 MiB, then 39 MiB free.
const (
	srcDiskSize = 300 * mib
	bigDiskSize = 450 * mib
)

var srcLayout = []struct {
	start, size int64 // sectors
}{
	{2048, 40 * mib / sector},
	{2048 + 40*mib/sector, 120 * mib / sector},
	{2048 + 160*mib/sector, 100 * mib / sector},
}

// How each partition is checked and read back: FAT through mtools, ext4
// through a loop mount, NTFS through ntfs-3g.
var (
	espCase  = fstest.Case{Name: "esp", FS: "vfat", Access: fstest.ViaMtools, Fsck: []string{"fsck.vfat", "-n"}}
	rootCase = fstest.Case{Name: "root", FS: "ext4", Access: fstest.ViaKernel, Fsck: []string{"e2fsck", "-fn"}}
	dataCase = fstest.Case{Name: "data", FS: "ntfs", Access: fstest.ViaNTFS3G, Fsck: []string{"ntfsfix", "-n"}}
)

type srcPart struct {
	c    fstest.Case
	file string            // the filesystem, as made before it went into the disk
	want map[string]string // its files' hashes
}

type srcDisk struct {
	path, table string
	parts       []srcPart // partition N is parts[N-1]
	head        []byte    // the first MiB: MBR boot code and the gap
}

var (
	bootCode = bytes.Repeat([]byte("BOOTCODE"), 55)[:440]
	grubCore = bytes.Repeat([]byte("GRUBCORE"), 2047*sector/8)
)

// buildDisk makes the source disk with a gpt or mbr table. Each filesystem
// is made in its own file and copied in at its partition's offset: loop
// devices show no partitions on this kernel.
func buildDisk(t *testing.T, dir, table string) *srcDisk {
	t.Helper()
	d := &srcDisk{path: filepath.Join(dir, "disk.img"), table: table}
	if err := os.WriteFile(d.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(d.path, srcDiskSize); err != nil {
		t.Fatal(err)
	}
	if table == "gpt" {
		fstest.Run(t, fstest.Tool(t, "sgdisk"),
			fmt.Sprintf("-n1:%d:+40M", srcLayout[0].start), "-t1:ef00", "-c1:ESP",
			fmt.Sprintf("-n2:%d:+120M", srcLayout[1].start), "-t2:8300", "-c2:root",
			fmt.Sprintf("-n3:%d:+100M", srcLayout[2].start), "-t3:0700", "-c3:data", d.path)
	} else {
		var script strings.Builder
		script.WriteString("label: dos\n")
		for i, typ := range []string{"ef", "83", "7"} {
			fmt.Fprintf(&script, "start=%d, size=%d, type=%s\n", srcLayout[i].start, srcLayout[i].size, typ)
		}
		cmd := exec.Command(fstest.Tool(t, "sfdisk"), "-q", d.path)
		cmd.Stdin = strings.NewReader(script.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
	}

	// p1: FAT32, files through mtools.
	esp := newFile(t, filepath.Join(dir, "p1.fs"), srcLayout[0].size*sector)
	fstest.Run(t, fstest.Tool(t, "mkfs.vfat"), "-F", "32", "-n", "LBESP", esp)
	tree := filepath.Join(dir, "tree1")
	fstest.WriteTree(t, tree, 11, 12*mib)
	ents, _ := os.ReadDir(tree)
	for _, e := range ents {
		fstest.Run(t, fstest.Tool(t, "mcopy"), "-i", esp, "-s", "-Q", filepath.Join(tree, e.Name()), "::/")
	}
	d.parts = append(d.parts, srcPart{espCase, esp, fstest.HashTree(t, tree)})

	// p2: ext4 made with its files.
	root := newFile(t, filepath.Join(dir, "p2.fs"), srcLayout[1].size*sector)
	tree = filepath.Join(dir, "tree2")
	fstest.WriteTree(t, tree, 12, 60*mib)
	fstest.Run(t, fstest.Tool(t, "mkfs.ext4"), "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", tree, root)
	d.parts = append(d.parts, srcPart{rootCase, root, fstest.HashTree(t, tree)})

	// p3: NTFS, files through ntfs-3g.
	data := newFile(t, filepath.Join(dir, "p3.fs"), srcLayout[2].size*sector)
	fstest.Run(t, fstest.Tool(t, "mkntfs"), "-F", "-Q", "-q", "-L", "data", data)
	tree = filepath.Join(dir, "tree3")
	fstest.WriteTree(t, tree, 13, 48*mib)
	mnt := fstest.Mount(t, dataCase, data, false)
	if err := os.CopyFS(mnt, os.DirFS(tree)); err != nil {
		t.Fatal(err)
	}
	fstest.Umount(t, mnt)
	d.parts = append(d.parts, srcPart{dataCase, data, fstest.HashTree(t, tree)})

	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, p := range d.parts {
		src, err := os.Open(p.file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.NewOffsetWriter(f, srcLayout[i].start*sector), src)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if table == "mbr" {
		// What a BIOS boot loader leaves: code before the partition table,
		// its core image in the gap before the first partition.
		if _, err := f.WriteAt(bootCode, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(grubCore, sector); err != nil {
			t.Fatal(err)
		}
	}
	d.head = make([]byte, mib)
	if _, err := f.ReadAt(d.head, 0); err != nil {
		t.Fatal(err)
	}
	return d
}

func newFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// ptable is what sfdisk -J says of a GPT or an MBR.
type ptable struct {
	Label      string
	ID         string
	LastLBA    int64 `json:"lastlba"`
	Partitions []struct {
		Start, Size int64
		Type, UUID  string
		Name        string
	}
}

func readTable(t *testing.T, img string) ptable {
	t.Helper()
	var v struct{ PartitionTable ptable }
	out := fstest.Run(t, fstest.Tool(t, "sfdisk"), "-J", img)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("sfdisk -J %s: %v\n%s", img, err, out)
	}
	return v.PartitionTable
}

// layoutWant is what one restore or clone must have done to the table.
type layoutWant struct {
	sameSize []int // partitions that keep their source size
	sizes    map[int]int64
	keep     bool // every start and size as in the source
	atEnd    int  // the partition that must end within the disk's last MiB
	grown    int  // the partition whose filesystem must fill it
	noFiles  bool // skip extracting and checking the filesystems
}

// checkDisk checks target against src and w: the table valid and aligned,
// the sizes asked for, each filesystem clean with the same files, and (MBR)
// the boot code and gap as they were. It returns the table.
func checkDisk(t *testing.T, src *srcDisk, target string, w layoutWant) ptable {
	t.Helper()
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	diskSectors := fi.Size() / sector
	if src.table == "gpt" {
		out, err := exec.Command(fstest.Tool(t, "sgdisk"), "-v", target).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("sgdisk -v %s: %v\n%s", target, err, out)
		}
	} else {
		out, err := exec.Command(fstest.Tool(t, "sfdisk"), "--verify", target).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("No errors detected")) || bytes.Contains(bytes.ToLower(out), []byte("warning")) {
			t.Errorf("sfdisk --verify %s: %v\n%s", target, err, out)
		}
	}
	pt := readTable(t, target)
	wantLabel := map[string]string{"gpt": "gpt", "mbr": "dos"}[src.table]
	if pt.Label != wantLabel || len(pt.Partitions) != len(src.parts) {
		t.Fatalf("table %s with %d partitions, want %s with %d: %+v", pt.Label, len(pt.Partitions), wantLabel, len(src.parts), pt)
	}
	lastUsable := diskSectors - 1
	if src.table == "gpt" {
		lastUsable = diskSectors - 34
		if pt.LastLBA != lastUsable {
			t.Errorf("last usable sector %d, want %d: the backup GPT is not at the end of the %d-sector disk", pt.LastLBA, lastUsable, diskSectors)
		}
	}
	var prevEnd int64
	for i, p := range pt.Partitions {
		n := i + 1
		t.Logf("p%d: start %d, size %d sectors (%d MiB)", n, p.Start, p.Size, p.Size*sector/mib)
		if p.Start%2048 != 0 {
			t.Errorf("p%d starts at sector %d, not a multiple of 2048 (1 MiB)", n, p.Start)
		}
		if p.Start < prevEnd || p.Start+p.Size-1 > lastUsable {
			t.Errorf("p%d [%d, %d) overlaps the previous one (ends %d) or passes the last usable sector %d", n, p.Start, p.Start+p.Size, prevEnd, lastUsable)
		}
		prevEnd = p.Start + p.Size
		if w.keep && (p.Start != srcLayout[i].start || p.Size != srcLayout[i].size) {
			t.Errorf("p%d at %d+%d, want it kept at %d+%d", n, p.Start, p.Size, srcLayout[i].start, srcLayout[i].size)
		}
		if want, ok := w.sizes[n]; ok && p.Size != want {
			t.Errorf("p%d is %d sectors, want %d", n, p.Size, want)
		}
	}
	for _, n := range w.sameSize {
		if got := pt.Partitions[n-1].Size; got != srcLayout[n-1].size {
			t.Errorf("p%d is %d sectors, want its source size %d", n, got, srcLayout[n-1].size)
		}
	}
	if w.atEnd != 0 {
		p := pt.Partitions[w.atEnd-1]
		if end := p.Start + p.Size - 1; lastUsable-end >= 2048 {
			t.Errorf("p%d ends at sector %d, %d sectors before the last usable %d: not grown to the end", w.atEnd, end, lastUsable-end, lastUsable)
		}
	}
	if src.table == "mbr" {
		head := make([]byte, mib)
		f, err := os.Open(target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(head, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(head[:440], src.head[:440]) {
			t.Errorf("MBR boot code (bytes 0..439) changed: %q", head[:32])
		}
		if !bytes.Equal(head[sector:], src.head[sector:]) {
			t.Errorf("the gap (sectors 1..2047, GRUB's core) changed")
		}
	}
	if w.noFiles {
		return pt
	}
	dir := t.TempDir()
	for i, sp := range src.parts {
		n := i + 1
		p := pt.Partitions[i]
		file := extract(t, target, p.Start, p.Size, filepath.Join(dir, fmt.Sprintf("p%d.img", n)))
		fstest.Check(t, sp.c, file)
		fstest.SameTree(t, fmt.Sprintf("%s p%d", filepath.Base(target), n), sp.want, fstest.ReadTree(t, sp.c, file))
		if n == w.grown {
			checkFSFills(t, sp.c, file, p.Size*sector)
		}
	}
	return pt
}

// extract copies sectors [start, start+size) of disk into a new file.
func extract(t *testing.T, disk string, start, size int64, to string) string {
	t.Helper()
	src, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, start*sector, size*sector)); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return to
}

// checkFSFills checks that the filesystem in file was grown to (within
// 4 MiB of) its partition's size.
func checkFSFills(t *testing.T, c fstest.Case, file string, partBytes int64) {
	t.Helper()
	var fsBytes int64
	switch c.FS {
	case "ext4":
		out := fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", file)
		fsBytes = fstest.E2fsField(t, out, "Block count") * fstest.E2fsField(t, out, "Block size")
	case "ntfs":
		// -f: ntfsresize marks the volume for a check by Windows' chkdsk
		// (Volume Flags 0x0001), which ntfsinfo otherwise refuses.
		out := fstest.Run(t, fstest.Tool(t, "ntfsinfo"), "-f", "-m", file)
		if m := regexp.MustCompile(`Volume Flags: (\S+)`).FindStringSubmatch(out); m != nil {
			t.Logf("ntfs: Volume Flags %s", m[1])
		}
		fsBytes = ntfsField(t, out, "Volume Size in Clusters") * ntfsField(t, out, "Cluster Size")
	default:
		t.Fatalf("cannot measure a %s", c.FS)
	}
	t.Logf("%s: filesystem %d bytes in a %d-byte partition", c.FS, fsBytes, partBytes)
	if fsBytes > partBytes || partBytes-fsBytes > 4*mib {
		t.Errorf("the %s is %d bytes (%d MiB) in a partition of %d (%d MiB): not grown to fill it", c.FS, fsBytes, fsBytes/mib, partBytes, partBytes/mib)
	}
}

// diskFixture is a source disk and its backup, shared by the subtests.
type diskFixture struct {
	dir string
	src *srcDisk
	img string
}

func newDiskFixture(t *testing.T, table string) *diskFixture {
	t.Helper()
	need(t, "sgdisk", "sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4", "mkntfs", "ntfs-3g", "e2fsck", "fsck.vfat", "ntfsfix", "ntfsinfo", "dumpe2fs")
	if os.Geteuid() != 0 {
		t.Skip("populating NTFS and reading ext4 back mount images: needs root")
	}
	fx := &diskFixture{dir: t.TempDir()}
	fx.src = buildDisk(t, fx.dir, table)
	fx.img = filepath.Join(fx.dir, "d.lbi")
	mustLB(t, nil, "backup", "disk", fx.src.path, "-o", fx.img)
	return fx
}

// bigDisk returns a new empty file of bigDiskSize.
func (fx *diskFixture) bigDisk(t *testing.T, name string) string {
	return newFile(t, filepath.Join(t.TempDir(), name), bigDiskSize)
}

// fillWant is what --layout fill must give: p1 and p2 as they were, p3
// grown to the end with its NTFS.
var fillWant = layoutWant{sameSize: []int{1, 2}, atEnd: 3, grown: 3}

func TestLayoutGPT(t *testing.T) {
	fx := newDiskFixture(t, "gpt")
	srcTable := readTable(t, fx.src.path)

	t.Run("fill", func(t *testing.T) {
		big := fx.bigDisk(t, "big.img")
		mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "fill", "--yes")
		pt := checkDisk(t, fx.src, big, fillWant)
		// Without --new-ids the GUIDs are kept.
		if pt.ID != srcTable.ID {
			t.Errorf("disk GUID %s, want the source's %s", pt.ID, srcTable.ID)
		}
		for i, p := range pt.Partitions {
			if s := srcTable.Partitions[i]; p.UUID != s.UUID || p.Type != s.Type || p.Name != s.Name {
				t.Errorf("p%d: GUID %s type %s name %q; want the source's %s %s %q", i+1, p.UUID, p.Type, p.Name, s.UUID, s.Type, s.Name)
			}
		}
	})

	t.Run("grow2", func(t *testing.T) {
		if testing.Short() {
			t.Skip("skipped with -short")
		}
		big := fx.bigDisk(t, "big.img")
		mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "fill", "--grow", "2", "--yes")
		pt := checkDisk(t, fx.src, big, layoutWant{sameSize: []int{1, 3}, atEnd: 3, grown: 2})
		if pt.Partitions[1].Size <= srcLayout[1].size {
			t.Errorf("p2 not grown: %d sectors", pt.Partitions[1].Size)
		}
	})

	t.Run("new-ids", func(t *testing.T) {
		big := fx.bigDisk(t, "big.img")
		mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "fill", "--new-ids", "--yes")
		pt := checkDisk(t, fx.src, big, layoutWant{sameSize: []int{1, 2}, atEnd: 3, noFiles: true})
		if pt.ID == srcTable.ID {
			t.Errorf("--new-ids kept the disk GUID %s", pt.ID)
		}
		for i, p := range pt.Partitions {
			if p.UUID == srcTable.Partitions[i].UUID {
				t.Errorf("--new-ids kept p%d's GUID %s", i+1, p.UUID)
			}
			if p.Type != srcTable.Partitions[i].Type {
				t.Errorf("--new-ids changed p%d's type to %s", i+1, p.Type)
			}
		}
	})

	t.Run("manual", func(t *testing.T) {
		if testing.Short() {
			t.Skip("skipped with -short")
		}
		big := fx.bigDisk(t, "big.img")
		mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "manual", "--size", "2=200M", "--yes")
		checkDisk(t, fx.src, big, layoutWant{sameSize: []int{1, 3}, sizes: map[int]int64{2: 200 * mib / sector}, grown: 2})
	})

	t.Run("keep", func(t *testing.T) {
		big := fx.bigDisk(t, "big.img")
		mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "keep", "--yes")
		checkDisk(t, fx.src, big, layoutWant{keep: true, noFiles: testing.Short()})
	})

	t.Run("too-small", func(t *testing.T) {
		small := filepath.Join(t.TempDir(), "small.img")
		if err := os.WriteFile(small, bytes.Repeat([]byte("untouched "), 200*mib/10), 0o644); err != nil {
			t.Fatal(err)
		}
		before := fileSum(t, small)
		for _, layout := range []string{"keep", "fill"} {
			// The partitions end at 261 MiB.
			r := lb(t, nil, "restore", fx.img, "--target", small, "--layout", layout, "--yes")
			if r.code != cli.ExitRefused {
				t.Errorf("--layout %s onto 200 MiB: exit code %d, want %d (refused)", layout, r.code, cli.ExitRefused)
			}
			if !strings.Contains(r.stderr, small) || !strings.Contains(r.stderr, "261 MiB") {
				t.Errorf("--layout %s: message does not name the target and the 261 MiB it needs: %s", layout, r.stderr)
			}
			if fileSum(t, small) != before {
				t.Fatalf("--layout %s: the refused target was written to", layout)
			}
		}
	})

	t.Run("clone-fill", func(t *testing.T) {
		if testing.Short() {
			t.Skip("skipped with -short")
		}
		big := fx.bigDisk(t, "big2.img")
		mustLB(t, nil, "clone", "disk", fx.src.path, "--target", big, "--layout", "fill", "--yes")
		checkDisk(t, fx.src, big, fillWant)
	})

	t.Run("clone-part", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.img")
		mustLB(t, nil, "clone", "part", fx.src.parts[1].file, "--target", other, "--yes")
		fstest.Check(t, rootCase, other)
		fstest.SameTree(t, "the cloned partition", fx.src.parts[1].want, fstest.ReadTree(t, rootCase, other))
	})

	t.Run("clone-onto-itself", func(t *testing.T) {
		before := fileSum(t, fx.src.path)
		r := lb(t, nil, "clone", "disk", fx.src.path, "--target", fx.src.path, "--yes")
		if r.code != cli.ExitRefused {
			t.Errorf("exit code %d, want %d (refused)", r.code, cli.ExitRefused)
		}
		if fileSum(t, fx.src.path) != before {
			t.Error("the source was written to")
		}
	})

	t.Run("restore-partition", func(t *testing.T) {
		part := filepath.Join(t.TempDir(), "part.img")
		r := mustLB(t, nil, "restore", fx.img, "--partition", "2", "--target", part, "--yes")
		if !regexp.MustCompile(`(?m)^Partition 2: ext4 "root", 120 MiB, .* written in .*, verified$`).MatchString(r.stdout) {
			t.Errorf("the summary does not give partition 2's result:\n%s", r.stdout)
		}
		fstest.Check(t, rootCase, part)
		fstest.SameTree(t, "the restored partition", fx.src.parts[1].want, fstest.ReadTree(t, rootCase, part))
	})

	// clone system: the ESP and the OS partition (p2 here; the NTFS p3 is
	// a data partition left behind), the OS partition grown to the end.
	t.Run("clone-system", func(t *testing.T) {
		target := fx.bigDisk(t, "sys.img")
		r := lb(t, nil, "clone", "system", fx.src.path, "--target", target, "--yes")
		if r.code == 0 || !strings.Contains(r.stderr, "--os N") {
			t.Errorf("with two candidate OS partitions, clone system must ask for --os N: exit %d, %s", r.code, r.stderr)
		}
		r = mustLB(t, nil, "clone", "system", fx.src.path, "--os", "2", "--target", target, "--yes")
		if !strings.Contains(r.stdout, "Partitions copied: [1 2]") {
			t.Errorf("summary: %s", r.stdout)
		}
		if out := fstest.Run(t, fstest.Tool(t, "sgdisk"), "-v", target); !strings.Contains(out, "No problems found") {
			t.Errorf("sgdisk -v: %s", out)
		}
		pt := readTable(t, target)
		if len(pt.Partitions) != 2 {
			t.Fatalf("%d partitions, want the ESP and the OS: %+v", len(pt.Partitions), pt.Partitions)
		}
		esp, root := pt.Partitions[0], pt.Partitions[1]
		if esp.Size != srcLayout[0].size || esp.Type != srcTable.Partitions[0].Type {
			t.Errorf("the ESP changed: %+v", esp)
		}
		if root.Start%2048 != 0 || pt.LastLBA-(root.Start+root.Size-1) >= 2048 {
			t.Errorf("the OS partition is not aligned or not grown to the end: %+v (last LBA %d)", root, pt.LastLBA)
		}
		dir := t.TempDir()
		for i, p := range pt.Partitions {
			sp := fx.src.parts[i]
			file := extract(t, target, p.Start, p.Size, filepath.Join(dir, fmt.Sprintf("p%d.img", i+1)))
			fstest.Check(t, sp.c, file)
			fstest.SameTree(t, fmt.Sprintf("system p%d", i+1), sp.want, fstest.ReadTree(t, sp.c, file))
			if i == 1 {
				checkFSFills(t, sp.c, file, p.Size*sector)
			}
		}
	})

	// Onto a disk that already has a partition: the image's partition 2
	// becomes a new partition in the unallocated space, the existing one
	// is not touched; with fill it takes the whole free region and its
	// filesystem grows.
	t.Run("restore-partition-into-free-space", func(t *testing.T) {
		disk := fx.bigDisk(t, "other.img")
		fstest.Run(t, fstest.Tool(t, "sgdisk"), "-n1:1M:+60M", "-t1:8300", disk)
		pattern := bytes.Repeat([]byte("existing "), 60*mib/9)
		f, _ := os.OpenFile(disk, os.O_RDWR, 0)
		f.WriteAt(pattern, mib)
		f.Close()
		r := mustLB(t, nil, "restore", fx.img, "--partition", "2", "--target", disk, "--layout", "fill", "--yes")
		if !strings.Contains(r.stdout, "new partition 2") {
			t.Errorf("the summary does not say where the partition went:\n%s", r.stdout)
		}
		if out := fstest.Run(t, fstest.Tool(t, "sgdisk"), "-v", disk); !strings.Contains(out, "No problems found") {
			t.Errorf("sgdisk -v: %s", out)
		}
		pt := readTable(t, disk)
		if len(pt.Partitions) != 2 {
			t.Fatalf("%d partitions, want 2: %+v", len(pt.Partitions), pt.Partitions)
		}
		p1, p2 := pt.Partitions[0], pt.Partitions[1]
		if p1.Start != 2048 || p1.Size != 60*mib/sector {
			t.Errorf("the existing partition moved: %+v", p1)
		}
		got := make([]byte, len(pattern))
		f, _ = os.Open(disk)
		f.ReadAt(got, mib)
		f.Close()
		if !bytes.Equal(got, pattern) {
			t.Error("the existing partition's bytes changed")
		}
		if p2.Start%2048 != 0 || p2.Start < p1.Start+p1.Size || (pt.LastLBA+1-(p2.Start+p2.Size)) > 2048 {
			t.Errorf("the new partition is not aligned or does not fill the free space: %+v (last LBA %d)", p2, pt.LastLBA)
		}
		file := extract(t, disk, p2.Start, p2.Size, filepath.Join(t.TempDir(), "p2.fs"))
		fstest.Check(t, rootCase, file)
		checkFSFills(t, rootCase, file, p2.Size*sector)
		fstest.SameTree(t, "the restored partition", fx.src.parts[1].want, fstest.ReadTree(t, rootCase, file))

		// No room left: refused before writing.
		before := fileSum(t, disk)
		r = lb(t, nil, "restore", fx.img, "--partition", "3", "--target", disk, "--yes")
		if r.code != cli.ExitRefused || !strings.Contains(r.stderr, "no unallocated space") {
			t.Errorf("exit %d, stderr %s; want a refusal saying there is no unallocated space", r.code, r.stderr)
		}
		if fileSum(t, disk) != before {
			t.Error("a refused restore wrote to the disk")
		}
	})
}

func TestLayoutMBR(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short; TestLayoutGPT covers fill")
	}
	fx := newDiskFixture(t, "mbr")
	srcTable := readTable(t, fx.src.path)
	big := fx.bigDisk(t, "big.img")
	mustLB(t, nil, "restore", fx.img, "--target", big, "--layout", "fill", "--yes")
	pt := checkDisk(t, fx.src, big, fillWant)
	if pt.ID != srcTable.ID {
		t.Errorf("disk signature %s, want the source's %s", pt.ID, srcTable.ID)
	}
	for i, p := range pt.Partitions {
		if p.Type != srcTable.Partitions[i].Type {
			t.Errorf("p%d: type %s, want the source's %s", i+1, p.Type, srcTable.Partitions[i].Type)
		}
	}
}
