package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// CloneKind is what a clone copies.
type CloneKind int

const (
	CloneDisk      CloneKind = iota // a whole disk, every partition
	ClonePartition                  // one partition (or filesystem) onto another
	CloneSystem                     // the partitions an OS needs to boot
)

func (k CloneKind) String() string {
	switch k {
	case CloneDisk:
		return "disk"
	case ClonePartition:
		return "partition"
	case CloneSystem:
		return "system"
	}
	return fmt.Sprintf("CloneKind(%d)", int(k))
}

// CloneOptions describe one clone: a live disk copied straight to another,
// without an image in between, and verified.
type CloneOptions struct {
	Kind   CloneKind
	Source string // disk or partition (for CloneSystem: the disk holding the system)
	Target string
	// OS is, for CloneSystem, the number of the partition holding the
	// operating system; 0 picks the one mounted at / or the only candidate.
	OS             int
	Layout         LayoutOptions
	SectorBySector bool
	Rescue         bool
	Confirm        func(Plan) error
	// Written is RestoreOptions.Written: called once when everything is
	// on the target, before the read-back ends.
	Written  func()
	NoVerify bool
	Progress Progress
	Log      *slog.Logger
}

// CloneResult says what a clone did.
type CloneResult struct {
	RestoreResult
	Copied    []int          // partition numbers copied (disk and system clones)
	Damaged   []images.Range // unreadable source ranges (with Rescue), written as zeros
	Fallbacks []string
}

// Clone copies a disk, a partition or a system to a target: only what the
// filesystems use (unless SectorBySector), laid out for the target's size,
// filesystems grown, read back. All checks run before the first write.
func Clone(ctx context.Context, o CloneOptions) (*CloneResult, error) {
	log := logger(o.Log)
	start := time.Now()
	src, err := blockdev.Open(o.Source, blockdev.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("clone source: %w", err)
	}
	defer src.Close()
	if err := checkOverlap(o.Source, o.Target); err != nil {
		return nil, err
	}
	kind := images.KindDisk
	if o.Kind == ClonePartition {
		kind = images.KindPartition
	}
	meta, err := describeSource(src, BackupOptions{Kind: kind, Source: o.Source})
	if err != nil {
		return nil, err
	}
	res := &CloneResult{}
	lo := o.Layout
	if o.Kind == CloneSystem {
		if meta.Table == nil {
			return nil, fmt.Errorf("clone system: %s has no partition table; clone the disk or the partition instead", o.Source)
		}
		keep, osPart, err := systemPartitions(o.Source, meta.Table, o.OS)
		if err != nil {
			return nil, err
		}
		meta.Table.Partitions = slices.DeleteFunc(meta.Table.Partitions, func(p images.Partition) bool { return !slices.Contains(keep, p.Number) })
		if lo.Mode == layout.Keep {
			lo.Mode = layout.Fill
		}
		if lo.Grow == 0 {
			lo.Grow = osPart
		}
	}
	rd, salv, release, notes, err := sourceReader(ctx, o.Source, src, o.Rescue, log)
	defer release()
	if err != nil {
		return nil, fmt.Errorf("clone of %s: %w", o.Source, err)
	}
	used, _, err := usedRanges(rd, meta, o.SectorBySector, false)
	if err != nil {
		return nil, readFailure(o.Source, err)
	}
	if o.Kind == CloneSystem {
		used = onlyPartitions(used, meta)
	}
	if meta.Table != nil {
		for _, p := range meta.Table.Partitions {
			res.Copied = append(res.Copied, p.Number)
		}
	}
	res.Fallbacks = fallbacks(meta)
	d := &delivery{src: &devSource{r: rd, size: src.Size, used: used, path: o.Source}, meta: meta, origin: o.Source,
		holders: []string{o.Source}, holderWhat: "the source being cloned", layout: lo, log: log, start: start, stage: StageClone,
		// Even onto a disk of the same size and layout, a system clone
		// writes the table of the chosen partitions only.
		relayout: o.Kind == CloneSystem}
	defer d.Close()
	plan, err := d.prepare(ctx, o.Target)
	if err != nil {
		return nil, err
	}
	if o.Confirm != nil {
		if err := o.Confirm(*plan); err != nil {
			return nil, err
		}
	}
	d.written = o.Written
	rr, err := d.write(ctx, o.NoVerify, o.Progress)
	if err != nil {
		return nil, err
	}
	res.RestoreResult = *rr
	res.Notes = append(notes, res.Notes...)
	if salv != nil {
		res.Damaged = salv.Damaged()
	}
	return res, nil
}

