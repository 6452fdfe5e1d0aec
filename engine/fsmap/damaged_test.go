package fsmap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestDamagedFilesystems corrupts real, populated filesystems the way
// failing disks and crashed drivers do — allocation metadata that
// contradicts the metadata referencing data — maps them, copies only the
// mapped ranges (what an intelligent backup then restore writes), and runs
// the filesystem's repair tool on a copy of the original and on the
// restore. The restore must let the repair tool recover at least as many
// files, with the same contents, as the original does.
//
// The corruptions keep every checksum right (debugfs recomputes them), so
// the mapper must notice the inconsistency itself.
func TestDamagedFilesystems(t *testing.T) {
	t.Run("ext4", func(t *testing.T) {
		testDamagedExt(t, fstest.Case{Name: "ext4", SizeMiB: 32, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "1024"}, FS: "ext4"})
	})
	t.Run("ext4-uninit_bg", func(t *testing.T) {
		testDamagedExt(t, fstest.Case{Name: "ext4-uninit_bg", SizeMiB: 32, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "4096", "-g", "2048", "-O", "^metadata_csum,uninit_bg,^flex_bg"}, FS: "ext4"})
	})
	t.Run("ext2", func(t *testing.T) {
		testDamagedExt(t, fstest.Case{Name: "ext2", SizeMiB: 24, Tool: "mkfs.ext2", Args: []string{"-q", "-F", "-b", "1024"}, FS: "ext2"})
	})
	t.Run("exfat", testDamagedExFAT)
	t.Run("vfat16", testDamagedFAT)
	t.Run("ntfs", testDamagedNTFS)
}

// damage is one corruption of a copy of a populated image.
type damage struct {
	name string
	// do corrupts img; it returns byte ranges of the original whose
	// content the restore must hold (beyond what the repair tool
	// recovers), or nil.
	do func(t *testing.T, img string) []Range
	// reason, when set, must be in the map's Reason: for damage that the
	// repair tool happens to survive today but that the map must not
	// trust.
	reason string
}

// recoverFunc runs the repair tool on img (in place) and returns the hashes
// of the files it then holds.
type recoverFunc func(t *testing.T, img string) map[string]string

// runDamaged makes a copy of img per damage, corrupts it, maps it, copies
// the mapped ranges and compares what the repair tool recovers from each.
func runDamaged(t *testing.T, img string, want map[string]string, rec recoverFunc, ds []damage) {
	for _, d := range ds {
		t.Run(d.name, func(t *testing.T) {
			orig := cloneFile(t, img)
			keep := d.do(t, orig)
			m := readMap(t, orig)
			t.Logf("map: FS %s, %d used bytes, reason %q", m.FS, m.UsedBytes, m.Reason)
			if !strings.Contains(m.Reason, d.reason) || (d.reason != "" && m.Reason == "") {
				t.Errorf("map reason %q, want one saying %q", m.Reason, d.reason)
			}
			restored := copyUsed(t, orig, m)
			for _, r := range keep {
				a, b := readRange(t, orig, r), readRange(t, restored, r)
				if !bytes.Equal(a, b) {
					t.Errorf("bytes %d+%d, which the filesystem still references, differ in the restore", r.Off, r.Len)
				}
			}
			fixedOrig := cloneFile(t, orig)
			gotOrig := rec(t, fixedOrig)
			gotRest := rec(t, restored)
			nOrig, nRest := sameFiles(want, gotOrig), sameFiles(want, gotRest)
			t.Logf("repair recovers %d of %d files from the original, %d from the restore", nOrig, len(want), nRest)
			if nRest < nOrig {
				t.Errorf("the repair tool recovers %d intact files from the restore, %d from the original (map reason %q)", nRest, nOrig, m.Reason)
			}
			if nOrig == 0 {
				t.Errorf("the repair tool recovers nothing from the original: the corruption is too harsh to test anything")
			}
		})
	}
}

