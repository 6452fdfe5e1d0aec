//go:build linux

package qemutests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/storeserver"
	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// A restore room run from an object store, keys passed by the PXE rule:
// a real S3 server (versitygw) on the lab's segment holds the image, the
// rule names the keys file on the PXE server (credentials:), and the
// network-booted client restores from the bucket directly. The keys reach
// the client once, through a URL that only its own boot works with; they
// are never on the console or in the server's log, and a second fetch
// from another machine is refused.
func TestPXERestoreFromS3WithRuleCredentials(t *testing.T) {
	gw, err := storeserver.VersityGW()
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, 1)
	dir := t.TempDir()
	root := filepath.Join(dir, "s3")
	os.MkdirAll(filepath.Join(root, "backups"), 0o755)
	const access, secret, s3addr = "ROOMKEY", "room-secret-do-not-print", labAddr + ":7070"
	gwlog := &syncBuffer{}
	l.start(t, gwlog, gw, "--access", access, "--secret", secret, "--port", s3addr, "--quiet", "posix", root)

	src := filepath.Join(dir, "source.img")
	sums := sourceFS(t, src, 48<<20)
	// The backup runs inside the lab too: the bucket is on its segment.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_ENDPOINT_URL=http://" + s3addr, "AWS_REGION=us-east-1"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := exec.Command("ip", "netns", "exec", l.ns, lifeboatBin(t), "backup", "part", src, "-o", "s3://backups/room/pc1.lbi", "-q")
		c.Env = env
		out, err := c.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // the server may still be starting
			t.Fatalf("backup to the lab's S3 server: %v\n%s\n%s", err, out, gwlog.String())
		}
		time.Sleep(500 * time.Millisecond)
	}

	cred := filepath.Join(dir, "room.cred")
	os.WriteFile(cred, []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", access, secret)), 0o600)
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(`clients:
  - mac: "`+clientMAC(0)+`"
    args: "lifeboat.action=restore lifeboat.image=s3://backups/room/pc1.lbi lifeboat.s3-endpoint=http://`+s3addr+` lifeboat.target=first-empty-disk lifeboat.done=poweroff"
    credentials: `+cred+`
`), 0o644)
	log := l.serve(t, "--rules", rules)

	target := sparse(t, filepath.Join(dir, "target.img"), 64<<20)
	vm := l.bootWith(t, 0, qemu.Options{Firmware: qemu.BIOS, MemoryMB: 512, Disks: []qemu.Disk{{Path: target, Bus: qemu.Virtio, Serial: "TARGET"}}})
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, 6*time.Minute)
	if err != nil || m[1] != "ok" {
		t.Fatalf("result %v: %v", m, err)
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the client did not power off: %v", err)
	}
	checkRestored(t, target, sums)
	for what, text := range map[string]string{"console": vm.Console(), "server log": log.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret key is in the %s", what)
		}
	}
	if !strings.Contains(log.String(), "credentials sent") {
		t.Errorf("the server did not log that it sent the credentials:\n%s", log.String())
	}
	// Another machine on the segment (the lab's own address) gets
	// nothing, token or not (pxe's TestCredentialsOncePerBoot covers the
	// rest: a second fetch, an old boot's token, another MAC).
	for _, q := range []string{"", "?token=", "?token=00000000000000000000000000000000"} {
		if out, err := l.get("http://" + labAddr + "/api/credentials/" + clientMAC(0) + q); err == nil || strings.Contains(string(out), secret) {
			t.Errorf("a fetch of the credentials from another machine (%q): %v %q, want refused", q, err, out)
		}
	}
}
