package pxe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// capturedLogger logs to the test and to the returned buffer.
func capturedLogger(t testing.TB) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	h := slog.NewTextHandler(io.MultiWriter(buf, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), buf
}

// seenAt makes the server know mac at ip the way a UEFI client in proxy
// mode introduces itself: a port-4011 request with ciaddr.
func seenAt(t testing.TB, s *Server, mac, ip string) {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	req, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.ParseIP(ip)))
	for _, m := range pxeClient(iana.EFI_X86_64) {
		m(req)
	}
	if r := s.handleDHCP(req, pxePort); r == nil {
		t.Fatalf("no reply to %s's port-4011 request", mac)
	}
}

var reportArg = regexp.MustCompile(`lifeboat\.report=http://[^/ ]+(/\S*)`)

// bootScript fetches mac's iPXE script and returns it with the path and
// query of its report URL ("" when it has none).
func bootScript(t testing.TB, h string, mac string) (code int, script, report string) {
	t.Helper()
	resp, err := http.Get(h + "/boot.ipxe?mac=" + mac)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := reportArg.FindStringSubmatch(string(b)); m != nil {
		report = m[1]
	}
	return resp.StatusCode, string(b), report
}

func postReport(t testing.TB, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func clientOf(s *Server, mac string) ClientStatus {
	for _, c := range s.Clients() {
		if c.MAC == mac {
			return c
		}
	}
	return ClientStatus{}
}

const tokenRules = `clients:
  - mac: "52:54:00:12:34:56"
    args: "lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi lifeboat.target=first-empty-disk"
  - mac: "52:54:00:99:*"
    args: "lifeboat.action=restore lifeboat.image=http://{server}/images/x.lbi lifeboat.report=http://{server}/api/report/{mac}?token={token}&via=rule"
  - mac: "*"
    args: ""
`

// Defect 2 of issue 12: a report is accepted only with the token of the
// client's current boot, which only the client's own script carries; a
// forged report never changes the client's stage; tokens are never logged.
func TestReportNeedsTheBootToken(t *testing.T) {
	rules, err := ParseRules([]byte(tokenRules))
	if err != nil {
		t.Fatal(err)
	}
	log, logBuf := capturedLogger(t)
	s := offlineServer(t, Config{Rules: rules, HTTPPort: 8080, Log: log})
	h := httpServer(t, s)
	const mac = "52:54:00:12:34:56"
	seenAt(t, s, mac, "127.0.0.1")

	want := regexp.MustCompile(`^/api/report/52:54:00:12:34:56\?token=([0-9a-f]{32})$`)
	_, script, u1 := bootScript(t, h.URL, mac)
	m := want.FindStringSubmatch(u1)
	if m == nil {
		t.Fatalf("report URL %q has no token of 32 hex digits; script:\n%s", u1, script)
	}
	tok1 := m[1]
	if st := clientOf(s, mac).Stage; st != StageScript {
		t.Fatalf("stage after the script: %v", st)
	}
	ok := "LIFEBOAT-RESULT status=ok exit=0 action=restore\n"
	failed := "LIFEBOAT-RESULT status=failed exit=1 action=restore reason=\"forged\"\n"
	for _, u := range []string{
		"/api/report/" + mac,
		"/api/report/" + mac + "?token=",
		"/api/report/" + mac + "?token=" + strings.Repeat("0", 32),
		"/api/report/" + mac + "?token=" + tok1[:31],
		"/api/report/" + mac + "?token=" + tok1 + "0",
		"/api/report/" + mac + "?token=" + strings.ToUpper(tok1),
		"/api/report/52:54:00:12:34:57?token=" + tok1, // another MAC
	} {
		if code := postReport(t, h.URL+u, failed); code != http.StatusForbidden {
			t.Errorf("forged report %s: status %d, want 403", u, code)
		}
	}
	if c := clientOf(s, mac); c.Stage != StageScript || c.Result != "" {
		t.Errorf("forged reports changed the client: %+v", c)
	}
	if c := clientOf(s, "52:54:00:12:34:57"); c.MAC != "" {
		t.Errorf("a forged report created a client: %+v", c)
	}

	// A new boot: a new token, the old one is dead.
	_, _, u2 := bootScript(t, h.URL, mac)
	m = want.FindStringSubmatch(u2)
	if m == nil || m[1] == tok1 {
		t.Fatalf("second boot's report URL %q: want a new token", u2)
	}
	tok2 := m[1]
	if code := postReport(t, h.URL+u1, failed); code != http.StatusForbidden {
		t.Errorf("old boot's token: status %d, want 403", code)
	}
	if code := postReport(t, h.URL+u2, ok); code != http.StatusNoContent {
		t.Errorf("the client's own report: status %d, want 204", code)
	}
	if c := clientOf(s, mac); c.Stage != StageDone || !strings.HasPrefix(c.Result, "LIFEBOAT-RESULT status=ok") {
		t.Errorf("after the client's report: %+v", c)
	}

	// A rule with its own report URL gets the token through {token}.
	const mac2 = "52:54:00:99:00:01"
	seenAt(t, s, mac2, "127.0.0.1")
	_, script, u3 := bootScript(t, h.URL, mac2)
	m = regexp.MustCompile(`^/api/report/52:54:00:99:00:01\?token=([0-9a-f]{32})&via=rule$`).FindStringSubmatch(u3)
	if m == nil || strings.Count(script, "lifeboat.report=") != 1 {
		t.Fatalf("rule's report URL %q; script:\n%s", u3, script)
	}
	if code := postReport(t, h.URL+u3, ok); code != http.StatusNoContent {
		t.Errorf("report through the rule's URL: status %d", code)
	}

	out := logBuf.String()
	for _, tok := range []string{tok1, tok2, m[1]} {
		if strings.Contains(out, tok) {
			t.Errorf("the log contains a token:\n%s", out)
		}
	}
	if !strings.Contains(out, "report refused") {
		t.Errorf("forged reports were not logged:\n%s", out)
	}
}

// Defect 2: /boot.ipxe?mac=X shows X's job arguments only to X.
func TestScriptArgsOnlyForTheClient(t *testing.T) {
	rules, _ := ParseRules([]byte(tokenRules))
	log, logBuf := capturedLogger(t)
	s := offlineServer(t, Config{Rules: rules, Log: log})
	h := httpServer(t, s)
	const mac = "52:54:00:12:34:56"
	for _, step := range []struct {
		name string
		seen string // where the server last saw mac
		args bool
	}{
		{"never seen", "", false},
		{"seen at another address", "192.168.77.9", false},
		{"seen at the requester's address", "127.0.0.1", true},
	} {
		if step.seen != "" {
			seenAt(t, s, mac, step.seen)
		}
		code, script, report := bootScript(t, h.URL, mac)
		if got := strings.Contains(script, "lifeboat.action=") || report != ""; got != step.args {
			t.Errorf("%s: job arguments shown=%v, want %v (status %d):\n%s", step.name, got, step.args, code, script)
		}
	}
	if !strings.Contains(logBuf.String(), "not the address of that client") {
		t.Errorf("no warning in the log:\n%s", logBuf)
	}
	// A client without a job needs no check: the menu is no secret.
	if code, script, _ := bootScript(t, h.URL, "52:54:00:ab:cd:ef"); code != 200 || !strings.Contains(script, "kernel ") {
		t.Errorf("menu client: %d\n%s", code, script)
	}
}

// Defect 3: the status table stays bounded under forged reports and
// discovers from thousands of MACs; a client in the middle of its job
// keeps its entry and its token; texts are bounded; /api/status pages.
func TestStatusBounded(t *testing.T) {
	rules, _ := ParseRules([]byte(tokenRules))
	const max = 100
	s := offlineServer(t, Config{Proxy: true, Rules: rules, MaxClients: max})
	h := httpServer(t, s)
	const mac = "52:54:00:12:34:56"
	seenAt(t, s, mac, "127.0.0.1")
	_, _, u := bootScript(t, h.URL, mac)

	for i := range 5000 {
		m := fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, byte(i>>8), byte(i))
		s.handleDHCP(discover(m, pxeClient(iana.INTEL_X86PC)...), 67)
	}
	if n := len(s.Clients()); n > max {
		t.Errorf("%d clients after 5000 discovers, want at most %d", n, max)
	}
	long := "LIFEBOAT-RESULT status=failed " + strings.Repeat("x", 60000) + "\n"
	for i := range 3000 {
		m := fmt.Sprintf("06:00:00:%02x:%02x:%02x", i>>16, byte(i>>8), byte(i))
		postReport(t, h.URL+"/api/report/"+m, long)
	}
	if n := len(s.Clients()); n > max {
		t.Errorf("%d clients after 3000 forged reports, want at most %d", n, max)
	}
	if code := postReport(t, h.URL+u, "LIFEBOAT-RESULT status=ok "+strings.Repeat("y", 60000)+"\n"); code != http.StatusNoContent {
		t.Fatalf("the mid-job client's report after the flood: %d", code)
	}
	c := clientOf(s, mac)
	if c.Stage != StageDone || len(c.Result) > maxText+len("…") || len(c.Event) > maxText+len("…") {
		t.Errorf("mid-job client after the flood: stage %v, result %d bytes, event %d bytes", c.Stage, len(c.Result), len(c.Event))
	}

	var all []ClientStatus
	_, b := get(t, h.URL+"/api/status")
	if err := json.Unmarshal(b, &all); err != nil || len(all) == 0 || len(all) > max {
		t.Fatalf("/api/status: %d entries, %v", len(all), err)
	}
	var page []ClientStatus
	_, b = get(t, h.URL+"/api/status?offset=10&limit=7")
	if err := json.Unmarshal(b, &page); err != nil || len(page) != 7 || page[0].MAC != all[10].MAC {
		t.Errorf("/api/status?offset=10&limit=7: %d entries, %v", len(page), err)
	}
	if code, _ := get(t, h.URL+"/api/status?limit=x"); code != http.StatusBadRequest {
		t.Errorf("limit=x: status %d", code)
	}
}