// checkOverlap refuses a clone whose target is, holds or lies on its source.
func checkOverlap(source, target string) error {
	if sameFile(source, target) {
		return refuse(target, "it is the source of the clone", "choose another target")
	}
	disks, err := blockdev.List()
	if err != nil {
		return nil // no enumeration here (not Linux): same-file check only
	}
	for _, d := range disks {
		for _, p := range d.Partitions {
			if sameFile(d.Path, source) && sameFile(p.Path, target) || sameFile(d.Path, target) && sameFile(p.Path, source) {
				return refuse(target, "it overlaps the source %s (one is a partition of the other)", "choose a target on another disk", source)
			}
		}
	}
	return nil
}

// Partition types that an installed system needs besides its own.
var bootTypes = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI system",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"0xef":                                 "EFI system",
	"0x27":                                 "Windows recovery",
}

// osTypes can hold an operating system.
var osTypes = map[string]bool{
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": true, // Microsoft basic data
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": true, // Linux filesystem
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": true, // Linux root (x86-64)
	"0x07":                                 true, "0x83": true,
}

// systemPartitions picks the partitions a system needs: boot support (ESP,
// MSR, BIOS boot, recovery, /boot, the MBR active partition) and the OS
// partition: the one given, the one mounted at / on this machine, or the
// only candidate.
func systemPartitions(disk string, t *images.Table, osNum int) (keep []int, osPart int, err error) {
	var candidates []images.Partition
	for _, p := range t.Partitions {
		typ := strings.ToUpper(p.Type)
		if strings.HasPrefix(p.Type, "0x") {
			typ = strings.ToLower(p.Type)
		}
		switch {
		case bootTypes[typ] != "" || p.Bootable || strings.EqualFold(p.Name, "boot"):
			keep = append(keep, p.Number)
		case osTypes[typ] && p.FS != nil:
			candidates = append(candidates, p)
		}
	}
	if osNum == 0 {
		for _, mp := range []string{"/", "/boot"} {
			if n := mountedPartition(disk, mp); n > 0 {
				if mp == "/" {
					osNum = n
				} else if !slices.Contains(keep, n) {
					keep = append(keep, n)
				}
			}
		}
	}
	if osNum == 0 && len(candidates) == 1 {
		osNum = candidates[0].Number
	}
	if osNum == 0 {
		var l []string
		for _, c := range candidates {
			l = append(l, fmt.Sprintf("%d (%s %s, %s)", c.Number, c.FS.Type, c.FS.Label, HumanBytes(c.Size)))
		}
		if len(l) == 0 {
			return nil, 0, fmt.Errorf("clone system: %s has no partition that can hold an operating system; clone the disk instead", disk)
		}
		return nil, 0, &FixError{Err: fmt.Errorf("clone system: %s has several partitions that could hold the system: %s", disk, strings.Join(l, ", ")),
			Fix: opt.With("name it with {}", opt.Use{Option: opt.OS, Value: "N"})}
	}
	if tablePartition(t, osNum).Number != osNum {
		return nil, 0, fmt.Errorf("clone system: %s has no partition %d; see lifeboat disks", disk, osNum)
	}
	if !slices.Contains(keep, osNum) {
		keep = append(keep, osNum)
	}
	slices.Sort(keep)
	return keep, osNum, nil
}

// onlyPartitions keeps the used ranges inside the table's (remaining)
// partitions and before the first one.
func onlyPartitions(used []images.Range, s *images.Stream) []images.Range {
	if used == nil {
		used = []images.Range{{Off: 0, Len: s.Size}}
	}
	first := s.Size
	var spans []images.Range
	for _, p := range s.Table.Partitions {
		first = min(first, p.Start)
		spans = append(spans, images.Range{Off: p.Start, Len: p.Size})
	}
	spans = append(spans, images.Range{Off: 0, Len: first})
	sortRanges(spans)
	var out []images.Range
	for _, r := range used {
		for _, sp := range spans {
			lo, hi := max(r.Off, sp.Off), min(r.Off+r.Len, sp.Off+sp.Len)
			if hi > lo {
				out = append(out, images.Range{Off: lo, Len: hi - lo})
			}
		}
	}
	sortRanges(out)
	return mergeRanges(out)
}

// devSource reads a live disk as chunks: the used ranges in large pieces,
// read ahead of the writer; the rest as unused chunks.
type devSource struct {
	r    io.ReaderAt
	size int64
	used []images.Range // nil: everything
	path string
}

const cloneRead = 4 << 20

func (s *devSource) ForEachChunk(ctx context.Context, from, to int64, fn func(images.Chunk) error) error {
	type piece struct {
		c   images.Chunk
		err error
	}
	used := s.used
	if used == nil {
		used = []images.Range{{Off: 0, Len: s.size}}
	}
	ch := make(chan piece, 3)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(ch)
		send := func(p piece) bool {
			select {
			case ch <- p:
				return true
			case <-stop:
				return false
			}
		}
		pos := from
		for _, r := range used {
			lo, hi := max(r.Off, from), min(r.Off+r.Len, to)
			if hi <= lo {
				continue
			}
			if lo > pos && !send(piece{c: images.Chunk{Off: pos, Len: lo - pos, Unused: true}}) {
				return
			}
			for off := lo; off < hi; {
				n := min(cloneRead, hi-off)
				b := make([]byte, n)
				if m, err := s.r.ReadAt(b, off); m < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					send(piece{err: &IOError{Op: "read", Path: s.path, Offset: off + int64(m), Err: err}})
					return
				}
				if ctx.Err() != nil || !send(piece{c: images.Chunk{Off: off, Len: n, Data: b}}) {
					return
				}
				off += n
			}
			pos = hi
		}
		if to > pos {
			send(piece{c: images.Chunk{Off: pos, Len: to - pos, Unused: true}})
		}
	}()
	for p := range ch {
		if p.err != nil {
			return readFailure(s.path, p.err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(p.c); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// mountedPartition is the number of disk's partition mounted at mp on this
// machine, or 0.
func mountedPartition(disk, mp string) int {
	disks, err := blockdev.List()
	if err != nil {
		return 0
	}
	for _, d := range disks {
		if !sameFile(d.Path, disk) {
			continue
		}
		for _, p := range d.Partitions {
			mps, _ := blockdev.MountPoints(p.Path)
			if slices.Contains(mps, mp) {
				return p.Number
			}
		}
	}
	return 0
}

// ErrSystemDiskUnknown: SystemDisk cannot tell which disk holds the
// system. The front end should ask the user to name the source disk (the
// CLI: "lifeboat clone system DISK").
var ErrSystemDiskUnknown = errors.New("which disk holds this machine's system is not known")

// SystemDisk is the disk holding this machine's root filesystem, for
// "clone system" without a source.
func SystemDisk() (string, error) {
	// Windows: the disk its Windows directory lies on.
	if p, err := blockdev.RunningSystemDisk(); !errors.Is(err, errors.ErrUnsupported) {
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrSystemDiskUnknown, err)
		}
		return p, nil
	}
	disks, err := blockdev.List()
	if err != nil {
		return "", fmt.Errorf("%w: list the disks: %w", ErrSystemDiskUnknown, err)
	}
	for _, d := range disks {
		for _, p := range d.Partitions {
			if mps, _ := blockdev.MountPoints(p.Path); slices.Contains(mps, "/") {
				return d.Path, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no disk holds its root filesystem (a rescue system runs from memory)", ErrSystemDiskUnknown)
}
