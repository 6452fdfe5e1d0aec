package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// DefaultCPUSize is the cpu part's image size unless -cpu-size says
// otherwise: the whole part then takes about six minutes on two cores.
// Issue #19's reference measurement used 4 GiB.
const DefaultCPUSize = 1 << 30

// RunCPU is the cpu part of the bench (issue #19, "measure and report"):
// CPU time (user+sys of every process of a step), output size and wall
// time of backing up and restoring an ext4 image about 60 % full of
// PlanCPUFiles' data set, with lifeboat (default, fast, encrypted) and the
// tools people use instead — qemu-img's compressed qcow2, which the ratios
// compare against, dd | zstd, partclone | zstd and restic, which backs up
// the files rather than the image. Every step runs with a cold page cache
// (dropped before it) and then again warm, right after the cold run read
// the same input. Each restore is checked: images against the original's
// SHA-256 (then e2fsck -fn when they differ), restic's files against the
// source's. It prints one table per cache state to out; failures are
// marked and returned, joined, after printing — except a peer's restored
// image that fails the checker, which is a finding about the peer.
func RunCPU(ctx context.Context, o Options, out io.Writer) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.CPUSize <= 0 {
		o.CPUSize = DefaultCPUSize
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	c := &cpuBench{fsBench: &fsBench{o: o, log: log}, reps: max(1, o.CPUReps), loadStart: loadAverage()}
	c.lifeboat, c.lifeboatMissing = findLifeboat(o.Lifeboat)
	if err := dropCaches(); err != nil {
		c.cacheNote = err.Error()
		log.Warn("cannot drop the page cache; cold times include cached reads", "err", err)
	}
	ds := cpuDataSet(o.CPUSize)
	c.mix = mixOf(ds.plan(o.Seed))
	img, err := prepareImage(ctx, o.Dir, FSExt4, ds, o.Seed, log)
	if err != nil {
		return err
	}
	c.img = img
	if c.sum, err = fileSHA256(ctx, img.Path); err != nil {
		return err
	}
	c.pfx = filepath.Join(o.Dir, "cpu-")
	if err := os.WriteFile(c.pfx+"password", []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.Remove(c.pfx + "password")
	defer os.Remove(c.pfx + "partclone.log")

	rows := c.rows()
	for rep := range c.reps {
		for _, rw := range rows {
			if ctx.Err() != nil || rw.skipped != "" || rw.err != nil {
				continue
			}
			c.measure(ctx, rw, rep)
			rw.cleanup()
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	keyCost, keyErr := c.keyCost(ctx)
	c.printHeader(ctx, out)
	printCPUTables(out, rows)
	printEncryptCost(out, rowNamed(rows, "lifeboat"), rowNamed(rows, "lifeboat encrypted"), keyCost, keyErr)
	var errs []error
	for _, rw := range rows {
		if rw.err != nil {
			errs = append(errs, fmt.Errorf("bench: cpu: %s: %w", rw.name, rw.err))
		}
		if rw.checkErr != nil && !rw.peer {
			errs = append(errs, fmt.Errorf("bench: cpu: %s: check of the restored copy: %w", rw.name, rw.checkErr))
		}
	}
	return errors.Join(errs...)
}

type cpuBench struct {
	*fsBench
	reps      int
	img       *fsImage
	sum       string // SHA-256 of the image
	mix       planMix
	pfx       string // of the files the part writes
	loadStart string
}

// cache is the state of the page cache a step starts with.
type cache int

const (
	cold cache = iota // dropped before the step
	warm              // holding what the same step's cold run read
	numCaches
)

func (c cache) String() string {
	if c == warm {
		return "warm"
	}
	return "cold"
}

// cpuStep is a backup or a restore of one row.
type cpuStep struct {
	stages  [][]string
	outputs []string     // glob patterns: removed before, fsynced after, unless sync is set
	prepare func() error // outside the timing, before the page cache is dropped
	sync    func() error // inside the timing: puts the output on the disk
}

// cpuRow is one tool: how it backs up and restores, and what it measured.
type cpuRow struct {
	name            string
	peer            bool     // not lifeboat: a failed check is a finding, not an error
	needs           []string // executables
	backup, restore cpuStep
	size            func() (int64, error) // of the backup's output
	// check looks at the restored copy after the first restore and says
	// what it found.
	check func(ctx context.Context) (string, error)
	// begin and end go around each repetition of the row (restic: mount
	// the source); afterRestore runs after each restore (restic: unmount
	// the target); cleanup removes what the row wrote.
	begin        func(ctx context.Context) error
	end          func()
	afterRestore func()
	cleanup      func()

	skipped           string
	err               error // the first failure; the row stops running after it
	backups, restores [numCaches][]result
	checked           string // what check found
	checkErr          error
}

// fromFS makes a row of a tool of the fs part, whose restore writes the
// image file target.
func (c *cpuBench) fromFS(t fsTool, target string, peer bool) *cpuRow {
	var prepare func() error
	if t.prepare != nil {
		prepare = func() error { return t.prepare(target) }
	}
	patterns := slices.Concat(t.outputs, []string{target})
	return &cpuRow{
		name: t.name, peer: peer, needs: t.needs,
		backup:  cpuStep{stages: t.backup, outputs: t.outputs},
		restore: cpuStep{stages: t.restore, outputs: []string{target}, prepare: prepare},
		size:    func() (int64, error) { return sumGlobSizes(t.outputs) },
		check:   func(ctx context.Context) (string, error) { return c.checkImage(ctx, target) },
		cleanup: func() {
			for _, p := range patterns {
				if err := removeGlob(p); err != nil {
					c.log.Warn("cleaning up failed", "err", err)
				}
			}
		},
	}
}

// rows are the table's rows, in order: lifeboat's three, then the peers,
// qemu-img first as the reference of the ratios.
func (c *cpuBench) rows() []*cpuRow {
	target := c.pfx + "restored.img"
	pw := []string{"--password-file", c.pfx + "password"}
	rows := []*cpuRow{
		c.fromFS(c.lifeboatTool("lifeboat", c.img, c.pfx+"lb-default", target, nil, nil), target, false),
		c.fromFS(c.lifeboatTool("lifeboat fast", c.img, c.pfx+"lb-fast", target, []string{"--compression", "fast"}, nil), target, false),
		c.fromFS(c.lifeboatTool("lifeboat encrypted", c.img, c.pfx+"lb-encrypted", target, append([]string{"--encrypt"}, pw...), pw), target, false),
	}
	peers := peerTools(FSExt4, c.img, c.pfx, target)
	for _, name := range []string{cpuReference, "dd|zstd-3", "partclone+zstd-3"} {
		i := slices.IndexFunc(peers, func(t fsTool) bool { return t.name == name })
		rows = append(rows, c.fromFS(peers[i], target, true))
	}
	rows = append(rows, c.resticRow())
	for _, rw := range rows {
		for _, exe := range rw.needs {
			if _, err := exec.LookPath(exe); err != nil {
				rw.skipped = "not installed (" + exe + "; ./scripts/deps.sh installs it)"
				break
			}
		}
	}
	return rows
}

// cpuReference is the row the ratios compare against.
const cpuReference = "qemu-img qcow2 zstd"

// resticRow backs up the files, not the image: the image mounted read-only
// through a loop device, into a fresh repository each time (made by
// restic init outside the timing), without restic's local cache; it
// restores them into a freshly made ext4 of the image's size, mounted
// through a loop device, synced (syncfs) inside the timing.
func (c *cpuBench) resticRow() *cpuRow {
	repo, src := c.pfx+"restic-repo", c.pfx+"restic-src.mnt"
	target, mnt := c.pfx+"restic-target.img", c.pfx+"restic-target.mnt"
	absSrc, err := filepath.Abs(src)
	if err != nil {
		absSrc = src
	}
	restic := func(args ...string) []string {
		return append([]string{"restic", "-r", repo, "--password-file", c.pfx + "password", "--no-cache", "--quiet"}, args...)
	}
	unmount := func(dir string) {
		if err := command(context.Background(), "umount", dir); err != nil {
			c.log.Warn("unmount failed", "err", err)
		}
	}
	mounted := false
	return &cpuRow{
		name: "restic (files)", peer: true,
		needs: []string{"restic", "mount", "umount", "mkfs.ext4"},
		begin: func(ctx context.Context) error {
			for _, d := range []string{src, mnt} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("bench: %w", err)
				}
			}
			return command(ctx, "mount", "-t", "ext4", "-o", "ro,loop", c.img.Path, src)
		},
		end: func() { unmount(src) },
		backup: cpuStep{
			stages: [][]string{restic("backup", "--host", "lbbench", absSrc)},
			prepare: func() error {
				if err := os.RemoveAll(repo); err != nil {
					return err
				}
				return command(context.Background(), restic("init")...)
			},
			sync: func() error { return syncTree(repo) },
		},
		size: func() (int64, error) { return treeSize(repo) },
		restore: cpuStep{
			stages: [][]string{restic("restore", "latest", "--target", mnt)},
			prepare: func() error {
				if err := createSized(target, c.img.Size); err != nil {
					return err
				}
				if err := mkfs(context.Background(), FSExt4, target); err != nil {
					return err
				}
				if err := command(context.Background(), "mount", "-t", "ext4", "-o", "loop", target, mnt); err != nil {
					return err
				}
				mounted = true
				return nil
			},
			sync: func() error { return syncFS(mnt) },
		},
		afterRestore: func() {
			if mounted {
				unmount(mnt)
				mounted = false
			}
			os.Remove(target)
		},
		check: func(ctx context.Context) (string, error) {
			files, n, err := compareTrees(ctx, src, filepath.Join(mnt, absSrc))
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("same %d files (%s)", files, humanize.Bytes(uint64(n))), nil
		},
		cleanup: func() {
			os.RemoveAll(repo)
			os.Remove(target)
			os.Remove(src)
			os.Remove(mnt)
		},
	}
}

// measure runs one repetition of a row: backup cold, then warm; restore
// (of the warm backup's output) cold, then warm. It checks the first
// restore.
func (c *cpuBench) measure(ctx context.Context, rw *cpuRow, rep int) {
	if rw.begin != nil {
		if err := rw.begin(ctx); err != nil {
			rw.err = err
			return
		}
		defer rw.end()
	}
	for ch := range numCaches {
		res, err := c.step(ctx, "backup", rw, rw.backup, ch, rep)
		if err == nil {
			res.output, err = rw.size()
		}
		if err != nil {
			rw.err = fmt.Errorf("backup (%s cache): %w", ch, err)
			return
		}
		rw.backups[ch] = append(rw.backups[ch], res)
	}
	for ch := range numCaches {
		res, err := c.step(ctx, "restore", rw, rw.restore, ch, rep)
		if err == nil && rw.checked == "" && rw.checkErr == nil {
			rw.checked, rw.checkErr = rw.check(ctx)
			if rw.checkErr != nil {
				c.log.Error("check of the restored copy failed", "what", rw.name, "err", rw.checkErr)
			}
		}
		if rw.afterRestore != nil {
			rw.afterRestore()
		}
		if err != nil {
			rw.err = fmt.Errorf("restore (%s cache): %w", ch, err)
			return
		}
		rw.restores[ch] = append(rw.restores[ch], res)
	}
}

func (c *cpuBench) step(ctx context.Context, op string, rw *cpuRow, s cpuStep, ch cache, rep int) (result, error) {
	what := fmt.Sprintf("cpu %s %s (%s cache, run %d)", op, rw.name, ch, rep+1)
	return c.timedWith(ctx, what, s.stages, s.outputs, s.prepare, timing{warm: ch == warm, sync: s.sync})
}

// checkImage compares a restored image with the original: identical
// bytes, or else a clean e2fsck -fn.
func (c *cpuBench) checkImage(ctx context.Context, path string) (string, error) {
	sum, err := fileSHA256(ctx, path)
	if err != nil {
		return "", err
	}
	if sum == c.sum {
		return "identical", nil
	}
	if err := checkFS(ctx, FSExt4, path); err != nil {
		return "", fmt.Errorf("differs from the image (SHA-256 %s, want %s) and fails e2fsck: %w", sum, c.sum, err)
	}
	return "e2fsck ok, bytes differ", nil
}

// compareTrees checks that dst holds the same regular files, directories
// and symbolic links as src, with the same bytes, and returns the number of
// files and their bytes.
func compareTrees(ctx context.Context, src, dst string) (files int, n int64, err error) {
	bufA, bufB := make([]byte, 256<<10), make([]byte, 256<<10)
	seen := 0
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		seen++
		other := filepath.Join(dst, rel)
		st, err := os.Lstat(other)
		if err != nil {
			return fmt.Errorf("restored tree: %w", err)
		}
		if st.Mode().Type() != d.Type() {
			return fmt.Errorf("restored %s is a %v, the source a %v", other, st.Mode().Type(), d.Type())
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		size, err := sameContent(path, other, bufA, bufB)
		n += size
		return err
	})
	if err != nil {
		return files, n, err
	}
	inDst := 0
	err = filepath.WalkDir(dst, func(_ string, _ fs.DirEntry, err error) error {
		inDst++
		return err
	})
	if err == nil && inDst != seen {
		err = fmt.Errorf("restored tree %s has %d entries, the source %d", dst, inDst, seen)
	}
	return files, n, err
}

