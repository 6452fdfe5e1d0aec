//go:build linux

package main

// Messages as a new user reads them: each says one thing once, with the
// same figure wherever it appears, and nothing looks wrong that is not.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/cli"
)

// gptDisk makes a GPT disk image with a 1 MiB BIOS boot partition and an
// ext4 partition holding a file.
func gptDisk(t *testing.T, dir string) string {
	t.Helper()
	need(t, "sgdisk", "mkfs.ext4")
	disk := filepath.Join(dir, "gpt.img")
	newFile(t, disk, 64<<20)
	sh(t, "sgdisk", "-o", "-n1:2048:+1M", "-t1:ef02", "-n2:0:+40M", "-t2:8300", disk)
	sh(t, "mkfs.ext4", "-q", "-F", "-E", "offset=2097152", disk, "40M")
	return disk
}

func TestInfoReadsPlainly(t *testing.T) {
	dir := t.TempDir()
	disk := gptDisk(t, dir)
	img := filepath.Join(dir, "g.lbi")
	b := mustLB(t, nil, "backup", "disk", disk, "-o", img, "--compression", "none")
	if strings.Contains(b.stdout, "unknown filesystem") || !strings.Contains(b.stdout, "BIOS boot partition (1.0 MiB)") {
		t.Errorf("backup reports the BIOS boot partition as a problem:\n%s", b.stdout)
	}
	info := mustLB(t, nil, "info", img).stdout
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), ":") {
			t.Errorf("a line with an empty label: %q", line)
		}
		if strings.HasPrefix(line, "Compression:") && strings.Contains(line, "zstd") {
			t.Errorf("uncompressed image claims zstd: %q", line)
		}
	}
	if strings.Contains(info, "unknown filesystem") || !strings.Contains(info, "BIOS boot partition (1.0 MiB): it holds boot code") {
		t.Errorf("info reports the BIOS boot partition as a problem:\n%s", info)
	}
	// One "in use" figure: the backup's and info's agree.
	inUse := regexp.MustCompile(`\(64 MiB, ([0-9.]+ [KMG]iB) in use\)`).FindStringSubmatch(b.stdout)
	if inUse == nil || !strings.Contains(info, "In use:") || !strings.Contains(info, inUse[1]+" of 64 MiB") {
		t.Errorf("backup and info give different in-use figures:\n%s\n%s", b.stdout, info)
	}

	js := mustLB(t, nil, "info", "--json", img).stdout
	if len(js) > 8<<10 {
		t.Errorf("info --json is %d bytes", len(js))
	}
	var v any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) {
					t.Errorf("key %q is not snake_case", k)
				}
				if k == "raw" {
					t.Errorf("raw sectors without --raw-sectors")
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	if raw := mustLB(t, nil, "info", "--json", "--raw-sectors", img).stdout; !strings.Contains(raw, `"raw"`) {
		t.Error("--raw-sectors leaves the raw sectors out")
	}
}

// The confirmation names the target with its size and contents, and the
// image's own size and in-use figure for what is written.
func TestConfirmationSaysWhatIsWritten(t *testing.T) {
	fx := newFixture(t, false)
	var out, errb bytes.Buffer
	err := cli.ExecuteInteractive(context.Background(), []string{"restore", fx.img, "--target", fx.target}, strings.NewReader("no\n"), &out, &errb)
	if cli.ExitCode(err) != cli.ExitRefused {
		t.Fatalf("err = %v", err)
	}
	msg := errb.String()
	for _, want := range []string{"Target:        " + fx.target + " (file 17 MiB)", "Will write:    the image's disk (16 MiB, of which ", "in use)", "EVERYTHING on " + fx.target} {
		if !strings.Contains(msg, want) {
			t.Errorf("confirmation lacks %q:\n%s", want, msg)
		}
	}
	// End of input at the prompt cancels like Ctrl-D.
	err = cli.ExecuteInteractive(context.Background(), []string{"restore", fx.img, "--target", fx.target}, strings.NewReader(""), &out, &errb)
	if cli.ExitCode(err) != cli.ExitCancelled {
		t.Fatalf("EOF at the prompt: %v", err)
	}
	fx.untouched(t)
}

func TestNoPrecheckFlag(t *testing.T) {
	if h := mustLB(t, nil, "restore", "--help").stdout; !strings.Contains(h, "--no-precheck") || !strings.Contains(h, "half-written") {
		t.Errorf("restore --help does not say what --no-precheck risks:\n%s", h)
	}
	fx := newFixture(t, false)
	mustLB(t, nil, "restore", fx.img, "--target", fx.target, "--no-precheck", "--yes")
}

