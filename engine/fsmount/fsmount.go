// Package fsmount mounts a filesystem held by an io.ReaderAt (a partition
// inside an image) read-only, with the kernel's own filesystem drivers, so
// that every program can browse it and nothing of lifeboat parses files.
//
// On Linux the bytes are served as one read-only file over FUSE
// (go-fuse), a read-only loop device is set up on that file, and the
// loop device is mounted: ext2/3/4, vfat and exfat by the kernel (ext
// without journal replay: nothing may be written), NTFS by ntfs-3g, and
// FAT and exFAT by fusefat and exfat-fuse where the kernel has no driver
// for them. Mount.Path says which.
// Only the parts of the image a program reads are read and decoded.
// Elsewhere Mount says that it is not supported (Supported reports it).
package fsmount

import (
	"errors"
	"fmt"
)

// Options say what to mount and where.
type Options struct {
	// FSType is the filesystem's type as fsprobe names it: ext2, ext3,
	// ext4, vfat, exfat or ntfs.
	FSType string
	// Dir is the mount point, an existing empty directory.
	Dir string
	// Name is what the FUSE file system is called in mount tables
	// (lifeboat:IMAGE#PART).
	Name string
}

// ErrUnsupported is returned for a filesystem type no driver here reads,
// and on systems without FUSE and loop devices.
var ErrUnsupported = errors.New("not supported here")

// Types are the filesystem types Mount reads.
var Types = []string{"ext2", "ext3", "ext4", "vfat", "exfat", "ntfs"}

func supportedType(t string) error {
	for _, s := range Types {
		if s == t {
			return nil
		}
	}
	if t == "" {
		return fmt.Errorf("no filesystem was recognised in it: %w", ErrUnsupported)
	}
	return fmt.Errorf("filesystem %s cannot be read (readable: ext2/3/4, FAT, exFAT, NTFS): %w", t, ErrUnsupported)
}
