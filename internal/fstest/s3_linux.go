package fstest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// VersityGWModule is the real S3 server the tests run: Versity's gateway
// with its posix backend (buckets are folders), built from the Go module
// proxy once per machine and kept in the user's cache folder.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3 is a running versitygw.
type S3 struct {
	t           testing.TB
	bin, root   string
	Addr        string // 127.0.0.1:PORT
	cmd         *exec.Cmd
	Access, Key string
}

func versitygw(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "lifeboat-test", "versitygw-v1.8.0")
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	start := time.Now()
	cmd := exec.Command("go", "install", VersityGWModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", VersityGWModule, err, out)
	}
	t.Logf("built versitygw in %.0f s", time.Since(start).Seconds())
	return bin
}

// StartS3 runs a server on a free loopback port over root (one folder per
// bucket), stopped when the test ends.
func StartS3(t testing.TB, root string) *S3 {
	s := &S3{t: t, bin: versitygw(t), root: root, Addr: freeAddr(t), Access: "LIFEBOATTEST", Key: "lifeboat-test-secret-key"}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start (re)starts the server on its address.
func (s *S3) Start() {
	s.cmd = startServer(s.t, s.Addr, filepath.Join(filepath.Dir(s.root), "versitygw.log"),
		s.bin, "--access", s.Access, "--secret", s.Key, "--port", s.Addr, "--quiet", "posix", s.root)
}

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *S3) Kill() { killServer(&s.cmd) }

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts a server program in a process group of its own, its
// output appended to logFile, and waits until it listens on addr.
func startServer(t testing.TB, addr, logFile string, argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
		if i > 400 {
			t.Fatalf("%s did not listen on %s", filepath.Base(argv[0]), addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killServer ends a server and its children at once (SIGKILL).
func killServer(cmd **exec.Cmd) {
	if c := *cmd; c != nil && c.Process != nil {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
		*cmd = nil
	}
}

// Env is the environment a client needs: keys, endpoint, region, and a
// HOME of the test's own (no ~/.aws of the machine's).
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.Access, "AWS_SECRET_ACCESS_KEY=" + s.Key, "AWS_ENDPOINT_URL=http://" + s.Addr, "AWS_REGION=us-east-1", "HOME=" + filepath.Dir(s.root)}
}
