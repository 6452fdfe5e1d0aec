//go:build !linux

package engine

import (
	"errors"
	"fmt"
)

func attachWindow(path string, off, size int64) (string, func(), error) {
	return "", nil, fmt.Errorf("growing a filesystem needs Linux here (grow it with the system's own tools, e.g. Disk Management): %w", errors.ErrUnsupported)
}
