package pxe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
	"golang.org/x/sys/unix"
)

// httpGet sends one GET from src, an address of the clients' namespace,
// on a connection of its own. Call it inside inNetns(l.cli).
func httpGet(src, path string) (int, []byte, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", labServer+":80")
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, labServer)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (l *lab) clientMAC(t testing.TB) string {
	var mac string
	inNetns(t, l.cli, func() {
		ifi, err := net.InterfaceByName("veth1")
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
	})
	return mac
}

// Defect 2, proxy mode: the server knows who is at an address from its
// neighbour (ARP) table, which a client cannot rewrite by claiming another
// MAC address in a port-4011 request.
func TestScriptArgsByNeighbourTable(t *testing.T) {
	l := newLab(t)
	rules, _ := ParseRules([]byte("clients:\n  - mac: \"*\"\n    args: \"lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi\"\n"))
	s, _ := l.start(t, Config{Proxy: true, Rules: rules})
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")
	mac := l.clientMAC(t)
	const other = "52:54:00:de:ad:01"
	inNetns(t, l.cli, func() {
		code, b, err := httpGet("192.168.77.50", "/boot.ipxe?mac="+mac)
		if err != nil || code != 200 || !strings.Contains(string(b), "lifeboat.action=restore") || !strings.Contains(string(b), "?token=") {
			t.Errorf("the client's own script: %d %v\n%s", code, err, b)
		}
		code, b, err = httpGet("192.168.77.50", "/boot.ipxe?mac="+other)
		if err != nil || strings.Contains(string(b), "lifeboat.") {
			t.Errorf("another MAC's script: %d %v\n%s", code, err, b)
		}
	})
	// A port-4011 request claiming the other MAC at our address does not
	// override what the neighbour table says.
	seenAt(t, s, other, "192.168.77.50")
	inNetns(t, l.cli, func() {
		code, b, err := httpGet("192.168.77.50", "/boot.ipxe?mac="+other)
		if err != nil || strings.Contains(string(b), "lifeboat.") {
			t.Errorf("another MAC's script after a forged 4011 request: %d %v\n%s", code, err, b)
		}
	})
}

// Defect 4: idle and half-sent connections are closed, a download the
// client stopped reading is ended, and a slow download that keeps moving
// outlives every timeout.
func TestHTTPTimeouts(t *testing.T) {
	l := newLab(t)
	images := t.TempDir()
	big := bytes.Repeat([]byte("lifeboat"), 6<<20) // 48 MiB: more than the socket buffers hold
	slow := big[:8<<20]
	os.WriteFile(filepath.Join(images, "big.lbi"), big, 0o644)
	os.WriteFile(filepath.Join(images, "slow.lbi"), slow, 0o644)
	l.start(t, Config{Proxy: true, Images: images, IdleTimeout: time.Second, HeaderTimeout: time.Second, StallTimeout: time.Second})
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")

	dial := func(t *testing.T) (c net.Conn) {
		inNetns(t, l.cli, func() {
			var err error
			if c, err = net.DialTimeout("tcp4", labServer+":80", 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reads from c until the server closes it.
	closedWithin := func(t *testing.T, what string, c net.Conn, d time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(start.Add(d))
		n, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still open after %v (%d bytes read)", what, d, n)
		}
	}
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /images/slow.lbi HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		closedWithin(t, "idle connection", c, 4*time.Second)
	})
	t.Run("header never finished", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n")
		closedWithin(t, "half-sent header", c, 4*time.Second)
	})
	t.Run("stalled download", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /images/big.lbi HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(4 * time.Second) // the client reads nothing
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		if n >= int64(len(big)) {
			t.Errorf("a download nobody read for 4 s was not ended (%d bytes)", n)
		}
	})
	t.Run("slow download", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /images/slow.lbi HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		start := time.Now()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(25 * time.Millisecond) // about 2.5 MB/s: 3 s in all
		}
		if !bytes.Equal(got.Bytes(), slow) {
			t.Errorf("slow download: %d of %d bytes in %v", got.Len(), len(slow), time.Since(start).Round(time.Millisecond))
		} else {
			t.Logf("slow download: %d bytes in %v", got.Len(), time.Since(start).Round(time.Millisecond))
		}
	})
}

