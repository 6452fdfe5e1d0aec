//go:build !linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// maxRSS returns -1, which the table prints as "n/a": rusage units differ
// between systems (bytes on macOS, KiB on Linux) and the benchmark has only
// been checked on Linux. Add a file for a system before trusting its numbers.
func maxRSS(*os.ProcessState) int64 { return -1 }

// syncAll does nothing here: the flush before each run only evens out
// writeback, it does not change what is measured.
func syncAll() {}

// loadAverage is not read on this system.
func loadAverage() string { return "unknown" }

// selfPeakRSS is not read on this system.
func selfPeakRSS() int64 { return -1 }

// dropCaches is Linux-only: times here include whatever the cache holds.
func dropCaches() error {
	return fmt.Errorf("bench: dropping the page cache is implemented only on Linux: %w", errors.ErrUnsupported)
}

// selfCPU is not read on this system: sync costs are not counted.
func selfCPU() time.Duration { return 0 }
