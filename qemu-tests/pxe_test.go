//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// lab is a private network the test makes and removes: a namespace with a
// bridge (the server's side, 192.168.77.1/24) and one tap device per VM.
// Nothing touches the machine's real interfaces.
type lab struct {
	ns   string
	taps []string
}

const labAddr = "192.168.77.1"

func newLab(t testing.TB, vms int) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root; run make test as root")
	}
	l := &lab{ns: fmt.Sprintf("lbpxe-%d-%d", os.Getpid(), rand.IntN(1e6))}
	sh(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	ip := func(args ...string) { sh(t, "ip", append([]string{"-n", l.ns}, args...)...) }
	ip("link", "set", "lo", "up")
	ip("link", "add", "br0", "type", "bridge")
	ip("addr", "add", labAddr+"/24", "dev", "br0")
	ip("link", "set", "br0", "up")
	for i := range vms {
		tap := fmt.Sprintf("tap%d", i)
		ip("tuntap", "add", "dev", tap, "mode", "tap")
		ip("link", "set", tap, "master", "br0")
		ip("link", "set", tap, "up")
		l.taps = append(l.taps, tap)
	}
	return l
}

// join makes a second namespace, NS-suffix, on the lab's segment: a veth
// pair with one end on the bridge and the other, peer, in the new
// namespace with the given addresses. It returns the namespace's name.
func (l *lab) join(t testing.TB, suffix, peer string, addrs ...string) string {
	t.Helper()
	ns := l.ns + "-" + suffix
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	bridgeSide := "vb" + suffix
	sh(t, "ip", "-n", l.ns, "link", "add", bridgeSide, "type", "veth", "peer", "name", peer, "netns", ns)
	sh(t, "ip", "-n", l.ns, "link", "set", bridgeSide, "master", "br0", "up")
	for _, a := range addrs {
		sh(t, "ip", "-n", ns, "addr", "add", a, "dev", peer)
	}
	sh(t, "ip", "-n", ns, "link", "set", peer, "up")
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// restoreFixture makes a 48 MiB ext4 source filesystem, its image
// pc1.lbi in an images folder, and a rules file that restores imageURL
// onto every client's first empty disk and powers off.
func restoreFixture(t testing.TB, imageURL string) (dir, src, imgs, rules string) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "source.img")
	sourceFS(t, src, 48<<20)
	imgs = filepath.Join(dir, "images")
	os.Mkdir(imgs, 0o755)
	sh(t, lifeboatBin(t), "backup", "part", src, "-o", filepath.Join(imgs, "pc1.lbi"))
	rules = filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(`clients:
  - mac: "*"
    args: "lifeboat.action=restore lifeboat.image=`+imageURL+` lifeboat.target=first-empty-disk lifeboat.done=poweroff"
`), 0o644)
	return dir, src, imgs, rules
}

// start runs a process inside the namespace until the test ends.
func (l *lab) start(t testing.TB, log io.Writer, name string, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", l.ns, name}, args...)...)
	c.Stdout, c.Stderr = log, log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// syncBuffer collects a server's log for the test to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts `lifeboat pxe serve` in the lab and waits for its HTTP port.
func (l *lab) serve(t testing.TB, extra ...string) *syncBuffer {
	t.Helper()
	log := &syncBuffer{}
	args := append([]string{"pxe", "serve", "--interface", "br0", "--bundle", rescueBundle(t)}, extra...)
	if !slices.Contains(extra, "--proxy") {
		args = append(args, "--lease-file", filepath.Join(t.TempDir(), "leases.json"))
	}
	l.start(t, log, lifeboatBin(t), args...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := l.get("http://" + labAddr + "/api/status")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the PXE server did not start: %s\n%s", out, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(func() { t.Logf("server log:\n%s", log.String()) })
	return log
}

func (l *lab) boot(t testing.TB, i int, fw qemu.Firmware, disks []qemu.Disk) *qemu.VM {
	t.Helper()
	return l.bootWith(t, i, qemu.Options{Firmware: fw, MemoryMB: 512, Disks: disks})
}

// bootWith network-boots VM i on its tap with o's firmware, machine,
// memory and disks.
func (l *lab) bootWith(t testing.TB, i int, o qemu.Options) *qemu.VM {
	t.Helper()
	o.Boot, o.Net, o.NetNS, o.Tap = "n", qemu.NetTap, l.ns, l.taps[i]
	o.MAC = clientMAC(i)
	o.Log = func(f string, a ...any) { t.Logf(fmt.Sprintf("vm%d ", i)+f, a...) }
	return startVM(t, o, 8*time.Minute)
}

// router starts an ordinary DHCP server (dnsmasq) at 192.168.77.2 in a
// namespace of its own on the lab's segment, as a router would be, leasing
// 192.168.77.100–150 with extra dnsmasq arguments; it returns its log,
// which the test's log shows at the end.
func (l *lab) router(t testing.TB, extra ...string) *syncBuffer {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("dnsmasq is missing: run make deps")
	}
	rns := l.join(t, "r", "vethr", "192.168.77.2/24")
	log := &syncBuffer{}
	args := append([]string{"netns", "exec", rns, "dnsmasq", "--no-daemon", "--interface=vethr", "--bind-interfaces",
		"--dhcp-range=192.168.77.100,192.168.77.150,1h", "--log-dhcp",
		"--dhcp-leasefile=" + filepath.Join(t.TempDir(), "dnsmasq.leases"), "--pid-file="}, extra...)
	rc := exec.Command("ip", args...)
	rc.Stdout, rc.Stderr = log, log
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Process.Kill(); rc.Wait() })
	t.Cleanup(func() { t.Logf("router log:\n%s", log.String()) })
	return log
}

