package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// LayoutOptions say how a disk's partitions are laid out on a target disk:
// as stored, grown to fill it, or with sizes given per partition; starts
// aligned; IDs kept or new; MBR or GPT.
type LayoutOptions struct {
	Mode   layout.Mode
	Grow   int           // Fill: the partition that takes the extra space; 0 = the last data partition
	Sizes  map[int]int64 // Manual: new sizes by partition number
	Align  int64         // move starts up to multiples of this (e.g. 1 MiB); 0 keeps them
	NewIDs bool          // new disk and partition GUIDs (MBR: disk signature)
	Table  layout.TableType
}

// chunkSource is what a restore or clone reads: an image stream, or a live
// disk read through its used-block map.
type chunkSource interface {
	ForEachChunk(ctx context.Context, from, to int64, fn func(images.Chunk) error) error
}

// delivery is what restore and clone share: a disk or partition stream (or
// one partition of a disk stream) going to a target, laid out anew when the
// target disk differs.
type delivery struct {
	src        chunkSource
	meta       *images.Stream
	origin     string   // the image, or the source of a clone
	holders    []string // local files that must not live on the target
	holderWhat string   // what they are: "the image being restored"
	partition  int
	layout     LayoutOptions
	delta      bool // compare with the target, write only what differs
	precheck   bool // a delta restore checks the chunks it will write before writing
	relayout   bool // write a new table even where the stored one would do
	stage      Stage
	mode       fs.FileMode // of a target file it creates (0: images.DefaultMode)
	log        *slog.Logger
	start      time.Time
	// set by prepare
	target   string
	plan     *Plan
	from, to int64
	laid     *layout.Plan // nil: the bytes are written as stored
	// into is set when one partition goes into a new partition made in
	// the target disk's unallocated space; intoBoot is the target's boot
	// code, kept when its table is rewritten.
	into     bool
	intoBoot []byte
	// onTarget is set for a delta restore onto a disk laid out by an
	// earlier restore of the image's chain: laid holds the target's own
	// table (kept as it is) and where each partition's contents lie on it.
	onTarget bool
	tgtTable *layout.Table // the target's table, read for --delta
	tgtErr   error
	notes    []string // for the result
	written  func()   // RestoreOptions.Written
	// fit holds the shrunk filesystems of --layout fit (d.src reads
	// through it); Close removes their scratch files.
	fit *fitSource
}

// Close lets go of what prepare made (the scratch files of shrunk
// filesystems).
func (d *delivery) Close() {
	if d.fit != nil {
		d.fit.Close()
	}
}

// prepare runs every check that can refuse the target and plans the
// layout; nothing is written.
func (d *delivery) prepare(ctx context.Context, target string) (*Plan, error) {
	d.target = target
	if err := CheckOutput(target, WriteDiskOrFile, true); err != nil {
		return nil, err
	}
	from, to, what, err := restoreRange(d.meta, d.partition, d.origin)
	if err != nil {
		return nil, err
	}
	d.from, d.to = from, to
	need := to - from
	plan := &Plan{Image: d.origin, Target: target, What: what, Bytes: need}
	if d.meta.Table != nil {
		plan.Before = d.meta.Table.Partitions
	}
	_, err = os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if looksLikeDevice(target) {
			return nil, fmt.Errorf("target %s does not exist; run \"lifeboat disks\" to list disks: %w", target, err)
		}
		if _, err := os.Stat(filepath.Dir(target)); err != nil {
			return nil, fmt.Errorf("target %s: its folder does not exist; create it first: %w", target, err)
		}
		plan.Create = true
	case err != nil:
		return nil, fmt.Errorf("target %s: %w", target, err)
	}
	for _, h := range d.holders {
		holds := false
		if plan.Create {
			holds = sameFile(h, target)
		} else if holds, err = blockdev.Holds(target, h); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("check target %s: %w", target, err)
		}
		if holds {
			return nil, refuse(target, "it holds %s (%s)", "write to another disk, or copy the image to another disk first", d.holderWhat, h)
		}
	}
	sectorSize := d.meta.SectorSize
	if !plan.Create {
		mps, err := blockdev.MountPoints(target)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("check target %s: %w", target, err)
		}
		if len(mps) > 0 && !blockdev.DismountsOnOpen() {
			return nil, refuse(target, "it has mounted filesystems (%s)", "unmount them first (umount), or choose another target", strings.Join(mps, ", "))
		}
		dev, err := blockdev.Open(target, blockdev.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		plan.TargetSize, plan.TargetIsDev = dev.Size, dev.IsBlock
		if dev.IsBlock {
			sectorSize = dev.SectorSize
		}
		plan.Overwrites = describeTarget(dev)
		if len(mps) > 0 {
			plan.Overwrites = append(plan.Overwrites, fmt.Sprintf("mounted volumes %s: locked and dismounted while it is written (refused if a program has files open on them)", strings.Join(mps, ", ")))
		}
		err = d.checkPartitionTarget(dev)
		if err == nil {
			err = d.planInto(plan, dev)
		}
		if err == nil && d.delta && d.wholeDisk() {
			d.tgtTable, d.tgtErr = layout.Read(dev, dev.Size, sectorSize)
		}
		dev.Close()
		if err != nil {
			return nil, err
		}
	}
	if d.delta {
		err = d.planDelta(plan)
	} else {
		err = d.planLayout(ctx, plan, sectorSize)
	}
	if err != nil {
		return nil, err
	}
	if d.laid == nil && !plan.Create && plan.TargetSize < need {
		fix := opt.Text("choose a larger target")
		if !plan.TargetIsDev {
			fix = opt.Text("choose a larger target, or delete the file so lifeboat creates it at the right size")
		}
		if d.wholeDisk() {
			fix = fix.And(d.onePartitionHint())
		}
		return nil, refuseFix(target, fix, nil, "it is %s (%d bytes), smaller than the %s (%d bytes) the %s needs",
			HumanBytes(plan.TargetSize), plan.TargetSize, HumanBytes(need), need, what)
	}
	d.plan = plan
	return plan, nil
}

