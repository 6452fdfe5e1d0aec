package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
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
	Rescue      bool
	ToolVersion string
	Progress    Progress
	Log         *slog.Logger
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
	Elapsed    time.Duration
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
	meta := &images.Metadata{Streams: []images.Stream{*stream}}
	if err := w.Commit(meta); err != nil {
		return nil, fmt.Errorf("finish image %s: %w", o.Output, err)
	}
	res := &BackupResult{Image: o.Output, UUID: w.UUID(), SourceSize: src.Size, Stored: st.Stored,
		Chunks: st.Chunks, ZeroChunks: st.ZeroChunks, DupChunks: st.DupChunks, Elapsed: time.Since(start),
		Mode: stream.Mode, Unused: st.UnusedBytes, Damaged: stream.Damaged, Fallbacks: fallbacks(stream)}
	log.Info("backup finished", "image", o.Output, "stored", st.Stored, "elapsed", res.Elapsed)
	return res, nil
}

// checkOutput refuses outputs that would destroy or corrupt the backup.
func checkOutput(o BackupOptions) error {
	inside, err := blockdev.Holds(o.Source, o.Output)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("check output %s: %w", o.Output, err)
	}
	if inside {
		return refuse(o.Output, "it is stored on %s, the source being backed up (the image would copy itself)",
			"write the image to another disk, e.g. an external drive", o.Source)
	}
	if !o.Overwrite {
		if _, err := os.Lstat(o.Output); err == nil {
			return refuse(o.Output, "it already exists", "choose another name, or pass --overwrite to replace it")
		}
	}
	dir := parentDir(o.Output)
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("output folder %s does not exist; create it first or choose another: %w", dir, err)
		}
		return fmt.Errorf("output folder %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("output folder %s is not a folder", dir)
	}
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	switch {
	case i < 0:
		return "."
	case i == 0:
		return p[:1]
	}
	return p[:i]
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