func dhcpMsg(mac string, mt dhcpv4.MessageType, ip netip.Addr) *dhcpv4.DHCPv4 {
	hw, _ := net.ParseMAC(mac)
	m, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("192.168.77.1"))))
	return m
}

// handshake runs discover, offer, request, ack; zero means no address.
func handshake(t testing.TB, s *Server, mac string) netip.Addr {
	t.Helper()
	o := s.handleDHCP(discover(mac), 67)
	if o == nil {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(o.YourIPAddr.To4())
	a := s.handleDHCP(dhcpMsg(mac, dhcpv4.MessageTypeRequest, ip), 67)
	if a == nil || a.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("%s: request for %v: %v", mac, ip, a)
		return netip.Addr{}
	}
	return ip
}

// Defect 3: DECLINEs count only from the client that holds the address,
// and a declined address comes back after the conflict hold.
func TestDeclineOnlyFromTheHolder(t *testing.T) {
	pool, _ := ParseRange("192.168.77.200-192.168.77.209")
	log, logBuf := capturedLogger(t)
	s := offlineServer(t, Config{Pool: pool, DeclineHold: 10 * time.Minute, Log: log})
	now := time.Unix(1e9, 0)
	s.leases.now = func() time.Time { return now }

	holder := handshake(t, s, "52:54:00:00:00:0a")
	// The case: 20 forged DECLINEs from a foreign MAC.
	for i := range 20 {
		a := pool.First
		for range i % 10 {
			a = a.Next()
		}
		s.handleDHCP(dhcpMsg("02:66:66:66:66:66", dhcpv4.MessageTypeDecline, a), 67)
	}
	if !strings.Contains(logBuf.String(), "DECLINE ignored") {
		t.Errorf("forged DECLINEs were not logged")
	}
	got := map[netip.Addr]bool{holder: true}
	for i := range 9 {
		ip := handshake(t, s, fmt.Sprintf("52:54:00:00:01:%02x", i))
		if !ip.IsValid() || got[ip] {
			t.Fatalf("client %d after forged DECLINEs got %v (taken: %v)", i, ip, got)
		}
		got[ip] = true
	}
	if a := s.handleDHCP(dhcpMsg("52:54:00:00:00:0a", dhcpv4.MessageTypeRequest, holder), 67); a == nil || a.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("holder's renewal after forged DECLINEs: %v", a)
	}

	// The holder's own DECLINE: the address stays out for the hold.
	s.handleDHCP(dhcpMsg("52:54:00:00:00:0a", dhcpv4.MessageTypeDecline, holder), 67)
	if o := s.handleDHCP(discover("52:54:00:00:02:01"), 67); o != nil {
		t.Errorf("declined address offered within the hold: %v", o.YourIPAddr)
	}
	now = now.Add(11 * time.Minute)
	if ip := handshake(t, s, "52:54:00:00:02:01"); ip != holder {
		t.Errorf("after the hold got %v, want the declined %v back", ip, holder)
	}
}

