package bench

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseParts(t *testing.T) {
	for _, tc := range []struct {
		in       string
		disk, fs bool
		wantErr  bool
	}{
		{"disk,fs", true, true, false},
		{"fs", false, true, false},
		{" disk ", true, false, false},
		{"fs,fs", false, true, false},
		{"disk,zfs", false, false, true},
		{"", false, false, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseParts(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseParts(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && (got.Has(PartDisk) != tc.disk || got.Has(PartFS) != tc.fs) {
				t.Errorf("ParseParts(%q) = disk %v fs %v, want disk %v fs %v", tc.in, got.Has(PartDisk), got.Has(PartFS), tc.disk, tc.fs)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	s := summary([]result{
		{wall: 3 * time.Second, rssMax: 10e6, output: 7},
		{wall: 1 * time.Second, rssMax: 30e6, rssMaxUpperBound: true, output: 7},
		{wall: 2 * time.Second, rssMax: 20e6, output: 7},
	})
	if s.wall != 2*time.Second || s.rssMax != 30e6 || !s.rssMaxUpperBound || s.output != 7 {
		t.Errorf("summary of 3 runs = %+v; want median 2s, peak 30 MB (upper bound), output 7", s)
	}
	if s := summary([]result{{wall: time.Second}, {wall: 2 * time.Second}}); s.wall != 1500*time.Millisecond {
		t.Errorf("median of 1 s and 2 s = %v, want 1.5s", s.wall)
	}
	if s := summary([]result{{wall: time.Second, rssMax: -1}, {wall: time.Second, rssMax: 5}}); s.rssMax != -1 {
		t.Errorf("peak RSS with an unknown run = %d, want -1", s.rssMax)
	}
}

// TestFSTablePrint checks the cells and ratios of the filesystems table:
// times and sizes relative to lifeboat, and how failures and missing tools
// show.
func TestFSTablePrint(t *testing.T) {
	run := func(seconds float64, output int64) result {
		return result{wall: time.Duration(seconds * float64(time.Second)), rssMax: 50e6, output: output}
	}
	tbl := &fsTable{fs: FSExt4, size: 2 << 30, used: 1e9, reps: 1, rows: []*fsRow{
		{name: "lifeboat", backups: []result{run(4, 500e6)}, restores: []result{run(2, 0)}, checked: true},
		{name: "peer", backups: []result{run(8, 600e6)}, restores: []result{run(1, 0)}, checked: true},
		{name: "broken", backups: []result{run(5, 700e6)}, restoreErr: errors.New("exit status 1")},
		{name: "corrupting", backups: []result{run(5, 700e6)}, restores: []result{run(5, 0)}, checked: true, checkErr: errors.New("e2fsck: bad")},
		{name: "absent", skipped: "not installed (absent)"},
	}}
	var b strings.Builder
	tbl.print(&b)
	out := b.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "ext4 2.0 GiB, 1.00 GB used") {
		t.Errorf("title %q", lines[0])
	}
	for _, tc := range []struct {
		row    string
		fields []string
	}{
		{"lifeboat", []string{"lifeboat", "4.00", "250", "500.0", "50", "2.00", "500", "50", "1.00", "1.00", "1.00", "ok"}},
		{"peer", []string{"peer", "8.00", "125", "600.0", "50", "1.00", "1000", "50", "2.00×", "0.50×", "1.20×", "ok"}},
		{"broken", []string{"broken", "5.00", "200", "700.0", "50", "FAILED", "1.25×", "n/a", "1.40×"}},
		{"corrupting", []string{"corrupting", "5.00", "200", "700.0", "50", "5.00", "200", "50", "1.25×", "2.50×", "1.40×", "FAIL"}},
		{"absent", []string{"absent", "not", "installed", "(absent)"}},
	} {
		var got []string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == tc.row {
				got = f
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
			t.Errorf("row %s:\n got %q\nwant %q", tc.row, got, tc.fields)
		}
	}
	for _, want := range []string{"FAILED: ext4 broken restore: exit status 1", "FAILED: ext4 corrupting check of restored image: e2fsck: bad"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A peer's image failing the checker is a finding, not an error.
	if errs := tbl.errors(); len(errs) != 1 {
		t.Errorf("errors() = %v, want only the broken restore", errs)
	}
	tbl.rows[0].checkErr = errors.New("lifeboat's own image is bad")
	if errs := tbl.errors(); len(errs) != 2 {
		t.Errorf("errors() = %v, want lifeboat's bad image too", errs)
	}
}

func TestNumberFields(t *testing.T) {
	got, err := numberFields("Block count:              524288\nFree blocks:   1000\nBlock size:               4096\nFilesystem OS type:       Linux\n",
		"Block count", "Free blocks", "Block size")
	if err != nil || got["Block count"] != 524288 || got["Free blocks"] != 1000 || got["Block size"] != 4096 {
		t.Errorf("numberFields = %v, %v", got, err)
	}
	if _, err := numberFields("bytes per volume : 67104768\n", "bytes per volume", "bytes of free space"); err == nil {
		t.Error("numberFields with a missing line: no error")
	}
}

// TestPlanFiles checks the data set's size, its determinism and its mix.
func TestPlanFiles(t *testing.T) {
	files := PlanFiles(1)
	var written, kept int64
	kinds := map[FileKind]int64{}
	paths := map[string]bool{}
	for _, f := range files {
		if paths[f.Path] {
			t.Errorf("path %s twice", f.Path)
		}
		paths[f.Path] = true
		written += f.Size
		if !f.Delete {
			kept += f.Size
			kinds[f.Kind] += f.Size
		}
	}
	t.Logf("%d files, %d MiB written, %d MiB kept, by kind %v", len(files), written>>20, kept>>20, kinds)
	if kept < 900<<20 || kept > 1100<<20 || written-kept < 100<<20 {
		t.Errorf("%d MiB written, %d MiB kept; want about 1 GiB kept and more than 100 MiB deleted", written>>20, kept>>20)
	}
	if len(files) < 10000 || kinds[FileDup] == 0 || kinds[FileZeroRuns] == 0 || kinds[FileRandom] == 0 {
		t.Errorf("want many small files and every kind: %d files, %v", len(files), kinds)
	}
	again := PlanFiles(1)
	for i := range files {
		if files[i] != again[i] {
			t.Fatalf("PlanFiles(1) differs between calls at file %d: %+v, %+v", i, files[i], again[i])
		}
	}
}

// TestFileContent checks that a copy holds its source's bytes and that text
// is text.
func TestFileContent(t *testing.T) {
	v := newVocabulary(1)
	buf := make([]byte, 0, chunk+textSlack)
	content := func(f FileSpec) string {
		var b strings.Builder
		if err := fileContent(f, 1, v, buf, func(p []byte) error { b.Write(p); return nil }); err != nil {
			t.Fatal(err)
		}
		if int64(b.Len()) != f.Size {
			t.Fatalf("%+v: %d bytes", f, b.Len())
		}
		return b.String()
	}
	src := FileSpec{Size: 3<<20 + 100, Kind: FileText, Content: FileText, Key: 9}
	dup := FileSpec{Size: src.Size, Kind: FileDup, Content: FileText, Key: 9}
	other := FileSpec{Size: src.Size, Kind: FileText, Content: FileText, Key: 10}
	if content(src) != content(dup) {
		t.Error("a copy differs from its source")
	}
	if content(src) == content(other) {
		t.Error("two keys give the same text")
	}
	if strings.ContainsFunc(content(src), func(r rune) bool { return r != '\n' && (r < ' ' || r > '~') }) {
		t.Error("text holds non-text bytes")
	}
	z := content(FileSpec{Size: 64 << 20, Kind: FileZeroRuns, Content: FileZeroRuns, Key: 3})
	if zeros := strings.Count(z, "\x00"); zeros < len(z)/4 || zeros > 3*len(z)/4 {
		t.Errorf("zero-runs file is %d%% zeros, want about half", 100*zeros/len(z))
	}
}

// TestCheckersAvailable: every tool the fs part of make bench uses is
// installed by make deps (scripts/deps.sh), so a missing one is a broken
// deps list, not a bench that quietly reports less.
func TestCheckersAvailable(t *testing.T) {
	for _, fs := range []FSType{FSExt4, FSNTFS} {
		for _, tool := range append(fs.tools(), fs.partclone(), "qemu-img", "zstd") {
			if _, err := exec.LookPath(tool); err != nil {
				t.Errorf("%s: %s is not installed; scripts/deps.sh (make deps) must install it", fs, tool)
			}
		}
	}
}
