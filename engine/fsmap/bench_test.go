package fsmap

import (
	"io"
	"os"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// BenchmarkRead maps populated filesystems (files written through the
// real drivers, a third deleted, as TestReadRealFilesystems does), from
// the page cache: what the map costs on every backup beyond reading the
// disk. The ext2 case has no uninit_bg, so every inode table is read.
func BenchmarkRead(b *testing.B) {
	for _, c := range []fstest.Case{
		{Name: "ext4-256M", SizeMiB: 256, Tool: "mkfs.ext4", Args: []string{"-q", "-F"}, FS: "ext4"},
		{Name: "ext2-256M", SizeMiB: 256, Tool: "mkfs.ext2", Args: []string{"-q", "-F"}, FS: "ext2"},
		{Name: "vfat32-256M", SizeMiB: 256, Tool: "mkfs.vfat", Args: []string{"-F", "32"}, FS: "vfat", Access: fstest.ViaMtools},
		{Name: "exfat-256M", SizeMiB: 256, Tool: "mkfs.exfat", FS: "exfat", Access: fstest.ViaExFATFuse},
	} {
		b.Run(c.Name, func(b *testing.B) {
			img := fstest.Make(b, b.TempDir(), c)
			fstest.Populate(b, c, img)
			f, err := os.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			size := c.SizeMiB << 20
			cr := &countingReader{r: f}
			var m *Map
			for b.Loop() {
				cr.n = 0
				if m, err = Read(cr, size); err != nil {
					b.Fatal(err)
				}
			}
			if m.Reason != "" {
				b.Fatalf("fallback: %s", m.Reason)
			}
			b.ReportMetric(float64(m.UsedBytes)/(1<<20), "usedMiB")
			// What a backup reads to map the volume, on top of copying
			// the used ranges: the cost on a real disk.
			b.ReportMetric(float64(cr.n)/(1<<20), "readMiB")
		})
	}
}

type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}
