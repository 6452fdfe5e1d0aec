package images_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifeboat-rescue/lifeboat/images"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.lbi")
	disk := bytes.Repeat([]byte("a tiny disk "), 100000)

	w, _ := images.Create(path, images.WriterOptions{Compression: images.LevelNormal})
	w.AddStream(ctx, bytes.NewReader(disk), int64(len(disk)), images.StreamOptions{})
	w.Commit(&images.Metadata{Streams: []images.Stream{{Kind: images.KindDisk, Source: "tiny"}}})

	im, _ := images.Open(path, images.OpenOptions{})
	defer im.Close()
	fmt.Println(im.Verify(ctx, images.VerifyOptions{}))
	sr, _ := im.Stream(0)
	buf := make([]byte, 11)
	sr.ReadAt(buf, 12*5000)
	fmt.Printf("%s\n", buf)
	// Output:
	// <nil>
	// a tiny disk
}
