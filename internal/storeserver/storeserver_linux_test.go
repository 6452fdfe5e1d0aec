package storeserver

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartSMB puts smbd in a network namespace of its own, reachable from
// this machine's; Kill and Start restart it at the same address; Stop
// leaves no namespace, link or process behind.
func TestSMBNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	s, err := StartSMB(filepath.Join(t.TempDir(), "smb"))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})
	ns, veth := s.ns.name, s.ns.veth
	host, _, _ := net.SplitHostPort(s.Addr)
	if !nsNet.Contains(s.ns.peer) || host != s.ns.peer.String() {
		t.Errorf("address %s, want the namespace's end in %s", s.Addr, nsNet)
	}
	dial := func() error {
		c, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	// An open connection: smbd serves it from a child process, which
	// Kill must end too, and reap (no zombie left for init).
	c, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond)
	pgid := s.cmd.Process.Pid
	s.Kill()
	if err := syscall.Kill(-pgid, 0); err != syscall.ESRCH {
		t.Errorf("smbd's process group is still there after Kill: %v", err)
	}
	if err := dial(); err == nil {
		t.Error("smbd still answers after Kill")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	pgid = s.cmd.Process.Pid
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := syscall.Kill(-pgid, 0); err != syscall.ESRCH {
		t.Errorf("smbd's process group is still there after Stop: %v", err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
		t.Errorf("namespace %s left:\n%s", ns, out)
	}
	if _, err := net.InterfaceByName(veth); err == nil {
		t.Errorf("link %s left", veth)
	}
}
