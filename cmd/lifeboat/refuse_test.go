//go:build linux

package main

// Bad input: every refusal has a non-zero exit code, a message naming the
// object and the fix, and leaves every target byte as it was.

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

// fixture is a small ext4 disk image, its backup, and a target file full of
// a pattern whose hash is checked after every refusal.
type fixture struct {
	dir, disk, img, target string
	targetSum              [32]byte
}

func newFixture(t *testing.T, encrypted bool, extra ...string) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir()}
	fx.disk = filepath.Join(fx.dir, "src.img")
	mkext4(t, fx.disk, 16<<20, 6<<20)
	fx.img = filepath.Join(fx.dir, "src.lbi")
	args := append([]string{"backup", "disk", fx.disk, "-o", fx.img}, extra...)
	var env []string
	if encrypted {
		args = append(args, "--encrypt")
		env = []string{pw}
	}
	mustLB(t, env, args...)
	fx.target = filepath.Join(fx.dir, "target.img")
	pattern := bytes.Repeat([]byte("untouched "), (17<<20)/10)
	os.WriteFile(fx.target, pattern, 0o644)
	fx.targetSum = fileSum(t, fx.target)
	return fx
}

func (fx *fixture) untouched(t *testing.T) {
	t.Helper()
	if fileSum(t, fx.target) != fx.targetSum {
		t.Fatal("the target was written to")
	}
}

// refused runs lifeboat and checks its exit code and that the message
// contains every want (the object, the fix).
func refused(t *testing.T, env []string, code int, want []string, args ...string) {
	t.Helper()
	r := lb(t, env, args...)
	if r.code != code {
		t.Fatalf("exit code %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("message lacks %q: %s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("crashed: %s", r.stderr)
	}
}

func TestPasswords(t *testing.T) {
	fx := newFixture(t, true)
	refused(t, []string{"LIFEBOAT_PASSWORD=wrong"}, cli.ExitPassword, []string{"wrong password", fx.img, "password the backup was made with"},
		"restore", fx.img, "--target", fx.target, "--yes")
	fx.untouched(t)
	refused(t, nil, cli.ExitPassword, []string{"encrypted", "--password-file", "LIFEBOAT_PASSWORD"},
		"restore", fx.img, "--target", fx.target, "--yes")
	fx.untouched(t)
	refused(t, []string{"LIFEBOAT_PASSWORD=wrong"}, cli.ExitPassword, []string{"wrong password"}, "check", fx.img)
	// From a file: first line only.
	pf := filepath.Join(fx.dir, "pw")
	os.WriteFile(pf, []byte("correct horse\n"), 0o600)
	mustLB(t, nil, "check", fx.img, "--password-file", pf)
	// Creating an encrypted image without any password source.
	refused(t, nil, cli.ExitUsage, []string{"--encrypt needs a password", "--password-file"},
		"backup", "disk", fx.disk, "-o", filepath.Join(fx.dir, "n.lbi"), "--encrypt")
}

func TestDamagedImages(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			fx := newFixture(t, enc)
			var env []string
			if enc {
				env = []string{pw}
			}
			orig, _ := os.ReadFile(fx.img)
			n := len(orig)
			// header, chunks, metadata, index, trailer
			positions := []int{0, 9, 20, 100, 300, n / 5, n / 3, n / 2, 2 * n / 3, n - 5000, n - 2000, n - 600, n - 200, n - 128, n - 100, n - 60, n - 10, n - 1}
			for _, pos := range positions {
				b := bytes.Clone(orig)
				b[pos] ^= 0x04
				os.WriteFile(fx.img, b, 0o644)
				r := lb(t, env, "check", fx.img)
				if r.code == 0 {
					t.Fatalf("check passed with byte %d of %d flipped", pos, n)
				}
				if r.code != cli.ExitImage || !strings.Contains(r.stderr, fx.img) {
					t.Errorf("flip at %d: exit %d, %s", pos, r.code, r.stderr)
				}
				r = lb(t, env, "restore", fx.img, "--target", fx.target, "--yes")
				if r.code == 0 {
					t.Fatalf("restore accepted byte %d flipped", pos)
				}
				fx.untouched(t)
			}
			os.WriteFile(fx.img, orig[:n-1000], 0o644)
			refused(t, env, cli.ExitImage, []string{fx.img, "incomplete"}, "restore", fx.img, "--target", fx.target, "--yes")
			fx.untouched(t)
			os.WriteFile(fx.img, []byte("not an image at all"), 0o644)
			refused(t, env, cli.ExitImage, []string{"not a lifeboat image"}, "check", fx.img)
		})
	}
}

func TestMissingSplitPart(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "rand.img")
	b := make([]byte, 130<<20)
	var seed [32]byte
	randFill(seed, b)
	os.WriteFile(disk, b, 0o644)
	img := filepath.Join(dir, "s.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", img, "--split", "50M")
	p2 := images.PartName(img, 2)
	os.Rename(p2, p2+".away")
	target := filepath.Join(dir, "t.img")
	refused(t, nil, cli.ExitImage, []string{"s.002.lbi", "missing", "put it next to"}, "restore", img, "--target", target, "--yes")
	if _, err := os.Stat(target); err == nil {
		t.Fatal("target created")
	}
	refused(t, nil, cli.ExitUsage, []string{"at least 50M"}, "backup", "disk", disk, "-o", filepath.Join(dir, "x.lbi"), "--split", "10M")
}

