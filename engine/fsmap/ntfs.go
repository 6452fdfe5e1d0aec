package fsmap

import "bytes"

// NTFS: the cluster bitmap is the unnamed $DATA attribute of MFT record 6
// ($Bitmap). Record layout and runlist encoding as in ntfs-3g (layout.h,
// runlist.c).
//
// Used is: every cluster set in $Bitmap ($Boot, $MFT, $MFTMirr, $LogFile
// and $Bitmap itself are such clusters), the boot sector, and the backup
// boot sector, which lies just past the last cluster; for good measure the
// last sector of the partition too, where Windows and mkntfs put it.
func mapNTFS(d *dev, b *builder) (int64, error) {
	bs := make([]byte, 512)
	if err := d.read(bs, 0, "NTFS boot sector"); err != nil {
		return 0, err
	}
	ss := int64(le16(bs, 11))
	if ss < 256 || ss > 4096 || !isPow2(uint64(ss)) {
		return 0, fallbackf("NTFS boot sector: sector size %d is invalid", ss)
	}
	var clusterBytes int64
	switch spc := bs[13]; {
	case spc == 0:
		return 0, fallbackf("NTFS boot sector: 0 sectors per cluster")
	case spc <= 0x80:
		if !isPow2(uint64(spc)) {
			return 0, fallbackf("NTFS boot sector: %d sectors per cluster is invalid", spc)
		}
		clusterBytes = int64(spc) * ss
	default: // a negative power of two: clusters above 64 KiB
		shift := 256 - int(spc)
		if shift > 21 {
			return 0, fallbackf("NTFS boot sector: cluster size 2^%d is invalid", shift)
		}
		clusterBytes = int64(1) << shift
	}
	if clusterBytes < ss {
		return 0, fallbackf("NTFS boot sector: cluster size %d is below the sector size %d", clusterBytes, ss)
	}
	var recordSize int64
	if c := int8(bs[64]); c > 0 {
		recordSize = int64(c) * clusterBytes
	} else if c < 0 && c >= -20 {
		recordSize = int64(1) << -c
	}
	if recordSize < 512 || recordSize > 65536 || !isPow2(uint64(recordSize)) {
		return 0, fallbackf("NTFS boot sector: MFT record size %d is invalid", recordSize)
	}
	total := le64(bs, 40) // sectors, without the backup boot sector
	if total == 0 || total > uint64(d.size/ss) {
		return 0, fallbackf("NTFS boot sector says %d sectors of %d bytes, more than the %d-byte volume holds", total, ss, d.size)
	}
	clusters := int64(total) * ss / clusterBytes
	mft := le64(bs, 48)
	if mft >= uint64(clusters) {
		return 0, fallbackf("NTFS boot sector puts the MFT at cluster %d, past the %d clusters", mft, clusters)
	}

	b.add(0, ss)
	b.add(int64(total)*ss, ss)
	b.add(d.size-ss, ss)

	rec := make([]byte, recordSize)
	if err := d.read(rec, int64(mft)*clusterBytes+6*recordSize, "NTFS MFT record 6 ($Bitmap)"); err != nil {
		return 0, err
	}
	if err := ntfsFixup(rec, 6, "$Bitmap"); err != nil {
		return 0, err
	}
	runs, size, err := ntfsDataRuns(rec, clusters, 6, "$Bitmap")
	if err != nil {
		return 0, err
	}
	need := (clusters + 7) / 8
	if len(runs) == 0 {
		return 0, fallbackf("NTFS $Bitmap's runlist is empty")
	}
	if size < need {
		return 0, fallbackf("NTFS $Bitmap holds %d bytes, too few for %d clusters", size, clusters)
	}

	// A sanity check on the bitmap's content: it must mark $Boot (cluster
	// 0), the start of $MFT and the start of $Bitmap itself.
	must := [3]int64{0, int64(mft), runs[0].Off}
	var seen [3]bool
	add := func(first, n int64) {
		b.add(first*clusterBytes, n*clusterBytes)
		for i, c := range must {
			if c >= first && c < first+n {
				seen[i] = true
			}
		}
	}
	buf := make([]byte, chunk)
	done := int64(0)
	for _, r := range runs {
		for o := int64(0); o < r.Len*clusterBytes && done < need; {
			p := buf[:min(int64(len(buf)), r.Len*clusterBytes-o, need-done)]
			if err := d.read(p, r.Off*clusterBytes+o, "NTFS $Bitmap"); err != nil {
				return 0, err
			}
			bitRuns(p, min(int64(len(p))*8, clusters-done*8), done*8, add)
			o += int64(len(p))
			done += int64(len(p))
		}
	}
	if done < need {
		return 0, fallbackf("NTFS $Bitmap's runlist covers %d of its %d bytes (an attribute list is not supported)", done, need)
	}
	if seen != [3]bool{true, true, true} {
		return 0, fallbackf("NTFS $Bitmap does not mark the clusters of $Boot, $MFT and $Bitmap itself as used: it is damaged")
	}

	// The metadata files ntfsfix and chkdsk start from must lie wholly in
	// the map: a $Bitmap that calls any of their clusters free is damaged.
	b.rs = b.finish()
	c := cover(b.rs)
	check := func(name string, rs []Range) error {
		for _, r := range rs {
			if !c.has(r.Off*clusterBytes, r.Len*clusterBytes) {
				return fallbackf("NTFS %s has clusters %d–%d that $Bitmap marks free (damaged filesystem: run chkdsk or ntfsfix on the original)", name, r.Off, r.Off+r.Len-1)
			}
		}
		return nil
	}
	if err := check("$Bitmap", runs); err != nil {
		return 0, err
	}
	var mftRuns []Range
	for i, name := range []string{"$MFT", "$MFTMirr", "$LogFile"} {
		if err := d.read(rec, int64(mft)*clusterBytes+int64(i)*recordSize, "NTFS MFT record "+itoa(int64(i))+" ("+name+")"); err != nil {
			return 0, err
		}
		if err := ntfsFixup(rec, i, name); err != nil {
			return 0, err
		}
		if ntfsHasAttr(rec, 0x20) {
			continue // an attribute list: $DATA may live in another record
		}
		rs, _, err := ntfsDataRuns(rec, clusters, i, name)
		if err != nil {
			return 0, err
		}
		if err := check(name, rs); err != nil {
			return 0, err
		}
		if i == 0 {
			mftRuns = rs
		}
	}
	if b.wantCuts {
		if err := ntfsCuts(d, b, mftRuns, clusterBytes, recordSize, clusters); err != nil {
			return 0, err
		}
	}
	return clusterBytes, nil
}

// ntfsCuts gives b the Map.Cuts of an NTFS volume: the data runs of every
// file of at least CutMinFile bytes, read from the in-use MFT records that
// hold a file's first $DATA runs. They are hints: a record that does not
// parse, or an $MFT with an attribute list (mftRuns nil), gives no cuts,
// never a fallback.
func ntfsCuts(d *dev, b *builder, mftRuns []Range, clusterBytes, recordSize, clusters int64) error {
	buf := make([]byte, max(chunk/recordSize, 1)*recordSize)
	n := -1 // record number
	for _, r := range mftRuns {
		for o := int64(0); o+recordSize <= r.Len*clusterBytes; {
			p := buf[:min(int64(len(buf)), (r.Len*clusterBytes-o)/recordSize*recordSize)]
			if err := d.read(p, r.Off*clusterBytes+o, "NTFS MFT"); err != nil {
				return err
			}
			o += int64(len(p))
			for k := int64(0); k+recordSize <= int64(len(p)); k += recordSize {
				rec := p[k : k+recordSize]
				n++
				// In use, not a directory, with a first $DATA segment
				// that is not resident.
				if string(rec[:4]) != "FILE" || le16(rec, 22)&3 != 1 || !ntfsNonResidentData(rec) || ntfsFixup(rec, n, "") != nil {
					continue
				}
				runs, size, err := ntfsDataRuns(rec, clusters, n, "")
				if err != nil || size < CutMinFile {
					continue
				}
				for _, r := range runs {
					b.cut(r.Off * clusterBytes)
					b.cut((r.Off + r.Len) * clusterBytes)
				}
				if len(b.cuts) >= maxCuts {
					return nil
				}
			}
		}
	}
	return nil
}

// ntfsNonResidentData says, without building an error, whether the record
// (before its fixup: a header this misreads for it is read again, fixed
// up, by ntfsDataRuns, and a cut missed is only a hint lost) has an
// unnamed non-resident $DATA attribute starting at VCN 0.
func ntfsNonResidentData(rec []byte) bool {
	a := ntfsFindAttr(rec, func(typ uint32, a []byte) bool { return typ == 0x80 && a[9] == 0 })
	return a != nil && a[8] == 1 && len(a) >= 64 && le64(a, 16) == 0
}

// ntfsHasAttr reports whether the fixed-up record rec has an attribute of
// type typ.
func ntfsHasAttr(rec []byte, typ uint32) bool {
	return ntfsFindAttr(rec, func(t uint32, _ []byte) bool { return t == typ }) != nil
}

