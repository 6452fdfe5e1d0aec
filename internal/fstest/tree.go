//go:build linux

package fstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tree is what a filesystem holds, as Snapshot reads it: slash-separated
// relative path → "dir", "file <SHA-256>" or "link <target>"; with
// extended attributes, path + "@" + name → "xattr <SHA-256>".
type Tree map[string]string

// Diff lists how got differs from want, at most limit lines (0: all).
func (want Tree) Diff(got Tree, limit int) []string {
	var d []string
	for _, p := range slices.Sorted(mapKeys(want)) {
		if g, ok := got[p]; !ok {
			d = append(d, fmt.Sprintf("%s: missing (want %.20s)", p, want[p]))
		} else if g != want[p] {
			d = append(d, fmt.Sprintf("%s: %.20s, want %.20s", p, g, want[p]))
		}
	}
	for _, p := range slices.Sorted(mapKeys(got)) {
		if _, ok := want[p]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected %.20s", p, got[p]))
		}
	}
	if limit > 0 && len(d) > limit {
		d = append(d[:limit], fmt.Sprintf("... %d differences in all", len(d)))
	}
	return d
}

// Summary counts the tree's directories, files, bytes, links and extended
// attributes, for a log line.
func (tr Tree) Summary() string {
	var dirs, files, links, xattrs int
	for p, v := range tr {
		switch {
		case strings.Contains(p, "@"):
			xattrs++
		case v == "dir":
			dirs++
		case strings.HasPrefix(v, "link "):
			links++
		default:
			files++
		}
	}
	return fmt.Sprintf("%d directories, %d files, %d symbolic links, %d extended attributes", dirs, files, links, xattrs)
}

func mapKeys(m Tree) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Snapshot reads the tree under dir; xattrs adds the user.* extended
// attributes.
func Snapshot(t testing.TB, dir string, xattrs bool) Tree {
	t.Helper()
	tr := Tree{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			tr[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tr[rel] = "link " + target
			return nil
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tr[rel] = "file " + sum(b)
		default:
			tr[rel] = "other " + d.Type().String()
			return nil
		}
		if xattrs {
			return readXattrs(tr, p, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the tree under %s: %v", dir, err)
	}
	return tr
}

func readXattrs(tr Tree, p, rel string) error {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		tr[rel+"@"+name] = "xattr " + sum(v[:m])
	}
	return nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Kind is what a generated file holds.
type Kind int

const (
	KindRandom Kind = iota // incompressible bytes
	KindZero               // all zero bytes, written (not a hole)
	KindFF                 // all 0xFF bytes
	KindText               // compressible text
	KindSparse             // random pieces at random offsets, holes between
	KindMixed              // runs of zero, 0xFF and random bytes of odd lengths
)

func (k Kind) String() string {
	return [...]string{"random", "zero", "ff", "text", "sparse", "mixed"}[k]
}

type fileSpec struct {
	path string
	size int64
	kind Kind
	seed uint64
}

type extent struct{ off, n int64 }

// data returns the file's bytes, and the pieces that are written (the rest
// are holes, for KindSparse).
func (s fileSpec) data() ([]byte, []extent) {
	b := make([]byte, s.size)
	r := rand.New(rand.NewPCG(s.seed, uint64(s.size)))
	ch := rand.NewChaCha8([32]byte{byte(s.seed), byte(s.seed >> 8), byte(s.seed >> 16), byte(s.seed >> 24), byte(s.seed >> 32), byte(s.seed >> 40)})
	all := []extent{{0, s.size}}
	switch s.kind {
	case KindRandom:
		ch.Read(b)
	case KindFF:
		for i := range b {
			b[i] = 0xFF
		}
	case KindText:
		var w bytes.Buffer
		for i := 0; w.Len() < len(b); i++ {
			fmt.Fprintf(&w, "line %d of a generated file: %d\n", i, r.IntN(1000))
		}
		copy(b, w.Bytes())
	case KindSparse:
		var ext []extent
		for range 1 + r.IntN(5) {
			off := r.Int64N(max(s.size, 1))
			n := min(1+r.Int64N(max(s.size/4, 1)), s.size-off)
			ch.Read(b[off : off+n])
			ext = append(ext, extent{off, n})
		}
		sort.Slice(ext, func(i, j int) bool { return ext[i].off < ext[j].off })
		return b, ext
	case KindMixed:
		for off := int64(0); off < s.size; {
			n := min(1+r.Int64N(8191), s.size-off)
			switch r.IntN(3) {
			case 1:
				for i := off; i < off+n; i++ {
					b[i] = 0xFF
				}
			case 2:
				ch.Read(b[off : off+n])
			}
			off += n
		}
	}
	return b, all
}

// treeOps is how the tree writer changes a filesystem: through a mount or
// through mtools.
type treeOps interface {
	// mkdirs makes dirs in order and returns how many it made before the
	// filesystem was full.
	mkdirs(dirs []string) int
	// create writes files in order and returns how many it wrote before the
	// filesystem was full.
	create(files []fileSpec) int
	remove(files, dirs []string)
	// The rest work only through a mount (ok false otherwise).
	truncate(p string, n int64) (ok bool)
	symlink(p, target string) (ok bool)
	link(old, p string) (ok bool)
	setxattr(p, name string, v []byte) (ok bool)
	sync()
}

type mountOps struct {
	t   testing.TB
	mnt string
}

func (m mountOps) abs(p string) string { return filepath.Join(m.mnt, filepath.FromSlash(p)) }

func (m mountOps) mkdirs(dirs []string) int {
	for i, d := range dirs {
		if err := os.Mkdir(m.abs(d), 0o755); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return i
			}
			m.t.Fatal(err)
		}
	}
	return len(dirs)
}

