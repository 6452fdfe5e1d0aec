//go:build !linux

package bench

import (
	"errors"
	"fmt"
)

// syncFS is Linux-only, like the loop mounts of the cpu part that need it.
func syncFS(path string) error {
	return fmt.Errorf("bench: syncfs %s: implemented only on Linux: %w", path, errors.ErrUnsupported)
}
