package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Options configures Run.
type Options struct {
	// Lifeboat is the lifeboat binary: a path, or a name looked up in PATH.
	// When it does not exist the lifeboat runs are skipped, so the peers can
	// be measured alone.
	Lifeboat string
	// Dir holds the generated disk, which is kept for the next run with the
	// same Size and Seed, and the outputs, which are removed at the end.
	Dir  string
	Size int64  // bytes of the generated disk
	Seed uint64 // seed of the generated disk
	// Reps is how often the main comparison (lifeboat normal against
	// dd | zstd -3, backup and restore) runs; the table shows the median.
	// Every other row runs once.
	Reps int
	// FSReps is how often RunFS backs up and restores with each tool; the
	// table shows the median. Less than 1 means 1.
	FSReps int
	// CPUSize is the size of RunCPU's ext4 image; 0 means DefaultCPUSize.
	// CPUReps is how often RunCPU runs each step in each cache state; the
	// table shows the median. Less than 1 means 1.
	CPUSize int64
	CPUReps int
	// Parts selects what Execute runs; Run and RunFS ignore it.
	Parts Parts
	// Log receives started/finished lines for each step; nil discards.
	Log *slog.Logger
	// Generator, if set, is a command that writes the disk when given
	// "FILE" appended: lbbench passes itself with -generate (and -size,
	// -seed). Generating in another process keeps this one small, which
	// matters because Linux counts the parent's peak RSS into each child's
	// (see peakRSS). Empty generates in this process.
	Generator []string
}

// password is what encrypted backups are made with, passed in the
// environment as LIFEBOAT_PASSWORD.
const password = "bench"

// Run generates (or reuses) the test disk in o.Dir, measures every backup and
// restore, and prints the table to out. Lifeboat runs that fail, and restores
// whose result differs from the disk, are marked FAILED in the table and make
// Run return an error after printing it. Run returns ctx.Err(), wrapped, when
// ctx is cancelled.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.Size <= 0 {
		return fmt.Errorf("bench: disk size %d: want a positive size", o.Size)
	}
	if o.Reps < 1 {
		return fmt.Errorf("bench: %d repetitions: want at least 1", o.Reps)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	r := &runner{o: o, log: log, loadStart: loadAverage()}
	r.lifeboat, r.lifeboatMissing = findLifeboat(o.Lifeboat)
	for _, tool := range []string{"dd", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench: %s is needed for the baseline runs; install it (apt-get install -y %s): %w",
				tool, map[string]string{"dd": "coreutils", "zstd": "zstd"}[tool], err)
		}
	}
	if err := r.prepareDisk(ctx); err != nil {
		return err
	}
	defer r.cleanup()

	rows := r.measureAll(ctx)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	r.print(out, rows)

	var errs []error
	for _, row := range rows {
		if row.err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", row.op, row.name, row.err))
		}
	}
	return errors.Join(errs...)
}

// runner holds the state of one Run.
type runner struct {
	o               Options
	log             *slog.Logger
	lifeboat        string // absolute path, if found
	lifeboatMissing string // why lifeboat runs are skipped, if they are
	disk            string
	diskSum         string // hex SHA-256 of the disk
	checks          []string
	loadStart       string
	made            []string // glob patterns of outputs to remove at the end
}

func findLifeboat(name string) (path, missing string) {
	p, err := exec.LookPath(name)
	if err == nil {
		p, err = filepath.Abs(p)
	}
	if err != nil {
		return "", fmt.Sprintf("%s not found, lifeboat runs skipped (build it with `go build -o bin/lifeboat ./cmd/lifeboat`, or pass -lifeboat PATH)", name)
	}
	return p, ""
}

