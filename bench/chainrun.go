package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/klauspost/compress/zstd"
)

// chainChangePct is how much of the file data the chain part rewrites
// between the full backup and the incremental.
const chainChangePct = 5

// RunChain measures backup chains on the ext4 image of the fs part: a full
// backup, then about 5 % of the file data rewritten, then an incremental
// (time against the full, size against the changed data compressed), a full
// restore of the new point against a delta restore onto a target holding
// the old one, and qemu-img's backing-file approach (convert -B) as a peer.
func RunChain(ctx context.Context, o Options, out io.Writer) error {
	b, err := lifeboatBench(o, "chain")
	if err != nil {
		return err
	}
	img, err := prepareFS(ctx, o.Dir, FSExt4, o.Seed, b.log)
	if err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(o.Dir, "chain-"+name) }
	work, old := p("work.img"), p("old.img")
	defer func() {
		for _, f := range []string{work, old, p("full.lbi"), p("inc.lbi"), p("full-warm.lbi"), p("inc-warm.lbi"), p("restored.img"), p("delta.img"), p("base.qcow2"), p("inc.qcow2"), p("qemu-restored.img")} {
			os.Remove(f)
		}
	}()
	if err := command(ctx, "cp", "--sparse=always", img.Path, work); err != nil {
		return err
	}
	lb := b.lifeboat
	type row struct {
		name  string
		res   result
		err   error
		image string // a backup's output, whose size the table shows
	}
	var rows []row
	size := func(f string) int64 {
		fi, err := os.Stat(f)
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	// runWith times one step writing output, from a cold page cache
	// unless warm; a backup's row shows its size. run: from a cold one.
	runWith := func(name string, argv []string, output string, backup bool, prepare func() error, warm bool) result {
		r, err := b.timedWith(ctx, name, [][]string{argv}, []string{output}, prepare, timing{warm: warm})
		rw := row{name: name, res: r, err: err}
		if backup {
			rw.image = output
		}
		rows = append(rows, rw)
		return r
	}
	run := func(name string, argv []string, output string, backup bool, prepare func() error) result {
		return runWith(name, argv, output, backup, prepare, false)
	}
	full := run("lifeboat full backup", []string{lb, "backup", "part", work, "-o", p("full.lbi"), "--yes"}, p("full.lbi"), true, nil)
	run("qemu-img full (the base)", []string{"qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", work, p("base.qcow2")}, p("base.qcow2"), true, nil)
	if err := command(ctx, lb, "restore", p("full.lbi"), "--target", old, "--yes"); err != nil {
		return err
	}
	changed, changedZ, err := rewriteFiles(ctx, work, o.Seed, chainChangePct)
	if err != nil {
		return err
	}
	inc := run("lifeboat incremental", []string{lb, "backup", "part", work, "--incremental", p("full.lbi"), "-o", p("inc.lbi"), "--yes"}, p("inc.lbi"), true, nil)
	// The backing file is named relative to the new image, as qemu-img
	// resolves it.
	run("qemu-img convert -B (backing file)", []string{"qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd",
		"-B", filepath.Base(p("base.qcow2")), "-F", "qcow2", work, p("inc.qcow2")}, p("inc.qcow2"), true, nil)
	// Again from a warm page cache, as issue 19 measured them, both of the
	// changed image: it is in memory after the cold incremental read it,
	// so this is the backups' own cost, not the disk's.
	fullW := runWith("lifeboat full backup, warm", []string{lb, "backup", "part", work, "-o", p("full-warm.lbi"), "--yes"}, p("full-warm.lbi"), true, nil, true)
	// --differential: the same work on the same parent as the incremental
	// above (--incremental would now build on that incremental, which
	// holds the changes already).
	incW := runWith("lifeboat incremental, warm (--differential)", []string{lb, "backup", "part", work, "--differential", p("full.lbi"), "-o", p("inc-warm.lbi"), "--yes"}, p("inc-warm.lbi"), true, nil, true)
	fullR := run("lifeboat full restore of the new point", []string{lb, "restore", p("inc.lbi"), "--target", p("restored.img"), "--yes"}, p("restored.img"), false, nil)
	deltaR := run("lifeboat delta restore onto the old point", []string{lb, "restore", p("inc.lbi"), "--target", p("delta.img"), "--delta", "--yes"},
		p("delta.img"), false, func() error { return command(ctx, "cp", "--sparse=always", old, p("delta.img")) })
	run("qemu-img restore of the new point", []string{"qemu-img", "convert", "-O", "raw", p("inc.qcow2"), p("qemu-restored.img")}, p("qemu-restored.img"), false, nil)
	if err := checkFS(ctx, FSExt4, p("delta.img")); err != nil {
		rows = append(rows, row{name: "check of the delta-restored image", err: err})
	}

	fmt.Fprintf(out, "\nLifeboat bench — chain (ext4 %s, %s used; %d%% of the file data rewritten: %s, %s compressed with zstd -3)\n",
		humanize.IBytes(uint64(img.Size)), humanize.IBytes(uint64(img.Used)), chainChangePct, humanize.IBytes(uint64(changed)), humanize.IBytes(uint64(changedZ)))
	fmt.Fprintf(out, "%-44s %9s %9s %10s\n", "step", "seconds", "CPU s", "size MB")
	var errs []error
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(out, "%-44s FAILED: %v\n", r.name, r.err)
			errs = append(errs, fmt.Errorf("bench: chain: %s: %w", r.name, r.err))
			continue
		}
		s := ""
		if r.image != "" {
			s = fmt.Sprintf("%10.1f", float64(size(r.image))/1e6)
		}
		fmt.Fprintf(out, "%-44s %9.2f %9.2f %s\n", r.name, r.res.wall.Seconds(), r.res.cpu.Seconds(), s)
	}
	ratio := func(a, b time.Duration) string {
		if a <= 0 || b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds())
	}
	// Cold, both read the source from the disk: the incremental must read
	// every used byte too (it hashes them against the full's chunks), so
	// the disk's speed bounds the ratio from below.
	fmt.Fprintf(out, "incremental ÷ full backup (goal ≤ 0.25): cold %s wall, %s CPU; warm %s wall, %s CPU\n",
		ratio(inc.wall, full.wall), ratio(inc.cpu, full.cpu), ratio(incW.wall, fullW.wall), ratio(incW.cpu, fullW.cpu))
	if changedZ > 0 {
		fmt.Fprintf(out, "incremental size ÷ changed data compressed: %.2f (qemu-img -B: %.2f)\n",
			float64(size(p("inc.lbi")))/float64(changedZ), float64(size(p("inc.qcow2")))/float64(changedZ))
	}
	if fullR.wall > 0 && deltaR.wall > 0 {
		fmt.Fprintf(out, "delta restore time ÷ full restore time: %.2f (goal ≤ 0.30)\n", deltaR.wall.Seconds()/fullR.wall.Seconds())
	}
	return errors.Join(errs...)
}