// wholeDisk reports whether the whole stream of a disk image with a
// partition table is being delivered.
func (d *delivery) wholeDisk() bool {
	t := d.meta.Table
	return d.partition == 0 && d.meta.Kind == images.KindDisk && t != nil && t.Type.Known()
}

// onePartitionHint says how to deliver one partition of the disk instead:
// restore --partition N, or clone part, with the partitions there are.
func (d *delivery) onePartitionHint() opt.Fix {
	if d.stage == StageClone {
		return opt.Text("to copy one partition, use lifeboat clone part with that partition of " + d.origin + " as the source (" + partitionList(d.meta.Table, "it") + ")")
	}
	return opt.With("to restore one partition of the image, add {} ("+partitionList(d.meta.Table, "the image")+")", opt.Use{Option: opt.Partition, Value: "N"})
}

// partitionList describes a stored table's partitions for a message:
// "the image has partition 1: vfat, 40 MiB; partition 2: ext4 "root",
// 120 MiB".
func partitionList(t *images.Table, who string) string {
	var l []string
	for _, p := range t.Partitions {
		s := fmt.Sprintf("partition %d: ", p.Number)
		switch {
		case p.FS != nil && p.FS.Label != "":
			s += fmt.Sprintf("%s %q, ", p.FS.Type, p.FS.Label)
		case p.FS != nil:
			s += p.FS.Type + ", "
		}
		l = append(l, s+HumanBytes(p.Size))
	}
	return who + " has " + strings.Join(l, "; ")
}

// checkPartitionTarget refuses to put a whole disk image, partition table
// included, into a partition of another disk: that is almost always a
// restore of one of its partitions without --partition N.
func (d *delivery) checkPartitionTarget(dev *blockdev.Device) error {
	if !dev.IsBlock || !d.wholeDisk() {
		return nil
	}
	disk, n, ok := partitionOf(d.target)
	if !ok {
		return nil
	}
	what := "holds a whole disk with its partition table"
	if d.stage == StageClone {
		what = "is a whole disk with a partition table"
	}
	return refuseFix(d.target, d.onePartitionHint().And(opt.Text("for the whole disk, name the disk "+disk+" as the target")), nil,
		"it is partition %d of %s, and %s %s", n, disk, d.origin, what)
}

// partitionOf finds the disk and number of a partition device (a
// variable, so tests can play a partition: this kernel's loop devices
// have none).
var partitionOf = func(target string) (disk string, number int, ok bool) {
	disks, err := blockdev.List()
	if err != nil {
		return "", 0, false
	}
	for _, dk := range disks {
		for _, p := range dk.Partitions {
			if sameFile(p.Path, target) {
				return dk.Path, p.Number, true
			}
		}
	}
	return "", 0, false
}

