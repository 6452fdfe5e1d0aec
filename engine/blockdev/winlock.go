package blockdev

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Before Windows lets a program write to a disk, every volume on it must
// be locked (FSCTL_LOCK_VOLUME: nobody else has a file open on it) and
// dismounted (FSCTL_DISMOUNT_VOLUME: its filesystem forgets what it
// cached), and stay locked until the writing ends; the disk that holds the
// running Windows can never be. This is that logic, over volumeAPI, so
// that it is tested with a fake on every system; blockdev_windows.go gives
// it the real calls.

// volumeAPI is what preparing a disk for writing asks Windows.
type volumeAPI interface {
	// volumes lists the mounted volumes with their paths and extents.
	volumes() ([]winVolume, error)
	// systemDisks are the disks that hold the running Windows
	// (%SystemRoot%'s volume; several when it spans disks).
	systemDisks() ([]int, error)
	// lockDismount locks and dismounts the volume named name
	// (\\?\Volume{…}\); unlock ends the lock. An error wrapping
	// ErrBusy means someone has files open on it.
	lockDismount(name string) (unlock func() error, err error)
}

// lockDisk refuses disk n when it holds the running Windows, else locks
// and dismounts every volume on it, in the order listed, and returns what
// unlocks them all. When one cannot be locked, those already locked are
// unlocked and the error names the volume by its letters.
func lockDisk(api volumeAPI, path string, n int) (unlock func() error, err error) {
	sys, err := api.systemDisks()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("find the disk Windows runs from: %w", err)}
	}
	for _, s := range sys {
		if s == n {
			return nil, &os.PathError{Op: "open", Path: path, Err: &hintError{
				msg:  fmt.Sprintf("disk %d holds the running Windows, which cannot be overwritten while it runs; restore or clone onto it from the Lifeboat rescue media", n),
				errs: []error{ErrBusy}}}
		}
	}
	vols, err := api.volumes()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("list the volumes on disk %d: %w", n, err)}
	}
	var unlocks []func() error
	unlockAll := func() error {
		var errs []error
		for i := len(unlocks) - 1; i >= 0; i-- {
			errs = append(errs, unlocks[i]())
		}
		unlocks = nil
		return errors.Join(errs...)
	}
	for _, v := range volumesOn(vols, n) {
		u, err := api.lockDismount(v.Name)
		if err != nil {
			unlockAll()
			what := fmt.Sprintf("volume %s on disk %d cannot be locked: %v", volumeWords(v), n, err)
			fix := "close the programs, Explorer windows and prompts that use it (or take it offline in Disk Management), then try again"
			if len(v.Paths) > 0 {
				fix = fmt.Sprintf("close the programs, Explorer windows and prompts that use %s (or take the volume offline in Disk Management), then try again", strings.TrimSuffix(v.Paths[0], `\`))
			}
			return nil, &os.PathError{Op: "open", Path: path, Err: &hintError{msg: what + "; " + fix, errs: []error{ErrBusy, err}}}
		}
		unlocks = append(unlocks, u)
	}
	return unlockAll, nil
}
