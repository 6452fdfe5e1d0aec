package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
)

// RunExplore measures getting files back on the ext4 image of the fs
// part, backed up once: lifeboat cat of one small file (its whole run is
// the time to the first byte a user waits for), extract of a folder
// against the way without it (restore the partition, mount it, copy the
// folder), and export to qcow2 against qemu-img convert of a restored
// image.
func RunExplore(ctx context.Context, o Options, out io.Writer) error {
	b, err := lifeboatBench(o, "explore")
	if err != nil {
		return err
	}
	img, err := prepareFS(ctx, o.Dir, FSExt4, o.Seed, b.log)
	if err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(o.Dir, "explore-"+name) }
	lbi, mnt := p("img.lbi"), p("mnt")
	defer func() {
		for _, f := range []string{lbi, p("restored.img"), p("x.qcow2"), p("q.qcow2"), p("out"), p("copy"), p("cat.out"), mnt} {
			os.RemoveAll(f)
		}
	}()
	lb := b.lifeboat
	if err := command(ctx, lb, "backup", "part", img.Path, "-o", lbi, "--yes", "-q"); err != nil {
		return err
	}
	if err := command(ctx, lb, "restore", lbi, "--target", p("restored.img"), "--yes", "-q"); err != nil {
		return err
	}
	small, folder := "", "src"
	var folderBytes int64
	for _, f := range PlanFiles(o.Seed) {
		if !strings.HasPrefix(f.Path, folder+"/") || f.Delete {
			continue
		}
		if small == "" {
			small = f.Path
		}
		folderBytes += f.Size
	}
	clean := func(paths ...string) func() error {
		return func() error {
			for _, x := range paths {
				if err := os.RemoveAll(x); err != nil {
					return err
				}
			}
			return nil
		}
	}
	type row struct {
		name string
		res  result
		err  error
	}
	var rows []row
	run := func(name string, script string, output string, prepare func() error) result {
		r, err := b.timed(ctx, name, [][]string{{"sh", "-c", script}}, []string{output}, prepare)
		rows = append(rows, row{name, r, err})
		return r
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	cat := run("lifeboat cat of one small file", fmt.Sprintf("%s cat %s %s > %s", q(lb), q(lbi), q(small), q(p("cat.out"))), p("cat.out"), nil)
	ext := run("lifeboat extract of /"+folder, fmt.Sprintf("%s extract %s /%s -o %s -q", q(lb), q(lbi), folder, q(p("out"))), p("out"), clean(p("out")))
	peer := run("restore + mount + cp -a of /"+folder, fmt.Sprintf("set -e; %s restore %s --target %s --yes -q; mkdir -p %s; mount -o ro,loop,noload %s %s; cp -a %s/%s %s; umount %s",
		q(lb), q(lbi), q(p("restored.img")), q(mnt), q(p("restored.img")), q(mnt), q(mnt), folder, q(p("copy")), q(mnt)), p("copy"), clean(p("copy"), p("restored.img")))
	exp := run("lifeboat export to qcow2", fmt.Sprintf("%s export %s -o %s -q", q(lb), q(lbi), q(p("x.qcow2"))), p("x.qcow2"), clean(p("x.qcow2")))
	conv := run("qemu-img convert of the restored image", fmt.Sprintf("qemu-img convert -O qcow2 %s %s", q(p("restored.img")), q(p("q.qcow2"))), p("q.qcow2"), clean(p("q.qcow2")))

	fmt.Fprintf(out, "\nLifeboat bench — explore (ext4 %s, %s used; /%s holds %s in small files)\n",
		humanize.IBytes(uint64(img.Size)), humanize.IBytes(uint64(img.Used)), folder, humanize.IBytes(uint64(folderBytes)))
	fmt.Fprintf(out, "%-44s %9s\n", "step", "seconds")
	var errs []error
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(out, "%-44s FAILED: %v\n", r.name, r.err)
			errs = append(errs, fmt.Errorf("bench: explore: %s: %w", r.name, r.err))
			continue
		}
		fmt.Fprintf(out, "%-44s %9.2f\n", r.name, r.res.wall.Seconds())
	}
	if cat.wall > 0 {
		fmt.Fprintf(out, "time to the first byte of cat (whole run, open to end): %.2f s\n", cat.wall.Seconds())
	}
	if ext.wall > 0 && peer.wall > 0 {
		fmt.Fprintf(out, "extract throughput %.0f MB/s; extract time ÷ restore+mount+copy: %.2f\n", float64(folderBytes)/1e6/ext.wall.Seconds(), ext.wall.Seconds()/peer.wall.Seconds())
	}
	if exp.wall > 0 && conv.wall > 0 {
		fmt.Fprintf(out, "export time ÷ qemu-img convert (of an already restored image): %.2f\n", exp.wall.Seconds()/conv.wall.Seconds())
	}
	return errors.Join(errs...)
}
