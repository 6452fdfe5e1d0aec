package engine

// What a restore reports besides its bytes: a result per partition, the
// Written signal with the new partition table already on the target, and
// the later points of a chain that Info finds beside a base image.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// resultDisk is a 64 MiB GPT disk: p1 ext4 16 MiB "one", p2 ext4 24 MiB
// "two", each made by mkfs.ext4 and copied in.
func resultDisk(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"sgdisk", "mkfs.ext4", "e2fsck", "resize2fs"} {
		fstest.Tool(t, tool)
	}
	dir := t.TempDir()
	disk := deltaFile(t, filepath.Join(dir, "disk.img"), 64*deltaMiB)
	fstest.Run(t, fstest.Tool(t, "sgdisk"), "-n1:2048:+16M", "-t1:8300", "-n2:0:+24M", "-t2:8300", disk)
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, p := range deltaTable(t, disk).Partitions {
		img := deltaFile(t, filepath.Join(dir, p.Name+"fs"+string(rune('1'+i))), p.Size)
		fstest.Run(t, fstest.Tool(t, "mkfs.ext4"), "-q", "-F", "-L", []string{"one", "two"}[i], img)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, p.Start); err != nil {
			t.Fatal(err)
		}
	}
	return disk
}

func TestRestoreResultPerPartition(t *testing.T) {
	disk := resultDisk(t)
	ctx := context.Background()
	full := filepath.Join(t.TempDir(), "full.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: full}); err != nil {
		t.Fatal(err)
	}

	t.Run("fill", func(t *testing.T) {
		target := deltaFile(t, filepath.Join(t.TempDir(), "big.img"), 96*deltaMiB)
		var plan Plan
		var events []string
		written := 0
		prog := ProgressFunc(func(s Status) {
			if s.Final {
				events = append(events, s.Stage.String())
			}
		})
		res, err := Restore(ctx, RestoreOptions{Image: full, Target: target, Layout: LayoutOptions{Mode: layout.Fill, Align: deltaMiB},
			Progress: prog, Log: testLogger(t),
			Confirm: func(p Plan) error { plan = p; return nil },
			Written: func() {
				written++
				events = append(events, "written")
				// The new table is on the target before the read-back
				// ends: a stop now leaves the disk with its partitions.
				got := deltaTable(t, target)
				if len(got.Partitions) != 2 || got.Partitions[1].Size != plan.Layout.Moves[1].DstSize {
					t.Errorf("at Written the target's table is %+v, want the planned one %+v", got.Partitions, plan.Layout.Moves)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if written != 1 {
			t.Errorf("Written called %d times, want once", written)
		}
		if want := []string{"checking image", "restoring", "written", "reading back"}; len(events) != len(want) || events[2] != "written" || events[3] != "reading back" {
			t.Errorf("events %q, want %q: Written between the writing and the end of the read-back", events, want)
		}
		if len(res.Partitions) != 2 {
			t.Fatalf("partitions %+v, want 2", res.Partitions)
		}
		var sum int64
		for i, p := range res.Partitions {
			m := plan.Layout.Moves[i]
			if p.Number != i+1 || p.FS != "ext4" || p.Label != []string{"one", "two"}[i] || p.Size != m.DstSize || p.Written <= 0 || !p.Verified {
				t.Errorf("partition %d: %+v, want ext4 %q of %d bytes, written and verified", i+1, p, []string{"one", "two"}[i], m.DstSize)
			}
			if p.Grown != (m.DstSize > m.SrcSize) {
				t.Errorf("partition %d: grown %v, but it goes from %d to %d bytes", p.Number, p.Grown, m.SrcSize, m.DstSize)
			}
			sum += p.Written
		}
		if sum > res.Written {
			t.Errorf("the partitions' bytes (%d) exceed the restore's (%d)", sum, res.Written)
		}
	})

	t.Run("as-stored", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "copy.img")
		res, err := Restore(ctx, RestoreOptions{Image: full, Target: target, NoVerify: true, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		stored := deltaTable(t, disk).Partitions
		if len(res.Partitions) != 2 {
			t.Fatalf("partitions %+v, want 2", res.Partitions)
		}
		for i, p := range res.Partitions {
			if p.Number != stored[i].Number || p.Size != stored[i].Size || p.Verified || p.Grown || p.Written <= 0 {
				t.Errorf("partition %+v, want %d bytes, written, not verified (NoVerify), not grown", p, stored[i].Size)
			}
		}
	})

	t.Run("one-partition", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "p2.img")
		res, err := Restore(ctx, RestoreOptions{Image: full, Target: target, Partition: 2, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Partitions) != 1 || res.Partitions[0].Number != 2 || res.Partitions[0].Label != "two" || !res.Partitions[0].Verified {
			t.Errorf("partitions %+v, want partition 2, verified", res.Partitions)
		}
	})
}

// TestInfoLaterPoints: Info of a full backup lists the points beside it
// that build on it; a point's own Info lists its earlier ones in Chain.
func TestInfoLaterPoints(t *testing.T) {
	disk := resultDisk(t)
	ctx := context.Background()
	dir := t.TempDir()
	full, inc, diff := filepath.Join(dir, "full.lbi"), filepath.Join(dir, "inc.lbi"), filepath.Join(dir, "diff.lbi")
	if _, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: full}); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: inc, Incremental: full}); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: diff, Differential: full}); err != nil {
		t.Fatal(err)
	}
	ii, err := Info(ctx, full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ii.Later) != 2 || len(ii.Chain) != 0 || ii.Later[1].Created.Before(ii.Later[0].Created) ||
		!(ii.Later[0].File == inc && ii.Later[1].File == diff || ii.Later[0].File == diff && ii.Later[1].File == inc) {
		t.Errorf("full: later %+v, chain %+v; want inc.lbi and diff.lbi after it, oldest first, no earlier points", ii.Later, ii.Chain)
	}
	ii, err = Info(ctx, inc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ii.Later) != 0 || len(ii.Chain) != 2 || ii.Chain[0].File != full {
		t.Errorf("inc: later %+v, chain %+v; want no later points, full before it", ii.Later, ii.Chain)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Info(cctx, full, nil); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Info with a cancelled context: %v", err)
	}
}
