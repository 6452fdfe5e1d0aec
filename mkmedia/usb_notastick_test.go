package mkmedia

import (
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// On Windows, mkmedia usb --target refuses a fixed disk: what counts as a
// stick or card, and what the refusal says.
func TestNotAStick(t *testing.T) {
	for _, tc := range []struct {
		d    blockdev.Disk
		want string
	}{
		{blockdev.Disk{Bus: "usb", Model: "SanDisk Ultra"}, ""},
		{blockdev.Disk{Bus: "scsi", Removable: true}, ""}, // a card reader on SCSI
		{blockdev.Disk{Bus: "mmc"}, ""},
		{blockdev.Disk{Bus: "nvme", Model: "WD_BLACK SN770", Size: 1 << 40}, "fixed nvme disk (WD_BLACK SN770 1.0 TiB)"},
		{blockdev.Disk{Bus: "sata", Size: 500 << 30}, "fixed sata disk (500 GiB)"},
		{blockdev.Disk{Model: "Msft Virtual Disk", Size: 1 << 30}, "fixed internal or virtual disk"},
	} {
		got := notAStick(tc.d)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("notAStick(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