// prepareDisk generates the disk unless a file of the same generator version,
// size and seed exists, then reads it once, which both warms the page cache
// and gives the checksum that restores are compared with.
func (r *runner) prepareDisk(ctx context.Context) error {
	r.disk = filepath.Join(r.o.Dir, fmt.Sprintf("mixed-%s-%s-seed%d.img", GeneratorVersion, sizeLabel(r.o.Size), r.o.Seed))
	if fi, err := os.Stat(r.disk); err == nil && fi.Size() == r.o.Size {
		r.log.Info("reusing test disk", "path", r.disk)
	} else {
		r.log.Info("generating test disk started", "path", r.disk, "size", r.o.Size, "seed", r.o.Seed)
		start := time.Now()
		if err := r.generate(ctx); err != nil {
			r.log.Error("generating test disk failed", "err", err)
			return err
		}
		r.log.Info("generating test disk finished", "seconds", time.Since(start).Seconds())
	}
	sum, err := fileSHA256(ctx, r.disk)
	if err != nil {
		return err
	}
	r.diskSum = sum
	r.log.Info("test disk read into the page cache", "sha256", sum)
	return nil
}

func (r *runner) generate(ctx context.Context) error {
	if len(r.o.Generator) == 0 {
		return GenerateFile(ctx, r.disk, r.o.Size, r.o.Seed)
	}
	argv := append(slices.Clip(r.o.Generator), r.disk)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("bench: generate test disk: %w", ctx.Err())
		}
		return fmt.Errorf("bench: generate test disk: %s: %w: %s", strings.Join(argv, " "), err, stderr.String())
	}
	return nil
}

// GenerateFile writes the disk under a temporary name and renames it into
// place, so an interrupted run never leaves a short disk to be reused. It
// syncs the file so that its writeback does not slow the first measurement.
func GenerateFile(ctx context.Context, path string, size int64, seed uint64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("bench: generate test disk: %w", err)
	}
	defer os.Remove(tmp) // after a successful rename, this fails harmlessly
	err = Generate(ctxWriter{ctx, f}, size, seed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("bench: generate test disk %s: %w", path, err)
	}
	return nil
}

