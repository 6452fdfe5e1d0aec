//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
)

// RunStores needs the servers only Linux runs here.
func RunStores(ctx context.Context, o Options, out io.Writer) error {
	return errors.New("bench: stores: runs on Linux only (versitygw and smbd)")
}
