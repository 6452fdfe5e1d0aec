package tasks

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// fsChanger is a real ext4 (mkfs.ext4 on a file) that changes day by day
// through debugfs: new files, deleted files, rewritten files.
type fsChanger struct {
	t     *testing.T
	img   string
	dir   string
	r     *rand.Rand
	files []string
	n     int
}

func newFS(t *testing.T, dir string, seed uint64) *fsChanger {
	f := &fsChanger{t: t, img: filepath.Join(dir, "source.img"), dir: dir, r: rand.New(rand.NewPCG(seed, 3))}
	if err := os.WriteFile(f.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.img, 24<<20); err != nil {
		t.Fatal(err)
	}
	// 1 KiB blocks: the block size that once made backups unreadable.
	sh(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-L", "simfs", f.img)
	return f
}

func sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// day makes one day's changes.
func (f *fsChanger) day() {
	var cmds []string
	tmp := filepath.Join(f.dir, "content")
	write := func(name string) {
		b := make([]byte, 20<<10+f.r.IntN(200<<10))
		for i := range b {
			b[i] = byte(f.r.IntN(16)) + 'a' // compressible, not constant
		}
		f.n++
		p := fmt.Sprintf("%s.%d", tmp, f.n)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			f.t.Fatal(err)
		}
		cmds = append(cmds, "write "+p+" "+name)
	}
	for range 2 {
		name := fmt.Sprintf("f%04d", f.n)
		write(name)
		f.files = append(f.files, name)
	}
	if len(f.files) > 6 {
		i := f.r.IntN(len(f.files) - 2)
		cmds = append(cmds, "rm "+f.files[i])
		f.files = slices.Delete(f.files, i, i+1)
		j := f.r.IntN(len(f.files))
		cmds = append(cmds, "rm "+f.files[j])
		write(f.files[j])
	}
	script := filepath.Join(f.dir, "cmds")
	os.WriteFile(script, []byte(strings.Join(cmds, "\n")+"\n"), 0o600)
	sh(f.t, "debugfs", "-w", "-f", script, f.img)
	sh(f.t, "e2fsck", "-fn", f.img)
	ms, _ := filepath.Glob(tmp + ".*")
	for _, m := range ms {
		os.Remove(m)
	}
}

