//go:build linux

package main

// Defect 6 of issue 12, "image and process hygiene": who may read an
// image, what child processes see, and what a password given for an
// unencrypted image means.

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

// perm is the permission bits of path.
func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// allParts checks every part of the image at img has mode want, and that
// there are at least n.
func allParts(t *testing.T, img string, n int, want fs.FileMode) {
	t.Helper()
	found := 0
	for i := 1; ; i++ {
		p := images.PartName(img, i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		found++
		if got := perm(t, p); got != want {
			t.Errorf("%s is %04o, want %04o", filepath.Base(p), got, want)
		}
	}
	if found < n {
		t.Fatalf("%s has %d parts, want at least %d", img, found, n)
	}
}

// Images were created 0644: a whole-disk backup readable by every local
// user. Under the usual umask 022, every part is 0600, --mode gives
// another mode to backup, incremental, merge and a restore's new target
// file, --overwrite gives the replacing image the new mode, and a mode
// that makes no sense is refused before a byte is written.
func TestImageFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the child inherits it
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.img")
	b := make([]byte, 120<<20)
	rand.NewChaCha8([32]byte{9}).Read(b[:100<<20])
	if err := os.WriteFile(disk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "pc1.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", img, "--split", "50M", "--compression", "fast")
	allParts(t, img, 3, 0o600)

	mustLB(t, nil, "backup", "disk", disk, "-o", img, "--split", "50M", "--compression", "fast", "--overwrite", "--mode", "0640")
	allParts(t, img, 3, 0o640)

	inc := filepath.Join(dir, "inc.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", inc, "--incremental", img, "--mode", "640")
	allParts(t, inc, 1, 0o640)
	merged := filepath.Join(dir, "merged.lbi")
	mustLB(t, nil, "merge", inc, "-o", merged)
	allParts(t, merged, 1, 0o600)

	restored := filepath.Join(dir, "restored.img")
	mustLB(t, nil, "restore", img, "--target", restored, "--yes")
	if got := perm(t, restored); got != 0o600 {
		t.Errorf("restored disk image file is %04o, want 0600", got)
	}
	restored2 := filepath.Join(dir, "restored2.img")
	mustLB(t, nil, "restore", img, "--target", restored2, "--yes", "--mode", "0644")
	if got := perm(t, restored2); got != 0o644 {
		t.Errorf("restored disk image file with --mode 0644 is %04o", got)
	}

	for _, bad := range []string{"0755", "0400", "rw-r-----", "9", "04600", "0o1666"} {
		t.Run("refused "+bad, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.lbi")
			refused(t, nil, cli.ExitUsage, []string{"--mode " + bad, "--mode 0640", "0600"}, "backup", "disk", disk, "-o", out, "--mode", bad)
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("a refused backup left %v", ents)
			}
		})
	}
	refused(t, nil, cli.ExitUsage, []string{"--mode 0700"}, "merge", inc, "-o", filepath.Join(dir, "m2.lbi"), "--mode", "0700")
	refused(t, nil, cli.ExitUsage, []string{"--mode 0777"}, "restore", img, "--target", filepath.Join(dir, "r3.img"), "--yes", "--mode", "0777")
	for _, p := range []string{"m2.lbi", "r3.img"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("a refused command created %s", p)
		}
	}
}

