//go:build linux

package main

// End-to-end tests of the lifeboat binary: real filesystems made by mkfs,
// real loop devices and mounts, the real process with its exit codes.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/images"
)

var lifeboat string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lifeboat-bin")
	if err != nil {
		panic(err)
	}
	lifeboat = filepath.Join(dir, "lifeboat")
	if out, err := exec.Command("go", "build", "-o", lifeboat, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// lb runs the binary; env entries are added to a clean environment.
func lb(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(lifeboat, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return runResult(t, cmd, "lifeboat "+strings.Join(args, " "))
}

// runResult runs cmd and returns its output and exit code, logged as what.
func runResult(t *testing.T, cmd *exec.Cmd, what string) result {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{o.String(), e.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s → %d\n%s%s", what, r.code, r.stdout, r.stderr)
	return r
}

func mustLB(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := lb(t, env, args...)
	if r.code != 0 {
		t.Fatalf("lifeboat %v failed with %d: %s", args, r.code, r.stderr)
	}
	return r
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run make deps", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// fillTree writes files of random and text-like content, n bytes in all.
func fillTree(t *testing.T, dir string, n int64, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	var chacha [32]byte
	chacha[0] = byte(seed)
	rnd := rand.NewChaCha8(chacha)
	words := strings.Fields("the quick lifeboat restores a disk image from backup while sectors and chunks are hashed compressed verified")
	for i := 0; n > 0; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%7))
		os.MkdirAll(sub, 0o755)
		size := min(n, int64(1+r.IntN(8<<20)))
		b := make([]byte, size)
		if i%2 == 0 {
			rnd.Read(b)
		} else {
			var buf bytes.Buffer
			for int64(buf.Len()) < size {
				buf.WriteString(words[r.IntN(len(words))])
				buf.WriteByte(" \n"[r.IntN(2)])
			}
			copy(b, buf.Bytes())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.dat", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		n -= size
	}
}

// mkext4 makes an ext4 filesystem image of size bytes holding fill bytes of files.
func mkext4(t *testing.T, path string, size, fill int64) {
	need(t, "mkfs.ext4")
	tree := filepath.Join(t.TempDir(), "tree")
	fillTree(t, tree, fill, uint64(size))
	if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, _ := os.Create(path)
	f.Truncate(size)
	f.Close()
	sh(t, "mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", tree, path)
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	if fileSum(t, a) != fileSum(t, b) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

const pw = "LIFEBOAT_PASSWORD=correct horse"

// Acceptance: a 1 GiB ext4 with files, restored from a normal, encrypted,
// split image, is byte-identical and e2fsck clean.
func TestExt4EncryptedSplitRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("slow round trip")
	}
	need(t, "e2fsck")
	dir := t.TempDir()
	disk := filepath.Join(dir, "ext4.img")
	mkext4(t, disk, 1<<30, 160<<20)
	img := filepath.Join(dir, "pc1.lbi")
	r := mustLB(t, []string{pw}, "backup", "part", disk, "-o", img, "--compression", "normal", "--split", "50M", "--encrypt")
	if !strings.Contains(r.stdout, "parts") {
		t.Errorf("summary does not mention parts: %s", r.stdout)
	}
	if _, err := os.Stat(images.PartName(img, 3)); err != nil {
		t.Fatalf("expected at least 3 parts: %v", err)
	}
	info := mustLB(t, nil, "info", img)
	for _, want := range []string{"aes-256-gcm", "locked", "ext4", "50 MiB"} {
		if !strings.Contains(info.stdout, want) {
			t.Errorf("info lacks %q", want)
		}
	}
	mustLB(t, []string{pw}, "check", img)
	out := filepath.Join(dir, "restored.img")
	mustLB(t, []string{pw}, "restore", img, "--target", out, "--yes")
	sameFiles(t, disk, out)
	sh(t, "e2fsck", "-fn", out)
}

func TestEveryCompressionLevelVFAT(t *testing.T) {
	need(t, "mkfs.vfat", "fsck.vfat")
	dir := t.TempDir()
	disk := filepath.Join(dir, "fat.img")
	f, _ := os.Create(disk)
	f.Truncate(64 << 20)
	f.Close()
	sh(t, "mkfs.vfat", "-F", "32", "-n", "LBTEST", disk)
	// Put files in with mtools-free means: the filesystem is fresh, so
	// write pseudo-data into its free area too; the image must keep it.
	for _, lvl := range []string{"none", "fast", "normal", "high"} {
		t.Run(lvl, func(t *testing.T) {
			img := filepath.Join(dir, lvl+".lbi")
			mustLB(t, nil, "backup", "part", disk, "-o", img, "--compression", lvl)
			info := mustLB(t, nil, "info", "--json", img)
			if !strings.Contains(info.stdout, `"type": "vfat"`) || !strings.Contains(info.stdout, `"LBTEST"`) {
				t.Errorf("info --json does not show the vfat label: %s", info.stdout)
			}
			out := filepath.Join(dir, lvl+".out")
			mustLB(t, nil, "restore", img, "--target", out, "--yes")
			sameFiles(t, disk, out)
			sh(t, "fsck.vfat", "-n", out)
		})
	}
}

// A disk with a partition table: whole-disk restore, and one partition
// restored alone.
func TestPartitionedDisk(t *testing.T) {
	need(t, "sfdisk", "mkfs.vfat")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	f, _ := os.Create(disk)
	f.Truncate(128 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=65536, type=uefi, name=ESP\nstart=67584, type=linux, name=root\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	esp := filepath.Join(dir, "esp.img")
	root := filepath.Join(dir, "root.img")
	f, _ = os.Create(esp)
	f.Truncate(65536 * 512)
	f.Close()
	sh(t, "mkfs.vfat", "-F", "16", "-n", "ESP", esp)
	mkext4(t, root, (128<<20)-67584*512-34*512, 20<<20)
	sh(t, "dd", "if="+esp, "of="+disk, "bs=512", "seek=2048", "conv=notrunc", "status=none")
	sh(t, "dd", "if="+root, "of="+disk, "bs=512", "seek=67584", "conv=notrunc", "status=none")

	img := filepath.Join(dir, "disk.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", img)
	info := mustLB(t, nil, "info", img)
	for _, want := range []string{"gpt", "Partition 1", "Partition 2", `"ESP"`, "ext4"} {
		if !strings.Contains(info.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, info.stdout)
		}
	}
	whole := filepath.Join(dir, "whole.img")
	mustLB(t, nil, "restore", img, "--target", whole, "--yes")
	sameFiles(t, disk, whole)

	// Partition 2 into an existing, larger file: only its range is written.
	part := filepath.Join(dir, "p2.img")
	f, _ = os.Create(part)
	f.Truncate(100 << 20)
	f.Close()
	mustLB(t, nil, "restore", img, "--partition", "2", "--target", part, "--yes")
	got, _ := os.ReadFile(part)
	want, _ := os.ReadFile(root)
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("partition 2 restored differs")
	}
	r := lb(t, nil, "restore", img, "--partition", "7", "--target", part, "--yes")
	// Exit 6: what --partition names does not exist in the image.
	if r.code != 6 || !strings.Contains(r.stderr, "has no partition 7") {
		t.Errorf("missing partition: %d %s", r.code, r.stderr)
	}
}

