package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// meta is what a user sees of a tree: relative path → kind, permission
// bits, size, modification time (ns) and SHA-256 of the content.
type meta map[string]string

func readMeta(t *testing.T, dir string, withMode bool) meta {
	t.Helper()
	m := meta{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		v := ""
		if withMode {
			v = info.Mode().String() + " "
		}
		switch {
		case d.IsDir():
			v += "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			v += "link " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			v += fmt.Sprintf("file %d %s", info.Size(), hex.EncodeToString(s[:8]))
		}
		if !d.IsDir() {
			// Folder times change as the files in them are read on
			// some drivers (atime-like updates are not ours to judge);
			// every other entry's time must be the moment's.
			v += " " + strconv.FormatInt(info.ModTime().UnixNano(), 10)
		}
		m[filepath.ToSlash(rel)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameMeta(t *testing.T, what string, want, got meta) {
	t.Helper()
	var d []string
	for _, k := range slices.Sorted(func(y func(string) bool) {
		for k := range want {
			if !y(k) {
				return
			}
		}
	}) {
		if got[k] != want[k] {
			d = append(d, fmt.Sprintf("%s: %q, want %q", k, got[k], want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected %q", k, got[k]))
		}
	}
	if len(d) > 0 {
		t.Errorf("%s: %d differences, e.g. %s", what, len(d), strings.Join(d[:min(len(d), 5)], "; "))
	}
}

// Acceptance 1 of the explore issue: for ext4, NTFS, FAT32 and exFAT
// partitions (full point and an incremental one; the NTFS chain
// encrypted), ls, cat, extract and mount give exactly the files, sizes,
// modes and times of that moment. The moment is read from the filesystem
// image itself through an independent reader (the kernel, ntfs-3g,
// exfat-fuse; mtools for FAT, which shows no modes, so FAT is compared
// without them: the FAT driver makes them up).
func TestExploreFilesystems(t *testing.T) {
	need(t, "mkfs.ext4", "mkntfs", "mkfs.vfat", "mkfs.exfat", "ntfs-3g", "mount.exfat-fuse", "fusefat", "mcopy")
	for _, name := range []string{"ext4", "ntfs", "vfat32", "exfat"} {
		t.Run(name, func(t *testing.T) {
			c, _ := fstest.Lookup(name)
			dir := t.TempDir()
			img := fstest.Make(t, dir, c)
			fstest.Populate(t, c, img)
			var env []string
			var pwArgs []string
			if name == "ntfs" {
				env = []string{"LIFEBOAT_PASSWORD=explore-secret"}
				pwArgs = []string{"--encrypt"}
			}
			withMode := c.Access != fstest.ViaMtools
			moment := func() meta {
				if c.Access == fstest.ViaMtools {
					// mtools shows no modes and minute-precision times:
					// content and sizes from mtools, times via fusefat.
					return metaViaFusefat(t, img)
				}
				mnt, umount := fstest.MountGeometry(t, c, img, true)
				defer umount()
				return readMeta(t, mnt, withMode)
			}
			full := filepath.Join(dir, "full.lbi")
			want1 := moment()
			mustLB(t, env, append([]string{"backup", "part", img, "-o", full, "-q"}, pwArgs...)...)

			// Change the filesystem: a new folder, a changed file, a
			// removed one; then an incremental point.
			changeFS(t, c, img)
			want2 := moment()
			if len(want2) == len(want1) {
				t.Fatalf("the change did not show: %d entries before and after", len(want1))
			}
			inc := filepath.Join(dir, "inc.lbi")
			mustLB(t, env, "backup", "part", img, "--incremental", full, "-o", inc, "-q") // the chain's encryption
			for _, pt := range []struct {
				image string
				want  meta
			}{{full, want1}, {inc, want2}} {
				what := filepath.Base(pt.image)
				// extract everything: mounted where the kernel reads the
				// filesystem, else (FAT here) with go-diskfs; and with
				// go-diskfs as Windows does (ext, FAT).
				for _, how := range [][]string{nil, {"--no-mount"}} {
					if how != nil && c.FS != "ext4" && c.FS != "vfat" {
						continue
					}
					out := filepath.Join(dir, fmt.Sprintf("x%d-%s", len(how), what))
					r := mustLB(t, env, append([]string{"extract", pt.image, "/", "-o", out}, how...)...)
					if !strings.Contains(r.stdout, "Copied ") || !strings.Contains(r.stderr, "read through") {
						t.Errorf("extract said %q %q", r.stdout, r.stderr)
					}
					want, got := pt.want, readMeta(t, out, withMode)
					if c.FS == "vfat" {
						// The reference came through fusefat, which shows
						// an 8.3 name stored in lower case in upper case
						// and every time a month late: names are compared
						// case-blind (as FAT has them) and times against
						// mtools, to the minute (what mdir shows).
						want, got = foldNames(stripTimes(want)), foldNames(stripTimes(got))
						checkFATTimes(t, img, out, got)
					}
					sameMeta(t, fmt.Sprintf("%s extract %v", what, how), want, got)
				}
				// ls of the root, as JSON
				r := mustLB(t, env, "ls", pt.image, "/", "--json")
				var ents []struct {
					Name string
					Size int64
				}
				if err := json.Unmarshal([]byte(r.stdout), &ents); err != nil {
					t.Fatal(err)
				}
				names := pt.want
				if c.FS == "vfat" {
					names = foldNames(names)
				}
				for _, e := range ents {
					name := e.Name
					if c.FS == "vfat" {
						name = strings.ToLower(name)
					}
					if _, ok := names[name]; !ok && !isFSInternal(e.Name) {
						t.Errorf("%s ls: unexpected %q", what, e.Name)
					}
				}
				if len(ents) == 0 {
					t.Errorf("%s ls /: nothing", what)
				}
				// cat a file
				for p, v := range pt.want {
					if !strings.Contains(v, "file ") {
						continue
					}
					r := mustLB(t, env, "cat", pt.image, p)
					s := sha256.Sum256([]byte(r.stdout))
					if !strings.Contains(v, hex.EncodeToString(s[:8])) {
						t.Errorf("%s cat %s: content differs", what, p)
					}
					break
				}
				// mount, read, umount
				mnt := filepath.Join(dir, "m-"+what)
				os.Mkdir(mnt, 0o755)
				cmd := exec.Command(lifeboat, "mount", pt.image, mnt)
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
				var mout strings.Builder
				cmd.Stdout, cmd.Stderr = &mout, &mout
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(30 * time.Second); !strings.Contains(mout.String(), "mounted read-only"); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("%s: mount did not come up:\n%s", what, mout.String())
					}
				}
				want, got := pt.want, readMeta(t, mnt, withMode)
				if c.FS == "vfat" {
					// As for extract: case-blind names, times by mtools.
					want, got = foldNames(stripTimes(want)), foldNames(stripTimes(got))
					checkFATTimes(t, img, mnt, got)
				}
				sameMeta(t, what+" mount", want, got)
				if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); err == nil {
					t.Errorf("%s: the mount is writable", what)
				}
				mustLB(t, nil, "umount", mnt)
				if err := cmd.Wait(); err != nil {
					t.Errorf("%s: lifeboat mount ended with %v:\n%s", what, err, mout.String())
				}
				if !strings.Contains(mout.String(), "read through") {
					t.Errorf("%s: mount did not say how it reads the files:\n%s", what, mout.String())
				}
				// export to each format: the same disk as a restore
				restored := filepath.Join(dir, "r-"+what+".img")
				mustLB(t, env, "restore", pt.image, "--target", restored, "-y", "-q")
				for _, f := range []string{"qcow2", "vhdx", "raw"} {
					out := filepath.Join(dir, "e-"+what+"."+f)
					mustLB(t, env, "export", pt.image, "-o", out, "-q")
					if f != "raw" {
						sh(t, "qemu-img", "check", "-f", f, out)
					}
					sh(t, "qemu-img", "compare", "-f", f, "-F", "raw", out, restored)
				}
			}
			if name == "ext4" {
				// A mount point in use or not empty, and umount of a
				// folder nothing is mounted on: one line each.
				busy := t.TempDir()
				os.WriteFile(filepath.Join(busy, "x"), nil, 0o644)
				if r := lb(t, env, "mount", full, busy); r.code == 0 || !strings.Contains(r.stderr, "not empty") {
					t.Errorf("mount onto a folder with files: %d %s", r.code, r.stderr)
				}
				if r := lb(t, nil, "umount", t.TempDir()); r.code != 6 || !strings.Contains(r.stderr, "nothing is mounted") {
					t.Errorf("umount of a plain folder: %d %s", r.code, r.stderr)
				}
				if r := lb(t, env, "cat", full, "/no/such/file"); r.code != 6 || !strings.Contains(r.stderr, "/no/such/file: not found in partition 1") {
					t.Errorf("cat of a missing file: %d %s", r.code, r.stderr)
				}
			}
			noLeftovers(t)
		})
	}
}

// isFSInternal: names a driver shows that no user made (NTFS's $-files
// are hidden by ntfs-3g; lost+found of ext).
func isFSInternal(name string) bool { return name == "lost+found" || strings.HasPrefix(name, "$") }

func metaViaFusefat(t *testing.T, img string) meta {
	t.Helper()
	mnt := t.TempDir()
	sh(t, "fusefat", "-o", "ro", img, mnt)
	defer sh(t, "umount", mnt)
	return readMeta(t, mnt, false)
}

func changeFS(t *testing.T, c fstest.Case, img string) {
	t.Helper()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "added", "deep"), 0o755)
	os.WriteFile(filepath.Join(src, "added", "deep", "new.txt"), []byte(strings.Repeat("new data ", 5000)), 0o640)
	if c.Access == fstest.ViaMtools {
		fstest.Run(t, fstest.Tool(t, "mcopy"), "-i", img, "-s", "-Q", filepath.Join(src, "added"), "::/")
		return
	}
	mnt, umount := fstest.MountGeometry(t, c, img, false)
	if err := os.CopyFS(filepath.Join(mnt, "added"), os.DirFS(filepath.Join(src, "added"))); err != nil {
		t.Fatal(err)
	}
	umount()
}