// planDelta plans a delta restore: the target holds an older copy of the
// image (or of an earlier point of its chain). A disk image whose table
// the target has as stored (same size, same partitions) is compared and
// written byte for byte, table included; onto a disk laid out by an
// earlier restore (fill, manual, keep on a larger disk, aligned, new IDs)
// each partition is compared and written where the target has it, the
// target's table is kept, and grown filesystems are grown again, which is
// what a full restore with that layout gives. Targets whose partitions do
// not correspond to the image's are refused with nothing written.
func (d *delivery) planDelta(plan *Plan) error {
	fix := opt.With("restore without {} (that writes the whole disk), or name the disk an earlier restore of this chain wrote", opt.Use{Option: opt.Delta})
	if _, ok := d.src.(*images.StreamReader); !ok {
		return refuseBecause(d.origin, opt.With("restore without {}", opt.Use{Option: opt.Delta}), nil,
			because("{} needs an image to restore; "+d.origin+" is not one", opt.Use{Option: opt.Delta}))
	}
	if plan.Create {
		return refuseBecause(d.target, opt.With("restore without {}", opt.Use{Option: opt.Delta}), nil,
			because("{} compares with an older copy on the target, but it does not exist yet", opt.Use{Option: opt.Delta}))
	}
	if d.into {
		return nil // planned by planDeltaInto
	}
	if lo := d.layout; lo.Mode != layout.Keep || lo.Grow != 0 || len(lo.Sizes) > 0 || lo.NewIDs || lo.Table != layout.None {
		d.notes = append(d.notes, "a delta restore keeps the partition layout the target has: the layout, partition sizes, new identifiers and table type asked for were not used")
	}
	if !d.wholeDisk() {
		plan.What += ", only the chunks that differ"
		return nil
	}
	src := d.meta.Table.Layout(d.meta.SectorSize)
	asStored := plan.TargetSize == d.meta.Size || src.Type == layout.MBR && plan.TargetSize > d.meta.Size
	if asStored && (d.tgtErr != nil || d.tgtTable.Type == layout.None) {
		// An older copy whose table is damaged or gone: compared and
		// written byte for byte, table included, as before.
		plan.What += ", only the chunks that differ"
		return nil
	}
	if d.tgtErr != nil {
		return refuseBecause(d.target, fix, d.tgtErr,
			because("{} needs the target's partition table to find the image's partitions on it, but it cannot be read: ", opt.Use{Option: opt.Delta}).then(layoutReason(d.tgtErr)))
	}
	moves, err := layout.Correspond(src, d.tgtTable)
	if err != nil {
		return refuseBecause(d.target, fix, err,
			because("{} needs a target laid out by an earlier restore of this chain, but its partitions do not correspond to the image's: ", opt.Use{Option: opt.Delta}).then(layoutReason(err)))
	}
	// Byte for byte only where that rewrites the table the target has:
	// not where an earlier restore gave it new IDs, which stay.
	same := asStored && d.tgtTable.Type == src.Type && strings.EqualFold(d.tgtTable.DiskGUID, src.DiskGUID)
	for _, m := range moves {
		same = same && m.DstStart == m.SrcStart && m.DstSize == m.SrcSize &&
			strings.EqualFold(tablePart(d.tgtTable, m.Number).GUID, tablePart(src, m.Number).GUID)
	}
	if same {
		plan.What += ", only the chunks that differ"
		return nil // byte for byte, table included
	}
	lp := &layout.Plan{Table: d.tgtTable, Moves: moves, DiskSize: plan.TargetSize}
	for _, m := range moves {
		if m.DstStart != m.SrcStart || m.DstSize != m.SrcSize {
			lp.AddNote(m.Number, layout.Located, fmt.Sprintf("partition %d is at %s on the target (%s; the image has it at %s, %s)",
				m.Number, HumanBytes(m.DstStart), HumanBytes(m.DstSize), HumanBytes(m.SrcStart), HumanBytes(m.SrcSize)))
		}
	}
	d.laid, d.onTarget, plan.Layout, plan.LayoutKept, plan.Bytes = lp, true, lp, true, plan.TargetSize
	plan.What += ", only the chunks that differ, into the target's own partition layout"
	return nil
}

func tablePart(t *layout.Table, n int) layout.Partition {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p
		}
	}
	return layout.Partition{}
}

