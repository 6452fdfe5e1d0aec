package layout

import (
	"strings"
	"testing"
)

func TestCorrespond(t *testing.T) {
	const mib = 1 << 20
	stored := &Table{Type: GPT, SectorSize: 512, Partitions: []Partition{
		{Number: 1, Start: 1 * mib, Size: 40 * mib, Type: typeESP},
		{Number: 2, Start: 41 * mib, Size: 120 * mib, Type: typeLinux},
		{Number: 3, Start: 161 * mib, Size: 100 * mib, Type: typeBasicData},
	}}
	for _, mode := range []Mode{Keep, Fill, Manual} {
		for _, newIDs := range []bool{false, true} {
			for _, tt := range []TableType{GPT, MBR} {
				p, err := PlanLayout(stored, 450*mib, 512, PlanOptions{Mode: mode, Sizes: map[int]int64{1: 60 * mib}, Align: mib, NewIDs: newIDs, Table: tt})
				if err != nil {
					t.Fatal(err)
				}
				moves, err := Correspond(stored, p.Table)
				if err != nil {
					t.Errorf("%v new-ids=%v %v: %v", mode, newIDs, tt, err)
					continue
				}
				if len(moves) != len(p.Moves) {
					t.Fatalf("%v: %d moves, want %d", mode, len(moves), len(p.Moves))
				}
				for i := range moves {
					if moves[i] != p.Moves[i] {
						t.Errorf("%v new-ids=%v %v: move %+v, want the plan's %+v", mode, newIDs, tt, moves[i], p.Moves[i])
					}
				}
			}
		}
	}

	cp := func(f func(*Table)) *Table {
		t := *stored
		t.Partitions = append([]Partition(nil), stored.Partitions...)
		f(&t)
		return &t
	}
	for _, c := range []struct {
		name   string
		target *Table
		want   string
	}{
		{"none", &Table{Type: None}, "no partition table"},
		{"fewer", cp(func(t *Table) { t.Partitions = t.Partitions[:2] }), "partitions 1, 2, 3 but the target has 1, 2"},
		{"more", cp(func(t *Table) {
			t.Partitions = append(t.Partitions, Partition{Number: 4, Start: 300 * mib, Size: mib, Type: typeLinux})
		}), "the target has 1, 2, 3, 4"},
		{"type", cp(func(t *Table) { t.Partitions[1].Type = typeSwap }), "partition 2 is of type"},
		{"order", cp(func(t *Table) { t.Partitions[1].Start, t.Partitions[2].Start = 300*mib, 41*mib }), "partitions 1, 2, 3 but the target has 1, 3, 2"},
		{"smaller", cp(func(t *Table) { t.Partitions[2].Size = 50 * mib }), "partition 3 is 50 MiB on the target, smaller than the 100 MiB"},
	} {
		if _, err := Correspond(stored, c.target); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}