func testDamagedExt(t *testing.T, c fstest.Case) {
	c.Fsck = []string{"e2fsck", "-fn"}
	fstest.Tool(t, "debugfs")
	img := fstest.MakeDirty(t, t.TempDir(), c)
	want := fstest.HashTree(t, fstest.Populate(t, c, img))
	if m := readMap(t, img); m.Reason != "" {
		t.Fatalf("the intact filesystem falls back: %s", m.Reason)
	}
	files := sortedKeys(want)
	freeb := extFreeb
	var ds []damage
	if c.FS == "ext4" { // the flag means something only with uninit_bg or metadata_csum
		ds = append(ds, damage{"wrong BLOCK_UNINIT", func(t *testing.T, img string) []Range {
			g := extDataGroup(t, img, files)
			flags := le16(extGroupDesc(t, img, g), gdFlags)
			debugfsW(t, img, fmt.Sprintf("set_bg %d flags %d", g, flags|bgBlockUninit), fmt.Sprintf("set_bg %d checksum calc", g))
			return nil
		}, ""}, damage{"wrong INODE_UNINIT", func(t *testing.T, img string) []Range {
			// A group whose inodes are in use is flagged as never having
			// had any: e2fsck finds them through the directories,
			// initializes the group and starts over. Nothing is lost
			// as long as their blocks stay in the bitmaps, but the map
			// must not trust the descriptors.
			out := fstest.Run(t, fstest.Tool(t, "debugfs"), "-R", "stat /"+files[len(files)-1], img)
			m := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("debugfs stat: %s", out)
			}
			ino, _ := strconv.ParseInt(m[1], 10, 64)
			ipg := fstest.E2fsField(t, fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", img), "Inodes per group")
			g := (ino - 1) / ipg
			flags := le16(extGroupDesc(t, img, g), gdFlags)
			debugfsW(t, img, fmt.Sprintf("set_bg %d flags %d", g, flags|bgInodeUninit), fmt.Sprintf("set_bg %d checksum calc", g))
			return nil
		}, "never used"})
	}
	runDamaged(t, img, want, recoverExt, append(ds, []damage{
		{"swapped bitmap bits", func(t *testing.T, img string) []Range {
			blks := extFileBlocks(t, img, "/"+files[len(files)-1])
			u := blks[len(blks)/2]
			free := extFreeBlock(t, img, u)
			debugfsW(t, img, fmt.Sprintf("freeb %d", u), fmt.Sprintf("setb %d", free))
			return nil
		}, ""},
		{"colliding inode tables", func(t *testing.T, img string) []Range {
			// Group 1's descriptor points at group 0's inode table;
			// e2fsck then repairs from the backup descriptors, which
			// point at group 1's real table.
			it := func(g int64) int64 {
				gd := extGroupDesc(t, img, g)
				v := int64(le32(gd, gdInodeTable))
				if len(gd) >= 64 {
					v |= int64(le32(gd, gdInodeTableHi)) << 32
				}
				return v
			}
			real := it(1)
			debugfsW(t, img, fmt.Sprintf("set_bg 1 inode_table %d", it(0)), "set_bg 1 checksum calc")
			bs := int64(1024) << le32(readAll(t, img), extSBOffset+extLogBlockSize)
			return []Range{{real * bs, bs}}
		}, "overlaps"},
		{"bits cleared under files", func(t *testing.T, img string) []Range {
			var bs []int64
			for _, f := range files[:3] {
				bs = append(bs, extFileBlocks(t, img, "/"+f)...)
			}
			freeb(t, img, bs)
			return nil
		}, ""},
		{"bits cleared under directories", func(t *testing.T, img string) []Range {
			var bs []int64
			for _, d := range []string{"/d0", "/d1/e1", "/later/d2"} {
				bs = append(bs, extFileBlocks(t, img, d)...)
			}
			freeb(t, img, bs)
			return nil
		}, ""},
	}...))
}

