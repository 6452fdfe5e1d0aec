package fsprobe

import (
	"bytes"
	"fmt"
	"strings"
)

// FAT boot sector (BPB) offsets; see Microsoft's "FAT32 File System
// Specification" and libblkid/src/superblocks/vfat.c, whose FAT12/16/32
// decision by cluster count we follow.
const (
	fatBytesPerSector = 11
	fatSecPerCluster  = 13
	fatReserved       = 14
	fatNumFATs        = 16
	fatRootEntries    = 17
	fatTotal16        = 19
	fatMedia          = 21
	fatLength16       = 22
	fatTotal32        = 32

	// FAT12/16 extended BPB
	fat16Serial = 39

	// FAT32 extended BPB
	fat32Length   = 36
	fat32RootClus = 44
	fat32FSInfo   = 48
	fat32Serial   = 67

	fat12Max = 0xFF4
	fat16Max = 0xFFF4
	fat32Max = 0x0FFFFFF6

	fatNoName = "NO NAME"

	// maxDirEntries bounds the root-directory scan for the volume label.
	maxDirEntries = 1 << 16
)

func probeFAT(p *prober) (Info, bool, error) {
	bs, ok, err := p.read(0, 512)
	if !ok || err != nil {
		return Info{}, false, err
	}
	sectorSize := int64(le16(bs, fatBytesPerSector))
	spc := int64(bs[fatSecPerCluster])
	reserved := int64(le16(bs, fatReserved))
	fats := int64(bs[fatNumFATs])
	rootEntries := int64(le16(bs, fatRootEntries))
	media := bs[fatMedia]
	if !(bs[0] == 0xEB || bs[0] == 0xE9) ||
		sectorSize < 512 || sectorSize > 4096 || !isPow2(uint64(sectorSize)) ||
		!isPow2(uint64(spc)) || reserved == 0 || fats == 0 ||
		(media != 0xF0 && media < 0xF8) {
		return Info{}, false, nil
	}
	sectors := int64(le16(bs, fatTotal16))
	if sectors == 0 {
		sectors = int64(le32(bs, fatTotal32))
	}
	fatLen := int64(le16(bs, fatLength16))
	if fatLen == 0 {
		fatLen = int64(le32(bs, fat32Length))
	}
	if sectors == 0 || fatLen == 0 {
		return Info{}, false, nil
	}
	dirSectors := (rootEntries*32 + sectorSize - 1) / sectorSize
	meta := reserved + fats*fatLen + dirSectors // no overflow: fats<256, fatLen<2^32
	if sectors <= meta {
		return Info{}, false, nil
	}
	clusters := (sectors - meta) / spc
	if clusters > fat32Max {
		return Info{}, false, nil
	}

	clusterBytes := spc * sectorSize
	info := Info{
		Type:      "vfat",
		BlockSize: clusterBytes,
		Size:      sectors * sectorSize,
		Used:      -1,
	}
	if le16(bs, fatLength16) != 0 {
		info.FATBits = 16
		if clusters <= fat12Max {
			info.FATBits = 12
		}
		if sig := bs[38]; sig == 0x28 || sig == 0x29 { // extended BPB present
			info.UUID = fatSerial(bs[fat16Serial:])
		}
	} else {
		info.FATBits = 32
		info.UUID = fatSerial(bs[fat32Serial:])
	}

	// Like blkid, take the label from the volume-label entry of the root
	// directory (what Windows shows and fatlabel changes), not from the copy
	// in the boot sector, which blkid reports only as LABEL_FATBOOT.
	label, _, err := fatRootLabel(p, bs, info.FATBits, sectorSize, spc, reserved, fats, fatLen, rootEntries, clusters)
	if err != nil {
		return Info{}, false, err
	}
	info.Label = label

	if info.FATBits == 32 {
		used, err := fat32Used(p, bs, sectorSize, clusters, clusterBytes, info.Size)
		if err != nil {
			return Info{}, false, err
		}
		info.Used = used
	}
	return info, true, nil
}

func fatSerial(b []byte) string {
	return fmt.Sprintf("%02X%02X-%02X%02X", b[3], b[2], b[1], b[0])
}

// fatLabel trims an 11-byte space-padded label; "NO NAME" means none.
func fatLabel(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	l := strings.TrimRight(cString(b), " ")
	if l == fatNoName {
		return ""
	}
	return l
}

// fatRootLabel looks for the volume-label entry in the root directory.
func fatRootLabel(p *prober, bs []byte, bits int, sectorSize, spc, reserved, fats, fatLen, rootEntries, clusters int64) (string, bool, error) {
	if bits != 32 {
		off := (reserved + fats*fatLen) * sectorSize
		n := min(rootEntries, maxDirEntries) * 32
		dir, ok, err := p.read(off, n)
		if !ok || err != nil {
			return "", false, err
		}
		l, found, _ := fatDirLabel(dir)
		return l, found, nil
	}
	// FAT32: the root directory is a cluster chain starting at fat32RootClus.
	dataStart := (reserved + fats*fatLen) * sectorSize
	clusterBytes := spc * sectorSize
	cl := int64(le32(bs, fat32RootClus))
	for seen := int64(0); seen*clusterBytes/32 < maxDirEntries; seen++ {
		if cl < 2 || cl >= clusters+2 {
			return "", false, nil
		}
		dir, ok, err := p.read(dataStart+(cl-2)*clusterBytes, clusterBytes)
		if !ok || err != nil {
			return "", false, err
		}
		l, found, end := fatDirLabel(dir)
		if found || end {
			return l, found, nil
		}
		// Next cluster from the first FAT.
		e, ok, err := p.read(reserved*sectorSize+cl*4, 4)
		if !ok || err != nil {
			return "", false, err
		}
		cl = int64(le32(e, 0) & 0x0FFFFFFF)
	}
	return "", false, nil
}

// fatDirLabel scans 32-byte directory entries for a volume label. end reports
// the end-of-directory marker.
func fatDirLabel(dir []byte) (label string, found, end bool) {
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		switch e[0] {
		case 0x00:
			return "", false, true
		case 0xE5:
			continue
		}
		attr := e[11]
		if attr&0x0F == 0x0F || attr&0x08 == 0 || attr&0x10 != 0 {
			continue // long-name entry, file, or directory
		}
		name := bytes.Clone(e[0:11])
		if name[0] == 0x05 {
			name[0] = 0xE5
		}
		l := fatLabel(name)
		return l, l != "", false
	}
	return "", false, false
}

// fat32Used reads the free-cluster count from the FSInfo sector.
func fat32Used(p *prober, bs []byte, sectorSize, clusters, clusterBytes, size int64) (int64, error) {
	sec := int64(le16(bs, fat32FSInfo))
	if sec == 0 || sec == 0xFFFF {
		return -1, nil
	}
	fi, ok, err := p.read(sec*sectorSize, 512)
	if !ok || err != nil {
		return -1, err
	}
	if le32(fi, 0) != 0x41615252 || le32(fi, 484) != 0x61417272 {
		return -1, nil
	}
	free := int64(le32(fi, 488))
	if free > clusters { // includes 0xFFFFFFFF, "unknown"
		return -1, nil
	}
	return size - free*clusterBytes, nil
}