// Streamed to a pipe, read back from the file the pipe filled.
func TestBackupToPipe(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.img")
	mkext4(t, disk, 64<<20, 10<<20)
	img := filepath.Join(dir, "piped.lbi")
	out, _ := os.Create(img)
	cmd := exec.Command(lifeboat, "backup", "disk", disk, "-o", "-")
	pr, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A real pipe through another process, as with `| ssh` or `| curl -T`.
	cat := exec.Command("cat")
	cat.Stdin, cat.Stdout = pr, out
	if err := cat.Run(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("backup to pipe: %v %s", err, stderr.String())
	}
	out.Close()
	mustLB(t, nil, "check", img)
	res := filepath.Join(dir, "r.img")
	mustLB(t, nil, "restore", img, "--target", res, "--yes")
	sameFiles(t, disk, res)
}

// Ctrl-C during a backup: exit 130, no image, no temporary file left.
func TestCancelLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "big.img")
	f, _ := os.Create(disk)
	var seed [32]byte
	rnd := rand.NewChaCha8(seed)
	// Random letters: zstd's default level works on them for seconds
	// (random bytes it rejects at GB/s, and the backup could end before
	// the signal).
	buf := make([]byte, 1<<20)
	for range 768 {
		rnd.Read(buf)
		for i := range buf {
			buf[i] = 'a' + buf[i]&15
		}
		f.Write(buf)
	}
	f.Close()
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	cmd := exec.Command(lifeboat, "backup", "disk", disk, "-o", filepath.Join(outDir, "x.lbi"), "--compression", "high")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once the backup is writing (its temporary file exists).
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ents, _ := os.ReadDir(outDir); len(ents) > 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit = %v, want 130; %s", err, stderr.String())
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Fatalf("cancelled backup left %v", ents)
	}
	if !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("message: %s", stderr.String())
	}
}

