//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// The soak: the PXE server runs for a minute under load from a second
// namespace on the same segment — 50 simulated DHCP clients doing
// handshake after handshake, 20 image downloads at once, 200 idle
// connections held open — while two real QEMU clients (BIOS and UEFI)
// network-boot and restore by rule. The real clients must finish, a new
// client must get its script and files while the idle connections are
// held, and the server's memory must stay bounded. The figures (DHCP
// handshakes/s, aggregate HTTP MB/s, the server's RSS at start and end)
// are logged for the closing note; nothing is timed as a pass condition.
func TestPXESoak(t *testing.T) {
	dir, src, imgs, _ := restoreFixture(t, "")
	// pc1.lbi compresses to almost nothing; the downloads read a file of
	// incompressible bytes the size of a small image.
	big := make([]byte, 64<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(imgs, "big.lbi"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(`clients:
  - mac: "52:54:00:12:34:*"
    args: "lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff"
  - mac: "*"
    args: ""
`), 0o644)

	l := newLab(t, 2)
	// The load comes from its own namespace, joined to the bridge by a
	// veth pair, with addresses .20-.49 so that per-address limits apply
	// to each simulated host as they would on a real LAN.
	var addrs []string
	for i := 20; i < 50; i++ {
		addrs = append(addrs, fmt.Sprintf("192.168.77.%d/24", i))
	}
	lns := l.join(t, "load", "vethl", addrs...)

	// The server's log goes to a file: a minute of handshakes is tens of
	// thousands of lines.
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// A file limit of 256 (soft and hard, so Go cannot raise it): the
	// idle connections, downloads and transfers together would exhaust it
	// if the server did not cap connections below it.
	srv := l.start(t, logf, "prlimit", "--nofile=256:256", lifeboatBin(t), "pxe", "serve", "--interface", "br0", "--bundle", rescueBundle(t),
		"--images", imgs, "--rules", rules, "--lease-file", filepath.Join(dir, "leases.json"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := l.get("http://" + labAddr + "/api/status"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("the PXE server did not start:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rss0 := rssKiB(t, srv.Process.Pid)

	load := exec.Command("ip", "netns", "exec", lns, os.Args[0], "-test.run=^TestHelperSoakLoad$")
	load.Env = append(os.Environ(), "LB_SOAK=60s")
	var loadOut, loadErr bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill(); load.Wait() })

	// The real clients start while the load runs.
	time.Sleep(5 * time.Second)
	want, _ := os.ReadFile(src)
	var wg sync.WaitGroup
	for i, fw := range []qemu.Firmware{qemu.BIOS, qemu.UEFI} {
		target := sparse(t, filepath.Join(dir, fmt.Sprintf("target%d.img", i)), 64<<20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			vm := l.boot(t, i, fw, []qemu.Disk{{Path: target, Bus: qemu.Virtio, Serial: fmt.Sprintf("T%d", i)}})
			m, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, 7*time.Minute)
			if err != nil || m[1] != "ok" {
				t.Errorf("%v client under load: %v %v", fw, m, err)
				return
			}
			t.Logf("%v client under load: power-on to LIFEBOAT-RESULT %.1f s", fw, time.Since(start).Seconds())
			got, _ := os.ReadFile(target)
			if !bytes.Equal(got[:len(want)], want) {
				t.Errorf("%v client's disk does not hold the image", fw)
			}
		}()
	}
	loadDone := load.Wait()
	rssPeak := rssKiB(t, srv.Process.Pid)
	wg.Wait()
	rss1 := rssKiB(t, srv.Process.Pid)
	if loadDone != nil {
		t.Fatalf("load generator: %v\n%s\n%s", loadDone, loadOut.String(), loadErr.String())
	}
	var r soakResult
	out := loadOut.Bytes()
	if i := bytes.Index(out, []byte("SOAK:")); i < 0 || json.Unmarshal(bytes.SplitN(out[i+5:], []byte("\n"), 2)[0], &r) != nil {
		t.Fatalf("load generator printed no result:\n%s\n%s", out, loadErr.String())
	}
	t.Logf("soak figures (%.0f s): DHCP %d handshakes (%.0f/s, %d failed, %d clients); HTTP %d downloads, %.1f MB/s aggregate (%d failed); %d of %d idle connections held; new client during idle connections: %s; server RSS %d KiB at start, %d KiB at the end of the load, %d KiB after the real clients",
		r.Seconds, r.Handshakes, float64(r.Handshakes)/r.Seconds, r.HandshakeFails, r.DHCPClients,
		r.Downloads, float64(r.Bytes)/1e6/r.Seconds, r.DownloadFails, r.IdleHeld, r.IdleTried, r.NewClient, rss0, rssPeak, rss1)
	if r.Handshakes == 0 || r.DHCPClients < 50 {
		t.Errorf("only %d of 50 simulated DHCP clients got a lease (%d handshakes)", r.DHCPClients, r.Handshakes)
	}
	if r.Downloads == 0 || r.Bytes == 0 {
		t.Errorf("no image download finished under load")
	}
	if r.NewClient != "ok" {
		t.Errorf("a new client could not fetch its script and files while %d idle connections were held: %s", r.IdleHeld, r.NewClient)
	}
	// Bounded memory: the load adds no lasting per-connection or
	// per-client state beyond the caps (generous: 200 MiB over start).
	if rss1 > rss0+200<<10 {
		t.Errorf("server RSS grew from %d KiB to %d KiB", rss0, rss1)
	}
	var st []struct{ MAC, Stage, Result string }
	statusJSON(t, l, &st)
	for i := range 2 {
		for _, c := range st {
			if c.MAC == clientMAC(i) && c.Stage != "done" {
				t.Errorf("the server has client %s at stage %q (%s), want done", c.MAC, c.Stage, c.Result)
			}
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(logf.Name())
		if len(b) > 64<<10 {
			b = b[len(b)-64<<10:]
		}
		t.Logf("server log (last 64 KiB):\n%s", b)
	}
}

// rssKiB is a process's resident set size.
func rssKiB(t testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("server process: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// soakResult is what the load generator reports.
type soakResult struct {
	Seconds        float64 `json:"seconds"`
	Handshakes     int64   `json:"handshakes"`
	HandshakeFails int64   `json:"handshake_fails"`
	DHCPClients    int     `json:"dhcp_clients"` // distinct MACs that got an ack
	Downloads      int64   `json:"downloads"`
	DownloadFails  int64   `json:"download_fails"`
	Bytes          int64   `json:"bytes"`
	IdleTried      int     `json:"idle_tried"`
	IdleHeld       int     `json:"idle_held"`
	NewClient      string  `json:"new_client"`
}

// Load shape.
const (
	soakDHCPClients = 50
	soakDownloads   = 20
	soakIdle        = 200
	// Each download reads at most this fast, about what a client writing
	// to its disk over gigabit Ethernet does: the load must leave the two
	// cores some time for the real clients.
	soakReadRate = 8 << 20
)

// TestHelperSoakLoad is the load generator TestPXESoak runs inside its load
// namespace; it prints one SOAK: line of JSON.
func TestHelperSoakLoad(t *testing.T) {
	d := os.Getenv("LB_SOAK")
	if d == "" {
		t.Skip("a helper the PXE tests run inside their network namespace")
	}
	dur, _ := time.ParseDuration(d)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start := time.Now()
	var r soakResult
	var mu sync.Mutex
	var wg sync.WaitGroup

	// DHCP: 50 MACs, each handshaking again after a short pause.
	acked := map[string]bool{}
	dc, err := newSoakDHCP("vethl")
	if err != nil {
		fmt.Println("ERR:", err)
		os.Exit(1)
	}
	defer dc.close()
	for i := range soakDHCPClients {
		mac := net.HardwareAddr{0x02, 0x50, 0xa4, 0, byte(i >> 8), byte(i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := dc.handshake(ctx, mac); err != nil {
					if ctx.Err() == nil {
						atomic.AddInt64(&r.HandshakeFails, 1)
					}
					continue
				}
				atomic.AddInt64(&r.Handshakes, 1)
				mu.Lock()
				acked[mac.String()] = true
				mu.Unlock()
				sleepCtx(ctx, 200*time.Millisecond)
			}
		}()
	}

	// Downloads: 20 at once, two per source address (.30-.39).
	for i := range soakDownloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
				LocalAddr: &net.TCPAddr{IP: net.IPv4(192, 168, 77, byte(30+i/2))}}).DialContext}}
			for ctx.Err() == nil {
				n, err := download(ctx, c, "http://"+labAddr+"/images/big.lbi")
				atomic.AddInt64(&r.Bytes, n)
				switch {
				case err == nil:
					atomic.AddInt64(&r.Downloads, 1)
				case ctx.Err() == nil:
					atomic.AddInt64(&r.DownloadFails, 1)
					sleepCtx(ctx, time.Second)
				}
			}
		}()
	}

	// Idle connections: 200 from .20-.29, opened and never used, held to
	// the end; then a new client (.40) fetches its script, a rescue file
	// over HTTP and a boot loader over TFTP.
	var idle []net.Conn
	for i := range soakIdle {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(192, 168, 77, byte(20+i%10))}, Timeout: 2 * time.Second}
		r.IdleTried++
		if c, err := d.DialContext(ctx, "tcp4", labAddr+":80"); err == nil {
			idle = append(idle, c)
		}
	}
	time.Sleep(2 * time.Second)
	for _, c := range idle {
		// A connection the server closed reads EOF at once.
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			r.IdleHeld++
		}
	}
	// The idle connections stay open until the process exits.
	r.NewClient = newClient(ctx)

	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	r.DHCPClients = len(acked)
	b, _ := json.Marshal(r)
	fmt.Printf("SOAK:%s\n", b)
	os.Exit(0)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// download reads a URL to the end at soakReadRate at most.
