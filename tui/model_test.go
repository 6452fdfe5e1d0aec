package tui

import (
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

func TestCloneWizard(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><enter>")
	h.golden("clone-1-source")
	h.keys("<enter>")
	h.golden("clone-2-target")
	h.keys("<enter>")
	h.golden("clone-3-layout")
	h.keys("<down><down><enter>")
	h.waitFor("Type sdb")
	h.golden("clone-4-confirm")
	h.complete(f, "sdb<enter>", "Clone finished")
	h.golden("clone-5-result")
	o := f.clones[0]
	if o.Kind != engine.CloneDisk || o.Source != "/dev/sda" || o.Target != "/dev/sdb" || !o.SectorBySector {
		t.Errorf("clone options %+v", o)
	}
}

func TestCheckWizard(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><down><enter>")
	h.golden("check-1-image")
	h.keys("<enter>")
	h.waitFor("Elapsed")
	h.golden("check-2-progress")
	close(f.release)
	h.waitFor("Check image finished")
	h.golden("check-3-result")
}

func TestDisksNetworkPower(t *testing.T) {
	h := newHarness(t, fakeOptions(newFake()))
	h.keys("<down><down><down><down><down><enter>")
	h.golden("disks")
	h.keys("<esc><down><down><down><down><down><down><enter>")
	h.golden("network-host")
	h.keys("d")
	h.shows("network manager")
	h.keys("<esc><down><down><down><down><down><down><down><down><down><enter>")
	h.keys("<enter>")
	h.golden("power-host")
	if h.m.Action() != ActionQuit {
		t.Error("a running system was told to reboot")
	}
}

func TestRescueNetworkAndPower(t *testing.T) {
	o := fakeOptions(newFake())
	o.Rescue = true
	var dhcp, set []string
	o.Network = &Network{
		DHCP:       func(i string) error { dhcp = append(dhcp, i); return nil },
		SetAddress: func(i, cidr, gw string) error { set = append(set, i+" "+cidr+" "+gw); return nil },
	}
	h := newHarness(t, o)
	h.golden("home-rescue")
	h.keys("<down><down><down><down><down><down><enter>")
	h.golden("network-rescue")
	h.keys("d")
	h.waitFor("DHCP requested on eth0")
	h.keys("<down>m10.0.0.5/24 10.0.0.1<enter>")
	h.waitFor("address 10.0.0.5/24 set")
	if strings.Join(dhcp, ",") != "eth0" || strings.Join(set, ",") != "wlan0 10.0.0.5/24 10.0.0.1" {
		t.Errorf("dhcp %v, set %v", dhcp, set)
	}
	h.keys("<esc><down><down><down><down><down><down><down><down><down><enter><down><enter>")
	if h.m.Action() != ActionPowerOff {
		t.Errorf("action %v, want poweroff", h.m.Action())
	}
}

// Every screen fits 80×25 also when the terminal reports no size.
func TestZeroWindowSize(t *testing.T) {
	h := newHarness(t, fakeOptions(newFake()))
	h.send(windowSize(0, 0))
	if n := len(strings.Split(h.m.View(), "\n")); n != 25 {
		t.Errorf("%d lines with an unknown size, want 25", n)
	}
	h.send(windowSize(100, 40))
	if n := len(strings.Split(h.m.View(), "\n")); n != 40 {
		t.Errorf("%d lines at 100x40, want 40", n)
	}
}

func TestColourTerm(t *testing.T) {
	for term, want := range map[string]bool{"": false, "dumb": false, "vt100": false, "linux": false, "xterm-256color": true} {
		if ColourTerm(term) != want {
			t.Errorf("ColourTerm(%q) = %v", term, !want)
		}
	}
}

// An image that is a point of a chain lists its points, newest first; a
// missing one cannot be picked; an earlier one is restored from its file.

// Clone offers the running system (lifeboat clone system) after the
// disks and partitions, and new IDs for a disk clone.
func TestCloneSystem(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><enter><end>")
	h.shows("> The running system on /dev/sda")
	h.keys("<enter>")
	h.shows("copy the system on /dev/sda onto")
	h.golden("clone-system-target")
	h.keys("<enter>") // sdb
	h.shows("New disk and partition IDs")
	h.keys("<down><down><enter><up><up><enter>") // new IDs, then keep
	h.waitFor("Type sdb")
	h.keys("<esc>")
	h.waitFor("cancelled at the confirmation")
	o := f.clones[0]
	if o.Kind != engine.CloneSystem || o.Source != "/dev/sda" || o.Target != "/dev/sdb" || !o.Layout.NewIDs || o.SectorBySector {
		t.Errorf("clone options %+v", o)
	}
}

// The layout step's last entry clones with --layout fit.
func TestCloneWizardFit(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><enter><enter><enter>")
	h.shows("Fit a smaller disk")
	h.keys("<down><down><down><down><enter>")
	h.waitFor("Type sdb")
	h.shows("fit the disk")
	h.complete(f, "sdb<enter>", "Clone finished")
	if o := f.clones[0]; o.Layout.Mode != layout.Fit || o.SectorBySector {
		t.Errorf("clone options %+v", o)
	}
}
