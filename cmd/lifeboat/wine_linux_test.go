//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// The Windows lane: lifeboat.exe, cross-compiled from this package, runs
// under Debian's Wine on the same files as the Linux binary, and what one
// writes the other reads: images, restored disks and rescue media. This
// proves the file-based commands of the Windows build (backup, restore,
// check, info, incremental, merge, mkmedia iso/usb to image files), not
// physical drives or volumes: Wine runs the Go code natively but is not
// Windows' storage stack (see README "Windows").
//
// Wine here is real (Debian's wine64); the one stand-in is
// testdata/wine/bcryptprimitives.c, built with Debian's mingw-w64 into
// the test's own Wine prefix: Go 1.24+ binaries need ProcessPrng, which
// Wine 8 lacks.
type wine struct {
	exe, prefix, bin, server string
	env                      []string
}

// wineBin is where Debian's wine64 package installs the loader (not on
// PATH without the wine wrapper package).
const wineBin = "/usr/lib/wine/wine64"

func newWine(t *testing.T) *wine {
	t.Helper()
	need(t, "x86_64-w64-mingw32-gcc")
	if _, err := os.Stat(wineBin); err != nil {
		t.Fatalf("%s is missing: run make deps (Debian's wine64)", wineBin)
	}
	dir := t.TempDir()
	w := &wine{exe: filepath.Join(dir, "lifeboat.exe"), prefix: filepath.Join(dir, "prefix"), bin: wineBin, server: "/usr/lib/wine/wineserver"}
	build := exec.Command("go", "build", "-o", w.exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build: %v\n%s", err, out)
	}
	// A prefix of its own, without Mono and Gecko (their installers
	// would ask), and quiet.
	w.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "WINEPREFIX=" + w.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
	start := time.Now()
	boot := exec.Command(w.bin, "wineboot", "-i")
	boot.Env = w.env
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot: %v\n%s", err, out)
	}
	// Wine's server lingers after the last program; end it (ours only:
	// it belongs to this prefix).
	t.Cleanup(func() {
		k := exec.Command(w.server, "-k")
		k.Env = w.env
		k.Run()
		// The server kept its socket in /tmp/wine-XXXXXX/server-DEV-INODE,
		// named by the prefix's device and inode (not under TMPDIR).
		var st syscall.Stat_t
		if syscall.Stat(w.prefix, &st) == nil {
			dirs, _ := filepath.Glob(fmt.Sprintf("/tmp/wine-*/server-%x-%x", st.Dev, st.Ino))
			for _, d := range dirs {
				os.RemoveAll(filepath.Dir(d))
			}
		}
	})
	dll := filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if out, err := exec.Command("x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", dll, filepath.Join("testdata", "wine", "bcryptprimitives.c"), "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("the ProcessPrng stand-in: %v\n%s", err, out)
	}
	t.Logf("Wine prefix ready in %.1f s", time.Since(start).Seconds())
	return w
}

// winPath is p as the Windows program sees it: Wine's Z: is /.
func winPath(p string) string {
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// run runs lifeboat.exe with args; arguments that are absolute Unix paths
// become Z:\ paths, so that the program sees Windows names.
func (w *wine) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	wargs := []string{w.exe}
	for _, a := range args {
		if strings.HasPrefix(a, "/") {
			a = winPath(a)
		}
		wargs = append(wargs, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, wargs...)
	cmd.Env = append(append([]string{}, w.env...), env...)
	return runResult(t, cmd, "wine lifeboat.exe "+strings.Join(wargs[1:], " "))
}

func (w *wine) must(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := w.run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("lifeboat.exe %v failed with %d: %s", args, r.code, r.stderr)
	}
	return r
}

