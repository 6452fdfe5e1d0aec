package pxe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pin/tftp/v3"
	"golang.org/x/sys/unix"
)

// lab is two network namespaces the test makes and removes: the server's
// (veth0, 192.168.77.1/24) and the clients' (veth1, no address unless
// asked). Nothing touches the machine's own interfaces.
type lab struct{ srv, cli string }

const labServer = "192.168.77.1"

func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	id := fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1e6))
	l := &lab{srv: "lbtest-s" + id, cli: "lbtest-c" + id}
	for _, ns := range []string{l.srv, l.cli} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "veth0", "netns", l.srv, "type", "veth", "peer", "name", "veth1", "netns", l.cli)
	run(t, "ip", "-n", l.srv, "addr", "add", labServer+"/24", "dev", "veth0")
	run(t, "ip", "-n", l.srv, "link", "set", "veth0", "up")
	run(t, "ip", "-n", l.cli, "link", "set", "veth1", "up")
	return l
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on a thread inside namespace ns; the thread is thrown
// away afterwards (it stays locked).
func inNetns(t testing.TB, ns string, f func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err == nil {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// start runs the server in the lab's server namespace, as the QEMU tests
// do it: Serve's sockets go to Config.Netns.
func (l *lab) start(t testing.TB, c Config) (*Server, context.CancelFunc) {
	t.Helper()
	c.Netns = "/run/netns/" + l.srv
	c.Interface = "veth0"
	if c.Bundle == "" {
		c.Bundle, c.IPXEDir, _ = testBundle(t)
	}
	if c.LeaseFile == "" {
		// Never the machine's /var/lib/lifeboat.
		c.LeaseFile = filepath.Join(t.TempDir(), "leases.json")
	}
	if c.Log == nil {
		c.Log = testLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Wait() })
	return s, cancel
}

func (l *lab) dhcp(t testing.TB, mac string, mods ...dhcpv4.Modifier) (lease *nclient4.Lease, err error) {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	inNetns(t, l.cli, func() {
		var c *nclient4.Client
		// Generous timeouts: the replies are under test, not their speed,
		// and the race detector on a loaded 2-core machine is slow.
		c, err = nclient4.New("veth1", nclient4.WithHWAddr(hw), nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
		if err != nil {
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		lease, err = c.Request(ctx, mods...)
	})
	return lease, err
}

func TestDHCPFullMode(t *testing.T) {
	l := newLab(t)
	leaseFile := filepath.Join(t.TempDir(), "leases.json")
	bundleDir, ipxeDir, _ := testBundle(t)
	cfg := Config{Bundle: bundleDir, IPXEDir: ipxeDir, LeaseFile: leaseFile}
	_, cancel := l.start(t, cfg)

	// A second instance on the same interface is refused.
	c2 := cfg
	c2.Netns, c2.Interface = "/run/netns/"+l.srv, "veth0"
	if s, err := Start(context.Background(), c2); err == nil {
		s.Close()
		t.Error("a second server on UDP 67 started")
	} else if !strings.Contains(err.Error(), "already in use") {
		t.Errorf("second instance: %v", err)
	}

	ipxe := append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", false))
	got := map[string]netip.Addr{}
	for _, tc := range []struct {
		mac  string
		mods []dhcpv4.Modifier
		file string
	}{
		{"52:54:00:00:00:01", pxeClient(iana.INTEL_X86PC), "undionly.kpxe"},
		{"52:54:00:00:00:02", pxeClient(iana.EFI_X86_64), "snponly.efi"},
		{"52:54:00:00:00:03", ipxe, "http://" + labServer + "/boot.ipxe?mac=52:54:00:00:00:03"},
	} {
		lease, err := l.dhcp(t, tc.mac, tc.mods...)
		if err != nil {
			t.Fatalf("%s: %v", tc.mac, err)
		}
		ip, _ := netip.AddrFromSlice(lease.ACK.YourIPAddr.To4())
		if !strings.HasPrefix(ip.String(), "192.168.77.") || ip.As4()[3] < 128 {
			t.Errorf("%s got %v, want an address from the upper half", tc.mac, ip)
		}
		for _, m := range []*dhcpv4.DHCPv4{lease.Offer, lease.ACK} {
			if m.BootFileName != tc.file {
				t.Errorf("%s: %s boot file %q, want %q", tc.mac, m.MessageType(), m.BootFileName, tc.file)
			}
			if m.Options.Has(dhcpv4.OptionClassIdentifier) {
				t.Errorf("%s: option 60 in a full-mode reply", tc.mac)
			}
		}
		got[tc.mac] = ip
	}

	// Restart: the leases survive; the last client asks first and still
	// gets its own address.
	cancel()
	time.Sleep(100 * time.Millisecond)
	l.start(t, cfg)
	for _, mac := range []string{"52:54:00:00:00:03", "52:54:00:00:00:01"} {
		lease, err := l.dhcp(t, mac)
		if err != nil {
			t.Fatal(err)
		}
		if ip, _ := netip.AddrFromSlice(lease.ACK.YourIPAddr.To4()); ip != got[mac] {
			t.Errorf("%s after restart: %v, want %v", mac, ip, got[mac])
		}
	}
}

func TestDHCPProxyMode(t *testing.T) {
	l := newLab(t)
	s, _ := l.start(t, Config{Proxy: true})
	hw, _ := net.ParseMAC("52:54:00:00:00:11")
	inNetns(t, l.cli, func() {
		// A generous timeout for the answer (a loaded machine under the
		// race detector once missed 500 ms); a short one where no
		// answer must come.
		c, err := nclient4.New("veth1", nclient4.WithHWAddr(hw), nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		offer, err := c.DiscoverOffer(ctx, pxeClient(iana.INTEL_X86PC)...)
		if err != nil {
			t.Errorf("PXE discover: %v", err)
			return
		}
		if !offer.YourIPAddr.IsUnspecified() || offer.ClassIdentifier() != "PXEClient" || offer.BootFileName != "undionly.kpxe" {
			t.Errorf("proxy offer: yiaddr %v, class %q, file %q", offer.YourIPAddr, offer.ClassIdentifier(), offer.BootFileName)
		}
		quiet, err := nclient4.New("veth1", nclient4.WithHWAddr(hw), nclient4.WithTimeout(time.Second), nclient4.WithRetry(1))
		if err != nil {
			t.Error(err)
			return
		}
		defer quiet.Close()
		if _, err := quiet.DiscoverOffer(ctx); err == nil {
			t.Error("proxy answered a non-PXE client")
		}
	})
	// Port 4011: a UEFI client that got its address elsewhere asks there.
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")
	inNetns(t, l.cli, func() {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.168.77.50")})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		req, _ := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x12}), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithClientIP(net.ParseIP("192.168.77.50")))
		for _, m := range pxeClient(iana.EFI_X86_64) {
			m(req)
		}
		conn.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.ParseIP(labServer), Port: 4011})
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			t.Errorf("no answer on 4011: %v", err)
			return
		}
		ack, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "snponly.efi" || !ack.YourIPAddr.IsUnspecified() {
			t.Errorf("4011 reply %v %v", ack, err)
		}
	})
	for _, c := range s.Clients() {
		if c.IP != "" && c.IP != "192.168.77.50" {
			t.Errorf("proxy recorded a leased address: %+v", c)
		}
	}
}

func TestTFTP(t *testing.T) {
	l := newLab(t)
	bundleDir, ipxeDir, files := testBundle(t)
	l.start(t, Config{Bundle: bundleDir, IPXEDir: ipxeDir, Proxy: true})
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")
	inNetns(t, l.cli, func() {
		for _, blk := range []int{0, 1468} {
			for _, name := range []string{"undionly.kpxe", "snponly.efi", "rescue/initramfs"} {
				c, _ := tftp.NewClient(labServer + ":69")
				c.SetTimeout(2 * time.Second)
				if blk > 0 {
					c.SetBlockSize(blk)
				}
				wt, err := c.Receive(name, "octet")
				if err != nil {
					t.Errorf("%s (blksize %d): %v", name, blk, err)
					continue
				}
				var b bytes.Buffer
				if _, err := wt.WriteTo(&b); err != nil || !bytes.Equal(b.Bytes(), files[name]) {
					t.Errorf("%s (blksize %d): %d bytes, want %d: %v", name, blk, b.Len(), len(files[name]), err)
				}
			}
		}
		for _, name := range []string{"../../etc/passwd", "/etc/passwd", "evil", "rescue/evil", "rescue/../../etc/passwd", "rescue/bundle.json/../x"} {
			c, _ := tftp.NewClient(labServer + ":69")
			c.SetTimeout(time.Second)
			c.SetRetries(1)
			if wt, err := c.Receive(name, "octet"); err == nil {
				var b bytes.Buffer
				wt.WriteTo(&b)
				t.Errorf("%s served: %q", name, b.Bytes()[:min(b.Len(), 40)])
			}
		}
		// blksize negotiation, on the wire: RRQ with blksize 1468 gets an
		// OACK saying 1468 and then full 1468-byte blocks.
		conn, err := net.ListenUDP("udp4", nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rrq := append([]byte{0, 1}, "rescue/vmlinuz\x00octet\x00blksize\x001468\x00"...)
		conn.WriteTo(rrq, &net.UDPAddr{IP: net.ParseIP(labServer), Port: 69})
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 9000)
		n, from, err := conn.ReadFrom(buf)
		if err != nil || binary.BigEndian.Uint16(buf) != 6 || !bytes.Contains(buf[:n], []byte("blksize\x001468\x00")) {
			t.Errorf("OACK: %q %v", buf[:n], err)
			return
		}
		conn.WriteTo([]byte{0, 4, 0, 0}, from)
		n, _, err = conn.ReadFrom(buf)
		if err != nil || binary.BigEndian.Uint16(buf) != 3 || n != 4+1468 {
			t.Errorf("first data block: %d bytes, %v", n, err)
		}
		conn.WriteTo([]byte{0, 5, 0, 0, 0}, from) // abort
	})
}

var _ = errors.New

// Malformed, truncated and random packets sent to the running server's
// DHCP (67, 4011) and TFTP (69) ports must not stop it: afterwards it still
// leases and serves files. The packets are generated from a fixed seed and
// bounded in number.
func TestMalformedPacketsOnTheWire(t *testing.T) {
	l := newLab(t)
	bundleDir, ipxeDir, files := testBundle(t)
	l.start(t, Config{Bundle: bundleDir, IPXEDir: ipxeDir})
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.51/24", "dev", "veth1") // primary: the TFTP client's
	run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")
	inNetns(t, l.cli, func() {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.168.77.50")})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rrq := append([]byte{0, 1}, "rescue/vmlinuz\x00octet\x00blksize\x001468\x00"...)
		valid := [][]byte{
			rrq,
			{0, 1}, {0, 1, 'x'}, {0, 1, 'x', 0}, {0, 1, 'x', 0, 'o', 'c', 't'}, // truncated RRQs
			{0, 2, 'x', 0, 'o', 'c', 't', 'e', 't', 0}, // write request (read-only server)
			{0, 9, 1, 2, 3}, // unknown opcode
			append([]byte{0, 1}, bytes.Repeat([]byte("a"), 1400)...),
			append(append([]byte{0, 1}, "rescue/vmlinuz\x00octet\x00blksize\x00"...), "99999999999999999999\x00"...),
			append(append([]byte{0, 1}, "rescue/vmlinuz\x00octet\x00tsize\x00"...), "-1\x00"...),
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			n := r.IntN(600)
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			valid = append(valid, b)
			if len(rrq) > 2 {
				valid = append(valid, rrq[:r.IntN(len(rrq))])
			}
		}
		for i, p := range valid {
			for _, port := range []int{67, 4011, 69} {
				dst := &net.UDPAddr{IP: net.ParseIP(labServer), Port: port}
				if port == 67 && i%7 == 0 {
					dst.IP = net.IPv4bcast
				}
				conn.WriteTo(p, dst)
			}
		}
		// A valid DHCP dialogue and a file transfer still work. The
		// transfer comes from another address: the garbage included
		// valid read requests that nobody acknowledges, and they hold
		// the sender's few transfer slots until they time out.
		time.Sleep(200 * time.Millisecond)
		c, _ := tftp.NewClient(labServer + ":69")
		c.SetTimeout(2 * time.Second)
		wt, err := c.Receive("rescue/initramfs", "octet")
		if err != nil {
			t.Errorf("TFTP after garbage: %v", err)
			return
		}
		var b bytes.Buffer
		if _, err := wt.WriteTo(&b); err != nil || !bytes.Equal(b.Bytes(), files["rescue/initramfs"]) {
			t.Errorf("TFTP after garbage: %d bytes, %v", b.Len(), err)
		}
	})
	if _, err := l.dhcp(t, "52:54:00:aa:bb:cc"); err != nil {
		t.Errorf("DHCP after garbage: %v", err)
	}
}

// The signed chain and GRUB's configurations over real TFTP: shim and the
// network GRUB (as grubx64.efi beside shim) from the bundle, GRUB's
// absolute names (/grub/…) relative to the root, the client's own
// configuration by its MAC address; with --uefi-loader ipxe nothing of it
// is served.
func TestTFTPSecureBoot(t *testing.T) {
	for _, loader := range []UEFILoader{UEFILoaderShim, UEFILoaderIPXE} {
		t.Run(loader.String(), func(t *testing.T) {
			l := newLab(t)
			bundleDir, ipxeDir, _ := testBundle(t)
			signed := withSecureBoot(t, bundleDir)
			l.start(t, Config{Bundle: bundleDir, IPXEDir: ipxeDir, Proxy: true, UEFILoader: loader})
			run(t, "ip", "-n", l.cli, "addr", "add", "192.168.77.50/24", "dev", "veth1")
			fetch := func(name string) ([]byte, error) {
				c, _ := tftp.NewClient(labServer + ":69")
				c.SetTimeout(3 * time.Second) // refusals come at once
				c.SetRetries(3)
				wt, err := c.Receive(name, "octet")
				if err != nil {
					return nil, err
				}
				var b bytes.Buffer
				_, err = wt.WriteTo(&b)
				return b.Bytes(), err
			}
			inNetns(t, l.cli, func() {
				for name, want := range signed {
					b, err := fetch(name)
					if loader == UEFILoaderIPXE {
						if err == nil {
							t.Errorf("%s served with --uefi-loader ipxe", name)
						}
						continue
					}
					if err != nil || !bytes.Equal(b, want) {
						t.Errorf("%s: %d bytes, want %d: %v", name, len(b), len(want), err)
					}
				}
				if loader == UEFILoaderIPXE {
					return
				}
				for _, name := range []string{"/grub/x86_64-efi/grub.cfg", "grub/grub.cfg"} {
					if b, err := fetch(name); err != nil || !strings.Contains(string(b), "$net_default_mac") {
						t.Errorf("%s: %q %v", name, b, err)
					}
				}
				if b, err := fetch("/grub/lifeboat/52:54:00:12:34:56.cfg"); err != nil || !strings.Contains(string(b), "linux (http,192.168.77.1)/rescue/vmlinuz ") {
					t.Errorf("client configuration: %q %v", b, err)
				}
				for _, name := range []string{"/grub/../rescue/bundle.json", "//grub/grub.cfg", "/grub/lifeboat/../grub.cfg", "secureboot/../rescue/bundle.json", "secureboot/bootx64.efi", "grub/lifeboat/52-54-00-12-34-56.cfg"} {
					if b, err := fetch(name); err == nil {
						t.Errorf("%s served: %q", name, b[:min(len(b), 40)])
					}
				}
			})
		})
	}
}