func testDamagedExFAT(t *testing.T) {
	c, ok := fstest.Lookup("exfat")
	if !ok {
		t.Fatal("fstest has no exfat case")
	}
	c.SizeMiB = 32
	img := fstest.MakeDirty(t, t.TempDir(), c)
	want := fstest.HashTree(t, fstest.Populate(t, c, img))
	if m := readMap(t, img); m.Reason != "" {
		t.Fatalf("the intact filesystem falls back: %s", m.Reason)
	}
	runDamaged(t, img, want, recoverExFAT, []damage{
		{"root directory missing from the bitmap", func(t *testing.T, img string) []Range {
			data := readAll(t, img)
			ss := int64(1) << data[108]
			cb := ss << data[109]
			heap := int64(le32(data, 88)) * ss
			root := int64(le32(data, 96))
			var bm int64 = -1
			rootOff := heap + (root-2)*cb
			for o := rootOff; o < rootOff+cb; o += 32 {
				if data[o] == 0x81 {
					bm = int64(le32(data, int(o)+20))
					break
				}
			}
			if bm < 0 {
				t.Fatal("no allocation bitmap entry in the root directory")
			}
			bit := heap + (bm-2)*cb + (root-2)/8
			data[bit] &^= 1 << ((root - 2) % 8)
			writeAll(t, img, data)
			return []Range{{rootOff, cb}}
		}, ""},
	})
}

func testDamagedFAT(t *testing.T) {
	c, ok := fstest.Lookup("vfat16")
	if !ok {
		t.Fatal("fstest has no vfat16 case")
	}
	c.SizeMiB = 32
	c.Args = []string{"-F", "16", "-s", "4"}
	img := fstest.MakeDirty(t, t.TempDir(), c)
	want := fstest.HashTree(t, fstest.Populate(t, c, img))
	if m := readMap(t, img); m.Reason != "" {
		t.Fatalf("the intact filesystem falls back: %s", m.Reason)
	}
	files := sortedKeys(want)
	// geometry returns the offsets of the two FATs, the data area and the
	// cluster size.
	geometry := func(data []byte) (fat1, fat2, dataOff, cb int64) {
		ss := int64(le16(data, 11))
		reserved := int64(le16(data, 14))
		fatLen := int64(le16(data, 22))
		rootSecs := (int64(le16(data, 17))*32 + ss - 1) / ss
		fat1 = reserved * ss
		fat2 = fat1 + fatLen*ss
		return fat1, fat2, fat2 + fatLen*ss + rootSecs*ss, int64(data[13]) * ss
	}
	runDamaged(t, img, want, recoverFAT, []damage{
		{"file cluster free in both FATs", func(t *testing.T, img string) []Range {
			cl := fatFileClusters(t, img, files[len(files)-1])
			x := cl[len(cl)-1] // the last: its loss truncates no other cluster
			data := readAll(t, img)
			fat1, fat2, dataOff, cb := geometry(data)
			for _, f := range []int64{fat1, fat2} {
				data[f+2*x], data[f+2*x+1] = 0, 0
			}
			writeAll(t, img, data)
			return []Range{{dataOff + (x-2)*cb, cb}}
		}, ""},
		{"FAT copies disagree", func(t *testing.T, img string) []Range {
			// The first FAT loses a cluster of a live file and its media
			// entry, so fsck.fat -a repairs from the second FAT, which
			// still has the cluster in the file's chain.
			cl := fatFileClusters(t, img, files[len(files)-2])
			x := cl[len(cl)/2]
			data := readAll(t, img)
			fat1, _, dataOff, cb := geometry(data)
			data[fat1+2*x], data[fat1+2*x+1] = 0, 0
			data[fat1+1] = 0
			writeAll(t, img, data)
			return []Range{{dataOff + (x-2)*cb, cb}}
		}, ""},
	})
}