func (m mountOps) create(files []fileSpec) int {
	for i, s := range files {
		if err := m.write(s); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				if err := os.Remove(m.abs(s.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					m.t.Fatalf("remove %s after ENOSPC: %v", s.path, err)
				}
				return i
			}
			m.t.Fatalf("write %s (%d bytes, %v): %v", s.path, s.size, s.kind, err)
		}
	}
	return len(files)
}

func (m mountOps) write(s fileSpec) error {
	b, ext := s.data()
	f, err := os.OpenFile(m.abs(s.path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	for _, e := range ext {
		if _, err := f.WriteAt(b[e.off:e.off+e.n], e.off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(s.size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (m mountOps) remove(files, dirs []string) {
	for _, p := range files {
		if err := os.Remove(m.abs(p)); err != nil {
			m.t.Fatal(err)
		}
	}
	for _, d := range dirs {
		if err := removeAll(m.abs(d)); err != nil {
			m.t.Fatal(err)
		}
	}
}

// removeAll is os.RemoveAll that tries again when a directory still looks
// non-empty: exfat-fuse, busy with other mounts, now and then answers the
// rmdir before the unlinks of its entries show (seen once in 200 cases,
// never again alone).
func removeAll(p string) error {
	var err error
	for try := range 10 {
		if err = os.RemoveAll(p); !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		time.Sleep(time.Duration(try+1) * 20 * time.Millisecond)
	}
	return err
}

func (m mountOps) truncate(p string, n int64) bool {
	if err := os.Truncate(m.abs(p), n); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return false
		}
		m.t.Fatal(err)
	}
	return true
}

func (m mountOps) symlink(p, target string) bool {
	if err := os.Symlink(target, m.abs(p)); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return false
		}
		m.t.Fatal(err)
	}
	return true
}

func (m mountOps) link(old, p string) bool {
	if err := os.Link(m.abs(old), m.abs(p)); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return false
		}
		m.t.Fatal(err)
	}
	return true
}

func (m mountOps) setxattr(p, name string, v []byte) bool {
	if err := unix.Lsetxattr(m.abs(p), name, v, 0); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.E2BIG) {
			return false
		}
		m.t.Fatalf("setxattr %s %s (%d bytes): %v", p, name, len(v), err)
	}
	return true
}

func (m mountOps) sync() {
	fd, err := unix.Open(m.mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		m.t.Fatalf("syncfs %s: %v", m.mnt, err)
	}
}

type mtoolsOps struct {
	t     testing.TB
	img   string
	stage string
}

func (m mtoolsOps) mkdirs(dirs []string) int {
	if len(dirs) == 0 {
		return 0
	}
	argv := []string{Tool(m.t, "mmd"), "-i", m.img}
	for _, d := range dirs {
		argv = append(argv, "::/"+d)
	}
	Run(m.t, argv...)
	return len(dirs)
}

