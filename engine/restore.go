package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// RestoreOptions describe one restore.
type RestoreOptions struct {
	Image string
	// Password is asked for only if the image is encrypted.
	Password func() ([]byte, error)
	// Encryption is what the restore demands of the image's encryption.
	Encryption Encryption
	Target     string // disk, partition or plain file (created if missing)
	// Mode is the permission of the target file when the restore creates
	// it (0: images.DefaultMode, 0600); images.CheckMode says what is
	// allowed. An existing target keeps its own.
	Mode fs.FileMode
	// Partition restores only partition N (1-based, as in sdb2) of a disk
	// image; 0 restores the whole stream.
	Partition int
	// ChainDir is where earlier points of the image's chain are, besides
	// the image's folder.
	ChainDir string
	// Delta: the target already holds an older copy; chunks it holds are
	// compared (by hash) and only those that differ are written.
	Delta bool
	// Layout says how a disk image's partitions are laid out on a target
	// disk of another size (keep, fill, manual; alignment; new IDs).
	Layout LayoutOptions
	// Confirm is called after every check passed and before the first byte
	// is written; an error from it aborts with nothing written.
	Confirm func(Plan) error
	// Written, if set, is called once, from the restore's goroutine, when
	// everything is on the target and synced, the new partition table
	// included: what follows (the rest of the read-back, growing
	// filesystems) writes no data, so a stop after it leaves a complete
	// copy that was not (fully) verified.
	Written  func()
	NoVerify bool
	// NoPrecheck skips reading and authenticating every chunk before the
	// first byte is written. Only the stored checksums are then compared
	// first (a delta restore compares none): a chunk altered with its
	// checksum kept (or taken from another image) is found only while
	// writing, and the target is left half-written.
	NoPrecheck bool
	Progress   Progress
	Log        *slog.Logger
}

// Plan is what a restore or clone is about to do, for confirmation.
type Plan struct {
	Image       string // the image, or the source of a clone
	Target      string
	TargetSize  int64    // 0 when the target file will be created
	Create      bool     // target is a new plain file
	What        string   // "disk", "partition 2", ...
	Bytes       int64    // bytes the restore covers on the target
	Overwrites  []string // human lines: what the target holds now
	TargetIsDev bool
	// Layout is the partition layout the target gets, when the disk is
	// laid out anew (nil when the bytes are written as stored).
	Layout *layout.Plan
	// LayoutKept: Layout is the table the target has now, kept as it is
	// (a delta restore onto a disk an earlier restore laid out); its Moves
	// say where the image's partitions lie on it.
	LayoutKept bool
	// Before are the source's partitions, for drawing before/after.
	Before []images.Partition
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Target   string
	Bytes    int64 // range covered on the target
	Written  int64 // bytes actually written (holes on fresh files are skipped)
	Verified bool
	Elapsed  time.Duration
	Notes    []string
	// With Delta: chunks the target already held, and chunks written.
	SameChunks, ChangedChunks int
	// Partitions is what was done to each partition written, in target
	// order: every partition of a disk, or the one partition restored.
	// Empty for a partition image or a disk without a partition table.
	Partitions []PartitionResult
}

// PartitionResult is what a restore or clone did to one partition.
type PartitionResult struct {
	Number  int    // its number in the image (for a restore into another partition, the image's)
	FS      string // the filesystem type the image recorded; "" if none
	Label   string // the filesystem's label
	Size    int64  // its size on the target
	Written int64  // bytes written into it (unused space and, with Delta, equal chunks are not)
	// Elapsed is the time spent writing it (the read-back runs behind
	// the writer and is not counted).
	Elapsed  time.Duration
	Verified bool // read back from the target and matching; false with NoVerify
	Grown    bool // its filesystem was grown to fill the partition
}

