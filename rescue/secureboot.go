package rescue

import (
	"bytes"
	"fmt"
	"strings"
)

// SecureBoot is the firmware's Secure Boot state, as the SecureBoot EFI
// variable says (what mokutil --sb-state reads).
type SecureBoot int

const (
	// SecureBootNoUEFI: the machine booted through BIOS (or a kernel that
	// shows no EFI runtime), so there is no such state.
	SecureBootNoUEFI SecureBoot = iota
	// SecureBootDisabled: UEFI with Secure Boot off, or firmware without
	// the variable (no Secure Boot support at all).
	SecureBootDisabled
	// SecureBootEnabled: the firmware verified the boot chain's
	// signatures; Debian's kernel then runs locked down.
	SecureBootEnabled
)

// String is the state as the console prints it.
func (s SecureBoot) String() string {
	switch s {
	case SecureBootNoUEFI:
		return "not UEFI"
	case SecureBootDisabled:
		return "disabled"
	case SecureBootEnabled:
		return "enabled"
	}
	return fmt.Sprintf("secureboot(%d)", int(s))
}

// Field is the state as the LIFEBOAT-READY and LIFEBOAT-RESULT lines
// carry it: secureboot=1, secureboot=0, or secureboot=- without UEFI.
func (s SecureBoot) Field() string {
	switch s {
	case SecureBootEnabled:
		return "1"
	case SecureBootDisabled:
		return "0"
	}
	return "-"
}

// SecureBootVar is the SecureBoot variable's file under efivarfs: the
// name, a dash and EFI_GLOBAL_VARIABLE's GUID.
const SecureBootVar = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

// parseSecureBootVar reads the SecureBoot variable as efivarfs shows it:
// four bytes of attributes, then the one-byte value (1 when enabled).
func parseSecureBootVar(b []byte) (SecureBoot, error) {
	if len(b) != 5 {
		return SecureBootDisabled, fmt.Errorf("%s: %d bytes, want 4 bytes of attributes and a 1-byte value", SecureBootVar, len(b))
	}
	switch b[4] {
	case 0:
		return SecureBootDisabled, nil
	case 1:
		return SecureBootEnabled, nil
	}
	return SecureBootDisabled, fmt.Errorf("%s: value %d, want 0 or 1", SecureBootVar, b[4])
}

// parseLockdown reads /sys/kernel/security/lockdown, whose one line lists
// the modes with the active one in brackets ("none [integrity]
// confidentiality"), and returns the active one, or "" when none is marked.
func parseLockdown(b []byte) string {
	for _, f := range strings.Fields(string(bytes.TrimSpace(b))) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return ""
}

// Platform is how the firmware started the rescue environment: whether
// Secure Boot checked the boot chain, and how far the kernel locked
// itself down (Debian's kernel takes lockdown=integrity from Secure Boot).
type Platform struct {
	SecureBoot SecureBoot
	// Lockdown is the kernel's active lockdown mode: "none", "integrity"
	// or "confidentiality"; "" when the kernel does not say (no lockdown
	// LSM, or securityfs could not be mounted).
	Lockdown string
	// Problem says why the state could not be read fully, "" when it
	// could; the state fields then hold what was known.
	Problem string
}

// Console is the line the console shows at start, in mokutil
// --sb-state's words: "Secure Boot: enabled (lockdown: integrity)".
func (p Platform) Console() string {
	s := "Secure Boot: " + p.SecureBoot.String()
	if p.Lockdown != "" {
		s += " (lockdown: " + p.Lockdown + ")"
	}
	if p.Problem != "" {
		s += "; " + p.Problem
	}
	return s
}

// Fields are the key=value pairs the LIFEBOAT-READY and LIFEBOAT-RESULT
// lines end with: "secureboot=1 lockdown=integrity" (lockdown=- when the
// kernel does not say).
func (p Platform) Fields() string {
	l := p.Lockdown
	if l == "" {
		l = "-"
	}
	return "secureboot=" + p.SecureBoot.Field() + " lockdown=" + l
}