func (m mtoolsOps) create(files []fileSpec) int {
	// One mcopy per directory.
	byDir := map[string][]string{}
	var order []string
	for _, s := range files {
		b, _ := s.data()
		local := filepath.Join(m.stage, filepath.FromSlash(s.path))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			m.t.Fatal(err)
		}
		if err := os.WriteFile(local, b, 0o644); err != nil {
			m.t.Fatal(err)
		}
		d := path.Dir(s.path)
		if byDir[d] == nil {
			order = append(order, d)
		}
		byDir[d] = append(byDir[d], local)
	}
	for _, d := range order {
		target := "::/"
		if d != "." {
			target += d + "/"
		}
		Run(m.t, append(append([]string{Tool(m.t, "mcopy"), "-i", m.img, "-Q", "-D", "o"}, byDir[d]...), target)...)
	}
	if err := os.RemoveAll(m.stage); err != nil {
		m.t.Fatal(err)
	}
	return len(files)
}

func (m mtoolsOps) remove(files, dirs []string) {
	if len(files) > 0 {
		argv := []string{Tool(m.t, "mdel"), "-i", m.img}
		for _, p := range files {
			argv = append(argv, "::/"+p)
		}
		Run(m.t, argv...)
	}
	if len(dirs) > 0 {
		argv := []string{Tool(m.t, "mdeltree"), "-i", m.img}
		for _, d := range dirs {
			argv = append(argv, "::/"+d)
		}
		Run(m.t, argv...)
	}
}

func (mtoolsOps) truncate(string, int64) bool          { return false }
func (mtoolsOps) symlink(string, string) bool          { return false }
func (mtoolsOps) link(string, string) bool             { return false }
func (mtoolsOps) setxattr(string, string, []byte) bool { return false }
func (mtoolsOps) sync()                                {}

// MountGeometry mounts img (a filesystem of c's kind) on a new directory
// and returns it with the function that unmounts it. NTFS and exFAT are
// mounted from a loop device, so that FUSE runs as fuseblk and umount
// returns only when the daemon has written everything back.
func MountGeometry(t testing.TB, c Case, img string, ro bool) (mnt string, umount func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("mounting %s needs root", img)
	}
	mnt = t.TempDir()
	opt := "rw"
	if ro {
		opt = "ro"
	}
	loop := ""
	switch c.Access {
	case ViaKernel:
		Run(t, Tool(t, "mount"), "-o", "loop,"+opt, img, mnt)
	case ViaNTFS3G, ViaExFATFuse:
		loop = strings.TrimSpace(Run(t, Tool(t, "losetup"), "-f", "--show", img))
		prog := "ntfs-3g"
		if c.Access == ViaExFATFuse {
			prog = "mount.exfat-fuse"
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(Tool(t, prog), "-o", opt, loop, mnt)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			Run(t, Tool(t, "losetup"), "-d", loop)
			t.Fatalf("%s -o %s %s %s: %v\n%s%s", prog, opt, loop, mnt, err, stdout.String(), stderr.String())
		}
	default:
		t.Fatalf("%s is read and written through %v, not mounted", c.Name, c.Access)
	}
	done := false
	umount = func() {
		if done {
			return
		}
		done = true
		umountRetry(t, mnt)
		if loop != "" {
			Run(t, Tool(t, "losetup"), "-d", loop)
		}
	}
	t.Cleanup(func() {
		if !done {
			// The test failed while it was mounted: unmount it all the
			// same, and say so if that fails too (never leak a mount).
			done = true
			umountRetry(t, mnt)
			if loop != "" {
				exec.Command("losetup", "-d", loop).Run()
			}
		}
	})
	return mnt, umount
}

