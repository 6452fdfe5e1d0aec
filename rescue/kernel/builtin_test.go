package kernel

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseBuiltinModinfo(t *testing.T) {
	in := "af_packet.license=GPL\x00tracefs.alias=fs-tracefs\x00" +
		"virtio_pci.alias=pci:v00001AF4d*sv*sd*bc*sc*i*\x00virtio_pci.description=x\x00" +
		"broken\x00.alias=nomodule\x00empty.alias=\x00dh_generic.alias=crypto-dh" // last record without its NUL
	a, err := ParseBuiltinModinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 3 {
		t.Errorf("parsed %d aliases, want 3 (tracefs, virtio_pci, dh_generic): %+v", a.Len(), a.list)
	}
	for name, want := range map[string][]string{
		"fs-tracefs": {"tracefs"},
		"fs_tracefs": {"tracefs"},
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00": {"virtio_pci"},
		"crypto-dh": {"dh_generic"},
		"nomodule":  nil,
		"GPL":       nil,
	} {
		if got := a.Match(name); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzBuiltinModinfo checks that any modules.builtin.modinfo (a user may
// bring their own kernel) parses without panicking and that every alias
// without a wildcard matches itself.
func FuzzBuiltinModinfo(f *testing.F) {
	f.Add("tracefs.alias=fs-tracefs\x00a.license=GPL\x00")
	f.Add("x.alias=pci:v*d[-_]*\x00.alias=\x00=\x00")
	f.Fuzz(func(t *testing.T, file string) {
		a, err := ParseBuiltinModinfo(strings.NewReader(file))
		if err != nil {
			return
		}
		for _, al := range a.list {
			if !strings.ContainsAny(al.pattern, `*?[\`) && len(a.Match(al.pattern)) == 0 {
				t.Errorf("literal pattern %q does not match itself", al.pattern)
			}
		}
	})
}
