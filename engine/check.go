package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// CheckOptions describe a check of an image.
type CheckOptions struct {
	Image    string
	ChainDir string // where earlier points of its chain are, besides its folder
	Password func() ([]byte, error)
	// Encryption is what the check demands of the image's encryption.
	Encryption Encryption
	Progress   Progress
}

// CheckResult says what a check covered.
type CheckResult struct {
	StoredBytes int64 // bytes of stored chunks read and verified
	DiskBytes   int64 // bytes of the streams they describe
	Points      int   // images verified: the image and the earlier points it needs
	Elapsed     time.Duration
}

// Check reads every byte of an image and verifies it: header, trailer,
// metadata and index checksums, every stored chunk's checksum, decryption
// and decompression, and every chunk's plaintext hash. A failure is an
// *images.CorruptError naming the first bad offset.
func Check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	start := time.Now()
	c, err := openChain(ctx, o.Image, o.ChainDir, o.Password, o.Encryption)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	im := c.point
	res := &CheckResult{Points: len(c.members) + 1}
	if err := verifyChain(ctx, c, o.Progress, StageCheck, false); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("check of %s cancelled: %w", o.Image, ctx.Err())
		}
		return nil, err
	}
	for _, m := range c.all() {
		res.StoredBytes += m.Info().DataBytes
	}
	res.Elapsed = time.Since(start)
	for _, s := range im.Meta.Streams {
		res.DiskBytes += s.Size
	}
	return res, nil
}

// ImageInfo is what `lifeboat info` shows.
type ImageInfo struct {
	Image string
	images.Info
	Meta images.Metadata
	// Chain lists, for a point of a chain, the earlier points it builds
	// on (found or missing) and then the image itself.
	Chain []ChainPoint `json:"chain,omitempty"`
	// Later lists the points found beside the image (and in the chain
	// folder) that build on it, oldest first: for a full backup, the
	// chain it starts.
	Later []ChainPoint `json:"later,omitempty"`
	// RawSectors puts the partition table's raw sectors (base64) into
	// the JSON form too.
	RawSectors bool `json:"-"`
}

// MarshalJSON writes the description with snake_case keys throughout (the
// embedded images.Info has none of its own) and without the partition
// table's raw sectors unless RawSectors is set: they are most of the bytes
// and of no use to a reader of `info --json`.
func (ii *ImageInfo) MarshalJSON() ([]byte, error) {
	meta, err := json.Marshal(ii.Meta)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(meta))
	dec.UseNumber() // int64 sizes stay exact
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if !ii.RawSectors {
		streams, _ := m["streams"].([]any)
		for _, st := range streams {
			if s, ok := st.(map[string]any); ok {
				if t, ok := s["table"].(map[string]any); ok {
					delete(t, "raw")
				}
			}
		}
	}
	return json.Marshal(struct {
		Image        string         `json:"image"`
		UUID         string         `json:"uuid"`
		ParentUUID   string         `json:"parent_uuid,omitempty"`
		Created      time.Time      `json:"created"`
		ToolVersion  string         `json:"tool_version"`
		ChunkSize    int            `json:"chunk_size"`
		ChunkAverage int            `json:"chunk_average,omitempty"`
		ChunkHash    string         `json:"chunk_hash"`
		Compression  string         `json:"compression"`
		Cipher       string         `json:"cipher"`
		SplitSize    int64          `json:"split_size,omitempty"`
		Parts        []string       `json:"parts"`
		FileSize     int64          `json:"file_size"`
		Locked       bool           `json:"locked"`
		Records      int            `json:"records"`
		DataBytes    int64          `json:"data_bytes"`
		Meta         map[string]any `json:"meta"`
		Chain        []ChainPoint   `json:"chain,omitempty"`
		Later        []ChainPoint   `json:"later,omitempty"`
	}{ii.Image, ii.UUID, ii.ParentUUID, ii.Created, ii.ToolVersion, ii.ChunkSize, ii.ChunkAverage, ii.ChunkHash, ii.Compression.String(), ii.Cipher.String(),
		ii.SplitSize, ii.Parts, ii.FileSize, ii.Locked, ii.Records, ii.DataBytes, m, ii.Chain, ii.Later})
}

// Info opens an image and describes it. An encrypted image is described
// without its password (its metadata is not encrypted); password, if set,
// unlocks it so the record counts are filled in too. ctx stops the open
// (an image over HTTP, a chain on a slow share).
func Info(ctx context.Context, image string, password func() ([]byte, error)) (*ImageInfo, error) {
	return InfoIn(ctx, image, "", password, Encryption{})
}

// InfoIn is Info looking for earlier points of a chain in chainDir too,
// and refusing (or warning about) the image as enc says.
func InfoIn(ctx context.Context, image, chainDir string, password func() ([]byte, error), enc Encryption) (*ImageInfo, error) {
	return info(ctx, image, chainDir, password, enc, true)
}

// ChainInfo is Info without the scan for later points (Later stays
// empty): what a writer needs to record what an image it wrote builds on.
func ChainInfo(ctx context.Context, image string, password func() ([]byte, error)) (*ImageInfo, error) {
	return info(ctx, image, "", password, Encryption{}, false)
}