// umountRetry unmounts mnt, waiting a little while it is busy: a program
// that is not ours (a scan of /tmp) may be looking into it.
func umountRetry(t testing.TB, mnt string) {
	t.Helper()
	var out []byte
	var err error
	for range 50 {
		if out, err = exec.Command(Tool(t, "umount"), mnt).CombinedOutput(); err == nil {
			return
		}
		if !bytes.Contains(out, []byte("busy")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	holders, _ := exec.Command("fuser", "-vm", mnt).CombinedOutput()
	t.Errorf("umount %s: %v\n%s\nholders: %s", mnt, err, out, holders)
}

// ReadGeometry returns the tree of img, a filesystem of g's kind, read
// through the route that wrote it (extended attributes included on ext).
func ReadGeometry(t testing.TB, g Geometry, img string) Tree {
	t.Helper()
	c := g.Case()
	if c.Access == ViaMtools {
		out := filepath.Join(t.TempDir(), "tree")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(Run(t, Tool(t, "mdir"), "-i", img, "-b", "::/")) != "" {
			Run(t, Tool(t, "mcopy"), "-i", img, "-s", "-n", "-Q", "-m", "::/*", out)
		}
		tr := Snapshot(t, out, false)
		os.RemoveAll(out)
		return tr
	}
	mnt, umount := MountGeometry(t, c, img, true)
	defer umount()
	return Snapshot(t, mnt, strings.HasPrefix(g.Family, "ext"))
}

// capacity is what a filesystem can still take: bytes and (where the
// filesystem has a fixed number) inodes.
type capacity struct {
	bytes, inodes int64
}

var bytesFree = regexp.MustCompile(`([\d ]+) bytes free`)

// RandomTree fills the filesystem img of geometry g with a random tree
// drawn from r and returns the tree it must now hold. It writes
// directories (one of them with many entries), tiny files of 1 byte to
// 3 KiB, empty files, small and medium files, and a few large ones;
// their contents are random, zero, 0xFF, text, sparse or mixed runs of odd
// lengths. It then deletes about half of the files and a directory
// subtree, truncates and extends some, and writes more, so that free
// space holds stale data; on ext it adds symbolic links (fast and slow),
// hard links and extended attributes big enough to need a block of their
// own, on NTFS hard links and symbolic links.
func RandomTree(t testing.TB, g Geometry, img string, r *rand.Rand) Tree {
	t.Helper()
	c := g.Case()
	var ops treeOps
	var capa capacity
	if c.Access == ViaMtools {
		ops = mtoolsOps{t: t, img: img, stage: filepath.Join(t.TempDir(), "stage")}
		out := Run(t, Tool(t, "mdir"), "-i", img, "::/")
		m := bytesFree.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("mdir -i %s: no \"bytes free\" in\n%s", img, out)
		}
		capa.bytes, _ = strconv.ParseInt(strings.ReplaceAll(m[1], " ", ""), 10, 64)
		capa.inodes = 1 << 30
	} else {
		mnt, umount := MountGeometry(t, c, img, false)
		defer umount()
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		capa.bytes = int64(st.Bavail) * st.Bsize
		capa.inodes = int64(st.Ffree)
		if capa.inodes <= 0 || capa.inodes > 1<<30 {
			capa.inodes = 1 << 30
		}
		ops = mountOps{t: t, mnt: mnt}
	}
	// A FAT32 of 4 GiB gets no more than a small one.
	capa.bytes = min(capa.bytes, 20<<20)
	w := &treeWriter{t: t, g: g, r: r, ops: ops, want: Tree{}, size: map[string]int64{}, content: map[string][]byte{},
		links: map[string]string{}}
	w.run(capa)
	return w.want
}

type treeWriter struct {
	t    testing.TB
	g    Geometry
	r    *rand.Rand
	ops  treeOps
	want Tree
	size map[string]int64 // live files' sizes
	// content holds live files' bytes (for truncations); links maps a
	// hard link to the file it was made from.
	content map[string][]byte
	links   map[string]string
	dirs    []string
	n       int   // names drawn
	used    int64 // allocation estimate of what is live
	nodes   int64
}

func (w *treeWriter) name(prefix string) string {
	w.n++
	s := fmt.Sprintf("%s%d", prefix, w.n)
	switch w.r.IntN(6) {
	case 0:
		const letters = "abcdefghijklmnopqrstuvwxyz0123456789-_"
		b := make([]byte, 14+w.r.IntN(60))
		for i := range b {
			b[i] = letters[w.r.IntN(len(letters))]
		}
		s += "-" + string(b)
	case 1, 2:
		s += pick(w.r, ".bin", ".txt", ".dat", ".jpeg")
	}
	return s
}

// cost estimates the space a file takes: whole blocks, and a little for
// its inode, MFT record or directory entries.
func (w *treeWriter) cost(n int64) int64 {
	b := int64(w.g.Block)
	return (n+b-1)/b*b + 1024
}

func (w *treeWriter) run(capa capacity) {
	r := w.r
	ext := strings.HasPrefix(w.g.Family, "ext")
	// The root of FAT12/16 holds a fixed number of entries: keep it to a
	// few directories.
	top := 1 + r.IntN(3)
	var mk []string
	for range top {
		d := fmt.Sprintf("d%d", len(mk))
		mk = append(mk, d)
	}
	for range r.IntN(10) {
		d := path.Join(pick(w.r, mk...), w.name("d"))
		mk = append(mk, d)
	}
	// A filesystem of a few clusters may be full before all are made:
	// files then go where there is room.
	mk = mk[:w.ops.mkdirs(mk)]
	for _, d := range mk {
		w.want[d] = "dir"
		w.used += w.cost(int64(w.g.Block))
		w.nodes++
	}
	w.dirs = mk
	if len(mk) == 0 {
		w.dirs = []string{"."}
	}
	busy := pick(w.r, w.dirs...) // gets many entries

	budget := capa.bytes*int64(40+r.IntN(35))/100 - w.used
	inodes := capa.inodes*7/10 - w.nodes
	phase1 := w.draw(budget, inodes, busy, true)
	done := w.ops.create(phase1)
	w.keep(phase1[:done])
	w.ops.sync()

	// Deletions: about half of the files, and sometimes a subtree.
	live := slices.Sorted(func(yield func(string) bool) {
		for p := range w.size {
			if !yield(p) {
				return
			}
		}
	})
	var del []string
	frac := 25 + r.IntN(40)
	for _, p := range live {
		if r.IntN(100) < frac {
			del = append(del, p)
		}
	}
	var deltree []string
	if len(w.dirs) > top && r.IntN(2) == 0 {
		d := w.dirs[top+r.IntN(len(w.dirs)-top)]
		deltree = append(deltree, d)
	}
	// Files inside the subtree go with it.
	var delFiles []string
	for _, p := range del {
		if !under(p, deltree) {
			delFiles = append(delFiles, p)
		}
	}
	w.ops.remove(delFiles, deltree)
	for _, p := range delFiles {
		w.drop(p)
	}
	for p := range w.want {
		if under(p, deltree) || slices.Contains(deltree, p) {
			w.drop(p)
		}
	}
	w.dirs = slices.DeleteFunc(w.dirs, func(d string) bool { return under(d, deltree) || slices.Contains(deltree, d) })

	// Truncations: shrink (stale bytes after the new end, in the last
	// block) and extend (a hole at the end).
	live = live[:0]
	for p := range w.size {
		live = append(live, p)
	}
	slices.Sort(live)
	for range r.IntN(4) {
		if len(live) == 0 {
			break
		}
		p := pick(r, live...)
		old := w.size[p]
		n := r.Int64N(old + 1)
		if r.IntN(3) == 0 {
			n = old + r.Int64N(256<<10)
		}
		if !w.ops.truncate(p, n) {
			break
		}
		w.size[p] = n
		w.content[p] = truncatedContent(w.content[p], n)
		w.want[p] = "file " + sum(w.content[p])
	}
	if ext || w.g.Family == "ntfs" {
		for range r.IntN(4) {
			if len(live) == 0 {
				break
			}
			old := pick(r, live...)
			p := path.Join(pick(r, w.dirs...), w.name("h"))
			if !w.ops.link(old, p) {
				break
			}
			w.want[p] = w.want[old]
			w.links[p] = old
		}
		for range r.IntN(5) {
			target := strings.Repeat("../", r.IntN(3)) + w.name("t")
			if r.IntN(2) == 0 {
				target += "/" + strings.Repeat("long-target-", 5+r.IntN(30)) // past the inode: a block of its own
			}
			p := path.Join(pick(r, w.dirs...), w.name("l"))
			if !w.ops.symlink(p, target) {
				break
			}
			w.want[p] = "link " + target
		}
	}
	if ext {
		for range r.IntN(6) {
			if len(live) == 0 {
				break
			}
			p := pick(r, live...)
			v := make([]byte, 20+r.IntN(pick(r, 200, 3000, 6000)))
			for i := range v {
				v[i] = byte(r.Uint32())
			}
			name := "user." + w.name("x")
			if !w.ops.setxattr(p, name, v) {
				continue
			}
			w.want[p+"@"+name] = "xattr " + sum(v)
			for h, o := range w.links {
				if o == p {
					w.want[h+"@"+name] = "xattr " + sum(v)
				}
			}
		}
	}

	// More files, landing in the holes.
	budget2 := capa.bytes*int64(55+r.IntN(25))/100 - w.used
	if !slices.Contains(w.dirs, busy) {
		busy = w.dirs[0]
	}
	if budget2 > 0 && capa.inodes*8/10 > w.nodes {
		phase2 := w.draw(budget2, capa.inodes*8/10-w.nodes, busy, false)
		done := w.ops.create(phase2)
		w.keep(phase2[:done])
		// Some of them go again.
		var again []string
		for _, s := range phase2[:done] {
			if r.IntN(8) == 0 && len(w.linksTo(s.path)) == 0 {
				again = append(again, s.path)
			}
		}
		w.ops.remove(again, nil)
		for _, p := range again {
			w.drop(p)
		}
	}
	w.ops.sync()
}

func (w *treeWriter) linksTo(p string) []string {
	var hs []string
	for h, o := range w.links {
		if o == p {
			hs = append(hs, h)
		}
	}
	return hs
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func truncatedContent(b []byte, n int64) []byte {
	if n <= int64(len(b)) {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

func (w *treeWriter) keep(files []fileSpec) {
	for _, s := range files {
		b, _ := s.data()
		w.want[s.path] = "file " + sum(b)
		w.size[s.path] = s.size
		w.content[s.path] = b
		w.used += w.cost(s.size)
		w.nodes++
	}
}

func (w *treeWriter) drop(p string) {
	if v, ok := w.want[p]; ok && strings.HasPrefix(v, "file ") {
		if _, live := w.size[p]; live {
			w.used -= w.cost(w.size[p])
		}
	}
	delete(w.want, p)
	delete(w.size, p)
	delete(w.content, p)
	for k := range w.want {
		if strings.HasPrefix(k, p+"@") {
			delete(w.want, k)
		}
	}
	for h, o := range w.links {
		if h == p {
			delete(w.links, h)
		}
		if o == p {
			// The hard link keeps the content; it is now the file.
			delete(w.links, h)
		}
	}
}

// draw picks files until budget bytes or inodes are spent: tiny ones
// mostly, a few large ones when large.
func (w *treeWriter) draw(budget, inodes int64, busy string, large bool) []fileSpec {
	r := w.r
	var out []fileSpec
	maxFiles := int64(20 + r.IntN(130))
	add := func(dir string, n int64, k Kind) bool {
		if n < 0 {
			n = 0
		}
		c := w.cost(n)
		if c > budget || inodes <= 0 || int64(len(out)) >= maxFiles {
			return false
		}
		budget -= c
		inodes--
		out = append(out, fileSpec{path: path.Join(dir, w.name("f")), size: n, kind: k, seed: r.Uint64()})
		return true
	}
	if large {
		for range 1 + r.IntN(2) {
			n := budget * int64(10+r.IntN(25)) / 100
			n = min(n, 8<<20) - r.Int64N(4096)
			add(pick(r, w.dirs...), n, pick(r, KindRandom, KindRandom, KindFF, KindFF, KindZero, KindSparse, KindMixed))
		}
	}
	// One directory gets many entries: it outgrows its first block.
	if r.IntN(2) == 0 {
		for range 30 + r.IntN(90) {
			if !add(busy, 1+r.Int64N(3072), w.kind()) {
				break
			}
		}
	}
	for budget > 0 {
		var n int64
		switch x := r.IntN(100); {
		case x < 3:
			n = 0
		case x < 45:
			n = 1 + r.Int64N(3072)
		case x < 80:
			n = 3072 + r.Int64N(61<<10)
		case x < 97:
			n = 64<<10 + r.Int64N(448<<10)
		default:
			n = 512<<10 + r.Int64N(2<<20)
		}
		if !add(pick(r, w.dirs...), n, w.kind()) {
			if n > 4096 && r.IntN(4) != 0 {
				continue // a smaller one may still fit
			}
			break
		}
	}
	return out
}

func (w *treeWriter) kind() Kind {
	switch x := w.r.IntN(100); {
	case x < 40:
		return KindRandom
	case x < 52:
		return KindZero
	case x < 64:
		return KindFF
	case x < 76:
		return KindText
	case x < 88:
		return KindSparse
	}
	return KindMixed
}
