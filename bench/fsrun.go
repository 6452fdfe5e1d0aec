package bench

import (
	"context"
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

// RunFS is the filesystems part of the bench. For ext4 and NTFS it makes (or
// reuses) a 2 GiB image about half full of PlanFiles' data set, then backs it
// up and restores it once with lifeboat and with the tools people use
// instead — Clonezilla's partclone | zstd, qemu-img's compressed qcow2 and
// dd | zstd — dropping the page cache before each step, so every tool reads
// from the disk. Each restored image must pass the filesystem's checker.
// It prints one table per filesystem to out. Failures are marked in the
// table; all but a peer's image failing the checker (a finding about the
// peer) are returned, joined, after printing.
func RunFS(ctx context.Context, o Options, out io.Writer) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b := &fsBench{o: o, log: log}
	b.lifeboat, b.lifeboatMissing = findLifeboat(o.Lifeboat)
	if err := dropCaches(); err != nil {
		b.cacheNote = err.Error()
		log.Warn("cannot drop the page cache; times include cached reads", "err", err)
	}
	b.printHeader(ctx, out)

	var errs []error
	for _, t := range []FSType{FSExt4, FSNTFS} {
		img, err := prepareFS(ctx, o.Dir, t, o.Seed, log)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("bench: %w", ctx.Err())
			}
			fmt.Fprintf(out, "\n%s: no image: %v\n", t, err)
			errs = append(errs, err)
			continue
		}
		tbl := b.measure(ctx, t, img)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		fmt.Fprintln(out)
		tbl.print(out)
		errs = append(errs, tbl.errors()...)
	}
	return errors.Join(errs...)
}

type fsBench struct {
	o               Options
	log             *slog.Logger
	lifeboat        string
	lifeboatMissing string
	cacheNote       string // why the page cache is not dropped, if it is not
}

func (b *fsBench) printHeader(ctx context.Context, out io.Writer) {
	fmt.Fprintf(out, "\nLifeboat bench — filesystems (%s images, data set %s, seed %d), %d CPUs, page cache dropped before each step\n",
		humanize.IBytes(uint64(fsImageSize)), FSDataVersion, b.o.Seed, runtime.NumCPU())
	if b.cacheNote != "" {
		fmt.Fprintf(out, "WARNING: %s\n", b.cacheNote)
	}
	var versions []string
	for _, argv := range [][]string{{"partclone.extfs", "-v"}, {"qemu-img", "--version"}, {"zstd", "--version"}} {
		if v, err := commandLine(ctx, argv...); err == nil {
			versions = append(versions, strings.Trim(v, "* "))
		}
	}
	fmt.Fprintf(out, "peers: %s\n", strings.Join(versions, "; "))
}

// fsTool is one way to back up and restore a filesystem image.
type fsTool struct {
	name  string
	needs []string // executables; the row reads "not installed" without them
	// backup writes the image to the files of outputs; restore writes it
	// back to target, which prepare (if set) creates first, outside the timing.
	backup  [][]string
	outputs []string // glob patterns
	restore [][]string
	prepare func(target string) error
}

// tools are lifeboat and its peers; their files are named pfx+something,
// the restored image target.
func (b *fsBench) tools(t FSType, img *fsImage, pfx, target string) []fsTool {
	// The default (intelligent) mode: whatever lifeboat decides to store.
	return append([]fsTool{b.lifeboatTool("lifeboat", img, pfx+"lifeboat", target, []string{"--compression", "normal"}, nil)},
		peerTools(t, img, pfx, target)...)
}

// lifeboatTool backs img up to stem.lbi with the extra flags of backup, and
// restores it to target with those of restore.
func (b *fsBench) lifeboatTool(name string, img *fsImage, stem, target string, backup, restore []string) fsTool {
	lifeboat := b.lifeboat
	if lifeboat == "" {
		lifeboat = b.o.Lifeboat
	}
	lbi := stem + ".lbi"
	return fsTool{
		name:    name,
		needs:   []string{lifeboat},
		backup:  [][]string{append([]string{lifeboat, "backup", "part", img.Path, "-o", lbi, "--yes"}, backup...)},
		outputs: []string{stem + "*.lbi"},
		restore: [][]string{append([]string{lifeboat, "restore", lbi, "--target", target, "--yes"}, restore...)},
	}
}