// Root only: mounts and loop devices.
func TestLiveSourceAndMounts(t *testing.T) {
	need(t, "losetup", "mount", "umount", "mkfs.ext4", "sgdisk")
	if os.Geteuid() != 0 {
		t.Skip("loop devices and mounts need root; run make test as root")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	mkext4(t, src, 32<<20, 2<<20)
	loop := strings.TrimSpace(sh(t, "losetup", "--find", "--show", src))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	sh(t, "mount", loop, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	os.WriteFile(filepath.Join(mnt, "new"), []byte("dirty journal"), 0o644)

	// disks shows where it is mounted.
	if d := mustLB(t, nil, "disks").stdout; !strings.Contains(d, mnt) {
		t.Errorf("disks does not show the mount point %s:\n%s", mnt, d)
	}
	var ds []struct {
		Path        string   `json:"path"`
		MountPoints []string `json:"mount_points"`
	}
	json.Unmarshal([]byte(mustLB(t, nil, "disks", "--json").stdout), &ds)
	found := false
	for _, d := range ds {
		found = found || (d.Path == loop && len(d.MountPoints) == 1 && d.MountPoints[0] == mnt)
	}
	if !found {
		t.Errorf("disks --json does not give %s mount_points [%s]", loop, mnt)
	}

	// Backing it up while mounted read-write warns that it is live, and
	// does not advise mounting what is mounted.
	r := mustLB(t, nil, "backup", "part", loop, "-o", filepath.Join(dir, "live.lbi"))
	if !strings.Contains(r.stderr, "WARNING: "+loop+" is mounted read-write at "+mnt) || !strings.Contains(r.stderr, "live") {
		t.Errorf("no live warning:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "mount it once") {
		t.Errorf("advises mounting a mounted filesystem:\n%s", r.stdout)
	}
	// Read-only: no warning.
	sh(t, "mount", "-o", "remount,ro", mnt)
	if r := mustLB(t, nil, "backup", "part", loop, "-o", filepath.Join(dir, "ro.lbi")); strings.Contains(r.stderr, "WARNING") {
		t.Errorf("warns about a read-only mount:\n%s", r.stderr)
	}

	// A disk image file with a partition table given to "backup part".
	disk := gptDisk(t, dir)
	if r := mustLB(t, nil, "backup", "part", disk, "-o", filepath.Join(dir, "p.lbi")); !strings.Contains(r.stderr, "lifeboat backup disk "+disk) {
		t.Errorf("no hint for a whole disk given to backup part:\n%s", r.stderr)
	}

	// The same on a partitioned loop device, and the reverse: a partition
	// given to "backup disk".
	pl := strings.TrimSpace(sh(t, "losetup", "--find", "--show", "--partscan", disk))
	t.Cleanup(func() { exec.Command("losetup", "-d", pl).Run() })
	exec.Command("partx", "-a", pl).Run() // where the kernel did not scan
	if _, err := os.Stat(pl + "p2"); err != nil {
		t.Logf("no %sp2: the kernel does not scan loop partitions; partition hints untested", pl)
	} else {
		if r := mustLB(t, nil, "backup", "part", pl, "-o", filepath.Join(dir, "pl.lbi")); !strings.Contains(r.stderr, "is a whole disk with 2 partitions") ||
			!strings.Contains(r.stderr, "lifeboat backup disk "+pl) {
			t.Errorf("no hint for a whole disk given to backup part:\n%s", r.stderr)
		}
		if r := mustLB(t, nil, "backup", "disk", pl+"p2", "-o", filepath.Join(dir, "pd.lbi")); !strings.Contains(r.stderr, "is partition 2 of "+pl) ||
			!strings.Contains(r.stderr, "lifeboat backup part "+pl+"p2") {
			t.Errorf("no hint for a partition given to backup disk:\n%s", r.stderr)
		}
	}

	// A full output disk is named once, with what to do.
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	sh(t, "mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", full)
	t.Cleanup(func() { exec.Command("umount", full).Run() })
	out := filepath.Join(full, "x.lbi")
	r = lb(t, nil, "backup", "disk", src, "-o", out, "--compression", "none")
	if r.code == 0 || strings.Count(r.stderr, out) != 1 || !strings.Contains(r.stderr, "no space left") || !strings.Contains(r.stderr, "larger disk") {
		t.Errorf("disk-full message:\n%s", r.stderr)
	}
}
