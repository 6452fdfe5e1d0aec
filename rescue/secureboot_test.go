package rescue

import "testing"

// The SecureBoot variable as efivarfs shows it: attributes (non-volatile,
// boot service and runtime access: 0x06) and the value.
func TestParseSecureBootVar(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want SecureBoot
		bad  bool
	}{
		{"enabled", []byte{6, 0, 0, 0, 1}, SecureBootEnabled, false},
		{"disabled", []byte{6, 0, 0, 0, 0}, SecureBootDisabled, false},
		{"short", []byte{6, 0, 0, 0}, SecureBootDisabled, true},
		{"long", []byte{6, 0, 0, 0, 1, 0}, SecureBootDisabled, true},
		{"value 2", []byte{6, 0, 0, 0, 2}, SecureBootDisabled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSecureBootVar(tc.b)
			if got != tc.want || (err != nil) != tc.bad {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestParseLockdown(t *testing.T) {
	for in, want := range map[string]string{
		"[none] integrity confidentiality\n": "none",
		"none [integrity] confidentiality\n": "integrity",
		"none integrity [confidentiality]":   "confidentiality",
		"none integrity confidentiality":     "",
		"":                                   "",
		"[]":                                 "",
	} {
		if got := parseLockdown([]byte(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// What the console and the machine-readable lines say for each state.
func TestPlatformWords(t *testing.T) {
	for _, tc := range []struct {
		p               Platform
		console, fields string
	}{
		{Platform{SecureBoot: SecureBootEnabled, Lockdown: "integrity"}, "Secure Boot: enabled (lockdown: integrity)", "secureboot=1 lockdown=integrity"},
		{Platform{SecureBoot: SecureBootDisabled, Lockdown: "none"}, "Secure Boot: disabled (lockdown: none)", "secureboot=0 lockdown=none"},
		{Platform{SecureBoot: SecureBootNoUEFI}, "Secure Boot: not UEFI", "secureboot=- lockdown=-"},
		{Platform{SecureBoot: SecureBootDisabled, Problem: "mount efivarfs: denied"}, "Secure Boot: disabled; mount efivarfs: denied", "secureboot=0 lockdown=-"},
	} {
		if got := tc.p.Console(); got != tc.console {
			t.Errorf("Console() = %q, want %q", got, tc.console)
		}
		if got := tc.p.Fields(); got != tc.fields {
			t.Errorf("Fields() = %q, want %q", got, tc.fields)
		}
	}
}