// peerTools are the tools people use instead of lifeboat on an image.
func peerTools(t FSType, img *fsImage, pfx, target string) []fsTool {
	pc, qcow, zst := pfx+"partclone.pc.zst", pfx+"qemu.qcow2", pfx+"dd.zst"
	pclog := pfx + "partclone.log"
	return []fsTool{{
		// As Clonezilla saves a partition: partclone's image format to a
		// compressor; restoring needs a target of the right size.
		name:  "partclone+zstd-3",
		needs: []string{t.partclone(), "zstd"},
		backup: [][]string{
			{t.partclone(), "-c", "-q", "-L", pclog, "-s", img.Path, "-o", "-"},
			{"zstd", "-T0", "-3", "-q", "-o", pc},
		},
		outputs: []string{pc},
		restore: [][]string{
			{"zstd", "-dc", "-q", pc},
			// -O: write into the existing target; -o refuses an existing file.
			{t.partclone(), "-r", "-q", "-L", pclog, "-s", "-", "-O", target},
		},
		prepare: func(target string) error { return createSized(target, img.Size) },
	}, {
		name:    "qemu-img qcow2 zstd",
		needs:   []string{"qemu-img"},
		backup:  [][]string{{"qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", img.Path, qcow}},
		outputs: []string{qcow},
		restore: [][]string{{"qemu-img", "convert", "-O", "raw", qcow, target}},
	}, {
		// The same commands as the disk part's dd | zstd -3 rows.
		name:  "dd|zstd-3",
		needs: []string{"dd", "zstd"},
		backup: [][]string{
			{"dd", "if=" + img.Path, "bs=4M", "status=none"},
			{"zstd", "-T0", "-3", "-q", "-o", zst},
		},
		outputs: []string{zst},
		restore: [][]string{
			{"zstd", "-dc", "-q", zst},
			{"dd", "of=" + target, "bs=4M", "status=none", "conv=fsync"},
		},
	}}
}

// measure backs up and restores img with every tool, one after the other,
// and checks each restored image. It removes what it wrote.
// Repetitions go round all the tools, so that drift in the machine hits
// every tool alike.
func (b *fsBench) measure(ctx context.Context, t FSType, img *fsImage) *fsTable {
	tbl := &fsTable{fs: t, size: img.Size, used: img.Used, reps: max(1, b.o.FSReps)}
	pfx := filepath.Join(b.o.Dir, "fs-"+t.String()+"-")
	target := pfx + "restored.img"
	tools := b.tools(t, img, pfx, target)
	for _, tool := range tools {
		rw := &fsRow{name: tool.name}
		tbl.rows = append(tbl.rows, rw)
		for _, exe := range tool.needs {
			if _, err := exec.LookPath(exe); err != nil {
				rw.skipped = "not installed (" + exe + ")"
				break
			}
		}
	}
	for range tbl.reps {
		for i, tool := range tools {
			rw := tbl.rows[i]
			if ctx.Err() != nil || rw.skipped != "" || rw.backupErr != nil || rw.restoreErr != nil {
				continue
			}
			b.measureTool(ctx, t, tool, rw, target)
			for _, pattern := range slices.Concat(tool.outputs, []string{target}) {
				if err := removeGlob(pattern); err != nil {
					b.log.Warn("cleaning up failed", "err", err)
				}
			}
		}
	}
	return tbl
}

func (b *fsBench) measureTool(ctx context.Context, t FSType, tool fsTool, rw *fsRow, target string) {
	what := t.String() + " " + tool.name
	res, err := b.timed(ctx, "backup "+what, tool.backup, tool.outputs, nil)
	if err == nil {
		res.output, err = sumGlobSizes(tool.outputs)
	}
	if err != nil {
		if ctx.Err() == nil {
			rw.backupErr = err
		}
		return
	}
	rw.backups = append(rw.backups, res)
	var prepare func() error
	if tool.prepare != nil {
		prepare = func() error { return tool.prepare(target) }
	}
	res, err = b.timed(ctx, "restore "+what, tool.restore, []string{target}, prepare)
	if err != nil {
		if ctx.Err() == nil {
			rw.restoreErr = err
		}
		return
	}
	rw.restores = append(rw.restores, res)
	if rw.checked {
		return // the first restore was checked; the others run the same commands
	}
	rw.checked = true
	if err := checkFS(ctx, t, target); err != nil {
		rw.checkErr = err
		b.log.Error("check of the restored image failed", "what", what, "err", err)
	}
}

// timed removes the files of outputs, runs prepare, drops the page cache and
// runs the pipeline; the time ends when the outputs are on the disk.
func (b *fsBench) timed(ctx context.Context, what string, stages [][]string, outputs []string, prepare func() error) (result, error) {
	return b.timedWith(ctx, what, stages, outputs, prepare, timing{})
}

// timing changes how timedWith times a step; the zero value is timed's way.
type timing struct {
	// warm keeps the page cache: the step reads what earlier runs left
	// there, instead of from the disk.
	warm bool
	// sync, if set, puts the step's output on the disk in place of
	// fsyncing the files of outputs, inside the timing.
	sync func() error
}

