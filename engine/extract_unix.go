//go:build unix

package engine

import (
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// setMeta gives p the mode, times and (as root) owner of info; link: p is
// a symbolic link (its own times, never its target's).
func (x *extractor) setMeta(p string, info fs.FileInfo, link bool) {
	st, _ := info.Sys().(*syscall.Stat_t)
	if x.asRoot && st != nil {
		unix.Lchown(p, int(st.Uid), int(st.Gid))
	}
	ext, _ := info.Sys().(*ext4.StatT) // read without a mount
	if x.asRoot && ext != nil {
		unix.Lchown(p, int(ext.UID), int(ext.GID))
	}
	if !link {
		unix.Chmod(p, uint32(info.Mode().Perm())|modeBits(info.Mode()))
	}
	mt := unix.NsecToTimespec(info.ModTime().UnixNano())
	at := mt
	switch {
	case st != nil:
		at = unix.Timespec{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}
	case ext != nil && !ext.AccessTime.IsZero():
		at = unix.NsecToTimespec(ext.AccessTime.UnixNano())
	}
	unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW)
}

// modeBits are the setuid, setgid and sticky bits of m as chmod(2) wants
// them.
func modeBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		b |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		b |= unix.S_ISVTX
	}
	return b
}

// freeSpace is the room an unprivileged writer has on dir's filesystem.
func freeSpace(dir string) (int64, bool) {
	var s unix.Statfs_t
	if unix.Statfs(dir, &s) != nil {
		return 0, false
	}
	return int64(s.Bavail) * int64(s.Bsize), true
}

// allocated is the space a file takes on disk (less than its size when it
// is sparse).
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
