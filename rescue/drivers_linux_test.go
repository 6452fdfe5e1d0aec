//go:build linux

package rescue

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeSysfs is a /sys with one device per modalias.
func fakeSysfs(t *testing.T, root string, devs map[string]string) {
	t.Helper()
	for dev, ma := range devs {
		d := filepath.Join(root, "bus", dev)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "modalias"), []byte(ma+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDriversColdplug drives the coldplug loop with a fake /sys and a fake
// module loader that is slow (so modules load side by side, as on real
// hardware) and makes a USB stick appear once the xHCI driver is in. Run
// under -race it catches unguarded state written from the loading
// goroutines (the USB flag was, once).
func TestDriversColdplug(t *testing.T) {
	sys, mods := t.TempDir(), t.TempDir()
	alias := `alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias pci:v*d*sv*sd*bc0Csc03i20* ehci_pci
alias pci:v*d*sv*sd*bc0Csc03i10* ohci_pci
alias virtio:d00000002v* virtio_blk
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias platform:rtc-efi rtc_efi
`
	if err := os.WriteFile(filepath.Join(mods, "modules.alias"), []byte(alias), 0o644); err != nil {
		t.Fatal(err)
	}
	fakeSysfs(t, sys, map[string]string{
		"pci/devices/0000:00:14.0": "pci:v00008086d00007AE0sv00001043sd00008694bc0Csc03i30",
		"pci/devices/0000:00:1a.0": "pci:v00008086d00001E2Dsv00001043sd000084CAbc0Csc03i20",
		"pci/devices/0000:00:1d.0": "pci:v00008086d00007020sv00001AF4sd00001100bc0Csc03i10",
		"virtio/devices/virtio1":   "virtio:d00000002v00001AF4",
		// sysfs spells it with "_", modules.alias with "-": kmod matches.
		"platform/devices/rtc_efi": "platform:rtc_efi",
		"pci/devices/0000:00:02.0": "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00", // no driver
	})

	d := newDrivers(mods)
	d.sysfs = sys
	var mu sync.Mutex
	calls := map[string][]string{} // module -> params of each probe
	d.probe = func(name, params string) error {
		mu.Lock()
		calls[name] = append(calls[name], params)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		switch name {
		case "xhci_pci":
			// The controller's root hub finds a stick.
			fakeSysfs(t, sys, map[string]string{"usb/devices/1-1:1.0": "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00"})
		case "ohci_pci":
			return errors.New("no such device")
		}
		return nil
	}
	d.settle()
	// Filesystem modules load from other goroutines too (tryMount);
	// a module is probed once, whoever asks first.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { d.load("crc32c-generic") })
	}
	wg.Wait()

	want := []string{"crc32c_generic", "ehci_pci", "ohci_pci", "rtc_efi", "usb_storage", "virtio_blk", "xhci_pci"}
	if got := slices.Sorted(maps.Keys(calls)); !slices.Equal(got, want) {
		t.Errorf("probed %q, want %q", got, want)
	}
	for name, p := range calls {
		if len(p) != 1 {
			t.Errorf("%s probed %d times, want once", name, len(p))
		}
	}
	if p := calls["usb_storage"]; len(p) == 0 || p[0] != "delay_use=0" {
		t.Errorf("usb_storage params = %q, want delay_use=0", p)
	}
	if !d.usbSeen() {
		t.Error("a USB host controller driver loaded, but usbSeen is false")
	}
	if n := d.count(); n != len(want)-1 { // ohci_pci failed
		t.Errorf("count = %d, want %d", n, len(want)-1)
	}
}