// timedWith is timed, changed by tm.
func (b *fsBench) timedWith(ctx context.Context, what string, stages [][]string, outputs []string, prepare func() error, tm timing) (result, error) {
	for _, pattern := range outputs {
		if err := removeGlob(pattern); err != nil {
			return result{}, err
		}
	}
	if prepare != nil {
		if err := prepare(); err != nil {
			return result{}, fmt.Errorf("bench: prepare %s: %w", what, err)
		}
	}
	if b.cacheNote == "" && !tm.warm {
		if err := dropCaches(); err != nil {
			return result{}, err
		}
	} else {
		syncAll()
	}
	b.log.Info("run started", "what", what, "argv", pipelineString(stages))
	start := time.Now()
	res, err := runPipeline(ctx, stages, nil, "")
	// The sync that puts the output on the disk runs in this process, and
	// its kernel work (for ext4, allocating the blocks of delayed writes
	// and submitting them) is the step's: it counts in its CPU. A tool
	// that syncs its output itself (lifeboat, dd conv=fsync) pays it in
	// its own time and leaves little here; one that does not (qemu-img)
	// was, before this was counted, measured as if its output cost
	// nothing to write.
	syncStart := selfCPU()
	switch {
	case err != nil:
	case tm.sync != nil:
		err = tm.sync()
	default:
		err = syncGlobs(outputs)
	}
	res.syncCPU = selfCPU() - syncStart
	res.cpu += res.syncCPU
	if err != nil {
		b.log.Error("run failed", "what", what, "err", err)
		return result{}, err
	}
	res.wall = time.Since(start)
	b.log.Info("run finished", "what", what, "seconds", res.wall.Seconds(), "cpu_seconds", res.cpu.Seconds(), "sync_cpu_seconds", res.syncCPU.Seconds(), "lbbench_peak_rss_mb", selfPeakRSS()>>20)
	return res, nil
}

func syncGlobs(patterns []string) error {
	for _, pattern := range patterns {
		names, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if len(names) == 0 {
			return fmt.Errorf("bench: the command exited 0 but wrote no %s", pattern)
		}
		for _, name := range names {
			if err := syncFile(name); err != nil {
				return err
			}
		}
	}
	return nil
}

