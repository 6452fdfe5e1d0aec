package images

import (
	"fmt"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// Level is the compression level of an image.
type Level int

const (
	LevelNone Level = iota
	LevelFast
	LevelNormal
	LevelHigh
)

var levelNames = []string{"none", "fast", "normal", "high"}

func (l Level) valid() bool { return l >= 0 && int(l) < len(levelNames) }

func (l Level) String() string {
	if !l.valid() {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// ParseLevel accepts the names String returns.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression level %q; use one of %v", s, levelNames)
}

func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }
func (l *Level) UnmarshalText(b []byte) (err error) {
	*l, err = ParseLevel(string(b))
	return err
}

// MetaVersion is the version of the Metadata JSON schema. Readers ignore
// fields they do not know; a change that old readers would misread bumps it.
const MetaVersion = 1

// Metadata describes what an image holds. It is JSON in the file, written
// at the end, so a streaming writer can fill it in as it goes.
type Metadata struct {
	Version int      `json:"version"`
	Streams []Stream `json:"streams"`
	// Notes are free-form lines for humans (e.g. why a partition fell back
	// to sector-by-sector).
	Notes []string `json:"notes,omitempty"`
	// Point says where the image stands in a chain of backups; nil for an
	// image made before chains existed (a full backup).
	Point *Point `json:"point,omitempty"`
}

// PointKind is what a backup point stores.
type PointKind string

const (
	PointFull         PointKind = "full"         // everything: self-contained
	PointIncremental  PointKind = "incremental"  // what changed since the latest point
	PointDifferential PointKind = "differential" // what changed since the full backup
)

// Point places an image in its chain.
type Point struct {
	Kind PointKind `json:"kind"`
	// Chain are the earlier points this one builds on, oldest (the full
	// backup) first, as they were when it was made: where to look for them.
	Chain []Link `json:"chain,omitempty"`
}

// Link names an earlier point of a chain.
type Link struct {
	UUID    string    `json:"uuid"`
	File    string    `json:"file"` // base name of its first part when this point was made
	Kind    PointKind `json:"kind"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // bytes of all its parts
}

// StreamKind says what a stream was copied from.
type StreamKind string

const (
	KindDisk      StreamKind = "disk"
	KindPartition StreamKind = "partition"
)

// Mode is how a stream's bytes were chosen.
type Mode string

const (
	// ModeAllSectors stores every sector (zero chunks as holes).
	ModeAllSectors Mode = "sector-by-sector"
	// ModeUsed stores only what the filesystems use.
	ModeUsed Mode = "used-blocks"
)

// Stream is one virtual device in an image: a whole disk or a partition.
type Stream struct {
	Kind       StreamKind `json:"kind"`
	Source     string     `json:"source"` // path it was read from
	Size       int64      `json:"size"`
	SectorSize int        `json:"sector_size"`
	Model      string     `json:"model,omitempty"`
	Serial     string     `json:"serial,omitempty"`
	Mode       Mode       `json:"mode"`
	ModeReason string     `json:"mode_reason,omitempty"` // why every sector was stored
	Table      *Table     `json:"table,omitempty"`
	FS         *FS        `json:"fs,omitempty"` // for a partition stream
	Stored     int64      `json:"stored_bytes"` // bytes of the stream held as data (not holes)
	Created    time.Time  `json:"created"`
	// Damaged lists source ranges that could not be read (backup with
	// --rescue): they are stored as zeros.
	Damaged []Range `json:"damaged,omitempty"`
	// Unused is how many bytes of the stream were not stored because no
	// filesystem uses them.
	Unused int64 `json:"unused_bytes,omitempty"`
}

// Table is a disk's partition table, parsed and as raw sectors. It is the
// stored form of a layout.Table (NewTable, Table.Layout convert); the kind
// of table is layout's own type, whose values are the words stored.
type Table struct {
	Type       layout.TableType `json:"type"` // "mbr", "gpt"
	DiskGUID   string           `json:"disk_guid,omitempty"`
	Partitions []Partition      `json:"partitions"`
	Raw        []RawRange       `json:"raw"`
}

// RawRange is a run of sectors stored verbatim.
type RawRange struct {
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// Partition is one entry of a stored partition table.
type Partition struct {
	Number   int    `json:"number"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	Name     string `json:"name,omitempty"`
	GUID     string `json:"guid,omitempty"`
	Bootable bool   `json:"bootable,omitempty"`
	// Attributes are the GPT attribute flags (required, no-block-IO,
	// legacy-BIOS-bootable, and the type-specific upper bits).
	Attributes uint64 `json:"attributes,omitempty"`
	FS         *FS    `json:"fs,omitempty"`
	Mode       Mode   `json:"mode"`
	// ModeReason says why a partition was copied sector by sector.
	ModeReason string `json:"mode_reason,omitempty"`
}

// FS is what the backup found in a partition.
type FS struct {
	Type  string `json:"type"`
	Label string `json:"label,omitempty"`
	UUID  string `json:"uuid,omitempty"`
	Size  int64  `json:"size,omitempty"`
	Used  int64  `json:"used"` // -1: unknown
}
