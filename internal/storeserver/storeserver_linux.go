// Package storeserver runs real image-store servers for the tests and the
// bench: Versity's S3 gateway (versitygw, posix backend, built from the Go
// module proxy once per machine) on loopback, and Debian's Samba (smbd
// with a configuration, password database and state of its own) in a
// network namespace of its own, as a NAS on the network would be.
//
//	s, err := storeserver.StartSMB(dir)
//	if err != nil {
//		return err
//	}
//	defer s.Stop()
//	url := "smb://" + s.Addr + "/backups/pc1.lbi" // user s.User, password s.Password
package storeserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// VersityGWModule is the S3 server built for the tests and the bench.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a server program in a process group of its own.
type Server struct {
	Addr    string // HOST:PORT, reachable from this machine's namespace
	argv    []string
	logFile string
	cmd     *exec.Cmd
	// pidns starts the server as the first process of a PID namespace of
	// its own: when it ends, the kernel ends its children and it reaps
	// them. Otherwise smbd's children outlive a killed smbd, for a while,
	// as zombies waiting for init.
	pidns bool
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

// starter runs functions on one OS thread that never exits. Pdeathsig
// (the server killed when this process ends, as a test binary does on
// its timeout, without cleanup) follows the thread that forked, not the
// process, and Go ends a thread when a goroutine locked to it returns.
var starter = sync.OnceValue(func() chan<- func() {
	c := make(chan func())
	go func() {
		runtime.LockOSThread()
		for f := range c {
			f()
		}
	}()
	return c
})

// Start (re)starts the server and waits until it listens.
func (s *Server) Start() error {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.pidns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the server has its own
	cmd.Stdout, cmd.Stderr = logf, logf
	errc := make(chan error, 1)
	starter() <- func() { errc <- cmd.Start() }
	if err := <-errc; err != nil {
		return fmt.Errorf("%s: %w", strings.Join(s.argv, " "), err)
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

// Kill ends the server and its children at once (SIGKILL to its process
// group, by PID), as a crash would. Start starts it again.
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

// SMB is a running smbd with one share, backups, writable by User. It
// listens on port 445 in a network namespace of its own, at Addr: this
// machine reaches it through a veth pair, and so do QEMU guests with user
// networking.
type SMB struct {
	Server
	Share    string // the share's folder on this machine
	User     string
	Password string
	dir      string
	ns       *netns
}

// StartSMB starts smbd with its configuration and state in dir, in a new
// network namespace (needs root and iproute2). Stop ends it and removes
// the namespace.
func StartSMB(dir string) (_ *SMB, err error) {
	dir, err = filepath.Abs(dir) // smbd reads paths in its configuration as absolute
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"smbd", "pdbedit"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is missing: run make deps (Debian's samba)", tool)
		}
	}
	ns, err := newNetns()
	if err != nil {
		return nil, fmt.Errorf("smbd's network namespace: %w", err)
	}
	s := &SMB{Share: filepath.Join(dir, "share"), User: "root", Password: "nas pass 1", dir: dir, ns: ns}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	for _, d := range []string{"share", "private", "state", "cache", "lock", "run", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, smbConf, dir, ns.peer), 0o600); err != nil {
		return nil, err
	}
	add := exec.Command("pdbedit", "-s", conf, "-a", "-u", s.User, "-t")
	add.Stdin = strings.NewReader(s.Password + "\n" + s.Password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pdbedit: %v\n%s", err, out)
	}
	s.Server = Server{Addr: net.JoinHostPort(ns.peer.String(), "445"), logFile: filepath.Join(dir, "log", "smbd.out"),
		argv: ns.exec("smbd", "--foreground", "--no-process-group", "-s", conf, "-d", "1"), pidns: true}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop ends smbd and removes its network namespace; s cannot be started
// again.
func (s *SMB) Stop() error {
	s.Kill()
	if s.ns == nil {
		return nil
	}
	err := s.ns.remove()
	s.ns = nil
	if err != nil {
		return fmt.Errorf("smbd's network namespace: %w", err)
	}
	return nil
}

const smbConf = `[global]
  server role = standalone server
  smb ports = 445
  interfaces = %[2]s
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
