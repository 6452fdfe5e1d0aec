package engine

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/engine/vdisk"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// ExportOptions write one point of an image chain as a virtual disk file.
type ExportOptions struct {
	ExploreOptions
	Output string
	// Format is raw, qcow2 or vhdx; "" takes it from Output's extension.
	Format    string
	Overwrite bool
	Mode      os.FileMode // of the file (0: images.DefaultMode)
	Progress  Progress
}

// ExportResult says what was written.
type ExportResult struct {
	Output   string
	Format   string
	Size     int64 // the virtual disk's size
	FileSize int64 // bytes the file takes (allocated)
	Elapsed  time.Duration
}

// Export writes the image's disk (or its partition, as a disk of that
// size) as a virtual disk for a virtual machine: only the stored chunks
// are written (holes and unused blocks read as zeros). The file is
// written under a temporary name and renamed when complete.
func Export(ctx context.Context, o ExportOptions) (*ExportResult, error) {
	start := time.Now()
	format := cmp.Or(o.Format, vdisk.FormatOf(o.Output))
	if format == "" {
		return nil, &FixError{Err: fmt.Errorf("export %s: the format is not known from the name", o.Output),
			Fix: opt.Text("name the file .qcow2, .vhdx, .img or .raw, or give --format qcow2|vhdx|raw")}
	}
	if err := CheckOutput(o.Output, WriteFile, o.Overwrite); err != nil {
		return nil, err
	}
	c, err := openChain(ctx, o.Image, o.ChainDir, o.Password, o.Encryption)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if n := len(c.point.Meta.Streams); n != 1 {
		return nil, fmt.Errorf("image %s holds %d disks or partitions; export writes one (restore the others)", o.Image, n)
	}
	sr, err := c.point.Stream(0)
	if err != nil {
		return nil, err
	}
	size := sr.Size()
	if size%512 != 0 {
		size += 512 - size%512 // a virtual disk holds whole sectors
	}
	partial := filepath.Join(filepath.Dir(o.Output), "."+filepath.Base(o.Output)+".lifeboat-partial")
	os.Remove(partial) // this export's own name: left by one that was killed
	tmp, err := images.CreateFile(partial, cmp.Or(o.Mode, images.DefaultMode))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", o.Output, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w, err := vdisk.New(tmp, format, size)
	if err != nil {
		return nil, err
	}
	tr := startStage(o.Progress, StageExport, sr.Size())
	err = sr.ForEachChunk(ctx, 0, sr.Size(), func(ch images.Chunk) error {
		if ch.Data != nil {
			if _, err := w.WriteAt(ch.Data, ch.Off); err != nil {
				return fmt.Errorf("export %s: %w", o.Output, err)
			}
		}
		tr.add(ch.Len)
		return nil
	})
	tr.end()
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return nil, err
	}
	st, _ := tmp.Stat()
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), o.Output); err != nil {
		return nil, err
	}
	ok = true
	return &ExportResult{Output: o.Output, Format: format, Size: size, FileSize: allocated(st), Elapsed: time.Since(start)}, nil
}
