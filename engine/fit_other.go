//go:build !linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Shrinking needs loop devices and FUSE, and resize2fs/ntfsresize.
var errFitHere = fmt.Errorf("--layout fit shrinks filesystems with resize2fs and ntfsresize on Linux (use the Lifeboat rescue media): %w", errors.ErrUnsupported)

func fsMinSize(ctx context.Context, r io.ReaderAt, size int64, fsType string) (int64, error) {
	return 0, errFitHere
}

func shrinkFS(ctx context.Context, r io.ReaderAt, size, newSize int64, fsType string) (*cowFile, error) {
	return nil, errFitHere
}
