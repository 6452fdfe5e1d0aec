//go:build linux

package rescue

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readPlatform on fake /sys trees: a BIOS boot, UEFI with and without
// Secure Boot, an init that mounted neither efivarfs nor securityfs (they
// are mounted, then read), and a mount that fails (said, not hidden).
func TestReadPlatform(t *testing.T) {
	type tree struct {
		efi      bool   // /sys/firmware/efi exists
		sbVar    []byte // the variable's content; nil: none
		lockdown string // "": no lockdown file
		// unmounted: the files appear only once mount is called.
		unmounted bool
		mountErr  error
		// bootParams is boot_params' secure_boot byte; 0xff: no file.
		bootParams byte
	}
	for _, tc := range []struct {
		name   string
		tree   tree
		want   Platform
		mounts []string
	}{
		{"bios", tree{lockdown: "[none] integrity confidentiality"}, Platform{SecureBoot: SecureBootNoUEFI, Lockdown: "none"}, nil},
		{"uefi secure boot", tree{efi: true, sbVar: []byte{6, 0, 0, 0, 1}, lockdown: "none [integrity] confidentiality"},
			Platform{SecureBoot: SecureBootEnabled, Lockdown: "integrity"}, nil},
		{"uefi without secure boot", tree{efi: true, sbVar: []byte{6, 0, 0, 0, 0}, lockdown: "[none] integrity confidentiality"},
			Platform{SecureBoot: SecureBootDisabled, Lockdown: "none"}, nil},
		{"uefi without the variable", tree{efi: true}, Platform{SecureBoot: SecureBootDisabled}, []string{"efivarfs", "securityfs"}},
		{"not mounted yet", tree{efi: true, sbVar: []byte{6, 0, 0, 0, 1}, lockdown: "none [integrity] confidentiality", unmounted: true},
			Platform{SecureBoot: SecureBootEnabled, Lockdown: "integrity"}, []string{"efivarfs", "securityfs"}},
		{"mount fails", tree{efi: true, sbVar: []byte{6, 0, 0, 0, 1}, unmounted: true, mountErr: errors.New("operation not permitted"), bootParams: 0xff},
			Platform{SecureBoot: SecureBootDisabled, Problem: "mount efivarfs on EFIVARS to read " + SecureBootVar + ": operation not permitted; open BOOTPARAMS: no such file or directory; mount securityfs on SECURITY to read lockdown: operation not permitted"},
			[]string{"efivarfs", "securityfs"}},
		// Debian builds efivarfs as a module: without it, boot_params
		// (which the EFI stub filled in) answers.
		{"no efivarfs, boot_params enabled", tree{efi: true, unmounted: true, mountErr: errors.New("no such device"), bootParams: 3},
			Platform{SecureBoot: SecureBootEnabled, Problem: "mount securityfs on SECURITY to read lockdown: no such device"}, []string{"efivarfs", "securityfs"}},
		{"no efivarfs, boot_params disabled", tree{efi: true, unmounted: true, mountErr: errors.New("no such device"), bootParams: 2},
			Platform{SecureBoot: SecureBootDisabled, Problem: "mount securityfs on SECURITY to read lockdown: no such device"}, []string{"efivarfs", "securityfs"}},
		{"no efivarfs, boot_params unset", tree{efi: true, unmounted: true, mountErr: errors.New("no such device"), bootParams: 0},
			Platform{SecureBoot: SecureBootDisabled, Problem: "mount efivarfs on EFIVARS to read " + SecureBootVar + ": no such device; BOOTPARAMS: the EFI stub did not record the Secure Boot state (0); mount securityfs on SECURITY to read lockdown: no such device"},
			[]string{"efivarfs", "securityfs"}},
		{"bad variable", tree{efi: true, sbVar: []byte{1}}, Platform{SecureBoot: SecureBootDisabled, Problem: SecureBootVar + ": 1 bytes, want 4 bytes of attributes and a 1-byte value"}, []string{"securityfs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := platformPaths{
				efi:        filepath.Join(root, "firmware/efi"),
				efivars:    filepath.Join(root, "firmware/efi/efivars"),
				security:   filepath.Join(root, "kernel/security"),
				bootParams: filepath.Join(root, "kernel/boot_params/data"),
				mounted:    func(string, string) bool { return false },
			}
			var loaded []string
			p.load = func(m string) { loaded = append(loaded, m) }
			if tc.tree.bootParams != 0xff {
				bp := make([]byte, 4096)
				bp[0x1ec] = tc.tree.bootParams
				os.MkdirAll(filepath.Dir(p.bootParams), 0o755)
				os.WriteFile(p.bootParams, bp, 0o400)
			}
			os.MkdirAll(p.security, 0o755)
			if tc.tree.efi {
				os.MkdirAll(p.efivars, 0o755)
			}
			write := func(fstype string) {
				if tc.tree.sbVar != nil && fstype != "securityfs" {
					os.WriteFile(filepath.Join(p.efivars, SecureBootVar), tc.tree.sbVar, 0o644)
				}
				if tc.tree.lockdown != "" && fstype != "efivarfs" {
					os.WriteFile(filepath.Join(p.security, "lockdown"), []byte(tc.tree.lockdown+"\n"), 0o444)
				}
			}
			var mounts []string
			p.mount = func(fstype, target string) error {
				mounts = append(mounts, fstype)
				if tc.tree.mountErr != nil {
					return tc.tree.mountErr
				}
				write(fstype)
				return nil
			}
			if !tc.tree.unmounted {
				write("")
			}
			got := readPlatform(p)
			want := tc.want
			if want.Problem != "" {
				// The fake tree's paths stand in the message.
				want.Problem = strings.NewReplacer("EFIVARS", p.efivars, "SECURITY", p.security, "BOOTPARAMS", p.bootParams).Replace(want.Problem)
			}
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if !slices.Equal(mounts, tc.mounts) {
				t.Errorf("mounted %v, want %v", mounts, tc.mounts)
			}
			// The module is loaded before efivarfs is mounted.
			if want := slices.Contains(tc.mounts, "efivarfs"); slices.Contains(loaded, "efivarfs") != want {
				t.Errorf("loaded modules %v; efivarfs mounted: %v", loaded, want)
			}
		})
	}
}
