//go:build !linux

package images

import (
	"errors"
	"fmt"
	"runtime"
)

// memAvailableBytes cannot tell here: the key derivation is then bounded
// by MaxKDF alone (256 MiB, which desktop systems that run lifeboat off
// Linux have to spare).
func memAvailableBytes() (int64, error) {
	return 0, fmt.Errorf("available memory on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