// planInto plans a one-partition restore onto a disk that has a partition
// table: the partition goes into a new partition in its unallocated space
// (the rest of the disk is left as it is).
func (d *delivery) planInto(plan *Plan, dev *blockdev.Device) error {
	if d.partition == 0 {
		return nil
	}
	t, err := layout.Read(dev, dev.Size, dev.SectorSize)
	if err != nil || (t.Type != layout.GPT && t.Type != layout.MBR) {
		return nil // a partition or a plain file: written from its start
	}
	src := tablePartition(d.meta.Table, d.partition)
	need := d.to - d.from
	if d.delta {
		return d.planDeltaInto(plan, t, src, need)
	}
	align := d.layout.Align
	if align == 0 {
		align = 1 << 20
	}
	nt, np, err := layout.AddPartition(t, dev.Size, layout.Partition{Type: src.Type, Name: src.Name, Attributes: src.Attributes, Bootable: src.Bootable},
		need, align, d.layout.Mode == layout.Fill)
	if err != nil {
		return refuseBecause(d.target, opt.Text("nothing was written"), err, layoutReason(err))
	}
	boot := make([]byte, 440)
	if _, err := dev.ReadAt(boot, 0); err != nil {
		return &IOError{Op: "read", Path: d.target, Err: err}
	}
	d.laid = &layout.Plan{Table: nt, DiskSize: dev.Size,
		Moves: []layout.Move{{Number: np.Number, SrcStart: d.from, SrcSize: need, DstStart: np.Start, DstSize: np.Size}}}
	d.laid.AddNote(np.Number, layout.Located, fmt.Sprintf("partition %d of the image becomes the new partition %d of %s, at %s in its unallocated space; the other partitions are not touched",
		d.partition, np.Number, d.target, HumanBytes(np.Start)))
	d.into, d.intoBoot = true, boot
	plan.Layout = d.laid
	plan.What = fmt.Sprintf("partition %d into a new partition %d", d.partition, np.Number)
	plan.Overwrites = nil // nothing that is there now is overwritten
	return nil
}

// planDeltaInto plans a delta restore of one partition onto a disk that
// holds an older copy of it as its partition of the same number (laid out
// by an earlier restore: it may start elsewhere and be larger, its
// filesystem grown).
func (d *delivery) planDeltaInto(plan *Plan, t *layout.Table, src *images.Partition, need int64) error {
	var dst *layout.Partition
	for i := range t.Partitions {
		if t.Partitions[i].Number == d.partition {
			dst = &t.Partitions[i]
		}
	}
	stored := &layout.Table{Type: layout.MBR, Partitions: []layout.Partition{{Number: src.Number, Start: d.from, Size: need, Type: src.Type}}}
	if d.meta.Table.Type == layout.GPT {
		stored.Type = layout.GPT
	}
	var why reason
	var cause error
	if dst == nil {
		why = because(fmt.Sprintf("it has no partition %d", d.partition))
	} else if _, err := layout.Correspond(stored, &layout.Table{Type: t.Type, Partitions: []layout.Partition{*dst}}); err != nil {
		why, cause = layoutReason(err), err
	}
	if why.text != "" {
		return refuseBecause(d.target, opt.With("name the partition that holds the older copy as the target (as in /dev/sdb2), or restore without {}", opt.Use{Option: opt.Delta}), cause,
			because(fmt.Sprintf("{} with {} compares with the older copy in partition %d of the target, but ", d.partition),
				opt.Use{Option: opt.Delta}, opt.Use{Option: opt.Partition, Value: strconv.Itoa(d.partition)}).then(why))
	}
	d.laid = &layout.Plan{Table: t, DiskSize: plan.TargetSize,
		Moves: []layout.Move{{Number: d.partition, SrcStart: d.from, SrcSize: need, DstStart: dst.Start, DstSize: dst.Size}}}
	d.into, d.onTarget, plan.Layout, plan.LayoutKept = true, true, d.laid, true
	plan.What = fmt.Sprintf("partition %d into partition %d of the target, only the chunks that differ", d.partition, d.partition)
	return nil
}

