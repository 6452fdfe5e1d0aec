package tui

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// The restore wizard, step by step, as golden 80×25 screens: image →
// point → whole disk → target → layout → summary and typed name →
// progress → result.
func TestRestoreWizard(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.golden("home")
	h.keys("?")
	h.golden("help")
	h.keys(" ") // any key closes the help
	h.keys("<enter>")
	h.golden("restore-1-image")
	h.keys("<enter>")
	h.golden("restore-2-point")
	h.keys("<enter>")
	h.golden("restore-3-scope")
	h.keys("<enter>")
	h.golden("restore-4-target")
	h.keys("<down><enter>")
	h.golden("restore-5-layout")
	h.keys("<down><enter>")
	h.waitFor("Type sdb and press Enter")
	h.golden("restore-6-confirm")
	h.keys("sdb<enter>")
	h.waitFor("Elapsed")
	h.golden("restore-7-progress")
	close(f.release)
	h.waitFor("Restore finished")
	h.golden("restore-8-result")

	if len(f.restores) != 1 {
		t.Fatalf("%d restores, want 1", len(f.restores))
	}
	o := f.restores[0]
	if o.Image != "/mnt/sdc1/pc1.lbi" || o.Target != "/dev/sdb" || o.Partition != 0 || o.Layout.Mode != layout.Fill || o.Layout.Align != 1<<20 {
		t.Errorf("restore options %+v", o)
	}
	h.keys("<enter>")
	h.shows("Main menu")
}

// A wrong name at the confirmation writes nothing, says so, and goes back
// to the target list with every choice kept; Esc at the confirmation goes
// back to the layout step. The restore then goes ahead without the image,
// point, scope or layout chosen again.
func TestRestoreWrongConfirmation(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter><enter>")
	h.waitFor("Type sdb and press Enter")
	h.keys("sda<enter>")
	h.waitFor("Pick the target again")
	h.golden("restore-declined")
	h.shows(`you typed "sda", not "sdb"; nothing was written to /dev/sdb`)
	h.shows("> sdb")
	if f.written {
		t.Fatal("the restore went on after a wrong name")
	}
	// Enter keeps sdb; the layout step keeps "Keep the partition sizes".
	h.keys("<enter>")
	h.shows("> Keep the partition sizes")
	h.keys("<enter>")
	h.waitFor("Type sdb and press Enter")
	h.keys("sd<esc>")
	h.waitFor("cancelled at the confirmation")
	h.shows("nothing was written to /dev/sdb")
	h.shows("Restore > Layout")
	if f.written {
		t.Fatal("the restore went on after Esc")
	}
	h.keys("<enter>")
	h.waitFor("Type sdb and press Enter")
	h.keys("sdb<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Restore finished")
	if len(f.restores) != 3 {
		t.Fatalf("%d restores, want 3", len(f.restores))
	}
	for i, o := range f.restores {
		if o.Image != "/mnt/sdc1/pc1.lbi" || o.Target != "/dev/sdb" || o.Partition != 0 || o.Layout.Mode != layout.Keep {
			t.Errorf("restore %d options %+v", i, o)
		}
	}
}

// A refused target (the engine's RefusedError, before anything is
// written) goes back to the target list with the refusal shown; picking
// another disk goes on with the image, point, scope and layout kept.
func TestRestoreRefusedTarget(t *testing.T) {
	f := newFake()
	f.refuse = "/dev/sda"
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter>")
	h.shows("Restore > Target")
	h.keys("<enter><down><enter>") // sda, fill the disk
	h.waitFor("refusing /dev/sda")
	h.golden("restore-refused")
	h.shows("> sda")
	h.keys("<down><enter>") // sdb
	h.shows("> Fill the disk")
	h.keys("<enter>")
	h.waitFor("Type sdb and press Enter")
	h.keys("sdb<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Restore finished")
	if len(f.restores) != 2 {
		t.Fatalf("%d restores, want 2", len(f.restores))
	}
	if o := f.restores[1]; o.Image != "/mnt/sdc1/pc1.lbi" || o.Target != "/dev/sdb" || o.Partition != 0 || o.Layout.Mode != layout.Fill {
		t.Errorf("restore options %+v", o)
	}
}

// Esc during the copy asks, then stops; the result says the target is
// incomplete.
func TestRestoreStop(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter><enter>")
	h.waitFor("Type sdb")
	h.keys("sdb<enter>")
	h.waitFor("Elapsed")
	h.keys("<esc>")
	h.golden("restore-stop-question")
	h.keys("n")
	if strings.Contains(h.m.View(), "Press y") {
		t.Fatal("n did not withdraw the question")
	}
	h.keys("<esc>y")
	h.waitFor("Restore stopped")
	h.golden("restore-stopped")
	h.shows("/dev/sdb was partly written")
}

