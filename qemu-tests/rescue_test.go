//go:build linux

// Package qemutests boots the real rescue environment (Debian's kernel and
// the u-root initramfs from `make rescue`) in QEMU and drives it: the
// acceptance tests of the rescue issue.
package qemutests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

var (
	bundleOnce sync.Once
	bundleDir  string
	bundleErr  error
)

// rescueBundle returns the folder with vmlinuz and initramfs: the one
// LIFEBOAT_RESCUE names (make test builds it), or one built here.
func rescueBundle(t testing.TB) string {
	bundleOnce.Do(func() {
		if d := os.Getenv("LIFEBOAT_RESCUE"); d != "" {
			bundleDir = d
			return
		}
		root, err := filepath.Abs("..")
		if err != nil {
			bundleErr = err
			return
		}
		bundleDir = filepath.Join(root, "out", "rescue")
		if _, err := os.Stat(filepath.Join(bundleDir, "bundle.json")); err == nil {
			return
		}
		_, bundleErr = bundle.Build(context.Background(), bundle.Options{Out: bundleDir, Source: root,
			Cache: filepath.Join(root, "out", "cache"), Version: "test"})
	})
	if bundleErr != nil {
		t.Fatalf("build the rescue bundle (make rescue): %v", bundleErr)
	}
	return bundleDir
}

func boot(t testing.TB, append string, disks []qemu.Disk, net qemu.NetMode) *qemu.VM {
	t.Helper()
	dir := rescueBundle(t)
	return startVM(t, qemu.Options{
		Kernel:   filepath.Join(dir, "vmlinuz"),
		Initrd:   filepath.Join(dir, "initramfs"),
		Append:   "console=ttyS0,115200 quiet panic=-1 " + append,
		MemoryMB: 256,
		Disks:    disks,
		Net:      net,
		Log:      t.Logf,
	}, 5*time.Minute)
}

// startVM starts o, killed when the test ends or after timeout.
func startVM(t testing.TB, o qemu.Options, timeout time.Duration) *qemu.VM {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	vm, err := qemu.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Kill(); cancel() })
	return vm
}

const bootTimeout = 90 * time.Second

func sparse(t testing.TB, path string, size int64) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	return path
}

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// 1. Boots in 256 MB to the ready marker and lists disks on every bus.
func TestBootListsDisksOnEveryBus(t *testing.T) {
	dir := t.TempDir()
	vm := boot(t, "", []qemu.Disk{
		{Path: sparse(t, filepath.Join(dir, "virtio.img"), 16<<20), Bus: qemu.Virtio, Serial: "LB-VIRTIO"},
		{Path: sparse(t, filepath.Join(dir, "ahci.img"), 24<<20), Bus: qemu.AHCI, Serial: "LB-AHCI"},
		{Path: sparse(t, filepath.Join(dir, "nvme.img"), 32<<20), Bus: qemu.NVMe, Serial: "LB-NVME"},
		{Path: sparse(t, filepath.Join(dir, "usb.img"), 40<<20), Bus: qemu.USB, Serial: "LB-USB"},
	}, qemu.NetNone)
	if _, err := vm.Expect(`LIFEBOAT-READY`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	// Disks print at ready, or as they arrive after it (USB is slow).
	want := []string{`disk: /dev/vd\w+ 16 MiB bus=virtio`, `disk: /dev/sd\w+ 24 MiB bus=sata`,
		`disk: /dev/nvme\w+ 32 MiB bus=nvme`, `disk: /dev/sd\w+ 40 MiB bus=usb`}
	for len(want) > 0 {
		i, _, err := vm.ExpectAny(30*time.Second, want...)
		if err != nil {
			t.Fatalf("disks not listed %v: %v", want, err)
		}
		want = append(want[:i], want[i+1:]...)
	}
}

// 4. Without a cable or a DHCP server the boot still reaches ready, and a
// job that needs the network says which of the two it was.
func TestBootWithoutNetwork(t *testing.T) {
	for _, tc := range []struct {
		net  qemu.NetMode
		want string
	}{
		{qemu.NetNoCable, `eth0 has no link \(no cable`},
		{qemu.NetNoDHCP, `eth0: \d+ DHCP requests sent, no reply from a DHCP server`},
	} {
		t.Run(tc.net.String(), func(t *testing.T) {
			t.Parallel()
			vm := boot(t, "lifeboat.action=restore lifeboat.image=http://10.0.2.2/pc1.lbi lifeboat.target=first-empty-disk lifeboat.netwait=20 lifeboat.done=shell lifeboat.ui=prompt", nil, tc.net)
			if _, err := vm.Expect(`LIFEBOAT-READY`, bootTimeout); err != nil {
				t.Fatal(err)
			}
			m, err := vm.Expect(`LIFEBOAT-RESULT status=failed .*no network address after 20s: (.*)`, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(tc.want).MatchString(m[1]) {
				t.Errorf("the job says %q, want it to match %q", m[1], tc.want)
			}
		})
	}
}

// imagesDisk makes an ext4 filesystem labelled IMAGES holding the files.
func imagesDisk(t testing.TB, path string, size int64, files map[string]string) string {
	tree := filepath.Join(t.TempDir(), "tree")
	for name, src := range files {
		dst := filepath.Join(tree, name)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, b, 0o644)
	}
	sparse(t, path, size)
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "IMAGES", "-d", tree, path)
	return path
}

