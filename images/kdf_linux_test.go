package images

import (
	"runtime/debug"
	"syscall"
	"testing"
)

// minorFaults is the page faults this process took that needed no I/O.
func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestKDFMemoryIsRecycled: deriving a key does not run Argon2 in memory
// fresh from the system, whose first read and then write cost two page
// faults and a TLB flush on every CPU per 4 KiB page (recycleMemory).
// Counted in page faults, not time: from a heap that gave all its free
// memory back, deriving over 64 MiB takes one fault per page when the
// memory is written before Argon2 runs in it, two when Argon2 gets it
// fresh.
func TestKDFMemoryIsRecycled(t *testing.T) {
	p := KDFCost{Time: 1, MemKiB: 64 << 10}.params()
	p.Salt = make([]byte, 16)
	const pages = 64 << 20 / 4096
	for i := range 3 {
		debug.FreeOSMemory()
		before := minorFaults(t)
		deriveKEK(p, []byte("pw"))
		n := minorFaults(t) - before
		t.Logf("round %d: deriving over 64 MiB took %d page faults (%d pages)", i, n, pages)
		if n > pages*3/2 {
			t.Fatalf("deriving the key over 64 MiB took %d page faults, more than one per page: Argon2 ran in fresh memory", n)
		}
	}
}
