package layout

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
)

// Correspond matches the partitions of a stored table to those of a table
// read from a target that an earlier restore laid out from it: by keep,
// fill or manual sizes, starts moved to an alignment, new IDs, the table
// converted between MBR and GPT, the backup GPT at the end of a larger
// disk. The partitions must be the same by number, type (or its
// conversion) and disk order, and each at least as large as stored
// (filesystems are grown, never shrunk); starts and sizes may differ.
// MBR extended partitions are containers and are not matched.
//
// It returns where each stored partition's contents lie on the target,
// in Number order, or an error that says why the tables do not correspond.
func Correspond(stored, target *Table) ([]Move, error) {
	if stored == nil || stored.Type == None {
		return nil, errorf("the image holds no partition table")
	}
	if target == nil || target.Type == None {
		return nil, errorf("the target has no partition table")
	}
	src, dst := contentPartitions(stored), contentPartitions(target)
	if !slices.EqualFunc(src, dst, func(a, b Partition) bool { return a.Number == b.Number }) {
		return nil, errorf("the image has partitions %s but the target has %s", numbers(src), numbers(dst))
	}
	var moves []Move
	for i, s := range src {
		d := dst[i]
		if !sameType(s.Type, stored.Type, d.Type, target.Type) {
			return nil, errorf("partition %d is of type %s in the image but %s on the target", s.Number, s.Type, d.Type)
		}
		if d.Size < s.Size {
			return nil, errorf("partition %d is %s on the target, smaller than the %s it is in the image", s.Number, humanize.IBytes(uint64(d.Size)), humanize.IBytes(uint64(s.Size)))
		}
		moves = append(moves, Move{Number: s.Number, SrcStart: s.Start, SrcSize: s.Size, DstStart: d.Start, DstSize: d.Size})
	}
	slices.SortFunc(moves, func(a, b Move) int { return cmp.Compare(a.Number, b.Number) })
	return moves, nil
}

// contentPartitions are a table's partitions that hold contents (not MBR
// extended containers), in disk order.
func contentPartitions(t *Table) []Partition {
	var out []Partition
	for _, p := range t.Partitions {
		if t.Type == MBR && isExtendedByte(mbrType(p.Type)) {
			continue
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	return out
}

func numbers(ps []Partition) string {
	if len(ps) == 0 {
		return "none"
	}
	var l []string
	for _, p := range ps {
		l = append(l, fmt.Sprint(p.Number))
	}
	return strings.Join(l, ", ")
}

// sameType reports whether partition type a of a table of type at is b of
// a table of type bt, as PlanLayout converts types.
func sameType(a string, at TableType, b string, bt TableType) bool {
	switch {
	case at == bt:
		return strings.EqualFold(a, b)
	case at == GPT && bt == MBR:
		return strings.EqualFold(gptToMBR[strings.ToUpper(a)], b)
	case at == MBR && bt == GPT:
		return strings.EqualFold(mbrToGPT[strings.ToLower(a)], b)
	}
	return false
}
