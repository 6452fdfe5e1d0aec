package fsprobe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// NTFS: boot sector BPB plus the $VOLUME_NAME attribute of MFT record 3
// ($Volume), as in libblkid/src/superblocks/ntfs.c.
func probeNTFS(p *prober) (Info, bool, error) {
	bs, ok, err := p.read(0, 512)
	if !ok || err != nil {
		return Info{}, false, err
	}
	if string(bs[3:11]) != "NTFS    " {
		return Info{}, false, nil
	}
	sectorSize := int64(le16(bs, 11))
	if sectorSize < 256 || sectorSize > 4096 || !isPow2(uint64(sectorSize)) {
		return Info{}, false, nil
	}
	// Sectors per cluster: values above 0x80 are negative powers of two.
	spcByte := bs[13]
	var clusterBytes int64
	switch {
	case spcByte == 0:
		return Info{}, false, nil
	case spcByte <= 0x80:
		if !isPow2(uint64(spcByte)) {
			return Info{}, false, nil
		}
		clusterBytes = int64(spcByte) * sectorSize
	default:
		shift := 256 - int(spcByte)
		if shift > 20 {
			return Info{}, false, nil
		}
		clusterBytes = int64(1) << shift
	}
	var recordSize int64
	if c := int8(bs[64]); c > 0 {
		recordSize = int64(c) * clusterBytes
	} else if c < 0 && c >= -20 {
		recordSize = int64(1) << -c
	}
	if recordSize < 256 || recordSize > 65536 || !isPow2(uint64(recordSize)) {
		return Info{}, false, nil
	}
	total := le64(bs, 40)
	info := Info{
		Type:      "ntfs",
		UUID:      fmt.Sprintf("%016X", le64(bs, 72)),
		BlockSize: clusterBytes,
		Used:      -1,
	}
	if total < 1<<50 {
		info.Size = int64(total) * sectorSize
	}

	mftCluster := le64(bs, 48)
	if mftCluster < 1<<40 {
		if off, ok := mulOK(int64(mftCluster), clusterBytes); ok {
			rec, ok, err := p.read(off+3*recordSize, recordSize)
			if err != nil {
				return Info{}, false, err
			}
			if ok {
				info.Label = ntfsVolumeName(bytes.Clone(rec))
			}
		}
	}
	return info, true, nil
}

// ntfsVolumeName applies the record's update-sequence fixups and returns the
// $VOLUME_NAME (type 0x60) attribute's value, or "".
func ntfsVolumeName(rec []byte) string {
	if len(rec) < 48 || string(rec[0:4]) != "FILE" {
		return ""
	}
	usaOff := int(le16(rec, 4))
	usaCount := int(le16(rec, 6))
	const stride = 512 // NTFS protects every 512 bytes, whatever the sector size
	if usaCount > 0 {
		if usaOff+2*usaCount > len(rec) || (usaCount-1)*stride > len(rec) {
			return ""
		}
		usn := rec[usaOff : usaOff+2]
		for i := 1; i < usaCount; i++ {
			end := i*stride - 2
			if !bytes.Equal(rec[end:end+2], usn) {
				return "" // torn write
			}
			copy(rec[end:end+2], rec[usaOff+2*i:usaOff+2*i+2])
		}
	}
	off := int(le16(rec, 20)) // first attribute
	for n := 0; n < 64 && off >= 0 && off+16 <= len(rec); n++ {
		typ := le32(rec, off)
		if typ == 0xFFFFFFFF {
			break
		}
		alen := int(le32(rec, off+4))
		if alen < 16 || alen > len(rec)-off {
			break
		}
		if typ == 0x60 && rec[off+8] == 0 && off+24 <= len(rec) { // resident
			vlen := int(le32(rec, off+16))
			voff := int(le16(rec, off+20))
			if voff+vlen <= alen {
				return utf16String(rec[off+voff : off+voff+vlen])
			}
			return ""
		}
		off += alen
	}
	return ""
}

