package tui

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
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
	h.complete(f, "sdb<enter>", "Restore finished")
	// The log tells the whole story: the wrong name, Esc, the restore.
	h.keys("l")
	h.golden("log")
	h.shows(`! Restore pc1.lbi to /dev/sdb failed: not confirmed: you typed "sda"`)
	h.keys("<esc>")
	h.shows("Restore finished")
	// The main menu's Log shows the same log.
	h.keys("<enter>")
	h.shows("Log          what ran")
	h.keys("<down><down><down><down><down><down><down><enter>")
	h.shows(`! Restore pc1.lbi to /dev/sdb failed: not confirmed: you typed "sda"`)
	h.keys("<esc>")
	h.shows("> Log")
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
	h.complete(f, "sdb<enter>", "Restore finished")
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

// Esc while the copy is being verified, after the engine said everything
// is written (Written), says so: the data and the new partition table are
// complete; the filesystems of grown partitions are not grown yet.
func TestRestoreStopVerifying(t *testing.T) {
	f := newFake()
	f.verify = true
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter><enter>")
	h.waitFor("Type sdb")
	h.keys("sdb<enter>")
	h.waitFor("Stage    reading back")
	h.keys("<esc>")
	h.shows("All the data and the new partition table have been")
	h.shows("written to /dev/sdb; reading it back and then growing the filesystems")
	h.golden("restore-stop-verifying-question")
	h.keys("y")
	h.waitFor("Restore stopped")
	h.golden("restore-stopped-verifying")
	h.shows("All the data and the new partition table were written to /dev/sdb")
	if strings.Contains(h.m.View(), "partly written") {
		t.Error("a complete write is called partly written")
	}
}

// One partition of an encrypted image: password (a wrong one first),
// the partition, a partition target, delta.
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
	// One partition has its own options step: delta, as the CLI offers.
	h.waitFor("How should the partition be written to /dev/sda2?")
	h.keys("<down><enter>")
	h.shows("[x] Delta")
	h.golden("restore-partition-options")
	h.keys("<up><enter>")
	h.waitFor("Type sda2")
	h.keys("<esc>")
	h.waitFor("not confirmed")
	o := f.restores[0]
	if o.Partition != 2 || o.Target != "/dev/sda2" || !o.Delta || o.Layout.NewIDs || o.Layout.Mode != layout.Keep {
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

// The target list marks the dangerous disks before one is chosen: the
// system disk and mounted ones carry a warning, and the disk holding the
// image cannot be picked at all.
func TestRestoreTargetMarks(t *testing.T) {
	h := newHarness(t, fakeOptions(newFake()))
	h.keys("<enter><enter><enter><enter>")
	h.shows("! the running system is on it (/); mounted at /boot/efi")
	h.shows("! mounted at /mnt/sdc1; holds the image, cannot be written")
	h.keys("<down><down>") // sdb, then past sr0 (read-only) and sdc (holds the image)
	h.shows("> Type a device or file path")
}

// The image list says of each image its date, kind and place in its chain,
// source, size and encryption; a full backup that later points build on is
// described as the start of a chain, not as an image on its own.
func TestRestoreImageDetails(t *testing.T) {
	o := fakeOptions(newFake())
	o.Images = func() []string {
		return []string{"/mnt/sdc1/pc1-full.lbi", "/mnt/sdc1/pc1-inc2.lbi", "/mnt/sdc1/secret.lbi"}
	}
	h := newHarness(t, o)
	h.keys("<enter>")
	h.waitFor("point 3 of chain")
	h.golden("restore-images-details")
	h.shows("full, base of 1 later point")
	h.shows("secret.lbi  [encrypted]")
	h.keys("<enter>")
	h.waitFor("Backup points in /mnt/sdc1/pc1-full.lbi")
	h.shows("full backup at the start of a chain")
	h.golden("restore-chain-base")
}

// The layout step offers what `lifeboat restore` can: new IDs and delta
// as toggles, and sizes given by hand.
func TestRestoreOptions(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter>")
	h.shows("Restore > Layout")
	h.keys("<down><down><down><enter>") // new IDs
	h.keys("<down><enter>")             // delta
	h.golden("restore-5-layout-options")
	h.shows("[x] New disk and partition IDs")
	h.shows("[x] Delta")
	h.keys("<up><up><enter>") // by hand
	h.shows("1=512MiB 2=30GiB")
	h.keys("<ctrl+u>2=sixty<enter>")
	h.shows("the size is not understood")
	h.keys("<ctrl+u>2=60GiB")
	h.golden("restore-sizes")
	h.keys("<enter>")
	h.waitFor("Type sdb and press Enter")
	h.keys("<esc>")
	h.waitFor("cancelled at the confirmation")
	h.shows("Restore > Partition sizes")
	o := f.restores[0]
	if o.Layout.Mode != layout.Manual || o.Layout.Sizes[2] != 60*GiB || len(o.Layout.Sizes) != 1 || !o.Layout.NewIDs || !o.Delta {
		t.Errorf("restore options %+v", o)
	}
}

// A refusal whose fix names a layout option goes back to the Layout step
// and names that step, not the CLI's flag.
func TestRestoreRefusedLayout(t *testing.T) {
	f := newFake()
	f.refuse = "/dev/sdb"
	f.fix = opt.With("choose a larger disk or {}", opt.Use{Option: opt.Layout, Value: "fill"})
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter><enter>") // sdb, keep
	h.waitFor("Fill the disk (Layout).")
	h.shows("Restore > Layout")
	h.golden("restore-refused-layout")
	if strings.Contains(h.m.View(), "--layout") {
		t.Error("the TUI names a CLI flag")
	}
	f.mu.Lock()
	f.refuse = ""
	f.mu.Unlock()
	h.keys("<down><enter>")
	h.waitFor("Type sdb and press Enter")
	if o := f.restores[1]; o.Layout.Mode != layout.Fill || o.Image != "/mnt/sdc1/pc1.lbi" || o.Target != "/dev/sdb" {
		t.Errorf("restore options %+v", o)
	}
}

// A refusal whose reason is about an option the user chose (the engine's
// delta refusals) names that option as the wizard's step, in the reason
// as in the fix, and goes back to where it is chosen.
func TestRestoreRefusedReasonNamesOption(t *testing.T) {
	f := newFake()
	f.refuse = "/dev/sdb"
	f.reason = "{} needs a target laid out by an earlier restore of this chain"
	f.names = []opt.Use{{Option: opt.Delta}}
	f.fix = opt.With("restore without {}", opt.Use{Option: opt.Delta})
	h := newHarness(t, fakeOptions(f))
	h.keys("<enter><enter><enter><enter><down><enter>")
	h.keys("<down><down><down><down><enter>") // delta
	h.shows("[x] Delta")
	h.keys("<up><up><up><up><enter>") // keep
	h.waitFor("refusing /dev/sdb: delta (Layout) needs a target laid out")
	h.shows("restore without delta (Layout)")
	h.shows("Restore > Layout")
	if v := h.m.View(); strings.Contains(v, "--delta") || strings.Contains(v, "{}") {
		t.Errorf("the TUI names a CLI flag or a bare mark:\n%s", v)
	}
}
