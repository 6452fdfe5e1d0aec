//go:build !linux

package blockdev

// ReadDirect reads through ReadAt: this system has no O_DIRECT here.
func (d *Device) ReadDirect(p []byte, off int64) (int, error) { return d.ReadAt(p, off) }
