package fsmap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzRead from freshly made filesystems")

// How a test puts files into, and reads them back from, an image. The
// kernel here has no vfat or exfat driver: FAT goes through mtools, exFAT
// through exfat-fuse, NTFS through ntfs-3g.
type access int

const (
	viaKernel access = iota // mount -o loop
	viaNTFS3G
	viaExFATFuse
	viaMtools
)

// fsCase makes one filesystem image with a real mkfs tool.
type fsCase struct {
	name    string
	sizeMiB int64
	tool    string   // looked up in PATH, /sbin and /usr/sbin
	args    []string // the image path is appended
	fs      string   // Map.FS wanted
	access  access
	// fsck is the read-only checker run on the copy (image appended).
	fsck []string
	// partclone is the partclone binary whose -D domain log gives its
	// used-block map.
	partclone string
	// ref, when set, replaces partclone as the reference used-byte count,
	// for filesystems partclone gets wrong; refWhy says what it gets wrong.
	ref    func(t *testing.T, img string) int64
	refWhy string
	slow   bool // skipped with -short
}

var fsCases = []fsCase{
	{name: "ext4", sizeMiB: 128, tool: "mkfs.ext4", args: []string{"-q", "-F"}, fs: "ext4", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs"},
	{name: "ext4-4k-noflex", sizeMiB: 128, tool: "mkfs.ext4", args: []string{"-q", "-F", "-b", "4096", "-O", "^flex_bg"}, fs: "ext4", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs", slow: true},
	{name: "ext4-64bit-metabg", sizeMiB: 128, tool: "mkfs.ext4", args: []string{"-q", "-F", "-b", "1024", "-O", "64bit,meta_bg,^resize_inode"}, fs: "ext4", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs", slow: true},
	{name: "ext4-bigalloc", sizeMiB: 256, tool: "mkfs.ext4", args: []string{"-q", "-F", "-b", "4096", "-O", "bigalloc", "-C", "16384"}, fs: "ext4", fsck: []string{"e2fsck", "-fn"}, slow: true,
		ref: dumpe2fsUsed, refWhy: "partclone 0.3.23 cannot read bigalloc bitmaps (\"bitmap error at 0 group\")"},
	{name: "ext4-1k", sizeMiB: 64, tool: "mkfs.ext4", args: []string{"-q", "-F", "-b", "1024"}, fs: "ext4", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs", slow: true},
	{name: "ext3", sizeMiB: 64, tool: "mkfs.ext3", args: []string{"-q", "-F"}, fs: "ext3", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs"},
	{name: "ext2", sizeMiB: 64, tool: "mkfs.ext2", args: []string{"-q", "-F"}, fs: "ext2", fsck: []string{"e2fsck", "-fn"}, partclone: "partclone.extfs", slow: true},
	{name: "vfat12", sizeMiB: 16, tool: "mkfs.vfat", args: []string{"-F", "12"}, fs: "vfat", access: viaMtools, fsck: []string{"fsck.vfat", "-n"}, partclone: "partclone.fat",
		ref: fsckFATUsed, refWhy: "partclone 0.3.23 undercounts FAT12 (5.3 MB for a 7 MB file fsck.fat counts as 855×8 KiB clusters)"},
	{name: "vfat16", sizeMiB: 64, tool: "mkfs.vfat", args: []string{"-F", "16"}, fs: "vfat", access: viaMtools, fsck: []string{"fsck.vfat", "-n"}, partclone: "partclone.fat", slow: true},
	{name: "vfat32", sizeMiB: 128, tool: "mkfs.vfat", args: []string{"-F", "32"}, fs: "vfat", access: viaMtools, fsck: []string{"fsck.vfat", "-n"}, partclone: "partclone.fat"},
	{name: "exfat", sizeMiB: 64, tool: "mkfs.exfat", fs: "exfat", access: viaExFATFuse, fsck: []string{"fsck.exfat", "-n"}, partclone: "partclone.exfat"},
	{name: "ntfs", sizeMiB: 64, tool: "mkntfs", args: []string{"-F", "-Q", "-q"}, fs: "ntfs", access: viaNTFS3G, fsck: []string{"ntfsfix", "-n"}, partclone: "partclone.ntfs"},
	{name: "swap", sizeMiB: 16, tool: "mkswap", fs: "swap"},
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed (Debian: apt-get install e2fsprogs dosfstools exfatprogs exfat-fuse ntfs-3g mtools partclone)", name)
	return ""
}

func run(t testing.TB, argv ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%q: %v\nstdout: %s\nstderr: %s", argv, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// makeFS creates the empty image for c in dir and returns its path.
func makeFS(t testing.TB, dir string, c fsCase) string {
	t.Helper()
	tool := lookTool(t, c.tool)
	img := filepath.Join(dir, c.name+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(c.sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, append(append([]string{tool}, c.args...), img)...)
	return img
}

// mountImage mounts img on a new directory and returns it; it is unmounted
// at cleanup unless unmounted earlier with umount.
func mountImage(t *testing.T, c fsCase, img string, ro bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting an image needs root")
	}
	mnt := t.TempDir()
	opt := "rw"
	if ro {
		opt = "ro"
	}
	switch c.access {
	case viaKernel:
		run(t, lookTool(t, "mount"), "-o", "loop,"+opt, img, mnt)
	case viaNTFS3G:
		run(t, lookTool(t, "ntfs-3g"), "-o", opt, img, mnt)
	case viaExFATFuse:
		// exfat-fuse run by root insists on a block device.
		loop := strings.TrimSpace(run(t, lookTool(t, "losetup"), "-f", "--show", img))
		t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
		run(t, lookTool(t, "mount.exfat-fuse"), "-o", opt, loop, mnt)
	}
	// Registered after losetup's, so it runs first.
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func umount(t *testing.T, mnt string) {
	t.Helper()
	run(t, lookTool(t, "umount"), mnt)
}

// writeTree fills dir with a deterministic mix of directories and files of
// random data: many small, a few medium, and two large ones of about
// total/6 bytes each.
func writeTree(t *testing.T, dir string, seed int64, total int64) {
	t.Helper()
	rnd := rand.New(rand.NewSource(seed))
	var sizes []int64
	for range 40 {
		sizes = append(sizes, rnd.Int63n(24<<10))
	}
	for range 4 {
		sizes = append(sizes, 200<<10+rnd.Int63n(800<<10))
	}
	sizes = append(sizes, total/6, total/6+12345)
	for i, n := range sizes {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("e%d", i%2))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		rnd.Read(b)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// victims lists the files of src that populate deletes: every third one
// and the largest.
func victims(t *testing.T, src string) []string {
	t.Helper()
	var files []string
	var big string
	var bigSize int64
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			fi, _ := d.Info()
			if fi.Size() > bigSize {
				big, bigSize = rel, fi.Size()
			}
			files = append(files, rel)
		}
		return nil
	})
	var v []string
	for i, f := range files {
		if i%3 == 0 && f != big {
			v = append(v, f)
		}
	}
	return append(v, big)
}

// populate writes a tree into img, deletes some of it, writes more (which
// lands in the holes), and returns the tree the image should now hold.
func populate(t *testing.T, c fsCase, img string) (want string) {
	t.Helper()
	src := t.TempDir()
	fsBytes := c.sizeMiB << 20
	writeTree(t, src, 1, fsBytes/2)
	dels := victims(t, src)
	later := filepath.Join(t.TempDir(), "later")
	writeTree(t, later, 2, fsBytes/4)

	if c.access == viaMtools {
		mcopy := lookTool(t, "mcopy")
		ents, _ := os.ReadDir(src)
		for _, e := range ents {
			run(t, mcopy, "-i", img, "-s", "-Q", filepath.Join(src, e.Name()), "::/")
		}
		for _, v := range dels {
			run(t, lookTool(t, "mdel"), "-i", img, "::/"+filepath.ToSlash(v))
		}
		run(t, mcopy, "-i", img, "-s", "-Q", later, "::/")
	} else {
		mnt := mountImage(t, c, img, false)
		if err := os.CopyFS(mnt, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		run(t, "sync")
		for _, v := range dels {
			if err := os.Remove(filepath.Join(mnt, v)); err != nil {
				t.Fatal(err)
			}
		}
		run(t, "sync")
		if err := os.CopyFS(filepath.Join(mnt, "later"), os.DirFS(later)); err != nil {
			t.Fatal(err)
		}
		umount(t, mnt)
	}
	for _, v := range dels {
		if err := os.Remove(filepath.Join(src, v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(src, "later"), os.DirFS(later)); err != nil {
		t.Fatal(err)
	}
	return src
}

// hashTree returns relative path → SHA-256 of every regular file under dir.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (rel == "lost+found" || strings.HasPrefix(rel, "System Volume Information")) {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		m[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readTree returns the hashes of the files in img, read through the same
// route that populated it.
func readTree(t *testing.T, c fsCase, img string) map[string]string {
	t.Helper()
	if c.access == viaMtools {
		out := t.TempDir()
		run(t, lookTool(t, "mcopy"), "-i", img, "-s", "-n", "-Q", "::/*", out)
		return hashTree(t, out)
	}
	mnt := mountImage(t, c, img, true)
	defer umount(t, mnt)
	return hashTree(t, mnt)
}

func readMap(t testing.TB, img string) *Map {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(f, fi.Size())
	if err != nil {
		t.Fatalf("Read(%s): %v", img, err)
	}
	checkMap(t, m, fi.Size())
	return m
}

// checkMap checks the invariants every map keeps.
func checkMap(t testing.TB, m *Map, size int64) {
	t.Helper()
	var sum, end int64
	for i, r := range m.Used {
		if r.Len <= 0 || r.Off < 0 || r.Off > size-r.Len {
			t.Fatalf("Used[%d] = %+v outside [0,%d)", i, r, size)
		}
		if i > 0 && r.Off <= end {
			t.Fatalf("Used[%d] = %+v overlaps or touches Used[%d] (ends at %d)", i, r, i-1, end)
		}
		end = r.Off + r.Len
		sum += r.Len
	}
	if sum != m.UsedBytes {
		t.Fatalf("UsedBytes = %d, sum of Used = %d", m.UsedBytes, sum)
	}
	if m.BlockSize <= 0 {
		t.Fatalf("BlockSize = %d", m.BlockSize)
	}
	if m.Reason != "" && (len(m.Used) != 1 || m.Used[0] != (Range{0, size})) && size > 0 {
		t.Fatalf("Reason %q but Used = %v, not the whole %d bytes", m.Reason, m.Used, size)
	}
}

// copyUsed writes only m's Used ranges of img into a new sparse file of the
// same size.
func copyUsed(t *testing.T, img string, m *Map) string {
	t.Helper()
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fi, _ := src.Stat()
	dst := filepath.Join(t.TempDir(), "copy.img")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(fi.Size()); err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Used {
		if _, err := io.Copy(io.NewOffsetWriter(f, r.Off), io.NewSectionReader(src, r.Off, r.Len)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// partcloneUsed runs partclone with -D, which writes a ddrescue domain log
// of the blocks partclone would copy without copying them, and returns
// those ranges.
func partcloneUsed(t *testing.T, tool, img string) []Range {
	t.Helper()
	dir := t.TempDir()
	dom := filepath.Join(dir, "domain.log")
	run(t, lookTool(t, tool), "-D", "-q", "-s", img, "-o", dom, "-L", filepath.Join(dir, "partclone.log"))
	b, err := os.ReadFile(dom)
	if err != nil {
		t.Fatal(err)
	}
	var rs []Range
	re := regexp.MustCompile(`(?m)^0x([0-9A-Fa-f]+)\s+0x([0-9A-Fa-f]+)\s+\+\s*$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		off, _ := strconv.ParseInt(m[1], 16, 64)
		n, _ := strconv.ParseInt(m[2], 16, 64)
		rs = append(rs, Range{off, n})
	}
	if len(rs) == 0 {
		t.Fatalf("%s -D: no used ranges in\n%s", tool, b)
	}
	return rs
}

// uncovered returns how many bytes of want lie outside have (both sorted).
func uncovered(want, have []Range) int64 {
	var miss int64
	j := 0
	for _, w := range want {
		pos, end := w.Off, w.Off+w.Len
		for pos < end {
			for j < len(have) && have[j].Off+have[j].Len <= pos {
				j++
			}
			if j == len(have) || have[j].Off >= end {
				miss += end - pos
				break
			}
			if have[j].Off > pos {
				miss += have[j].Off - pos
			}
			pos = have[j].Off + have[j].Len
		}
	}
	return miss
}

func sum(rs []Range) (n int64) {
	for _, r := range rs {
		n += r.Len
	}
	return n
}

// TestReadRealFilesystems is the correctness proof: a copy of only the
// Used ranges passes the filesystem's checker and holds the same files;
// and UsedBytes agrees with partclone.
func TestReadRealFilesystems(t *testing.T) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow && testing.Short() {
				t.Skip("slow; skipped with -short")
			}
			img := makeFS(t, t.TempDir(), c)
			var want map[string]string
			if c.fs != "swap" {
				want = hashTree(t, populate(t, c, img))
			}
			m := readMap(t, img)
			if m.FS != c.fs || m.Reason != "" {
				t.Fatalf("FS = %q, Reason = %q; want %q and an exact map", m.FS, m.Reason, c.fs)
			}
			size := c.sizeMiB << 20
			t.Logf("%s: block %d, %d ranges, UsedBytes %d (%.1f%% of %d)", c.name, m.BlockSize, len(m.Used), m.UsedBytes, 100*float64(m.UsedBytes)/float64(size), size)
			if c.fs == "swap" {
				if m.UsedBytes != 4096 {
					t.Errorf("swap UsedBytes = %d, want the 4096-byte header page", m.UsedBytes)
				}
				return
			}

			cp := copyUsed(t, img, m)
			run(t, append(append([]string{lookTool(t, c.fsck[0])}, c.fsck[1:]...), cp)...)
			got := readTree(t, c, cp)
			if len(got) != len(want) {
				t.Errorf("copy holds %d files, original %d", len(got), len(want))
			}
			for p, h := range want {
				if got[p] != h {
					t.Errorf("%s: SHA-256 %.12s in the copy, %.12s in the original", p, got[p], h)
				}
			}

			if c.ref != nil {
				ref := c.ref(t, img)
				diff := float64(m.UsedBytes-ref) / float64(ref)
				t.Logf("%s: UsedBytes %d, reference %d (%+.3f%%); not partclone: %s", c.name, m.UsedBytes, ref, 100*diff, c.refWhy)
				if diff > 0.01 || diff < -0.01 {
					t.Errorf("UsedBytes %d differs from the reference %d by %.2f%%, more than 1%%", m.UsedBytes, ref, 100*diff)
				}
				return
			}
			pc := partcloneUsed(t, c.partclone, img)
			pcBytes := sum(pc)
			miss := uncovered(pc, m.Used)
			diff := float64(m.UsedBytes-pcBytes) / float64(pcBytes)
			t.Logf("%s: UsedBytes %d, partclone %d (%+.3f%%), partclone ranges not in Used: %d bytes", c.name, m.UsedBytes, pcBytes, 100*diff, miss)
			if diff > 0.01 || diff < -0.01 {
				t.Errorf("UsedBytes %d differs from partclone's %d by %.2f%%, more than 1%%", m.UsedBytes, pcBytes, 100*diff)
			}
			if miss != 0 {
				t.Errorf("%d bytes partclone copies are not in Used", miss)
			}
		})
	}
}

// dumpe2fsUsed is (blocks − free blocks) × block size from dumpe2fs -h.
func dumpe2fsUsed(t *testing.T, img string) int64 {
	out := run(t, lookTool(t, "dumpe2fs"), "-h", img)
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs -h has no %q:\n%s", name, out)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	return (field("Block count") - field("Free blocks")) * field("Block size")
}

// fsckFATUsed is the data area offset plus the used clusters that
// fsck.fat -nv counts by walking the FAT.
func fsckFATUsed(t *testing.T, img string) int64 {
	out := run(t, lookTool(t, "fsck.fat"), "-nv", img)
	num := func(re string) int64 {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("fsck.fat -nv: no %q in\n%s", re, out)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	return num(`Data area starts at byte (\d+)`) + num(`(\d+)/\d+ clusters`)*num(`(\d+) bytes per cluster`)
}

// TestReadFallback checks content that cannot be mapped: the whole volume,
// with a reason. cryptsetup and BitLocker are not among the tools the tests
// may install, so the encrypted headers are hand-made (offsets as in the
// LUKS2 on-disk format and libblkid's bitlocker.c).
func TestReadFallback(t *testing.T) {
	const size = 1 << 20
	rnd := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(rnd)
	luks := make([]byte, size)
	copy(luks, "LUKS\xba\xbe\x00\x02")
	bitlocker := make([]byte, size)
	copy(bitlocker, "\xeb\x58\x90-FVE-FS-")
	bitlocker[510], bitlocker[511] = 0x55, 0xAA
	for _, tc := range []struct {
		name, fs, reason string
		data             []byte
	}{
		{"zeros", "", "unknown filesystem", make([]byte, size)},
		{"random", "", "unknown filesystem", rnd},
		{"luks", "crypto_LUKS", "LUKS encrypted", luks},
		{"bitlocker", "BitLocker", "BitLocker encrypted", bitlocker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Read(bytes.NewReader(tc.data), size)
			if err != nil {
				t.Fatal(err)
			}
			checkMap(t, m, size)
			t.Logf("Reason: %s", m.Reason)
			if m.FS != tc.fs || !strings.Contains(m.Reason, tc.reason) || m.UsedBytes != size || m.BlockSize != 512 {
				t.Errorf("Read = %+v; want FS %q, Reason containing %q, the whole volume", m, tc.fs, tc.reason)
			}
		})
	}
	if m := Full(0, "empty"); len(m.Used) != 0 || m.UsedBytes != 0 {
		t.Errorf("Full(0) = %+v", m)
	}
}

// TestReadDamagedExt damages a real ext4 in several ways: each must give
// the fallback or a map that still covers everything the intact one does.
func TestReadDamagedExt(t *testing.T) {
	for _, c := range []fsCase{fsCases[0], {name: "ext4-nocsum", sizeMiB: 64, tool: "mkfs.ext4", args: []string{"-q", "-F", "-O", "^metadata_csum,uninit_bg"}}, {name: "ext2", sizeMiB: 16, tool: "mkfs.ext2", args: []string{"-q", "-F"}}} {
		t.Run(c.name, func(t *testing.T) {
			img := makeFS(t, t.TempDir(), c)
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			good, err := Read(bytes.NewReader(data), int64(len(data)))
			if err != nil || good.Reason != "" {
				t.Fatalf("intact: %+v, %v", good, err)
			}
			bs := good.BlockSize
			gdt := 2048 // 1 KiB blocks: block 2
			if bs > 1024 {
				gdt = int(bs)
			}
			for _, d := range []struct {
				name string
				off  int
				b    []byte
			}{
				{"descriptor garbage", gdt + 40, bytes.Repeat([]byte{0xA5}, 24)},
				{"bitmap pointer past end", gdt, []byte{0xff, 0xff, 0xff, 0x7f}},
				{"group count", 1024 + 0x20, []byte{8, 0, 0, 0}},
				{"block count", 1024 + 0x04, []byte{0xff, 0xff, 0xff, 0xff}},
				{"first bitmap zeroed", -1, nil},
			} {
				t.Run(d.name, func(t *testing.T) {
					bad := bytes.Clone(data)
					if d.off >= 0 {
						copy(bad[d.off:], d.b)
					} else {
						bm := int64(le32(bad, gdt)) * bs
						clear(bad[bm : bm+bs])
					}
					m, err := Read(bytes.NewReader(bad), int64(len(bad)))
					if err != nil {
						t.Fatal(err)
					}
					checkMap(t, m, int64(len(bad)))
					miss := uncovered(good.Used, m.Used)
					t.Logf("Reason %q, UsedBytes %d (intact %d), %d bytes of the intact map missing", m.Reason, m.UsedBytes, good.UsedBytes, miss)
					if m.Reason == "" && miss != 0 {
						t.Errorf("no fallback, and %d bytes of the intact map are missing", miss)
					}
				})
			}
		})
	}
}

type failingReader struct{ after int64 }

var errDisk = errors.New("medium error")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.after {
		return 0, errDisk
	}
	return len(p), nil // zeros would do, but a failure is what is tested
}

func TestReadIOError(t *testing.T) {
	_, err := Read(failingReader{}, 1<<20)
	if !errors.Is(err, errDisk) {
		t.Fatalf("Read on a failing reader: err = %v, want it to wrap %v", err, errDisk)
	}
	// A failure past the head, while reading a bitmap.
	c := fsCases[0]
	c.sizeMiB = 16
	img := makeFS(t, t.TempDir(), c)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Read(&cutReader{bytes.NewReader(data), 64 << 10}, int64(len(data)))
	if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("Read with a bad sector past 64 KiB: err = %v, want it to wrap %v and name the offset", err, errDisk)
	}
}

// cutReader fails every read that reaches past cut.
type cutReader struct {
	r   io.ReaderAt
	cut int64
}

func (c *cutReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.cut {
		return 0, errDisk
	}
	return c.r.ReadAt(p, off)
}

func TestBuilderCompact(t *testing.T) {
	b := &builder{size: 1 << 62}
	// Every other 4 KiB block of a volume too big to list run by run.
	for i := int64(0); i < 3*maxRanges; i++ {
		b.add(i*8192, 4096)
	}
	b.add(100, 10) // out of order, inside an existing range
	rs := b.finish()
	if len(rs) > maxRanges {
		t.Fatalf("%d ranges, want at most %d", len(rs), maxRanges)
	}
	if miss := uncovered([]Range{{0, 4096}, {(3*maxRanges - 1) * 8192, 4096}}, rs); miss != 0 {
		t.Fatalf("compacted map misses %d bytes", miss)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Off <= rs[i-1].Off+rs[i-1].Len {
			t.Fatalf("ranges %d and %d touch: %v %v", i-1, i, rs[i-1], rs[i])
		}
	}
}

// seedBytes is how much of each image goes into the fuzz seed corpus.
const seedBytes = 64 << 10

// maxFuzzSize bounds the volume size a fuzz input may claim.
const maxFuzzSize = 64 << 20

// seedCases are the filesystems whose heads make the seed corpus: small
// ones, laid out so that their metadata lies within seedBytes where the
// tools allow it.
var seedCases = []fsCase{
	{name: "ext2", sizeMiB: 1, tool: "mkfs.ext2", args: []string{"-q", "-F", "-N", "16"}},
	{name: "ext4", sizeMiB: 1, tool: "mkfs.ext4", args: []string{"-q", "-F", "-O", "^has_journal", "-b", "1024", "-g", "256", "-N", "64"}},
	{name: "ext4-64bit-metabg", sizeMiB: 1, tool: "mkfs.ext4", args: []string{"-q", "-F", "-O", "64bit,^has_journal,^resize_inode,meta_bg", "-b", "1024", "-g", "512", "-N", "32"}},
	{name: "ext4-bigalloc", sizeMiB: 2, tool: "mkfs.ext4", args: []string{"-q", "-F", "-O", "bigalloc,^has_journal", "-b", "1024", "-C", "4096", "-N", "16"}},
	{name: "vfat12", sizeMiB: 1, tool: "mkfs.vfat", args: []string{"-F", "12"}},
	{name: "vfat16", sizeMiB: 16, tool: "mkfs.vfat", args: []string{"-F", "16", "-s", "4"}},
	{name: "vfat32", sizeMiB: 33, tool: "mkfs.vfat", args: []string{"-F", "32", "-s", "1"}},
	{name: "exfat", sizeMiB: 2, tool: "mkfs.exfat", args: []string{"-b", "4096"}},
	{name: "ntfs", sizeMiB: 2, tool: "mkntfs", args: []string{"-F", "-Q", "-q", "-c", "512"}},
	{name: "swap", sizeMiB: 1, tool: "mkswap"},
}

// TestUpdateSeedCorpus regenerates testdata/fuzz/FuzzRead with -update.
func TestUpdateSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz/FuzzRead")
	}
	dir := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range seedCases {
		img := makeFS(t, dir, c)
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(data))
		full := readMap(t, img)
		if full.Reason != "" {
			t.Fatalf("%s: %s", c.name, full.Reason)
		}
		data = bytes.TrimRight(data[:min(len(data), seedBytes)], "\x00")
		m, err := Read(zeroPadded{bytes.NewReader(data), int64(len(data))}, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: seed of %d bytes: %d used bytes (whole image %d); reason %q", c.name, len(data), m.UsedBytes, full.UsedBytes, m.Reason)
		if err := os.WriteFile(filepath.Join(out, c.name), corpusFile(data, uint32(size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// corpusFile encodes a FuzzRead input in the "go test fuzz v1" format.
func corpusFile(data []byte, size uint32) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\nuint32(%d)\n", data, size)
}

// FuzzRead maps data followed by zeros up to size bytes (at least
// len(data), at most maxFuzzSize).
func FuzzRead(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, size uint32) {
		n := max(int64(len(data)), min(int64(size), maxFuzzSize))
		m, err := Read(zeroPadded{bytes.NewReader(data), int64(len(data))}, n)
		if err != nil {
			t.Fatalf("Read on in-memory data: %v", err)
		}
		checkMap(t, m, n)
	})
}

// zeroPadded reads as r followed by zeros; the caller bounds the size.
type zeroPadded struct {
	r *bytes.Reader
	n int64
}

func (z zeroPadded) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < z.n {
		z.r.ReadAt(p, off)
	}
	return len(p), nil
}