// sourceFS makes an ext4 filesystem with files and returns their checksums.
func sourceFS(t testing.TB, path string, size int64) map[string][32]byte {
	tree := filepath.Join(t.TempDir(), "src")
	sums := map[string][32]byte{}
	for i := range 12 {
		name := fmt.Sprintf("dir%d/file%02d.bin", i%3, i)
		b := bytes.Repeat([]byte(fmt.Sprintf("lifeboat file %d ", i)), 3000*(i+1))
		os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(tree, name), b, 0o644)
		sums[name] = sha256.Sum256(b)
	}
	sparse(t, path, size)
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "SOURCE", "-d", tree, path)
	return sums
}

func lifeboatBin(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "lifeboat")
	c := exec.Command("go", "build", "-o", p, "../cmd/lifeboat")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build lifeboat: %v %s", err, out)
	}
	return p
}

// 2. Unattended restore onto the first empty disk, then power-off; the
// host checks the result.
func TestUnattendedRestore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	sums := sourceFS(t, src, 48<<20)
	img := filepath.Join(dir, "pc1.lbi")
	sh(t, lifeboatBin(t), "backup", "part", src, "-o", img)
	store := imagesDisk(t, filepath.Join(dir, "images.img"), 64<<20, map[string]string{"backups/pc1.lbi": img})
	target := sparse(t, filepath.Join(dir, "target.img"), 64<<20)

	vm := boot(t, "lifeboat.action=restore lifeboat.image=LABEL=IMAGES:/backups/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff",
		[]qemu.Disk{{Path: store, Bus: qemu.Virtio, Serial: "IMAGES"}, {Path: target, Bus: qemu.Virtio, Serial: "TARGET"}}, qemu.NetNone)
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+) exit=(\d+)`, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "ok" {
		t.Fatalf("result %s exit %s", m[1], m[2])
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
	want, _ := os.ReadFile(src)
	got, _ := os.ReadFile(target)
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("the target does not hold the source filesystem")
	}
	checkRestored(t, target, sums)
}

// Unattended restore of an encrypted image (the default Argon2id cost:
// 64 MiB, in a 256 MB machine), its password in a file on a disk labelled
// KEYS, with lifeboat.require-encrypted: the files come back, and the
// password never appears on the console. With another password in the
// file, the restore is refused and writes nothing.
func TestUnattendedEncryptedRestore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	sums := sourceFS(t, src, 48<<20)
	const password = "correct horse battery staple 19"
	pw := filepath.Join(dir, "pc1.pw")
	os.WriteFile(pw, []byte(password+"\n"), 0o600)
	img := filepath.Join(dir, "pc1.lbi")
	sh(t, lifeboatBin(t), "backup", "part", src, "-o", img, "--encrypt", "--password-file", pw)
	store := imagesDisk(t, filepath.Join(dir, "images.img"), 64<<20, map[string]string{"pc1.lbi": img})
	restoreWithKeys(t, dir, "password-file", "pc1.pw", password+"\n", "lifeboat.image=LABEL=IMAGES:/pc1.lbi lifeboat.require-encrypted=1",
		password, sums, qemu.Disk{Path: store, Bus: qemu.Virtio, Serial: "IMAGES"})

	// Another password in the file: refused with the reason (exit 4),
	// nothing written, the VM powered off.
	keys := filepath.Join(t.TempDir(), "keys")
	os.MkdirAll(keys, 0o755)
	os.WriteFile(filepath.Join(keys, "pc1.pw"), []byte("not the password\n"), 0o600)
	keysDisk := sparse(t, filepath.Join(dir, "wrong-keys.img"), 16<<20)
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "KEYS", "-d", keys, keysDisk)
	target := sparse(t, filepath.Join(dir, "untouched.img"), 64<<20)
	vm := boot(t, "lifeboat.action=restore lifeboat.image=LABEL=IMAGES:/pc1.lbi lifeboat.password-file=LABEL=KEYS:/pc1.pw lifeboat.target=first-empty-disk lifeboat.done=poweroff",
		[]qemu.Disk{{Path: keysDisk, Bus: qemu.Virtio, Serial: "KEYS"}, {Path: target, Bus: qemu.Virtio, Serial: "TARGET"}, {Path: store, Bus: qemu.Virtio, Serial: "IMAGES"}}, qemu.NetNone)
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+) exit=(\d+).*reason="(.*)"`, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "failed" || m[2] != "4" || !strings.Contains(m[3], "wrong password") || !strings.Contains(m[3], "password file") {
		t.Fatalf("a wrong password: %q", m[0])
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
	if strings.Contains(vm.Console(), "not the password") {
		t.Fatal("the password file's content was printed on the console")
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("a restore with the wrong password wrote to the target")
	}
}