// Defect 3: a flood of discovers from random MACs neither takes known
// clients' addresses nor stops new clients; a full pool keeps renewals
// going and logs "pool full" rarely.
func TestDiscoverFloodKeepsKnownClients(t *testing.T) {
	pool, _ := ParseRange("192.168.77.200-192.168.77.219")
	log, logBuf := capturedLogger(t)
	s := offlineServer(t, Config{Pool: pool, MaxOffers: 8, LeaseTime: time.Minute, Log: log})
	now := time.Unix(1e9, 0)
	s.leases.now = func() time.Time { return now }
	known := map[string]netip.Addr{}
	for i := range 5 {
		mac := fmt.Sprintf("52:54:00:00:00:%02x", i)
		known[mac] = handshake(t, s, mac)
	}
	now = now.Add(2 * time.Hour) // their leases expired: machines off overnight

	for i := range 3000 {
		s.handleDHCP(discover(fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, byte(i>>8), byte(i))), 67)
	}
	offers := 0
	for _, l := range s.Leases() {
		if l.Offered && l.Expires.After(now) {
			offers++
		}
	}
	if offers > 8 {
		t.Errorf("%d outstanding offers, want at most 8", offers)
	}
	for mac, ip := range known {
		if got := handshake(t, s, mac); got != ip {
			t.Errorf("known client %s after the flood got %v, want its %v", mac, got, ip)
		}
	}
	if ip := handshake(t, s, "52:54:00:00:01:01"); !ip.IsValid() {
		t.Errorf("a new client got no address during the flood")
	}
	// Requests without an offer (INIT-REBOOT for addresses the server
	// never gave those MACs) take nothing either.
	for i := range 500 {
		a := pool.First
		for range i % 20 {
			a = a.Next()
		}
		m := dhcpMsg(fmt.Sprintf("02:00:02:00:%02x:%02x", byte(i>>8), byte(i)), dhcpv4.MessageTypeRequest, a)
		m.Options.Del(dhcpv4.OptionServerIdentifier)
		if r := s.handleDHCP(m, 67); r != nil && r.MessageType() == dhcpv4.MessageTypeAck {
			t.Fatalf("request for %v without an offer was acked", a)
		}
	}

	// Fill the pool with acked leases: discovers are refused, quietly;
	// renewals go on.
	for i := range 30 {
		handshake(t, s, fmt.Sprintf("52:54:00:00:03:%02x", i))
	}
	for i := range 1000 {
		s.handleDHCP(discover(fmt.Sprintf("02:00:01:%02x:%02x:%02x", i>>16, byte(i>>8), byte(i))), 67)
	}
	if n := strings.Count(logBuf.String(), "no address to offer"); n == 0 || n > 3 {
		t.Errorf("%d \"no address to offer\" lines for 1000 discovers into a full pool, want 1 to 3", n)
	}
	for mac, ip := range known {
		if a := s.handleDHCP(dhcpMsg(mac, dhcpv4.MessageTypeRequest, ip), 67); a == nil || a.MessageType() != dhcpv4.MessageTypeAck {
			t.Errorf("renewal of %s in a full pool: %v", mac, a)
		}
	}
}

