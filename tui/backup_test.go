package tui

import (
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/images"
)

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
	h.golden("backup-6b-cipher")
	h.keys("<down><enter>")
	h.golden("backup-7-split")
	h.keys("<down><enter>")
	h.golden("backup-8-summary")
	h.complete(f, "<enter>", "Backup finished")
	h.golden("backup-9-result")
	o := f.backups[0]
	if o.Source != "/dev/sda2" || o.Kind != images.KindPartition || o.Output != "/mnt/sdc1/images/sda2-2026-01-02.lbi" ||
		o.Compression != images.LevelHigh || string(o.Password) != "secret" || o.Cipher != images.CipherXChaCha20Poly1305 || o.SplitSize != 4<<30-1<<20 {
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
	h.complete(f, "<enter>", "Backup finished")
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
	h.complete(f, "<enter>", "Backup finished")
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
	h.complete(f, "<enter>", "Backup finished")
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

// A split size of one's own, as --split-size takes.
func TestBackupSplitSize(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><enter><down><down><enter><enter><enter><enter><enter>")
	h.shows("Split the image into parts?")
	h.keys("<end><enter>1x<enter>")
	h.shows("at least 1 MiB")
	h.keys("<backspace><backspace>700MiB")
	h.golden("backup-split-size")
	h.keys("<enter>")
	h.shows("split into parts of 700 MiB")
	h.complete(f, "<enter>", "Backup finished")
	if o := f.backups[0]; o.SplitSize != 700<<20 || len(o.Password) != 0 {
		t.Errorf("backup options %+v", o)
	}
}

// A destination on the disk being backed up is marked before it is chosen.
func TestBackupDestinationOnSource(t *testing.T) {
	o := fakeOptions(newFake())
	o.Destinations = func() []string { return []string{"/mnt/sdc1/images", "/boot/efi/backups"} }
	h := newHarness(t, o)
	h.keys("<down><down><enter><enter>") // sda
	h.shows("/boot/efi/backups  ! on the disk being backed up")
	if strings.Contains(h.m.View(), "/mnt/sdc1/images  !") {
		t.Error("a folder on another disk is marked")
	}
}
