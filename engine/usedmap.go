package engine

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/lifeboat-rescue/lifeboat/engine/fsmap"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// tailKeep is how much of the unpartitioned space at the end of a disk is
// always copied: the GPT backup lives there, and so do the metadata of
// RAID and some vendors' tools.
const tailKeep = 1 << 20

// usedRanges decides what of a source to copy, filling in each partition's
// mode and reason in s: only what the filesystems use (fsmap), unless
// allSectors. Areas outside partitions (boot code, gaps, the table) are
// copied whole, except unpartitioned space at the end of a disk beyond its
// last MiB. It returns nil (copy everything) when nothing can be skipped,
// and, with withCuts, where files start and end (fsmap.Map.Cuts), for the
// chunker.
func usedRanges(r io.ReaderAt, s *images.Stream, allSectors, withCuts bool) (used []images.Range, cuts []int64, err error) {
	read := fsmap.Read
	if withCuts {
		read = fsmap.ReadWithCuts
	}
	if allSectors {
		s.Mode, s.ModeReason = images.ModeAllSectors, "every sector was asked for (sector by sector)"
		if s.Table != nil {
			for i := range s.Table.Partitions {
				s.Table.Partitions[i].Mode, s.Table.Partitions[i].ModeReason = images.ModeAllSectors, s.ModeReason
			}
		}
		return nil, nil, nil
	}
	if s.Table == nil {
		// A partition, or a filesystem (or nothing known) on a whole disk.
		m, err := read(r, s.Size)
		if err != nil {
			return nil, nil, err
		}
		if m.Reason != "" {
			s.Mode, s.ModeReason = images.ModeAllSectors, m.Reason
			return nil, nil, nil
		}
		s.Mode = images.ModeUsed
		return toImageRanges(m.Used, 0), m.Cuts, nil
	}
	parts := slices.Clone(s.Table.Partitions)
	slices.SortFunc(parts, func(a, b images.Partition) int { return int(a.Start - b.Start) })
	var pos int64
	all := func(from, to int64) {
		if to > from {
			used = append(used, images.Range{Off: from, Len: to - from})
		}
	}
	mapped := 0
	for _, p := range parts {
		if layout.IsExtended(p.Type) {
			continue // its EBRs are copied as the gaps between logicals
		}
		if p.Start < pos || p.Size <= 0 || p.Start+p.Size > s.Size {
			// Overlapping or impossible partitions: copying everything is
			// the only safe reading.
			s.Mode, s.ModeReason = images.ModeAllSectors, fmt.Sprintf("partition %d overlaps another or lies outside the disk", p.Number)
			for i := range s.Table.Partitions {
				s.Table.Partitions[i].Mode, s.Table.Partitions[i].ModeReason = images.ModeAllSectors, s.ModeReason
			}
			return nil, nil, nil
		}
		all(pos, p.Start)
		m, err := read(io.NewSectionReader(r, p.Start, p.Size), p.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("partition %d: %w", p.Number, err)
		}
		for _, c := range m.Cuts {
			cuts = append(cuts, p.Start+c) // sorted: partitions are in order
		}
		tp := tablePartition(s.Table, p.Number)
		if m.Reason != "" {
			tp.Mode, tp.ModeReason = images.ModeAllSectors, m.Reason
		} else {
			tp.Mode, tp.ModeReason = images.ModeUsed, ""
			mapped++
		}
		used = append(used, toImageRanges(m.Used, p.Start)...)
		pos = p.Start + p.Size
	}
	all(max(pos, s.Size-tailKeep), s.Size)
	s.Mode = images.ModeUsed
	if mapped == 0 && pos >= s.Size-tailKeep {
		s.Mode = images.ModeAllSectors
	}
	return mergeRanges(used), cuts, nil
}

func tablePartition(t *images.Table, n int) *images.Partition {
	for i := range t.Partitions {
		if t.Partitions[i].Number == n {
			return &t.Partitions[i]
		}
	}
	return &images.Partition{}
}

func toImageRanges(rs []fsmap.Range, base int64) []images.Range {
	out := make([]images.Range, len(rs))
	for i, r := range rs {
		out[i] = images.Range{Off: base + r.Off, Len: r.Len}
	}
	return out
}

// mergeRanges joins ranges that touch (the input is sorted).
func mergeRanges(rs []images.Range) []images.Range {
	out := rs[:0]
	for _, r := range rs {
		if r.Len <= 0 {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len >= r.Off {
			out[k].Len = max(out[k].Len, r.Off+r.Len-out[k].Off)
			continue
		}
		out = append(out, r)
	}
	return out
}

func rangesLen(rs []images.Range) (n int64) {
	for _, r := range rs {
		n += r.Len
	}
	return n
}

// sortRanges sorts ranges by offset.
func sortRanges(rs []images.Range) {
	slices.SortFunc(rs, func(a, b images.Range) int { return cmp.Compare(a.Off, b.Off) })
}
