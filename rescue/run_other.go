//go:build !linux

package rescue

import (
	"context"
	"errors"
	"fmt"
)

// Run works only inside the Linux rescue environment.
func Run(ctx context.Context, o Options) error {
	return fmt.Errorf("the rescue environment runs only on Linux; boot the Lifeboat rescue media instead: %w", errors.ErrUnsupported)
}