// 3. A target too small: the reason is printed, nothing is written, and the
// VM powers off.
func TestUnattendedRefusesSmallTarget(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	sourceFS(t, src, 48<<20)
	img := filepath.Join(dir, "pc1.lbi")
	sh(t, lifeboatBin(t), "backup", "part", src, "-o", img)
	store := imagesDisk(t, filepath.Join(dir, "images.img"), 64<<20, map[string]string{"pc1.lbi": img})
	small := sparse(t, filepath.Join(dir, "small.img"), 16<<20)

	vm := boot(t, "lifeboat.action=restore lifeboat.image=LABEL=IMAGES:/pc1.lbi lifeboat.target=serial=SMALL lifeboat.done=poweroff",
		[]qemu.Disk{{Path: store, Bus: qemu.Virtio, Serial: "IMAGES"}, {Path: small, Bus: qemu.Virtio, Serial: "SMALL"}}, qemu.NetNone)
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+) exit=(\d+).*reason="(.*)"`, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "failed" || m[2] != "5" || !regexp.MustCompile(`smaller than`).MatchString(m[3]) {
		t.Fatalf("result %q", m[0])
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
	b, _ := os.ReadFile(small)
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("the small target was written to")
	}
}

// Unattended restore from S3: the image is an object on a real S3 server
// (versitygw on the host, reached from the VM's user network at
// 10.0.2.2), its keys an AWS credentials file on a disk labelled KEYS; the
// restore is checked on the host, and the keys never appear on the console.
func TestUnattendedRestoreFromS3(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "s3")
	os.MkdirAll(filepath.Join(root, "backups"), 0o755)
	s := fstest.StartS3(t, root)
	src := filepath.Join(dir, "source.img")
	sums := sourceFS(t, src, 48<<20)
	backup := exec.Command(lifeboatBin(t), "backup", "part", src, "-o", "s3://backups/pc1/full.lbi", "-q")
	backup.Env = append([]string{"PATH=" + os.Getenv("PATH")}, s.Env()...)
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("backup to S3: %v\n%s", err, out)
	}
	_, port, _ := strings.Cut(s.Addr, ":")
	restoreWithKeys(t, dir, "credentials", "s3.cred", fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s.Access, s.Key),
		"lifeboat.image=s3://backups/pc1/full.lbi lifeboat.s3-endpoint=http://10.0.2.2:"+port, s.Key, sums)
}

// Unattended restore from an SMB share: Debian's Samba in a network
// namespace of its own, like a NAS (a user with a password; the VM's user
// networking reaches it at its address through the host's route), the
// credentials file (username=, password=) on a disk labelled KEYS; the
// password never appears on the console.
func TestUnattendedRestoreFromSMB(t *testing.T) {
	dir := t.TempDir()
	s := fstest.StartSMB(t, filepath.Join(dir, "smb"))
	src := filepath.Join(dir, "source.img")
	sums := sourceFS(t, src, 48<<20)
	backup := exec.Command(lifeboatBin(t), "backup", "part", src, "-o", "smb://"+s.Addr+"/backups/pc1.lbi", "-q", "--credentials-file", s.CredentialsFile(s.Password))
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("backup to SMB: %v\n%s", err, out)
	}
	restoreWithKeys(t, dir, "credentials", "nas.cred", "username="+s.User+"\npassword="+s.Password+"\n",
		"lifeboat.image=smb://"+s.Addr+"/backups/pc1.lbi", s.Password, sums)
}

// restoreWithKeys boots the rescue environment with args (the image and
// where it is), more disks, and a disk labelled KEYS holding the file name
// (its keys, passed as lifeboat.keyOpt),
// restores unattended onto an empty disk and checks the result:
// status ok, the VM powered off, secret never on the console, every file
// restored.
func restoreWithKeys(t *testing.T, dir, keyOpt, name, keysText, args, secret string, sums map[string][32]byte, more ...qemu.Disk) {
	t.Helper()
	tree := filepath.Join(dir, "keys")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, name), []byte(keysText), 0o600)
	keys := sparse(t, filepath.Join(dir, "keys.img"), 16<<20)
	sh(t, "mkfs.ext4", "-q", "-F", "-L", "KEYS", "-d", tree, keys)
	target := sparse(t, filepath.Join(dir, "target.img"), 64<<20)

	disks := append([]qemu.Disk{{Path: keys, Bus: qemu.Virtio, Serial: "KEYS"}, {Path: target, Bus: qemu.Virtio, Serial: "TARGET"}}, more...)
	vm := boot(t, "lifeboat.action=restore "+args+" lifeboat."+keyOpt+"=LABEL=KEYS:/"+name+" lifeboat.target=first-empty-disk lifeboat.done=poweroff",
		disks, qemu.NetUser)
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+) exit=(\d+)`, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "ok" {
		t.Fatalf("result %s exit %s", m[1], m[2])
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
	if strings.Contains(vm.Console(), secret) {
		t.Fatal("the secret (key or password) was printed on the console")
	}
	checkRestored(t, target, sums)
}

// checkRestored checks the target's filesystem (e2fsck) and every file's
// checksum.
func checkRestored(t *testing.T, target string, sums map[string][32]byte) {
	t.Helper()
	sh(t, "e2fsck", "-fn", target)
	for name, sum := range sums {
		out, err := exec.Command("debugfs", "-R", "cat /"+name, target).Output()
		if err != nil || sha256.Sum256(out) != sum {
			t.Errorf("%s: checksum differs after restore (%v)", name, err)
		}
	}
}