// planLayout decides whether a whole-disk stream is written as stored or
// laid out anew for the target, and plans the new layout.
func (d *delivery) planLayout(ctx context.Context, plan *Plan, sectorSize int) error {
	t := d.meta.Table
	if d.partition != 0 || d.meta.Kind != images.KindDisk || t == nil || !t.Type.Known() {
		if d.layout.Mode != layout.Keep && d.partition == 0 {
			mode := opt.Use{Option: opt.Layout, Value: d.layout.Mode.String()}
			return refuseBecause(d.origin, opt.With("restore without {}", mode), nil,
				because(fmt.Sprintf("{} needs a disk image with a partition table; it holds a %s without one", d.meta.Kind), mode))
		}
		return nil
	}
	size := plan.TargetSize
	if plan.Create {
		if d.layout.Mode == layout.Fill || d.layout.Mode == layout.Fit {
			fill := opt.Use{Option: opt.Layout, Value: d.layout.Mode.String()}
			return refuseBecause(d.target, opt.With(fmt.Sprintf("create the file at the size you want first (e.g. truncate -s 20G %s), or restore without {} to create it at the stored size (%s)",
				d.target, HumanBytes(d.meta.Size)), fill), nil,
				because("{} grows a partition to fill the target, but the file does not exist yet, so it has no size to fill", fill))
		}
		size = d.meta.Size
	}
	src := d.meta.Table.Layout(d.meta.SectorSize)
	minSizes, used := map[int]int64{}, map[int]int64{}
	for _, p := range src.Partitions {
		minSizes[p.Number] = p.Size // filesystems are grown, never shrunk (but by fit)
	}
	fit := d.layout.Mode == layout.Fit && size < d.meta.Size
	if fit {
		if err := d.fitMinSizes(ctx, minSizes); err != nil {
			return err
		}
	}
	for _, p := range t.Partitions {
		if p.FS != nil && p.FS.Used >= 0 {
			used[p.Number] = p.FS.Used // as lifeboat info shows it
		}
	}
	lp, err := layout.PlanLayout(src, size, sectorSize, layout.PlanOptions{Mode: d.layout.Mode, Grow: d.layout.Grow, Sizes: d.layout.Sizes,
		Align: d.layout.Align, NewIDs: d.layout.NewIDs, Table: d.layout.Table, MinSizes: minSizes, Used: used})
	if err != nil {
		fix := opt.Text("nothing was written")
		if fit && len(d.notes) > 0 {
			// Why a filesystem was not measured is part of the refusal.
			fix = opt.Text(strings.Join(d.notes, "; ")).And(fix)
		}
		if size < d.meta.Size {
			fix = fix.And(d.onePartitionHint())
		}
		return refuseBecause(d.target, fix, err, because("it is "+HumanBytes(size)+" and ").then(layoutReason(err)))
	}
	same := !d.relayout && !d.layout.NewIDs && lp.Table.Type == src.Type && (size == d.meta.Size || src.Type == layout.MBR && size > d.meta.Size)
	for _, m := range lp.Moves {
		same = same && m.DstStart == m.SrcStart && m.DstSize == m.SrcSize
	}
	if same {
		return nil // byte for byte, table included
	}
	d.laid, plan.Layout, plan.Bytes = lp, lp, size
	if fit {
		return d.shrinkAll(ctx)
	}
	return nil
}

