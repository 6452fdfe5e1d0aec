package engine

import (
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/fsmount"
)

// attachWindow makes bytes [off, off+size) of a disk or image file a block
// device of their own (a loop device), for tools that take a device.
func attachWindow(path string, off, size int64) (string, func(), error) {
	f, err := fsmount.AttachLoop(path, off, size, false)
	if err != nil {
		return "", nil, err
	}
	// With autoclear the loop device goes away when the last user closes
	// it: the tool, then this descriptor.
	return f.Name(), func() { f.Close(); time.Sleep(10 * time.Millisecond) }, nil
}
