//go:build linux

package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCache keeps the ~70 MB .deb between test runs.
const testCache = "/var/cache/lifeboat-test-kernel"

// logWriter sends slog output to t.Logf.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fetchDebian fetches the real kernel, or skips when apt cannot.
func fetchDebian(t *testing.T) *Kernel {
	t.Helper()
	if testing.Short() {
		t.Skip("downloads Debian's kernel package (~70 MB) the first time")
	}
	if err := os.MkdirAll(testCache, 0o755); err != nil {
		t.Skipf("no cache for the kernel package: %v", err)
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	start := time.Now()
	k, err := Fetch(t.Context(), testCache, log)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && (ce.Argv[0] == "apt-get" || ce.Argv[0] == "apt-cache") {
			t.Skipf("apt cannot fetch Debian's kernel: %v", err)
		}
		if errors.Is(err, exec.ErrNotFound) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Logf("Fetch took %v: %+v", time.Since(start).Round(time.Millisecond), *k)
	return k
}

func TestFetchDebian(t *testing.T) {
	k := fetchDebian(t)

	// The image is a bzImage: "HdrS" at 0x202.
	f, err := os.Open(k.Image)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 4)
	_, err = f.ReadAt(magic, 0x202)
	f.Close()
	if err != nil || string(magic) != "HdrS" {
		t.Fatalf("%s: magic %q at 0x202, %v; want HdrS", k.Image, magic, err)
	}
	if !strings.HasPrefix(k.Version, "6.") || filepath.Base(k.ModuleDir) != k.Version {
		t.Errorf("Kernel %+v", *k)
	}

	// A second Fetch reuses the cache.
	start := time.Now()
	k2, err := Fetch(t.Context(), testCache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *k2 != *k {
		t.Errorf("second Fetch = %+v, want %+v", *k2, *k)
	}
	t.Logf("second Fetch took %v", time.Since(start).Round(time.Millisecond))

	mods, err := k.Resolve(DefaultModules)
	if err != nil {
		t.Fatal(err)
	}
	ns := names(mods)
	t.Logf("%d modules for DefaultModules: %s", len(mods), strings.Join(ns, " "))
	pos := func(n string) int { return slices.Index(ns, n) }
	if pos("virtio_blk") < 0 {
		t.Error("virtio_blk missing")
	}
	if builtin, _ := k.isBuiltin("virtio_ring"); !builtin && !(0 <= pos("virtio_ring") && pos("virtio_ring") < pos("virtio_blk")) {
		t.Error("virtio_ring missing or after virtio_blk")
	}
	if !(0 <= pos("crc32c_generic") && pos("crc32c_generic") < pos("ext4")) {
		t.Error("crc32c_generic missing or after ext4")
	}
	for _, n := range DefaultModules {
		builtin, err := k.isBuiltin(n)
		if err != nil {
			t.Fatal(err)
		}
		if !builtin && pos(NormalizeName(n)) < 0 {
			t.Errorf("%s missing", n)
		}
	}

	dir := t.TempDir()
	if err := k.Stage(dir, mods); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "lib", "modules", k.Version)
	dep, err := os.ReadFile(filepath.Join(md, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(dep), "\n"), "\n") {
		if line != strings.TrimRight(line, " \t") {
			t.Errorf("modules.dep line %d has trailing space: %q", i+1, line)
		}
	}
	if n := strings.Count(string(dep), "\n"); n != len(mods) {
		t.Errorf("modules.dep has %d lines for %d modules", n, len(mods))
	}

	// kmodule, as the rescue init runs it, finds everything.
	loaded := probeStaged(t, dir, k.Version, DefaultModules)
	for _, p := range loaded {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}

	// Size, and what the initramfs compression makes of it.
	var total, modsize int64
	var all bytes.Buffer
	err = filepath.WalkDir(md, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(b))
		if moduleName(p) != "" {
			modsize += int64(len(b))
		}
		all.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var gz countWriter
	zw := gzip.NewWriter(&gz)
	io.Copy(zw, &all)
	zw.Close()
	t.Logf("staged %d modules: %.1f MB (modules %.1f MB), about %.1f MB gzipped",
		len(mods), float64(total)/1e6, float64(modsize)/1e6, float64(gz)/1e6)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// isBuiltin reports whether a module name is built into k.
func (k *Kernel) isBuiltin(name string) (bool, error) {
	ix, err := k.load()
	if err != nil {
		return false, err
	}
	return ix.builtin[NormalizeName(name)], nil
}
