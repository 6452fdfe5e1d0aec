package tui

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

var update = flag.Bool("update", false, "rewrite the golden screens in testdata/")

func updating() bool { return *update }

// harness drives a Model the way a bubbletea program does: Update on one
// goroutine (the test's), commands in goroutines whose messages queue up.
// Screens are read with View at 80×25.
type harness struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	if o.Now == nil {
		o.Now = func() string { return "2026-01-02" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, m: New(ctx, o), msgs: make(chan tea.Msg, 100)}
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	h.m.now = func() time.Time { at = at.Add(time.Second); return at }
	h.exec(h.m.Init())
	return h
}

func (h *harness) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				h.exec(c)
			}
			return
		}
		if msg != nil {
			h.msgs <- msg
		}
	}()
}

func (h *harness) send(msg tea.Msg) {
	_, cmd := h.m.Update(msg)
	h.exec(cmd)
}

// keys types: named keys in <>, e.g. "<down><enter>sdb<enter>".
func (h *harness) keys(s string) {
	h.t.Helper()
	for s != "" {
		if s[0] == '<' {
			i := strings.IndexByte(s, '>')
			name := s[1:i]
			s = s[i+1:]
			k, ok := map[string]tea.KeyType{"up": tea.KeyUp, "down": tea.KeyDown, "enter": tea.KeyEnter, "esc": tea.KeyEsc,
				"ctrl+c": tea.KeyCtrlC, "ctrl+u": tea.KeyCtrlU, "backspace": tea.KeyBackspace, "end": tea.KeyEnd}[name]
			if !ok {
				h.t.Fatalf("unknown key <%s>", name)
			}
			h.send(tea.KeyMsg{Type: k})
		} else {
			r := []rune(s)[0]
			s = s[len(string(r)):]
			if r == ' ' {
				h.send(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			} else {
				h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
			}
		}
		h.drain()
	}
}

// drain handles the messages that arrive within a moment.
func (h *harness) drain() {
	for {
		select {
		case msg := <-h.msgs:
			h.send(msg)
		case <-time.After(20 * time.Millisecond):
			return
		}
	}
}

// waitFor handles messages until the screen shows want.
func (h *harness) waitFor(want string) {
	h.t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(h.m.View(), want) {
		select {
		case msg := <-h.msgs:
			h.send(msg)
		case <-deadline:
			h.t.Fatalf("the screen never showed %q; it shows:\n%s", want, h.m.View())
		}
	}
}

// golden compares the screen with testdata/NAME.golden.
func (h *harness) golden(name string) {
	h.t.Helper()
	got := h.m.View()
	lines := strings.Split(got, "\n")
	if len(lines) != 25 {
		h.t.Errorf("%s: the screen has %d lines, not 25", name, len(lines))
	}
	for i, l := range lines {
		if len([]rune(l)) > 80 {
			h.t.Errorf("%s: line %d is wider than 80 columns: %q", name, i+1, l)
		}
	}
	path := filepath.Join("testdata", name+".golden")
	if updating() {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run go test ./tui/ -update to write it)", err)
	}
	if got+"\n" != string(want) {
		h.t.Errorf("screen %s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// complete types keys (the target's name, or Enter on a summary), lets
// the fake's operation run to its end and waits for done.
func (h *harness) complete(f *fake, keys, done string) {
	h.t.Helper()
	h.keys(keys)
	h.waitFor("Elapsed")
	close(f.release)
	h.waitFor(done)
}

func (h *harness) shows(want string) {
	h.t.Helper()
	if !strings.Contains(h.m.View(), want) {
		h.t.Errorf("the screen does not show %q:\n%s", want, h.m.View())
	}
}

// fake is a Backend with two disks and two images; long operations report
// progress, ask for confirmation, and wait for release before finishing.
type fake struct {
	mu       sync.Mutex
	release  chan struct{}
	restores []engine.RestoreOptions
	clones   []engine.CloneOptions
	backups  []engine.BackupOptions
	extracts []engine.ExtractOptions
	written  bool      // a restore or clone got past Confirm
	refuse   string    // a target the engine refuses before Confirm
	fix      opt.Fix   // the refusal's fix
	reason   string    // the refusal's reason, if not the default one
	names    []opt.Use // the options the reason names
	verify   bool      // the copy completes, then verification waits for release
	err      error
}

func newFake() *fake { return &fake{release: make(chan struct{})} }

const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

func (f *fake) Disks() ([]engine.DiskInfo, error) {
	return []engine.DiskInfo{
		{Name: "sda", Path: "/dev/sda", Bus: "sata", Model: "WDC WD5000", Serial: "WD-123", Size: 500 * GiB, SectorSize: 512, Table: "gpt",
			Partitions: []engine.PartitionInfo{
				{Name: "sda1", Path: "/dev/sda1", Number: 1, Start: MiB, Size: 512 * MiB, FS: &images.FS{Type: "vfat", Label: "EFI", Size: 512 * MiB, Used: 30 * MiB}, MountPoints: []string{"/boot/efi"}},
				{Name: "sda2", Path: "/dev/sda2", Number: 2, Start: 513 * MiB, Size: 400 * GiB, Label: "root", FS: &images.FS{Type: "ext4", Label: "root", Size: 400 * GiB, Used: 120 * GiB}, MountPoints: []string{"/"}},
			}},
		{Name: "sdb", Path: "/dev/sdb", Bus: "usb", Model: "SanDisk Ultra", Serial: "4C53", Size: 64 * GiB, SectorSize: 512, Removable: true, Partitions: []engine.PartitionInfo{}},
		{Name: "sr0", Path: "/dev/sr0", Bus: "sata", Model: "QEMU DVD-ROM", Size: 300 * MiB, SectorSize: 2048, ReadOnly: true, Partitions: []engine.PartitionInfo{}},
		{Name: "sdc", Path: "/dev/sdc", Bus: "usb", Model: "Backup Plus", Size: 2000 * GiB, SectorSize: 512, Table: "mbr", Partitions: []engine.PartitionInfo{
			{Name: "sdc1", Path: "/dev/sdc1", Number: 1, Start: MiB, Size: 2000*GiB - MiB, FS: &images.FS{Type: "exfat", Label: "BACKUPS", Size: 2000*GiB - MiB, Used: 700 * GiB}, MountPoints: []string{"/mnt/sdc1"}},
		}},
	}, nil
}

var stored = &images.Table{Type: "gpt", Partitions: []images.Partition{
	{Number: 1, Start: MiB, Size: 512 * MiB, Type: "EFI System", FS: &images.FS{Type: "vfat", Label: "EFI", Used: 30 * MiB}},
	{Number: 2, Start: 513 * MiB, Size: 30 * GiB, Type: "Linux filesystem", Name: "root", FS: &images.FS{Type: "ext4", Label: "root", Used: 12 * GiB}},
}}

func (f *fake) Info(_ context.Context, image string, pw func() ([]byte, error)) (*engine.ImageInfo, error) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ii := &engine.ImageInfo{Image: image, Info: images.Info{Created: created}, Meta: images.Metadata{Streams: []images.Stream{
		{Kind: images.KindDisk, Source: "/dev/nvme0n1", Size: 32 * GiB, SectorSize: 512, Mode: images.ModeUsed, Table: stored}}}}
	switch filepath.Base(image) {
	case "pc1.lbi":
		return ii, nil
	case "pc1-full.lbi":
		// The engine finds the later point beside it.
		ii.Later = []engine.ChainPoint{{File: "/mnt/sdc1/pc1-inc2.lbi", Kind: images.PointIncremental, Created: created}}
		return ii, nil
	case "pc1-inc2.lbi":
		ii.Meta.Point = &images.Point{Kind: images.PointIncremental}
		ii.Chain = []engine.ChainPoint{
			{File: "/mnt/sdc1/pc1-full.lbi", Kind: images.PointFull, Created: created.Add(-48 * time.Hour)},
			{File: "/mnt/sdc1/pc1-inc1.lbi", Kind: images.PointIncremental, Created: created.Add(-24 * time.Hour), Missing: true},
			{File: image, Kind: images.PointIncremental, Created: created},
		}
		return ii, nil
	case "sda2-full.lbi", "sda2-inc1.lbi", "sda2-locked.lbi":
		// Backups of /dev/sda2 (400 GiB) in a folder: a full one and a
		// newer incremental point; an encrypted full one elsewhere.
		ii.Meta.Streams = []images.Stream{{Kind: images.KindPartition, Source: "/dev/sda2", Size: 400 * GiB, SectorSize: 512, Mode: images.ModeUsed}}
		ii.Compression = images.LevelHigh
		ii.Created = created.Add(-24 * time.Hour)
		switch filepath.Base(image) {
		case "sda2-inc1.lbi":
			ii.Created = created
			ii.Meta.Point = &images.Point{Kind: images.PointIncremental}
		case "sda2-locked.lbi":
			ii.Cipher = images.CipherAES256GCM
			ii.Locked = pw == nil
		}
		return ii, nil
	case "secret.lbi":
		ii.Cipher = images.CipherAES256GCM
		if pw == nil {
			ii.Locked = true
			return ii, nil
		}
		if p, _ := pw(); string(p) != "hunter2" {
			return nil, fmt.Errorf("image %s: %w", image, images.ErrWrongPassword)
		}
		return ii, nil
	}
	return nil, fmt.Errorf("image %s does not exist; check the path (split images are opened by their first part): %w", image, os.ErrNotExist)
}

func (f *fake) plan(target string) engine.Plan {
	return engine.Plan{Image: "/mnt/sdc1/pc1.lbi", Target: target, TargetSize: 64 * GiB, What: "disk", Bytes: 32 * GiB, TargetIsDev: true,
		Overwrites: []string{`partition 1 (64 GiB): exfat "STICK"`},
		Layout: &layout.Plan{Table: &layout.Table{Type: layout.GPT}, DiskSize: 64 * GiB,
			Moves: []layout.Move{{Number: 1, SrcStart: MiB, SrcSize: 512 * MiB, DstStart: MiB, DstSize: 512 * MiB},
				{Number: 2, SrcStart: 513 * MiB, SrcSize: 30 * GiB, DstStart: 513 * MiB, DstSize: 62 * GiB}},
			Notes: []string{"partition 2 grows from 30 GiB to 62 GiB; its ext4 filesystem is grown to match"}},
		Before: stored.Partitions}
}

// work reports a precheck, asks for confirmation, reports half the copy
// and waits for release (or cancellation).
// fakePartitions are the engine's per-partition results of a whole-disk
// restore or clone of the stored table onto the 64 GiB stick.
var fakePartitions = []engine.PartitionResult{
	{Number: 1, FS: "vfat", Label: "EFI", Size: 512 * MiB, Written: 30 * MiB, Elapsed: 2 * time.Second, Verified: true},
	{Number: 2, FS: "ext4", Label: "root", Size: 62 * GiB, Written: 12 * GiB, Elapsed: 97 * time.Second, Verified: true, Grown: true},
}

func (f *fake) work(ctx context.Context, p engine.Progress, confirm func(engine.Plan) error, written func(), plan engine.Plan) error {
	if p == nil {
		p = engine.NoProgress{}
	}
	if confirm != nil {
		p.Report(engine.Status{Stage: engine.StagePrecheck, Done: 14 * GiB, Total: 14 * GiB, Rate: 280e6, Elapsed: 50 * time.Second, Final: true})
		if err := confirm(plan); err != nil {
			return err
		}
		f.mu.Lock()
		f.written = true
		f.mu.Unlock()
	}
	p.Report(engine.Status{Stage: engine.StageRestore, Done: 7 * GiB, Total: 14 * GiB, Rate: 150e6, Elapsed: 50 * time.Second})
	if f.verify {
		p.Report(engine.Status{Stage: engine.StageRestore, Done: 14 * GiB, Total: 14 * GiB, Rate: 150e6, Elapsed: 100 * time.Second, Final: true})
		if written != nil {
			written()
		}
		p.Report(engine.Status{Stage: engine.StageVerify, Done: 3 * GiB, Total: 14 * GiB, Rate: 300e6, Elapsed: 10 * time.Second})
	}
	select {
	case <-f.release:
	case <-ctx.Done():
		return fmt.Errorf("restore to %s cancelled: %w", plan.Target, ctx.Err())
	}
	p.Report(engine.Status{Stage: engine.StageRestore, Done: 14 * GiB, Total: 14 * GiB, Rate: 150e6, Elapsed: 100 * time.Second, Final: true})
	return f.err
}

func (f *fake) Restore(ctx context.Context, o engine.RestoreOptions) (*engine.RestoreResult, error) {
	f.mu.Lock()
	f.restores = append(f.restores, o)
	f.mu.Unlock()
	f.mu.Lock()
	refuse, fix, reason, names := f.refuse, f.fix, f.reason, f.names
	f.mu.Unlock()
	if reason == "" {
		reason = "the disk is too small for the stored layout"
	}
	if o.Target == refuse && !fix.IsZero() {
		return nil, &engine.RefusedError{Object: o.Target, Reason: reason, Names: names, Fix: fix}
	}
	if o.Target == refuse {
		return nil, &engine.RefusedError{Object: o.Target, Reason: "it holds the running system (mounted at /)", Fix: opt.Text("choose another disk")}
	}
	if err := f.work(ctx, o.Progress, o.Confirm, o.Written, f.plan(o.Target)); err != nil {
		return nil, err
	}
	return &engine.RestoreResult{Target: o.Target, Bytes: 32 * GiB, Written: 14 * GiB, Verified: true, Elapsed: 150 * time.Second,
		Notes: []string{"partition 2 (ext4) grown to 62 GiB"}, Partitions: fakePartitions}, nil
}

func (f *fake) Clone(ctx context.Context, o engine.CloneOptions) (*engine.CloneResult, error) {
	f.mu.Lock()
	f.clones = append(f.clones, o)
	f.mu.Unlock()
	pl := f.plan(o.Target)
	pl.Image = o.Source
	if err := f.work(ctx, o.Progress, o.Confirm, o.Written, pl); err != nil {
		return nil, err
	}
	return &engine.CloneResult{RestoreResult: engine.RestoreResult{Target: o.Target, Bytes: 32 * GiB, Verified: true, Elapsed: 150 * time.Second, Partitions: fakePartitions}}, nil
}

func (f *fake) Backup(ctx context.Context, o engine.BackupOptions) (*engine.BackupResult, error) {
	f.mu.Lock()
	f.backups = append(f.backups, o)
	f.mu.Unlock()
	if err := f.work(ctx, o.Progress, nil, nil, engine.Plan{Target: o.Output}); err != nil {
		return nil, err
	}
	return &engine.BackupResult{Image: o.Output, SourceSize: 500 * GiB, Stored: 60 * GiB, Unused: 380 * GiB, Elapsed: 20 * time.Minute}, nil
}

func (f *fake) Check(ctx context.Context, o engine.CheckOptions) (*engine.CheckResult, error) {
	if err := f.work(ctx, o.Progress, nil, nil, engine.Plan{Target: o.Image}); err != nil {
		return nil, err
	}
	return &engine.CheckResult{StoredBytes: 14 * GiB, DiskBytes: 32 * GiB, Elapsed: 100 * time.Second}, nil
}

// fakeTree is the files of the fake image's partition 2.
var fakeTree = map[string][]engine.FileEntry{
	"/":                {{Name: "home", Mode: fs.ModeDir | 0o755}, {Name: "etc", Mode: fs.ModeDir | 0o755}, {Name: "vmlinuz", Mode: fs.ModeSymlink | 0o777, Link: "boot/vmlinuz-6.1"}},
	"/home":            {{Name: "ann", Mode: fs.ModeDir | 0o750}},
	"/home/ann":        {{Name: "thesis.odt", Mode: 0o640, Size: 3 * MiB}, {Name: "photos", Mode: fs.ModeDir | 0o755}},
	"/etc":             {{Name: "fstab", Mode: 0o644, Size: 612}},
	"/home/ann/photos": {},
}

func (f *fake) ExploreParts(ctx context.Context, o engine.ExploreOptions) ([]engine.ViewPart, error) {
	return []engine.ViewPart{
		{Number: 1, Size: 512 * MiB, FS: &images.FS{Type: "vfat", Label: "EFI"}},
		{Number: 2, Start: 513 * MiB, Size: 31 * GiB, FS: &images.FS{Type: "ext4", Label: "root"}},
		{Number: 3, Size: MiB},
	}, nil
}

func (f *fake) ListFiles(ctx context.Context, o engine.ExploreOptions, part int, dir string) (*engine.Listing, error) {
	ents, ok := fakeTree[dir]
	if !ok || part != 2 {
		return nil, fmt.Errorf("%s: not found in partition %d of %s: %w", dir, part, o.Image, fs.ErrNotExist)
	}
	mtime := time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC)
	for i := range ents {
		ents[i].ModTime = mtime
	}
	return &engine.Listing{Part: engine.ViewPart{Number: part}, ReadPath: "the kernel's ext4 driver on a read-only loop device over FUSE", Entries: ents}, nil
}

func (f *fake) Extract(ctx context.Context, o engine.ExtractOptions) (*engine.ExtractResult, error) {
	f.mu.Lock()
	f.extracts = append(f.extracts, o)
	f.mu.Unlock()
	if err := f.work(ctx, o.Progress, nil, nil, engine.Plan{Target: o.Dest}); err != nil {
		return nil, err
	}
	return &engine.ExtractResult{Files: 2, Dirs: 1, Bytes: 3*MiB + 612, ReadPath: "the kernel's ext4 driver on a read-only loop device over FUSE", ChunksRead: 31}, nil
}

func fakeOptions(f *fake) Options {
	return Options{
		Version: "1.0", Backend: f,
		Images:       func() []string { return []string{"/mnt/sdc1/pc1.lbi", "/mnt/sdc1/secret.lbi"} },
		Destinations: func() []string { return []string{"/mnt/sdc1/images", "/mnt/sdc1/backups"} },
		FolderImages: func(dir string) []string {
			return map[string][]string{
				"/mnt/sdc1/backups": {"/mnt/sdc1/backups/pc1.lbi", "/mnt/sdc1/backups/sda2-full.lbi", "/mnt/sdc1/backups/sda2-inc1.lbi"},
				"/mnt/sdc1/locked":  {"/mnt/sdc1/locked/sda2-locked.lbi"},
			}[dir]
		},
		Interfaces: func() ([]Iface, error) {
			return []Iface{{Name: "eth0", MAC: "52:54:00:12:34:56", Up: true, Addrs: []string{"10.0.2.15/24"}}, {Name: "wlan0", MAC: "52:54:00:ab:cd:ef"}}, nil
		},
	}
}

func windowSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }
