package bench

import (
	"os"
	"testing"
	"time"
)

func TestTmpTry(t *testing.T) {
	v := newVocabulary(1)
	var buf []byte
	for i := 0; i < 8; i++ {
		buf = segmentContent(buf, Segment{Length: 16 << 20, Kind: KindText, Content: KindText, Source: i}, 1, v)
	}
	os.WriteFile("/tmp/lbt/text.bin", buf, 0o644)
	f, _ := os.Create("/tmp/lbt/disk.img")
	st := time.Now()
	if err := Generate(f, 2<<30, 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("2 GiB in %v", time.Since(st))
}