func download(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New(resp.Status)
	}
	var n int64
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if ahead := time.Duration(float64(n)/soakReadRate*float64(time.Second)) - time.Since(t0); ahead > 0 {
			time.Sleep(ahead)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// newClient is a client that arrives while the idle connections are
// held: its script, a rescue file over HTTP and a boot loader over TFTP.
func newClient(ctx context.Context) string {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(192, 168, 77, 40)}}).DialContext}}
	for _, u := range []string{"/boot.ipxe?mac=02:50:a4:00:ff:ff", "/rescue/bundle.json"} {
		resp, err := c.Get("http://" + labAddr + u)
		if err != nil {
			return fmt.Sprintf("GET %s: %v", u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("GET %s: %s", u, resp.Status)
		}
	}
	if err := tftpGet(ctx, "undionly.kpxe"); err != nil {
		return "TFTP undionly.kpxe: " + err.Error()
	}
	return "ok"
}

// tftpGet reads a file over TFTP with the RFC 1350 basics (512-byte
// blocks), enough to prove the server answers.
func tftpGet(ctx context.Context, name string) error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 168, 77, 40)})
	if err != nil {
		return err
	}
	defer conn.Close()
	rrq := append(append([]byte{0, 1}, name...), append([]byte{0}, "octet\x00"...)...)
	server := &net.UDPAddr{IP: net.ParseIP(labAddr), Port: 69}
	if _, err := conn.WriteToUDP(rrq, server); err != nil {
		return err
	}
	buf := make([]byte, 600)
	for block := uint16(1); ; block++ {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return fmt.Errorf("block %d: %w", block, err)
		}
		if n < 4 || buf[1] != 3 {
			return fmt.Errorf("block %d: not a data packet: % x", block, buf[:min(n, 40)])
		}
		got := uint16(buf[2])<<8 | uint16(buf[3])
		conn.WriteToUDP([]byte{0, 4, buf[2], buf[3]}, from)
		if got == block && n < 516 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// soakDHCP is many simulated DHCP clients on one socket: each request has