// write writes what prepare planned: data, read back behind the writer;
// then, for a new layout, the partition table and grown filesystems.
func (d *delivery) write(ctx context.Context, noVerify bool, p Progress) (*RestoreResult, error) {
	log, plan := d.log, d.plan
	size := d.to - d.from
	if d.laid != nil && !d.into {
		size = plan.Bytes
	}
	fresh := false // every byte of the target reads as zero already
	if plan.Create {
		// A disk image file holds what the image holds: created as
		// the image's own files are.
		f, err := images.CreateFile(d.target, cmp.Or(d.mode, images.DefaultMode))
		if err != nil {
			return nil, fmt.Errorf("create target %s: %w", d.target, err)
		}
		err = f.Truncate(size)
		f.Close()
		if err != nil {
			os.Remove(d.target)
			return nil, fmt.Errorf("create target %s: %w", d.target, err)
		}
		fresh = true
	}
	dst, err := blockdev.Open(d.target, blockdev.ReadWriteExclusive)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	if !plan.Create && !dst.IsBlock && !d.into && !d.delta && (dst.Size == size || d.laid != nil) {
		fresh = dst.Zero() == nil // the whole file is being replaced
	}
	log.Info("writing started", "source", d.origin, "target", d.target, "what", plan.What, "bytes", size, "relayout", d.laid != nil)
	res := &RestoreResult{Target: d.target, Bytes: size}
	var v *verifier
	if !noVerify {
		v = newVerifier(ctx, dst, p)
	}
	if d.laid == nil {
		err = d.writeOps(ctx, dst, d.rangeOps(), fresh, p, res, v)
	} else {
		err = d.writeOps(ctx, dst, d.copies(), fresh && !d.onTarget, p, res, v)
		if err == nil && d.onTarget && !d.into {
			err = d.deltaBootCode(dst, res, v)
		}
	}
	log.Info("writing finished", "target", d.target, "written", res.Written, "err", err, "elapsed", time.Since(d.start))
	if err == nil {
		if err = dst.Sync(); err != nil {
			err = &IOError{Op: "sync", Path: d.target, Err: err}
		}
	}
	// The new table goes on before the read-back ends, so a stop during
	// it leaves a disk with its partitions. The table's sectors are none
	// of the data's (copies leaves them out), so the read-back, still
	// running, is not disturbed; its failure still fails the restore.
	if err == nil && d.laid != nil && !d.onTarget {
		err = d.writeTable(dst)
	}
	if err == nil && d.written != nil {
		d.written()
	}
	if v != nil {
		verr := v.wait(err == nil)
		log.Info("verify finished", "target", d.target, "err", verr, "elapsed", time.Since(d.start))
		if err == nil && verr != nil {
			return nil, verr
		}
		res.Verified = err == nil
		for i := range res.Partitions {
			res.Partitions[i].Verified = res.Verified
		}
	}
	if err == nil && d.laid != nil {
		err = d.finishLayout(ctx, dst, res)
	}
	if err != nil {
		log.Error("writing failed", "target", d.target, "err", err)
		state := "the target is incomplete and will not boot or mount; run the operation again"
		if plan.Create {
			// A half-written file that looks like a disk image helps nobody.
			dst.Close()
			os.Remove(d.target)
			state = "the partly written file was removed"
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("writing %s cancelled after %s of %s: %s: %w",
				d.target, HumanBytes(res.Written), HumanBytes(size), state, ctx.Err())
		}
		return nil, fmt.Errorf("writing %s failed after %s: %s: %w", d.target, HumanBytes(res.Written), state, err)
	}
	if d.partition == 0 && d.meta.Kind == images.KindDisk || d.into {
		if err := dst.RereadPartitions(); err != nil {
			res.Notes = append(res.Notes, err.Error())
		}
	}
	res.Notes = append(res.Notes, d.notes...)
	res.Elapsed = time.Since(d.start)
	log.Info("finished", "target", d.target, "written", res.Written, "verified", res.Verified, "elapsed", res.Elapsed)
	return res, nil
}

// copies lists what a new layout copies, in target order: the boot area
// before the first partition (boot code, GRUB's core image on MBR disks;
// not the table itself, written after the data) and each partition's
// bytes. part is the partition an op writes (0: the boot area or a gap).
type copyOp struct {
	from, to, at int64
	part         int
}

func (d *delivery) copies() []copyOp {
	if d.into {
		m := d.laid.Moves[0]
		return []copyOp{{d.from, d.to, m.DstStart, d.partition}}
	}
	var ops []copyOp
	firstSrc, firstDst := d.meta.Size, d.laid.DiskSize
	for _, m := range d.laid.Moves {
		if d.isContainer(m.Number) {
			continue
		}
		firstSrc, firstDst = min(firstSrc, m.SrcStart), min(firstDst, m.DstStart)
		ops = append(ops, copyOp{m.SrcStart, m.SrcStart + min(m.SrcSize, m.DstSize), m.DstStart, m.Number})
	}
	var gapFrom int64
	if raw := d.meta.Table.Raw; len(raw) > 0 && raw[0].Offset == 0 {
		gapFrom = int64(len(raw[0].Data))
	}
	if d.onTarget {
		// The target's table stays: its sectors are not the gap's.
		if raw := d.laid.Table.Raw; len(raw) > 0 && raw[0].Offset == 0 {
			gapFrom = max(gapFrom, int64(len(raw[0].Data)))
		}
	}
	if gapTo := min(firstSrc, firstDst); gapTo > gapFrom {
		ops = append(ops, copyOp{gapFrom, gapTo, gapFrom, 0})
	}
	slices.SortFunc(ops, func(a, b copyOp) int { return cmp.Compare(a.at, b.at) })
	return ops
}

// fsOf is the filesystem type the image recorded for a planned partition.
func (d *delivery) fsOf(m layout.Move) string {
	n := m.Number
	if d.into {
		n = d.partition
	}
	if p := tablePartition(d.meta.Table, n); p.FS != nil {
		return p.FS.Type
	}
	return ""
}