func info(ctx context.Context, image, chainDir string, password func() ([]byte, error), enc Encryption, later bool) (*ImageInfo, error) {
	im, err := openImage(ctx, image, images.OpenOptions{Password: password})
	if err != nil {
		return nil, describeOpenError(image, err)
	}
	defer im.Close()
	if err := enc.check(image, im, true); err != nil {
		return nil, err
	}
	ii := &ImageInfo{Image: image, Info: im.Info(), Meta: im.Meta, Chain: describeChain(image, chainDir, im)}
	if later {
		ii.Later = describeLater(ctx, image, chainDir, im)
	}
	return ii, nil
}

// verifyChain reads every stored byte of a point and of the earlier points
// it needs: only the checksums (stored) or everything. A failure names the
// image it is in.
func verifyChain(ctx context.Context, c *chain, p Progress, stage Stage, stored bool) error {
	var total int64
	for _, m := range c.all() {
		total += m.Info().DataBytes
	}
	tr := startStage(p, stage, total)
	defer tr.end()
	for _, m := range c.all() {
		if err := m.Verify(ctx, images.VerifyOptions{Stored: stored, Thorough: stage == StageCheck, Progress: tr.add}); err != nil {
			return err
		}
	}
	return nil
}

// DiskInfo is one disk as `lifeboat disks` shows it.
type DiskInfo struct {
	Name        string          `json:"name"`
	Path        string          `json:"path"`
	Model       string          `json:"model,omitempty"`
	Serial      string          `json:"serial,omitempty"`
	Bus         string          `json:"bus,omitempty"`
	BackingFile string          `json:"backing_file,omitempty"`
	Size        int64           `json:"size"`
	SectorSize  int             `json:"sector_size"`
	Removable   bool            `json:"removable"`
	ReadOnly    bool            `json:"read_only"`
	Table       string          `json:"table"`        // "gpt", "mbr", "" none, "unreadable"
	FS          *images.FS      `json:"fs,omitempty"` // a filesystem on the whole disk
	Partitions  []PartitionInfo `json:"partitions"`
	// MountPoints are where the disk itself, or anything stacked on it
	// other than its partitions (a loop device's filesystem, LVM, RAID),
	// is mounted; "[SWAP]" for active swap.
	MountPoints []string `json:"mount_points"`
	// Error says why the disk could not be read, if it could not.
	Error string `json:"error,omitempty"`
}

// PartitionInfo is one partition with what was found in it.
type PartitionInfo struct {
	Name   string     `json:"name"`
	Path   string     `json:"path"`
	Number int        `json:"number"`
	Start  int64      `json:"start"`
	Size   int64      `json:"size"`
	Type   string     `json:"type,omitempty"`
	Label  string     `json:"label,omitempty"` // GPT partition name
	FS     *images.FS `json:"fs,omitempty"`
	// MountPoints are where the partition (or anything stacked on it) is
	// mounted; "[SWAP]" for active swap.
	MountPoints []string `json:"mount_points"`
}

// mountPoints lists where path is mounted, or nothing when that cannot be
// told (the listing shows what it can).
func mountPoints(path string) []string {
	ps, err := blockdev.MountPoints(path)
	if err != nil {
		return []string{}
	}
	return ps
}

// Disks lists the machine's disks with their tables and filesystems.
// Disks that cannot be read (no permission, no medium) are listed with
// what the system says about them and the error.
func Disks() ([]DiskInfo, error) {
	ds, err := blockdev.List()
	if err != nil {
		return nil, err
	}
	out := make([]DiskInfo, 0, len(ds))
	for _, d := range ds {
		di := DiskInfo{Name: d.Name, Path: d.Path, Model: d.Model, Serial: d.Serial, Bus: d.Bus, BackingFile: d.BackingFile,
			Size: d.Size, SectorSize: d.SectorSize, Removable: d.Removable, ReadOnly: d.ReadOnly, Partitions: []PartitionInfo{}}
		dev, err := blockdev.Open(d.Path, blockdev.ReadOnly)
		if err != nil {
			di.Error = err.Error()
		}
		var t *layout.Table
		if dev != nil {
			t, err = layout.Read(dev, dev.Size, dev.SectorSize)
			switch {
			case err != nil:
				di.Table, di.Error = "unreadable", err.Error()
			case t.Type == layout.None:
				di.FS = probeFS(dev, dev.Size)
			default:
				di.Table = strings.ToLower(t.Type.String())
			}
		}
		for _, p := range d.Partitions {
			pi := PartitionInfo{Name: p.Name, Path: p.Path, Number: p.Number, Start: p.Start, Size: p.Size}
			if dev != nil && p.Start >= 0 && p.Size > 0 && p.Start+p.Size <= dev.Size {
				pi.FS = probeFS(io.NewSectionReader(dev, p.Start, p.Size), p.Size)
			}
			if t != nil {
				for _, tp := range t.Partitions {
					if tp.Number == p.Number {
						pi.Type, pi.Label = tp.Type, tp.Name
					}
				}
			}
			pi.MountPoints = mountPoints(p.Path)
			di.Partitions = append(di.Partitions, pi)
		}
		// The disk's own mounts: those not already shown on a partition.
		di.MountPoints = []string{}
		for _, m := range mountPoints(d.Path) {
			onPart := false
			for _, pi := range di.Partitions {
				onPart = onPart || slices.Contains(pi.MountPoints, m)
			}
			if !onPart {
				di.MountPoints = append(di.MountPoints, m)
			}
		}
		if dev != nil {
			dev.Close()
		}
		out = append(out, di)
	}
	return out, nil
}