func sumGlobSizes(patterns []string) (int64, error) {
	var total int64
	for _, pattern := range patterns {
		n, err := globSize(pattern)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// fsTable is the result for one filesystem; rows[0] is lifeboat, which the
// ratios compare against.
type fsTable struct {
	fs         FSType
	size, used int64
	reps       int
	rows       []*fsRow
}

// fsRow is one tool on one filesystem. A failure ends the tool's runs.
type fsRow struct {
	name                  string
	skipped               string // why the row did not run
	backups, restores     []result
	backupErr, restoreErr error
	checked               bool  // the restored image went through the checker
	checkErr              error // what the checker said, if it failed
}

func (rw *fsRow) backupOK() bool {
	return rw.skipped == "" && rw.backupErr == nil && len(rw.backups) > 0
}

func (rw *fsRow) restoreOK() bool {
	return rw.backupOK() && rw.restoreErr == nil && len(rw.restores) > 0
}

// summary is what the table shows of several runs: the median time and CPU
// time, the last output size (the same every run) and the highest peak RSS.
func summary(runs []result) result {
	walls := make([]time.Duration, len(runs))
	cpus := make([]time.Duration, len(runs))
	var s result
	for i, r := range runs {
		walls[i], cpus[i] = r.wall, r.cpu
		s.output = r.output
		switch {
		case r.rssMax < 0 || s.rssMax < 0:
			s.rssMax = -1
		case r.rssMax > s.rssMax:
			s.rssMax, s.rssMaxUpperBound = r.rssMax, r.rssMaxUpperBound
		}
	}
	s.wall, s.cpu = median(walls), median(cpus)
	return s
}

// problems lists every failure in the table. A peer's restored image that
// fails the checker is a finding about that peer (partclone.ntfs, for one,
// leaves NTFS's backup boot sector in the volume's last sector unwritten),
// not a fault of the bench: it is shown, but not among errors.
func (t *fsTable) problems() (all, errs []error) {
	for _, rw := range t.rows {
		for _, e := range []struct {
			op      string
			err     error
			finding bool
		}{{"backup", rw.backupErr, false}, {"restore", rw.restoreErr, false}, {"check of restored image", rw.checkErr, rw.name != "lifeboat"}} {
			if e.err != nil {
				err := fmt.Errorf("%s %s %s: %w", t.fs, rw.name, e.op, e.err)
				all = append(all, err)
				if !e.finding {
					errs = append(errs, err)
				}
			}
		}
	}
	return all, errs
}

// errors are the failures RunFS returns: any of lifeboat's, and peers'
// commands that failed to run.
func (t *fsTable) errors() []error {
	_, errs := t.problems()
	return errs
}

const fsFormat = "%-20s %8s %10s %8s %6s %9s %6s %6s %12s %13s %10s  %s\n"

// print writes the table: times in seconds, speeds in MB/s of used bytes,
// sizes and RSS in decimal MB, ratios peer ÷ lifeboat.
func (t *fsTable) print(out io.Writer) {
	runs := "one run"
	if t.reps > 1 {
		runs = fmt.Sprintf("median of %d runs", t.reps)
	}
	fmt.Fprintf(out, "%s %s, %.2f GB used (%s)\n", t.fs, humanize.IBytes(uint64(t.size)), float64(t.used)/1e9, runs)
	fmt.Fprintf(out, fsFormat, "tool", "backup s", "MB/s(used)", "size MB", "RSS MB", "restore s", "MB/s", "RSS MB",
		"ratio backup", "ratio restore", "ratio size", "check")
	var lb *fsRow
	if len(t.rows) > 0 && t.rows[0].name == "lifeboat" {
		lb = t.rows[0]
	}
	anyBound := false
	rss := func(res result) string {
		if res.rssMax < 0 {
			return "n/a"
		}
		s := fmt.Sprintf("%.0f", float64(res.rssMax)/1e6)
		if res.rssMaxUpperBound {
			anyBound = true
			s = "≤" + s
		}
		return s
	}
	ratio := func(ok func(*fsRow) bool, rw *fsRow, value func(*fsRow) float64) string {
		switch {
		case lb == nil || !ok(lb) || !ok(rw):
			return "n/a"
		case rw == lb:
			return "1.00"
		}
		return fmt.Sprintf("%.2f×", value(rw)/value(lb))
	}
	backupTime := func(rw *fsRow) float64 { return summary(rw.backups).wall.Seconds() }
	restoreTime := func(rw *fsRow) float64 { return summary(rw.restores).wall.Seconds() }
	size := func(rw *fsRow) float64 { return float64(summary(rw.backups).output) }

	for _, rw := range t.rows {
		if rw.skipped != "" {
			fmt.Fprintf(out, "%-20s %s\n", rw.name, rw.skipped)
			continue
		}
		c := [11]string{"FAILED", "", "", "", "", "", "", "n/a", "n/a", "n/a", ""}
		if rw.backupOK() {
			backup := summary(rw.backups)
			c[0] = fmt.Sprintf("%.2f", backup.wall.Seconds())
			c[1] = fmt.Sprintf("%.0f", mbps(t.used, backup.wall))
			c[2] = fmt.Sprintf("%.1f", float64(backup.output)/1e6)
			c[3] = rss(backup)
			c[4] = "FAILED"
			c[7] = ratio((*fsRow).backupOK, rw, backupTime)
			c[9] = ratio((*fsRow).backupOK, rw, size)
		} else {
			c[4] = "skipped"
		}
		if rw.restoreOK() {
			restore := summary(rw.restores)
			c[4] = fmt.Sprintf("%.2f", restore.wall.Seconds())
			c[5] = fmt.Sprintf("%.0f", mbps(t.used, restore.wall))
			c[6] = rss(restore)
			c[8] = ratio((*fsRow).restoreOK, rw, restoreTime)
		}
		switch {
		case rw.checkErr != nil:
			c[10] = "FAIL"
		case rw.checked:
			c[10] = "ok"
		}
		fmt.Fprintf(out, fsFormat, rw.name, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10])
	}
	fmt.Fprintf(out, "MB/s: used bytes (%.0f MB) per second. RSS: the largest peak of a pipeline's processes. check: %s of the restored image.\n",
		float64(t.used)/1e6, map[FSType]string{FSExt4: "e2fsck -fn", FSNTFS: "ntfsfix -n"}[t.fs])
	fmt.Fprintln(out, "ratio: tool ÷ lifeboat; a time ratio > 1 means lifeboat is faster, a size ratio > 1 that lifeboat's backup is smaller.")
	if anyBound {
		fmt.Fprintf(out, "≤: the process used no more memory than lbbench itself (%.0f MB), whose peak Linux counts into a child's; the true figure may be lower.\n",
			float64(selfPeakRSS())/1e6)
	}
	all, _ := t.problems()
	for _, err := range all {
		fmt.Fprintf(out, "FAILED: %v\n", err)
	}
}

// createSized creates an empty (sparse) file of size bytes, like a partition
// that exists before a restore.
func createSized(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
