package bench

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPlanCPUFiles checks the cpu data set: the same plan for the same seed
// and another for another seed, the mix by bytes within a few points of its
// goals, the small files counted as issue #19's reference scales (50,000 in
// 2.4 GB), copies that match their sources, and no path twice.
func TestPlanCPUFiles(t *testing.T) {
	for _, size := range []int64{1 << 30, 4 << 30} {
		t.Run(sizeLabel(size), func(t *testing.T) {
			files := PlanCPUFiles(1, size)
			if !slices.Equal(files, PlanCPUFiles(1, size)) {
				t.Fatal("PlanCPUFiles(1) differs between calls")
			}
			if slices.Equal(files, PlanCPUFiles(2, size)) {
				t.Fatal("PlanCPUFiles(2) is the same as PlanCPUFiles(1)")
			}
			m := mixOf(files)
			t.Logf("%s: %v", sizeLabel(size), m)
			pct := func(n int64) float64 { return 100 * float64(n) / float64(m.bytes) }
			for _, c := range []struct {
				what     string
				got      float64
				min, max float64
			}{
				{"file bytes, % of the image", 100 * float64(m.bytes) / float64(size), cpuFilePct - 1, cpuFilePct + 1},
				{"large text, % of file bytes", pct(m.text), 38, 42},
				{"large random, % of file bytes", pct(m.random), 18, 22},
				{"copies, % of file bytes", pct(m.dup), 15, 25},
				{"small files, % of file bytes", pct(m.small), 15, 25},
			} {
				if c.got < c.min || c.got > c.max {
					t.Errorf("%s = %.1f, want %.0f–%.0f", c.what, c.got, c.min, c.max)
				}
			}
			wantSmall := int(size / 100 * cpuFilePct / cpuBytesPerSmall)
			if m.smallFiles != wantSmall {
				t.Errorf("%d small files, want %d", m.smallFiles, wantSmall)
			}
			if size == 4<<30 && (m.smallFiles < 45_000 || m.smallFiles > 55_000) {
				t.Errorf("%d small files in 4 GiB, want about 50,000 as in the issue's reference", m.smallFiles)
			}
			if m.dirs < m.smallFiles/100 {
				t.Errorf("%d directories for %d small files, want nested directories", m.dirs, m.smallFiles)
			}
			byKey := map[uint64]FileSpec{}
			paths := map[string]bool{}
			for _, f := range files {
				if paths[f.Path] {
					t.Errorf("%s planned twice", f.Path)
				}
				paths[f.Path] = true
				if f.Delete || f.Kind == FileZeroRuns {
					t.Errorf("%+v: the cpu data set deletes nothing and has no zero runs", f)
				}
				if f.Kind != FileDup {
					byKey[f.Key] = f
				}
			}
			for _, f := range files {
				if src, ok := byKey[f.Key]; f.Kind == FileDup && (!ok || src.Size != f.Size || src.Content != f.Content || src.Size < 1<<20) {
					t.Errorf("copy %+v: no large source of the same size and content (%+v)", f, src)
				}
			}
		})
	}
}

// TestCPUTablePrint checks the cpu part's tables: medians, ratios against
// qemu-img and restic in the same cache state, the check column, and how a
// failed and a missing tool show.
func TestCPUTablePrint(t *testing.T) {
	run := func(cpu, wall float64, output int64) result {
		return result{cpu: time.Duration(cpu * float64(time.Second)), wall: time.Duration(wall * float64(time.Second)), rssMax: 40e6, output: output}
	}
	both := func(a, b []result) [numCaches][]result { return [numCaches][]result{a, b} }
	rows := []*cpuRow{{
		name:     "lifeboat",
		backups:  both([]result{run(2, 1, 250e6), run(4, 3, 250e6)}, []result{run(2, 2, 250e6)}),
		restores: both([]result{run(1, 1, 0)}, []result{run(1, 1, 0)}),
		checked:  "identical",
	}, {
		name: cpuReference, peer: true,
		backups:  both([]result{run(6, 4, 500e6)}, []result{run(4, 4, 500e6)}),
		restores: both([]result{run(2, 2, 0)}, []result{run(1, 2, 0)}),
		checked:  "identical",
	}, {
		name: "restic (files)", peer: true,
		backups:  both([]result{run(9, 9, 200e6)}, []result{run(8, 8, 200e6)}),
		restores: both([]result{run(4, 4, 0)}, []result{run(4, 4, 0)}),
		checked:  "same 3 files (1 MB)",
	}, {
		name: "broken", peer: true, err: errors.New("exit status 1"),
	}, {
		name: "absent", peer: true, skipped: "not installed (absent)",
	}}
	var b strings.Builder
	printCPUTables(&b, rows)
	out := b.String()
	t.Log("\n" + out)
	cold, warm, ok := strings.Cut(out, "warm cache:")
	if !ok {
		t.Fatal("no warm table")
	}
	row := func(table, prefix string) []string {
		for l := range strings.Lines(table) {
			if strings.HasPrefix(l, prefix+" ") {
				return strings.Fields(strings.TrimPrefix(l, prefix))
			}
		}
		return nil
	}
	for _, tc := range []struct {
		table, row string
		want       []string
	}{
		// CPU 3 (median of 2 and 4), output 250 MB, wall 2, RSS 40, then
		// ×qemu CPU, size, wall, ×restic size, the range.
		{cold, "backup   lifeboat", []string{"3.00", "250.0", "2.00", "40", "0.50×", "0.50×", "0.50×", "1.25×", "2.0–4.0", "/", "1.0–3.0"}},
		{cold, "backup   " + cpuReference, []string{"6.00", "500.0", "4.00", "40", "1.00×", "1.00×", "1.00×", "2.50×"}},
		{cold, "restore  lifeboat", []string{"1.00", "1.00", "40", "0.50×", "0.50×", "identical"}},
		{cold, "restore  restic (files)", []string{"4.00", "4.00", "40", "2.00×", "2.00×", "same", "3", "files", "(1", "MB)"}},
		{cold, "backup   broken", []string{"FAILED", "(see", "below)"}},
		{cold, "backup   absent", []string{"not", "installed", "(absent)"}},
		{warm, "backup   lifeboat", []string{"2.00", "250.0", "2.00", "40", "0.50×", "0.50×", "0.50×", "1.25×"}},
		{warm, "restore  lifeboat", []string{"1.00", "1.00", "40", "1.00×", "0.50×"}},
	} {
		if got := row(tc.table, tc.row); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("row %q:\n got %q\nwant %q", tc.row, got, tc.want)
		}
	}
	for _, want := range []string{
		"ratios, cold cache, lifeboat ÷ qemu-img zstd: backup CPU 0.50×, size 0.50×, wall 0.50×; restore CPU 0.50×, wall 0.50×. lifeboat ÷ restic: backup CPU 0.33×, size 1.25×, wall 0.22×",
		"FAILED: broken: exit status 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