const lowLimitEnv = "LIFEBOAT_PXE_TEST_LOW_NOFILE_SERVER"

// Defect 4: in a server process with a low file limit (128), 220 idle or
// half-open connections and 40 stalled TFTP transfers from one address
// do not stop another client from fetching its script and files over
// HTTP and TFTP.
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	if spec := os.Getenv(lowLimitEnv); spec != "" {
		lowLimitServer(t, spec)
		return
	}
	l := newLab(t)
	bundleDir, ipxeDir, files := testBundle(t)
	spec, _ := json.Marshal(Config{Netns: "/run/netns/" + l.srv, Bundle: bundleDir, IPXEDir: ipxeDir})
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionsDoNotLockOut$", "-test.count=1")
	cmd.Env = append(os.Environ(), lowLimitEnv+"="+string(spec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Logf("server process:\n%s", out)
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "SERVING"); {
		if time.Now().After(deadline) {
			t.Fatalf("the server process did not start:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The victim's address first: it is the primary one, which the TFTP
	// client sends from.
	const victim, attacker = "192.168.77.51", "192.168.77.50"
	run(t, "ip", "-n", l.cli, "addr", "add", victim+"/24", "dev", "veth1")
	run(t, "ip", "-n", l.cli, "addr", "add", attacker+"/24", "dev", "veth1")
	var held []io.Closer
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	inNetns(t, l.cli, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}, Timeout: 2 * time.Second}
		for i := range 220 {
			c, err := d.Dial("tcp4", labServer+":80")
			if err != nil {
				continue
			}
			held = append(held, c)
			if i%2 == 1 {
				fmt.Fprintf(c, "GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n") // then idle
			}
		}
		rrq := append([]byte{0, 1}, "rescue/initramfs\x00octet\x00"...)
		for range 40 {
			u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(attacker)})
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, u)
			u.WriteTo(rrq, &net.UDPAddr{IP: net.ParseIP(labServer), Port: 69})
		}
	})
	time.Sleep(300 * time.Millisecond)

	inNetns(t, l.cli, func() {
		code, b, err := httpGet(victim, "/boot.ipxe?mac=52:54:00:00:00:51")
		if err != nil || code != 200 || !strings.HasPrefix(string(b), "#!ipxe") {
			t.Errorf("boot.ipxe for another client: %d %v", code, err)
		}
		code, b, err = httpGet(victim, "/rescue/vmlinuz")
		if err != nil || code != 200 || !bytes.Equal(b, files["rescue/vmlinuz"]) {
			t.Errorf("HTTP vmlinuz for another client: %d, %d bytes, %v", code, len(b), err)
		}
		c, _ := tftp.NewClient(labServer + ":69")
		c.SetTimeout(time.Second)
		c.SetRetries(3)
		wt, err := c.Receive("undionly.kpxe", "octet")
		if err != nil {
			t.Errorf("TFTP for another client: %v", err)
			return
		}
		var got bytes.Buffer
		if _, err := wt.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), files["undionly.kpxe"]) {
			t.Errorf("TFTP for another client: %d bytes, %v", got.Len(), err)
		}
	})
}

// lowLimitServer is the server process of TestIdleConnectionsDoNotLockOut:
// it serves with a file limit of 128 (soft and hard, so nothing can raise
// it) until its standard input closes.
func lowLimitServer(t *testing.T, spec string) {
	var c Config
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 128, Max: 128}); err != nil {
		t.Fatal(err)
	}
	c.Interface, c.Proxy = "veth0", true
	c.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("SERVING")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
}