func (d *delivery) isContainer(n int) bool {
	if d.into {
		return false
	}
	p := tablePartition(d.meta.Table, n)
	return d.meta.Table.Type == layout.MBR && layout.IsExtended(p.Type)
}

// rangeOps is what a restore of the stored bytes copies: the stream's
// range [from, to) to the start of the target, cut at the partitions of a
// whole disk so each partition's result is its own. MBR extended
// containers are not cut at: their logical partitions are.
func (d *delivery) rangeOps() []copyOp {
	if !d.wholeDisk() {
		return []copyOp{{d.from, d.to, 0, d.partition}}
	}
	var ops []copyOp
	at := d.from
	parts := slices.Clone(d.meta.Table.Partitions)
	slices.SortFunc(parts, func(a, b images.Partition) int { return cmp.Compare(a.Start, b.Start) })
	for _, p := range parts {
		if d.isContainer(p.Number) || p.Start < at || p.Start+p.Size > d.to {
			continue
		}
		if p.Start > at {
			ops = append(ops, copyOp{at, p.Start, at - d.from, 0})
		}
		ops = append(ops, copyOp{p.Start, p.Start + p.Size, p.Start - d.from, p.Number})
		at = p.Start + p.Size
	}
	if at < d.to {
		ops = append(ops, copyOp{at, d.to, at - d.from, 0})
	}
	return ops
}

