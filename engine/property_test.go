//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// Every filesystem the real mkfs tools make, in any geometry, filled with
// any tree, backs up intelligently (only its used blocks), checks, and
// restores to a filesystem its own checker finds clean and that holds the
// same files. Geometries and trees are drawn at random from a seed: the
// FNV-1a hash of the test's name, or LIFEBOAT_PROPERTY_SEED. Case i of a
// seed is always the same filesystem, so one failing case reruns alone:
//
//	LIFEBOAT_PROPERTY_SEED=0x... go test -count=1 -run 'TestPropertyFilesystems/^017-' ./engine/
//
// LIFEBOAT_PROPERTY_N sets how many cases (default 200; 16 with -short),
// LIFEBOAT_PROPERTY_PARALLEL how many run at once (default 3: most of a
// case is waiting on mkfs, FUSE and fsync).
func TestPropertyFilesystems(t *testing.T) {
	seed := propertySeed(t)
	n := 200
	if testing.Short() {
		n = 16
	}
	n = envInt(t, "LIFEBOAT_PROPERTY_N", n)
	par := envInt(t, "LIFEBOAT_PROPERTY_PARALLEL", 3)
	t.Logf("seed %#x, %d filesystems, %d at once; reproduce with LIFEBOAT_PROPERTY_SEED=%#x", seed, n, par, seed)
	if os.Geteuid() != 0 {
		t.Fatal("the property test mounts filesystems (ext through the kernel, NTFS and exFAT through FUSE on loop devices): run it as root")
	}
	fstest.Require(t, fstest.GeometryTools...)

	start := time.Now()
	var refused, ran atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if propertyCase(t, seed, i, &refused) {
					ran.Add(1)
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("seed %#x: %d filesystems backed up and restored in %v (%d geometries mkfs refused were drawn again)",
		seed, ran.Load(), time.Since(start).Round(time.Second), refused.Load())
}

func propertySeed(t *testing.T) uint64 {
	if s := os.Getenv("LIFEBOAT_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("LIFEBOAT_PROPERTY_SEED=%q: %v", s, err)
		}
		return v
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return h.Sum64()
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// propertyCase draws case i of seed (drawing again while mkfs refuses the
// geometry) and runs it as a subtest; it reports whether it ran.
func propertyCase(t *testing.T, seed uint64, i int, refused *atomic.Int64) bool {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	tag := fmt.Sprintf("seed %#x case %03d", seed, i)
	dir, err := os.MkdirTemp("", fmt.Sprintf("lifeboat-property-%03d-", i))
	if err != nil {
		t.Errorf("%s: %v", tag, err)
		return false
	}
	defer os.RemoveAll(dir)
	var g fstest.Geometry
	var img string
	var why []string
	for {
		g = fstest.RandomGeometry(r)
		img, err = fstest.MakeGeometry(dir, g)
		if !errors.Is(err, fstest.ErrRefused) {
			break
		}
		refused.Add(1)
		if why = append(why, err.Error()); len(why) > 100 {
			err = fmt.Errorf("mkfs refused 100 geometries in a row; the last: %s", why[len(why)-1])
			break
		}
	}
	name := fmt.Sprintf("%03d-%s", i, g)
	var ran bool
	t.Run(name, func(t *testing.T) {
		ran = true
		st := seeded{TB: t, tag: fmt.Sprintf("%s (%s; rerun: LIFEBOAT_PROPERTY_SEED=%#x go test -count=1 -run 'TestPropertyFilesystems/^%03d-' ./engine/)", tag, g, seed, i)}
		if err != nil {
			st.Fatal(err)
		}
		t.Logf("%s: %s %q, partition table %q at sector %d", st.tag, g.Tool, g.Args, g.Table, g.Start)
		if s := g.Second; s != nil {
			t.Logf("partition 2: %s %q at sector %d", s.Tool, s.Args, s.Start)
		}
		runPropertyCase(st, r, dir, g, img)
	})
	return ran
}

// seeded prefixes every failure with the seed and case that reproduce it,
// and turns a skip into a failure: the property test never skips quietly.
type seeded struct {
	testing.TB
	tag string
}

func (s seeded) Error(a ...any) { s.TB.Helper(); s.TB.Error(append([]any{s.tag + ":"}, a...)...) }
func (s seeded) Errorf(f string, a ...any) {
	s.TB.Helper()
	s.TB.Errorf("%s: "+f, append([]any{s.tag}, a...)...)
}
func (s seeded) Fatal(a ...any) { s.TB.Helper(); s.TB.Fatal(append([]any{s.tag + ":"}, a...)...) }
func (s seeded) Fatalf(f string, a ...any) {
	s.TB.Helper()
	s.TB.Fatalf("%s: "+f, append([]any{s.tag}, a...)...)
}
func (s seeded) Skip(a ...any) { s.TB.Helper(); s.Fatal(append([]any{"would skip:"}, a...)...) }
func (s seeded) Skipf(f string, a ...any) {
	s.TB.Helper()
	s.Fatalf("would skip: "+f, a...)
}
func (s seeded) SkipNow() { s.TB.Helper(); s.Fatal("would skip") }

// propertyFS is one filesystem of a case: a bare one, or a partition.
type propertyFS struct {
	g    fstest.Geometry
	img  string
	orig fstest.Tree // as read back before the backup
}

func runPropertyCase(t seeded, r *rand.Rand, dir string, g fstest.Geometry, img string) {
	fss := []*propertyFS{{g: g, img: img}}
	if g.Second != nil {
		fss = append(fss, &propertyFS{g: *g.Second, img: fstest.SecondImage(dir)})
	}
	for i, f := range fss {
		want := fstest.RandomTree(t, f.g, f.img, r)
		t.Logf("filesystem %d: tree: %s", i+1, want.Summary())
		fstest.Check(t, f.g.Case(), f.img)
		f.orig = fstest.ReadGeometry(t, f.g, f.img)
		for p, v := range want {
			if f.orig[p] != v {
				t.Fatalf("the tree writer left %s as %.20q in filesystem %d, want %.20q: a fault of the test's tools, not of Lifeboat",
					p, f.orig[p], i+1, v)
			}
		}
	}

	source, kind := img, images.KindPartition
	if g.Table != "" {
		source, kind = fstest.MakeDisk(t, dir, g, img), images.KindDisk
		// The disk holds the partitions now; the bare copies are not needed.
		for _, f := range fss {
			if err := os.Remove(f.img); err != nil {
				t.Fatal(err)
			}
		}
	}

	o := BackupOptions{Source: source, Kind: kind, Output: filepath.Join(dir, "backup.lbi"),
		Compression: images.Level(r.IntN(4)), ChunkSize: pick(r, 0, 0, 64<<10, 256<<10, 1<<20)}
	var password func() ([]byte, error)
	if r.IntN(4) == 0 {
		o.Password = []byte(fmt.Sprintf("pw-%d", r.Uint32()))
		o.Cipher = pick(r, images.CipherAES256GCM, images.CipherXChaCha20Poly1305)
		o.KDF = images.KDFCost{Time: 1, MemKiB: 64}
		pw := o.Password
		password = func() ([]byte, error) { return pw, nil }
	}
	if r.IntN(5) == 0 {
		o.SplitSize = 64<<10 + r.Int64N(4<<20)
	}
	t.Logf("backup %s: compression %v, chunk size %d, cipher %v, split size %d", kind, o.Compression, o.ChunkSize, o.Cipher, o.SplitSize)
	ctx := context.Background()
	res, err := Backup(ctx, o)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if res.Mode != images.ModeUsed || len(res.Fallbacks) > 0 {
		t.Errorf("backup stored %s (fallbacks %q): a clean %s must be mapped", res.Mode, res.Fallbacks, g.FS())
	}
	t.Logf("backup: %d of %d bytes unused, %d chunks, %d stored bytes", res.Unused, res.SourceSize, res.Chunks, res.Stored)

	if _, err := Check(ctx, CheckOptions{Image: o.Output, Password: password}); err != nil {
		t.Fatalf("check of the image backup reported as written: %v", err)
	}
	info, err := Info(t.Context(), o.Output, password)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	checkInfo(t, fss, info)

	// A disk image is restored whole, or (a third of them) one partition
	// alone.
	part := 0
	if g.Table != "" && r.IntN(3) == 0 {
		part = 1 + r.IntN(len(fss))
	}
	target := filepath.Join(dir, "restore.img")
	// A third go onto a file that already holds garbage, as onto a used
	// disk: what the image leaves out must not matter there either.
	// (Not the FAT32 of gigabytes: they stay sparse.)
	n := fileSize(t, source)
	if part != 0 {
		n = fss[part-1].g.Size
	}
	garbage := r.IntN(3) == 0 && n <= 64<<20
	if garbage {
		fstest.FillRandom(t, target, n, r.Uint64())
	}
	t.Logf("restore partition %d (onto garbage: %v)", part, garbage)
	if _, err := Restore(ctx, RestoreOptions{Image: o.Output, Password: password, Target: target, Partition: part}); err != nil {
		t.Fatalf("restore (partition %d): %v", part, err)
	}
	if err := os.RemoveAll(o.Output); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, target); got != n {
		t.Errorf("the restore (partition %d) is %d bytes, want %d", part, got, n)
	}
	switch {
	case g.Table == "":
		verifyRestored(t, fss[0], target, "the restored filesystem")
	case part != 0:
		verifyRestored(t, fss[part-1], target, fmt.Sprintf("the restored partition %d", part))
	default:
		if a, b := fstest.PartitionTable(t, source), fstest.PartitionTable(t, target); a != b {
			t.Errorf("the restored partition table differs:\n%s\nthe original:\n%s", b, a)
		}
		for i, f := range fss {
			fsImg := filepath.Join(dir, fmt.Sprintf("restored-%d.img", i+1))
			fstest.CopyRange(t, fsImg, 0, target, f.g.Start*512, f.g.Size)
			verifyRestored(t, f, fsImg, fmt.Sprintf("partition %d of the restored disk", i+1))
			os.Remove(fsImg)
		}
	}
}

// verifyRestored runs the filesystem's checker on img and compares its
// tree with the original's.
func verifyRestored(t seeded, f *propertyFS, img, what string) {
	t.Helper()
	fstest.Check(t, f.g.Case(), img)
	got := fstest.ReadGeometry(t, f.g, img)
	if d := f.orig.Diff(got, 20); len(d) > 0 {
		t.Errorf("%s (%s) differs from the original:\n%s", what, f.g, strings.Join(d, "\n"))
	}
}

func checkInfo(t seeded, fss []*propertyFS, info *ImageInfo) {
	if len(info.Meta.Streams) != 1 {
		t.Fatalf("info: %d streams, want 1", len(info.Meta.Streams))
	}
	s := info.Meta.Streams[0]
	type found struct {
		mode   images.Mode
		reason string
		fs     *images.FS
	}
	got := []found{{s.Mode, s.ModeReason, s.FS}}
	if g := fss[0].g; g.Table != "" {
		if s.Table == nil || string(s.Table.Type) != g.Table || len(s.Table.Partitions) != len(fss) {
			t.Fatalf("info: table %+v, want %s with %d partitions", s.Table, g.Table, len(fss))
		}
		got = got[:0]
		for _, p := range s.Table.Partitions {
			got = append(got, found{p.Mode, p.ModeReason, p.FS})
		}
	}
	for i, f := range fss {
		want := f.g.FS()
		if got[i].mode != images.ModeUsed {
			t.Errorf("info: filesystem %d: mode %s (%s), want %s", i+1, got[i].mode, got[i].reason, images.ModeUsed)
		}
		if fs := got[i].fs; fs == nil {
			t.Errorf("info: filesystem %d: none found, want %s", i+1, want)
		} else if fs.Type != want && !(strings.HasPrefix(fs.Type, "ext") && strings.HasPrefix(want, "ext")) {
			t.Errorf("info: filesystem %d: %s, want %s", i+1, fs.Type, want)
		}
	}
}

func fileSize(t seeded, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }
