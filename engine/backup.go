package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/fsprobe"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// BackupOptions describe one backup.
type BackupOptions struct {
	Source string            // disk, partition or raw disk image file
	Kind   images.StreamKind // KindDisk or KindPartition
	Output string            // image path; "-" writes to Stdout
	Stdout io.Writer         // where "-" goes
	// Compression, Password (encrypts when set), Cipher, SplitSize,
	// ChunkSize, Overwrite and KDF are passed to images.WriterOptions.
	Compression images.Level
	Password    []byte
	Cipher      images.Cipher
	SplitSize   int64
	ChunkSize   int
	Overwrite   bool
	KDF         images.KDFCost
	// Mode is the permission of the image's files (0: images.DefaultMode,
	// 0600), passed to images.WriterOptions.
	Mode fs.FileMode
	// SectorBySector stores every sector even where a filesystem map could
	// skip unused blocks (by default only the blocks the filesystems use
	// are read and stored).
	SectorBySector bool
	// Rescue keeps going past read errors: unreadable sectors are recorded
	// as damaged and stored as zeros. Without it a read error aborts.
	Rescue bool
	// Incremental (or Differential) names an image of an existing chain:
	// the new point stores only what the latest point of that chain (or
	// its full backup) does not hold. Earlier points are looked for next
	// to it and in ChainDir. An encrypted chain's points share its
	// password, asked with ChainPassword; Password is then not used.
	Incremental   string
	Differential  string
	ChainDir      string
	ChainPassword func() ([]byte, error)
	// ChainEncryption is what the backup demands of the encryption of the
	// chain it builds on.
	ChainEncryption Encryption
	ToolVersion     string
	Progress        Progress
	Log             *slog.Logger
	// Warn, if set, is called before the source is read with each thing
	// the user should know about the source (it is mounted read-write;
	// it looks like a whole disk given as a partition, or the reverse).
	// The warnings are in BackupResult.Warnings too.
	Warn func(msg string)
}

