//go:build linux

package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestSMBImages: images on a real Samba share, reached without mounting
// it (a pure-Go SMB client): backup, check, info, restore byte-identical
// to a local restore, an encrypted chain in one folder, the folder's
// chains, a task writing there; refusals before writing (wrong password,
// missing share or folder, an existing file); smbd killed mid-upload (no
// image under the name; the rerun cleans the partial file) and mid-restore.
func TestSMBImages(t *testing.T) {
	dir := t.TempDir()
	s := fstest.StartSMB(t, filepath.Join(dir, "smb"))
	cred := s.CredentialsFile(s.Password)
	os.MkdirAll(filepath.Join(s.Share, "pc1"), 0o755)
	base := "smb://" + s.Addr + "/backups"
	src := buildDisk(t, dir, "gpt")
	c := []string{"--credentials-file", cred}

	img := base + "/pc1/full.lbi"
	mustLB(t, nil, append([]string{"backup", "disk", src.path, "-o", img, "-q"}, c...)...)
	if _, err := os.Stat(filepath.Join(s.Share, "pc1", "full.lbi")); err != nil {
		t.Fatalf("the image is not on the share: %v", err)
	}
	mustLB(t, nil, append([]string{"check", img}, c...)...)
	fromSMB, fromLocal := filepath.Join(dir, "from-smb.img"), filepath.Join(dir, "from-local.img")
	mustLB(t, nil, append([]string{"restore", img, "--target", fromSMB, "-y", "-q"}, c...)...)
	local := filepath.Join(dir, "local.lbi")
	mustLB(t, nil, "backup", "disk", src.path, "-o", local, "-q")
	mustLB(t, nil, "restore", local, "--target", fromLocal, "-y", "-q")
	sameFiles(t, fromSMB, fromLocal)

	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("smb chain password\n"), 0o600)
	mustLB(t, nil, append([]string{"backup", "disk", src.path, "-o", base + "/pc1/enc-full.lbi", "--encrypt", "--password-file", pw, "-q"}, c...)...)
	mustLB(t, nil, append([]string{"backup", "disk", src.path, "--incremental", base + "/pc1/enc-full.lbi", "-o", base + "/pc1/enc-inc.lbi", "--password-file", pw, "-q"}, c...)...)
	incImg := filepath.Join(dir, "inc.img")
	mustLB(t, nil, append([]string{"restore", base + "/pc1/enc-inc.lbi", "--target", incImg, "-y", "-q", "--password-file", pw}, c...)...)
	sameFiles(t, incImg, fromLocal)
	if r := mustLB(t, nil, append([]string{"images", base + "/pc1/", "--password-file", pw}, c...)...); !strings.Contains(r.stdout, "  └ enc-inc.lbi  incremental") || !strings.Contains(r.stdout, "3 images in 2 chains") {
		t.Errorf("images:\n%s", r.stdout)
	}

	// A task writing to the share.
	tenv := []string{"LIFEBOAT_CONFIG=" + filepath.Join(dir, "tasks.yaml"), "LIFEBOAT_STATE=" + filepath.Join(dir, "state"), "LIFEBOAT_SMB_CREDENTIALS=" + cred}
	os.MkdirAll(filepath.Join(s.Share, "tasks"), 0o755)
	mustLB(t, tenv, "task", "add", "nas", "--source", "disk:"+src.path, "--dest", base+"/tasks", "--scheme", "full keep=1")
	mustLB(t, tenv, "task", "run", "nas", "-q")
	mustLB(t, tenv, "task", "run", "nas", "-q")
	if ents, _ := os.ReadDir(filepath.Join(s.Share, "tasks")); len(ents) != 1 {
		t.Errorf("the task's retention on the share left %d files", len(ents))
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup", "disk", src.path, "-o", img, "--credentials-file", s.CredentialsFile("wrong")}, 6, "check the user name and password"},
		{append([]string{"backup", "disk", src.path, "-o", "smb://" + s.Addr + "/noshare/x.lbi"}, c...), 6, "no share noshare"},
		{append([]string{"backup", "disk", src.path, "-o", base + "/nofolder/x.lbi"}, c...), 6, "the folder nofolder does not exist"},
		{append([]string{"backup", "disk", src.path, "-o", img}, c...), 5, "a file of that name exists on the share"},
		{append([]string{"info", base + "/pc1/none.lbi"}, c...), 6, "no such file on the share"},
	} {
		if r := lb(t, nil, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lifeboat %v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}

	// smbd killed in the middle of an upload.
	big := filepath.Join(dir, "big.img")
	os.WriteFile(big, nil, 0o600)
	os.Truncate(big, 400<<20)
	b := make([]byte, 320<<20)
	rand.Read(b)
	f, _ := os.OpenFile(big, os.O_WRONLY, 0)
	f.WriteAt(b, 40<<20)
	f.Close()
	bigImg := base + "/pc1/big.lbi"
	cmd := exec.Command(lifeboat, append([]string{"backup", "disk", big, "-o", bigImg, "-q"}, c...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(s.Share, "pc1", "big.lbi.partial")
	for i := 0; ; i++ {
		if st, err := os.Stat(partial); err == nil && st.Size() > 8<<20 {
			break
		}
		if i > 1200 {
			t.Fatal("the upload never started")
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.Kill()
	if err := cmd.Wait(); err == nil {
		t.Fatal("the backup succeeded with its server killed")
	}
	if !strings.Contains(stderr.String(), bigImg) {
		t.Errorf("the failure does not name the image: %s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(s.Share, "pc1", "big.lbi")); err == nil {
		t.Fatal("a killed upload left an image under the final name")
	}
	s.Start()
	r := mustLB(t, nil, append([]string{"backup", "disk", big, "-o", bigImg, "-q"}, c...)...)
	if !strings.Contains(r.stderr, "removed "+bigImg+".partial") {
		t.Errorf("the rerun did not clean the partial file:\n%s", r.stderr)
	}

	// The backup itself killed (kill -9) while writing: nothing under the
	// name, and the next backup removes the partial file.
	killed := base + "/pc1/killed.lbi"
	cmd = exec.Command(lifeboat, append([]string{"backup", "disk", big, "-o", killed, "-q"}, c...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(s.Share, "pc1", "killed.lbi.partial")
	for i := 0; ; i++ {
		if st, err := os.Stat(kp); err == nil && st.Size() > 8<<20 {
			break
		}
		if i > 1200 {
			t.Fatal("the backup never started writing")
		}
		time.Sleep(25 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(s.Share, "pc1", "killed.lbi")); err == nil {
		t.Fatal("kill -9 left an image under the final name")
	}
	r = mustLB(t, nil, append([]string{"backup", "disk", big, "-o", killed, "-q"}, c...)...)
	if !strings.Contains(r.stderr, "removed "+killed+".partial") {
		t.Errorf("the rerun after kill -9 did not remove the partial file:\n%s", r.stderr)
	}

	// smbd killed in the middle of a restore.
	restoreWithServerKilled(t, nil, bigImg, big, filepath.Join(dir, "big-restored.img"), s.Kill, func() { s.Start() }, c...)
}
