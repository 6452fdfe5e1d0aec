//go:build linux

package rescue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// platformPaths are where readPlatform looks; tests point them at a fake
// tree and replace mount.
type platformPaths struct {
	efi      string // /sys/firmware/efi: present only on a UEFI boot
	efivars  string // efivarfs's mount point
	security string // securityfs's mount point
	// mount mounts a pseudo filesystem (efivarfs, securityfs) whose
	// source and type are the same word; unix.Mount by default.
	mount func(fstype, target string) error
	// mounted says whether target already holds fstype (statfs's magic).
	mounted func(fstype, target string) bool
}

var sysPlatform = platformPaths{
	efi:      "/sys/firmware/efi",
	efivars:  "/sys/firmware/efi/efivars",
	security: "/sys/kernel/security",
	mount: func(fstype, target string) error {
		return unix.Mount(fstype, target, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	},
	mounted: func(fstype, target string) bool {
		var st unix.Statfs_t
		if unix.Statfs(target, &st) != nil {
			return false
		}
		switch fstype {
		case "efivarfs":
			return st.Type == unix.EFIVARFS_MAGIC
		case "securityfs":
			return st.Type == unix.SECURITYFS_MAGIC
		}
		return false
	},
}

// readPlatform reads the Secure Boot state from the SecureBoot EFI
// variable and the kernel's lockdown mode, mounting efivarfs and
// securityfs first if the init did not (u-root's init does, other inits
// may not).
func readPlatform(p platformPaths) Platform {
	var pl Platform
	var problems []string
	if _, err := os.Stat(p.efi); err != nil {
		pl.SecureBoot = SecureBootNoUEFI
	} else {
		b, err := readMounted(p, "efivarfs", p.efivars, SecureBootVar)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// UEFI firmware without Secure Boot support has no such
			// variable: mokutil says "doesn't support Secure Boot".
			pl.SecureBoot = SecureBootDisabled
		case err != nil:
			pl.SecureBoot = SecureBootDisabled
			problems = append(problems, err.Error())
		default:
			pl.SecureBoot, err = parseSecureBootVar(b)
			if err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	b, err := readMounted(p, "securityfs", p.security, "lockdown")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A kernel without the lockdown LSM: nothing is locked down.
	case err != nil:
		problems = append(problems, err.Error())
	default:
		pl.Lockdown = parseLockdown(b)
	}
	for i, s := range problems {
		if i > 0 {
			pl.Problem += "; "
		}
		pl.Problem += s
	}
	return pl
}

// readMounted reads dir/name, mounting fstype on dir first when the file
// is missing and dir does not hold fstype yet.
func readMounted(p platformPaths, fstype, dir, name string) ([]byte, error) {
	file := filepath.Join(dir, name)
	b, err := os.ReadFile(file)
	if !errors.Is(err, fs.ErrNotExist) || p.mounted(fstype, dir) {
		return b, err
	}
	if _, serr := os.Stat(dir); serr != nil {
		// The kernel makes the mount point when it supports fstype.
		return nil, err
	}
	if merr := p.mount(fstype, dir); merr != nil {
		return nil, fmt.Errorf("mount %s on %s to read %s: %w", fstype, dir, name, merr)
	}
	return os.ReadFile(file)
}