// clientMAC is the MAC address of the lab's VM i.
func clientMAC(i int) string { return fmt.Sprintf("52:54:00:12:34:%02x", 0x56+i) }

// 1. A BIOS and a UEFI client PXE-boot to ready from the full-mode server.
func TestPXEBootBIOSAndUEFI(t *testing.T) {
	l := newLab(t, 2)
	l.serve(t)
	var wg sync.WaitGroup
	for i, fw := range []qemu.Firmware{qemu.BIOS, qemu.UEFI} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vm := l.boot(t, i, fw, nil)
			if _, err := vm.Expect(`LIFEBOAT-READY`, 4*time.Minute); err != nil {
				t.Errorf("%v client: %v", fw, err)
			}
		}()
	}
	wg.Wait()
}

// Firmware that only does TFTP: OVMF's own PXE stack (no iPXE option ROM)
// gets snponly.efi over TFTP, which then fetches the script, kernel and
// initramfs over HTTP. (With a Secure Boot capable bundle the server gives
// UEFI clients shim unless told: TestPXESecureBoot boots that way.)
func TestPXEBootNativeUEFI(t *testing.T) {
	l := newLab(t, 1)
	log := l.serve(t, "--uefi-loader", "ipxe")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	vm, err := qemu.Start(ctx, qemu.Options{
		Firmware: qemu.UEFI, Boot: "n", Net: qemu.NetTap, NetNS: l.ns, Tap: l.taps[0], NoNICROM: true,
		MAC: "52:54:00:12:34:56", MemoryMB: 512, Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.Expect(`LIFEBOAT-READY`, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "snponly.efi") {
		t.Errorf("the server log does not show snponly.efi sent over TFTP")
	}
}

// 2. Proxy mode beside an ordinary DHCP server (dnsmasq, the "router"):
// the client boots, our server hands out no address, and the rescue
// environment honours the router's lease: its classless static routes
// (option 121, which replace option 3 by RFC 3442) and its DNS server. The
// image lives at http://images.lab/, a name only the router's DNS knows,
// on 10.99.0.1, an address reachable only by the option-121 route (the
// default route leads to the router, which does not forward).
func TestPXEProxyMode(t *testing.T) {
	dir, src, imgs, rules := restoreFixture(t, "http://images.lab/pc1.lbi")

	l := newLab(t, 1)
	// The "router" lives in a second namespace on the lab's segment, like
	// a real router.
	router := l.router(t, "--port=53", "--no-resolv", "--no-hosts", "--log-queries",
		"--address=/images.lab/10.99.0.1",
		"--dhcp-option=121,10.99.0.0/24,192.168.77.1,0.0.0.0/0,192.168.77.2")

	// The image server: 10.99.0.1 on the lab's loopback.
	sh(t, "ip", "-n", l.ns, "addr", "add", "10.99.0.1/32", "dev", "lo")
	hs := exec.Command("ip", "netns", "exec", l.ns, os.Args[0], "-test.run=^TestHelperHTTPServe$")
	hs.Env = append(os.Environ(), "LB_HTTP_SERVE=10.99.0.1:80", "LB_HTTP_DIR="+imgs)
	hsLog := &syncBuffer{}
	hs.Stdout, hs.Stderr = hsLog, hsLog
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Process.Kill(); hs.Wait() })

	log := l.serve(t, "--proxy", "--rules", rules)
	target := sparse(t, filepath.Join(dir, "target.img"), 48<<20)
	vm := l.boot(t, 0, qemu.BIOS, []qemu.Disk{{Path: target, Bus: qemu.Virtio, Serial: "T0"}})
	if _, err := vm.Expect(`LIFEBOAT-READY`, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	// The network may come up just before READY or after it.
	up := `network: eth0 is up: .* from 192\.168\.77\.2(.*)`
	m := regexp.MustCompile(up).FindStringSubmatch(vm.Console())
	if m == nil {
		var err error
		if m, err = vm.Expect(up, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(m[1], "10.99.0.0/24 via 192.168.77.1") || !strings.Contains(m[1], "DNS [192.168.77.2]") {
		t.Errorf("the rescue environment did not take the router's routes and DNS: %q", m[1])
	}
	m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, 4*time.Minute)
	if err != nil || m[1] != "ok" {
		t.Fatalf("restore over the option-121 route by DNS name: %v %v\nimage server: %s", m, err, hsLog.String())
	}
	want, _ := os.ReadFile(src)
	got, _ := os.ReadFile(target)
	if !bytes.Equal(got[:len(want)], want) {
		t.Errorf("the client's disk does not hold the image")
	}
	if !strings.Contains(router.String(), "DHCPACK") {
		t.Errorf("the ordinary DHCP server acked nothing")
	}
	var st []map[string]any
	statusJSON(t, l, &st)
	for _, c := range st {
		if ip, _ := c["ip"].(string); ip != "" && !strings.HasPrefix(ip, "192.168.77.1") {
			t.Errorf("proxy server leased %v", c)
		}
		if c["mac"] == clientMAC(0) && c["stage"] != "done" {
			t.Errorf("the server did not take the client's report: %v\n%s", c, log.String())
		}
	}
}

// TestHelperHTTPServe serves LB_HTTP_DIR on LB_HTTP_SERVE inside a lab
// namespace, where the test's own process cannot listen.
func TestHelperHTTPServe(t *testing.T) {
	addr := os.Getenv("LB_HTTP_SERVE")
	if addr == "" {
		t.Skip("a helper the PXE tests run inside their network namespace")
	}
	err := http.ListenAndServe(addr, http.FileServer(http.Dir(os.Getenv("LB_HTTP_DIR"))))
	fmt.Println("ERR:", err)
	os.Exit(1)
}

// get fetches a URL from inside the lab: the test binary runs itself there
// (TestHelperHTTPGet), since this process lives outside the namespace.
func (l *lab) get(url string) ([]byte, error) {
	c := exec.Command("ip", "netns", "exec", l.ns, os.Args[0], "-test.run=^TestHelperHTTPGet$")
	c.Env = append(os.Environ(), "LB_HTTP_GET="+url)
	out, err := c.Output()
	if err != nil {
		return out, err
	}
	body, ok := bytes.CutPrefix(out, []byte("BODY:"))
	if !ok {
		return out, fmt.Errorf("helper: %s", out)
	}
	i := bytes.LastIndex(body, []byte("\nPASS"))
	if i >= 0 {
		body = body[:i]
	}
	return body, nil
}

func TestHelperHTTPGet(t *testing.T) {
	url := os.Getenv("LB_HTTP_GET")
	if url == "" {
		t.Skip("a helper the PXE tests run inside their network namespace")
	}
	resp, err := http.Get(url)
	if err != nil {
		fmt.Print("ERR:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Print("ERR:", resp.Status)
		os.Exit(1)
	}
	fmt.Print("BODY:")
	os.Stdout.Write(b)
	os.Exit(0)
}

func statusJSON(t *testing.T, l *lab, v any) {
	t.Helper()
	out, err := l.get("http://" + labAddr + "/api/status")
	if err != nil {
		t.Fatalf("status: %v %s", err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("status %s: %v", out, err)
	}
}

// 3. Mass restore: three clients boot at once and restore the same image
// over HTTP to their blank disks by a "*" rule, and report back.
func TestPXEMassRestore(t *testing.T) {
	dir, src, imgs, rules := restoreFixture(t, "http://{server}/images/pc1.lbi")
	l := newLab(t, 3)
	log := l.serve(t, "--images", imgs, "--rules", rules)
	var wg sync.WaitGroup
	targets := make([]string, 3)
	for i := range 3 {
		targets[i] = sparse(t, filepath.Join(dir, fmt.Sprintf("target%d.img", i)), 64<<20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			vm := l.boot(t, i, qemu.BIOS, []qemu.Disk{{Path: targets[i], Bus: qemu.Virtio, Serial: fmt.Sprintf("T%d", i)}})
			m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+)`, 6*time.Minute)
			if err != nil || m[1] != "ok" {
				t.Errorf("client %d: %v %v", i, m, err)
				return
			}
			if err := vm.Wait(time.Minute); err != nil {
				t.Errorf("client %d did not power off: %v", i, err)
			}
		}()
	}
	wg.Wait()
	want, _ := os.ReadFile(src)
	for i, tg := range targets {
		got, _ := os.ReadFile(tg)
		if !bytes.Equal(got[:len(want)], want) {
			t.Errorf("client %d's disk does not hold the image", i)
		}
	}
	if n := strings.Count(log.String(), "status=ok"); n < 3 {
		t.Errorf("the server log shows %d successful jobs, want 3", n)
	}
}

// Machines without an entropy source (no RDRAND, no virtio-rng: QEMU's
// TCG, older PCs) must still get an address and restore: a UEFI client on
// q35 with flash firmware and a BIOS client on pc, 256 MB each, restore
// by rule over HTTP and report back. Before the fix the rescue
// environment's DHCP client waited for the kernel RNG and never sent a
// request ("no network address after 90 s").
func TestPXERestoreWithoutEntropy(t *testing.T) {
	dir, src, imgs, rules := restoreFixture(t, "http://{server}/images/pc1.lbi")
	l := newLab(t, 2)
	log := l.serve(t, "--images", imgs, "--rules", rules)
	clients := []qemu.Options{
		{Firmware: qemu.UEFIPflash, Machine: "q35"},
		{Firmware: qemu.BIOS, Machine: "pc"},
	}
	want, _ := os.ReadFile(src)
	var wg sync.WaitGroup
	for i, o := range clients {
		name := fmt.Sprintf("%v/%s", o.Firmware, o.Machine)
		target := sparse(t, filepath.Join(dir, fmt.Sprintf("target%d.img", i)), 64<<20)
		o.MemoryMB, o.NoEntropy = 256, true
		o.Disks = []qemu.Disk{{Path: target, Bus: qemu.Virtio, Serial: fmt.Sprintf("T%d", i)}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			vm := l.bootWith(t, i, o)
			m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, 6*time.Minute)
			if err != nil || m[1] != "ok" {
				t.Errorf("%s client: %v %v", name, m, err)
				return
			}
			t.Logf("%s client without entropy device, 256 MB: power-on to LIFEBOAT-RESULT %.1f s", name, time.Since(start).Seconds())
			if err := vm.Wait(time.Minute); err != nil {
				t.Errorf("%s client did not power off: %v", name, err)
			}
			got, _ := os.ReadFile(target)
			if !bytes.Equal(got[:len(want)], want) {
				t.Errorf("%s client's disk does not hold the image", name)
			}
		}()
	}
	wg.Wait()
	var st []struct {
		MAC, Stage, Result string
	}
	statusJSON(t, l, &st)
	for i := range clients {
		found := false
		for _, c := range st {
			if c.MAC == clientMAC(i) {
				found = true
				if c.Stage != "done" || !strings.Contains(c.Result, "status=ok") {
					t.Errorf("the server has client %s at stage %q with result %q, want done, status=ok", c.MAC, c.Stage, c.Result)
				}
			}
		}
		if !found {
			t.Errorf("the server has no status for %s:\n%s", clientMAC(i), log.String())
		}
	}
}

// BenchmarkPXEBoot measures power-on to ready over the network from the
// full-mode server (make bench-rescue runs it 3×): BIOS and UEFI with an
// entropy device, and, as many real PCs are, without one (BIOS on pc,
// UEFI on q35 with flash firmware, 256 MB), where ready also needs the
// network to come up: a job waiting for the network would wait that long.
func BenchmarkPXEBoot(b *testing.B) {
	for _, c := range []struct {
		name string
		o    qemu.Options
	}{
		{"bios", qemu.Options{Firmware: qemu.BIOS, MemoryMB: 512}},
		{"uefi", qemu.Options{Firmware: qemu.UEFI, MemoryMB: 512}},
		{"bios-pc-noentropy-256M", qemu.Options{Firmware: qemu.BIOS, Machine: "pc", NoEntropy: true, MemoryMB: 256}},
		{"uefi-q35-noentropy-256M", qemu.Options{Firmware: qemu.UEFIPflash, Machine: "q35", NoEntropy: true, MemoryMB: 256}},
	} {
		b.Run(c.name, func(b *testing.B) {
			l := newLab(b, 1)
			// The prompt, not the text UI, so that the console shows the
			// network coming up.
			rules := filepath.Join(b.TempDir(), "rules.yaml")
			os.WriteFile(rules, []byte("clients:\n  - mac: \"*\"\n    args: \"lifeboat.ui=prompt\"\n"), 0o644)
			l.serve(b, "--rules", rules)
			var ready, up []float64
			for b.Loop() {
				start := time.Now()
				vm := l.bootWith(b, 0, c.o)
				if _, err := vm.Expect(`LIFEBOAT-READY`, 4*time.Minute); err != nil {
					b.Fatal(err)
				}
				ready = append(ready, time.Since(start).Seconds())
				// The network may come up just before READY.
				if !strings.Contains(vm.Console(), "network: eth0 is up") {
					if _, err := vm.Expect(`network: eth0 is up`, 2*time.Minute); err != nil {
						b.Fatal(err)
					}
				}
				up = append(up, time.Since(start).Seconds())
				vm.Kill()
			}
			b.ReportMetric(median(ready), "power-on-to-ready-s")
			b.ReportMetric(median(up), "power-on-to-address-s")
		})
	}
}
