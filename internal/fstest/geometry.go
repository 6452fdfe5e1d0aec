//go:build linux

package fstest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Geometry is one randomly drawn filesystem variant: its type, size,
// block or cluster size and mkfs options, and optionally the partitioned
// disk it sits in. RandomGeometry draws them; MakeGeometry makes them with
// the real mkfs tools.
type Geometry struct {
	Family string // ext2, ext3, ext4, fat12, fat16, fat32, exfat, ntfs
	Size   int64  // filesystem bytes: a multiple of 512, often not of 4096
	Block  int    // block or cluster size in bytes
	Sector int    // logical sector size (FAT, NTFS); 0 for the default
	Tool   string
	Args   []string // mkfs arguments; the image path is appended
	Tag    string   // short description of Args for names
	// Dirty fills the file with pseudo-random bytes before mkfs, so free
	// blocks hold garbage from the start.
	Dirty bool

	// Table is "" (a bare filesystem), "mbr" or "gpt": the filesystem is
	// then partition 1 of a disk, starting at sector Start, and the disk
	// is DiskSize bytes.
	Table    string
	Start    int64
	DiskSize int64
	Seed     uint64 // for the garbage and anything else drawn later
	// Second is the filesystem of partition 2, when the disk has one; its
	// Start is its first sector.
	Second *Geometry
}

func (g Geometry) String() string {
	s := fmt.Sprintf("%s-%s-%s", g.Family, sizeName(int64(g.Block)), sizeName(g.Size))
	if g.Tag != "" {
		s += "-" + g.Tag
	}
	if g.Dirty {
		s += "-dirty"
	}
	if g.Table != "" {
		s += fmt.Sprintf("-%s@%d", g.Table, g.Start)
	}
	if g.Second != nil {
		s += fmt.Sprintf("+%s@%d", g.Second, g.Second.Start)
	}
	return s
}

