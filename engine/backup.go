package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/fsprobe"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
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
	ToolVersion   string
	Progress      Progress
	Log           *slog.Logger
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
	if o.Output != "-" {
		if err := checkOutput(o); err != nil {
			return nil, err
		}
	}

	stream, err := describeSource(src, o)
	if err != nil {
		return nil, err
	}
	wo := images.WriterOptions{ChunkSize: o.ChunkSize, Compression: o.Compression, Password: o.Password, Cipher: o.Cipher,
		KDF: o.KDF, SplitSize: o.SplitSize, Overwrite: o.Overwrite, ToolVersion: o.ToolVersion}
	point := &images.Point{Kind: images.PointFull}
	parentPath := ""
	if o.Incremental != "" || o.Differential != "" {
		parent, path, err := backupParent(o, stream, point)
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
	if o.Output == "-" {
		w, err = images.NewStreamWriter(o.Stdout, "standard output", wo)
	} else {
		w, err = images.Create(o.Output, wo)
	}
	if err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Output, err)
	}
	defer w.Abort()

	var rd io.ReaderAt = src
	var salv *salvager
	if o.Rescue {
		salv = &salvager{dev: src, log: log}
		rd = salv
	}
	used, err := usedRanges(rd, stream, o.SectorBySector)
	if err != nil {
		return nil, readFailure(o.Source, err)
	}
	log.Info("backup started", "source", o.Source, "size", src.Size, "output", o.Output, "compression", o.Compression,
		"encrypted", len(o.Password) > 0, "mode", stream.Mode, "used", rangesLen(used))
	tr := startStage(o.Progress, StageBackup, images.StreamWork(src.Size, used))
	st, err := w.AddStream(ctx, rd, src.Size, images.StreamOptions{Progress: tr.add, Used: used})
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
		return nil, fmt.Errorf("backup of %s to %s: %w", o.Source, o.Output, err)
	}
	stream.Stored, stream.Unused = st.DataBytes, st.UnusedBytes
	if salv != nil {
		stream.Damaged = salv.Damaged()
	}
	meta := &images.Metadata{Streams: []images.Stream{*stream}, Point: point}
	if err := w.Commit(meta); err != nil {
		return nil, fmt.Errorf("finish image %s: %w", o.Output, err)
	}
	res := &BackupResult{Image: o.Output, UUID: w.UUID(), SourceSize: src.Size, Stored: st.Stored,
		Chunks: st.Chunks, ZeroChunks: st.ZeroChunks, DupChunks: st.DupChunks, Elapsed: time.Since(start),
		Mode: stream.Mode, Unused: st.UnusedBytes, Damaged: stream.Damaged, Fallbacks: fallbacks(stream),
		Point: point.Kind, Parent: parentPath, ParentBytes: st.ParentBytes}
	log.Info("backup finished", "image", o.Output, "stored", st.Stored, "elapsed", res.Elapsed)
	return res, nil
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
	it := &images.Table{Type: strings.ToLower(t.Type.String()), DiskGUID: t.DiskGUID}
	for _, r := range t.Raw {
		it.Raw = append(it.Raw, images.RawRange{Offset: r.Offset, Data: r.Data})
	}
	for _, p := range t.Partitions {
		ip := images.Partition{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, Name: p.Name, GUID: p.GUID, Attributes: p.Attributes,
			Bootable: p.Bootable, Mode: images.ModeAllSectors}
		if p.Start >= 0 && p.Size > 0 && p.Start+p.Size <= src.Size {
			ip.FS = probeFS(io.NewSectionReader(src, p.Start, p.Size), p.Size)
		}
		it.Partitions = append(it.Partitions, ip)
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
		return fmt.Errorf("%w; to back up what can still be read, run the backup again with --rescue (unreadable sectors are then stored as zeros and listed)", err)
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
		if p.ModeReason != "" {
			out = append(out, fmt.Sprintf("partition %d: %s", p.Number, p.ModeReason))
		}
	}
	return out
}

// backupParent opens the point a new incremental or differential builds on
// (with its chain) and fills in the new point's place in the chain. The
// source must be the disk or partition the chain was made of.
func backupParent(o BackupOptions, stream *images.Stream, point *images.Point) (*chain, string, error) {
	if o.Incremental != "" && o.Differential != "" {
		return nil, "", errors.New("give --incremental or --differential, not both")
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
		b, err := openImage(base, images.OpenOptions{})
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
	parent, err := openChain(parentPath, o.ChainDir, o.ChainPassword)
	if err != nil {
		return nil, "", err
	}
	pm := parent.point.Meta
	if len(pm.Streams) != 1 || pm.Streams[0].Kind != stream.Kind || pm.Streams[0].Size != stream.Size {
		parent.Close()
		return nil, "", refuse(o.Output, "%s is a backup of another %s (%s, %s), not of %s (%s)",
			"back up this source with a new full backup (without --incremental/--differential)",
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