// Esc while the copy is being verified, after every byte was written,
// says so: the data is complete, and (with a new layout) the partition
// table, written after the verification, is not.
func TestRestoreStopVerifying(t *testing.T) {
	f := newFake()
	f.verify = true
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter><enter>")
	h.waitFor("Type sdb")
	h.keys("sdb<enter>")
	h.waitFor("Stage    reading back")
	h.keys("<esc>")
	h.shows("All the data has been written to /dev/sdb")
	h.golden("restore-stop-verifying-question")
	h.keys("y")
	h.waitFor("Restore stopped")
	h.golden("restore-stopped-verifying")
	h.shows("All the data was written to /dev/sdb")
	if strings.Contains(h.m.View(), "partly written") {
		t.Error("a complete write is called partly written")
	}
}

// One partition of an encrypted image: password (a wrong one first),
// the partition, a partition target.
func TestRestorePartitionEncrypted(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><down><enter>")
	h.golden("restore-password")
	h.keys("nope<enter>")
	h.waitFor("does not open the image")
	h.keys("hunter2<enter>")
	h.waitFor("Backup points")
	h.keys("<enter><down><down><enter>")
	h.golden("restore-partition-target")
	h.keys("<down><down><enter>") // sda2
	h.waitFor("Type sda2")
	h.keys("<esc>")
	h.waitFor("not confirmed")
	o := f.restores[0]
	if o.Partition != 2 || o.Target != "/dev/sda2" {
		t.Errorf("restore options %+v", o)
	}
	if p, err := o.Password(); err != nil || string(p) != "hunter2" {
		t.Errorf("password %q %v", p, err)
	}
}

// A typed path that is no image shows the engine's error in full.
func TestRestoreTypedPathError(t *testing.T) {
	h := newHarness(t, fakeOptions(newFake()))
	h.keys("<enter><down><down><enter>/nowhere/x.lbi<enter>")
	h.waitFor("does not exist")
	h.golden("restore-typed-path-error")
}

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
	h.keys("sdb<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Clone finished")
	h.golden("clone-5-result")
	o := f.clones[0]
	if o.Kind != engine.CloneDisk || o.Source != "/dev/sda" || o.Target != "/dev/sdb" || !o.SectorBySector {
		t.Errorf("clone options %+v", o)
	}
}

func TestBackupWizard(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><enter>")
	h.golden("backup-1-source")
	h.keys("<down><down><enter>") // sda2
	h.golden("backup-2-destination")
	h.keys("<enter>")
	h.golden("backup-3-name")
	h.keys("<enter>")
	h.golden("backup-4-compression")
	h.keys("<down><down><enter>")
	h.keys("secret")
	h.golden("backup-5-password")
	h.keys("<enter>secrex<enter>")
	h.shows("The two passwords differ")
	h.golden("backup-6-password-mismatch")
	h.keys("secret<enter>secret<enter>")
	h.golden("backup-7-split")
	h.keys("<down><enter>")
	h.golden("backup-8-summary")
	h.keys("<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Backup finished")
	h.golden("backup-9-result")
	o := f.backups[0]
	if o.Source != "/dev/sda2" || o.Kind != images.KindPartition || o.Output != "/mnt/sdb1/sda2-2026-01-02.lbi" ||
		o.Compression != images.LevelHigh || string(o.Password) != "secret" || o.SplitSize != 4<<30-1<<20 {
		t.Errorf("backup options %+v", o)
	}
}

// A folder that already holds backups of the source offers an
// incremental backup onto the newest of them; it asks no compression and
// no new password.
func TestBackupIncremental(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><enter>")
	h.keys("<down><down><enter>") // sda2
	h.keys("<down><enter>")       // /mnt/sdc1/backups
	h.waitFor("Incremental (only what changed")
	h.golden("backup-type-1-choice")
	h.keys("<enter>") // Incremental, the default
	h.shows("File name of the image in /mnt/sdc1/backups")
	h.keys("<enter>")
	h.shows("Split the image into parts?")
	h.keys("<enter>")
	h.golden("backup-type-2-summary")
	h.shows("compression and encryption as the chain")
	h.keys("<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Backup finished")
	if len(f.backups) != 1 {
		t.Fatalf("%d backups, want 1", len(f.backups))
	}
	o := f.backups[0]
	if o.Source != "/dev/sda2" || o.Kind != images.KindPartition || o.Output != "/mnt/sdc1/backups/sda2-2026-01-02.lbi" ||
		o.Incremental != "/mnt/sdc1/backups/sda2-inc1.lbi" || o.Differential != "" ||
		o.Password != nil || o.ChainPassword != nil || o.Compression != images.LevelHigh {
		t.Errorf("backup options %+v", o)
	}
}