// writeOps writes ops in order, comparing with the target first for a
// delta, and adds each partition's result to res.
func (d *delivery) writeOps(ctx context.Context, dst *blockdev.Device, ops []copyOp, fresh bool, p Progress, res *RestoreResult, v *verifier) error {
	var total int64
	for _, op := range ops {
		total += op.to - op.from
	}
	var chs []*images.Changes
	if d.delta {
		var err error
		if chs, err = d.compare(ctx, dst, ops, total, p); err != nil {
			return err
		}
	}
	tr := startStage(p, d.stageOf(), total)
	defer tr.end()
	for i, op := range ops {
		start, before := time.Now(), res.Written
		var err error
		if d.delta {
			err = deltaRange(ctx, d.src.(*images.StreamReader), chs[i], op.from, op.to, op.at, dst, tr, res, v)
		} else {
			err = writeRange(ctx, d.src, op.from, op.to, op.at, dst, fresh, tr, res, v)
		}
		if op.part != 0 {
			pr := PartitionResult{Number: op.part, Size: op.to - op.from, Written: res.Written - before, Elapsed: time.Since(start)}
			if d.laid != nil {
				for _, m := range d.laid.Moves {
					if m.Number == op.part || d.into {
						pr.Size = m.DstSize
					}
				}
			}
			if d.meta.Table != nil {
				if sp := tablePartition(d.meta.Table, op.part); sp.FS != nil {
					pr.FS, pr.Label = sp.FS.Type, sp.FS.Label
				}
			} else if d.meta.FS != nil {
				pr.FS, pr.Label = d.meta.FS.Type, d.meta.FS.Label
			}
			res.Partitions = append(res.Partitions, pr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compare is the first half of a delta restore, before anything is
// written: which chunks of each op the target does not hold (read and
// hashed on every worker), and then, unless --no-precheck, those chunks
// read, authenticated or hashed and decompressed: the check before
// writing (issue #11) of only what will be written. A chunk the target
// already holds is not needed, so its damage in the image does not matter
// to this restore.
func (d *delivery) compare(ctx context.Context, dst *blockdev.Device, ops []copyOp, total int64, p Progress) ([]*images.Changes, error) {
	sr := d.src.(*images.StreamReader)
	chs := make([]*images.Changes, len(ops))
	var changed int64
	tr := startStage(p, StageCompare, total)
	for i, op := range ops {
		ch, err := sr.Changes(ctx, op.from, op.to, dst, op.at, tr.add)
		var re *images.ReadError
		if errors.As(err, &re) {
			err = &IOError{Op: "read", Path: dst.Path, Offset: re.Offset, Err: re.Err}
		}
		if err != nil {
			tr.end()
			return nil, err
		}
		chs[i] = ch
		changed += ch.Stats.ChangedBytes
	}
	tr.end()
	if !d.precheck {
		return chs, nil
	}
	start := time.Now()
	tr = startStage(p, StagePrecheck, changed)
	err := sr.Check(ctx, tr.add, chs...)
	tr.end()
	d.log.Info("check of the chunks to write finished", "image", d.origin, "err", err, "elapsed", time.Since(start))
	if err != nil {
		return nil, describeOpenError(d.origin, err)
	}
	return chs, nil
}

// stageOf is the progress stage of the writing: restoring or cloning.
func (d *delivery) stageOf() Stage {
	if d.stage == 0 {
		return StageRestore
	}
	return d.stage
}

// deltaBootCode writes the image's MBR boot code (bytes 0–439, before the
// table the target keeps) where the target's differs.
func (d *delivery) deltaBootCode(dst *blockdev.Device, res *RestoreResult, v *verifier) error {
	raw := d.meta.Table.Raw
	if len(raw) == 0 || raw[0].Offset != 0 || len(raw[0].Data) < 440 {
		return nil
	}
	want, have := raw[0].Data[:440], make([]byte, 440)
	if _, err := dst.ReadAt(have, 0); err != nil {
		return &IOError{Op: "read", Path: dst.Path, Err: err}
	}
	if bytes.Equal(want, have) {
		return nil
	}
	if _, err := dst.WriteAt(want, 0); err != nil {
		return &IOError{Op: "write", Path: dst.Path, Err: err}
	}
	res.Written += int64(len(want))
	if v != nil {
		v.add(segment{off: 0, n: int64(len(want)), sum: maphash.Bytes(v.hseed, want)})
	}
	return nil
}

// finishLayout grows the filesystems of grown partitions, after the
// read-back (growing changes what was verified), and words the plan's
// notes for the result. The table was written before the read-back ended.
func (d *delivery) finishLayout(ctx context.Context, dst *blockdev.Device, res *RestoreResult) error {
	var grows []layout.Move
	for _, m := range d.laid.Moves {
		if m.DstSize > m.SrcSize && !d.isContainer(m.Number) {
			grows = append(grows, m)
		}
	}
	for i, text := range d.laid.Notes {
		// The grown partitions get a note of their own below, saying
		// what became of their filesystems. A note added to Notes
		// without AddNote has no detail: it is kept.
		// A detail's fix was advice for the plan, not for the result.
		var n layout.Note
		if i < len(d.laid.Details) && d.laid.Details[i].String() == text {
			n = d.laid.Details[i]
			text = n.Text
		}
		if n.Change != layout.Grows || !slices.ContainsFunc(grows, func(m layout.Move) bool { return m.Number == n.Partition }) {
			res.Notes = append(res.Notes, text)
		}
	}
	// The tools open the target themselves, through a loop device over the
	// partition; everything this descriptor wrote is synced. After a delta
	// restore onto a disk an earlier restore laid out, the partition holds
	// the image's (smaller) filesystem again, grown as a full restore with
	// that layout would grow it.
	for _, m := range grows {
		note, grown, err := growFS(ctx, d.log, d.target, m.Number, d.fsOf(m), m.DstStart, m.SrcSize, m.DstSize)
		if err != nil {
			return err
		}
		res.Notes = append(res.Notes, note)
		for i := range res.Partitions {
			if res.Partitions[i].Number == m.Number {
				res.Partitions[i].Grown = grown
			}
		}
	}
	return nil
}

// writeTable writes the planned partition table and checks it reads back.
func (d *delivery) writeTable(dst *blockdev.Device) error {
	boot := d.intoBoot
	if raw := d.meta.Table.Raw; !d.into && len(raw) > 0 && raw[0].Offset == 0 && len(raw[0].Data) >= 440 {
		boot = raw[0].Data[:440]
	}
	if err := layout.Write(dst, dst.Size, d.laid.Table, boot); err != nil {
		return fmt.Errorf("write the partition table to %s: %w", d.target, err)
	}
	if err := dst.Sync(); err != nil {
		return &IOError{Op: "sync", Path: d.target, Err: err}
	}
	got, err := layout.Read(dst, dst.Size, d.laid.Table.SectorSize)
	if err != nil {
		return fmt.Errorf("the partition table written to %s does not read back: %w", d.target, err)
	}
	for _, want := range d.laid.Table.Partitions {
		ok := false
		for _, g := range got.Partitions {
			ok = ok || g.Number == want.Number && g.Start == want.Start && g.Size == want.Size
		}
		if !ok {
			return fmt.Errorf("%w: partition %d of the table written to %s does not read back as planned", ErrVerify, want.Number, d.target)
		}
	}
	return nil
}
