package fsmap

// exFAT, after Microsoft's "exFAT file system specification".
//
// Used is: everything before the cluster heap (the main and backup boot
// regions, the FATs) and every cluster set in the allocation bitmap. The bitmap, the up-case
// table and the root directory are clusters marked in the bitmap. The FAT
// alone would not do: files marked NoFatChain have no FAT entries. The
// directory tree is then walked (fatrefs.go) to check that the bitmap
// leaves out nothing reachable from the root.
const (
	exfatBootRegion = 24 // sectors: main and backup boot regions, before the FAT
	// exfatMaxRootDir bounds the root directory scan for the bitmap entry,
	// which mkfs writes among the first entries.
	exfatMaxRootDir = 16 << 20
)

func mapExFAT(d *dev, b *builder) (int64, error) {
	bs := make([]byte, 512)
	if err := d.read(bs, 0, "exFAT boot sector"); err != nil {
		return 0, err
	}
	secShift := int64(bs[108])
	clusShift := int64(bs[109])
	if secShift < 9 || secShift > 12 || clusShift > 25-secShift {
		return 0, fallbackf("exFAT boot sector: sector size 2^%d or cluster size 2^%d sectors is invalid", secShift, clusShift)
	}
	ss := int64(1) << secShift
	clusterBytes := ss << clusShift
	volSectors := le64(bs, 72)
	fatOff := int64(le32(bs, 80))
	fatLen := int64(le32(bs, 84))
	heapOff := int64(le32(bs, 88))
	clusters := int64(le32(bs, 92))
	root := int64(le32(bs, 96))
	nfats := int64(bs[110])
	active := int64(le16(bs, 106) & 1)
	switch {
	case volSectors > uint64(d.size/ss):
		return 0, fallbackf("exFAT boot sector says %d sectors of %d bytes, more than the %d-byte volume holds", volSectors, ss, d.size)
	case nfats != 1 && nfats != 2, active >= nfats:
		return 0, fallbackf("exFAT boot sector: %d FATs (active %d) is invalid", nfats, active)
	case fatOff < exfatBootRegion || fatLen == 0 || fatOff+nfats*fatLen > heapOff:
		return 0, fallbackf("exFAT boot sector: FAT at sector %d (%d sectors) is invalid", fatOff, fatLen)
	case clusters == 0 || clusters > 0xFFFFFFF5 || (clusters+2)*4 > fatLen*ss:
		return 0, fallbackf("exFAT boot sector: %d clusters is invalid for a %d-sector FAT", clusters, fatLen)
	case heapOff > int64(volSectors) || clusters > (int64(volSectors)-heapOff)>>clusShift:
		return 0, fallbackf("exFAT boot sector: the cluster heap runs past the end of the volume")
	}
	// Everything before the cluster heap: the boot regions, the FATs, and
	// the alignment gaps between them, which the specification leaves
	// unused but which partclone copies too; at most a few MiB.
	b.add(0, heapOff*ss)

	// fatOff now points at the active FAT.
	fatOff = (fatOff + active*fatLen) * ss
	heap := heapOff * ss
	next := func(c int64) (int64, error) {
		var e [4]byte
		if err := d.read(e[:], fatOff+c*4, "exFAT FAT"); err != nil {
			return 0, err
		}
		return int64(le32(e[:], 0)), nil
	}
	valid := func(c int64) bool { return c >= 2 && c < clusters+2 }

	// Find the allocation bitmap entry (type 0x81) for the active FAT in
	// the root directory.
	var bmCluster, bmLen int64 = -1, 0
	piece := make([]byte, min(clusterBytes, chunk))
	c := root
scan:
	for read := int64(0); read < exfatMaxRootDir; {
		if !valid(c) {
			break
		}
		for o := int64(0); o < clusterBytes && read < exfatMaxRootDir; o += int64(len(piece)) {
			if err := d.read(piece, heap+(c-2)*clusterBytes+o, "exFAT root directory"); err != nil {
				return 0, err
			}
			read += int64(len(piece))
			for i := 0; i+32 <= len(piece); i += 32 {
				e := piece[i : i+32]
				if e[0] == 0x00 {
					break scan
				}
				if e[0] == 0x81 && int64(e[1]&1) == active {
					bmCluster, bmLen = int64(le32(e, 20)), int64(le64(e, 24))
					break scan
				}
			}
		}
		var err error
		if c, err = next(c); err != nil {
			return 0, err
		}
	}
	need := (clusters + 7) / 8
	if bmCluster < 0 {
		return 0, fallbackf("exFAT root directory has no allocation bitmap entry")
	}
	if !valid(bmCluster) || bmLen < need {
		return 0, fallbackf("exFAT allocation bitmap entry (cluster %d, %d bytes) is invalid for %d clusters", bmCluster, bmLen, clusters)
	}

	// Stream the bitmap along its cluster chain.
	add := func(first, n int64) { b.add(heap+first*clusterBytes, n*clusterBytes) }
	c = bmCluster
	for done := int64(0); done < need; {
		if !valid(c) {
			return 0, fallbackf("exFAT allocation bitmap's cluster chain breaks after %d of %d bytes", done, need)
		}
		for o := int64(0); o < clusterBytes && done < need; {
			p := piece[:min(int64(len(piece)), need-done)]
			if err := d.read(p, heap+(c-2)*clusterBytes+o, "exFAT allocation bitmap"); err != nil {
				return 0, err
			}
			bitRuns(p, min(int64(len(p))*8, clusters-done*8), done*8, add)
			o += int64(len(p))
			done += int64(len(p))
		}
		if done < need {
			var err error
			if c, err = next(c); err != nil {
				return 0, err
			}
		}
	}

	// Everything reachable from the root directory — the bitmap, the
	// up-case table, every directory and file — must be in the map.
	b.rs = b.finish()
	w := &exfatWalk{
		d:        d,
		fat:      &fatCache{d: d, off: fatOff, bits: 32, n: clusters + 2, what: "exFAT FAT"},
		c:        cover(b.rs),
		clusters: clusters,
		heap:     heap,
		cb:       clusterBytes,
		bud:      budget{clusters + 16},
		cut:      b.cut,
	}
	if err := w.walk(exfatChain{first: root, length: -1, isDir: true, what: "root directory"}); err != nil {
		return 0, err
	}
	return clusterBytes, nil
}
