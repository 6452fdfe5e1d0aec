package pxe

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// testBundle writes a small fake rescue bundle and fake iPXE loaders.
func testBundle(t testing.TB) (bundleDir, ipxeDir string, files map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	bundleDir, ipxeDir = filepath.Join(dir, "rescue"), filepath.Join(dir, "ipxe")
	os.Mkdir(bundleDir, 0o755)
	os.Mkdir(ipxeDir, 0o755)
	files = map[string][]byte{}
	info := bundle.Info{Version: "test", Cmdline: "console=ttyS0,115200 quiet", Files: map[string]bundle.File{}}
	for name, size := range map[string]int{"rescue/vmlinuz": 300 << 10, "rescue/initramfs": 1 << 20, "undionly.kpxe": 70 << 10, "snponly.efi": 200<<10 + 3} {
		b := make([]byte, size)
		rand.Read(b)
		files[name] = b
		p := filepath.Join(ipxeDir, name)
		if rest, ok := cutPrefix(name, "rescue/"); ok {
			p = filepath.Join(bundleDir, rest)
			info.Files[rest] = bundle.File{Size: int64(size)}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j, _ := json.Marshal(info)
	os.WriteFile(filepath.Join(bundleDir, "bundle.json"), j, 0o644)
	// Symlinks that lead out of the served directories.
	os.Symlink("/etc/passwd", filepath.Join(ipxeDir, "evil"))
	os.Symlink("../../../../../../etc/passwd", filepath.Join(bundleDir, "evil"))
	return bundleDir, ipxeDir, files
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", p)
	return len(p), nil
}

// offlineServer is a Server with everything but sockets, for handler tests.
func offlineServer(t testing.TB, c Config) *Server {
	t.Helper()
	if c.Bundle == "" {
		c.Bundle, c.IPXEDir, _ = testBundle(t)
	}
	c.Interface = "test0"
	if c.LeaseFile == "" {
		c.LeaseFile = filepath.Join(t.TempDir(), "leases.json")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	s, err := newServer(c, netip.MustParsePrefix("192.168.77.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}