// `lifeboat disks` shows a real loop disk with its GPT and filesystems.
func TestDisksListsLoopDisk(t *testing.T) {
	need(t, "losetup", "sfdisk", "mkfs.vfat", "partx")
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root; run make test as root")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.img")
	f, _ := os.Create(disk)
	f.Truncate(96 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=65536, type=uefi, name=EFI\nstart=67584, type=linux, name=data\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	loop := strings.TrimSpace(sh(t, "losetup", "--find", "--show", "--partscan", disk))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	if _, err := os.Stat(loop + "p1"); err != nil {
		exec.Command("partx", "--add", loop).Run()
	}
	sh(t, "mkfs.vfat", "-F", "16", "-n", "LBESP", loop+"p1")
	r := mustLB(t, nil, "disks", "--json")
	var disks []struct {
		Path, Bus, Table string
		Partitions       []struct {
			Number int
			Label  string
			FS     *struct{ Type, Label string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &disks); err != nil {
		t.Fatal(err)
	}
	for _, d := range disks {
		if d.Path != loop {
			continue
		}
		if d.Bus != "loop" || d.Table != "gpt" || len(d.Partitions) != 2 {
			t.Fatalf("disk %+v", d)
		}
		p := d.Partitions[0]
		if p.Label != "EFI" || p.FS == nil || p.FS.Type != "vfat" || p.FS.Label != "LBESP" {
			t.Fatalf("partition 1: %+v %+v", p, p.FS)
		}
		text := mustLB(t, nil, "disks")
		if !strings.Contains(text.stdout, loop) || !strings.Contains(text.stdout, "LBESP") {
			t.Errorf("text listing lacks the loop disk:\n%s", text.stdout)
		}
		return
	}
	t.Fatalf("%s not listed: %s", loop, r.stdout)
}

// Restore onto a real block device: a blank loop disk gets the image's
// partition table and filesystems, and the kernel sees the new partitions.
func TestRestoreToBlockDevice(t *testing.T) {
	need(t, "losetup", "sfdisk", "e2fsck")
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root; run make test as root")
	}
	dir := t.TempDir()
	disk := mbrExt4Disk(t, dir, 12<<20)
	img := filepath.Join(dir, "src.lbi")
	mustLB(t, nil, "backup", "disk", disk, "-o", img, "--sector-by-sector")

	// A larger blank target with old junk at its start.
	target := filepath.Join(dir, "target.img")
	junk := bytes.Repeat([]byte("old data "), (80<<20)/9+1)[:80<<20]
	os.WriteFile(target, junk, 0o644)
	loop := strings.TrimSpace(sh(t, "losetup", "--find", "--show", "--partscan", target))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mustLB(t, nil, "restore", img, "--target", loop, "--yes")
	got := make([]byte, 64<<20)
	lf, _ := os.Open(loop)
	lf.ReadAt(got, 0)
	lf.Close()
	want, _ := os.ReadFile(disk)
	if !bytes.Equal(got, want) {
		t.Fatal("the loop disk does not hold the image's bytes")
	}
	// The kernel re-read the table: partition 1 exists and is clean.
	if !kernelScansLoopPartitions(t, disk) {
		t.Logf("this kernel shows no partitions of loop devices even for a table sfdisk wrote (no partition parser or minors): the re-read cannot be observed here")
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(loop + "p1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%sp1 did not appear after the restore", loop)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sh(t, "e2fsck", "-fn", loop+"p1")
}

// mbrExt4Disk makes dir/src.img: a 64 MiB disk with an MBR and one ext4
// partition from sector 2048 to the end, holding fill bytes of files.
func mbrExt4Disk(t *testing.T, dir string, fill int64) string {
	t.Helper()
	disk := filepath.Join(dir, "src.img")
	f, _ := os.Create(disk)
	f.Truncate(64 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	root := filepath.Join(dir, "root.img")
	mkext4(t, root, (64<<20)-2048*512, fill)
	sh(t, "dd", "if="+root, "of="+disk, "bs=512", "seek=2048", "conv=notrunc", "status=none")
	return disk
}

// kernelScansLoopPartitions attaches a copy of a partitioned disk with
// partition scanning and says whether its first partition appears.
func kernelScansLoopPartitions(t *testing.T, disk string) bool {
	loop := strings.TrimSpace(sh(t, "losetup", "--find", "--show", "--partscan", "--read-only", disk))
	defer exec.Command("losetup", "-d", loop).Run()
	for range 20 {
		if _, err := os.Stat("/sys/block/" + filepath.Base(loop) + "/" + filepath.Base(loop) + "p1"); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Images over HTTP (what the PXE server serves): info, check and restore
// read a split image through range requests; a missing part is named.
func TestImageOverHTTP(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.img")
	b := make([]byte, 120<<20)
	rand.NewChaCha8([32]byte{7}).Read(b[:100<<20])
	os.WriteFile(disk, b, 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	mustLB(t, nil, "backup", "disk", disk, "-o", filepath.Join(dir, "net.lbi"), "--split", "50M", "--compression", "fast")
	url := srv.URL + "/net.lbi"
	if r := mustLB(t, nil, "info", url); !strings.Contains(r.stdout, "net.002.lbi") {
		t.Errorf("info over HTTP does not list the parts: %s", r.stdout)
	}
	mustLB(t, nil, "check", url)
	out := filepath.Join(dir, "out.img")
	mustLB(t, nil, "restore", url, "--target", out, "--yes")
	sameFiles(t, disk, out)
	os.Rename(filepath.Join(dir, "net.002.lbi"), filepath.Join(dir, "away"))
	r := lb(t, nil, "restore", url, "--target", filepath.Join(dir, "out2.img"), "--yes")
	if r.code != 3 || !strings.Contains(r.stderr, "net.002.lbi") {
		t.Fatalf("missing part over HTTP: %d %s", r.code, r.stderr)
	}
}
