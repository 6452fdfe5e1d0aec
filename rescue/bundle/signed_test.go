//go:build linux

package bundle

import (
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// TestAuthenticode reads Debian's signed shim as signed, and the same
// bytes with the certificate table's directory entry zeroed as unsigned.
func TestAuthenticode(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian's shim-signed package the first time")
	}
	cache := "/var/cache/lifeboat-test-kernel"
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := kernel.FetchPackage(t.Context(), cache, "shim-signed", nil)
	if err != nil {
		t.Fatal(err)
	}
	shim := p.File("usr/lib/shim/shimx64.efi.signed")
	if ok, err := Authenticode(shim); err != nil || !ok {
		t.Fatalf("Authenticode(%s) = %v, %v; want true", shim, ok, err)
	}
	b, err := os.ReadFile(shim)
	if err != nil {
		t.Fatal(err)
	}
	// The security directory is entry 4 of the PE32+ optional header's
	// data directories, which start 112 bytes into it.
	peOff := binary.LittleEndian.Uint32(b[0x3c:])
	dir := int(peOff) + 4 + 20 + 112 + pe.IMAGE_DIRECTORY_ENTRY_SECURITY*8
	clear(b[dir : dir+8])
	unsigned := filepath.Join(t.TempDir(), "unsigned.efi")
	if err := os.WriteFile(unsigned, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Authenticode(unsigned); err != nil || ok {
		t.Fatalf("Authenticode(shim without its certificate table) = %v, %v; want false", ok, err)
	}
	if _, err := Authenticode("/etc/hostname"); err == nil {
		t.Error("Authenticode of a text file gave no error")
	}
}

func TestModuleSigned(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct {
		data string
		want bool
	}{
		"signed.ko":   {"\x7fELF...sig...~Module signature appended~\n", true},
		"stripped.ko": {"\x7fELF...", false},
		"short.ko":    {"", false},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tt.data), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := moduleSigned(p); err != nil || got != tt.want {
			t.Errorf("moduleSigned(%s) = %v, %v; want %v", name, got, err, tt.want)
		}
	}
}

// TestBundleSecureBoot checks the bundle the QEMU tests use
// (LIFEBOAT_RESCUE, as make test sets it): a bundle of Debian's kernel is
// Secure Boot capable and bundle.json records each signed file as it is.
func TestBundleSecureBoot(t *testing.T) {
	dir := os.Getenv("LIFEBOAT_RESCUE")
	if dir == "" {
		t.Skip("LIFEBOAT_RESCUE is not set (make test sets it to out/rescue)")
	}
	info, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := info.SecureBootCapable(); err != nil {
		t.Fatalf("bundle %s: %v", dir, err)
	}
	for _, name := range []string{"boot/" + ShimEFI, "boot/" + MokManagerEFI, "boot/" + GrubEFI, "boot/" + GrubNetEFI, "vmlinuz"} {
		s := info.SignedFile(name)
		if s == nil {
			t.Errorf("bundle.json lists no %s among the signed files", name)
			continue
		}
		if s.Package == "" || s.Version == "" || s.SHA256 == "" {
			t.Errorf("%s: incomplete record %+v", name, *s)
		}
		// Both GRUBs are trixie's 2.12 (memory, and http for the
		// network one: see grubSuite); shim, the MOK manager and the
		// kernel are the build host's.
		wantSuite := ""
		if name == "boot/"+GrubEFI || name == "boot/"+GrubNetEFI {
			wantSuite = grubSuite
		}
		if s.Suite != wantSuite {
			t.Errorf("%s: suite %q in bundle.json, want %q", name, s.Suite, wantSuite)
		}
		d, err := describe(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if d.SHA256 != s.SHA256 {
			t.Errorf("%s has SHA256 %s, bundle.json says %s", name, d.SHA256, s.SHA256)
		}
		if ok, err := Authenticode(filepath.Join(dir, name)); err != nil || !ok {
			t.Errorf("%s: Authenticode = %v, %v", name, ok, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "boot", "fbx64.efi")); err == nil {
		t.Error("the bundle carries shim's fallback fbx64.efi, which writes boot entries")
	}
}
