package layout

import (
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
)

// AddPartition plans one new partition in the unallocated space of a disk
// whose table is t: at the first free region (aligned to align bytes) that
// holds size bytes — or, with fill, taking the whole of the largest free
// region that does. p gives the type, name, attributes and boot flag; the
// number is the lowest free one (MBR: primary 1-4 only) and a GPT
// partition gets a new unique GUID. t is not modified.
func AddPartition(t *Table, diskSize int64, p Partition, size, align int64, fill bool) (*Table, Partition, error) {
	if t == nil || (t.Type != GPT && t.Type != MBR) {
		return nil, p, errorf("the target has no partition table to add a partition to; restore onto a partition, or onto the whole disk")
	}
	ss := int64(t.SectorSize)
	if ss <= 0 {
		ss = 512
	}
	if align < ss {
		align = ss
	}
	var first, end int64
	if t.Type == GPT {
		arr := roundUp(gptEntries*128, ss)
		first, end = 2*ss+arr, (diskSize/ss-1)*ss-arr
	} else {
		first, end = ss, min(diskSize/ss, 1<<32)*ss
	}
	// Number.
	used := map[int]bool{}
	for _, q := range t.Partitions {
		used[q.Number] = true
	}
	limit := gptEntries
	if t.Type == MBR {
		limit = 4
	}
	p.Number = 0
	for n := 1; n <= limit; n++ {
		if !used[n] {
			p.Number = n
			break
		}
	}
	if p.Number == 0 {
		if t.Type == MBR {
			return nil, p, errorf("the target's MBR has no free primary slot (4 in use); free one, or restore onto an existing partition")
		}
		return nil, p, errorf("the target's GPT has no free entry")
	}
	// Free regions between the partitions (an extended partition is taken
	// whole: its free space belongs to the logical chain).
	parts := slices.Clone(t.Partitions)
	slices.SortFunc(parts, func(a, b Partition) int { return int(a.Start - b.Start) })
	type region struct{ start, end int64 }
	var free []region
	pos := first
	for _, q := range parts {
		if q.Number > 4 && t.Type == MBR {
			continue // inside the extended partition
		}
		if q.Start > pos {
			free = append(free, region{pos, q.Start})
		}
		pos = max(pos, q.Start+q.Size)
	}
	if end > pos {
		free = append(free, region{pos, end})
	}
	var best *region
	for i := range free {
		r := &free[i]
		start := roundUp(r.start, align)
		room := alignDown(r.end, ss) - start
		if room < size {
			continue
		}
		if !fill {
			best = &region{start, start + size}
			break
		}
		if best == nil || room > best.end-best.start {
			best = &region{start, start + room}
		}
	}
	if best == nil {
		var l []string
		for _, r := range free {
			l = append(l, humanize.IBytes(uint64(r.end-r.start)))
		}
		have := "none"
		if len(l) > 0 {
			have = strings.Join(l, ", ")
		}
		return nil, p, errorf("no unallocated space of %s on the target (free regions: %s); free some space, restore onto an existing partition, or choose another disk", humanize.IBytes(uint64(size)), have)
	}
	p.Start, p.Size, p.EBR = best.start, best.end-best.start, 0
	if t.Type == GPT {
		p.GUID = newGUID()
	} else {
		p.GUID, p.Name, p.Attributes = "", "", 0
		if !strings.HasPrefix(p.Type, "0x") {
			typ, err := mbrTypeFor(p.Type)
			if err != nil {
				return nil, p, err
			}
			p.Type = typ
		}
	}
	if t.Type == GPT && strings.HasPrefix(p.Type, "0x") {
		typ, err := gptTypeFor(p.Type)
		if err != nil {
			return nil, p, err
		}
		p.Type = typ
	}
	nt := *t
	nt.Raw = nil
	nt.Partitions = append(slices.Clone(t.Partitions), p)
	slices.SortFunc(nt.Partitions, func(a, b Partition) int { return a.Number - b.Number })
	return &nt, p, nil
}

func mbrTypeFor(gptType string) (string, error) {
	if t, ok := gptToMBR[strings.ToUpper(gptType)]; ok {
		return t, nil
	}
	return "", errorf("the partition's GPT type %s has no MBR equivalent; restore it onto a GPT disk or onto an existing partition", gptType)
}

func gptTypeFor(mbrType string) (string, error) {
	if t, ok := mbrToGPT[strings.ToLower(mbrType)]; ok {
		return t, nil
	}
	return "", errorf("the partition's MBR type %s has no GPT equivalent we know; restore it onto an MBR disk or onto an existing partition", mbrType)
}