// noLeftovers: no loop device, FUSE mount or private folder of lifeboat's
// stays behind.
func noLeftovers(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), "lifeboat") {
		t.Errorf("mounts left behind:\n%s", regexp.MustCompile(`(?m)^.*lifeboat.*$`).FindAllString(string(b), -1))
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "lifeboat-explore-*")); len(left) > 0 {
		t.Errorf("folders left behind: %q", left)
	}
}

func foldNames(m meta) meta {
	out := meta{}
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// stripTimes drops the modification times from m's values.
func stripTimes(m meta) meta {
	out := meta{}
	for k, v := range m {
		if i := strings.LastIndexByte(v, ' '); i > 0 && !strings.HasPrefix(v, "dir") && !strings.HasSuffix(v, "dir") {
			v = v[:i]
		}
		out[k] = v
	}
	return out
}

// checkFATTimes compares each extracted file's time with what mtools
// shows for it (to the minute, UTC on this machine).
func checkFATTimes(t *testing.T, img, out string, got meta) {
	t.Helper()
	n := 0
	for p, v := range got {
		if !strings.HasPrefix(v, "file ") || n >= 5 {
			continue
		}
		n++
		l := strings.Fields(sh(t, "mdir", "-i", img, "::/"+p))
		var when string
		for i := range l {
			if i+1 < len(l) && strings.Count(l[i], "-") == 2 && strings.Contains(l[i+1], ":") {
				when = l[i] + " " + l[i+1]
			}
		}
		st, err := os.Stat(filepath.Join(out, p))
		if err != nil || when == "" {
			t.Errorf("%s: %v, mdir said %q", p, err, l)
			continue
		}
		mt, err := time.ParseInLocation("2006-01-02 15:04", when, time.Local)
		if err != nil || !st.ModTime().Truncate(time.Minute).Equal(mt) {
			t.Errorf("%s: extracted with time %v, mtools shows %s (%v)", p, st.ModTime(), when, err)
		}
	}
}
