package pxe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pin/tftp/v3"
)

// BenchmarkHTTPImages: aggregate throughput of a 64 MiB image to N
// concurrent loopback clients.
func BenchmarkHTTPImages(b *testing.B) {
	images := b.TempDir()
	img := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 8<<20)
	os.WriteFile(filepath.Join(images, "x.lbi"), img, 0o644)
	s := offlineServer(b, Config{Images: images})
	h := httpServer(b, s)
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(img) * n))
			for b.Loop() {
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						resp, err := http.Get(h.URL + "/images/x.lbi")
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					})
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkTFTP: one 8 MiB transfer over loopback at the default 512-byte
// blocks and with blksize negotiated.
func BenchmarkTFTP(b *testing.B) {
	bundleDir, ipxeDir, _ := testBundle(b)
	big := bytes.Repeat([]byte{7}, 8<<20)
	os.WriteFile(filepath.Join(ipxeDir, "big.bin"), big, 0o644)
	s := offlineServer(b, Config{Bundle: bundleDir, IPXEDir: ipxeDir})
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := s.newTFTP(ctx)
	go t.Serve(conn)
	b.Cleanup(func() { cancel(); t.Shutdown() })
	for _, blk := range []int{512, 1468, 8192} {
		b.Run(fmt.Sprintf("blksize=%d", blk), func(b *testing.B) {
			b.SetBytes(int64(len(big)))
			for b.Loop() {
				c, _ := tftp.NewClient(conn.LocalAddr().String())
				if blk != 512 {
					c.SetBlockSize(blk)
				}
				wt, err := c.Receive("big.bin", "octet")
				if err != nil {
					b.Fatal(err)
				}
				if n, err := wt.WriteTo(io.Discard); err != nil || n != int64(len(big)) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
