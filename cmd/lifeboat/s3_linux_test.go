//go:build linux

package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestS3Images: images written to and read from a real S3 server: a disk
// backed up to an object, checked, described, explored and restored
// byte-identical to a local restore; an encrypted chain whose earlier point
// is found in the same prefix; the refusals before anything is written; the
// server killed in the middle of an upload (no object under the name; the
// rerun removes the unfinished upload) and of a restore (a clear error;
// the rerun succeeds).
func TestS3Images(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "s3root")
	os.MkdirAll(filepath.Join(root, "backups"), 0o755)
	s := fstest.StartS3(t, root)
	env := s.Env()
	src := buildDisk(t, dir, "gpt")

	obj := "s3://backups/pc1/full.lbi"
	mustLB(t, env, "backup", "disk", src.path, "-o", obj, "-q")
	if _, err := os.Stat(filepath.Join(root, "backups", "pc1", "full.lbi")); err != nil {
		t.Fatalf("the object is not in the server's store: %v", err)
	}
	mustLB(t, env, "check", obj)
	if r := mustLB(t, env, "info", obj); !strings.Contains(r.stdout, "UUID:") || !strings.Contains(r.stdout, obj) {
		t.Errorf("info:\n%s", r.stdout)
	}
	local := filepath.Join(dir, "local.lbi")
	mustLB(t, nil, "backup", "disk", src.path, "-o", local, "-q")
	fromS3, fromLocal := filepath.Join(dir, "from-s3.img"), filepath.Join(dir, "from-local.img")
	mustLB(t, env, "restore", obj, "--target", fromS3, "-y", "-q")
	mustLB(t, nil, "restore", local, "--target", fromLocal, "-y", "-q")
	sameFiles(t, fromS3, fromLocal)
	if r := mustLB(t, env, "ls", obj, "-p", "2", "--no-mount"); r.stdout == "" {
		t.Errorf("ls on the object printed nothing")
	}

	// An encrypted chain in one prefix: the incremental finds its full
	// backup there (by name and UUID) and opens both with the password.
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3 chain password\n"), 0o600)
	mustLB(t, env, "backup", "disk", src.path, "-o", "s3://backups/pc2/full.lbi", "--encrypt", "--password-file", pw, "-q")
	mustLB(t, env, "backup", "disk", src.path, "--incremental", "s3://backups/pc2/full.lbi", "-o", "s3://backups/pc2/inc1.lbi", "--password-file", pw, "-q")
	mustLB(t, env, "check", "s3://backups/pc2/inc1.lbi", "--password-file", pw)
	incS3, now := filepath.Join(dir, "inc-s3.img"), filepath.Join(dir, "now.img")
	mustLB(t, env, "restore", "s3://backups/pc2/inc1.lbi", "--target", incS3, "-y", "-q", "--password-file", pw)
	mustLB(t, nil, "backup", "disk", src.path, "-o", filepath.Join(dir, "now.lbi"), "-q")
	mustLB(t, nil, "restore", filepath.Join(dir, "now.lbi"), "--target", now, "-y", "-q")
	sameFiles(t, incS3, now)

	// A merge from the bucket into the bucket: a new full image, encrypted
	// with the chain's password, that restores to the point's moment.
	mustLB(t, env, "merge", "s3://backups/pc2/inc1.lbi", "-o", "s3://backups/merged/pc2.lbi", "--password-file", pw, "-q")
	merged := filepath.Join(dir, "merged.img")
	mustLB(t, env, "restore", "s3://backups/merged/pc2.lbi", "--target", merged, "-y", "-q", "--password-file", pw)
	sameFiles(t, merged, now)
	if r := mustLB(t, env, "info", "s3://backups/merged/pc2.lbi"); !strings.Contains(r.stdout, "full") || !strings.Contains(r.stdout, "ncrypt") {
		t.Errorf("info of the merged image:\n%s", r.stdout)
	}

	// The chains in a prefix.
	r := mustLB(t, env, "images", "s3://backups/pc2/", "--password-file", pw)
	if !strings.Contains(r.stdout, "full.lbi  full") || !strings.Contains(r.stdout, "  └ inc1.lbi  incremental") || !strings.Contains(r.stdout, "2 images in 1 chains") {
		t.Errorf("images:\n%s", r.stdout)
	}
	if r := mustLB(t, env, "images", "s3://backups/pc2/", "--json"); !strings.Contains(r.stdout, `"encrypted": true`) || !strings.Contains(r.stdout, `"parent": "`) {
		t.Errorf("images without the password:\n%s", r.stdout)
	}

	// A task whose destination is a prefix: its images go there, and its
	// retention deletes there.
	tenv := append(append([]string{}, env...), "LIFEBOAT_CONFIG="+filepath.Join(dir, "tasks.yaml"), "LIFEBOAT_STATE="+filepath.Join(dir, "state"))
	mustLB(t, tenv, "task", "add", "s3task", "--source", "disk:"+src.path, "--dest", "s3://backups/tasks/", "--scheme", "incremental full-every=2 keep-groups=1")
	for range 3 {
		mustLB(t, tenv, "task", "run", "s3task", "-q")
	}
	r = mustLB(t, tenv, "images", "s3://backups/tasks/")
	if !strings.Contains(r.stdout, "1 images in 1 chains") {
		t.Errorf("after retention on S3:\n%s", r.stdout)
	}
	if r := mustLB(t, tenv, "log", "s3task", "--json"); !strings.Contains(r.stdout, `"deleted": [`) || !strings.Contains(r.stdout, "s3://backups/tasks/s3task-") {
		t.Errorf("log:\n%s", r.stdout)
	}

	// Refused before anything is written, each naming the object.
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{env, []string{"backup", "disk", src.path, "-o", obj}, 5, "refusing " + obj + ": an object of that name exists"},
		{env, []string{"backup", "disk", src.path, "-o", "s3://nobucket/x.lbi"}, 6, "bucket nobucket does not exist"},
		{env, []string{"backup", "disk", src.path, "-o", "s3://backups/pc1/"}, 5, "it names no object"},
		{env, []string{"backup", "disk", src.path, "-o", "s3://backups/x.lbi", "--split", "100M"}, 5, "drop --split"},
		{append(env[1:], "AWS_ACCESS_KEY_ID=WRONG"), []string{"backup", "disk", src.path, "-o", "s3://backups/y.lbi"}, 6, "check the keys"},
		{env, []string{"info", "s3://backups/none.lbi"}, 6, "no such object"},
		{env, []string{"merge", "s3://backups/pc2/inc1.lbi", "-o", "s3://backups/merged/pc2.lbi", "--password-file", pw}, 5, "an object of that name exists"},
		{env, []string{"merge", "s3://backups/pc2/inc1.lbi", "-o", "s3://backups/pc2/inc1.lbi", "--password-file", pw, "--overwrite"}, 5, "one of the images being merged"},
		{env, []string{"backup", "disk", src.path, "-o", "http://127.0.0.1:1/x.lbi"}, 5, "cannot be written over http"},
		{env, []string{"restore", obj, "--target", "s3://backups/disk.img", "-y"}, 5, "only backup and merge write images to s3://"},
		{env, []string{"export", obj, "-o", "s3://backups/disk.qcow2"}, 5, "only backup and merge write images to s3://"},
	} {
		if r := lb(t, tc.env, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lifeboat %v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}

	// A server whose storage is full: the backup fails naming the object,
	// and nothing is stored under its name.
	fullRoot := filepath.Join(dir, "fullroot")
	os.MkdirAll(fullRoot, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "lifeboat-test-s3full", fullRoot).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", fullRoot).Run()
	os.MkdirAll(filepath.Join(fullRoot, "backups"), 0o755)
	full := fstest.StartS3(t, fullRoot)
	if r := lb(t, full.Env(), "backup", "disk", src.path, "-o", "s3://backups/pc1.lbi", "--compression", "none", "-q"); r.code == 0 || !strings.Contains(r.stderr, "s3://backups/pc1.lbi") {
		t.Errorf("backup to a full server: exit %d %s", r.code, r.stderr)
	}
	if r := lb(t, full.Env(), "info", "s3://backups/pc1.lbi"); r.code != 6 {
		t.Errorf("after a failed upload the object exists (exit %d)", r.code)
	}
	full.Kill()

	// The server killed in the middle of an upload.
	big := filepath.Join(dir, "big.img")
	os.WriteFile(big, nil, 0o600)
	os.Truncate(big, 400<<20)
	b := make([]byte, 320<<20)
	rand.Read(b)
	f, _ := os.OpenFile(big, os.O_WRONLY, 0)
	f.WriteAt(b, 40<<20)
	f.Close()
	bigObj := "s3://backups/big/big.lbi"
	cmd := exec.Command(lifeboat, "backup", "disk", big, "-o", bigObj, "-q")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUpload(t, root)
	s.Kill()
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the backup succeeded with its server killed")
	}
	t.Logf("backup with the server killed: %v: %s", err, stderr.String())
	if !strings.Contains(stderr.String(), bigObj) {
		t.Errorf("the failure does not name the object: %s", stderr.String())
	}
	s.Start()
	if r := lb(t, env, "info", bigObj); r.code != 6 {
		t.Fatalf("after a killed upload the object exists (exit %d)", r.code)
	}
	r = mustLB(t, env, "backup", "disk", big, "-o", bigObj, "-q")
	if !strings.Contains(r.stderr, "removed an unfinished upload of "+bigObj) {
		t.Errorf("the rerun did not clean the unfinished upload:\n%s", r.stderr)
	}

	// The backup itself killed (kill -9) in the middle of its upload:
	// nothing under the name; the next backup aborts the unfinished
	// upload.
	cmd = exec.Command(lifeboat, "backup", "disk", big, "-o", "s3://backups/big/killed.lbi", "-q")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUpload(t, root)
	cmd.Process.Kill()
	cmd.Wait()
	if r := lb(t, env, "info", "s3://backups/big/killed.lbi"); r.code != 6 {
		t.Fatalf("after kill -9 the object exists (exit %d)", r.code)
	}
	r = mustLB(t, env, "backup", "disk", big, "-o", "s3://backups/big/killed.lbi", "-q")
	if !strings.Contains(r.stderr, "removed an unfinished upload of s3://backups/big/killed.lbi") {
		t.Errorf("the rerun after kill -9 did not abort the unfinished upload:\n%s", r.stderr)
	}

	// The server killed in the middle of a restore.
	restoreWithServerKilled(t, env, bigObj, big, filepath.Join(dir, "big-restored.img"), s.Kill, func() { s.Start() })
}

// restoreWithServerKilled starts a restore of image, kills its server
// 0.7 s in (the restore must fail naming the image), starts the server
// again, and checks that a rerun restores the bytes of original. extra are
// more arguments (credentials).
func restoreWithServerKilled(t *testing.T, env []string, image, original, target string, kill, start func(), extra ...string) {
	t.Helper()
	args := append([]string{"restore", image, "--target", target, "-y", "-q"}, extra...)
	cmd := exec.Command(lifeboat, args...)
	if env != nil {
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	kill()
	if err := cmd.Wait(); err == nil {
		t.Log("the restore finished before the server was killed (a fast machine); the rerun below still runs")
	} else if !strings.Contains(stderr.String(), image) {
		t.Errorf("the failed restore does not name the image: %s", stderr.String())
	}
	start()
	mustLB(t, env, args...)
	sameFiles(t, original, target)
}

// waitForUpload waits until the server holds part of an upload.
func waitForUpload(t *testing.T, root string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var found bool
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, "multipart") {
				found = true
			}
			return nil
		})
		if found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no multipart upload appeared on the server")
}
