// Package fstest is test support that makes real filesystems with the real
// tools (mkfs.ext4, mkfs.vfat, mkfs.exfat, mkntfs, mkswap), fills them with
// files, and reads them back, so that tests of Lifeboat can prove their
// results with the filesystems' own checkers.
//
// The kernel on the build machines may have no vfat or exfat driver, so FAT
// is populated and read through mtools, exFAT through exfat-fuse and NTFS
// through ntfs-3g (both on a loop device); only ext2/3/4 use a kernel mount.
// Helpers that need a missing tool skip the test and say what to install;
// mounting needs root.
//
// The smallest use:
//
//	c, _ := fstest.Lookup("ext4")
//	img := fstest.Make(t, t.TempDir(), c)
//	want := fstest.HashTree(t, fstest.Populate(t, c, img))
//	// ... copy img somewhere ...
//	fstest.Check(t, c, copy)
//	got := fstest.ReadTree(t, c, copy) // compare with want
//
// Property tests draw geometries and trees at random instead (Linux only:
// geometry.go and tree.go use Linux's xattr, hole and syncfs calls):
//
//	g := fstest.RandomGeometry(r) // r: a *rand.Rand from a printed seed
//	img, err := fstest.MakeGeometry(dir, g) // errors.Is(err, fstest.ErrRefused): draw again
//	want := fstest.RandomTree(t, g, img, r)
//	// ... copy img somewhere ...
//	got := fstest.ReadGeometry(t, g, copy) // compare with want
package fstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
	"time"
)

// Access is how a test puts files into, and reads them back from, an image.
type Access int

const (
	ViaKernel    Access = iota // mount -o loop
	ViaNTFS3G                  // ntfs-3g over FUSE
	ViaExFATFuse               // mount.exfat-fuse on a loop device
	ViaMtools                  // mcopy/mdel, no mount
)

func (a Access) String() string {
	switch a {
	case ViaKernel:
		return "kernel mount"
	case ViaNTFS3G:
		return "ntfs-3g"
	case ViaExFATFuse:
		return "exfat-fuse"
	case ViaMtools:
		return "mtools"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Case makes one filesystem image with a real mkfs tool.
type Case struct {
	Name    string
	SizeMiB int64
	Tool    string   // looked up in PATH, /sbin and /usr/sbin
	Args    []string // the image path is appended
	FS      string   // the type blkid and Lifeboat report
	Access  Access
	// Fsck is the read-only checker (image path appended); empty for swap.
	Fsck []string
	Slow bool // tests skip it with -short
}

// Cases are the filesystems Lifeboat maps block by block, in the variants
// that exercise different on-disk layouts.
var Cases = []Case{
	{Name: "ext4", SizeMiB: 128, Tool: "mkfs.ext4", Args: []string{"-q", "-F"}, FS: "ext4", Fsck: []string{"e2fsck", "-fn"}},
	{Name: "ext4-4k-noflex", SizeMiB: 128, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "4096", "-O", "^flex_bg"}, FS: "ext4", Fsck: []string{"e2fsck", "-fn"}, Slow: true},
	{Name: "ext4-64bit-metabg", SizeMiB: 128, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "1024", "-O", "64bit,meta_bg,^resize_inode"}, FS: "ext4", Fsck: []string{"e2fsck", "-fn"}, Slow: true},
	{Name: "ext4-bigalloc", SizeMiB: 256, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "4096", "-O", "bigalloc", "-C", "16384"}, FS: "ext4", Fsck: []string{"e2fsck", "-fn"}, Slow: true},
	{Name: "ext4-1k", SizeMiB: 64, Tool: "mkfs.ext4", Args: []string{"-q", "-F", "-b", "1024"}, FS: "ext4", Fsck: []string{"e2fsck", "-fn"}, Slow: true},
	{Name: "ext3", SizeMiB: 64, Tool: "mkfs.ext3", Args: []string{"-q", "-F"}, FS: "ext3", Fsck: []string{"e2fsck", "-fn"}},
	{Name: "ext2", SizeMiB: 64, Tool: "mkfs.ext2", Args: []string{"-q", "-F"}, FS: "ext2", Fsck: []string{"e2fsck", "-fn"}, Slow: true},
	{Name: "vfat12", SizeMiB: 16, Tool: "mkfs.vfat", Args: []string{"-F", "12"}, FS: "vfat", Access: ViaMtools, Fsck: []string{"fsck.vfat", "-n"}},
	{Name: "vfat16", SizeMiB: 64, Tool: "mkfs.vfat", Args: []string{"-F", "16"}, FS: "vfat", Access: ViaMtools, Fsck: []string{"fsck.vfat", "-n"}, Slow: true},
	{Name: "vfat32", SizeMiB: 128, Tool: "mkfs.vfat", Args: []string{"-F", "32"}, FS: "vfat", Access: ViaMtools, Fsck: []string{"fsck.vfat", "-n"}},
	{Name: "exfat", SizeMiB: 64, Tool: "mkfs.exfat", FS: "exfat", Access: ViaExFATFuse, Fsck: []string{"fsck.exfat", "-n"}},
	{Name: "ntfs", SizeMiB: 64, Tool: "mkntfs", Args: []string{"-F", "-Q", "-q"}, FS: "ntfs", Access: ViaNTFS3G, Fsck: []string{"ntfsfix", "-n"}},
	{Name: "swap", SizeMiB: 16, Tool: "mkswap", FS: "swap"},
}