// BackupResult says what a backup wrote.
type BackupResult struct {
	Image      string
	UUID       string
	SourceSize int64
	Stored     int64 // compressed (and encrypted) chunk bytes
	Chunks     int
	ZeroChunks int
	DupChunks  int
	Mode       images.Mode
	Unused     int64          // bytes not stored because no filesystem uses them
	Damaged    []images.Range // unreadable ranges (with Rescue), stored as zeros
	Fallbacks  []string       // partitions copied sector by sector, and why
	Warnings   []string       // what Warn was told
	Point      images.PointKind
	Parent     string // the point an incremental or differential builds on
	// ParentBytes are the source bytes an earlier point already held.
	ParentBytes int64
	Elapsed     time.Duration
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Backup copies a disk or partition into a new image. Every check that can
// refuse happens before the image is created; the image appears under its
// name only when complete.
func Backup(ctx context.Context, o BackupOptions) (*BackupResult, error) {
	log := logger(o.Log)
	start := time.Now()
	if o.Kind != images.KindDisk && o.Kind != images.KindPartition {
		return nil, fmt.Errorf("backup kind %q: use %q or %q", o.Kind, images.KindDisk, images.KindPartition)
	}
	src, err := blockdev.Open(o.Source, blockdev.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("backup source: %w", err)
	}
	defer src.Close()
	if o.Output == "" {
		return nil, errors.New("no output image given; name one with -o FILE (or -o - for standard output)")
	}
	var out imageOutput
	if o.Output != "-" {
		var notes []string
		if out, notes, err = createImage(ctx, o.Output, createCheck{overwrite: o.Overwrite, split: o.SplitSize, source: o.Source}); err != nil {
			return nil, err
		}
		defer out.abort()
		for _, n := range notes {
			if o.Warn != nil {
				o.Warn(n)
			}
		}
	}

	stream, err := describeSource(src, o)
	if err != nil {
		return nil, err
	}
	sc := inspectSource(src, o, stream)
	for _, w := range sc.warnings {
		log.Warn("source", "warning", w)
		if o.Warn != nil {
			o.Warn(w)
		}
	}
	rd, salv, release, notes, err := sourceReader(ctx, o.Source, src, o.Rescue, log)
	defer release()
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", o.Source, err)
	}
	for _, n := range notes {
		log.Info("source", "note", n)
		sc.warnings = append(sc.warnings, n)
		if o.Warn != nil {
			o.Warn(n)
		}
	}
	wo := images.WriterOptions{ChunkSize: o.ChunkSize, Compression: o.Compression, Password: o.Password, Cipher: o.Cipher,
		KDF: o.KDF, SplitSize: o.SplitSize, Overwrite: o.Overwrite, ToolVersion: o.ToolVersion, Mode: o.Mode}
	point := &images.Point{Kind: images.PointFull}
	parentPath := ""
	if o.Incremental != "" || o.Differential != "" {
		parent, path, err := backupParent(ctx, o, stream, point)
		if err != nil {
			return nil, err
		}
		defer parent.Close()
		parentPath = path
		wo.Parent = parent.point
		wo.Password, wo.Cipher = nil, images.CipherNone
		if parent.point.Encrypted() {
			if wo.Password, err = parent.password(); err != nil {
				return nil, err
			}
			wo.Cipher = parent.point.Info().Cipher
		}
	}
	var w *images.Writer
	if out != nil {
		w, err = out.writer(wo)
	} else {
		w, err = images.NewStreamWriter(o.Stdout, "standard output", wo)
	}
	if err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Output, err)
	}
	defer w.Abort()

	used, cuts, err := usedRanges(rd, stream, o.SectorBySector, true)
	if err != nil {
		return nil, readFailure(o.Source, err)
	}
	sc.explainLive(stream)
	log.Info("backup started", "source", o.Source, "size", src.Size, "output", o.Output, "compression", o.Compression,
		"encrypted", len(o.Password) > 0, "mode", stream.Mode, "used", rangesLen(used))
	tr := startStage(o.Progress, StageBackup, images.StreamWork(src.Size, used))
	st, err := w.AddStream(ctx, rd, src.Size, images.StreamOptions{Progress: tr.add, Used: used, Cuts: cuts})
	tr.end()
	if err != nil {
		log.Error("backup failed", "source", o.Source, "err", err)
		var re *images.ReadError
		if errors.As(err, &re) {
			return nil, readFailure(o.Source, &IOError{Op: "read", Path: o.Source, Offset: re.Offset, Err: re.Err})
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("backup of %s cancelled; no image was written: %w", o.Source, ctx.Err())
		}
		if full := outputFull(o.Output, err); full != nil {
			return nil, fmt.Errorf("backup of %s: %w", o.Source, full)
		}
		return nil, fmt.Errorf("backup of %s to %s: %w", o.Source, o.Output, err)
	}
	stream.Stored, stream.Unused = st.DataBytes, st.UnusedBytes
	if salv != nil {
		stream.Damaged = salv.Damaged()
	}
	meta := &images.Metadata{Streams: []images.Stream{*stream}, Point: point}
	if err := w.Commit(meta); err != nil {
		if full := outputFull(o.Output, err); full != nil {
			return nil, fmt.Errorf("backup of %s: %w", o.Source, full)
		}
		return nil, fmt.Errorf("finish image %s: %w", o.Output, err)
	}
	if out != nil {
		if err := out.finish(ctx, w); err != nil {
			return nil, fmt.Errorf("backup of %s: %w", o.Source, err)
		}
	}
	res := &BackupResult{Image: o.Output, UUID: w.UUID(), SourceSize: src.Size, Stored: st.Stored,
		Chunks: st.Chunks, ZeroChunks: st.ZeroChunks, DupChunks: st.DupChunks, Elapsed: time.Since(start),
		Mode: stream.Mode, Unused: st.UnusedBytes, Damaged: stream.Damaged, Fallbacks: fallbacks(stream),
		Point: point.Kind, Parent: parentPath, ParentBytes: st.ParentBytes, Warnings: sc.warnings}
	log.Info("backup finished", "image", o.Output, "stored", st.Stored, "elapsed", res.Elapsed)
	return res, nil
}

