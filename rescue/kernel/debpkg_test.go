//go:build linux

package kernel

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebVersion(t *testing.T) {
	for _, tt := range []struct{ file, name, want string }{
		{"shim-signed_1.51~1+deb12u1+16.1-2~deb12u1_amd64.deb", "shim-signed", "1.51~1+deb12u1+16.1-2~deb12u1"},
		{"grub-efi-amd64-signed_1+2.06+13+deb12u2_amd64.deb", "grub-efi-amd64-signed", "1+2.06+13+deb12u2"},
		{"systemd_1%3a252.3-1_amd64.deb", "systemd", "1:252.3-1"},
		{"shim-signed_1.51_amd64.deb", "shim", ""},
		{"shim-signed_amd64.deb", "shim-signed", ""},
	} {
		got, err := debVersion(tt.file, tt.name)
		if tt.want == "" {
			if err == nil {
				t.Errorf("debVersion(%q, %q) = %q, want an error", tt.file, tt.name, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("debVersion(%q, %q) = %q, %v; want %q", tt.file, tt.name, got, err, tt.want)
		}
	}
}

// TestFetchPackage fetches Debian's signed shim (about 1 MB) twice: the
// second call reuses the cache.
func TestFetchPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian's shim-signed package the first time")
	}
	if err := os.MkdirAll(testCache, 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	p, err := FetchPackage(t.Context(), testCache, "shim-signed", log)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) {
			t.Fatalf("apt cannot fetch shim-signed (the rescue bundle needs it for Secure Boot): %v", err)
		}
		t.Fatal(err)
	}
	t.Logf("%+v", *p)
	if p.Name != "shim-signed" || p.Version == "" {
		t.Errorf("package %+v lacks its name or version", *p)
	}
	b, err := os.ReadFile(p.File("usr/lib/shim/shimx64.efi.signed"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Errorf("shimx64.efi.signed is no PE image")
	}
	again, err := FetchPackage(t.Context(), testCache, "shim-signed", log)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *p {
		t.Errorf("second fetch = %+v, want %+v", *again, *p)
	}
}

// TestFetchPackageFrom fetches trixie's signed GRUB (about 1.4 MB) through
// the private apt state in the cache, twice: the second call neither
// updates the lists nor downloads again. The host's apt knows no trixie.
func TestFetchPackageFrom(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads trixie's package lists and grub-efi-amd64-signed the first time")
	}
	if err := os.MkdirAll(testCache, 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	p, err := FetchPackageFrom(t.Context(), testCache, "trixie", "grub-efi-amd64-signed", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *p)
	if p.Suite != "trixie" || !strings.Contains(p.Version, "2.12") {
		t.Errorf("package %+v: want trixie's GRUB 2.12", *p)
	}
	b, err := os.ReadFile(p.File("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Errorf("grubx64.efi.signed is no PE image")
	}
	stamp := filepath.Join(testCache, "apt-trixie", "updated")
	before, err := os.Stat(stamp)
	if err != nil {
		t.Fatal(err)
	}
	again, err := FetchPackageFrom(t.Context(), testCache, "trixie", "grub-efi-amd64-signed", log)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *p {
		t.Errorf("second fetch = %+v, want %+v", *again, *p)
	}
	if after, err := os.Stat(stamp); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the second fetch ran apt-get update again (stamp %v → %v, %v)", before.ModTime(), after, err)
	}
}

// TestFetchPackageFromBadSuite: a suite name that would leave the cache
// (or is empty through this path) is refused before apt runs.
func TestFetchPackageFromBadSuite(t *testing.T) {
	for _, suite := range []string{"../etc", "a b", ".."} {
		_, err := FetchPackageFrom(t.Context(), t.TempDir(), suite, "grub-efi-amd64-signed", nil)
		if err == nil || !strings.Contains(err.Error(), "not a suite name") {
			t.Errorf("suite %q: err = %v, want a refusal", suite, err)
		}
	}
}