// ctxWriter stops a long write loop once ctx is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func fileSHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	// A small buffer keeps this process's peak RSS, which children inherit
	// in their figures, small.
	if _, err := io.CopyBuffer(ctxWriter{ctx, h}, f, make([]byte, 256<<10)); err != nil {
		return "", fmt.Errorf("bench: checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// op is what a measured command does to the disk bytes.
type op string

const (
	opBackup  op = "backup"
	opRestore op = "restore"
)

// row is one line of the table: a command measured one or more times.
type row struct {
	op      op
	name    string
	results []result
	skipped string // why the row did not run
	err     error  // the first failure; the row stops running after it
}

// result is one measured run.
type result struct {
	wall time.Duration // from starting the first process to the end of the final fsync
	rss  int64         // peak RSS in bytes, summed over a pipeline's processes; -1 if unknown
	// rssUpperBound is set when a process's peak RSS was no more than
	// lbbench's own, which it inherits; the true figure may be lower.
	rssUpperBound bool
	// rssMax is the largest peak RSS of one of a pipeline's processes, in
	// bytes; -1 if unknown. rssMaxUpperBound is set when it was no more than
	// lbbench's own.
	rssMax           int64
	rssMaxUpperBound bool
	output           int64 // bytes written, for backups
	// cpu is user+sys time of all the processes, each with the descendants
	// it waited for (rusage), summed over a pipeline's stages, plus
	// syncCPU.
	cpu time.Duration
	// syncCPU is the part of cpu spent by lbbench itself syncing the
	// step's output inside the timing.
	syncCPU time.Duration
}

// step is one command of the plan: how to prepare, run and check it.
type step struct {
	row      *row
	lifeboat bool
	clean    []string   // glob patterns removed before the run
	stages   [][]string // a pipeline; one element for a single process
	env      []string
	fsync    string   // file to fsync inside the timed part
	output   []string // glob patterns whose sizes add up to the output size
	verify   string   // file that must equal the disk after the first run
	needs    *row     // a row whose output this step reads
}

func (r *runner) measureAll(ctx context.Context) []*row {
	dir := r.o.Dir
	lbi := func(name string) string { return filepath.Join(dir, name+".lbi") }
	lbiGlob := func(name string) string { return filepath.Join(dir, name+"*.lbi") }
	restored := filepath.Join(dir, "restored.img")

	var rows []*row
	newRow := func(o op, name string) *row {
		rw := &row{op: o, name: name}
		rows = append(rows, rw)
		return rw
	}
	lbBackup := func(rw *row, out, level string, extra ...string) step {
		argv := append([]string{r.lifeboat, "backup", "disk", r.disk, "-o", lbi(out), "--compression", level, "--yes"}, extra...)
		return step{row: rw, lifeboat: true, clean: []string{lbiGlob(out)}, stages: [][]string{argv}, output: []string{lbiGlob(out)}}
	}
	lbRestore := func(rw, from *row, out string, extra ...string) step {
		argv := append([]string{r.lifeboat, "restore", lbi(out), "--target", restored, "--yes"}, extra...)
		return step{row: rw, lifeboat: true, clean: []string{restored}, stages: [][]string{argv}, verify: restored, needs: from}
	}
	zstdBackup := func(rw *row, level string) step {
		zst := filepath.Join(dir, "zstd"+level+".zst")
		return step{row: rw, clean: []string{zst}, fsync: zst, output: []string{zst}, stages: [][]string{
			{"dd", "if=" + r.disk, "bs=4M", "status=none"},
			{"zstd", "-T0", level, "-q", "-o", zst},
		}}
	}
	zstdRestore := func(rw, from *row, level string) step {
		zst := filepath.Join(dir, "zstd"+level+".zst")
		return step{row: rw, clean: []string{restored}, verify: restored, needs: from, stages: [][]string{
			{"zstd", "-dc", "-q", zst},
			{"dd", "of=" + restored, "bs=4M", "status=none", "conv=fsync"},
		}}
	}

	// Rows appear in the table in this order.
	lbNormal := newRow(opBackup, "lifeboat normal")
	zstd3 := newRow(opBackup, "dd | zstd -T0 -3")
	lbFast := newRow(opBackup, "lifeboat fast")
	zstd1 := newRow(opBackup, "dd | zstd -T0 -1")
	lbHigh := newRow(opBackup, "lifeboat high")
	lbNone := newRow(opBackup, "lifeboat none")
	lbEnc := newRow(opBackup, "lifeboat normal encrypted")
	lbRestoreRow := newRow(opRestore, "lifeboat")
	lbNoVerify := newRow(opRestore, "lifeboat --no-verify")
	// What verifying every chunk before the first write costs: the old
	// checksum-only pre-check, with and without the read-back.
	lbNoPrecheck := newRow(opRestore, "lifeboat --no-precheck")
	lbNoChecks := newRow(opRestore, "lifeboat --no-precheck --no-verify")
	zstdRestoreRow := newRow(opRestore, "zstd -dc | dd")

	// The main comparison alternates lifeboat and its peer, so that drift in
	// the machine (other load, the disk's write cache) hits both alike.
	var plan []step
	for range r.o.Reps {
		plan = append(plan,
			lbBackup(lbNormal, "lifeboat-normal", "normal"),
			lbRestore(lbRestoreRow, lbNormal, "lifeboat-normal"),
			zstdBackup(zstd3, "-3"),
			zstdRestore(zstdRestoreRow, zstd3, "-3"),
		)
	}
	enc := lbBackup(lbEnc, "lifeboat-encrypted", "normal", "--encrypt")
	enc.env = []string{"LIFEBOAT_PASSWORD=" + password}
	plan = append(plan,
		lbRestore(lbNoVerify, lbNormal, "lifeboat-normal", "--no-verify"),
		lbRestore(lbNoPrecheck, lbNormal, "lifeboat-normal", "--no-precheck"),
		lbRestore(lbNoChecks, lbNormal, "lifeboat-normal", "--no-precheck", "--no-verify"),
		lbBackup(lbFast, "lifeboat-fast", "fast"),
		zstdBackup(zstd1, "-1"),
		lbBackup(lbHigh, "lifeboat-high", "high"),
		lbBackup(lbNone, "lifeboat-none", "none"),
		enc,
	)

	for _, s := range plan {
		if ctx.Err() != nil {
			break
		}
		r.made = append(r.made, s.clean...)
		rw := s.row
		switch {
		case rw.err != nil || rw.skipped != "":
			continue
		case s.lifeboat && r.lifeboatMissing != "":
			rw.skipped = "skipped: lifeboat not found"
			continue
		case s.needs != nil && s.needs.err != nil:
			rw.skipped = "skipped: its backup failed"
			continue
		}
		res, err := r.runStep(ctx, s, len(rw.results)+1)
		if err != nil {
			if ctx.Err() == nil {
				rw.err = err
			}
			continue
		}
		rw.results = append(rw.results, res)
	}
	return rows
}

// runStep removes the step's old outputs, syncs, runs and times the command,
// and checks a restored file after the row's first run.
func (r *runner) runStep(ctx context.Context, s step, n int) (result, error) {
	for _, pattern := range s.clean {
		if err := removeGlob(pattern); err != nil {
			return result{}, err
		}
	}
	// Flush what earlier runs left to write (and, with ext4's discard
	// option, trim what they deleted) so it is not charged to this run.
	syncAll()

	name := string(s.row.op) + " " + s.row.name
	r.log.Info("run started", "what", name, "run", n, "argv", pipelineString(s.stages))
	res, err := runPipeline(ctx, s.stages, s.env, s.fsync)
	if err != nil {
		r.log.Error("run failed", "what", name, "run", n, "err", err)
		return result{}, err
	}
	for _, pattern := range s.output {
		size, err := globSize(pattern)
		if err != nil {
			return result{}, err
		}
		res.output += size
	}
	r.log.Info("run finished", "what", name, "run", n, "seconds", res.wall.Seconds(), "MB/s", mbps(r.o.Size, res.wall), "output", res.output)

	if s.verify != "" && n == 1 {
		sum, err := fileSHA256(ctx, s.verify)
		if err != nil {
			return result{}, err
		}
		if sum != r.diskSum {
			r.checks = append(r.checks, fmt.Sprintf("%s %s: NOT IDENTICAL: %s has SHA-256 %s, the disk %s", s.row.op, s.row.name, s.verify, sum, r.diskSum))
			return result{}, fmt.Errorf("restored image %s differs from the disk %s: SHA-256 %s, want %s", s.verify, r.disk, sum, r.diskSum)
		}
		r.checks = append(r.checks, fmt.Sprintf("%s %s: identical to the disk (SHA-256 %s…)", s.row.op, s.row.name, sum[:16]))
	}
	return res, nil
}

func (r *runner) cleanup() {
	for _, pattern := range r.made {
		if err := removeGlob(pattern); err != nil {
			r.log.Warn("cleaning up failed", "err", err)
		}
	}
}

func removeGlob(pattern string) error {
	names, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, name := range names {
		// Only a previous run's files: never a device node (an output
		// named /dev/null once removed the machine's).
		if st, err := os.Lstat(name); err == nil && !st.Mode().IsRegular() && !st.IsDir() {
			return fmt.Errorf("bench: output %s is not a file; refusing to remove it", name)
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("bench: remove previous output: %w", err)
		}
	}
	return nil
}

func globSize(pattern string) (int64, error) {
	names, err := filepath.Glob(pattern)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("bench: the command exited 0 but wrote no %s", pattern)
	}
	var total int64
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		total += fi.Size()
	}
	return total, nil
}

