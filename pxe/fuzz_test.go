package pxe

import (
	"net"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzHandleDHCP feeds raw packets to the code that parses a request and
// builds the reply, in full and proxy mode, on ports 67 and 4011. Seeds:
// testdata/fuzz/FuzzHandleDHCP (see testdata/README.md) and the packets
// below.
func FuzzHandleDHCP(f *testing.F) {
	hw, _ := net.ParseMAC("52:54:00:12:34:56")
	for _, mods := range [][]dhcpv4.Modifier{
		nil,
		pxeClient(iana.INTEL_X86PC),
		pxeClient(iana.EFI_X86_64),
		append(pxeClient(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", false)),
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 77, 130)))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(192, 168, 77, 9))},
		{dhcpv4.WithRelay(net.IPv4(10, 9, 8, 7))},
	} {
		d, _ := dhcpv4.NewDiscovery(hw, mods...)
		b := d.ToBytes()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	full := offlineServer(f, Config{})
	proxy := offlineServer(f, Config{Proxy: true})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		for _, s := range []*Server{full, proxy} {
			for _, port := range []int{67, pxePort} {
				if r := s.handleDHCP(req, port); r != nil {
					r.ToBytes()
					replyAddr(req, &net.UDPAddr{IP: net.IPv4(192, 168, 77, 5), Port: 68}, port)
				}
			}
		}
	})
}

// FuzzCleanName checks the confinement of names from TFTP and HTTP: what
// it accepts never climbs out, is never absolute and names no dotfile.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "rescue/initramfs", "../../etc/passwd", "/etc/passwd", "a/./b", ".x", "a\\..\\b", "images/pc1.lbi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := cleanName(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(n, "/") || strings.Contains(n, "\\") || strings.Contains(n, "\x00") {
			t.Fatalf("accepted %q", name)
		}
		for _, e := range strings.Split(n, "/") {
			if e == "" || e == ".." || e[0] == '.' {
				t.Fatalf("accepted %q", name)
			}
		}
	})
}
