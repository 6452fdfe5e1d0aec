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
	// bootParams is the kernel's copy of the boot protocol's
	// boot_params, whose secure_boot byte the EFI stub set from the same
	// variable (/sys/kernel/boot_params/data): the answer when efivarfs
	// cannot be mounted (Debian builds it as a module, which a bundle may
	// lack).
	bootParams string
	// load loads a kernel module (efivarfs) before its mount; may be nil.
	load func(module string)
	// mount mounts a pseudo filesystem (efivarfs, securityfs) whose
	// source and type are the same word; unix.Mount by default.
	mount func(fstype, target string) error
	// mounted says whether target already holds fstype (statfs's magic).
	mounted func(fstype, target string) bool
}

var sysPlatform = platformPaths{
	efi:        "/sys/firmware/efi",
	efivars:    "/sys/firmware/efi/efivars",
	security:   "/sys/kernel/security",
	bootParams: "/sys/kernel/boot_params/data",
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
			sb, berr := bootParamsSecureBoot(p.bootParams)
			pl.SecureBoot = sb
			if berr != nil {
				problems = append(problems, err.Error(), berr.Error())
			}
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
	if p.load != nil {
		p.load(fstype) // efivarfs is a module in Debian's kernel
	}
	if merr := p.mount(fstype, dir); merr != nil {
		return nil, fmt.Errorf("mount %s on %s to read %s: %w", fstype, dir, name, merr)
	}
	return os.ReadFile(file)
}

// bootParamsSecureBoot reads the secure_boot byte of boot_params (offset
// 0x1ec), which Linux's EFI stub sets from the SecureBoot and SetupMode
// variables: 3 enabled, 2 disabled, 0 or 1 not known (a boot that did
// not go through the EFI stub).
func bootParamsSecureBoot(file string) (SecureBoot, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return SecureBootDisabled, err
	}
	const off = 0x1ec
	if len(b) <= off {
		return SecureBootDisabled, fmt.Errorf("%s: %d bytes, too short for boot_params", file, len(b))
	}
	switch b[off] {
	case 3:
		return SecureBootEnabled, nil
	case 2:
		return SecureBootDisabled, nil
	}
	return SecureBootDisabled, fmt.Errorf("%s: the EFI stub did not record the Secure Boot state (%d)", file, b[off])
}