// Lookup returns the case of Cases called name.
func Lookup(name string) (Case, bool) {
	for _, c := range Cases {
		if c.Name == name {
			return c, true
		}
	}
	return Case{}, false
}

// Tool returns the path of the named program, looked up in PATH and then in
// /usr/sbin and /sbin (not in a non-root PATH on Debian); it skips the test
// when the program is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := lookTool(name); ok {
		return p
	}
	t.Skipf("%s is not installed (Debian: %s)", name, installHint)
	return ""
}

const installHint = "apt-get install e2fsprogs dosfstools exfatprogs exfat-fuse ntfs-3g mtools partclone fdisk, or make deps"

func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// Require fails the test (it does not skip it) unless every named program
// is installed: for tests that must run wherever make test runs.
func Require(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, ok := lookTool(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s not installed (Debian: %s)", strings.Join(missing, ", "), installHint)
	}
}

// Run runs argv and returns its standard output; a failure fails the test
// with argv, stdout and stderr.
func Run(t testing.TB, argv ...string) string {
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

// Make creates the empty filesystem image for c in dir (dir/NAME.img,
// SizeMiB long, zeros where mkfs writes nothing) and returns its path.
func Make(t testing.TB, dir string, c Case) string {
	t.Helper()
	return makeFS(t, dir, c, false)
}

// MakeDirty is Make over a file first filled with pseudo-random bytes, as on
// a used disk: every block mkfs does not write, and so every free block,
// holds incompressible garbage that a copy of the used blocks must leave
// out. mke2fs is told not to discard (which would zero a file).
func MakeDirty(t testing.TB, dir string, c Case) string {
	t.Helper()
	return makeFS(t, dir, c, true)
}

func makeFS(t testing.TB, dir string, c Case, dirty bool) string {
	t.Helper()
	tool := Tool(t, c.Tool)
	img := filepath.Join(dir, c.Name+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	args := c.Args
	if dirty {
		if _, err := io.CopyN(f, rand.New(rand.NewSource(c.SizeMiB)), c.SizeMiB<<20); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(c.Tool, "mkfs.ext") || c.Tool == "mke2fs" {
			args = append(append([]string{}, args...), "-E", "nodiscard")
		}
	} else if err := f.Truncate(c.SizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	Run(t, append(append([]string{tool}, args...), img)...)
	return img
}

// Check runs c's read-only checker on img; a complaint fails the test.
func Check(t testing.TB, c Case, img string) {
	t.Helper()
	if len(c.Fsck) == 0 {
		t.Fatalf("%s has no checker", c.Name)
	}
	Run(t, append(append([]string{Tool(t, c.Fsck[0])}, c.Fsck[1:]...), img)...)
}

// Mount mounts img on a new directory through c's access route and returns
// the directory; it is unmounted at cleanup unless Umount ran first. ViaMtools
// cases cannot be mounted.
func Mount(t testing.TB, c Case, img string, ro bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting an image needs root")
	}
	mnt := t.TempDir()
	opt := "rw"
	if ro {
		opt = "ro"
	}
	switch c.Access {
	case ViaKernel:
		// mount -o loop picks a free loop device; when another process
		// (a test package beside this one in go test) takes the same
		// device at the same instant, mount fails with "already mounted
		// or mount point busy" (seen once): try again a few times.
		for try := 1; ; try++ {
			out, err := exec.Command(Tool(t, "mount"), "-o", "loop,"+opt, img, mnt).CombinedOutput()
			if err == nil {
				break
			}
			if try == 3 || !strings.Contains(string(out), "already mounted or mount point busy") {
				t.Fatalf("mount -o loop,%s %s: %v\n%s", opt, img, err, out)
			}
			t.Logf("mount -o loop,%s %s: %s; trying again", opt, img, strings.TrimSpace(string(out)))
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
	case ViaNTFS3G, ViaExFATFuse:
		// exfat-fuse run by root insists on a block device. ntfs-3g on a
		// plain file mounts as fuse, whose umount returns while the
		// daemon is still writing the volume; on a loop device it is
		// fuseblk, whose umount waits for it.
		loop := strings.TrimSpace(Run(t, Tool(t, "losetup"), "-f", "--show", img))
		t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
		prog := "ntfs-3g"
		if c.Access == ViaExFATFuse {
			prog = "mount.exfat-fuse"
		}
		Run(t, Tool(t, prog), "-o", opt, loop, mnt)
	default:
		t.Fatalf("%s is read and written through %v, not mounted", c.Name, c.Access)
	}
	// Registered after losetup's, so it runs first.
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// Umount unmounts what Mount mounted.
func Umount(t testing.TB, mnt string) {
	t.Helper()
	Run(t, Tool(t, "umount"), mnt)
}

// WriteTree fills dir with a deterministic mix of directories and files of
// random data: many small, a few medium, and two large ones of about
// total/6 bytes each.
func WriteTree(t testing.TB, dir string, seed int64, total int64) {
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

// victims lists the files of src that Populate deletes: every third one
// and the largest.
func victims(t testing.TB, src string) []string {
	t.Helper()
	var files []string
	var big string
	var bigSize int64
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Size() > bigSize {
				big, bigSize = rel, fi.Size()
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var v []string
	for i, f := range files {
		if i%3 == 0 && f != big {
			v = append(v, f)
		}
	}
	return append(v, big)
}

// Populate writes a tree of about half the volume into img, deletes a third
// of its files and the largest (their data stays behind as garbage in free
// blocks), writes a quarter of the volume more (which lands in the holes),
// and returns a directory holding the tree the image should now hold.
func Populate(t testing.TB, c Case, img string) (want string) {
	t.Helper()
	src := t.TempDir()
	fsBytes := c.SizeMiB << 20
	WriteTree(t, src, 1, fsBytes/2)
	dels := victims(t, src)
	later := filepath.Join(t.TempDir(), "later")
	WriteTree(t, later, 2, fsBytes/4)

	if c.Access == ViaMtools {
		mcopy := Tool(t, "mcopy")
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			Run(t, mcopy, "-i", img, "-s", "-Q", filepath.Join(src, e.Name()), "::/")
		}
		for _, v := range dels {
			Run(t, Tool(t, "mdel"), "-i", img, "::/"+filepath.ToSlash(v))
		}
		Run(t, mcopy, "-i", img, "-s", "-Q", later, "::/")
	} else {
		mnt := Mount(t, c, img, false)
		if err := os.CopyFS(mnt, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		Run(t, "sync")
		for _, v := range dels {
			if err := os.Remove(filepath.Join(mnt, v)); err != nil {
				t.Fatal(err)
			}
		}
		Run(t, "sync")
		if err := os.CopyFS(filepath.Join(mnt, "later"), os.DirFS(later)); err != nil {
			t.Fatal(err)
		}
		Umount(t, mnt)
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

// HashTree returns relative path → SHA-256 of every regular file under dir,
// leaving out lost+found and System Volume Information.
func HashTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	m, err := hashTree(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// HashTreeLenient is HashTree for a damaged filesystem after its checker
// ran: what cannot be read is left out instead of failing the test.
func HashTreeLenient(dir string) map[string]string {
	m, _ := hashTree(dir, true)
	return m
}

func hashTree(dir string, lenient bool) (map[string]string, error) {
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if lenient {
				return nil
			}
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
			if lenient {
				return nil
			}
			return err
		}
		s := sha256.Sum256(b)
		m[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
		return nil
	})
	return m, err
}

// ReadTree returns the hashes of the files in img, read through the same
// route that populated it.
func ReadTree(t testing.TB, c Case, img string) map[string]string {
	t.Helper()
	if c.Access == ViaMtools {
		out := t.TempDir()
		Run(t, Tool(t, "mcopy"), "-i", img, "-s", "-n", "-Q", "::/*", out)
		return HashTree(t, out)
	}
	mnt := Mount(t, c, img, true)
	defer Umount(t, mnt)
	return HashTree(t, mnt)
}

// SameTree fails the test unless got holds exactly the files of want with
// the same hashes; what names the copy in the messages.
func SameTree(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s holds %d files, the original %d", what, len(got), len(want))
	}
	bad := 0
	for p, h := range want {
		if got[p] != h {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s: SHA-256 %.12s, %.12s in the original", what, p, got[p], h)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d files differ in all", what, bad)
	}
}

// E2fsUsed is (Block count − Free blocks) × Block size from dumpe2fs -h:
// the bytes ext2/3/4 itself counts as in use, metadata included.
func E2fsUsed(t testing.TB, img string) int64 {
	t.Helper()
	out := Run(t, Tool(t, "dumpe2fs"), "-h", img)
	return (E2fsField(t, out, "Block count") - E2fsField(t, out, "Free blocks")) * E2fsField(t, out, "Block size")
}

// E2fsField returns the number after "name:" in dumpe2fs -h output.
func E2fsField(t testing.TB, dumpe2fs, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(\d+)$`).FindStringSubmatch(dumpe2fs)
	if m == nil {
		t.Fatalf("dumpe2fs -h has no %q:\n%s", name, dumpe2fs)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// FATUsed is the data area offset plus the used clusters that fsck.fat -nv
// counts by walking the FAT: everything up to the end of the FATs and root
// directory, and every cluster in use.
func FATUsed(t testing.TB, img string) int64 {
	t.Helper()
	out := Run(t, Tool(t, "fsck.fat"), "-nv", img)
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