// exFAT: main boot sector plus the volume-label entry (type 0x83) of the
// root directory; see Microsoft's exFAT specification.
func probeExFAT(p *prober) (Info, bool, error) {
	bs, ok, err := p.read(0, 512)
	if !ok || err != nil {
		return Info{}, false, err
	}
	if string(bs[3:11]) != "EXFAT   " {
		return Info{}, false, nil
	}
	secShift := uint(bs[108])
	clusShift := uint(bs[109])
	if secShift < 9 || secShift > 12 || clusShift > 25-secShift {
		return Info{}, false, nil
	}
	sectorSize := int64(1) << secShift
	clusterBytes := sectorSize << clusShift
	info := Info{
		Type:      "exfat",
		UUID:      fatSerial(bs[100:104]),
		BlockSize: clusterBytes,
		Used:      -1,
	}
	if vl := le64(bs, 72); vl < 1<<(62-secShift) {
		info.Size = int64(vl) << secShift
	}

	fatOff := int64(le32(bs, 80)) * sectorSize
	heapOff := int64(le32(bs, 88)) * sectorSize
	clusters := int64(le32(bs, 92))
	cl := int64(le32(bs, 96))
	for seen := int64(0); seen*clusterBytes/32 < maxDirEntries; seen++ {
		if cl < 2 || cl >= clusters+2 {
			break
		}
		dir, ok, err := p.read(heapOff+(cl-2)*clusterBytes, min(clusterBytes, maxRead))
		if err != nil {
			return Info{}, false, err
		}
		if !ok {
			break
		}
		label, found, end := exfatDirLabel(dir)
		if found || end {
			info.Label = label
			break
		}
		e, ok, err := p.read(fatOff+cl*4, 4)
		if err != nil {
			return Info{}, false, err
		}
		if !ok {
			break
		}
		cl = int64(le32(e, 0))
	}
	return info, true, nil
}

func exfatDirLabel(dir []byte) (label string, found, end bool) {
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		switch e[0] {
		case 0x00:
			return "", false, true
		case 0x83:
			n := int(min(e[1], 11))
			return utf16String(e[2 : 2+2*n]), true, false
		}
	}
	return "", false, false
}

// Linux swap: the signature ends the first page; the v1 header with UUID
// and label follows 1024 bytes of boot sector space.
func probeSwap(p *prober) (Info, bool, error) {
	for _, page := range []int64{4096, 8192, 16384, 32768, 65536} {
		sig, ok, err := p.read(page-10, 10)
		if err != nil {
			return Info{}, false, err
		}
		if !ok {
			break
		}
		if s := string(sig); s != "SWAPSPACE2" && s != "SWAP-SPACE" {
			continue
		}
		info := Info{Type: "swap", BlockSize: page, Used: -1}
		if string(sig) == "SWAP-SPACE" { // v0: no header
			return info, true, nil
		}
		h, ok, err := p.read(1024, 44)
		if err != nil {
			return Info{}, false, err
		}
		if !ok {
			return info, true, nil
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if binary.BigEndian.Uint32(h[0:]) == 1 {
			order = binary.BigEndian
		}
		if order.Uint32(h[0:]) != 1 {
			return info, true, nil // unknown header version: blkid gives no UUID either
		}
		if last := int64(order.Uint32(h[4:])); last > 0 {
			info.Size = (last + 1) * page
		}
		info.UUID = uuidString(h[12:28])
		info.Label = cString(h[28:44])
		return info, true, nil
	}
	return Info{}, false, nil
}

// LUKS1 and LUKS2 share the magic, version and UUID position.
func probeLUKS(p *prober) (Info, bool, error) {
	h, ok, err := p.read(0, 512)
	if !ok || err != nil {
		return Info{}, false, err
	}
	if string(h[0:6]) != "LUKS\xba\xbe" {
		return Info{}, false, nil
	}
	info := Info{Type: "crypto_LUKS", Used: -1}
	info.UUID = strings.TrimSpace(cString(h[168 : 168+40]))
	if binary.BigEndian.Uint16(h[6:]) == 2 {
		info.Label = cString(h[24 : 24+48])
	}
	return info, true, nil
}

// bitlockerToGoGUID is FVE's {4967D63B-2E29-4AD8-8399-F6A339E3D001} as stored
// on disk, found at 0x1A8 of a BitLocker To Go boot sector.
var bitlockerToGoGUID = []byte{0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01}

// BitLocker: detected as libblkid does; label and UUID live in encrypted
// metadata, so none are reported.
func probeBitLocker(p *prober) (Info, bool, error) {
	h, ok, err := p.read(0, 512)
	if !ok || err != nil {
		return Info{}, false, err
	}
	if string(h[3:11]) == "-FVE-FS-" ||
		(string(h[3:11]) == "MSWIN4.1" && bytes.Equal(h[0x1A8:0x1A8+16], bitlockerToGoGUID)) {
		return Info{Type: "BitLocker", Used: -1}, true, nil
	}
	return Info{}, false, nil
}
