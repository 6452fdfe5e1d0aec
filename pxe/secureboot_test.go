package pxe

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// withSecureBoot adds the signed chain to a test bundle (random bytes
// under the names rescue/bundle gives them, recorded in bundle.json as
// Secure Boot capable) and returns their contents by served name
// (secureboot/NAME).
func withSecureBoot(t testing.TB, bundleDir string) map[string][]byte {
	t.Helper()
	info, err := bundle.Read(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(bundleDir, "boot"), 0o755)
	out := map[string][]byte{}
	for _, p := range []string{bundleShim, bundleGRUBNet, bundleMokManager, "boot/" + bundle.GrubEFI} {
		b := make([]byte, 64<<10+len(p))
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(bundleDir, filepath.FromSlash(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		info.Signed = append(info.Signed, bundle.Signed{File: p, Size: int64(len(b))})
		for served, q := range secureBootFiles {
			if q == p {
				out[secureBootDir+"/"+served] = b
			}
		}
	}
	info.SecureBoot = true
	j, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(bundleDir, "bundle.json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// What each kind of client boots first, for each --uefi-loader, with a
// bundle that holds the signed chain and one that does not; and what the
// status table records as its loader.
func TestUEFILoader(t *testing.T) {
	const mac = "52:54:00:00:00:01"
	ipxe := append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", false))
	httpBoot := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)),
	}
	// HTTP boot clients get the chain by URL.
	shim, shimURL := "secureboot/shimx64.efi", "http://192.168.77.1/secureboot/shimx64.efi"
	for _, tc := range []struct {
		loader                        UEFILoader
		signed, proxy                 bool
		uefi, http, bios, uefiLoaderS string
	}{
		{UEFILoaderAuto, true, false, shim, shimURL, "undionly.kpxe", "shim+grub"},
		{UEFILoaderShim, true, false, shim, shimURL, "undionly.kpxe", "shim+grub"},
		{UEFILoaderIPXE, true, false, "snponly.efi", "http://192.168.77.1/ipxe/snponly.efi", "undionly.kpxe", "ipxe"},
		{UEFILoaderAuto, false, false, "snponly.efi", "http://192.168.77.1/ipxe/snponly.efi", "undionly.kpxe", "ipxe"},
		{UEFILoaderIPXE, false, false, "snponly.efi", "http://192.168.77.1/ipxe/snponly.efi", "undionly.kpxe", "ipxe"},
		// A proxy gives the chain as well: GRUB 2.12 finds this server
		// from the proxy offer (TestPXESecureBootProxy boots it).
		{UEFILoaderAuto, true, true, shim, shimURL, "undionly.kpxe", "shim+grub"},
		{UEFILoaderShim, true, true, shim, shimURL, "undionly.kpxe", "shim+grub"},
		{UEFILoaderIPXE, true, true, "snponly.efi", "http://192.168.77.1/ipxe/snponly.efi", "undionly.kpxe", "ipxe"},
	} {
		name := tc.loader.String()
		if tc.signed {
			name += "/signed-bundle"
		}
		if tc.proxy {
			name += "/proxy"
		}
		t.Run(name, func(t *testing.T) {
			c := Config{UEFILoader: tc.loader}
			c.Bundle, c.IPXEDir, _ = testBundle(t)
			if tc.signed {
				withSecureBoot(t, c.Bundle)
			}
			for _, proxy := range []bool{tc.proxy} {
				c.Proxy = proxy
				s := offlineServer(t, c)
				for _, k := range []struct {
					what   string
					mods   []dhcpv4.Modifier
					file   string
					loader string
				}{
					{"uefi7", pxeClient(iana.EFI_X86_64), tc.uefi, tc.uefiLoaderS},
					{"uefi9", pxeClient(iana.EFI_BC), tc.uefi, tc.uefiLoaderS},
					{"uefi-http", httpBoot, tc.http, tc.uefiLoaderS},
					{"bios", pxeClient(iana.INTEL_X86PC), tc.bios, "ipxe"},
					{"ipxe rom", ipxe, "http://192.168.77.1/boot.ipxe?mac=" + mac, "ipxe"},
				} {
					s.clients = newClients(0)
					r := s.handleDHCP(discover(mac, k.mods...), 67)
					if r == nil {
						t.Fatalf("proxy=%v %s: no reply", proxy, k.what)
					}
					if r.BootFileName != k.file {
						t.Errorf("proxy=%v %s: boot file %q, want %q", proxy, k.what, r.BootFileName, k.file)
					}
					if got := clientOf(s, mac).Loader; got != k.loader {
						t.Errorf("proxy=%v %s: status says loader %q, want %q", proxy, k.what, got, k.loader)
					}
				}
				// iPXE chained from a firmware that got shim never
				// happens; one chained from snponly.efi keeps "ipxe".
				s.handleDHCP(discover(mac, pxeClient(iana.EFI_X86_64)...), 67)
				s.handleDHCP(discover(mac, append(pxeClient(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false))...), 67)
				if got := clientOf(s, mac).Loader; got != tc.uefiLoaderS {
					t.Errorf("proxy=%v: after iPXE's own request the loader is %q, want %q", proxy, got, tc.uefiLoaderS)
				}
			}
		})
	}
	// --uefi-loader shim with a bundle that cannot: refused at start,
	// saying what to do.
	c := Config{UEFILoader: UEFILoaderShim, Interface: "test0", LeaseFile: filepath.Join(t.TempDir(), "l.json")}
	c.Bundle, c.IPXEDir, _ = testBundle(t)
	_, err := newServer(c, netip.MustParsePrefix("192.168.77.1/24"))
	if err == nil || !strings.Contains(err.Error(), "signed boot chain") || !strings.Contains(err.Error(), "--uefi-loader ipxe") {
		t.Errorf("shim without the signed chain: %v", err)
	}
}

func TestParseUEFILoader(t *testing.T) {
	for _, l := range []UEFILoader{UEFILoaderAuto, UEFILoaderShim, UEFILoaderIPXE} {
		if got, err := ParseUEFILoader(l.String()); got != l || err != nil {
			t.Errorf("%v: %v %v", l, got, err)
		}
	}
	if _, err := ParseUEFILoader("grub"); err == nil {
		t.Error("accepted grub")
	}
}

var grubReport = regexp.MustCompile(`'lifeboat\.report=http://[^/ ]+(/[^']*)'`)

// GRUB's configurations over HTTP (TFTP in TestTFTPSecureBoot): the
// loader's, which sources the client's by $net_default_mac; the client's,
// with the same kernel, initramfs and command line as its iPXE script,
// each parameter quoted so GRUB takes it literally; a job only for the
// client itself, with a report token the server then accepts, and the
// Secure Boot state of the report in the status.
func TestGRUBConfig(t *testing.T) {
	rules, _ := ParseRules([]byte(tokenRules))
	c := Config{Rules: rules, Log: testLogger(t)}
	c.Bundle, c.IPXEDir, _ = testBundle(t)
	signed := withSecureBoot(t, c.Bundle)
	s := offlineServer(t, c)
	h := httpServer(t, s)

	if code, _ := get(t, h.URL+"/grub/x86_64-efi/command.lst"); code != http.StatusNotFound {
		t.Errorf("module list: %d, want 404", code)
	}
	for _, name := range []string{"grub.cfg", "x86_64-efi/grub.cfg"} {
		code, b := get(t, h.URL+"/grub/"+name)
		if code != 200 || !strings.Contains(string(b), `source "$prefix/lifeboat/$net_default_mac.cfg"`) {
			t.Errorf("%s: %d\n%s", name, code, b)
		}
	}
	const mac = "52:54:00:12:34:56"
	seenAt(t, s, mac, "127.0.0.1")
	code, b := get(t, h.URL+"/grub/lifeboat/"+mac+".cfg")
	cfg := string(b)
	for _, want := range []string{
		"echo 'Lifeboat: booting the rescue environment for " + mac + "'\n",
		"linux (http,192.168.77.1)/rescue/vmlinuz 'console=ttyS0,115200' 'quiet' 'lifeboat.action=restore' 'lifeboat.image=http://192.168.77.1/images/pc1.lbi' 'lifeboat.target=first-empty-disk' 'lifeboat.report=http://192.168.77.1/api/report/52:54:00:12:34:56?token=",
		"\ninitrd (http,192.168.77.1)/rescue/initramfs\nboot\n",
	} {
		if code != 200 || !strings.Contains(cfg, want) {
			t.Errorf("the restore client's GRUB configuration lacks %q:\n%s", want, cfg)
		}
	}
	if c := clientOf(s, mac); c.Stage != StageScript || c.Event != "grub config" {
		t.Errorf("status after the GRUB configuration: %+v", c)
	}
	m := grubReport.FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("no report URL:\n%s", cfg)
	}
	if code := postReport(t, h.URL+m[1], "LIFEBOAT-RESULT status=ok exit=0 action=restore seconds=1.0 secureboot=1 lockdown=integrity\n"); code != http.StatusNoContent {
		t.Fatalf("report with the GRUB configuration's token: %d", code)
	}
	if c := clientOf(s, mac); c.Stage != StageDone || c.SecureBoot != "1" {
		t.Errorf("status after the report: %+v", c)
	}

	// Another machine asking for this client's job is refused; a client
	// with no job gets the menu from anywhere.
	if code, b := get(t, h.URL+"/grub/lifeboat/52:54:00:99:00:01.cfg"); code != http.StatusForbidden || strings.Contains(string(b), "lifeboat.") {
		t.Errorf("a job for a client never seen here: %d %s", code, b)
	}
	if code, b := get(t, h.URL+"/grub/lifeboat/52:54:00:ab:cd:ef.cfg"); code != 200 || strings.Contains(string(b), "lifeboat.") || !strings.Contains(string(b), "'quiet'\ninitrd") {
		t.Errorf("menu client: %d\n%s", code, b)
	}
	for _, p := range []string{"/grub/lifeboat/52-54-00-ab-cd-ef.cfg", "/grub/lifeboat/52:54:00:AB:CD:EF.cfg", "/grub/lifeboat/52:54:00:ab:cd:ef", "/grub/..%2fbundle.json", "/grub/x86_64-efi%2f..%2f..%2frescue%2fbundle.json", "/grub/", "/grub/lifeboat/01:02:03:04:05:06:07:08.cfg",
		"/secureboot/..%2fbundle.json", "/secureboot/..%2fboot%2fbootx64.efi", "/secureboot/bootx64.efi", "/secureboot/%2e%2e/bundle.json", "/secureboot/"} {
		if code, b := get(t, h.URL+p); code == 200 {
			t.Errorf("%s served: %q", p, b[:min(len(b), 40)])
		}
	}
	for name, want := range signed {
		if code, b := get(t, h.URL+"/"+name); code != 200 || string(b) != string(want) {
			t.Errorf("%s over HTTP: %d, %d bytes", name, code, len(b))
		}
	}
	// Shim loaded over HTTP (UEFI HTTP boot) asks for GRUB at
	// FOLDER + "/grubx64.efi"; it does not follow redirects.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h.URL + "/secureboot//grubx64.efi")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != string(signed["secureboot/grubx64.efi"]) {
		t.Errorf("secureboot//grubx64.efi: %s, %d bytes", resp.Status, len(b))
	}
	for _, p := range []string{"//secureboot//..//rescue//bundle.json", "/images//..//..//etc/passwd"} {
		if resp, err := noRedirect.Get(h.URL + p); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Errorf("%s served", p)
			}
		}
	}
}