func TestWindowsLane(t *testing.T) {
	w := newWine(t)

	t.Run("disk", func(t *testing.T) {
		// A GPT disk with FAT32, ext4 and NTFS made by the real mkfs
		// tools: backed up by each build, checked, described and
		// restored by the other, restored disks byte-identical.
		dir := t.TempDir()
		src := buildDisk(t, dir, "gpt")
		lin, win := filepath.Join(dir, "lin.lbi"), filepath.Join(dir, "win.lbi")
		mustLB(t, nil, "backup", "disk", src.path, "-o", lin, "-q")
		w.must(t, nil, "backup", "disk", src.path, "-o", win, "-q")
		mustLB(t, nil, "check", win)
		w.must(t, nil, "check", lin)
		if r := w.must(t, nil, "info", lin); !strings.Contains(r.stdout, "gpt") && !strings.Contains(r.stdout, "GPT") {
			t.Errorf("info on Windows does not show the table:\n%s", r.stdout)
		}
		tl, tw, tx := filepath.Join(dir, "linux.img"), filepath.Join(dir, "windows.img"), filepath.Join(dir, "cross.img")
		mustLB(t, nil, "restore", lin, "--target", tl, "--yes", "-q")
		w.must(t, nil, "restore", win, "--target", tw, "--yes", "-q")
		mustLB(t, nil, "restore", win, "--target", tx, "--yes", "-q")
		sameFiles(t, tl, tw)
		sameFiles(t, tw, tx)
		checkDisk(t, src, tw, layoutWant{keep: true})
	})

	t.Run("explore", func(t *testing.T) {
		// ls, cat, extract and export in lifeboat.exe: no mount on
		// Windows, so ext4 and FAT32 are read with go-diskfs; the files
		// are the source's, the virtual disk the Linux build's.
		dir := t.TempDir()
		src := buildDisk(t, dir, "gpt")
		lbi := filepath.Join(dir, "d.lbi")
		mustLB(t, nil, "backup", "disk", src.path, "-o", lbi, "-q")
		for _, n := range []int{1, 2} {
			out := filepath.Join(dir, fmt.Sprintf("win-p%d", n))
			// "." is the partition's root (an argument starting with /
			// would become a Windows path here).
			r := w.must(t, nil, "extract", lbi, "-p", fmt.Sprint(n), ".", "-o", out)
			if !strings.Contains(r.stderr, "go-diskfs") {
				t.Errorf("partition %d: extract did not say it read with go-diskfs:\n%s", n, r.stderr)
			}
			got := fstest.HashTree(t, out)
			for name, sum := range src.parts[n-1].want {
				if got[name] != sum {
					t.Errorf("partition %d: %s extracted on Windows differs", n, name)
				}
				r := w.must(t, nil, "cat", lbi, "-p", fmt.Sprint(n), name)
				if s := sha256.Sum256([]byte(r.stdout)); fmt.Sprintf("%x", s) != sum {
					t.Errorf("partition %d: cat %s on Windows differs", n, name)
				}
				break
			}
			if r := w.must(t, nil, "ls", lbi, "-p", fmt.Sprint(n)); len(strings.Fields(r.stdout)) == 0 {
				t.Errorf("partition %d: ls on Windows listed nothing", n)
			}
		}
		if r := w.run(t, nil, "extract", lbi, "-p", "3", ".", "-o", filepath.Join(dir, "win-p3")); r.code == 0 || !strings.Contains(r.stderr, "ntfs") {
			t.Errorf("NTFS without a mount: exit %d, %s", r.code, r.stderr)
		}
		lq, wq := filepath.Join(dir, "lin.qcow2"), filepath.Join(dir, "win.qcow2")
		mustLB(t, nil, "export", lbi, "-o", lq, "-q")
		w.must(t, nil, "export", lbi, "-o", wq, "-q")
		sameFiles(t, lq, wq)
	})

	t.Run("chain-encrypted", func(t *testing.T) {
		// An encrypted chain written on Windows (full, two
		// incrementals, a merge) restores on Linux to the source's bytes
		// at each point, and a Linux chain restores on Windows.
		dir := t.TempDir()
		env := []string{"LIFEBOAT_PASSWORD=wine lane"}
		src := filepath.Join(dir, "src.img")
		os.WriteFile(src, mixedFile(t, 24<<20, 9), 0o644)
		var points []string
		var states [][]byte
		for i := 0; i < 3; i++ {
			if i > 0 {
				r := rand.New(rand.NewPCG(uint64(i), 11))
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(r.Uint32())
				}
				f, _ := os.OpenFile(src, os.O_RDWR, 0)
				f.WriteAt(b, int64(r.IntN(20))<<20)
				f.Close()
			}
			p := filepath.Join(dir, fmt.Sprintf("win%d.lbi", i))
			args := []string{"backup", "disk", src, "-o", p, "-q", "--encrypt"}
			if i > 0 { // a point has its chain's encryption
				args = append(args[:len(args)-1], "--incremental", points[i-1])
			}
			w.must(t, env, args...)
			points = append(points, p)
			b, _ := os.ReadFile(src)
			states = append(states, b)
		}
		for i, p := range points {
			out := p + ".img"
			mustLB(t, env, "restore", p, "--target", out, "--yes", "-q")
			if got, _ := os.ReadFile(out); !bytes.Equal(got, states[i]) {
				t.Errorf("point %d written on Windows, restored on Linux: not the source's bytes", i)
			}
		}
		merged := filepath.Join(dir, "merged.lbi")
		w.must(t, env, "merge", points[2], "-o", merged)
		mustLB(t, env, "check", merged)
		mustLB(t, env, "restore", merged, "--target", merged+".img", "--yes", "-q")
		if got, _ := os.ReadFile(merged + ".img"); !bytes.Equal(got, states[2]) {
			t.Errorf("the chain merged on Windows, restored on Linux: not the source's bytes")
		}
		// And the other way: a Linux chain on Windows.
		lin := filepath.Join(dir, "lin.lbi")
		mustLB(t, env, "backup", "disk", src, "-o", lin, "-q", "--incremental", points[1])
		w.must(t, env, "check", lin)
		w.must(t, env, "restore", lin, "--target", lin+".img", "--yes", "-q")
		if got, _ := os.ReadFile(lin + ".img"); !bytes.Equal(got, states[2]) {
			t.Errorf("a Linux incremental on a Windows chain, restored on Windows: not the source's bytes")
		}
		// A wrong password is refused on Windows as on Linux.
		if r := w.run(t, []string{"LIFEBOAT_PASSWORD=wrong"}, "check", points[0]); r.code == 0 {
			t.Errorf("check with a wrong password passed on Windows")
		}
	})

	t.Run("disks", func(t *testing.T) {
		// The Windows disk code runs too, as far as Wine goes: disks
		// enumerates \\.\PhysicalDriveN and asks the storage IOCTLs.
		// Wine 8 answers DISK_GEOMETRY_EX and STORAGE_QUERY_PROPERTY
		// for its one PhysicalDrive0, not GET_LENGTH_INFO, and fails
		// raw reads ("Invalid function"), which the listing shows as
		// the disk's error.
		r := w.must(t, nil, "disks", "--json")
		var disks []struct {
			Path       string `json:"path"`
			Size       int64  `json:"size"`
			SectorSize int    `json:"sector_size"`
			Error      string `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &disks); err != nil {
			t.Fatalf("disks --json: %v\n%s", err, r.stdout)
		}
		for _, d := range disks {
			if !strings.HasPrefix(d.Path, `\\.\PhysicalDrive`) {
				t.Errorf(`disk path %q, want \\.\PhysicalDriveN`, d.Path)
			}
			if d.Size > 0 && d.SectorSize < 512 {
				t.Errorf("%s: %d bytes with %d-byte sectors", d.Path, d.Size, d.SectorSize)
			}
		}
		t.Logf("Wine's disks: %+v", disks)
		// Disks by number, as Windows numbers them: one that does not
		// exist is named as such, and a restore onto it creates no file
		// called "63".
		img := filepath.Join(t.TempDir(), "x.lbi")
		os.WriteFile(img+".src", mixedFile(t, 1<<20, 3), 0o644)
		w.must(t, nil, "backup", "disk", img+".src", "-o", img, "-q")
		if r := w.run(t, nil, "backup", "disk", "63", "-o", img+"2"); r.code != 6 || !strings.Contains(r.stderr, "there is no disk 63") {
			t.Errorf("backup disk 63: exit %d, want 6 naming the disk: %s", r.code, r.stderr)
		}
		if r := w.run(t, nil, "restore", img, "--target", "63", "--yes"); r.code != 6 || !strings.Contains(r.stderr, `\\.\PhysicalDrive63`) {
			t.Errorf(`restore --target 63: exit %d, want 6 naming \\.\PhysicalDrive63: %s`, r.code, r.stderr)
		}
		if _, err := os.Stat("63"); err == nil {
			os.Remove("63")
			t.Errorf("restore --target 63 created a file named 63")
		}
		// The running system's disk and a volume: Wine places C:\windows
		// on no disk and answers no volume length, so both end with a
		// message that says what to do, not a crash.
		if r := w.run(t, nil, "backup", "system", "-o", img+"3"); r.code == 0 || !strings.Contains(r.stderr, "name the disk: lifeboat backup disk DISK") {
			t.Errorf("backup system under Wine: exit %d: %s", r.code, r.stderr)
		}
		if r := w.run(t, nil, "backup", "part", "C:", "-o", img+"4"); r.code == 0 || !strings.Contains(r.stderr, "open C:") {
			t.Errorf("backup part C: under Wine: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		// A backup task in lifeboat.exe: configuration and state in
		// Windows paths, a pre command through cmd.exe, the task's lock
		// (LockFileEx), a run the Linux build checks, and install /
		// uninstall through Wine's schtasks /Create /XML and /Delete.
		// Wine keeps the registered task in its system32\tasks folder
		// (rewritten: Wine 8 drops triggers, actions and principals, so
		// only registration, the settings it keeps and removal are
		// checked here; the definition itself is TestWindowsTaskXML's).
		dir := t.TempDir()
		src := filepath.Join(dir, "part.img")
		os.WriteFile(src, nil, 0o600)
		os.Truncate(src, 32<<20)
		fstest.Run(t, "mkfs.ext4", "-q", "-F", src)
		env := []string{`LIFEBOAT_CONFIG=` + winPath(filepath.Join(dir, "etc", "tasks.yaml")), `LIFEBOAT_STATE=` + winPath(filepath.Join(dir, "state"))}
		dest := filepath.Join(dir, "dest")
		os.Mkdir(dest, 0o755)
		w.must(t, env, "task", "add", "win task", "--source", "part:"+winPath(src), "--dest", dest,
			"--schedule", "daily 02:00", "--schedule", "startup", "--pre", "echo pre says hello", "--scheme", "incremental full-every=2 keep-groups=1")
		for range 3 {
			w.must(t, env, "task", "run", "win task", "-q")
		}
		r := w.must(t, env, "log", "win task", "--json")
		var recs []struct {
			Result, Image, Kind string
			Deleted             []string
			Pre                 struct{ Output string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 3 {
			t.Fatalf("log: %v\n%s", err, r.stdout)
		}
		if recs[0].Result != "success" || !strings.Contains(recs[0].Pre.Output, "pre says hello") || recs[2].Kind != "full" || len(recs[2].Deleted) != 2 {
			t.Fatalf("runs: %+v", recs)
		}
		img := strings.ReplaceAll(strings.TrimPrefix(recs[2].Image, "Z:"), `\`, "/")
		mustLB(t, nil, "check", img)
		w.must(t, env, "task", "install")
		stored := filepath.Join(w.prefix, "drive_c", "windows", "system32", "tasks", "Lifeboat", "win task")
		b, err := os.ReadFile(stored)
		if err != nil || !strings.Contains(string(b), "Lifeboat backup task win task") || !strings.Contains(string(b), "<StartWhenAvailable>true</StartWhenAvailable>") {
			t.Fatalf("the registered task: %v\n%s", err, b)
		}
		w.must(t, env, "task", "install") // again: /F replaces it
		w.must(t, env, "task", "uninstall")
		if _, err := os.Stat(stored); !os.IsNotExist(err) {
			t.Fatalf("uninstall left %s: %v", stored, err)
		}
	})

	t.Run("mkmedia", func(t *testing.T) {
		// The rescue media from the same bundle: byte-identical from
		// both builds.
		b := os.Getenv("LIFEBOAT_RESCUE")
		if b == "" {
			b = filepath.Join("..", "..", "out", "rescue")
		}
		b, _ = filepath.Abs(b)
		if _, err := os.Stat(filepath.Join(b, "bundle.json")); err != nil {
			t.Skipf("SKIPPED, NOT A PASS: no rescue bundle at %s (%v); run make rescue, or set LIFEBOAT_RESCUE", b, err)
		}
		dir := t.TempDir()
		for _, kind := range []string{"iso", "usb"} {
			lin, win := filepath.Join(dir, "lin-"+kind+".img"), filepath.Join(dir, "win-"+kind+".img")
			mustLB(t, nil, "mkmedia", kind, "--bundle", b, "-o", lin, "-q")
			w.must(t, nil, "mkmedia", kind, "--bundle", b, "-o", win, "-q")
			sameFiles(t, lin, win)
		}
	})
}