// sameContent compares two files' bytes and returns their size.
func sameContent(a, b string, bufA, bufB []byte) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	var n int64
	for {
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB[:max(na, 1)])
		n += int64(na)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return n, fmt.Errorf("restored %s differs from %s near byte %d", b, a, n)
		}
		switch {
		case errA == io.EOF || errA == io.ErrUnexpectedEOF:
			if _, err := fb.Read(bufB[:1]); err != io.EOF {
				return n, fmt.Errorf("restored %s is longer than %s (%d bytes)", b, a, n)
			}
			return n, nil
		case errA != nil:
			return n, errA
		case errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF:
			return n, errB
		}
	}
}

// treeSize is the bytes of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bench: size of %s: %w", dir, err)
	}
	return n, nil
}

// syncTree fsyncs every regular file under dir (restic fsyncs what it
// writes; this costs little more than a look).
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		return syncFile(path)
	})
}

const cpuFormat = "%-8s %-20s %7s %9s %7s %7s %9s %10s %10s %12s  %-23s %s\n"

// printHeader says what was measured, with what, and how.
func (c *cpuBench) printHeader(ctx context.Context, out io.Writer) {
	runs := "one run"
	if c.reps > 1 {
		runs = fmt.Sprintf("median of %d runs", c.reps)
	}
	fmt.Fprintf(out, "\nLifeboat bench — CPU (issue #19): ext4 %s, %.2f GB in use (%.0f %%), data set %s, seed %d, %d CPUs, %s\n",
		humanize.IBytes(uint64(c.img.Size)), float64(c.img.Used)/1e9, 100*float64(c.img.Used)/float64(c.img.Size),
		c.img.Version, c.o.Seed, runtime.NumCPU(), runs)
	fmt.Fprintf(out, "files: %v; free space zeros\n", c.mix)
	fmt.Fprintf(out, "image: %s, SHA-256 %s\n", c.img.Path, c.sum)
	if c.lifeboatMissing != "" {
		fmt.Fprintf(out, "lifeboat: %s\n", c.lifeboatMissing)
	} else if v, err := commandLine(ctx, c.lifeboat, "version"); err == nil {
		fmt.Fprintf(out, "lifeboat: %s (%s); encrypted: --encrypt (aes-256-gcm), password from a file\n", v, c.lifeboat)
	}
	var versions []string
	for _, argv := range [][]string{{"qemu-img", "--version"}, {"zstd", "--version"}, {"partclone.extfs", "-v"}, {"restic", "version"}} {
		if v, err := commandLine(ctx, argv...); err == nil {
			versions = append(versions, strings.Trim(v, "* "))
		}
	}
	fmt.Fprintf(out, "peers: %s\n", strings.Join(versions, "; "))
	fmt.Fprintln(out, "restic backs up the files: the image mounted read-only (loop), a fresh repository each run (init outside the timing), --no-cache, default compression (auto);")
	fmt.Fprintln(out, "  it restores into a freshly made ext4 of the same size, mounted (loop) and synced with syncfs inside the timing; the image tools restore to an image file, fsynced.")
	fmt.Fprintln(out, "CPU-s: user+sys of every process of the step, both sides of a pipeline (rusage of the children), plus lbbench's own fsync/syncfs of the output inside the timing")
	fmt.Fprintln(out, "  (writing out what a tool left dirty: its cost, as a tool that syncs itself pays it); kernel writeback and loop-device threads are not counted.")
	if c.cacheNote != "" {
		fmt.Fprintf(out, "WARNING: %s\n", c.cacheNote)
	}
	fmt.Fprintf(out, "load average: %s at the start, %s at the end\n", c.loadStart, loadAverage())
}