func TestTargetRefusals(t *testing.T) {
	fx := newFixture(t, false)
	small := filepath.Join(fx.dir, "small.img")
	os.WriteFile(small, make([]byte, 8<<20), 0o644)
	smallSum := fileSum(t, small)
	refused(t, nil, cli.ExitRefused, []string{small, "smaller than", "larger target"}, "restore", fx.img, "--target", small, "--yes")
	if fileSum(t, small) != smallSum {
		t.Fatal("small target written")
	}
	// The image itself as the target.
	refused(t, nil, cli.ExitRefused, []string{"holds the image"}, "restore", fx.img, "--target", fx.img, "--yes")
	mustLB(t, nil, "check", fx.img)
	// Missing things.
	refused(t, nil, cli.ExitNotFound, []string{"/dev/lifeboat-nope", "lifeboat disks"}, "restore", fx.img, "--target", "/dev/lifeboat-nope", "--yes")
	refused(t, nil, cli.ExitNotFound, []string{"nope.lbi", "does not exist"}, "restore", filepath.Join(fx.dir, "nope.lbi"), "--target", fx.target, "--yes")
	refused(t, nil, cli.ExitNotFound, []string{"/nonexistent/src"}, "backup", "disk", "/nonexistent/src", "-o", filepath.Join(fx.dir, "o.lbi"))
	refused(t, nil, cli.ExitNotFound, []string{"/nonexistent/dir", "create it"}, "backup", "disk", fx.disk, "-o", "/nonexistent/dir/o.lbi")
	// Output inside the source: the same file.
	refused(t, nil, cli.ExitRefused, []string{fx.disk, "another disk"}, "backup", "disk", fx.disk, "-o", fx.disk, "--overwrite")
	refused(t, nil, cli.ExitRefused, []string{"already exists", "--overwrite"}, "backup", "disk", fx.disk, "-o", fx.img)
	// Without --yes and without a terminal nothing is written.
	refused(t, nil, cli.ExitRefused, []string{"--yes", "nothing was written"}, "restore", fx.img, "--target", fx.target)
	fx.untouched(t)
	// Usage errors.
	refused(t, nil, cli.ExitUsage, []string{"--target"}, "restore", fx.img)
	refused(t, nil, cli.ExitUsage, []string{"unknown compression"}, "backup", "disk", fx.disk, "-o", filepath.Join(fx.dir, "c.lbi"), "--compression", "max")
}

// A typed confirmation that does not match writes nothing.
func TestTypedConfirmation(t *testing.T) {
	// Every sector, so the restored range is byte for byte the source (an
	// intelligent restore leaves unused blocks of the target as they were).
	fx := newFixture(t, false, "--sector-by-sector")
	var out, errb bytes.Buffer
	err := cli.ExecuteInteractive(context.Background(), []string{"restore", fx.img, "--target", fx.target}, strings.NewReader("sda\n"), &out, &errb)
	if cli.ExitCode(err) != cli.ExitRefused || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errb.String(), `Type "target.img"`) {
		t.Errorf("prompt: %s", errb.String())
	}
	fx.untouched(t)
	err = cli.ExecuteInteractive(context.Background(), []string{"restore", fx.img, "--target", fx.target}, strings.NewReader("target.img\n"), &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(fx.target)
	want, _ := os.ReadFile(fx.disk)
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("restore after confirmation differs")
	}
}

// Loop devices and mounts: the target mounted, the target holding the image,
// the output inside the source.
func TestDeviceRefusals(t *testing.T) {
	need(t, "losetup", "mount", "umount", "mkfs.ext4")
	if os.Geteuid() != 0 {
		t.Skip("loop devices and mounts need root; run make test as root")
	}
	fx := newFixture(t, false)
	backing := filepath.Join(fx.dir, "store.img")
	f, _ := os.Create(backing)
	f.Truncate(64 << 20)
	f.Close()
	// The device's bytes must change only if lifeboat writes them: no
	// lazy inode-table or journal initialisation by the kernel after
	// mounting (ext4lazyinit), and no access-time updates when the
	// refusal reads the image (the test failed once on a fresh machine
	// with "device written" without either).
	sh(t, "mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", backing)
	loop := strings.TrimSpace(sh(t, "losetup", "--find", "--show", backing))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mnt := t.TempDir()
	sh(t, "mount", "-o", "noatime", loop, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	devSum := fileSum(t, backing)

	// The image lives on the loop device; restoring onto it is refused.
	stored := filepath.Join(mnt, "on-device.lbi")
	data, _ := os.ReadFile(fx.img)
	os.WriteFile(stored, data, 0o644)
	exec.Command("sync").Run()
	devSum = fileSum(t, backing)
	refused(t, nil, cli.ExitRefused, []string{loop, "holds the image", "another disk"}, "restore", stored, "--target", loop, "--yes")
	// An image elsewhere onto the mounted device.
	refused(t, nil, cli.ExitRefused, []string{loop, "mounted", mnt, "unmount"}, "restore", fx.img, "--target", loop, "--yes")
	if fileSum(t, backing) != devSum {
		t.Fatal("device written")
	}
	// Output inside the source being backed up.
	refused(t, nil, cli.ExitRefused, []string{"stored on " + loop, "another disk"}, "backup", "disk", loop, "-o", filepath.Join(mnt, "self.lbi"))
	if _, err := os.Stat(filepath.Join(mnt, "self.lbi")); err == nil {
		t.Fatal("image written inside its source")
	}
}

// Permission: an unprivileged user cannot read a root-only source.
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	need(t, "setpriv")
	fx := newFixture(t, false)
	os.Chmod(fx.disk, 0o600)
	os.Chmod(fx.dir, 0o755)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", lifeboat, "backup", "disk", fx.disk, "-o", "/tmp/never.lbi")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != cli.ExitNotFound || !strings.Contains(string(out), fx.disk) || !strings.Contains(string(out), "root") {
		t.Fatalf("err %v: %s", err, out)
	}
}

func randFill(seed [32]byte, b []byte) {
	rand.NewChaCha8(seed).Read(b)
}
