package cli

import (
	"os"
	"runtime"
	"strconv"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// diskName reads a disk as Windows users name it: on Windows a bare number
// N ("lifeboat backup disk 0", as Disk Management and diskpart number
// disks) is \\.\PhysicalDriveN, unless a file of that name exists here.
// Everything else, and everything on other systems, is left as given.
func diskName(s string) string {
	if runtime.GOOS != "windows" {
		return s
	}
	if _, err := os.Lstat(s); err == nil {
		return s
	}
	if n, ok := blockdev.DiskNumber(s); ok && s == strconv.Itoa(n) {
		return blockdev.PhysicalDrivePath(n)
	}
	return s
}