// sourceCheck is what Backup found out about its source besides its
// contents: where it is mounted read-write, and what to warn about.
type sourceCheck struct {
	warnings []string
	liveAt   []string         // read-write mount points of the source as a whole
	livePart map[int][]string // of its partitions, by number
}

// inspectSource warns about a source that is live (mounted read-write) or
// of the other kind than asked for: a whole disk with a partition table
// given to "backup part", a partition given to "backup disk". Both are
// allowed (a disk image of a partition restores fine), so they are
// warnings, with the command that was probably meant.
func inspectSource(src *blockdev.Device, o BackupOptions, s *images.Stream) *sourceCheck {
	sc := &sourceCheck{livePart: map[int][]string{}}
	disk, part := findInList(o.Source)
	switch {
	case o.Kind == images.KindPartition && disk != nil && len(disk.Partitions) > 0:
		sc.warnings = append(sc.warnings, fmt.Sprintf("%s is a whole disk with %d partitions, not a partition; to keep its partition table use: lifeboat backup disk %s -o IMAGE (or back up one partition, e.g. lifeboat backup part %s -o IMAGE)",
			o.Source, len(disk.Partitions), o.Source, disk.Partitions[0].Path))
	case o.Kind == images.KindPartition && disk == nil && part == nil && s.FS == nil:
		if t, err := layout.Read(src, src.Size, src.SectorSize); err == nil && t.Type != layout.None && len(t.Partitions) > 0 {
			sc.warnings = append(sc.warnings, fmt.Sprintf("%s holds a %s partition table with %d partitions, like a whole disk; to keep the table use: lifeboat backup disk %s -o IMAGE",
				o.Source, strings.ToUpper(t.Type.String()), len(t.Partitions), o.Source))
		}
	case o.Kind == images.KindDisk && part != nil:
		sc.warnings = append(sc.warnings, fmt.Sprintf("%s is partition %d of %s, not a whole disk; its image will hold no partition table. For one partition use: lifeboat backup part %s -o IMAGE; for the whole disk: lifeboat backup disk %s -o IMAGE",
			o.Source, part.Number, part.disk, o.Source, part.disk))
	}
	sc.liveAt = readWriteMounts(o.Source)
	if disk != nil {
		for _, p := range disk.Partitions {
			if rw := readWriteMounts(p.Path); len(rw) > 0 {
				sc.livePart[p.Number] = rw
			}
		}
	}
	// On Windows the mounted volumes are read through snapshots, and
	// snapshotSource's notes say how each was read.
	if len(sc.liveAt) > 0 && runtime.GOOS != "windows" {
		sc.warnings = append(sc.warnings, fmt.Sprintf("%s is mounted read-write at %s: it is live, and files that change while it is read may be stored half-old, half-new; for a consistent image unmount it first, or remount it read-only (mount -o remount,ro %s), or back it up from the rescue media",
			o.Source, strings.Join(sc.liveAt, ", "), sc.liveAt[0]))
	}
	return sc
}

// explainLive rewrites the fallback reason of a mounted ext filesystem:
// its journal needs recovery because it is in use, and "mount it once"
// is no advice for a filesystem that is mounted.
func (sc *sourceCheck) explainLive(s *images.Stream) {
	const stale = "mount it once or run e2fsck to map only its used blocks"
	fix := func(reason string, at []string) string {
		if len(at) == 0 || !strings.Contains(reason, stale) {
			return reason
		}
		return strings.Replace(strings.Replace(reason, "(the filesystem was not cleanly unmounted)", "(it is mounted read-write at "+strings.Join(at, ", ")+")", 1),
			stale, "unmount it, or remount it read-only, to map only its used blocks", 1)
	}
	s.ModeReason = fix(s.ModeReason, sc.liveAt)
	if s.Table != nil {
		for i, p := range s.Table.Partitions {
			s.Table.Partitions[i].ModeReason = fix(p.ModeReason, sc.livePart[p.Number])
		}
	}
}