// sizeName writes n as 1k, 64k, 3m, or 3m+1536 when it is not whole.
func sizeName(n int64) string {
	switch {
	case n >= 1<<20:
		if r := n % (1 << 20); r != 0 {
			return fmt.Sprintf("%dm+%d", n>>20, r)
		}
		return fmt.Sprintf("%dm", n>>20)
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprint(n)
}

// FS is the type name fsprobe and blkid give the filesystem.
func (g Geometry) FS() string {
	switch g.Family {
	case "fat12", "fat16", "fat32":
		return "vfat"
	}
	return g.Family
}

// Case is the Case that Check, ReadTree and the tree writers use for it.
func (g Geometry) Case() Case {
	c := Case{Name: g.String(), SizeMiB: (g.Size + 1<<20 - 1) >> 20, Tool: g.Tool, Args: g.Args, FS: g.FS()}
	switch g.Family {
	case "ext2", "ext3", "ext4":
		c.Access, c.Fsck = ViaKernel, []string{"e2fsck", "-fn"}
	case "fat12", "fat16", "fat32":
		c.Access, c.Fsck = ViaMtools, []string{"fsck.fat", "-n"}
	case "exfat":
		c.Access, c.Fsck = ViaExFATFuse, []string{"fsck.exfat", "-n"}
	case "ntfs":
		c.Access, c.Fsck = ViaNTFS3G, []string{"ntfsfix", "-n"}
	}
	return c
}

// Families are the filesystem types RandomGeometry draws from.
var Families = []string{"ext2", "ext3", "ext4", "fat12", "fat16", "fat32", "exfat", "ntfs"}

// GeometryTools are the programs MakeGeometry, the tree writers and the
// checkers run, for a test to require up front.
var GeometryTools = []string{"mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "e2fsck", "mkfs.fat", "fsck.fat", "mcopy", "mdel",
	"mmd", "mdeltree", "mdir", "mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "mkntfs", "ntfsfix", "ntfs-3g",
	"losetup", "mount", "umount", "sfdisk"}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// RandomGeometry draws a geometry: every family, block and cluster sizes
// from 512 B to 64 KiB, sizes of 1–24 MiB that are mostly not multiples
// of 4 KiB, optional features, and a third of them as a partition at an
// odd sector of an MBR or GPT disk. mkfs may still refuse one (a FAT16 with
// too few clusters): MakeGeometry says so and the caller draws again.
func RandomGeometry(r *rand.Rand) Geometry { return randomGeometry(r, false) }

// randomGeometry draws a geometry; bare ones are never put on a disk.
func randomGeometry(r *rand.Rand, bare bool) Geometry {
	g := Geometry{Family: pick(r, Families...), Seed: r.Uint64()}
	mib := int64(1 + r.IntN(8))
	if r.IntN(5) < 2 {
		mib = 8 + int64(r.IntN(17))
	}
	if mib > 24 {
		mib = 24
	}
	g.Size = mib << 20
	switch r.IntN(4) {
	case 0: // whole MiB
	case 1:
		g.Size -= int64(1+r.IntN(7)) * 512
	default:
		g.Size += int64(r.IntN(2048)) * 512
		if g.Size%4096 == 0 {
			g.Size += 512 * int64(1+r.IntN(7))
		}
	}
	if g.Size > 24<<20 {
		g.Size = 24<<20 - 512*int64(1+r.IntN(7))
	}
	g.Dirty = r.IntN(3) == 0
	var tags []string
	opt := func(tag string, args ...string) {
		tags = append(tags, tag)
		g.Args = append(g.Args, args...)
	}
	switch g.Family {
	case "ext2", "ext3", "ext4":
		g.Tool = "mkfs." + g.Family
		g.Block = pick(r, 1024, 2048, 4096)
		g.Args = []string{"-q", "-F", "-b", fmt.Sprint(g.Block), "-U", uuid(r), "-E", "hash_seed=" + uuid(r)}
		if g.Dirty {
			g.Args[len(g.Args)-1] += ",nodiscard"
		}
		var feats []string
		if g.Family == "ext4" && r.IntN(3) == 0 {
			cl := g.Block << (1 + r.IntN(4))
			tags = append(tags, "bigalloc"+sizeName(int64(cl)))
			feats = append(feats, "bigalloc")
			g.Args = append(g.Args, "-C", fmt.Sprint(cl))
			g.Block = cl
		}
		var choices []string
		if g.Family == "ext4" {
			choices = []string{"^flex_bg", "inline_data", "^has_journal", "64bit", "meta_bg,^resize_inode", "^dir_index",
				"sparse_super2", "^metadata_csum", "^huge_file", "uninit_bg,^metadata_csum", "mmp", "large_dir", "ea_inode"}
		} else {
			choices = []string{"^sparse_super", "^resize_inode", "^dir_index", "^filetype", "sparse_super2"}
		}
		for range r.IntN(3) {
			f := pick(r, choices...)
			if !strings.Contains(strings.Join(feats, ","), f) {
				feats = append(feats, f)
			}
		}
		if g.Family == "ext4" && !slices.Contains(feats, "meta_bg,^resize_inode") && r.IntN(6) == 0 {
			tags = append(tags, "packed")
			feats = append(feats, "^resize_inode")
			g.Args[7] += ",packed_meta_blocks=1"
		}
		if len(feats) > 0 {
			var named []string // bigalloc has its tag already
			for _, f := range feats {
				if f != "bigalloc" {
					named = append(named, f)
				}
			}
			if len(named) > 0 {
				tags = append(tags, strings.NewReplacer("^", "no", ",", "+").Replace(strings.Join(named, "+")))
			}
			g.Args = append(g.Args, "-O", strings.Join(feats, ","))
		}
		if !slices.Contains(feats, "bigalloc") && r.IntN(4) == 0 {
			// Small groups: many of them, most with no data.
			n := 8 * (32 + r.IntN(g.Block-31))
			opt(fmt.Sprintf("g%d", n), "-g", fmt.Sprint(n))
		}
		if r.IntN(3) == 0 {
			ino := pick(r, 128, 256, 512)
			opt(fmt.Sprintf("i%d", ino), "-I", fmt.Sprint(ino))
		}
		if r.IntN(3) == 0 {
			opt("m0", "-m", "0")
		}
		if r.IntN(4) == 0 {
			n := 64 + r.IntN(512)
			opt(fmt.Sprintf("N%d", n), "-N", fmt.Sprint(n))
		}
	case "fat12", "fat16", "fat32":
		g.Tool = "mkfs.fat"
		// Only 512-byte sectors: mtools 4.0.32 (our only FAT writer)
		// corrupts directories of FAT12 and FAT16 with 1024-, 2048- and
		// 4096-byte sectors now and then (fsck.fat rejects the original;
		// seeds 2, 3 and 5 of TestPropertyFilesystems before this).
		g.Sector = 512
		// Cluster sizes from 512 B to 64 KiB; FAT12 and FAT16 need a
		// cluster count in their range, so draw near it.
		lo, hi := 512, 64<<10
		switch g.Family {
		case "fat12":
			for lo < hi && g.Size/int64(lo) > 4084 {
				lo *= 2
			}
		case "fat16":
			for lo < hi && g.Size/int64(lo) > 65524 {
				lo *= 2
			}
			for hi > lo && g.Size/int64(hi) < 4085 {
				hi /= 2
			}
		case "fat32":
			// mkfs.fat makes a FAT32 of a few clusters when told to, but
			// mtools (our only writer: the kernel here has no vfat) reads
			// it as FAT12/16, as the specification says. A true FAT32
			// has at least 65525 clusters: the volume is then 33 MiB to
			// 4 GiB, but a sparse file that holds little more than the two
			// 256 KiB FATs and the tree; large clusters are drawn less.
			hi = 512 << min(r.IntN(8), r.IntN(8))
			lo = hi
		}
		lo = max(lo, g.Sector)
		steps := 0
		for c := lo; c <= hi; c *= 2 {
			steps++
		}
		g.Block = lo << r.IntN(max(steps, 1))
		if g.Family == "fat32" {
			g.Block = max(hi, g.Sector)
			clusters := int64(65525 + 64 + r.IntN(3000))
			g.Size = clusters*int64(g.Block) + 2*(clusters*4+int64(g.Sector)) + 64*int64(g.Sector) + 512*int64(r.IntN(8))
			g.Size = (g.Size + 511) / 512 * 512
			g.Dirty = g.Dirty && g.Size <= 24<<20
		}
		g.Args = []string{"-F", g.Family[3:], "-S", fmt.Sprint(g.Sector), "-s", fmt.Sprint(g.Block / g.Sector),
			"-i", fmt.Sprintf("%08x", r.Uint32())}
		if g.Sector != 512 {
			tags = append(tags, fmt.Sprintf("S%d", g.Sector))
		}
		if r.IntN(4) == 0 {
			opt("f1", "-f", "1")
		}
		if g.Family != "fat32" && r.IntN(3) == 0 {
			n := pick(r, 16, 112, 224, 512, 1024)
			opt(fmt.Sprintf("r%d", n), "-r", fmt.Sprint(n))
		}
		if r.IntN(4) == 0 {
			opt("a", "-a")
		}
		if g.Family == "fat32" && r.IntN(4) == 0 {
			n := pick(r, 2, 8, 17, 32)
			opt(fmt.Sprintf("R%d", n), "-R", fmt.Sprint(n))
		}
	case "exfat":
		g.Tool = "mkfs.exfat"
		g.Block = 512 << r.IntN(8)
		g.Args = []string{"-c", fmt.Sprint(g.Block)}
		b := pick(r, 512, 4096, g.Block, 1<<20)
		if g.Size < 8<<20 && b == 1<<20 {
			b = g.Block
		}
		opt("b"+sizeName(int64(b)), "-b", fmt.Sprint(b))
		if r.IntN(3) == 0 {
			opt("pack", "--pack-bitmap")
		}
	case "ntfs":
		g.Tool = "mkntfs"
		if g.Size < 2<<20 {
			g.Size += 2 << 20
		}
		g.Sector = 512
		if r.IntN(6) == 0 {
			g.Sector = pick(r, 1024, 2048, 4096)
		}
		g.Block = max(g.Sector, 512<<r.IntN(8))
		g.Args = []string{"-F", "-Q", "-q", "-T", "-s", fmt.Sprint(g.Sector), "-c", fmt.Sprint(g.Block)}
		if g.Sector != 512 {
			tags = append(tags, fmt.Sprintf("S%d", g.Sector))
		}
		if r.IntN(3) == 0 {
			z := 1 + r.IntN(4)
			opt(fmt.Sprintf("z%d", z), "-z", fmt.Sprint(z))
		}
		if r.IntN(4) == 0 {
			opt("C", "-C") // compression allowed on the volume
		}
	}
	g.Tag = strings.Join(tags, "-")

	if !bare && r.IntN(3) == 0 {
		g.Table = pick(r, "mbr", "gpt")
		// Odd starts mostly: nothing is aligned to 4 KiB on such a disk.
		g.Start = pick[int64](r, 63, 2049, 4097+2*int64(r.IntN(500)), 2048, 1+2*int64(r.IntN(40)))
		if g.Table == "gpt" && g.Start < 34 {
			g.Start = 34 + 2*int64(r.IntN(20)) + 1
		}
		g.setStart(g.Start)
		end := g.Start + g.Size/512
		// Half of the disks get a second, small filesystem after an odd
		// gap (garbage on a dirty disk).
		if r.IntN(2) == 0 {
			for range 10 {
				s := randomGeometry(r, true)
				if s.Size <= 8<<20 {
					s.Dirty = g.Dirty
					s.Start = end + 1 + 2*int64(r.IntN(64))
					s.setStart(s.Start)
					end = s.Start + s.Size/512
					g.Second = &s
					break
				}
			}
		}
		tail := int64(r.IntN(100))
		if g.Table == "gpt" {
			tail += 33
		}
		g.DiskSize = (end + tail) * 512
	}
	return g
}

// setStart records in the BPB or NTFS boot sector where the filesystem
// starts on its disk.
func (g *Geometry) setStart(sector int64) {
	switch g.Family {
	case "fat12", "fat16", "fat32":
		g.Args = append(g.Args, "-h", fmt.Sprint(sector))
	case "ntfs":
		g.Args = append(g.Args, "-p", fmt.Sprint(sector), "-H", "255", "-S", "63")
	}
}

func uuid(r *rand.Rand) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0F | 0x40
	b[8] = b[8]&0x3F | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ErrRefused says mkfs would not make a geometry (too small for the cluster
// size, too many clusters for FAT12, ...); draw another.
var ErrRefused = errors.New("mkfs refused the geometry")

// MakeGeometry makes g's filesystem in dir/fs.img and returns its path. An
// error wrapping ErrRefused, with mkfs's words, means mkfs refused g (draw
// another); any other error is a failure. It takes no testing.TB so that
// geometries can be drawn before the subtest that is named after them.
func MakeGeometry(dir string, g Geometry) (string, error) {
	if g.Second != nil {
		if _, err := makeGeometryFS(dir, "fs2.img", *g.Second); err != nil {
			return "", err
		}
	}
	return makeGeometryFS(dir, "fs.img", g)
}

// SecondImage is where MakeGeometry made g.Second's filesystem.
func SecondImage(dir string) string { return filepath.Join(dir, "fs2.img") }

func makeGeometryFS(dir, name string, g Geometry) (string, error) {
	tool, ok := lookTool(g.Tool)
	if !ok {
		return "", fmt.Errorf("%s is not installed (Debian: %s)", g.Tool, installHint)
	}
	img := filepath.Join(dir, name)
	f, err := os.Create(img)
	if err != nil {
		return "", err
	}
	if g.Dirty {
		err = fillRandom(f, g.Size, g.Seed)
	} else {
		err = f.Truncate(g.Size)
	}
	if err1 := f.Close(); err == nil {
		err = err1
	}
	if err != nil {
		return "", err
	}
	argv := append(append([]string{tool}, g.Args...), img)
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	msg := strings.TrimSpace(out.String())
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%w: %q: %v: %s", ErrRefused, argv, err, msg)
		}
		return "", fmt.Errorf("%q: %v", argv, err)
	}
	// mke2fs leaves the journal out of a filesystem too small for one:
	// that is no ext3.
	if strings.Contains(msg, "too small for a journal") && g.Family == "ext3" ||
		strings.Contains(msg, "clusters for 32 bit FAT is less") {
		return "", fmt.Errorf("%w: %q: %s", ErrRefused, argv, msg)
	}
	return img, nil
}

