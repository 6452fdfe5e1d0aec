package fstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SMB is a running Samba server (Debian's smbd) with one share, backups,
// writable by one user with a password, on a free loopback port; its
// configuration, password database and state all in the test's folder.
type SMB struct {
	t        testing.TB
	dir      string
	Addr     string // 127.0.0.1:PORT
	Share    string // the share's folder on this machine
	User     string
	Password string
	cmd      *exec.Cmd
}

// StartSMB starts smbd over a folder of dir, stopped when the test ends.
func StartSMB(t testing.TB, dir string) *SMB {
	t.Helper()
	for _, tool := range []string{"smbd", "pdbedit"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run make deps (Debian's samba)", tool)
		}
	}
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	s := &SMB{t: t, dir: dir, Addr: addr, Share: filepath.Join(dir, "share"), User: "root", Password: "nas pass 1"}
	for _, d := range []string{"share", "private", "state", "cache", "lock", "run", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := fmt.Sprintf(`[global]
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
`, dir, port)
	if err := os.WriteFile(s.conf(), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	add := exec.Command("pdbedit", "-s", s.conf(), "-a", "-u", s.User, "-t")
	add.Stdin = strings.NewReader(s.Password + "\n" + s.Password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("pdbedit: %v\n%s", err, out)
	}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func (s *SMB) conf() string { return filepath.Join(s.dir, "smb.conf") }

// Start (re)starts smbd.
func (s *SMB) Start() {
	s.cmd = startServer(s.t, s.Addr, filepath.Join(s.dir, "log", "smbd.out"), "smbd", "--foreground", "--no-process-group", "-s", s.conf(), "-d", "1")
}

// Kill ends smbd and its children at once (SIGKILL), as a crash would.
func (s *SMB) Kill() { killServer(&s.cmd) }

// CredentialsFile writes a credentials file (username=, password=) with
// password and returns its path.
func (s *SMB) CredentialsFile(password string) string {
	p := filepath.Join(s.dir, fmt.Sprintf("cred-%d", time.Now().UnixNano()))
	os.WriteFile(p, []byte("username="+s.User+"\npassword="+password+"\n"), 0o600)
	return p
}
