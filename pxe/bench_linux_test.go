package pxe

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// BenchmarkDHCPHandshake: full discover/offer/request/ack exchanges per
// second through real sockets between two namespaces (root only), 64
// distinct clients in turn.
func BenchmarkDHCPHandshake(b *testing.B) {
	l := newLab(b)
	l.start(b, Config{Log: nil, LeaseFile: filepath.Join(b.TempDir(), "l.json")})
	var clients []*nclient4.Client
	inNetns(b, l.cli, func() {
		for i := range 64 {
			hw := net.HardwareAddr{0x52, 0x54, 0, 0xbe, 0, byte(i)}
			c, err := nclient4.New("veth1", nclient4.WithHWAddr(hw), nclient4.WithTimeout(time.Second), nclient4.WithRetry(2))
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
		}
	})
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	i := 0
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := clients[i%len(clients)].Request(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
