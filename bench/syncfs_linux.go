package bench

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS writes back everything dirty of the filesystem that holds path,
// like sync -f: one flush for a whole restored tree, where fsyncing each of
// its thousands of files would cost a journal commit each.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: syncfs: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("bench: syncfs %s: %w", path, err)
	}
	return nil
}