// Defect 6 (lease file): the temporary file is synced before the rename
// and the directory after it.
func TestLeaseFileSynced(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "leases.json")
	pool, _ := ParseRange("10.0.0.10-10.0.0.12")
	l, err := openLeases(file, pool)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	l.fsync = func(f *os.File) error {
		b, _ := os.ReadFile(file)
		calls = append(calls, fmt.Sprintf("%s renamed=%v", f.Name(), len(b) > 0))
		return f.Sync()
	}
	ip, err := l.offer("aa", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.commit("aa", ip, time.Hour); err != nil {
		t.Fatal(err)
	}
	tmp := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `\.[0-9]+\.tmp renamed=false$`)
	if len(calls) != 2 || !tmp.MatchString(calls[0]) || calls[1] != dir+" renamed=true" {
		t.Errorf("syncs %q, want a temporary file beside %s before the rename and %s after it", calls, file, dir)
	}
	if left, _ := filepath.Glob(file + ".*"); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("lease file: %v %v, want mode 0644", st.Mode(), err)
	}
}

// Defect 5: what a client sends reaches neither the status table, nor
// /api/status, nor the log with control characters or invalid UTF-8.
func TestClientTextSanitized(t *testing.T) {
	rules, _ := ParseRules([]byte(tokenRules))
	log, logBuf := capturedLogger(t)
	images := t.TempDir()
	s := offlineServer(t, Config{Rules: rules, Images: images, Log: log})
	h := httpServer(t, s)
	const mac = "52:54:00:12:34:56"
	seenAt(t, s, mac, "127.0.0.1")
	_, _, u := bootScript(t, h.URL, mac)
	evil := "\x1b]0;owned\a\x1b[2J"
	postReport(t, h.URL+u, "LIFEBOAT-RESULT status=failed reason=\""+evil+"\xff\xfe\u202e\x9b31m\"\n")
	get(t, h.URL+"/images/%1b%5b2J%07x.lbi")
	get(t, h.URL+"/images/%1b]0;owned%07", "Range", "bytes=0-1")

	c := clientOf(s, mac)
	if !strings.Contains(c.Result, "reason=") {
		t.Fatalf("report not stored: %+v", c)
	}
	_, status := get(t, h.URL+"/api/status")
	var back []ClientStatus
	json.Unmarshal(status, &back)
	table := StatusTable(s.Clients(), time.Now())
	for what, text := range map[string]string{
		"result": c.Result, "event": c.Event, "status table": table, "log": logBuf.String(),
		"/api/status result": fmt.Sprint(back),
	} {
		if i := strings.IndexFunc(text, func(r rune) bool { return r != '\n' && badRune(r) }); i >= 0 || !utf8.ValidString(text) {
			t.Errorf("%s carries a control character or invalid UTF-8 (at %d): %q", what, i, text)
		}
	}
}