// Restore writes an image (or one partition of it) to a target. Every
// check that can refuse — password, image integrity, target size, mounts,
// the target holding the image — runs before the first byte is written.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	log := logger(o.Log)
	start := time.Now()
	if o.Mode != 0 {
		if err := images.CheckMode(o.Mode); err != nil {
			return nil, fmt.Errorf("restore target %s: %w", o.Target, err)
		}
	}
	c, err := openChain(ctx, o.Image, o.ChainDir, o.Password, o.Encryption)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sr, err := c.point.Stream(0)
	if err != nil {
		return nil, err
	}
	d := &delivery{src: sr, meta: sr.Meta, origin: o.Image, holderWhat: "the image being restored", partition: o.Partition,
		layout: o.Layout, delta: o.Delta, mode: o.Mode, log: log, start: start}
	for _, m := range c.all() {
		for _, part := range m.Info().Parts {
			if !IsURL(part) { // an image on a server is on no local disk
				d.holders = append(d.holders, part)
			}
		}
	}
	defer d.Close()
	plan, err := d.prepare(ctx, o.Target)
	if err != nil {
		return nil, err
	}

	// The image (and the earlier points it needs) is read in full once
	// before writing, every chunk authenticated or hashed and decompressed:
	// a damaged image is refused with nothing written. A restore of a part
	// of the stream (--partition N) checks so only the chunks of that part;
	// a delta restore only the chunks it will write, once it has compared
	// the target with the image, before it writes (writeOps).
	d.precheck = !o.NoPrecheck
	if !d.delta {
		partial := d.from > 0 || d.to < sr.Size()
		log.Info("image check started", "image", o.Image, "points", len(c.members)+1, "full", !o.NoPrecheck, "from", d.from, "to", d.to)
		if partial && !o.NoPrecheck {
			need := sr.Needed(d.from, d.to)
			tr := startStage(o.Progress, StagePrecheck, need.Stats.ChangedBytes)
			err = sr.Check(ctx, tr.add, need)
			tr.end()
		} else {
			err = verifyChain(ctx, c, o.Progress, StagePrecheck, o.NoPrecheck)
		}
		log.Info("image check finished", "image", o.Image, "err", err, "elapsed", time.Since(start))
		if err != nil {
			return nil, describeOpenError(o.Image, err)
		}
	}
	if o.Confirm != nil {
		if err := o.Confirm(*plan); err != nil {
			return nil, err
		}
	}
	d.written = o.Written
	return d.write(ctx, o.NoVerify, o.Progress)
}

// restoreRange is the byte range of the stream a restore covers.
func restoreRange(s *images.Stream, partition int, image string) (from, to int64, what string, err error) {
	if partition == 0 {
		return 0, s.Size, string(s.Kind), nil
	}
	if s.Kind != images.KindDisk || s.Table == nil {
		return 0, 0, "", &FixError{Err: &noPartitionError{fmt.Sprintf("image %s holds a %s without a partition table, so it has no partition %d", image, s.Kind, partition)},
			Fix: opt.With("restore it without {}", opt.Use{Option: opt.Partition})}
	}
	var nums []string
	for _, p := range s.Table.Partitions {
		if p.Number == partition {
			if p.Start < 0 || p.Size <= 0 || p.Start+p.Size > s.Size {
				return 0, 0, "", fmt.Errorf("partition %d of image %s lies outside the disk; it cannot be restored alone", partition, image)
			}
			return p.Start, p.Start + p.Size, fmt.Sprintf("partition %d", partition), nil
		}
		nums = append(nums, fmt.Sprint(p.Number))
	}
	return 0, 0, "", &noPartitionError{fmt.Sprintf("image %s has no partition %d; it has partitions %s (see lifeboat info)", image, partition, strings.Join(nums, ", "))}
}

// noPartitionError: --partition N names a partition the image does not
// have. Like a missing image, it is something named on the command line
// that does not exist (exit 6), not a malformed command line (exit 2):
// whether partition 5 exists is known only once the image is read.
type noPartitionError struct{ msg string }

func (e *noPartitionError) Error() string { return e.msg }
func (e *noPartitionError) Unwrap() error { return fs.ErrNotExist }

// segment is a written piece of the target, for read-back verification.
type segment struct {
	off  int64 // on the target
	n    int64
	zero bool
	sum  uint64 // maphash of the bytes written, under the restore's seed
}

var zeros = make([]byte, 4<<20)

// writeRange writes source bytes [from, to) to dst at offset at, handing
// what it wrote to v (if set) to be read back behind it.
func writeRange(ctx context.Context, src chunkSource, from, to, at int64, dst *blockdev.Device, fresh bool, tr *tracker, res *RestoreResult, v *verifier) error {
	return src.ForEachChunk(ctx, from, to, func(c images.Chunk) error {
		return writeChunk(c, from, to, at, dst, fresh, tr, res, v)
	})
}

// deltaRange is writeRange onto a target that holds an older copy: only
// the chunks ch found different there are written (and read back).
func deltaRange(ctx context.Context, sr *images.StreamReader, ch *images.Changes, from, to, at int64, dst *blockdev.Device, tr *tracker, res *RestoreResult, v *verifier) error {
	err := sr.ForEachOf(ctx, ch, func(c images.Chunk) error {
		return writeChunk(c, from, to, at, dst, false, tr, res, v)
	})
	res.SameChunks += ch.Stats.Same
	res.ChangedChunks += ch.Stats.Changed
	tr.add(to - from - ch.Stats.ChangedBytes) // what the target held, and unused ranges
	return err
}

