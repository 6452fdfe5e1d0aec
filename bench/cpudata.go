package bench

import (
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
)

// CPUDataVersion names the rules of PlanCPUFiles. The file contents follow
// FSDataVersion's rules, so the cpu part's cached images carry both names.
const CPUDataVersion = "cpu1"

// The cpu data set, after issue #19's measurement (a 4 GiB ext4 holding
// 2.4 GB): file bytes fill cpuFilePct % of the image, which with ext4's
// inode tables and journal puts about 60 % of it in use. Of the file bytes,
// cpuTextPct % are large text-like files and cpuRandomPct % large random
// ones; small files, one for every cpuBytesPerSmall bytes of file data
// (50,000 in 2.4 GB), take about a fifth, and copies of earlier large files
// the rest.
const (
	cpuFilePct       = 54
	cpuTextPct       = 40
	cpuRandomPct     = 20
	cpuBytesPerSmall = 48_000
	cpuSmallMin      = 200
	cpuSmallMax      = 32 << 10
	cpuSmallPerDir   = 40 // small files in a leaf directory, on average
)

// PlanCPUFiles returns the data set of the cpu part for an image of
// imageSize bytes, in the order WriteFiles-style writing puts them on the
// disk (shuffled, so copies land far from their sources). Nothing is
// deleted: free space stays as the image was made, zeros.
//
// Large text files (256 KiB–16 MiB) sit in docs/, large random ones
// (1–32 MiB) in media/, copies of some of them in backup/, and the small
// files (200 B–32 KiB, nine in ten text) in three levels of directories
// under src/.
func PlanCPUFiles(seed uint64, imageSize int64) []FileSpec {
	r := rand.New(rand.NewPCG(seed, 0x6370757365743031)) // "cpuset01"
	total := imageSize / 100 * cpuFilePct
	var p plan
	large := func(kind FileKind, want, lo, hi int64, dir func(i int) string) {
		for have, i := int64(0), 0; have < want; i++ {
			n := max(min(logUniform(r, lo, hi), want-have)&^4095, 4096)
			p.add(FileSpec{Path: fmt.Sprintf("%s/%s-%04d.%s", dir(i), kind, i, extension(kind)), Size: n, Kind: kind})
			have += n
		}
	}
	large(FileText, total/100*cpuTextPct, 256<<10, 16<<20, func(int) string {
		return fmt.Sprintf("docs/%d/%02d", 2020+r.IntN(6), 1+r.IntN(12))
	})
	large(FileRandom, total/100*cpuRandomPct, 1<<20, 32<<20, func(int) string {
		return fmt.Sprintf("media/album-%02d", r.IntN(12))
	})
	nLarge := len(p.files)

	nSmall := int(total / cpuBytesPerSmall)
	nDirs := max(1, nSmall/cpuSmallPerDir)
	var smallBytes int64
	for i := range nSmall {
		k := FileText
		if r.IntN(10) == 0 {
			k = FileRandom
		}
		// Three levels: 16 top directories, 8 below each, the leaves below.
		d := r.IntN(nDirs)
		p.add(FileSpec{Path: fmt.Sprintf("src/t%02d/m%d/l%05d/f%06d.%s", d%16, d/16%8, d, i, extension(k)),
			Size: logUniform(r, cpuSmallMin, cpuSmallMax), Kind: k})
		smallBytes += p.files[len(p.files)-1].Size
	}

	// Copies of earlier large files (1 MiB or more) fill what is left, each
	// source copied once, in a random order of the sources; a copy that
	// would overshoot is passed over for a smaller one.
	want := total - total/100*(cpuTextPct+cpuRandomPct) - smallBytes
	var have int64
	for n, i := range r.Perm(nLarge) {
		src := p.files[i]
		if src.Size < 1<<20 || have+src.Size > want {
			continue
		}
		p.copyOf(src, fmt.Sprintf("backup/set-%d/copy-%04d.%s", n%4, n, extension(src.Kind)))
		have += src.Size
	}
	return p.shuffled(r)
}

// cpuDataSet is the cpu part's image: PlanCPUFiles for size bytes.
func cpuDataSet(size int64) dataSet {
	return dataSet{
		version: CPUDataVersion + "." + FSDataVersion,
		size:    size,
		plan:    func(seed uint64) []FileSpec { return PlanCPUFiles(seed, size) },
	}
}

// planMix is what a plan holds, by kind of file.
type planMix struct {
	files, dirs                     int
	bytes, text, random, dup, small int64 // bytes; text and random count large files only
	smallFiles                      int
}

func mixOf(files []FileSpec) planMix {
	var m planMix
	dirs := map[string]bool{}
	for _, f := range files {
		m.files++
		m.bytes += f.Size
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		switch {
		case f.Kind == FileDup:
			m.dup += f.Size
		case strings.HasPrefix(f.Path, "src/"):
			m.small += f.Size
			m.smallFiles++
		case f.Kind == FileText:
			m.text += f.Size
		case f.Kind == FileRandom:
			m.random += f.Size
		}
	}
	m.dirs = len(dirs)
	return m
}

// String describes the mix for the table's header.
func (m planMix) String() string {
	pct := func(n int64) float64 { return 100 * float64(n) / float64(m.bytes) }
	return fmt.Sprintf("%.0f MB in %d files and %d directories: %.0f %% large text-like files, %.0f %% large random, %.0f %% copies of earlier large files, %.0f %% in %d small files (200 B–32 KiB, 9 in 10 text-like)",
		float64(m.bytes)/1e6, m.files, m.dirs, pct(m.text), pct(m.random), pct(m.dup), pct(m.small), m.smallFiles)
}
