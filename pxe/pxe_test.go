package pxe

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

const exampleRules = `clients:
  - mac: "52:54:00:12:34:56"
    args: "lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff"
  - mac: "*"          # everyone else
    args: ""          # boot to the menu
`

func TestParseRules(t *testing.T) {
	r, err := ParseRules([]byte(exampleRules))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Clients) != 2 || r.Clients[0].Line != 2 || r.Clients[1].Line != 4 {
		t.Fatalf("rules %+v", r.Clients)
	}
	for _, tc := range []struct{ mac, args string }{
		{"52:54:00:12:34:56", "lifeboat.action=restore"},
		{"52:54:00:AB:CD:EF", ""},
	} {
		hw, _ := net.ParseMAC(tc.mac)
		rule, ok := r.Match(hw)
		if !ok || !strings.HasPrefix(rule.Args, tc.args) {
			t.Errorf("%s: got %+v %v", tc.mac, rule, ok)
		}
	}
	upper, _ := net.ParseMAC("52:54:00:12:34:56")
	if rule, _ := r.Match(upper); rule.Line != 2 {
		t.Errorf("first match must win, got line %d", rule.Line)
	}
	bad := []struct{ name, yaml, want string }{
		{"empty", "", "empty"},
		{"no clients", "foo: 1\n", "field foo not found"},
		{"bad mac", "clients:\n  - mac: \"52:54:00\"\n    args: x\n", "line 2: mac"},
		{"missing mac", "clients:\n  - args: x\n", "line 2: entry has no mac"},
		{"unknown field", "clients:\n  - mac: \"*\"\n    arg: x\n", "line 3: field arg not found"},
		{"newline in args", "clients:\n  - mac: \"*\"\n    args: \"a\\nshell\"\n", "line 2: args contain a control character"},
		{"bad yaml", "clients:\n  - mac: [\n", "line"},
		{"ipxe expansion", "clients:\n  - mac: \"*\"\n    args: \"${net0/ip}\"\n", "line 2: args contain ${"},
		{"single quote", "clients:\n  - mac: \"*\"\n    args: \"lifeboat.image=/it's.lbi\"\n", "line 2: args contain a single quote"},
		{"backslash", "clients:\n  - mac: \"*\"\n    args: 'lifeboat.image=C:\\x.lbi'\n", "line 2: args contain a single quote or a backslash"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"undionly.kpxe", true}, {"rescue/vmlinuz", true}, {"a/b/c.lbi", true},
		{"../../etc/passwd", false}, {"/etc/passwd", false}, {"rescue/../../x", false},
		{".hidden", false}, {"a/.git/config", false}, {"a\\..\\b", false}, {"", false},
		{".", false}, {"a//b", false}, {"a/", false}, {"x\x00y", false},
	} {
		if _, err := cleanName(tc.name); (err == nil) != tc.ok {
			t.Errorf("cleanName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestDefaults(t *testing.T) {
	r, err := defaultPool(netip.MustParsePrefix("192.168.77.1/24"))
	if err != nil || r.String() != "192.168.77.128-192.168.77.254" {
		t.Errorf("pool %v %v", r, err)
	}
	r, _ = defaultPool(netip.MustParsePrefix("10.1.2.3/16"))
	if r.String() != "10.1.128.0-10.1.255.254" {
		t.Errorf("pool %v", r)
	}
	if _, err := defaultPool(netip.MustParsePrefix("10.0.0.1/30")); err == nil {
		t.Error("a /30 must have no default pool")
	}
	for in, want := range map[string]string{"10.0.0.5-10.0.0.9": "10.0.0.5-10.0.0.9", "10.0.0.128/25": "10.0.0.129-10.0.0.254"} {
		if r, err := ParseRange(in); err != nil || r.String() != want {
			t.Errorf("ParseRange(%s) = %v %v", in, r, err)
		}
	}
	for _, in := range []string{"10.0.0.9-10.0.0.5", "x", "::1-::2"} {
		if _, err := ParseRange(in); err == nil {
			t.Errorf("ParseRange(%s) accepted", in)
		}
	}
}

func TestLeasesSticky(t *testing.T) {
	file := filepath.Join(t.TempDir(), "l.json")
	pool, _ := ParseRange("10.0.0.10-10.0.0.12")
	now := time.Unix(1e9, 0)
	open := func() *leases {
		l, err := openLeases(file, pool, netip.MustParseAddr("10.0.0.11"))
		if err != nil {
			t.Fatal(err)
		}
		l.now = func() time.Time { return now }
		return l
	}
	l := open()
	a, _ := l.offer("aa", netip.Addr{})
	b, _ := l.offer("bb", netip.Addr{})
	if a.String() != "10.0.0.10" || b.String() != "10.0.0.12" {
		t.Fatalf("offers %v %v (10.0.0.11 is excluded)", a, b)
	}
	if _, err := l.offer("cc", netip.Addr{}); err != errPoolFull {
		t.Fatalf("third offer: %v", err)
	}
	if err := l.commit("bb", b, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := l.commit("aa", b, time.Hour); err == nil {
		t.Fatal("gave bb's address to aa")
	}
	// Restart: bb gets its address back even after it expired.
	now = now.Add(2 * time.Hour)
	l = open()
	if got, _ := l.offer("bb", netip.Addr{}); got != b {
		t.Errorf("after restart bb got %v, want %v", got, b)
	}
	if got, _ := l.offer("dd", b); got == b {
		t.Errorf("dd got bb's held address")
	}
}

func discover(mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	hw, _ := net.ParseMAC(mac)
	d, _ := dhcpv4.NewDiscovery(hw, mods...)
	return d
}

func pxeClient(arch iana.Arch) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
	}
}

func TestHandleDHCPBootFiles(t *testing.T) {
	s := offlineServer(t, Config{})
	ipxe := append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", false))
	for _, tc := range []struct {
		name string
		mods []dhcpv4.Modifier
		file string
	}{
		{"bios", pxeClient(iana.INTEL_X86PC), "undionly.kpxe"},
		{"uefi7", pxeClient(iana.EFI_X86_64), "snponly.efi"},
		{"uefi9", pxeClient(iana.EFI_BC), "snponly.efi"},
		{"ipxe", ipxe, "http://192.168.77.1/boot.ipxe?mac=52:54:00:00:00:01"},
		{"plain", nil, ""},
		{"arm", pxeClient(iana.EFI_ARM64), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.handleDHCP(discover("52:54:00:00:00:01", tc.mods...), 67)
			if r == nil || r.MessageType() != dhcpv4.MessageTypeOffer {
				t.Fatalf("reply %v", r)
			}
			if r.BootFileName != tc.file {
				t.Errorf("boot file %q, want %q", r.BootFileName, tc.file)
			}
			if r.Options.Has(dhcpv4.OptionClassIdentifier) {
				t.Error("full-mode replies must not carry option 60")
			}
			if got := r.Options.Has(optIPXEEncap); got != (tc.name == "ipxe") {
				t.Errorf("option 175 present=%v", got)
			}
		})
	}
}