// listedPart is a partition found in the system's disk list, with its disk.
type listedPart struct {
	blockdev.Partition
	disk string
}

// findInList finds path among the system's disks and partitions (as the
// same device node, whatever name was used for it). Both are nil for a
// plain file or where disks cannot be listed.
func findInList(path string) (*blockdev.Disk, *listedPart) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().IsRegular() {
		return nil, nil
	}
	ds, err := blockdev.List()
	if err != nil {
		return nil, nil
	}
	same := func(p string) bool {
		pi, err := os.Stat(p)
		return err == nil && os.SameFile(fi, pi)
	}
	for i, d := range ds {
		if same(d.Path) {
			return &ds[i], nil
		}
		for _, p := range d.Partitions {
			if same(p.Path) {
				return nil, &listedPart{p, d.Path}
			}
		}
	}
	return nil, nil
}

// readWriteMounts returns where path (or anything on it) is mounted
// read-write, from /proc/self/mountinfo; nothing where that cannot be read.
func readWriteMounts(path string) []string {
	points, err := blockdev.MountPoints(path)
	if err != nil || len(points) == 0 {
		return nil
	}
	if runtime.GOOS == "windows" {
		// Windows mounts its volumes read-write, and has no mountinfo.
		return points
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var rw []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		// Field 5 is the mount point (octal-escaped), 6 its options.
		point := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if slices.Contains(points, point) && slices.Contains(strings.Split(f[5], ","), "rw") && !slices.Contains(rw, point) {
			rw = append(rw, point)
		}
	}
	return rw
}

// describeSource reads the source's partition table and filesystems for the
// image metadata.
func describeSource(src *blockdev.Device, o BackupOptions) (*images.Stream, error) {
	s := &images.Stream{Kind: o.Kind, Source: o.Source, Size: src.Size, SectorSize: src.SectorSize,
		Mode: images.ModeAllSectors, Created: time.Now().UTC().Truncate(time.Second)}
	if o.Kind == images.KindPartition {
		s.FS = probeFS(io.NewSectionReader(src, 0, src.Size), src.Size)
		return s, nil
	}
	t, err := layout.Read(src, src.Size, src.SectorSize)
	if err != nil {
		// A damaged table does not stop a sector-by-sector backup; say so.
		s.Table = nil
		return s, nil
	}
	if t.Type == layout.None {
		s.FS = probeFS(src, src.Size) // a filesystem on the whole disk
		return s, nil
	}
	it := images.NewTable(t)
	for i, p := range it.Partitions {
		it.Partitions[i].Mode = images.ModeAllSectors
		if p.Start >= 0 && p.Size > 0 && p.Start+p.Size <= src.Size {
			it.Partitions[i].FS = probeFS(io.NewSectionReader(src, p.Start, p.Size), p.Size)
		}
	}
	s.Table = it
	return s, nil
}

func probeFS(r io.ReaderAt, size int64) *images.FS {
	fi, err := fsprobe.Probe(r, size)
	if err != nil || fi.Type == "" {
		return nil
	}
	return &images.FS{Type: fi.Type, Label: fi.Label, UUID: fi.UUID, Size: fi.Size, Used: fi.Used}
}

// readFailure says what to do about a read error of the source.
func readFailure(source string, err error) error {
	var ioe *IOError
	if errors.As(err, &ioe) {
		return &FixError{Err: err, Fix: opt.With("to back up what can still be read, run the backup again with {} (unreadable sectors are then stored as zeros and listed)", opt.Use{Option: opt.Rescue})}
	}
	return fmt.Errorf("read %s: %w", source, err)
}

// fallbacks lists the parts of a stream stored sector by sector, and why.
func fallbacks(s *images.Stream) []string {
	var out []string
	if s.Table == nil {
		if s.ModeReason != "" {
			out = append(out, s.ModeReason)
		}
		return out
	}
	for _, p := range s.Table.Partitions {
		if r := ModeNote(p); r != "" {
			out = append(out, fmt.Sprintf("partition %d: %s", p.Number, r))
		}
	}
	return out
}

