//go:build linux

package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// debianModuleDir is the module tree of the Debian kernel the build
// fetched (make rescue: out/cache) or the kernel tests fetched.
func debianModuleDir(t *testing.T) string {
	t.Helper()
	for _, g := range []string{"../../out/cache/root-*/lib/modules/*", testCache + "/root-*/lib/modules/*"} {
		m, _ := filepath.Glob(g)
		for _, d := range m {
			if _, err := os.Stat(filepath.Join(d, "modules.alias")); err == nil {
				return d
			}
		}
	}
	t.Skip("no Debian kernel module tree: run make rescue (out/cache) or the kernel tests (" + testCache + ") first")
	return ""
}

// realModaliases were read on the development machine (a QEMU guest) with
//
//	cat /sys/bus/*/devices/*/modalias | sort -u
//
// and the modules are what kmod 30 answers for each against Debian's
// 6.1.0-57-amd64 modules.alias, less those built into the kernel
// (platform:rtc_cmos is rtc_cmos, in modules.builtin):
//
//	modprobe -d out/cache/root-6.1.0-57-amd64 -S 6.1.0-57-amd64 -R MODALIAS
var realModaliases = []struct {
	modalias string
	want     []string
}{
	{"acpi:ACPI0013:", nil},
	{"acpi:AMZNC10C:VMCLOCK:", nil},
	{"acpi:LNXSYBUS:", nil},
	{"acpi:LNXSYSTM:", nil},
	{"acpi:PNP0303:", nil},
	{"acpi:PNP0501:", nil},
	{"acpi:PNP0A08:PNP0A03:", nil},
	{"acpi:VMGENCTR:VM_GEN_COUNTER:", nil},
	{"pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00", []string{"virtio_pci"}},
	{"pci:v00001AF4d00001042sv00001AF4sd00001042bc01sc80i00", []string{"virtio_pci"}},
	{"pci:v00001AF4d00001044sv00001AF4sd00001044bcFFscFFi00", []string{"virtio_pci"}},
	{"pci:v00001AF4d00001045sv00001AF4sd00001045bcFFscFFi00", []string{"virtio_pci"}},
	{"pci:v00001AF4d00001053sv00001AF4sd00001053bcFFscFFi00", []string{"virtio_pci"}},
	{"pci:v00008086d00000D57sv00000000sd00000000bc06sc00i00", nil},
	{"platform:pcspkr", []string{"pcspkr"}},
	{"platform:rtc_cmos", nil},
	{"platform:serial8250", nil},
	{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
	{"virtio:d00000002v00001AF4", []string{"virtio_blk"}},
	{"virtio:d00000004v00001AF4", []string{"virtio_rng"}},
	{"virtio:d00000005v00001AF4", []string{"virtio_balloon"}},
	{"virtio:d00000013v00001AF4", []string{"vmw_vsock_virtio_transport"}},
}

// TestAliasesDebian matches real modaliases against Debian's
// modules.alias and checks three answers agree: Aliases.Match (what the
// rescue environment's coldplug loads), Resolve (what the build puts in
// the initramfs for that name) and kmod's modprobe -R, run live on the
// modaliases of the machine the test runs on.
func TestAliasesDebian(t *testing.T) {
	dir := debianModuleDir(t)
	f, err := os.Open(filepath.Join(dir, "modules.alias"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := ParseAliases(f)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kernel{Version: filepath.Base(dir), ModuleDir: dir}
	ix, err := k.load()
	if err != nil {
		t.Fatal(err)
	}
	modprobe, _ := exec.LookPath("modprobe")
	if modprobe == "" {
		modprobe, _ = exec.LookPath("/usr/sbin/modprobe")
	}
	kmod := func(t *testing.T, ma string) []string {
		out, err := exec.Command(modprobe, "-d", filepath.Dir(filepath.Dir(filepath.Dir(dir))), "-S", k.Version, "-R", ma).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "not found in directory") {
				return nil
			}
			t.Fatalf("modprobe -R %s: %v: %s", ma, err, out)
		}
		return strings.Fields(string(out))
	}
	check := func(t *testing.T, ma string, want []string) {
		got := a.Match(ma)
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", ma, got, want)
		}
		if modprobe != "" {
			// kmod also answers with modules built into the kernel
			// (aliases from modules.builtin.modinfo); there is nothing
			// to load for those, and Match reads modules.alias only.
			km := slices.DeleteFunc(kmod(t, ma), func(m string) bool { return ix.builtin[m] })
			if !slices.Equal(got, km) {
				t.Errorf("Match(%q) = %q, modprobe -R says %q", ma, got, km)
			}
		}
		var loadable []string
		for _, m := range got {
			if ix.byName[m] != nil {
				loadable = append(loadable, m)
			}
		}
		mods, err := k.Resolve([]string{ma})
		if len(got) == 0 {
			// Code built into the kernel (modules.builtin.modinfo)
			// needs no module; anything else is unknown.
			if builtin := ix.builtinAliases.Match(ma); len(builtin) > 0 {
				if err != nil || len(mods) > 0 {
					t.Errorf("Resolve(%q) = %v, %v; want nothing to load (built in: %q)", ma, mods, err, builtin)
				}
				if km := kmod(t, ma); modprobe != "" && !slices.Equal(km, builtin) {
					t.Errorf("built-in aliases of %q: %q, modprobe -R says %q", ma, builtin, km)
				}
			} else if !errors.Is(err, ErrUnknownModule) {
				t.Errorf("Resolve(%q) = %v, %v; want ErrUnknownModule", ma, mods, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Resolve(%q): %v", ma, err)
		}
		for _, m := range loadable {
			if !slices.ContainsFunc(mods, func(x Module) bool { return x.Name == m }) {
				t.Errorf("Resolve(%q) = %v lacks %s, which Match finds", ma, mods, m)
			}
		}
	}
	for _, tt := range realModaliases {
		t.Run(tt.modalias, func(t *testing.T) { check(t, tt.modalias, tt.want) })
	}
	if modprobe == "" {
		t.Log("modprobe (kmod) not found: the modaliases of this machine are not compared with kmod")
		return
	}
	files, _ := filepath.Glob("/sys/bus/*/devices/*/modalias")
	live := map[string]bool{}
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			live[strings.TrimSpace(string(b))] = true
		}
	}
	for _, ma := range slices.Sorted(func(yield func(string) bool) {
		for k := range live {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Run("live/"+ma, func(t *testing.T) {
			check(t, ma, slices.DeleteFunc(kmod(t, ma), func(m string) bool { return ix.builtin[m] }))
		})
	}
}