func testDamagedNTFS(t *testing.T) {
	c, ok := fstest.Lookup("ntfs")
	if !ok {
		t.Fatal("fstest has no ntfs case")
	}
	c.SizeMiB = 32
	img := fstest.MakeDirty(t, t.TempDir(), c)
	want := fstest.HashTree(t, fstest.Populate(t, c, img))
	if m := readMap(t, img); m.Reason != "" {
		t.Fatalf("the intact filesystem falls back: %s", m.Reason)
	}
	runDamaged(t, img, want, recoverNTFS, []damage{
		{"$LogFile missing from $Bitmap", func(t *testing.T, img string) []Range {
			data := readAll(t, img)
			cb := int64(le16(data, 11)) * int64(data[13])
			mft := int64(le64(data, 48)) * cb
			recSize := int64(1) << -int8(data[64])
			clusters := int64(le64(data, 40)) * int64(le16(data, 11)) / cb
			runs := func(n int64, name string) []Range {
				rec := bytes.Clone(data[mft+n*recSize : mft+(n+1)*recSize])
				if err := ntfsFixup(rec, int(n), name); err != nil {
					t.Fatal(err)
				}
				rs, _, err := ntfsDataRuns(rec, clusters, int(n), name)
				if err != nil {
					t.Fatal(err)
				}
				return rs
			}
			log, bm := runs(2, "$LogFile")[0], runs(6, "$Bitmap")[0]
			for k := log.Off; k < log.Off+log.Len; k++ {
				data[bm.Off*cb+k/8] &^= 1 << (k % 8)
			}
			writeAll(t, img, data)
			return []Range{{log.Off * cb, log.Len * cb}}
		}, ""},
	})
}

// recoverNTFS runs ntfsfix on img and reads it through ntfs-3g; an image
// ntfs-3g cannot mount holds no files.
func recoverNTFS(t *testing.T, img string) map[string]string {
	out, err := runLenient(fstest.Tool(t, "ntfsfix"), img)
	t.Logf("ntfsfix: %v\n%s", err, tail(out, 1500))
	if os.Geteuid() != 0 {
		t.Skip("mounting an image needs root")
	}
	mnt := t.TempDir()
	if out, err := runLenient(fstest.Tool(t, "ntfs-3g"), "-o", "ro", img, mnt); err != nil {
		t.Logf("ntfs-3g: %v\n%s", err, out)
		return map[string]string{}
	}
	defer exec.Command("umount", mnt).Run()
	return fstest.HashTreeLenient(mnt)
}

// recoverExt repairs img with e2fsck -fy and lists its files with debugfs
// rdump, which needs no mount and copes with whatever e2fsck left.
func recoverExt(t *testing.T, img string) map[string]string {
	out, err := runLenient(fstest.Tool(t, "e2fsck"), "-fy", img)
	t.Logf("e2fsck -fy: %v\n%s", err, tail(out, 1500))
	dir := t.TempDir()
	out, err = runLenient(fstest.Tool(t, "debugfs"), "-R", "rdump / "+dir, img)
	if err != nil {
		t.Logf("debugfs rdump: %v\n%s", err, tail(out, 500))
	}
	return fstest.HashTreeLenient(dir)
}

// recoverExFAT repairs img with fsck.exfat -y and reads it through
// exfat-fuse; an image exfat-fuse cannot mount holds no files.
func recoverExFAT(t *testing.T, img string) map[string]string {
	out, err := runLenient(fstest.Tool(t, "fsck.exfat"), "-y", img)
	t.Logf("fsck.exfat -y: %v\n%s", err, tail(out, 1500))
	if os.Geteuid() != 0 {
		t.Skip("mounting an image needs root")
	}
	loop, err := runLenient(fstest.Tool(t, "losetup"), "-f", "--show", img)
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, loop)
	}
	loop = strings.TrimSpace(loop)
	defer exec.Command("losetup", "-d", loop).Run()
	mnt := t.TempDir()
	if out, err := runLenient(fstest.Tool(t, "mount.exfat-fuse"), "-o", "ro", loop, mnt); err != nil {
		t.Logf("mount.exfat-fuse: %v\n%s", err, out)
		return map[string]string{}
	}
	defer exec.Command("umount", mnt).Run()
	return fstest.HashTreeLenient(mnt)
}

