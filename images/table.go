package images

import "github.com/lifeboat-rescue/lifeboat/engine/layout"

// NewTable is the stored form of a table layout.Read found: the kind,
// the disk GUID, the partitions (without filesystem or mode: the backup
// fills those in) and the raw sectors. It and Table.Layout are the only
// conversions between the two, so a field added to one is added here.
func NewTable(t *layout.Table) *Table {
	it := &Table{Type: t.Type, DiskGUID: t.DiskGUID}
	for _, r := range t.Raw {
		it.Raw = append(it.Raw, RawRange{Offset: r.Offset, Data: r.Data})
	}
	for _, p := range t.Partitions {
		it.Partitions = append(it.Partitions, Partition{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type,
			Name: p.Name, GUID: p.GUID, Bootable: p.Bootable, Attributes: p.Attributes})
	}
	return it
}

// Layout turns a stored table back into the layout package's form, with
// sectors of sectorSize bytes (the stream's). Partition.EBR is not stored:
// layout.Write places the boot records of logical partitions itself.
func (t *Table) Layout(sectorSize int) *layout.Table {
	lt := &layout.Table{Type: t.Type, DiskGUID: t.DiskGUID, SectorSize: sectorSize}
	for _, p := range t.Partitions {
		lt.Partitions = append(lt.Partitions, layout.Partition{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type,
			Name: p.Name, GUID: p.GUID, Bootable: p.Bootable, Attributes: p.Attributes})
	}
	for _, r := range t.Raw {
		lt.Raw = append(lt.Raw, layout.RawRange{Offset: r.Offset, Data: r.Data})
	}
	return lt
}