// runPipeline runs stages connected stdout to stdin, like a shell pipeline,
// then fsyncs the file fsync if it is not empty. The wall time covers all of
// it; rss is the sum of the processes' peak resident set sizes, cpu the sum
// of their user and system times.
func runPipeline(ctx context.Context, stages [][]string, env []string, fsync string) (result, error) {
	cmds := make([]*exec.Cmd, len(stages))
	stderrs := make([]*tailBuffer, len(stages))
	for i, argv := range stages {
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		c.Env = append(os.Environ(), env...)
		stderrs[i] = &tailBuffer{}
		c.Stderr = stderrs[i]
		cmds[i] = c
	}
	cmds[len(cmds)-1].Stdout = stderrs[len(cmds)-1] // lifeboat may report on stdout
	var pipeEnds []*os.File
	for i := range len(cmds) - 1 {
		pr, pw, err := os.Pipe()
		if err != nil {
			return result{}, fmt.Errorf("bench: %w", err)
		}
		cmds[i].Stdout, cmds[i+1].Stdin = pw, pr
		pipeEnds = append(pipeEnds, pr, pw)
	}
	closePipes := func() {
		for _, f := range pipeEnds {
			f.Close()
		}
	}

	start := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, started := range cmds[:i] {
				started.Process.Kill()
				started.Wait()
			}
			closePipes()
			return result{}, fmt.Errorf("bench: start %s: %w", strings.Join(stages[i], " "), err)
		}
	}
	closePipes() // the children hold their own copies
	var errs []error
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w; stderr/stdout: %q", strings.Join(stages[i], " "), err, stderrs[i].String()))
		}
	}
	if err := ctx.Err(); err != nil {
		return result{}, fmt.Errorf("bench: %w", err)
	}
	if len(errs) > 0 {
		return result{}, errors.Join(errs...)
	}
	if fsync != "" {
		if err := syncFile(fsync); err != nil {
			return result{}, err
		}
	}
	res := result{wall: time.Since(start)}
	// Linux starts a child's peak RSS at this process's peak (exec keeps the
	// larger of the two), so a child that stayed below our own peak reports
	// ours: then the figure is only an upper bound.
	self := selfPeakRSS()
	for _, c := range cmds {
		res.cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		rss := maxRSS(c.ProcessState)
		if rss < 0 || res.rss < 0 || self < 0 {
			res.rss, res.rssMax = -1, -1
			continue
		}
		res.rss += rss
		res.rssMax = max(res.rssMax, rss)
		if rss <= self {
			res.rssUpperBound = true
		}
	}
	res.rssMaxUpperBound = res.rssMax >= 0 && res.rssMax <= self
	return res, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: fsync: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: fsync: %w", err)
	}
	return nil
}