// An encrypted chain: a differential backup asks the chain's password
// once, masked, and passes it as ChainPassword.
func TestBackupDifferentialEncrypted(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><enter><down><down><enter>")
	h.keys("<down><down><enter>/mnt/sdc1/locked<enter>")
	h.waitFor("Differential (only what changed")
	h.shows("sda2-locked.lbi")
	h.keys("<down><enter><enter>hunter2")
	h.golden("backup-type-3-chain-password")
	if strings.Contains(h.m.View(), "hunter2") {
		t.Fatal("the chain password is shown")
	}
	h.keys("<enter><enter>")
	h.shows("differential, in the chain of sda2-locked.lbi")
	h.keys("<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Backup finished")
	o := f.backups[0]
	if o.Differential != "/mnt/sdc1/locked/sda2-locked.lbi" || o.Incremental != "" || o.Password != nil || o.ChainPassword == nil {
		t.Fatalf("backup options %+v", o)
	}
	if p, err := o.ChainPassword(); err != nil || string(p) != "hunter2" {
		t.Errorf("chain password %q %v", p, err)
	}
}

// Full backup in such a folder asks compression and password as usual.
func TestBackupFullInChainFolder(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><enter><down><down><enter><down><enter>")
	h.waitFor("Full backup (new chain)")
	h.keys("<up><enter><enter>")
	h.shows("Compression:")
	h.keys("<enter><enter><enter>")
	h.shows("full backup (new chain)")
	h.keys("<enter>")
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor("Backup finished")
	o := f.backups[0]
	if o.Incremental != "" || o.Differential != "" || o.ChainPassword != nil || o.Compression != images.LevelNormal {
		t.Errorf("backup options %+v", o)
	}
}

// A source of another size (sda, 500 GiB) is not offered the chain.
func TestBackupOtherSourceNoType(t *testing.T) {
	h := newHarness(t, fakeOptions(newFake()))
	h.keys("<down><down><enter><enter><down><enter>")
	h.shows("File name of the image in /mnt/sdc1/backups")
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
	h.keys("<down><down><down><down><enter>")
	h.golden("disks")
	h.keys("<esc><down><down><down><down><down><enter>")
	h.golden("network-host")
	h.keys("d")
	h.shows("network manager")
	h.keys("<esc><down><down><down><down><down><down><down><enter>")
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
	h.keys("<down><down><down><down><down><enter>")
	h.golden("network-rescue")
	h.keys("d")
	h.waitFor("DHCP requested on eth0")
	h.keys("<down>m10.0.0.5/24 10.0.0.1<enter>")
	h.waitFor("address 10.0.0.5/24 set")
	if strings.Join(dhcp, ",") != "eth0" || strings.Join(set, ",") != "wlan0 10.0.0.5/24 10.0.0.1" {
		t.Errorf("dhcp %v, set %v", dhcp, set)
	}
	h.keys("<esc><down><down><down><down><down><down><down><enter><down><enter>")
	if h.m.Action() != ActionPowerOff {
		t.Errorf("action %v, want poweroff", h.m.Action())
	}
}

// PrepareWrite errors stop the operation before it starts.
func TestPrepareWriteError(t *testing.T) {
	o := fakeOptions(newFake())
	o.PrepareWrite = func(target string, src []string) error {
		return errors.New("the image " + src[0] + " is on " + target + "; choose another target")
	}
	h := newHarness(t, o)
	h.keys("<enter><enter><enter><enter><down><enter><enter>")
	h.shows("is on /dev/sdb; choose another target")
	if h.m.op != nil || h.m.wiz == nil || h.m.wiz.nav().cur != stLayout {
		t.Errorf("not on the layout screen still:\n%s", h.m.View())
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
func TestRestoreChainPoint(t *testing.T) {
	f := newFake()
	o := fakeOptions(f)
	o.Images = func() []string { return []string{"/mnt/sdc1/pc1-inc2.lbi"} }
	h := newHarness(t, o)
	h.keys("<enter><enter>")
	h.waitFor("newest first")
	h.golden("restore-chain-points")
	h.keys("<down><enter>") // the missing point is skipped: the full one
	h.waitFor("Restore the whole disk")
	h.keys("<enter><down><enter><enter>")
	h.waitFor("Type sdb")
	h.keys("<esc>")
	h.waitFor("not confirmed")
	if got := f.restores[0].Image; got != "/mnt/sdc1/pc1-full.lbi" {
		t.Errorf("restored %s, want the full point", got)
	}
}
