package kernel

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAliases(t *testing.T) {
	in := "# Aliases extracted from modules themselves.\n" +
		"alias crypto-crc32c crc32c_generic\n" +
		"alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage\n" +
		"alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk\n" +
		"alias acpi*:PNP0A03:* pci_root\n" +
		"alias broken\n"
	a, err := ParseAliases(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []alias{
		{pattern: "crypto_crc32c", module: "crc32c_generic"},
		{pattern: "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", module: "usb_storage"},
		{pattern: "pci:v00001AF4d00001001sv*sd*bc*sc*i*", module: "virtio_blk"},
		{pattern: "acpi*:PNP0A03:*", module: "pci_root"},
	}
	if !reflect.DeepEqual(a.list, want) {
		t.Errorf("ParseAliases = %v, want %v", a.list, want)
	}
	if a.Len() != 4 || !reflect.DeepEqual(a.wild, []int{3}) {
		t.Errorf("Len = %d, wild = %v; want 4, [3]", a.Len(), a.wild)
	}
}

// TestAliasesMatch covers kmod's rules: "-" and "_" are one character in
// names and patterns (not inside [...]), patterns are fnmatch patterns,
// every module once, in file order.
func TestAliasesMatch(t *testing.T) {
	const file = `alias crypto-crc32c crc32c_generic
alias crypto-crc32c crc32c-intel
alias crypto_crc32c crc32c_generic
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* usb_storage
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias acpi*:PNP0501:* 8250_pnp
alias platform:rtc-efi rtc_efi
alias of:N*T*Cfoo[-_]bar* foobar
alias of:N*T*Cfoo[-]baz* foobaz
alias fs-ext4 ext4
`
	a, err := ParseAliases(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want []string
	}{
		{"crypto-crc32c", []string{"crc32c_generic", "crc32c_intel"}},
		{"crypto_crc32c", []string{"crc32c_generic", "crc32c_intel"}},
		{"usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", []string{"usb_storage"}},
		{"usb:v174Cp55AAd0100dc00dsc00dp00ic08isc06ip62in01", []string{"uas", "usb_storage"}},
		{"pci:v00008086d00007AE0sv00001043sd00008694bc0Csc03i30", []string{"xhci_pci"}},
		{"pci:v00008086d00007AE0sv00001043sd00008694bc0Csc03i20", nil},
		{"acpi:PNP0501:", []string{"8250_pnp"}},
		{"acpi:PNP0A08:PNP0501:", []string{"8250_pnp"}},
		{"platform:rtc-efi", []string{"rtc_efi"}},
		{"platform:rtc_efi", []string{"rtc_efi"}},
		{"of:NfooTCfoo-bar", []string{"foobar"}},
		{"of:NfooTCfoo_bar", []string{"foobar"}},
		// Inside a bracket expression "-" stays itself, on both sides.
		{"of:NfooTCfoo-baz", nil},
		{"fs-ext4", []string{"ext4"}},
		{"fs_ext4", []string{"ext4"}},
		{"fs-ext", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Match(tt.name); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	var none *Aliases
	if got := none.Match("fs-ext4"); got != nil {
		t.Errorf("nil Aliases matched %q", got)
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "a/b", true},
		{"crypto_crc32c", "crypto_crc32c", true},
		{"crypto_crc32c", "crypto_crc32", false},
		{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", true},
		{"pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000002bc01sc00i00", false},
		{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", true},
		{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip62in00", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"dmi*:rvn[Ll][Ee][Nn]*", "dmi:bvn:rvnLENOVO:", true},
		{"dmi*:rvn[Ll][Ee][Nn]*", "dmi:bvn:rvnDell:", false},
		{"v[0-9]x", "v5x", true},
		{"v[!0-9]x", "v5x", false},
		{"v[^0-9]x", "vax", true},
		{"v[]]x", "v]x", true},
		{"v[x", "v[x", true},
		{"*a*b", "xaxxb", true},
		{"*a*b", "xaxxbc", false},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{`a\[b`, "a[b", true},
		{`a\`, `a\`, true},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// FuzzAliases checks that ParseAliases and Match never panic on any
// modules.alias (a user may bring their own kernel) and that every
// pattern matches itself when it has no wildcard.
func FuzzAliases(f *testing.F) {
	f.Add("alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk\n", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00")
	f.Add("alias acpi*:PNP0A03:* pci_root\nalias a[-_b c\n", "acpi:PNP0A03:")
	f.Add("alias of:N*T*Cfoo[-]bar* x\r\nalias \\ y\n", `of:NTCfoo-bar\`)
	f.Fuzz(func(t *testing.T, file, name string) {
		a, err := ParseAliases(strings.NewReader(file))
		if err != nil {
			return
		}
		a.Match(name)
		for _, al := range a.list {
			if !strings.ContainsAny(al.pattern, `*?[\`) && len(a.Match(al.pattern)) == 0 {
				t.Errorf("literal pattern %q does not match itself", al.pattern)
			}
		}
	})
}