// badRune is what must not reach a terminal: control characters (C0,
// DEL, C1), format characters (bidirectional overrides, zero-width) and
// line or paragraph separators. (The test's own copy of unsafeRune.)
func badRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"\x1b]0;owned\a\x1b[2J", `\x1b]0;owned\x07\x1b[2J`},
		{"a\tb\r\nc", `a\x09b\x0d\x0ac`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"c1 \u009b31m", `c1 \x9b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"ünïcode ok", "ünïcode ok"},
		{strings.Repeat("é", 10), "éééé…"},
	} {
		max := 512
		if strings.HasPrefix(tc.in, "é") {
			max = 9
		}
		if got := clean(tc.in, max); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClean: whatever goes in, what comes out is valid UTF-8 without
// control characters and no longer than the bound.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b]0;owned\a\x1b[2J", "\xff\xfe", "\u202e", strings.Repeat("é", 300)} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max%1024 + 1
		if max < 1 {
			max += 1024
		}
		got := clean(s, max)
		if !utf8.ValidString(got) || len(got) > max+len("…") {
			t.Fatalf("clean(%q, %d) = %q", s, max, got)
		}
		if i := strings.IndexFunc(got, badRune); i >= 0 {
			t.Fatalf("clean(%q, %d) = %q: control character at %d", s, max, got, i)
		}
	})
}

// Credentials named by a rule are handed to the client of the rule only:
// with its current boot's token, from its own address, once per boot; the
// keys never reach the log or the arguments.
func TestCredentialsOncePerBoot(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "s3.cred")
	const secret = "aws_secret_access_key = do-not-log-me"
	os.WriteFile(cred, []byte("[default]\naws_access_key_id = K\n"+secret+"\n"), 0o600)
	rules, err := ParseRules([]byte(`clients:
  - mac: "52:54:00:12:34:56"
    args: "lifeboat.action=restore lifeboat.image=s3://b/pc1.lbi lifeboat.target=first-empty-disk"
    credentials: ` + cred + `
  - mac: "52:54:00:12:34:57"
    args: "lifeboat.action=restore lifeboat.image=s3://b/pc2.lbi lifeboat.target=first-empty-disk"
`))
	if err != nil {
		t.Fatal(err)
	}
	log, logBuf := capturedLogger(t)
	s := offlineServer(t, Config{Rules: rules, HTTPPort: 8080, Log: log})
	h := httpServer(t, s)
	const mac = "52:54:00:12:34:56"
	seenAt(t, s, mac, "127.0.0.1")
	credArg := regexp.MustCompile(`lifeboat\.credentials=http://[^/ ]+(/api/credentials/52:54:00:12:34:56\?token=([0-9a-f]{32}))\s`)
	_, script, _ := bootScript(t, h.URL, mac)
	m := credArg.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("the script has no credentials URL with a token:\n%s", script)
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(h.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, u := range []string{
		"/api/credentials/" + mac,
		"/api/credentials/" + mac + "?token=" + strings.Repeat("0", 32),
		"/api/credentials/52:54:00:12:34:57?token=" + m[2], // a rule without credentials
		"/api/credentials/52:54:00:12:34:58?token=" + m[2], // no rule
	} {
		if code, body := get(u); code != http.StatusForbidden || strings.Contains(body, secret) {
			t.Errorf("%s: %d %q, want 403", u, code, body)
		}
	}
	if code, body := get(m[1]); code != http.StatusOK || !strings.Contains(body, secret) {
		t.Fatalf("the client's own fetch: %d %q", code, body)
	}
	if code, _ := get(m[1]); code != http.StatusForbidden {
		t.Errorf("a second fetch in the same boot: %d, want 403", code)
	}
	// A new boot fetches them again; the old boot's URL stays dead.
	_, script, _ = bootScript(t, h.URL, mac)
	m2 := credArg.FindStringSubmatch(script)
	if m2 == nil || m2[2] == m[2] {
		t.Fatalf("second boot: %v", m2)
	}
	if code, _ := get(m[1]); code != http.StatusForbidden {
		t.Errorf("the first boot's URL after a new boot: %d, want 403", code)
	}
	// From an address that is not the client's: refused even with the
	// right token.
	seenAt(t, s, mac, "127.0.0.2")
	if code, _ := get(m2[1]); code != http.StatusForbidden {
		t.Errorf("a fetch from another address: %d, want 403", code)
	}
	if out := logBuf.String(); strings.Contains(out, "do-not-log-me") || strings.Contains(out, m[2]) || strings.Contains(out, m2[2]) {
		t.Errorf("the log holds the keys or a token:\n%s", out)
	}
	if !strings.Contains(logBuf.String(), "credentials sent") || !strings.Contains(logBuf.String(), "credentials refused") {
		t.Errorf("the log does not say what was sent and refused:\n%s", logBuf.String())
	}

	// Rules: credentials must be an absolute path and not doubled in args;
	// a server refuses to start with a file it cannot read.
	for in, want := range map[string]string{
		"clients:\n  - mac: \"*\"\n    args: \"x\"\n    credentials: s3.cred\n":                          "absolute path",
		"clients:\n  - mac: \"*\"\n    args: \"lifeboat.credentials=LABEL=K:/c\"\n    credentials: /c\n": "keep one",
	} {
		if _, err := ParseRules([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rules %q: %v, want %q", in, err, want)
		}
	}
	missing, _ := ParseRules([]byte("clients:\n  - mac: \"*\"\n    args: \"x\"\n    credentials: " + filepath.Join(dir, "none") + "\n"))
	b, i, _ := testBundle(t)
	if _, err := newServer(Config{Rules: missing, Bundle: b, IPXEDir: i, Interface: "test0", LeaseFile: filepath.Join(dir, "leases.json"), HTTPPort: 8080, Log: log}, netip.MustParsePrefix("192.168.77.1/24")); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("a server with a missing credentials file: %v", err)
	}
}