// FillRandom creates (or replaces) path as n pseudo-random bytes drawn
// from seed.
func FillRandom(t testing.TB, path string, n int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err == nil {
		err = fillRandom(f, n, seed)
		if err1 := f.Close(); err == nil {
			err = err1
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func fillRandom(f *os.File, n int64, seed uint64) error {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		r.Read(b)
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// partType is the MBR type byte and the GPT type GUID for the family.
func (g Geometry) partType() string {
	if g.Table == "gpt" {
		if strings.HasPrefix(g.Family, "ext") {
			return "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
		}
		return "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	}
	switch g.Family {
	case "fat12":
		return "01"
	case "fat16":
		return "06"
	case "fat32":
		return "0c"
	case "exfat", "ntfs":
		return "07"
	}
	return "83"
}

// MakeDisk writes fsImg as partition 1 of a new disk image dir/disk.img,
// laid out as g says (sfdisk writes the table), and returns its path;
// g.Second's filesystem, when there is one, is taken from SecondImage(dir). The
// gaps around the partition hold garbage when g is Dirty.
func MakeDisk(t testing.TB, dir string, g Geometry, fsImg string) string {
	t.Helper()
	if g.Table == "" {
		t.Fatalf("geometry %s has no partition table", g)
	}
	disk := filepath.Join(dir, "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if g.Dirty {
		err = fillRandom(f, g.DiskSize, ^g.Seed)
	} else {
		err = f.Truncate(g.DiskSize)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	script := "label: dos\n"
	if g.Table == "gpt" {
		script = "label: gpt\nfirst-lba: 34\n"
	}
	script += fmt.Sprintf("start=%d, size=%d, type=%s\n", g.Start, g.Size/512, g.partType())
	if s := g.Second; s != nil {
		s.Table = g.Table // for partType
		script += fmt.Sprintf("start=%d, size=%d, type=%s\n", s.Start, s.Size/512, s.partType())
	}
	cmd := exec.Command(Tool(t, "sfdisk"), "--quiet", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s <<%q: %v\n%s", disk, script, err, out)
	}
	CopyRange(t, disk, g.Start*512, fsImg, 0, g.Size)
	if s := g.Second; s != nil {
		CopyRange(t, disk, s.Start*512, SecondImage(dir), 0, s.Size)
	}
	return disk
}

// CopyRange copies n bytes at srcOff of src to dstOff of dst (created if
// missing; not truncated). Holes of src are punched into dst, not read and
// written: a FAT32 of 4 GiB is mostly holes.
func CopyRange(t testing.TB, dst string, dstOff int64, src string, srcOff, n int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if fi, err := out.Stat(); err != nil {
		t.Fatal(err)
	} else if fi.Size() < dstOff+n {
		if err := out.Truncate(dstOff + n); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1<<20)
	for pos := int64(0); pos < n; {
		data, err := unix.Seek(int(in.Fd()), srcOff+pos, unix.SEEK_DATA)
		if err != nil || data >= srcOff+n {
			data = srcOff + n // no data up to the end
		}
		if hole := data - srcOff - pos; hole > 0 {
			if err := unix.Fallocate(int(out.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, dstOff+pos, hole); err != nil {
				t.Fatalf("punch a hole of %d bytes at %d into %s: %v", hole, dstOff+pos, dst, err)
			}
			pos += hole
			continue
		}
		end, err := unix.Seek(int(in.Fd()), srcOff+pos, unix.SEEK_HOLE)
		if err != nil || end > srcOff+n {
			end = srcOff + n
		}
		for pos < end-srcOff {
			b := buf[:min(int64(len(buf)), end-srcOff-pos)]
			if _, err := in.ReadAt(b, srcOff+pos); err != nil {
				t.Fatalf("read %s at %d: %v", src, srcOff+pos, err)
			}
			if _, err := out.WriteAt(b, dstOff+pos); err != nil {
				t.Fatal(err)
			}
			pos += int64(len(b))
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// PartitionTable returns sfdisk's dump of disk without the lines that name
// the file, to compare two disks' tables.
func PartitionTable(t testing.TB, disk string) string {
	t.Helper()
	out := Run(t, Tool(t, "sfdisk"), "--dump", disk)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "device:") {
			continue
		}
		keep = append(keep, strings.ReplaceAll(l, disk, "DISK"))
	}
	return strings.Join(keep, "\n")
}