func pipelineString(stages [][]string) string {
	parts := make([]string, len(stages))
	for i, argv := range stages {
		parts[i] = strings.Join(argv, " ")
	}
	return strings.Join(parts, " | ")
}

// tailBuffer keeps the last 4 KiB written to it: enough of a failed
// command's stderr to say why, without holding a chatty progress log.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	t.b = append(t.b, p...)
	if len(t.b) > keep {
		t.b = append(t.b[:0], t.b[len(t.b)-keep:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(bytes.TrimSpace(t.b)) }

// commandLine runs argv and returns the first line of its output, for
// version strings.
func commandLine(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return "", fmt.Errorf("%s: %w: %q", strings.Join(argv, " "), err, line)
	}
	return line, nil
}

// print writes the table. Times are medians; peak RSS is the highest seen.
func (r *runner) print(out io.Writer, rows []*row) {
	ctx := context.Background()
	size := r.o.Size
	fmt.Fprintf(out, "Lifeboat bench — %s mixed disk (seed %d), %d CPUs, median of %d\n", humanize.IBytes(uint64(size)), r.o.Seed, runtime.NumCPU(), r.o.Reps)
	if r.lifeboatMissing != "" {
		fmt.Fprintf(out, "lifeboat: %s\n", r.lifeboatMissing)
	} else if v, err := commandLine(ctx, r.lifeboat, "version"); err == nil {
		fmt.Fprintf(out, "lifeboat: %s (%s)\n", v, r.lifeboat)
	} else {
		fmt.Fprintf(out, "lifeboat: %s (no version: %v)\n", r.lifeboat, err)
	}
	zv, _ := commandLine(ctx, "zstd", "--version")
	dv, _ := commandLine(ctx, "dd", "--version")
	fmt.Fprintf(out, "peers: %s; %s\n", strings.Trim(zv, "* "), dv)
	fmt.Fprintf(out, "disk: %s, SHA-256 %s\n", r.disk, r.diskSum)
	// Other work on the machine is the usual cause of an outlying run.
	fmt.Fprintf(out, "load average: %s at the start, %s at the end\n\n", r.loadStart, loadAverage())

	const format = "%-7s %-27s %8s %7s %10s %7s %9s  %s\n"
	fmt.Fprintf(out, format, "", "what", "time", "MB/s", "output", "ratio", "peak RSS", "runs (range)")
	anyBound := false
	for _, rw := range rows {
		switch {
		case rw.err != nil:
			fmt.Fprintf(out, "%-7s %-27s FAILED (see below)\n", rw.op, rw.name)
			continue
		case len(rw.results) == 0:
			why := rw.skipped
			if why == "" {
				why = "not run"
			}
			fmt.Fprintf(out, "%-7s %-27s %s\n", rw.op, rw.name, why)
			continue
		}
		wall := rw.median()
		output, ratio := "", ""
		if rw.op == opBackup {
			o := rw.results[len(rw.results)-1].output
			output = fmt.Sprintf("%.1f MB", float64(o)/1e6)
			ratio = fmt.Sprintf("%.2f×", float64(o)/float64(size))
		}
		rss := "n/a"
		if peak, bound := rw.peakRSS(); peak >= 0 {
			rss = fmt.Sprintf("%.0f MB", float64(peak)/1e6)
			if bound {
				rss = "≤" + rss
				anyBound = true
			}
		}
		runs := "1"
		if n := len(rw.results); n > 1 {
			lo, hi := rw.results[0].wall, rw.results[0].wall
			for _, res := range rw.results {
				lo, hi = min(lo, res.wall), max(hi, res.wall)
			}
			runs = fmt.Sprintf("%d (%.2f–%.2f s)", n, lo.Seconds(), hi.Seconds())
		}
		fmt.Fprintf(out, format, rw.op, rw.name, fmt.Sprintf("%.2f s", wall.Seconds()),
			fmt.Sprintf("%.0f", mbps(size, wall)), output, ratio, rss, runs)
	}

	fmt.Fprintln(out)
	if anyBound {
		fmt.Fprintf(out, "≤: a process used no more memory than lbbench itself (%.0f MB), whose peak Linux counts into a child's; the true figure may be lower\n",
			float64(selfPeakRSS())/1e6)
	}
	for _, c := range r.checks {
		fmt.Fprintln(out, "check:", c)
	}
	byName := map[string]*row{}
	for _, rw := range rows {
		byName[string(rw.op)+" "+rw.name] = rw
	}
	speed := func(lb, peer string) string { // > 1 when lifeboat is faster
		a, b := byName[lb], byName[peer]
		if !a.ok() || !b.ok() {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", b.median().Seconds()/a.median().Seconds())
	}
	outSize := func(lb, peer string) string { // < 1 when lifeboat's is smaller
		a, b := byName[lb], byName[peer]
		if !a.ok() || !b.ok() {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", float64(a.results[0].output)/float64(b.results[0].output))
	}
	fmt.Fprintf(out, "ratios (lifeboat normal vs dd|zstd -3): backup speed %s, output size %s, restore speed %s\n",
		speed("backup lifeboat normal", "backup dd | zstd -T0 -3"),
		outSize("backup lifeboat normal", "backup dd | zstd -T0 -3"),
		speed("restore lifeboat", "restore zstd -dc | dd"))
	fmt.Fprintf(out, "ratios (lifeboat fast vs dd|zstd -1): backup speed %s, output size %s\n",
		speed("backup lifeboat fast", "backup dd | zstd -T0 -1"),
		outSize("backup lifeboat fast", "backup dd | zstd -T0 -1"))
	fmt.Fprintln(out, "(speed > 1× means lifeboat is faster; output size < 1× means lifeboat's output is smaller)")

	for _, rw := range rows {
		if rw.err != nil {
			fmt.Fprintf(out, "\nFAILED %s %s:\n%v\n", rw.op, rw.name, rw.err)
		}
	}
}

func (rw *row) ok() bool { return rw != nil && rw.err == nil && len(rw.results) > 0 }

func (rw *row) median() time.Duration {
	d := make([]time.Duration, len(rw.results))
	for i, res := range rw.results {
		d[i] = res.wall
	}
	return median(d)
}

// median returns the median of d, which it sorts; 0 for none.
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	switch n := len(d); {
	case n == 0:
		return 0
	case n%2 == 0:
		return (d[n/2-1] + d[n/2]) / 2
	}
	return d[len(d)/2]
}

// peakRSS returns the highest peak RSS of the row's runs, and whether that
// figure is only an upper bound.
func (rw *row) peakRSS() (int64, bool) {
	var peak int64
	var bound bool
	for _, res := range rw.results {
		if res.rss < 0 {
			return -1, false
		}
		if res.rss > peak {
			peak, bound = res.rss, res.rssUpperBound
		}
	}
	return peak, bound
}

// mbps is disk bytes per second in decimal megabytes.
func mbps(size int64, d time.Duration) float64 {
	return float64(size) / 1e6 / d.Seconds()
}