// writeChunk writes the part of chunk c inside [from, to) at its place.
func writeChunk(c images.Chunk, from, to, at int64, dst *blockdev.Device, fresh bool, tr *tracker, res *RestoreResult, v *verifier) error {
	lo, hi := max(c.Off, from), min(c.Off+c.Len, to)
	s := segment{off: lo - from + at, n: hi - lo}
	switch {
	case c.Unused:
		tr.add(s.n)
		return nil
	case c.Zero:
		s.zero = true
		if !fresh {
			for done := int64(0); done < s.n; {
				m := min(s.n-done, int64(len(zeros)))
				if _, err := dst.WriteAt(zeros[:m], s.off+done); err != nil {
					return &IOError{Op: "write", Path: dst.Path, Offset: s.off + done, Err: err}
				}
				done += m
				res.Written += m
			}
		}
	default:
		// The chunk's hash was checked as it was decoded; what was
		// written is checked on read-back with a keyed 64-bit hash
		// (maphash, ~10 GB/s here), whose random seed the medium cannot
		// know.
		b := c.Data[lo-c.Off : hi-c.Off]
		if v != nil {
			s.sum = maphash.Bytes(v.hseed, b)
		}
		if _, err := dst.WriteAt(b, s.off); err != nil {
			return &IOError{Op: "write", Path: dst.Path, Offset: s.off, Err: err}
		}
		res.Written += int64(len(b))
	}
	if v != nil {
		v.add(s)
	}
	tr.add(s.n)
	return nil
}

// verifySegment reads one segment back: a data chunk in one piece, a hole
// (possibly long) in buffer-sized pieces.
func verifySegment(dst *blockdev.Device, s segment, seed maphash.Seed, buf []byte, tr *tracker) error {
	mismatch := func(off int64) error {
		return fmt.Errorf("%w: %s does not read back what was written at bytes %d–%d; the disk may be failing: try another disk",
			ErrVerify, dst.Path, off, s.off+s.n)
	}
	if !s.zero {
		if int64(cap(buf)) < s.n {
			buf = make([]byte, s.n)
		}
		b := buf[:s.n]
		if _, err := dst.ReadAt(b, s.off); err != nil {
			return &IOError{Op: "read back", Path: dst.Path, Offset: s.off, Err: err}
		}
		tr.add(s.n)
		if maphash.Bytes(seed, b) != s.sum {
			return mismatch(s.off)
		}
		return nil
	}
	for done := int64(0); done < s.n; {
		b := buf[:min(int64(len(buf)), s.n-done)]
		if _, err := dst.ReadAt(b, s.off+done); err != nil {
			return &IOError{Op: "read back", Path: dst.Path, Offset: s.off + done, Err: err}
		}
		if !bytes.Equal(b, zeros[:len(b)]) {
			return mismatch(s.off + done)
		}
		done += int64(len(b))
		tr.add(int64(len(b)))
	}
	return nil
}

func looksLikeDevice(p string) bool {
	return strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, `\\.\`)
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// describeTarget says what the target holds now, for the confirmation.
func describeTarget(d *blockdev.Device) []string {
	var out []string
	s := &images.Stream{}
	if ds, err := describeSource(d, BackupOptions{Kind: images.KindDisk}); err == nil {
		s = ds
	}
	if s.Table == nil {
		if fs := probeFS(d, d.Size); fs != nil {
			out = append(out, fmt.Sprintf("a %s filesystem %q", fs.Type, fs.Label))
		}
		return out
	}
	for _, p := range s.Table.Partitions {
		line := fmt.Sprintf("partition %d (%s)", p.Number, HumanBytes(p.Size))
		if p.FS != nil {
			line += fmt.Sprintf(": %s %q", p.FS.Type, p.FS.Label)
		}
		out = append(out, line)
	}
	return out
}

// describeOpenError adds what to do to image errors.
func describeOpenError(image string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %s does not exist; check the path (split images are opened by their first part): %w", image, err)
	}
	return err
}

// HumanBytes formats a byte count with binary units, as go-humanize's
// IBytes does ("512 B", "16 MiB", "1.5 GiB"). It is the one byte formatter
// of the engine and its front ends; packages below the engine (layout,
// images) call humanize.IBytes themselves. It only adds a sign, since sizes
// are int64 here.
func HumanBytes(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}