// httpServer runs the HTTP handler on loopback.
func httpServer(t testing.TB, s *Server) *httptest.Server {
	h := httptest.NewServer(s.httpHandler())
	t.Cleanup(h.Close)
	return h
}

func get(t *testing.T, url string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestHTTP(t *testing.T) {
	rules, _ := ParseRules([]byte(exampleRules))
	images := t.TempDir()
	img := bytes.Repeat([]byte("0123456789"), 100000)
	os.WriteFile(filepath.Join(images, "pc1.lbi"), img, 0o644)
	os.WriteFile(filepath.Join(images, ".secret"), []byte("no"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(images, "passwd"))
	s := offlineServer(t, Config{Rules: rules, Images: images, HTTPPort: 8080, Log: testLogger(t)})
	h := httpServer(t, s)

	// A client not seen before, without ?mac, is asked for its MAC address.
	_, b := get(t, h.URL+"/boot.ipxe")
	if !strings.Contains(string(b), "chain http://192.168.77.1:8080/boot.ipxe?mac=${netX/mac}") {
		t.Errorf("unknown client's script:\n%s", b)
	}
	// The job goes only to the client itself (here: on loopback, known by
	// its port-4011 request).
	seenAt(t, s, "52:54:00:12:34:56", "127.0.0.1")
	code, b := get(t, h.URL+"/boot.ipxe?mac=52-54-00-12-34-56")
	script := string(b)
	for _, want := range []string{
		"#!ipxe\n",
		"kernel http://192.168.77.1:8080/rescue/vmlinuz initrd=initramfs console=ttyS0,115200 quiet lifeboat.action=restore lifeboat.image=http://192.168.77.1:8080/images/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff lifeboat.report=http://192.168.77.1:8080/api/report/52:54:00:12:34:56?token=",
		"initrd http://192.168.77.1:8080/rescue/initramfs\n", "boot\n",
	} {
		if code != 200 || !strings.Contains(script, want) {
			t.Errorf("script for the restore client lacks %q:\n%s", want, script)
		}
	}
	_, b = get(t, h.URL+"/boot.ipxe?mac=52:54:00:ab:cd:ef")
	if strings.Contains(string(b), "lifeboat.") || !strings.Contains(string(b), "quiet\n") {
		t.Errorf("menu client's script:\n%s", b)
	}

	code, b = get(t, h.URL+"/images/pc1.lbi", "Range", "bytes=100-109")
	if code != http.StatusPartialContent || string(b) != "0123456789" {
		t.Errorf("range: %d %q", code, b)
	}
	code, b = get(t, h.URL+"/rescue/initramfs")
	if code != 200 || int64(len(b)) != s.info.Files["initramfs"].Size {
		t.Errorf("initramfs: %d, %d bytes", code, len(b))
	}
	for _, p := range []string{"/images/..%2f..%2f..%2fetc%2fpasswd", "/images/.secret", "/images/passwd", "/rescue/evil", "/images/%2fetc%2fpasswd", "/rescue/..%5c..%5cbundle.json", "/images/"} {
		code, b := get(t, h.URL+p)
		if code == 200 {
			t.Errorf("%s served: %q", p, b)
		}
	}

	report := reportArg.FindStringSubmatch(script)
	if report == nil {
		t.Fatalf("no report URL in the script:\n%s", script)
	}
	resp, err := http.Post(h.URL+report[1], "text/plain", strings.NewReader("noise\nLIFEBOAT-RESULT status=ok exit=0 action=restore\n"))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %v %v", resp, err)
	}
	var found bool
	for _, c := range s.Clients() {
		if c.MAC == "52:54:00:12:34:56" && c.Stage == StageDone && c.Result == "LIFEBOAT-RESULT status=ok exit=0 action=restore" {
			found = true
		}
	}
	_, b = get(t, h.URL+"/api/status")
	if !found || !strings.Contains(string(b), `"stage": "done"`) {
		t.Errorf("status after report: %s", b)
	}
}
