//go:build linux

package kernel

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/kmodule"
)

const testVersion = "6.1.0-test-amd64"

// writeTree writes files (path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeBzImage is just enough of an x86 boot sector for ImageVersion.
func fakeBzImage(version string) []byte {
	b := make([]byte, 0x400)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x20E:], 0x100)
	copy(b[0x300:], version+" (someone@example.org) #1 SMP\x00")
	return b
}

// testKernel is a small module tree shaped like Debian's, with the
// metadata depmod writes. Module files hold their own names.
func testKernel(t *testing.T) *Kernel {
	t.Helper()
	root := t.TempDir()
	md := filepath.Join(root, "lib", "modules", testVersion)
	files := map[string]string{
		"modules.dep": "kernel/drivers/virtio/virtio.ko:\n" +
			"kernel/drivers/virtio/virtio_ring.ko:\n" +
			"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n" +
			"kernel/drivers/usb/core/usbcore.ko:\n" +
			"kernel/drivers/usb/storage/usb-storage.ko.xz: kernel/drivers/usb/core/usbcore.ko\n" +
			"kernel/lib/crc16.ko:\n" +
			"kernel/fs/jbd2/jbd2.ko:\n" +
			"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\n" +
			"kernel/arch/x86/crypto/crc32c-intel.ko:\n" +
			"kernel/crypto/crc32c_generic.ko:\n" +
			"kernel/drivers/misc/unused.ko:\n" +
			"kernel/fs/nls/nls_iso8859-1.ko:\n",
		"modules.builtin": "kernel/net/packet/af_packet.ko\nkernel/arch/x86/crypto/libblake2s-x86_64.ko\n",
		"modules.softdep": "# Soft dependencies extracted from modules themselves.\n" +
			"softdep ext4 pre: crypto-crc32c\n" +
			"softdep jbd2 pre: crypto-crc32c\n" +
			"softdep unused pre: virtio\n",
		"modules.alias": "# Aliases extracted from modules themselves.\n" +
			"alias crypto-crc32c crc32c_intel\n" +
			"alias crypto-crc32c crc32c_generic\n" +
			"alias crypto-crc32c-generic crc32c_generic\n" +
			"alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk\n" +
			"alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage\n" +
			"alias unused-alias unused\n" +
			"alias net-pf-17 af_packet\n",
		"modules.devname":         "# Device nodes to trigger on-demand module loading.\nunused unused c10:1\n",
		"modules.order":           "kernel/drivers/virtio/virtio.ko\nkernel/drivers/misc/unused.ko\nkernel/fs/ext4/ext4.ko\n",
		"modules.builtin.modinfo": "af_packet.license=GPL\x00",
	}
	for _, line := range strings.Split(files["modules.dep"], "\n") {
		if rel, _, ok := strings.Cut(line, ":"); ok {
			files[rel] = "module " + rel
		}
	}
	writeTree(t, md, files)
	image := filepath.Join(root, "boot", "vmlinuz-"+testVersion)
	writeTree(t, filepath.Dir(image), map[string]string{filepath.Base(image): string(fakeBzImage(testVersion))})
	k, err := FromDirs(image, md)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func names(mods []Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

func TestResolve(t *testing.T) {
	k := testKernel(t)
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{name: "dependencies first", in: []string{"virtio_blk"}, want: []string{"virtio_ring", "virtio", "virtio_blk"}},
		{name: "hyphen or underscore", in: []string{"usb-storage", "usb_storage"}, want: []string{"usbcore", "usb_storage"}},
		{
			name: "soft dependency through an alias",
			in:   []string{"ext4"},
			want: []string{"crc32c_intel", "crc32c_generic", "crc16", "jbd2", "ext4"},
		},
		{
			name: "explicit crc32c_generic first",
			in:   []string{"crc32c_generic", "ext4"},
			want: []string{"crc32c_generic", "crc32c_intel", "crc16", "jbd2", "ext4"},
		},
		{name: "built in", in: []string{"af_packet", "af-packet"}, want: nil},
		{name: "alias to built in", in: []string{"net-pf-17"}, want: nil},
		{name: "alias", in: []string{"crypto-crc32c-generic"}, want: []string{"crc32c_generic"}},
		{name: "deduplicated", in: []string{"virtio", "virtio_blk", "virtio"}, want: []string{"virtio", "virtio_ring", "virtio_blk"}},
		{name: "unknown", in: []string{"virtio_blk", "ntfs3", "e1000"}, wantErr: `unknown kernel module "ntfs3", "e1000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Resolve(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnknownModule) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve: err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("Resolve(%q) = %q, want %q", tt.in, names(got), tt.want)
			}
			for _, m := range got {
				if m.Path != filepath.Join(k.ModuleDir, m.Rel) {
					t.Errorf("%s: Path %s, Rel %s", m.Name, m.Path, m.Rel)
				}
				if _, err := os.Stat(m.Path); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// probeStaged loads each name from a staged tree with kmodule's own code,
// in dry-run mode, and returns the files it would load in order.
func probeStaged(t *testing.T, root, kver string, names []string) []string {
	t.Helper()
	var loaded []string
	for _, n := range names {
		err := kmodule.ProbeOptions(n, "", kmodule.ProbeOpts{
			RootDir:        root,
			KVer:           kver,
			IgnoreProcMods: true,
			DryRunCB: func(p string) {
				if !slices.Contains(loaded, p) {
					loaded = append(loaded, p)
				}
			},
		})
		if err != nil {
			t.Errorf("kmodule.ProbeOptions(%q) on the staged tree: %v", n, err)
		}
	}
	return loaded
}

func TestStage(t *testing.T) {
	k := testKernel(t)
	// nls_iso8859-1.ko and libblake2s-x86_64.ko mix "-" and "_".
	want := []string{"virtio_blk", "usb-storage", "ext4", "af_packet", "nls_iso8859_1", "libblake2s_x86_64"}
	mods, err := k.Resolve(want)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Stale files from an earlier run must go.
	writeTree(t, filepath.Join(dir, "lib", "modules", testVersion), map[string]string{"kernel/stale.ko": "x"})
	if err := k.Stage(dir, mods); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(dir, "lib", "modules", testVersion)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(md, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	golden := map[string]string{
		"modules.dep": "kernel/drivers/virtio/virtio_ring.ko:\n" +
			"kernel/drivers/virtio/virtio.ko:\n" +
			"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n" +
			"kernel/drivers/usb/core/usbcore.ko:\n" +
			"kernel/drivers/usb/storage/usb_storage.ko.xz: kernel/drivers/usb/core/usbcore.ko\n" +
			"kernel/arch/x86/crypto/crc32c_intel.ko:\n" +
			"kernel/crypto/crc32c_generic.ko:\n" +
			"kernel/lib/crc16.ko:\n" +
			"kernel/fs/jbd2/jbd2.ko:\n" +
			"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\n" +
			"kernel/fs/nls/nls_iso8859_1.ko:\n",
		"modules.softdep": "# Soft dependencies extracted from modules themselves.\n" +
			"softdep ext4 pre: crypto-crc32c\n" +
			"softdep jbd2 pre: crypto-crc32c\n",
		"modules.alias": "# Aliases extracted from modules themselves.\n" +
			"alias crypto-crc32c crc32c_intel\n" +
			"alias crypto-crc32c crc32c_generic\n" +
			"alias crypto-crc32c-generic crc32c_generic\n" +
			"alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk\n" +
			"alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage\n",
		"modules.devname":         "# Device nodes to trigger on-demand module loading.\n",
		"modules.order":           "kernel/drivers/virtio/virtio.ko\nkernel/fs/ext4/ext4.ko\n",
		"modules.builtin":         "kernel/net/packet/af_packet.ko\nkernel/arch/x86/crypto/libblake2s_x86_64.ko\n",
		"modules.builtin.modinfo": "af_packet.license=GPL\x00",
	}
	for name, want := range golden {
		if got := read(name); got != want {
			t.Errorf("staged %s:\n%s\nwant:\n%s", name, got, want)
		}
	}
	for _, m := range mods {
		if got := read(stagedRel(m.Rel)); got != "module "+m.Rel {
			t.Errorf("staged %s holds %q", m.Rel, got)
		}
	}
	if _, err := os.Stat(filepath.Join(md, "kernel/stale.ko")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale file survived Stage: %v", err)
	}
	if _, err := os.Stat(filepath.Join(md, "kernel/drivers/misc/unused.ko")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unselected module staged: %v", err)
	}

	// kmodule, as the rescue init runs it, finds everything, loads
	// dependencies first and treats built-in modules as loaded.
	loaded := probeStaged(t, dir, testVersion, want)
	var got []string
	for _, p := range loaded {
		rel, err := filepath.Rel(md, p)
		if err != nil || !filepath.IsLocal(rel) {
			t.Errorf("kmodule would load %s, outside the staged tree", p)
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
		got = append(got, moduleName(rel))
	}
	// kmodule ignores soft dependencies: the crc32c modules come only
	// from our order, which the rescue init follows.
	wantLoaded := []string{"virtio", "virtio_ring", "virtio_blk", "usbcore", "usb_storage", "jbd2", "crc16", "ext4", "nls_iso8859_1"}
	if !reflect.DeepEqual(got, wantLoaded) {
		t.Errorf("kmodule would load %q, want %q", got, wantLoaded)
	}
}

func TestStageRejects(t *testing.T) {
	k := testKernel(t)
	mods, err := k.Resolve([]string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mods    []Module
		wantErr string
	}{
		{name: "missing dependency", mods: mods[2:], wantErr: "needs kernel/drivers/virtio/virtio"},
		{name: "foreign module", mods: []Module{{Name: "evil", Rel: "../../../etc/evil.ko"}}, wantErr: "is not in"},
		{name: "name and file disagree", mods: []Module{{Name: "virtio", Rel: "kernel/drivers/virtio/virtio_ring.ko"}}, wantErr: "is not in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k.Stage(t.TempDir(), tt.mods)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Stage: err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestKmoduleTrailingSpace shows why formatDep never writes "name.ko: ":
// kmodule reads the space as a dependency on the module directory.
func TestKmoduleTrailingSpace(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "lib", "modules", testVersion)
	writeTree(t, md, map[string]string{"a.ko": "", "b.ko": "", "modules.dep": "a.ko: \nb.ko:\n"})
	opts := kmodule.ProbeOpts{RootDir: root, KVer: testVersion, IgnoreProcMods: true, DryRunCB: func(string) {}}
	if err := kmodule.ProbeOptions("a", "", opts); err == nil {
		t.Log("kmodule now accepts a trailing space after the colon; formatDep's care is no longer needed")
	}
	if err := kmodule.ProbeOptions("b", "", opts); err != nil {
		t.Errorf("kmodule rejects %q: %v", "b.ko:", err)
	}
}

func TestFromDirs(t *testing.T) {
	k := testKernel(t)
	if k.Version != testVersion {
		t.Errorf("Version %q, want %q", k.Version, testVersion)
	}

	other := t.TempDir()
	img := filepath.Join(other, "vmlinuz")
	writeTree(t, other, map[string]string{
		"vmlinuz":             string(fakeBzImage("6.2.0-other")),
		"vmlinux":             "\x7fELF",
		"6.2.0-other/a.ko":    "",
		"6.2.0-other/x/b.txt": "",
	})
	if _, err := FromDirs(k.Image, filepath.Join(other, "6.2.0-other")); err == nil || !strings.Contains(err.Error(), "pass the matching pair") {
		t.Errorf("FromDirs with mismatched image and modules: %v", err)
	}
	if _, err := FromDirs(filepath.Join(other, "vmlinux"), k.ModuleDir); !errors.Is(err, ErrNotBzImage) {
		t.Errorf("FromDirs with an ELF image: %v, want ErrNotBzImage", err)
	}
	if _, err := FromDirs(k.Image, filepath.Join(other, "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FromDirs with a missing module dir: %v", err)
	}

	// No modules.dep: FromDirs runs depmod, through a symbolic link since
	// this directory is not under lib/modules.
	if _, err := depmodPath(); err != nil {
		t.Skip(err)
	}
	// depmod rejects our fake .ko files; an empty tree will do.
	if err := os.Remove(filepath.Join(other, "6.2.0-other", "a.ko")); err != nil {
		t.Fatal(err)
	}
	got, err := FromDirs(img, filepath.Join(other, "6.2.0-other"))
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && errors.Is(ce.Err, exec.ErrNotFound) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got.ModuleDir, "modules.dep")); err != nil {
		t.Errorf("FromDirs did not run depmod: %v", err)
	}
}