// treeHash is the hash of every file's name and content in an ext4
// image, read by debugfs (free blocks are not restored, so the images
// themselves differ where deleted files were), after e2fsck found it
// clean.
func treeHash(t *testing.T, img string) string {
	t.Helper()
	sh(t, "e2fsck", "-fn", img)
	out, err := os.MkdirTemp(filepath.Dir(img), "tree-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(out)
	sh(t, "debugfs", "-R", "rdump / "+out, img)
	h := sha256.New()
	root := filepath.Join(out, filepath.Base(out))
	if _, err := os.Stat(root); err != nil {
		root = out
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		io.Copy(h, f)
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestSchemeSimulation runs each scheme for many "days" — a fake clock for
// the runner only; real backups of a changing real ext4 — and checks after
// every day that the images kept are exactly those the scheme defines
// (computed here independently), that nothing else in the destination was
// touched, that the new point restores to the source as it was that day,
// and, every tenth day and at the end, that every kept point restores.
func TestSchemeSimulation(t *testing.T) {
	for _, tc := range []struct {
		scheme  string
		days    int
		encrypt bool
		// kept is the scheme's definition: the days whose images exist
		// after day d (0-based), and each day's kind.
		kept func(d int) []int
		kind func(d int) string
	}{
		{"incremental full-every=5 keep-groups=3", 60, true,
			func(d int) []int { return span(max(0, (d/5-2)*5), d) },
			func(d int) string { return pick(d%5 == 0, "full", "incremental") }},
		{"differential full-every=4 keep-groups=2", 30, false,
			func(d int) []int { return span(max(0, (d/4-1)*4), d) },
			func(d int) string { return pick(d%4 == 0, "full", "differential") }},
		{"full keep=3", 12, false,
			func(d int) []int { return span(max(0, d-2), d) },
			func(d int) string { return "full" }},
	} {
		t.Run(strings.Fields(tc.scheme)[0], func(t *testing.T) {
			seed := testSeed(t)
			t.Logf("scheme %q, %d days", tc.scheme, tc.days)
			dir := t.TempDir()
			dest := filepath.Join(dir, "dest")
			os.Mkdir(dest, 0o755)
			fsys := newFS(t, dir, seed)
			task := Task{Name: "sim", Source: "part:" + fsys.img, Dest: dest, Scheme: tc.scheme, Compression: "fast"}
			if tc.encrypt {
				pw := filepath.Join(dir, "pw")
				os.WriteFile(pw, []byte("correct horse\n"), 0o600)
				task.Encrypt, task.PasswordFile = true, pw
			}
			paths := Paths{Config: filepath.Join(dir, "tasks.yaml"), State: filepath.Join(dir, "state"), Log: filepath.Join(dir, "state", "tasks.jsonl")}
			cfg := &Config{path: paths.Config}
			if err := cfg.Add(task); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			// Files in the destination that are not the task's: they
			// must survive every retention.
			foreign := filepath.Join(dest, "notes.txt")
			os.WriteFile(foreign, []byte("not an image"), 0o600)
			sh(t, "cp", fsys.img, filepath.Join(dir, "other.img"))
			sh(t, "sh", "-c", fmt.Sprintf("%s -q backup part %s -o %s/other-full.lbi --compression fast", lifeboatForTest(t), filepath.Join(dir, "other.img"), dest))
			before := listDir(t, dest)

			day0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.Local)
			hashes := map[int]string{}
			fileDay := map[string]int{}
			for d := range tc.days {
				fsys.day()
				hashes[d] = treeHash(t, fsys.img)
				now := day0.AddDate(0, 0, d)
				r := &Runner{Paths: paths, Now: func() time.Time { return now }, Trigger: "scheduled"}
				rec, err := r.Run(context.Background(), "sim", "")
				if err != nil {
					t.Fatalf("day %d: %v", d, err)
				}
				if rec.Kind != tc.kind(d) {
					t.Fatalf("day %d: wrote a %s backup, the scheme says %s", d, rec.Kind, tc.kind(d))
				}
				fileDay[rec.Image] = d
				es, _ := Images(paths.State, "sim")
				var got []int
				for _, e := range es {
					got = append(got, fileDay[e.File])
				}
				if want := tc.kept(d); !slices.Equal(got, want) {
					t.Fatalf("day %d: kept the images of days %v, the scheme defines %v", d, got, want)
				}
				// The destination holds exactly the kept images and what
				// was there before.
				var want []string
				for _, e := range es {
					want = append(want, filepath.Base(e.File))
				}
				want = append(want, before...)
				sort.Strings(want)
				if have := listDir(t, dest); !slices.Equal(have, want) {
					t.Fatalf("day %d: the destination holds %v, want %v", d, have, want)
				}
				// Every deletion is in the log.
				for _, del := range rec.Deleted {
					if _, ok := fileDay[del]; !ok {
						t.Fatalf("day %d: deleted %s, which the task did not write", d, del)
					}
				}
				check := []Entry{es[len(es)-1]}
				if d%10 == 9 || d == tc.days-1 {
					check = es
				}
				for _, e := range check {
					out := filepath.Join(dir, "restored.img")
					os.Remove(out)
					_, err := engine.Restore(context.Background(), engine.RestoreOptions{Image: e.File, Target: out,
						Password: func() ([]byte, error) { return []byte("correct horse"), nil }})
					if err != nil {
						t.Fatalf("day %d: restore of %s: %v", d, e.File, err)
					}
					if h := treeHash(t, out); h != hashes[fileDay[e.File]] {
						t.Fatalf("day %d: %s restores to something else than the source of day %d", d, e.File, fileDay[e.File])
					}
				}
			}
			recs, bad, err := ReadLog(paths.Log, "sim")
			if err != nil || bad != 0 || len(recs) != tc.days {
				t.Fatalf("log: %d records, %d bad, %v", len(recs), bad, err)
			}
			var deleted int
			for _, r := range recs {
				deleted += len(r.Deleted)
			}
			if deleted != tc.days-len(tc.kept(tc.days-1)) {
				t.Fatalf("the log records %d deletions, %d images were removed", deleted, tc.days-len(tc.kept(tc.days-1)))
			}
		})
	}
}

func span(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// lifeboatForTest builds the lifeboat command once per test binary.
var lifeboatBin string

func lifeboatForTest(t *testing.T) string {
	t.Helper()
	if lifeboatBin != "" {
		return lifeboatBin
	}
	dir, err := os.MkdirTemp("", "lifeboat-tasks-test-")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "lifeboat")
	out, err := exec.Command("go", "build", "-o", p, "github.com/lifeboat-rescue/lifeboat/cmd/lifeboat").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lifeboatBin = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if lifeboatBin != "" {
		os.RemoveAll(filepath.Dir(lifeboatBin))
	}
	os.Exit(code)
}
