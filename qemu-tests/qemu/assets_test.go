//go:build linux

package qemu

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The test VMs boot Debian's kernel with a tiny initramfs: testdata/init
// as /init and the modules for the disk and NIC drivers. Both are made
// here, from the Debian package and the Go toolchain, so nothing binary
// is checked in.

// kernelCache keeps the extracted Debian kernel package between runs.
const kernelCache = "/var/cache/lifeboat-test-kernel/qemu-harness"

// testModules are the drivers testdata/init loads; their dependencies
// follow from the modules' own .modinfo.
var testModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net", // virtio disks and NICs
	"ahci", "ata_piix", "sd_mod", // SATA, IDE, and the disks on them
	"nvme",
	"xhci_pci", "usb_storage",
}

var (
	assetsOnce           sync.Once
	assetsErr            error
	testKernel, testInit string // the bzImage and the initramfs
	assetsDir            string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if assetsDir != "" {
		os.RemoveAll(assetsDir)
	}
	os.Exit(code)
}

// assets returns the kernel and initramfs, making them on first use. It
// skips the test where QEMU is missing and in -short mode.
func assets(t testing.TB) (kernel, initrd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skipf("%s is missing: apt-get install qemu-system-x86", Binary)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get is missing: the tests boot Debian's kernel package")
	}
	assetsOnce.Do(func() { assetsErr = makeAssets(t) })
	if assetsErr != nil {
		t.Fatal(assetsErr)
	}
	return testKernel, testInit
}

func makeAssets(t testing.TB) error {
	root, version, err := debianKernel(t)
	if err != nil {
		return err
	}
	testKernel = filepath.Join(root, "boot", "vmlinuz-"+version)
	if assetsDir, err = os.MkdirTemp("", "lifeboat-qemu-test-"); err != nil {
		return err
	}
	initBin := filepath.Join(assetsDir, "init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./testdata/init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(build.Args, " "), err, out)
	}
	modules, err := moduleClosure(filepath.Join(root, "lib", "modules", version), testModules)
	if err != nil {
		return err
	}
	testInit = filepath.Join(assetsDir, "initramfs.cpio")
	return writeInitramfs(testInit, initBin, modules)
}

// debianKernel returns the folder where the package that linux-image-amd64
// depends on is extracted (dpkg -x), downloading it on first use.
func debianKernel(t testing.TB) (root, version string, err error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
	}
	var pkg string
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: linux-image-"); ok {
			pkg, version = "linux-image-"+p, p
			break
		}
	}
	if pkg == "" {
		return "", "", fmt.Errorf("apt-cache depends linux-image-amd64 names no linux-image-*:\n%s", out)
	}
	root = filepath.Join(kernelCache, pkg)
	if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+version)); err == nil {
		return root, version, nil
	}
	if err := os.MkdirAll(kernelCache, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(kernelCache, pkg+".tmp")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	t.Logf("downloading %s into %s", pkg, kernelCache)
	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	x := filepath.Join(tmp, "x")
	if out, err := exec.Command("dpkg", "-x", debs[0], x).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("dpkg -x %s: %v\n%s", debs[0], err, out)
	}
	// Rename last, so an interrupted run leaves no half tree behind.
	if err := os.Rename(x, root); err != nil {
		return "", "", err
	}
	return root, version, nil
}

// moduleClosure returns the .ko files of the named modules and of what
// they depend on, dependencies first. Debian's package ships no
// modules.dep (depmod makes it at install), and depmod may be missing, so
// the dependencies come from each module's .modinfo "depends=" entry.
// Module names treat '-' and '_' alike, as the kernel does.
func moduleClosure(dir string, names []string) ([]string, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			paths[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = modName(name)
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := paths[name]
		if !ok {
			return fmt.Errorf("module %s is not under %s", name, dir)
		}
		deps, err := modDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func modDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: .modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if deps, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(deps) > 0 {
			return strings.Split(string(deps), ","), nil
		}
	}
	return nil, nil
}

// writeInitramfs writes a newc cpio: /init, /dev/console (the kernel opens
// it as init's stdin and stdout), mount points, the modules and
// /modules/order.
func writeInitramfs(path, initBin string, modules []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := bufio.NewWriter(f)
	w := &cpioWriter{w: buf}
	for _, d := range []string{"dev", "proc", "sys", "modules"} {
		w.add(d, 0o040755, 0, nil)
	}
	w.add("dev/console", 0o020600, 5<<8|1, nil)
	b, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	w.add("init", 0o100755, 0, b)
	var order []string
	for _, m := range modules {
		b, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		name := modName(strings.TrimSuffix(filepath.Base(m), ".ko"))
		w.add("modules/"+name+".ko", 0o100644, 0, b)
		order = append(order, name)
	}
	w.add("modules/order", 0o100644, 0, []byte(strings.Join(order, "\n")+"\n"))
	w.add("TRAILER!!!", 0, 0, nil)
	if w.err != nil {
		return w.err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// cpioWriter writes the "newc" format the kernel unpacks: a 110-byte ASCII
// header, the NUL-terminated name and the data, each padded to 4 bytes.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

// add writes one entry; rdev is major<<8|minor for device nodes.
func (c *cpioWriter) add(name string, mode uint32, rdev int, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev>>8, rdev&0xff, len(name)+1, 0)
	c.write([]byte(hdr + name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) pad(n int) { c.write(make([]byte, (4-n%4)%4)) }

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}
