//go:build unix

package images

import (
	"os"
	"syscall"
)

// lockByHandle: a writer keeps its first part open with an advisory
// lock, which CleanInterrupted tests before removing anything.
const lockByHandle = true

// tryLock takes an exclusive advisory lock on f without waiting: false
// when another process holds it.
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