// its own MAC address and transaction ID; replies (broadcast, as the
// requests ask) are handed to the waiting client by transaction ID.
type soakDHCP struct {
	conn    net.PacketConn
	mu      sync.Mutex
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
}

func newSoakDHCP(iface string) (*soakDHCP, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr == nil {
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
	if err != nil {
		return nil, err
	}
	d := &soakDHCP{conn: conn, waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	go d.receive()
	return d, nil
}

func (d *soakDHCP) close() { d.conn.Close() }

func (d *soakDHCP) receive() {
	buf := make([]byte, 1500)
	for {
		n, _, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		d.mu.Lock()
		ch := d.waiting[m.TransactionID]
		d.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// exchange sends m and waits for a reply of type want.
func (d *soakDHCP) exchange(ctx context.Context, m *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	ch := make(chan *dhcpv4.DHCPv4, 4)
	d.mu.Lock()
	d.waiting[m.TransactionID] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiting, m.TransactionID)
		d.mu.Unlock()
	}()
	if _, err := d.conn.WriteTo(m.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}); err != nil {
		return nil, err
	}
	timeout := time.After(3 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.MessageType() == want {
				return r, nil
			}
			if r.MessageType() == dhcpv4.MessageTypeNak {
				return nil, fmt.Errorf("NAK: %s", r.Message())
			}
		case <-timeout:
			return nil, fmt.Errorf("no %v", want)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// handshake is one discover, offer, request, ack.
func (d *soakDHCP) handshake(ctx context.Context, mac net.HardwareAddr) error {
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return err
	}
	offer, err := d.exchange(ctx, disc, dhcpv4.MessageTypeOffer)
	if err != nil {
		return err
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
	if err != nil {
		return err
	}
	_, err = d.exchange(ctx, req, dhcpv4.MessageTypeAck)
	return err
}
