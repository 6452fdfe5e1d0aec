package blockdev_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// Open a plain image file exactly as a disk would be opened, write its first
// sector and read it back.
func ExampleOpen() {
	f, err := os.CreateTemp("", "blockdev-example-*.img")
	if err != nil {
		panic(err)
	}
	img := f.Name()
	defer os.Remove(img)
	if err := errors.Join(f.Truncate(1<<20), f.Close()); err != nil {
		panic(err)
	}

	d, err := blockdev.Open(img, blockdev.ReadWrite)
	if err != nil {
		fmt.Println(err) // e.g. open /dev/sdx: permission denied; run as root (or Administrator)
		return
	}
	defer d.Close()

	sector := make([]byte, d.SectorSize)
	copy(sector[510:], []byte{0x55, 0xAA})
	if _, err := d.WriteAt(sector, 0); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := d.ReadAt(sector, 0); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes, %d-byte sectors, block device %v, signature %x\n", d.Size, d.SectorSize, d.IsBlock, sector[510:])
	// Output: 1048576 bytes, 512-byte sectors, block device false, signature 55aa
}