// Child processes inherited LIFEBOAT_PASSWORD. A restore that grows an
// ext4 filesystem runs e2fsck and resize2fs; with the password in
// lifeboat's environment, neither may see it.
//
// The one fake here is a wrapper script per tool, found first on PATH: it
// records its environment and execs the real tool, so the restore and the
// grow are real. A child's environment cannot be observed from outside any
// other way once the child has exited.
func TestChildrenDoNotSeePassword(t *testing.T) {
	need(t, "sfdisk", "mkfs.ext4", "e2fsck", "resize2fs", "losetup")
	if os.Geteuid() != 0 {
		t.Skip("growing a filesystem in a file uses a loop device: needs root")
	}
	dir := t.TempDir()
	wrap := filepath.Join(dir, "wrap")
	logs := filepath.Join(dir, "logs")
	os.Mkdir(wrap, 0o755)
	os.Mkdir(logs, 0o755)
	for _, tool := range []string{"e2fsck", "resize2fs"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\nenv > " + filepath.Join(logs, tool+".env") + "\nexec " + real + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(wrap, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	disk := mbrExt4Disk(t, dir, 8<<20)
	img := filepath.Join(dir, "src.lbi")
	mustLB(t, []string{pw}, "backup", "disk", disk, "-o", img, "--encrypt")

	big := newFile(t, filepath.Join(dir, "big.img"), 128<<20)
	env := []string{pw, "PATH=" + wrap + ":" + os.Getenv("PATH")}
	r := mustLB(t, env, "restore", img, "--target", big, "--layout", "fill", "--yes")
	if !strings.Contains(r.stdout, "ext4 filesystem grew") {
		t.Fatalf("the restore did not grow the filesystem: %s", r.stdout)
	}
	for _, tool := range []string{"e2fsck", "resize2fs"} {
		b, err := os.ReadFile(filepath.Join(logs, tool+".env"))
		if err != nil {
			t.Fatalf("%s was not run through its wrapper: %v", tool, err)
		}
		if strings.Contains(string(b), "LIFEBOAT_PASSWORD") || strings.Contains(string(b), "correct horse") {
			t.Errorf("%s saw the password in its environment:\n%s", tool, b)
		}
		if !strings.Contains(string(b), "PATH=") {
			t.Errorf("%s's environment was not recorded: %q", tool, b)
		}
	}
}

// A password given for an image that is not encrypted was silently
// ignored. Every reading command warns, naming the image; with
// --require-encrypted it refuses with exit 5 before anything is written.
func TestPasswordForUnencryptedImage(t *testing.T) {
	dir, src, files := smallChain(t, nil)
	full, last := files[0], files[len(files)-1]
	pwFile := filepath.Join(dir, "pw.txt")
	os.WriteFile(pwFile, []byte("correct horse\n"), 0o600)
	warning := func(img string) string { return "image " + img + " is not encrypted; the password was not used" }

	target := filepath.Join(dir, "out.img")
	for _, c := range []struct {
		name string
		env  []string
		args []string
		img  string // the image the warning names
	}{
		{"restore env", []string{pw}, []string{"restore", full, "--target", target, "--yes"}, full},
		{"restore file", nil, []string{"restore", last, "--target", target + "2", "--yes", "--password-file", pwFile}, last},
		{"check", []string{pw}, []string{"check", last}, last},
		{"info", nil, []string{"info", full, "--password-file", pwFile}, full},
		{"merge", []string{pw}, []string{"merge", last, "-o", filepath.Join(dir, "merged.lbi")}, last},
		{"incremental base", []string{pw}, []string{"backup", "disk", src, "-o", filepath.Join(dir, "inc3.lbi"), "--incremental", full}, last},
		{"new image", []string{pw}, []string{"backup", "disk", src, "-o", filepath.Join(dir, "plain.lbi")}, filepath.Join(dir, "plain.lbi")},
	} {
		t.Run("warns "+c.name, func(t *testing.T) {
			r := mustLB(t, c.env, c.args...)
			if !strings.Contains(r.stderr, warning(c.img)) {
				t.Errorf("no warning %q: %s", warning(c.img), r.stderr)
			}
		})
	}

	for _, c := range []struct {
		name string
		args []string
		out  string // must not appear
	}{
		{"restore", []string{"restore", full, "--target", filepath.Join(dir, "r.img"), "--yes"}, "r.img"},
		{"check", []string{"check", last}, ""},
		{"info", []string{"info", full}, ""},
		{"merge", []string{"merge", last, "-o", filepath.Join(dir, "m.lbi")}, "m.lbi"},
		{"incremental base", []string{"backup", "disk", src, "-o", filepath.Join(dir, "i.lbi"), "--incremental", full}, "i.lbi"},
		{"differential base", []string{"backup", "disk", src, "-o", filepath.Join(dir, "d.lbi"), "--differential", last}, "d.lbi"},
	} {
		t.Run("refuses "+c.name, func(t *testing.T) {
			refused(t, []string{pw}, cli.ExitRefused, []string{"not encrypted", "--require-encrypted"}, append(c.args, "--require-encrypted")...)
			if c.out != "" {
				if _, err := os.Stat(filepath.Join(dir, c.out)); err == nil {
					t.Errorf("a refused %s wrote %s", c.name, c.out)
				}
			}
		})
	}
	// On a full backup the flag has nothing to check: the new image is
	// encrypted by --encrypt.
	refused(t, []string{pw}, cli.ExitUsage, []string{"--require-encrypted", "--incremental", "--encrypt"},
		"backup", "disk", src, "-o", filepath.Join(dir, "x.lbi"), "--require-encrypted")

	// An encrypted image passes, with no warning.
	enc := filepath.Join(dir, "enc.lbi")
	mustLB(t, []string{pw}, "backup", "disk", src, "-o", enc, "--encrypt")
	for _, args := range [][]string{{"check", enc, "--require-encrypted"}, {"info", enc, "--require-encrypted"}} {
		if r := mustLB(t, []string{pw}, args...); strings.Contains(r.stderr, "not encrypted") {
			t.Errorf("%v warns about an encrypted image: %s", args, r.stderr)
		}
	}
}
