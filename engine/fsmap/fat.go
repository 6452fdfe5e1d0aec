package fsmap

import "bytes"

// FAT12/16/32, after Microsoft's "FAT32 File System Specification" (the BPB
// checks mirror fsprobe's, which follow libblkid).
//
// Used is: the reserved sectors (boot sector, FSInfo, backup boot sector),
// every FAT copy, the FAT12/16 root directory, and every cluster whose entry
// in the active FAT is neither free (0) nor marked bad. Bad clusters are left
// out: they cannot be read, and the FAT (which we copy) keeps them marked.
// The FAT copies must agree, and every chain reachable from the root
// directory must run through used clusters only (fatrefs.go); otherwise
// the volume is copied sector by sector.
func mapFAT(d *dev, b *builder) (int64, error) {
	bs := make([]byte, 512)
	if err := d.read(bs, 0, "FAT boot sector"); err != nil {
		return 0, err
	}
	sectorSize := int64(le16(bs, 11))
	spc := int64(bs[13])
	reserved := int64(le16(bs, 14))
	fats := int64(bs[16])
	rootEntries := int64(le16(bs, 17))
	sectors := int64(le16(bs, 19))
	if sectors == 0 {
		sectors = int64(le32(bs, 32))
	}
	fat16Len := int64(le16(bs, 22))
	fatLen := fat16Len
	if fatLen == 0 {
		fatLen = int64(le32(bs, 36))
	}
	if sectorSize < 512 || sectorSize > 4096 || !isPow2(uint64(sectorSize)) ||
		!isPow2(uint64(spc)) || reserved == 0 || fats == 0 || sectors == 0 || fatLen == 0 {
		return 0, fallbackf("FAT boot sector has an invalid BIOS parameter block")
	}
	if sectors > d.size/sectorSize {
		return 0, fallbackf("FAT boot sector says %d sectors of %d bytes, more than the %d-byte volume holds", sectors, sectorSize, d.size)
	}
	dirSectors := (rootEntries*32 + sectorSize - 1) / sectorSize
	meta := reserved + fats*fatLen + dirSectors
	if sectors <= meta {
		return 0, fallbackf("FAT boot sector: the FATs and root directory fill the whole volume")
	}
	clusters := (sectors - meta) / spc
	bits := int64(32)
	if fat16Len != 0 {
		bits = 16
		if clusters <= 0xFF4 {
			bits = 12
		}
	}
	if bits == 32 && clusters > 0x0FFFFFF5 {
		return 0, fallbackf("FAT32 boot sector: %d clusters is more than FAT32 can address", clusters)
	}
	// Clusters past the end of the FAT have no entry and cannot be
	// allocated.
	clusters = min(clusters, fatLen*sectorSize*8/bits-2)

	b.add(0, meta*sectorSize)

	fatOff := reserved * sectorSize
	mirrored := true
	if bits == 32 {
		if ext := le16(bs, 40); ext&0x80 != 0 { // mirroring off: one active FAT
			mirrored = false
			active := int64(ext & 0x0F)
			if active >= fats {
				return 0, fallbackf("FAT32 boot sector names FAT %d active of %d", active, fats)
			}
			fatOff += active * fatLen * sectorSize
		}
	}
	var bad uint32
	switch bits {
	case 12:
		bad = 0xFF7
	case 16:
		bad = 0xFFF7
	case 32:
		bad = 0x0FFFFFF7
	}
	clusterBytes := spc * sectorSize
	dataOff := meta * sectorSize
	run := int64(-1) // first cluster of the current run of used clusters
	flush := func(end int64) {
		if run >= 0 {
			b.add(dataOff+(run-2)*clusterBytes, (end-run)*clusterBytes)
			run = -1
		}
	}

	last := clusters + 2 // one past the last cluster number
	// Entries are streamed in pieces; a piece holds a whole number of
	// entries (for FAT12, of entry pairs: 3 bytes).
	per := int64(chunk / 4)
	if bits == 12 {
		per = last + last%2 // at most 4086 entries: one small read
	}
	buf := make([]byte, min(per, last+1)*bits/8+2)
	var other []byte
	if mirrored && fats > 1 {
		other = make([]byte, len(buf))
	}
	for c0 := int64(0); c0 < last; c0 += per {
		n := min(per, last-c0)
		nb := (n*bits + 7) / 8
		p := buf[:nb]
		if err := d.read(p, fatOff+c0*bits/8, "FAT"); err != nil {
			return 0, err
		}
		// The copies must agree (from entry 2 on: entries 0 and 1 hold
		// the media byte and dirty flags): fsck.fat repairs from
		// either, and the one it picks may hold chains this map would
		// leave out.
		for i := int64(1); other != nil && i < fats; i++ {
			q := other[:nb]
			if err := d.read(q, fatOff+i*fatLen*sectorSize+c0*bits/8, "FAT copy"); err != nil {
				return 0, err
			}
			skip := int64(0)
			if c0 == 0 {
				skip = min(2*bits/8, nb)
			}
			if !bytes.Equal(p[skip:], q[skip:]) {
				return 0, fallbackf("FAT copies 1 and %d differ (damaged filesystem: run fsck.fat on the original)", i+1)
			}
		}
		for i := range n {
			c := c0 + i
			if c < 2 {
				continue
			}
			var v uint32
			switch bits {
			case 12:
				o := i * 3 / 2
				w := uint32(p[o])
				if o+1 < nb {
					w |= uint32(p[o+1]) << 8
				}
				if i%2 == 0 {
					v = w & 0xFFF
				} else {
					v = w >> 4
				}
			case 16:
				v = uint32(le16(p, int(i*2)))
			case 32:
				v = le32(p, int(i*4)) & 0x0FFFFFFF
			}
			if v != 0 && v != bad {
				if run < 0 {
					run = c
				}
			} else {
				flush(c)
			}
		}
	}
	flush(last)

	w := &fatWalk{
		d:           d,
		fat:         &fatCache{d: d, off: fatOff, bits: bits, n: last, what: "FAT"},
		bits:        bits,
		last:        last,
		bad:         bad,
		eoc:         bad + 1,
		dataOff:     dataOff,
		cb:          clusterBytes,
		bud:         budget{last + 16},
		fat32:       bits == 32,
		rootOff:     (reserved + fats*fatLen) * sectorSize,
		rootLen:     dirSectors * sectorSize,
		rootCluster: int64(le32(bs, 44)),
		cut:         b.cut,
	}
	if err := w.walk(); err != nil {
		return 0, err
	}
	return clusterBytes, nil
}