// The command line splits as the kernel splits it, and each parameter is
// one literal GRUB word: quotes that keep a value with spaces whole are
// dropped (GRUB puts them back around the parameter), $ and wildcards stay.
func TestGRUBQuoting(t *testing.T) {
	got := kernel.SplitCmdline(`console=ttyS0 lifeboat.image="LABEL=MY IMAGES:/a b.lbi"  x=$y?*  `)
	want := []string{"console=ttyS0", "lifeboat.image=LABEL=MY IMAGES:/a b.lbi", "x=$y?*"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("split: %q, want %q", got, want)
	}
	for in, want := range map[string]string{"x=$y?*": `'x=$y?*'`, "a b": `'a b'`, "it's": `'it'\''s'`} {
		if got := grubQuote(in); got != want {
			t.Errorf("grubQuote(%q) = %s, want %s", in, got, want)
		}
		if back := grubUnquote(grubQuote(in)); back != in {
			t.Errorf("grubQuote(%q) reads back as %q", in, back)
		}
	}
}

// grubUnquote reads a word made of single-quoted runs and \-escaped
// characters, as GRUB's lexer does.
func grubUnquote(w string) string {
	var b strings.Builder
	inQ := false
	for i := 0; i < len(w); i++ {
		switch {
		case w[i] == '\'':
			inQ = !inQ
		case !inQ && w[i] == '\\' && i+1 < len(w):
			i++
			b.WriteByte(w[i])
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

// FuzzGRUBFile checks the names GRUB's requests may carry: only the two
// loader configuration names and lifeboat/MAC.cfg with a 6-byte MAC
// address are accepted, and a client's name yields that very address.
// Seeds: testdata/fuzz/FuzzGRUBFile and below.
func FuzzGRUBFile(f *testing.F) {
	for _, s := range []string{"grub.cfg", "x86_64-efi/grub.cfg", "lifeboat/52:54:00:12:34:56.cfg", "lifeboat/52-54-00-12-34-56.cfg",
		"lifeboat/../grub.cfg", "lifeboat/0000.0000.0000.cfg", "lifeboat/52:54:00:AB:CD:EF.cfg", "i386-pc/grub.cfg", "lifeboat/52:54:00:12:34:56:78:9a.cfg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, hw, ok := grubFile(name)
		if !ok {
			return
		}
		switch kind {
		case grubLoader:
			if name != "grub.cfg" && name != "x86_64-efi/grub.cfg" {
				t.Fatalf("%q taken as the loader configuration", name)
			}
			return
		}
		if len(hw) != 6 || name != "lifeboat/"+hw.String()+".cfg" {
			t.Fatalf("%q taken as client %v", name, hw)
		}
	})
}

// FuzzGRUBQuote: any parameter (what a rule may hold: no control
// characters) comes back whole from GRUB's quoting, and the quoted word
// has no newline that would start a new GRUB command.
func FuzzGRUBQuote(f *testing.F) {
	for _, s := range []string{"quiet", "x=$y", "it's", "a b", `"`, "'", "''\\'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		q := grubQuote(p)
		if grubUnquote(q) != p {
			t.Fatalf("grubQuote(%q) = %s reads back as %q", p, q, grubUnquote(q))
		}
		if strings.ContainsRune(q, '\n') != strings.ContainsRune(p, '\n') {
			t.Fatalf("grubQuote(%q) = %q", p, q)
		}
	})
}

// Auto gives UEFI clients the signed chain only when the bundle can boot
// under Secure Boot: bundle.json says so (a bundle built with --kernel
// does not: shim would refuse its kernel) and the files are there.
func TestUEFILoaderNeedsCapableBundle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		why   string
	}{
		{"not capable", func(t *testing.T, dir string) {
			info, _ := bundle.Read(dir)
			info.SecureBoot, info.NoSecureBoot = false, "built with --kernel/--modules"
			j, _ := json.Marshal(info)
			os.WriteFile(filepath.Join(dir, "bundle.json"), j, 0o644)
		}, "built with --kernel/--modules"},
		{"no network GRUB", func(t *testing.T, dir string) {
			info, _ := bundle.Read(dir)
			var keep []bundle.Signed
			for _, f := range info.Signed {
				if f.File != bundleGRUBNet {
					keep = append(keep, f)
				}
			}
			info.Signed = keep
			j, _ := json.Marshal(info)
			os.WriteFile(filepath.Join(dir, "bundle.json"), j, 0o644)
			os.Remove(filepath.Join(dir, filepath.FromSlash(bundleGRUBNet)))
		}, "the bundle has no boot/grubnetx64.efi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := capturedLogger(t)
			c := Config{Log: log}
			c.Bundle, c.IPXEDir, _ = testBundle(t)
			withSecureBoot(t, c.Bundle)
			tc.spoil(t, c.Bundle)
			s := offlineServer(t, c)
			if r := s.handleDHCP(discover("52:54:00:00:00:01", pxeClient(iana.EFI_X86_64)...), 67); r == nil || r.BootFileName != "snponly.efi" {
				t.Errorf("UEFI client got %v, want snponly.efi", r)
			}
			if !strings.Contains(buf.String(), tc.why) {
				t.Errorf("the log does not say why (%q):\n%s", tc.why, buf)
			}
			if _, _, err := s.files.openTFTP("secureboot/shimx64.efi"); err == nil {
				t.Error("shim served while UEFI clients get iPXE")
			}
		})
	}
}