// recoverFAT repairs img with fsck.fat -a and copies its files out with
// mtools.
func recoverFAT(t *testing.T, img string) map[string]string {
	out, err := runLenient(fstest.Tool(t, "fsck.fat"), "-a", img)
	t.Logf("fsck.fat -a: %v\n%s", err, tail(out, 1500))
	dir := t.TempDir()
	if out, err := runLenient(fstest.Tool(t, "mcopy"), "-i", img, "-s", "-n", "-Q", "::/*", dir); err != nil {
		t.Logf("mcopy: %v\n%s", err, tail(out, 500))
	}
	return fstest.HashTreeLenient(dir)
}

// sameFiles counts the files of want that got holds with the same hash.
func sameFiles(want, got map[string]string) int {
	n := 0
	for p, h := range want {
		if got[p] == h {
			n++
		}
	}
	return n
}

func runLenient(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func cloneFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	fstest.Run(t, "cp", "--sparse=always", src, dst)
	return dst
}

func readAll(t *testing.T, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAll(t *testing.T, img string, b []byte) {
	t.Helper()
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRange(t *testing.T, img string, r Range) []byte {
	t.Helper()
	return readAll(t, img)[r.Off : r.Off+r.Len]
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// debugfsW runs debugfs commands that write img.
func debugfsW(t *testing.T, img string, cmds ...string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := fstest.Run(t, fstest.Tool(t, "debugfs"), "-w", "-f", f, img)
	if strings.Contains(out, "Illegal") || strings.Contains(out, "Couldn't") {
		t.Fatalf("debugfs %q:\n%s", cmds, out)
	}
}

// extFileBlocks lists the data blocks of path (debugfs blocks).
func extFileBlocks(t *testing.T, img, path string) []int64 {
	t.Helper()
	out := fstest.Run(t, fstest.Tool(t, "debugfs"), "-R", "blocks "+path, img)
	var bs []int64
	for _, f := range strings.Fields(out) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("debugfs blocks %s: %q", path, out)
		}
		bs = append(bs, n)
	}
	if len(bs) == 0 {
		t.Fatalf("debugfs blocks %s: no blocks", path)
	}
	return bs
}

// extGeometry returns blocks per group and the first data block.
func extGeometry(t *testing.T, img string) (bpg, first int64) {
	out := fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", img)
	return fstest.E2fsField(t, out, "Blocks per group"), fstest.E2fsField(t, out, "First block")
}

// extDataGroup returns a group other than 0 that holds data blocks of one
// of files.
func extDataGroup(t *testing.T, img string, files []string) int64 {
	bpg, first := extGeometry(t, img)
	for _, f := range slices.Backward(files) {
		for _, b := range extFileBlocks(t, img, "/"+f) {
			if g := (b - first) / bpg; g > 0 {
				return g
			}
		}
	}
	t.Fatal("no file has blocks outside group 0")
	return 0
}

// extFreeb clears the block bitmap bits of blocks with debugfs. freeb
// leaves the groups' free counts, which the mapper already compares;
// count the blocks in as e2fsck would, so that only the reference walk can
// tell.
func extFreeb(t *testing.T, img string, blocks []int64) {
	bpg, first := extGeometry(t, img)
	n := map[int64]int64{}
	var cmds []string
	for _, b := range blocks {
		cmds = append(cmds, fmt.Sprintf("freeb %d", b))
		n[(b-first)/bpg]++
	}
	for g, k := range n {
		gd := extGroupDesc(t, img, g)
		free := int64(le16(gd, gdFreeBlocks))
		if len(gd) >= 64 {
			free |= int64(le16(gd, gdFreeBlocksHi)) << 16
		}
		cmds = append(cmds, fmt.Sprintf("set_bg %d free_blocks_count %d", g, free+k), fmt.Sprintf("set_bg %d checksum calc", g))
	}
	debugfsW(t, img, cmds...)
}

// extGroupDesc returns group g's descriptor in img (no meta_bg).
func extGroupDesc(t *testing.T, img string, g int64) []byte {
	data := readAll(t, img)
	bs := int64(1024) << le32(data, extSBOffset+extLogBlockSize)
	descSize := int64(32)
	if le32(data, extSBOffset+extFeatureIncompat)&extIncompat64Bit != 0 {
		descSize = int64(le16(data, extSBOffset+extDescSize))
	}
	off := (int64(le32(data, extSBOffset+extFirstDataBlock))+1)*bs + g*descSize
	return data[off : off+descSize]
}

// extFreeBlock returns a free block in the group of block near.
func extFreeBlock(t *testing.T, img string, near int64) int64 {
	bpg, first := extGeometry(t, img)
	g := (near - first) / bpg
	out := fstest.Run(t, fstest.Tool(t, "debugfs"), "-R", fmt.Sprintf("ffb 1 %d", first+g*bpg), img)
	m := regexp.MustCompile(`Free blocks found: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs ffb: %s", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// fatFileClusters lists the clusters of a file (mtools' mshowfat).
func fatFileClusters(t *testing.T, img, path string) []int64 {
	t.Helper()
	out := fstest.Run(t, fstest.Tool(t, "mshowfat"), "-i", img, "::/"+path)
	var cl []int64
	for _, m := range regexp.MustCompile(`<(\d+)(?:-(\d+))?>`).FindAllStringSubmatch(out, -1) {
		a, _ := strconv.ParseInt(m[1], 10, 64)
		b := a
		if m[2] != "" {
			b, _ = strconv.ParseInt(m[2], 10, 64)
		}
		for c := a; c <= b; c++ {
			cl = append(cl, c)
		}
	}
	if len(cl) < 2 {
		t.Fatalf("mshowfat %s: %q: want at least 2 clusters", path, out)
	}
	return cl
}

// TestReadLoops makes cluster chains loop: the map must fall back with a
// reason, not hang.
func TestReadLoops(t *testing.T) {
	t.Run("vfat12", func(t *testing.T) {
		img := fstest.Make(t, t.TempDir(), seedCase("vfat12", "vfat12-loop"))
		fillFAT(false)(t, img)
		cl := fatFileClusters(t, img, "big")
		data := readAll(t, img)
		ss := int64(le16(data, 11))
		fat := int64(le16(data, 14)) * ss
		x, first := cl[len(cl)-1], uint16(cl[0])
		for _, o := range []int64{fat + x*3/2, fat + int64(le16(data, 22))*ss + x*3/2} {
			if x%2 == 0 {
				data[o], data[o+1] = byte(first), data[o+1]&0xF0|byte(first>>8)&0x0F
			} else {
				data[o], data[o+1] = data[o]&0x0F|byte(first<<4), byte(first>>4)
			}
		}
		writeAll(t, img, data)
		m := readMap(t, img)
		t.Logf("reason %q", m.Reason)
		if !strings.Contains(m.Reason, "loop") {
			t.Errorf("reason %q, want one saying the chains loop", m.Reason)
		}
	})
	t.Run("exfat", func(t *testing.T) {
		img := fstest.Make(t, t.TempDir(), seedCase("exfat", "exfat-loop"))
		data := readAll(t, img)
		ss := int64(1) << data[108]
		fat := int64(le32(data, 80)) * ss
		root := int64(le32(data, 96))
		binary.LittleEndian.PutUint32(data[fat+4*root:], uint32(root)) // the root directory's chain loops
		writeAll(t, img, data)
		m := readMap(t, img)
		t.Logf("reason %q", m.Reason)
		if !strings.Contains(m.Reason, "loop") {
			t.Errorf("reason %q, want one saying the chains loop", m.Reason)
		}
	})
}
