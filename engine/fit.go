package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/lifeboat-rescue/lifeboat/engine/fsmap"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// --layout fit: a disk image (or a disk) onto a smaller disk. Each ext2/3/4
// and NTFS filesystem's smallest size is asked of its own tool (resize2fs
// -P, ntfsresize --info) on a read-only view of the source; the planner
// shrinks those partitions in proportion to their room until the layout
// fits, or refuses with the smallest disk that would do. Every shrink
// then runs on a copy-on-write view of the source partition (cowFile:
// the image or the source disk stays as it is, the blocks the tool writes
// go to a sparse scratch file that holds only those), checked, before the
// first byte reaches the target; the target partition receives the
// shrunk filesystem's used blocks from that view. So nothing the size of
// the disk is needed, only scratch room for the blocks the shrink moves
// (at most the data above the new end), and a shrink that fails leaves
// the target untouched. FAT and exFAT are never shrunk.

// shrinkable filesystems have a tool that shrinks them.
func shrinkable(fsType string) bool {
	switch fsType {
	case "ext2", "ext3", "ext4", "ntfs":
		return true
	}
	return false
}

// sourceAt is the bytes of what a delivery reads.
func sourceAt(src chunkSource) (io.ReaderAt, bool) {
	switch s := src.(type) {
	case *images.StreamReader:
		return s, true
	case *devSource:
		return s.r, true
	}
	return nil, false
}

// fitMinSizes asks each shrinkable filesystem of the stored table for its
// smallest size; one that cannot tell keeps its size (with a note).
func (d *delivery) fitMinSizes(ctx context.Context, minSizes map[int]int64) error {
	ra, ok := sourceAt(d.src)
	if !ok {
		return fmt.Errorf("--layout fit cannot read this source")
	}
	for _, p := range d.meta.Table.Partitions {
		if p.FS == nil || !shrinkable(p.FS.Type) {
			continue
		}
		m, err := fsMinSize(ctx, io.NewSectionReader(ra, p.Start, p.Size), p.Size, p.FS.Type)
		if err != nil {
			d.notes = append(d.notes, fmt.Sprintf("partition %d keeps its size: how far its %s filesystem can shrink is not known (%v)", p.Number, p.FS.Type, err))
			continue
		}
		// Room for the tool's own rounding, and a little to work in.
		m = min(p.Size, m+m/50+16<<20)
		d.log.Info("filesystem minimum", "partition", p.Number, "fs", p.FS.Type, "min", m, "size", p.Size)
		minSizes[p.Number] = m
	}
	return nil
}

// shrinkAll shrinks, on copy-on-write views, every filesystem the plan
// makes smaller, and makes the delivery read those partitions from their
// views. Nothing is written to the target.
func (d *delivery) shrinkAll(ctx context.Context) error {
	ra, _ := sourceAt(d.src)
	fs := &fitSource{base: d.src}
	for _, m := range d.laid.Moves {
		if m.DstSize >= m.SrcSize || d.isContainer(m.Number) {
			continue
		}
		p := tablePartition(d.meta.Table, m.Number)
		if p.FS == nil || !shrinkable(p.FS.Type) {
			return fmt.Errorf("internal error: partition %d would shrink but holds no filesystem that can", m.Number)
		}
		d.log.Info("filesystem shrink started", "partition", m.Number, "fs", p.FS.Type, "from", m.SrcSize, "to", m.DstSize)
		cow, err := shrinkFS(ctx, io.NewSectionReader(ra, m.SrcStart, m.SrcSize), m.SrcSize, m.DstSize, p.FS.Type)
		if err != nil {
			fs.Close()
			return fmt.Errorf("partition %d: shrinking its %s filesystem from %s to %s failed, so nothing was written: %w", m.Number, p.FS.Type, HumanBytes(m.SrcSize), HumanBytes(m.DstSize), err)
		}
		view := io.NewSectionReader(cow, 0, m.DstSize)
		fm, err := fsmap.Read(view, m.DstSize)
		if err != nil {
			cow.Close()
			fs.Close()
			return err
		}
		var used []images.Range
		for _, r := range fm.Used {
			used = append(used, images.Range{Off: m.SrcStart + r.Off, Len: r.Len})
		}
		d.log.Info("filesystem shrink finished", "partition", m.Number, "scratch", cow.ScratchBytes(), "used", fm.UsedBytes)
		fs.parts = append(fs.parts, fitPart{from: m.SrcStart, to: m.SrcStart + m.DstSize, cow: cow,
			src: &devSource{r: shifted{cow, m.SrcStart}, size: m.SrcStart + m.DstSize, used: used, path: fmt.Sprintf("partition %d, shrunk", m.Number)}})
		d.notes = append(d.notes, fmt.Sprintf("partition %d and its %s filesystem shrank from %s to %s (%s of scratch space used)", m.Number, p.FS.Type, HumanBytes(m.SrcSize), HumanBytes(m.DstSize), HumanBytes(cow.ScratchBytes())))
	}
	if len(fs.parts) > 0 {
		d.src, d.fit = fs, fs
	}
	return nil
}

// fitSource reads the shrunk partitions from their views and everything
// else from the original source.
type fitSource struct {
	base  chunkSource
	parts []fitPart
}

type fitPart struct {
	from, to int64 // in the source's coordinates
	cow      *cowFile
	src      *devSource
}

func (f *fitSource) ForEachChunk(ctx context.Context, from, to int64, fn func(images.Chunk) error) error {
	for _, p := range f.parts {
		if from >= p.from && to <= p.to {
			return p.src.ForEachChunk(ctx, from, to, fn)
		}
		if from < p.to && to > p.from {
			return fmt.Errorf("internal error: range %d–%d crosses shrunk partition %d–%d", from, to, p.from, p.to)
		}
	}
	return f.base.ForEachChunk(ctx, from, to, fn)
}

func (f *fitSource) Close() {
	for _, p := range f.parts {
		p.cow.Close()
	}
}

// shifted reads r as if it started at base.
type shifted struct {
	r    io.ReaderAt
	base int64
}

func (s shifted) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off-s.base) }