// ntfsFindAttr returns the first attribute of record rec (its bytes) that
// match accepts, or nil at the end of the list or where it is malformed.
func ntfsFindAttr(rec []byte, match func(typ uint32, a []byte) bool) []byte {
	off := int(le16(rec, 20))
	for n := 0; n <= 256 && off >= 24 && off+8 <= len(rec); n++ {
		typ, alen := le32(rec, off), int(le32(rec, off+4))
		if typ == 0xFFFFFFFF || alen < 16 || alen > len(rec)-off {
			return nil
		}
		if a := rec[off : off+alen]; match(typ, a) {
			return a
		}
		off += alen
	}
	return nil
}

// ntfsFixup checks MFT record n (called name) and applies its update
// sequence: the last two bytes of every 512-byte stride were replaced on
// disk by the update sequence number, and the originals are kept in the
// update sequence array.
func ntfsFixup(rec []byte, n int, name string) error {
	if string(rec[0:4]) != "FILE" {
		return fallbackf("NTFS MFT record %d (%s) has no FILE signature", n, name)
	}
	usaOff := int(le16(rec, 4))
	usaCount := int(le16(rec, 6))
	const stride = 512
	if usaCount != len(rec)/stride+1 || usaOff < 42 || usaOff%2 != 0 || usaOff+2*usaCount > len(rec) {
		return fallbackf("NTFS MFT record %d (%s) has an invalid update sequence array", n, name)
	}
	usn := rec[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i*stride - 2
		if !bytes.Equal(rec[end:end+2], usn) {
			return fallbackf("NTFS MFT record %d (%s) is torn (update sequence mismatch in sector %d)", n, name, i-1)
		}
		copy(rec[end:end+2], rec[usaOff+2*i:usaOff+2*i+2])
	}
	if le16(rec, 22)&1 == 0 {
		return fallbackf("NTFS MFT record %d (%s) is not in use", n, name)
	}
	return nil
}

// ntfsDataRuns finds the unnamed non-resident $DATA attribute in the
// fixed-up record rec (MFT record n, called name) and decodes its runlist
// into cluster runs (Off is the LCN), checked against the volume's
// clusters. size is the attribute's initialized size in bytes.
func ntfsDataRuns(rec []byte, clusters int64, n int, name string) (runs []Range, size int64, err error) {
	recName := "NTFS MFT record " + itoa(int64(n)) + " (" + name + ")"
	off := int(le16(rec, 20))
	for k := 0; ; k++ {
		if k > 256 || off < 24 || off+16 > len(rec) {
			return nil, 0, fallbackf("%s has no $DATA attribute", recName)
		}
		typ := le32(rec, off)
		if typ == 0xFFFFFFFF {
			return nil, 0, fallbackf("%s has no $DATA attribute", recName)
		}
		alen := int(le32(rec, off+4))
		if alen < 16 || alen > len(rec)-off {
			return nil, 0, fallbackf("%s: attribute %#x has an invalid length %d", recName, typ, alen)
		}
		if typ == 0x80 && rec[off+9] == 0 { // $DATA, no name
			a := rec[off : off+alen]
			if a[8] != 1 || alen < 64 {
				return nil, 0, fallbackf("NTFS %s's $DATA is resident; not supported", name)
			}
			if le64(a, 16) != 0 {
				return nil, 0, fallbackf("NTFS %s's $DATA starts at VCN %d (an attribute list is not supported)", name, le64(a, 16))
			}
			size = int64(min(le64(a, 56), le64(a, 48), 1<<62)) // initialized ≤ data size
			runs, err := ntfsRunlist(a, int(le16(a, 32)), clusters, name)
			return runs, size, err
		}
		off += alen
	}
}

// ntfsRunlist decodes the mapping pairs at a[off:] of name's $DATA.
func ntfsRunlist(a []byte, off int, clusters int64, name string) ([]Range, error) {
	var runs []Range
	lcn := int64(0)
	for off < len(a) && a[off] != 0 {
		h := a[off]
		nl, no := int(h&0x0F), int(h>>4)
		if nl == 0 || nl > 8 || no > 8 || off+1+nl+no > len(a) {
			return nil, fallbackf("NTFS %s's runlist is malformed", name)
		}
		var length int64
		for i := nl - 1; i >= 0; i-- {
			length = length<<8 | int64(a[off+1+i])
		}
		if no == 0 {
			return nil, fallbackf("NTFS %s's runlist has a sparse run", name)
		}
		// The LCN delta is signed, little-endian.
		delta := int64(int8(a[off+nl+no]))
		for i := no - 2; i >= 0; i-- {
			delta = delta<<8 | int64(a[off+1+nl+i])
		}
		lcn += delta
		if length <= 0 || lcn < 0 || lcn >= clusters || length > clusters-lcn {
			return nil, fallbackf("NTFS %s's runlist points outside the volume (LCN %d, %d clusters)", name, lcn, length)
		}
		runs = append(runs, Range{lcn, length})
		off += 1 + nl + no
	}
	return runs, nil
}
