package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/lifeboat-rescue/lifeboat/images"
)

// MergeOptions describe a merge: one point of a chain written out as a new,
// self-contained image.
type MergeOptions struct {
	Image       string // the point to merge (its chain is found as for restore)
	ChainDir    string
	Output      string
	Overwrite   bool
	Password    func() ([]byte, error) // the chain's; the new image gets the same
	Encryption  Encryption             // what the merge demands of the chain's encryption
	KDF         images.KDFCost
	Mode        fs.FileMode // of the new image's files (0: images.DefaultMode, 0600)
	SplitSize   int64
	ToolVersion string
	Progress    Progress
	Log         *slog.Logger
}

// Merge writes the moment a point of a chain holds as a new full image
// (temporary name, fsync, rename). The inputs are only read. The new image
// has the point's compression, cipher, password and chunking, so later
// incrementals can build on it.
func Merge(ctx context.Context, o MergeOptions) (*BackupResult, error) {
	log := logger(o.Log)
	start := time.Now()
	if o.Output == "" {
		return nil, errors.New("no output image given; name one with -o FILE")
	}
	c, err := openChain(ctx, o.Image, o.ChainDir, o.Password, o.Encryption)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, m := range c.all() {
		for _, part := range m.Info().Parts {
			if part == o.Output || sameFile(part, o.Output) {
				return nil, refuse(o.Output, "it is %s, one of the images being merged", "choose a new name for the merged image", part)
			}
		}
	}
	out, _, err := createImage(ctx, o.Output, createCheck{overwrite: o.Overwrite, split: o.SplitSize})
	if err != nil {
		return nil, err
	}
	defer out.abort()
	info := c.point.Info()
	wo := images.WriterOptions{ChunkSize: c.point.ChunkAverage(), Compression: info.Compression, KDF: o.KDF,
		SplitSize: o.SplitSize, Overwrite: o.Overwrite, ToolVersion: o.ToolVersion, Mode: o.Mode}
	if c.point.Encrypted() {
		if wo.Password, err = c.password(); err != nil {
			return nil, err
		}
		wo.Cipher = info.Cipher
	}
	w, err := out.writer(wo)
	if err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Output, err)
	}
	defer w.Abort()
	meta := &images.Metadata{Streams: append([]images.Stream(nil), c.point.Meta.Streams...), Notes: append([]string(nil), c.point.Meta.Notes...),
		Point: &images.Point{Kind: images.PointFull}}
	meta.Notes = append(meta.Notes, fmt.Sprintf("merged from %s (%d earlier points) on %s", filepath.Base(o.Image), len(c.members), time.Now().UTC().Format(time.RFC3339)))
	var total int64
	srs := make([]*images.StreamReader, len(meta.Streams))
	for i := range srs {
		if srs[i], err = c.point.Stream(i); err != nil {
			return nil, err
		}
		total += images.StreamWork(srs[i].Size(), srs[i].UsedRanges())
	}
	log.Info("merge started", "image", o.Image, "points", len(c.members)+1, "output", o.Output)
	tr := startStage(o.Progress, StageMerge, total)
	res := &BackupResult{Image: o.Output, Point: images.PointFull}
	for i, sr := range srs {
		st, err := w.AddStream(ctx, sr, sr.Size(), images.StreamOptions{Used: sr.UsedRanges(), Progress: tr.add})
		if err != nil {
			tr.end()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("merge of %s cancelled; no image was written: %w", o.Image, ctx.Err())
			}
			return nil, fmt.Errorf("merge of %s: %w", o.Image, err)
		}
		meta.Streams[i].Stored, meta.Streams[i].Unused = st.DataBytes, st.UnusedBytes
		res.Stored += st.Stored
		res.Chunks += st.Chunks
		res.SourceSize += sr.Size()
	}
	tr.end()
	if err := w.Commit(meta); err != nil {
		return nil, fmt.Errorf("finish image %s: %w", o.Output, err)
	}
	if err := out.finish(ctx, w); err != nil {
		return nil, fmt.Errorf("merge of %s: %w", o.Image, err)
	}
	res.UUID, res.Elapsed = w.UUID(), time.Since(start)
	log.Info("merge finished", "output", o.Output, "stored", res.Stored, "elapsed", res.Elapsed)
	return res, nil
}
