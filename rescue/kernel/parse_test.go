//go:build linux

package kernel

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseDep(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []depEntry
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{
			name: "depmod output",
			in: "kernel/drivers/virtio/virtio.ko:\n" +
				"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n",
			want: []depEntry{
				{Rel: "kernel/drivers/virtio/virtio.ko"},
				{Rel: "kernel/drivers/block/virtio_blk.ko", Deps: []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko"}},
			},
		},
		{
			name: "trailing space, tabs, CRLF, blank lines and comments",
			in:   "# made by hand\n\nkernel/a.ko: \r\nkernel/b.ko.xz:\tkernel/a.ko  \n",
			want: []depEntry{{Rel: "kernel/a.ko"}, {Rel: "kernel/b.ko.xz", Deps: []string{"kernel/a.ko"}}},
		},
		{name: "compressed suffixes", in: "a.ko.gz: b.ko.zst\n", want: []depEntry{{Rel: "a.ko.gz", Deps: []string{"b.ko.zst"}}}},
		{name: "no colon", in: "kernel/a.ko\n", wantErr: "line 1: no colon"},
		{name: "escapes the directory", in: "../../etc/passwd.ko:\n", wantErr: "not a module file"},
		{name: "absolute dependency", in: "a.ko: /lib/b.ko\n", wantErr: "not a module file"},
		{name: "not a module", in: "a.ko: b.txt\n", wantErr: "not a module file"},
		{name: "colon in dependency", in: "a.ko: b.ko:c.ko\n", wantErr: "not a module file"},
		{name: "listed twice", in: "a.ko:\na.ko:\n", wantErr: "line 2: a.ko listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDep(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseDep: err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseDep = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatDep(t *testing.T) {
	var b bytes.Buffer
	err := formatDep(&b, []depEntry{{Rel: "kernel/a.ko"}, {Rel: "kernel/b.ko", Deps: []string{"kernel/a.ko", "kernel/c.ko"}}})
	if err != nil {
		t.Fatal(err)
	}
	// No space after a colon without dependencies: kmodule would read one
	// as a dependency on the module directory (see TestKmoduleTrailingSpace).
	want := "kernel/a.ko:\nkernel/b.ko: kernel/a.ko kernel/c.ko\n"
	if b.String() != want {
		t.Errorf("formatDep wrote %q, want %q", b.String(), want)
	}
}

func TestParseSoftdep(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string][]string
	}{
		{name: "empty", in: "", want: map[string][]string{}},
		{
			name: "Debian 6.1 lines",
			in: "# Soft dependencies extracted from modules themselves.\n" +
				"softdep ext4 pre: crypto-crc32c\n" +
				"softdep jbd2 pre: crypto-crc32c\n" +
				"softdep cifs gcm\n" + // no pre: or post:, ignored as modprobe does
				"softdep ipmi_msghandler post: ipmi_devintf\n" +
				"softdep intel_lpss pre: platform:idma64\n",
			want: map[string][]string{"ext4": {"crypto-crc32c"}, "jbd2": {"crypto-crc32c"}, "intel_lpss": {"platform:idma64"}},
		},
		{
			name: "pre and post on one line, repeated, hyphenated name",
			in:   "softdep foo-bar pre: a b post: c pre: d\nsoftdep foo_bar pre: a e\n",
			want: map[string][]string{"foo_bar": {"a", "b", "d", "e"}},
		},
		{name: "other directives", in: "options foo x=1\nalias a b\n", want: map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSoftdep(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseSoftdep = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := parseSoftdep(strings.NewReader("softdep\n")); err == nil {
		t.Error("parseSoftdep accepted a softdep line without a module")
	}
}

func TestParseBuiltin(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]bool
	}{
		{name: "empty", in: "", want: map[string]bool{}},
		{
			name: "Debian 6.1 lines",
			in:   "kernel/net/packet/af_packet.ko\nkernel/arch/x86/crypto/libblake2s-x86_64.ko\n\n",
			want: map[string]bool{"af_packet": true, "libblake2s_x86_64": true},
		},
		{name: "junk skipped", in: "# comment\nREADME\n  kernel/fs/ext4/ext4.ko  \n", want: map[string]bool{"ext4": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBuiltin(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseBuiltin = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	for rel, want := range map[string]string{
		"kernel/drivers/usb/storage/usb-storage.ko":  "usb_storage",
		"kernel/fs/nls/nls_iso8859-1.ko.xz":          "nls_iso8859_1",
		"kernel/drivers/block/virtio_blk.ko.zst":     "virtio_blk",
		"kernel/drivers/block/virtio_blk.ko.gz":      "virtio_blk",
		"kernel/drivers/block/virtio_blk.ko.bz2":     "",
		"kernel/drivers/block/virtio_blk":            "",
		"kernel/arch/x86/crypto/crc32c-intel.ko.zst": "crc32c_intel",
	} {
		if got := moduleName(rel); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", rel, got, want)
		}
	}
}

func TestParseDepends(t *testing.T) {
	tests := []struct {
		name, in, pkg, kver string
	}{
		{"bookworm", "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n", "linux-image-6.1.0-56-amd64", "6.1.0-56-amd64"},
		{"alternatives and more", "linux-image-amd64\n |Depends: <linux-image-virtual>\n  Depends: linux-image-6.12.9-amd64\n  Recommends: firmware-linux\n", "linux-image-6.12.9-amd64", "6.12.9-amd64"},
		{"nothing", "E: No packages found\n", "", ""},
		{"only itself", "linux-image-amd64\n  Depends: linux-image-amd64\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, kver, err := parseDepends([]byte(tt.in))
			if tt.pkg == "" {
				if err == nil {
					t.Fatalf("parseDepends = %q, want an error", pkg)
				}
				return
			}
			if err != nil || pkg != tt.pkg || kver != tt.kver {
				t.Errorf("parseDepends = %q, %q, %v; want %q, %q", pkg, kver, err, tt.pkg, tt.kver)
			}
		})
	}
}

func TestParsePrintURIs(t *testing.T) {
	out := "'http://deb.debian.org/debian-security/pool/updates/main/l/linux-signed-amd64/linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb' linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb 70550672 SHA256:a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1\n"
	got, err := parsePrintURIs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := debFile{name: "linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb", size: 70550672, sha256: "a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1"}
	if got != want {
		t.Errorf("parsePrintURIs = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "'http://x/../a.deb' ../a.deb 1 SHA256:00\n", "'http://x/a.deb' a.deb many\n"} {
		if d, err := parsePrintURIs([]byte(bad)); err == nil {
			t.Errorf("parsePrintURIs(%q) = %+v, want an error", bad, d)
		}
	}
}