// rewriteFiles mounts the ext4 image, rewrites randomly chosen files with
// new random bytes until pct percent of the file data changed, and returns
// how many bytes it wrote and their length compressed with zstd -3 as one
// stream. It holds one file at a time: lbbench's own peak memory bounds the
// peak RSS it can see of every step run after it.
func rewriteFiles(ctx context.Context, img string, seed uint64, pct int) (changed, compressed int64, err error) {
	mnt := img + ".mnt"
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return 0, 0, err
	}
	defer os.Remove(mnt)
	if err := command(ctx, "mount", "-o", "loop", img, mnt); err != nil {
		return 0, 0, err
	}
	var files []string
	var total int64
	filepath.WalkDir(mnt, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				files = append(files, path)
				total += fi.Size()
			}
		}
		return nil
	})
	slices.Sort(files)
	r := rand.New(rand.NewPCG(seed, 99))
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	var z countWriter
	enc, err := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 1<<20)
	for _, f := range files {
		if changed*100 >= total*int64(pct) {
			break
		}
		fi, serr := os.Stat(f)
		if serr != nil || fi.Size()*100 > total*int64(pct)/4 {
			continue // not one file worth more than a quarter of the goal
		}
		if err = rewrite(f, fi.Size(), r, enc, buf); err != nil {
			break
		}
		changed += fi.Size()
	}
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	syncAll()
	if uerr := command(context.Background(), "umount", mnt); err == nil {
		err = uerr
	}
	return changed, z.n, err
}

// rewrite replaces the n bytes of file f with bytes from r, a piece of
// buf at a time, and feeds them to enc too.
func rewrite(f string, n int64, r *rand.Rand, enc io.Writer, buf []byte) error {
	out, err := os.OpenFile(f, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	for n > 0 && err == nil {
		b := buf[:min(n, int64(len(buf)))]
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if _, err = out.Write(b); err == nil {
			_, err = enc.Write(b)
		}
		n -= int64(len(b))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// lifeboatBench is the runner of a part that needs the lifeboat binary;
// caches are dropped before each run where the machine lets it.
func lifeboatBench(o Options, part string) (*fsBench, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &fsBench{o: o, log: log}
	b.lifeboat, b.lifeboatMissing = findLifeboat(o.Lifeboat)
	if b.lifeboatMissing != "" {
		return nil, fmt.Errorf("bench: %s part: %s", part, b.lifeboatMissing)
	}
	if err := dropCaches(); err != nil {
		b.cacheNote = err.Error()
	}
	return b, nil
}
