package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// A live backup of a disk whose volumes the running system has mounted
// (Windows: its system disk) reads each such volume through a snapshot
// (VSS), so that every file is as it was at one instant, and the rest of
// the disk (tables, boot areas, unmounted partitions) live.

// Snapshotter takes a point-in-time copy of a mounted volume.
type Snapshotter interface {
	// Snapshot freezes the volume named name (as blockdev.MountedVolumes
	// names it) and returns a reader of the frozen content, its size, and
	// what removes the snapshot (to be called on every exit path).
	Snapshot(ctx context.Context, name string) (r io.ReaderAt, size int64, release func() error, err error)
}

// Where the platform has snapshots (snapshot_windows.go sets these);
// tests replace them.
var (
	platformSnapshotter Snapshotter
	mountedVolumes      = blockdev.MountedVolumes
)

// sourceReader is what a backup or a clone reads from src: with rescue a
// salvager (past read errors, sector by sector, no snapshots), else src
// with its mounted volumes from snapshots (snapshotSource). release must
// be called however the reading ends.
func sourceReader(ctx context.Context, source string, src *blockdev.Device, rescue bool, log *slog.Logger) (rd io.ReaderAt, salv *salvager, release func(), notes []string, err error) {
	if rescue {
		salv = &salvager{dev: src, log: log}
		return salv, salv, func() {}, nil, nil
	}
	rd, release, notes, err = snapshotSource(ctx, source, src, log)
	return rd, nil, release, notes, err
}

// snapshotSource returns what a disk backup of src reads: src itself, or
// src with each mounted volume read from a snapshot of it. release removes
// the snapshots and must be called however the backup ends; notes say
// what was done, for the user.
func snapshotSource(ctx context.Context, source string, src io.ReaderAt, log *slog.Logger) (rd io.ReaderAt, release func(), notes []string, err error) {
	release = func() {}
	if platformSnapshotter == nil {
		return src, release, nil, nil
	}
	vols, err := mountedVolumes(source)
	if errors.Is(err, errors.ErrUnsupported) || (err == nil && len(vols) == 0) {
		return src, release, nil, nil
	}
	if err != nil {
		return nil, release, nil, fmt.Errorf("list the mounted volumes of %s: %w", source, err)
	}
	var releases []func() error
	release = func() {
		for i := len(releases) - 1; i >= 0; i-- {
			if err := releases[i](); err != nil {
				log.Warn("snapshot: not removed", "err", err)
			}
		}
		releases = nil
	}
	var overlays []overlay
	var live []string
	for _, v := range vols {
		name := v.Words()
		if ctx.Err() != nil {
			release()
			return nil, func() {}, nil, ctx.Err()
		}
		r, size, rel, err := platformSnapshotter.Snapshot(ctx, v.Name)
		if err != nil {
			log.Warn("snapshot: none", "volume", name, "err", err)
			live = append(live, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		releases = append(releases, rel)
		overlays = append(overlays, overlay{start: v.Start, size: min(size, v.Size), r: r})
		log.Info("snapshot: taken", "volume", name, "start", v.Start, "size", size)
		notes = append(notes, fmt.Sprintf("volume %s was read from a snapshot (VSS) taken when the backup started", name))
	}
	if len(live) > 0 {
		notes = append(notes, fmt.Sprintf("no snapshot of %s: read live, so files that changed while they were read may be stored half-old, half-new; for a consistent image back this disk up from the Lifeboat rescue media", strings.Join(live, "; ")))
	}
	if len(overlays) == 0 {
		return src, release, notes, nil
	}
	return newOverlayReader(src, overlays), release, notes, nil
}

// overlay is a range of the disk read from another reader (at offset 0 of
// that reader).
type overlay struct {
	start, size int64
	r           io.ReaderAt
}

// overlayReader reads base, except within its overlays (sorted, not
// overlapping), which come from their own readers.
type overlayReader struct {
	base     io.ReaderAt
	overlays []overlay
}

func newOverlayReader(base io.ReaderAt, ov []overlay) *overlayReader {
	ov = append([]overlay(nil), ov...)
	sort.Slice(ov, func(i, j int) bool { return ov[i].start < ov[j].start })
	return &overlayReader{base: base, overlays: ov}
}

func (o *overlayReader) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		// The reader for pos, and how far it reaches.
		r, at, until := o.base, pos, int64(-1)
		for _, v := range o.overlays {
			if pos >= v.start && pos < v.start+v.size {
				r, at, until = v.r, pos-v.start, v.start+v.size
				break
			}
			if v.start > pos {
				until = v.start
				break
			}
		}
		n := int64(len(p) - done)
		if until >= 0 {
			n = min(n, until-pos)
		}
		got, err := r.ReadAt(p[done:done+int(n)], at)
		done += got
		if r != o.base && errors.Is(err, io.EOF) {
			err = nil // an overlay's end is not the disk's; short is caught below
		}
		if err != nil {
			return done, err
		}
		if int64(got) < n {
			return done, io.ErrUnexpectedEOF
		}
	}
	return done, nil
}