// noFSTypes are partition types that hold no filesystem by design: they
// are copied whole as a matter of course, not because something is wrong.
var noFSTypes = map[string]string{
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot partition",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved partition",
}

// ModeNote says why partition p was copied whole, or "" if only what its
// filesystem uses was stored. A partition that holds no filesystem by
// design is named for what it is ("BIOS boot partition (1.0 MiB): it holds
// boot code, not a filesystem") instead of "unknown filesystem", which
// reads as if something were wrong.
func ModeNote(p images.Partition) string {
	if p.ModeReason == "" {
		return ""
	}
	if what, ok := noFSTypes[strings.ToUpper(p.Type)]; ok && p.FS == nil && strings.HasPrefix(p.ModeReason, "unknown filesystem") {
		if what == "BIOS boot partition" {
			return fmt.Sprintf("%s (%s): it holds boot code, not a filesystem", what, HumanBytes(p.Size))
		}
		return fmt.Sprintf("%s (%s): it holds no filesystem", what, HumanBytes(p.Size))
	}
	return p.ModeReason
}

// backupParent opens the point a new incremental or differential builds on
// (with its chain) and fills in the new point's place in the chain. The
// source must be the disk or partition the chain was made of.
func backupParent(ctx context.Context, o BackupOptions, stream *images.Stream, point *images.Point) (*chain, string, error) {
	if o.Incremental != "" && o.Differential != "" {
		return nil, "", &FixError{Err: errors.New("a new point is incremental or differential, not both"),
			Fix: opt.With("give {} or {}", opt.Use{Option: opt.Incremental}, opt.Use{Option: opt.Differential})}
	}
	base, parentPath := o.Incremental, ""
	var err error
	if base != "" {
		point.Kind = images.PointIncremental
		if parentPath, err = latestPoint(base, o.ChainDir); err != nil {
			return nil, "", err
		}
	} else {
		base, point.Kind = o.Differential, images.PointDifferential
		b, err := openImage(ctx, base, images.OpenOptions{})
		if err != nil {
			return nil, "", describeOpenError(base, err)
		}
		root, hint := rootOf(b), ""
		if p := b.Meta.Point; p != nil && len(p.Chain) > 0 {
			hint = p.Chain[0].File
		}
		b.Close()
		f := newPointFinder(base, o.ChainDir)
		if parentPath = f.find(root, hint); parentPath == "" {
			return nil, "", missingPoint(base, root, images.Link{UUID: root, File: hint, Kind: images.PointFull}, f.dirs)
		}
	}
	parent, err := openChain(ctx, parentPath, o.ChainDir, o.ChainPassword, o.ChainEncryption)
	if err != nil {
		return nil, "", err
	}
	pm := parent.point.Meta
	if len(pm.Streams) != 1 || pm.Streams[0].Kind != stream.Kind || pm.Streams[0].Size != stream.Size {
		parent.Close()
		return nil, "", refuseFix(o.Output, opt.With("back up this source with a new full backup (without {}/{})", opt.Use{Option: opt.Incremental}, opt.Use{Option: opt.Differential}), nil,
			"%s is a backup of another %s (%s, %s), not of %s (%s)",
			parentPath, pm.Streams[0].Kind, pm.Streams[0].Source, HumanBytes(pm.Streams[0].Size), o.Source, HumanBytes(stream.Size))
	}
	for _, m := range parent.all() {
		for _, part := range m.Info().Parts {
			if sameFile(part, o.Output) {
				parent.Close()
				return nil, "", refuse(o.Output, "it is %s, a point of the chain the new backup builds on", "choose a new name for the new point", part)
			}
		}
	}
	if point.Kind == images.PointIncremental {
		if pp := pm.Point; pp != nil {
			point.Chain = append(point.Chain, pp.Chain...)
		}
	}
	point.Chain = append(point.Chain, pointOf(parent.point, parentPath))
	return parent, parentPath, nil
}
