package blockdev

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fakeVolumes stands in for Windows' volume calls (no Windows here): it
// records what was locked and unlocked, and refuses the volumes in busy.
type fakeVolumes struct {
	vols   []winVolume
	sys    []int
	busy   map[string]bool
	events []string
}

func (f *fakeVolumes) volumes() ([]winVolume, error) { return f.vols, nil }
func (f *fakeVolumes) systemDisks() ([]int, error)   { return f.sys, nil }
func (f *fakeVolumes) lockDismount(name string) (func() error, error) {
	if f.busy[name] {
		f.events = append(f.events, "refused "+name)
		return nil, fmt.Errorf("access denied: %w", errors.New("in use"))
	}
	f.events = append(f.events, "lock "+name)
	return func() error { f.events = append(f.events, "unlock "+name); return nil }, nil
}

func labVolumes() []winVolume {
	return []winVolume{
		{Name: "{esp}", Extents: []extent{{Disk: 0}}},
		{Name: "{c}", Paths: []string{`C:\`}, Extents: []extent{{Disk: 0, Start: 100 << 20}}},
		{Name: "{d}", Paths: []string{`D:\`}, Extents: []extent{{Disk: 1, Start: 1 << 20}}},
		{Name: "{e}", Paths: []string{`E:\`, `C:\Photos\`}, Extents: []extent{{Disk: 1, Start: 500 << 20}}},
		{Name: "{usb}", Paths: []string{`F:\`}, Extents: []extent{{Disk: 2, Start: 1 << 20}}},
	}
}

func TestLockDisk(t *testing.T) {
	// Disk 1: both volumes locked and dismounted in order, unlocked in
	// reverse when the writing ends; nothing else touched.
	f := &fakeVolumes{vols: labVolumes(), sys: []int{0}}
	unlock, err := lockDisk(f, `\\.\PhysicalDrive1`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"lock {d}", "lock {e}", "unlock {e}", "unlock {d}"}; !reflect.DeepEqual(f.events, want) {
		t.Errorf("events %q, want %q", f.events, want)
	}

	// The disk Windows runs from: refused before any lock, as busy,
	// pointing to the rescue media.
	f = &fakeVolumes{vols: labVolumes(), sys: []int{0}}
	_, err = lockDisk(f, `\\.\PhysicalDrive0`, 0)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "holds the running Windows") || !strings.Contains(err.Error(), "rescue media") || len(f.events) > 0 {
		t.Errorf("system disk: %v, events %q", err, f.events)
	}

	// A volume in use: refused by its letters, and the one locked before
	// it is unlocked again.
	f = &fakeVolumes{vols: labVolumes(), sys: []int{0}, busy: map[string]bool{"{e}": true}}
	_, err = lockDisk(f, `\\.\PhysicalDrive1`, 1)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), `E:\, C:\Photos\`) || !strings.Contains(err.Error(), "close the programs") || !strings.Contains(err.Error(), "use E:") {
		t.Errorf("busy volume: %v", err)
	}
	if want := []string{"lock {d}", "refused {e}", "unlock {d}"}; !reflect.DeepEqual(f.events, want) {
		t.Errorf("events %q, want %q", f.events, want)
	}

	// A disk without volumes (new, or raw): nothing to lock.
	f = &fakeVolumes{vols: labVolumes(), sys: []int{0}}
	if unlock, err = lockDisk(f, `\\.\PhysicalDrive3`, 3); err != nil || unlock() != nil || len(f.events) > 0 {
		t.Errorf("empty disk: %v, events %q", err, f.events)
	}

	// Windows spanning two disks: both refused.
	f = &fakeVolumes{vols: labVolumes(), sys: []int{0, 2}}
	if _, err = lockDisk(f, `\\.\PhysicalDrive2`, 2); !errors.Is(err, ErrBusy) {
		t.Errorf("second system disk: %v", err)
	}
}
