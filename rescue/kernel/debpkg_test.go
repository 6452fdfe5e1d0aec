//go:build linux

package kernel

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
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