// printCPUTables writes a table for each cache state, then the ratios of
// lifeboat's default row and the failures.
func printCPUTables(out io.Writer, rows []*cpuRow) {
	anyBound := false
	for ch := range numCaches {
		fmt.Fprintln(out)
		if ch == cold {
			fmt.Fprintln(out, "cold cache: page cache dropped (sync; echo 3 > drop_caches) before each step")
		} else {
			fmt.Fprintln(out, "warm cache: each step right after its cold run, which read the same input")
		}
		fmt.Fprintf(out, cpuFormat, "", "tool", "CPU-s", "output MB", "wall s", "RSS MB", "CPU ×qemu", "size ×qemu", "wall ×qemu", "size ×restic", "range CPU-s / wall s", "check")
		ref := rowNamed(rows, cpuReference)
		restic := rowNamed(rows, "restic (files)")
		for _, op := range []string{"backup", "restore"} {
			for _, rw := range rows {
				runs := rw.backups[ch]
				refRuns, resticRuns := ref.backups[ch], restic.backups[ch]
				if op == "restore" {
					runs, refRuns = rw.restores[ch], ref.restores[ch]
				}
				if len(runs) == 0 {
					why := rw.skipped
					if why == "" {
						why = "FAILED (see below)"
					}
					fmt.Fprintf(out, "%-8s %-20s %s\n", op, rw.name, why)
					continue
				}
				s := summary(runs)
				output, sizeRef, sizeRestic, check := "", "", "", ""
				if op == "backup" {
					output = fmt.Sprintf("%.1f", float64(s.output)/1e6)
					sizeRef, sizeRestic = ratioOf(runs, refRuns, outputBytes), ratioOf(runs, resticRuns, outputBytes)
				} else if ch == cold {
					check = rw.checked
					if rw.checkErr != nil {
						check = "FAIL (see below)"
					}
				}
				if rw.err != nil && check == "" {
					check = "a later run FAILED (see below)"
				}
				rss := "n/a"
				if s.rssMax >= 0 {
					rss = fmt.Sprintf("%.0f", float64(s.rssMax)/1e6)
					if s.rssMaxUpperBound {
						rss, anyBound = "≤"+rss, true
					}
				}
				fmt.Fprintf(out, cpuFormat, op, rw.name, fmt.Sprintf("%.2f", s.cpu.Seconds()), output,
					fmt.Sprintf("%.2f", s.wall.Seconds()), rss, ratioOf(runs, refRuns, cpuSeconds), sizeRef, ratioOf(runs, refRuns, wallSeconds), sizeRestic,
					spread(runs), check)
			}
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "×qemu: the row ÷ qemu-img qcow2 zstd in the same cache state (< 1: less CPU, smaller, faster); ×restic: output size ÷ restic's repository.")
	fmt.Fprintln(out, "RSS: the largest peak of the step's processes. check: the first restore's copy against the original (images: SHA-256, then e2fsck -fn if they differ; restic: every file's bytes).")
	if anyBound {
		fmt.Fprintf(out, "≤: the process used no more memory than lbbench itself (%.0f MB), whose peak Linux counts into a child's; the true figure may be lower.\n",
			float64(selfPeakRSS())/1e6)
	}
	lb, ref, restic := rowNamed(rows, "lifeboat"), rowNamed(rows, cpuReference), rowNamed(rows, "restic (files)")
	for ch := range numCaches {
		r, cpu, size, wall := ratioOf, cpuSeconds, outputBytes, wallSeconds
		fmt.Fprintf(out, "ratios, %s cache, lifeboat ÷ qemu-img zstd: backup CPU %s, size %s, wall %s; restore CPU %s, wall %s. lifeboat ÷ restic: backup CPU %s, size %s, wall %s\n",
			ch, r(lb.backups[ch], ref.backups[ch], cpu), r(lb.backups[ch], ref.backups[ch], size), r(lb.backups[ch], ref.backups[ch], wall),
			r(lb.restores[ch], ref.restores[ch], cpu), r(lb.restores[ch], ref.restores[ch], wall),
			r(lb.backups[ch], restic.backups[ch], cpu), r(lb.backups[ch], restic.backups[ch], size), r(lb.backups[ch], restic.backups[ch], wall))
	}
	for _, rw := range rows {
		if rw.err != nil {
			fmt.Fprintf(out, "FAILED: %s: %v\n", rw.name, rw.err)
		}
		if rw.checkErr != nil {
			fmt.Fprintf(out, "FAILED: %s: check of the restored copy: %v\n", rw.name, rw.checkErr)
		}
	}
}

// keyCost is the CPU an encrypted backup pays once per image, whatever
// its size: deriving the key from the password (Argon2id, 3 passes over
// 64 MiB). It is measured as the median CPU of an encrypted backup of a
// 1 MiB file minus that of a plain one, warm, over 5 pairs.
func (c *cpuBench) keyCost(ctx context.Context) (time.Duration, error) {
	if c.lifeboatMissing != "" {
		return 0, errors.New(c.lifeboatMissing)
	}
	src, out := c.pfx+"key-src.img", c.pfx+"key.lbi"
	defer os.Remove(src)
	defer os.Remove(out)
	b := make([]byte, 1<<20)
	var seed [32]byte
	seed[0] = byte(c.o.Seed)
	rand.NewChaCha8(seed).Read(b)
	if err := os.WriteFile(src, b, 0o644); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	var diffs []time.Duration
	for i := range 5 {
		var cpu [2]time.Duration
		for j, extra := range [][]string{nil, {"--encrypt", "--password-file", c.pfx + "password"}} {
			args := append([]string{c.lifeboat, "backup", "disk", src, "-o", out, "--yes"}, extra...)
			res, err := c.timedWith(ctx, fmt.Sprintf("cpu key cost, %s (run %d of 5)", []string{"plain", "encrypted"}[j], i+1), [][]string{args}, []string{out}, nil, timing{warm: true})
			if err != nil {
				return 0, err
			}
			cpu[j] = res.cpu
		}
		diffs = append(diffs, cpu[1]-cpu[0])
	}
	slices.Sort(diffs)
	return diffs[len(diffs)/2], nil
}

// printEncryptCost says what --encrypt adds to the backup's CPU, split
// into the key's fixed cost and the rest, which grows with the data.
func printEncryptCost(out io.Writer, plain, enc *cpuRow, key time.Duration, keyErr error) {
	if keyErr != nil {
		fmt.Fprintf(out, "--encrypt: the key's cost was not measured: %v\n", keyErr)
		return
	}
	for ch := range numCaches {
		if len(plain.backups[ch]) == 0 || len(enc.backups[ch]) == 0 {
			continue
		}
		p, e := summary(plain.backups[ch]).cpu.Seconds(), summary(enc.backups[ch]).cpu.Seconds()
		k := key.Seconds()
		rest := fmt.Sprintf("+ %.1f %% for the data", 100*(e-p-k)/p)
		if e-p < k {
			rest = fmt.Sprintf("and the rest below this run's noise (%.1f %%)", 100*(e-p-k)/p)
		}
		fmt.Fprintf(out, "--encrypt, %s cache: %+.0f %% CPU (goal ≤ 10 %%) = %.2f CPU-s once per image for the key (Argon2id; an encrypted minus a plain backup of 1 MiB, median of 5) %s\n",
			ch, 100*(e-p)/p, k, rest)
	}
}

// ratioOf is the median of value over runs ÷ that over ref, or "n/a".
func ratioOf(runs, ref []result, value func(result) float64) string {
	if len(runs) == 0 || len(ref) == 0 || value(summary(ref)) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", value(summary(runs))/value(summary(ref)))
}

func cpuSeconds(r result) float64  { return r.cpu.Seconds() }
func wallSeconds(r result) float64 { return r.wall.Seconds() }
func outputBytes(r result) float64 { return float64(r.output) }

func rowNamed(rows []*cpuRow, name string) *cpuRow {
	if i := slices.IndexFunc(rows, func(rw *cpuRow) bool { return rw.name == name }); i >= 0 {
		return rows[i]
	}
	return &cpuRow{}
}

// spread is the range of CPU and wall time over runs, or "" for one run.
func spread(runs []result) string {
	if len(runs) < 2 {
		return ""
	}
	lo, hi := runs[0], runs[0]
	for _, r := range runs {
		lo.cpu, hi.cpu = min(lo.cpu, r.cpu), max(hi.cpu, r.cpu)
		lo.wall, hi.wall = min(lo.wall, r.wall), max(hi.wall, r.wall)
	}
	return fmt.Sprintf("%.1f–%.1f / %.1f–%.1f", lo.cpu.Seconds(), hi.cpu.Seconds(), lo.wall.Seconds(), hi.wall.Seconds())
}
