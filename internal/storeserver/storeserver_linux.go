// Package storeserver runs real image-store servers on loopback for the
// tests and the bench: Versity's S3 gateway (versitygw, posix backend,
// built from the Go module proxy once per machine) and Debian's Samba
// (smbd with a configuration, password database and state of its own).
package storeserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// VersityGWModule is the S3 server built for the tests and the bench.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a server program in a process group of its own.
type Server struct {
	Addr    string // 127.0.0.1:PORT
	argv    []string
	logFile string
	cmd     *exec.Cmd
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start (re)starts the server and waits until it listens.
func (s *Server) Start() error {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.OpenFile(s.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	for range 400 {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("%s did not listen on %s (its log: %s)", filepath.Base(s.argv[0]), s.Addr, s.logFile)
}

// Kill ends the server and its children at once (SIGKILL), as a crash
// would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// S3 is a running versitygw.
type S3 struct {
	Server
	Access, Key string
	root        string
}

// VersityGW returns the versitygw program, building it into the user's
// cache folder the first time.
func VersityGW() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "lifeboat-test", "versitygw-v1.8.0")
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "install", VersityGWModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", VersityGWModule, err, out)
	}
	return bin, nil
}

// StartS3 runs versitygw over root (one folder per bucket).
func StartS3(root string) (*S3, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	bin, err := VersityGW()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &S3{Access: "LIFEBOATTEST", Key: "lifeboat-test-secret-key", root: root}
	s.Server = Server{Addr: addr, logFile: filepath.Join(filepath.Dir(root), "versitygw.log"),
		argv: []string{bin, "--access", s.Access, "--secret", s.Key, "--port", addr, "--quiet", "posix", root}}
	return s, s.Start()
}

// Env is the environment a client needs: keys, endpoint, region, and a
// HOME of its own (no ~/.aws of the machine's).
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.Access, "AWS_SECRET_ACCESS_KEY=" + s.Key, "AWS_ENDPOINT_URL=http://" + s.Addr, "AWS_REGION=us-east-1", "HOME=" + filepath.Dir(s.root)}
}

// SMB is a running smbd with one share, backups, writable by User.
type SMB struct {
	Server
	Share    string // the share's folder on this machine
	User     string
	Password string
	dir      string
}

// StartSMB starts smbd with its configuration and state in dir.
func StartSMB(dir string) (*SMB, error) {
	dir, err := filepath.Abs(dir) // smbd reads paths in its configuration as absolute
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"smbd", "pdbedit"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is missing: run make deps (Debian's samba)", tool)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	s := &SMB{Share: filepath.Join(dir, "share"), User: "root", Password: "nas pass 1", dir: dir}
	for _, d := range []string{"share", "private", "state", "cache", "lock", "run", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, smbConf, dir, port), 0o600); err != nil {
		return nil, err
	}
	add := exec.Command("pdbedit", "-s", conf, "-a", "-u", s.User, "-t")
	add.Stdin = strings.NewReader(s.Password + "\n" + s.Password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pdbedit: %v\n%s", err, out)
	}
	s.Server = Server{Addr: addr, logFile: filepath.Join(dir, "log", "smbd.out"),
		argv: []string{"smbd", "--foreground", "--no-process-group", "-s", conf, "-d", "1"}}
	return s, s.Start()
}

const smbConf = `[global]
  server role = standalone server
  smb ports = %[2]s
  interfaces = 127.0.0.1
  bind interfaces only = yes
  passdb backend = tdbsam:%[1]s/private/passdb.tdb
  private dir = %[1]s/private
  state directory = %[1]s/state
  cache directory = %[1]s/cache
  lock directory = %[1]s/lock
  pid directory = %[1]s/run
  ncalrpc dir = %[1]s/run/ncalrpc
  log file = %[1]s/log/log.%%m
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  map to guest = never
  server min protocol = SMB2
[backups]
  path = %[1]s/share
  read only = no
  valid users = root
  force user = root
`

// CredentialsFile writes a credentials file (username=, password=) with
// password and returns its path.
func (s *SMB) CredentialsFile(password string) string {
	p := filepath.Join(s.dir, fmt.Sprintf("cred-%d", time.Now().UnixNano()))
	os.WriteFile(p, []byte("username="+s.User+"\npassword="+password+"\n"), 0o600)
	return p
}
