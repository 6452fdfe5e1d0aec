package fsprobe

// ext2/3/4 superblock, at byte 1024 of the filesystem. Field offsets and the
// feature masks below are those of e2fsprogs' ext2_fs.h and util-linux's
// libblkid/src/superblocks/ext.c, whose ext2-vs-ext3-vs-ext4 rules we follow.
const (
	extSuperOffset = 1024
	extSuperSize   = 1024

	extBlocksCountLo = 0x04
	extFreeBlocksLo  = 0x0C
	extLogBlockSize  = 0x18
	extMagic         = 0x38
	extFeatureCompat = 0x5C
	extFeatureInc    = 0x60
	extFeatureRO     = 0x64
	extUUID          = 0x68
	extVolumeName    = 0x78
	extBlocksCountHi = 0x150
	extFreeBlocksHi  = 0x158
	extFlags         = 0x160

	extMagicValue = 0xEF53

	extCompatHasJournal = 0x0004

	extIncFiletype   = 0x0002
	extIncRecover    = 0x0004
	extIncJournalDev = 0x0008
	extIncMetaBG     = 0x0010
	extInc64Bit      = 0x0080

	extROSparseSuper = 0x0001
	extROLargeFile   = 0x0002
	extROBtreeDir    = 0x0004

	extFlagsTestFilesys = 0x0004

	ext2IncSupported = extIncFiletype | extIncMetaBG
	ext3IncSupported = extIncFiletype | extIncRecover | extIncMetaBG
	ext2ROSupported  = extROSparseSuper | extROLargeFile | extROBtreeDir
	ext3ROSupported  = ext2ROSupported
)

func probeExt(p *prober) (Info, bool, error) {
	sb, ok, err := p.read(extSuperOffset, extSuperSize)
	if !ok || err != nil {
		return Info{}, false, err
	}
	if le16(sb, extMagic) != extMagicValue {
		return Info{}, false, nil
	}
	compat := le32(sb, extFeatureCompat)
	inc := le32(sb, extFeatureInc)
	ro := le32(sb, extFeatureRO)
	logBS := le32(sb, extLogBlockSize)
	if logBS > 6 { // 64 KiB is the largest block size ext supports
		return Info{}, false, nil
	}
	bs := int64(1024) << logBS

	info := Info{
		Label:     cString(sb[extVolumeName : extVolumeName+16]),
		UUID:      uuidString(sb[extUUID : extUUID+16]),
		BlockSize: bs,
		Used:      -1,
	}
	switch {
	case inc&extIncJournalDev != 0:
		info.Type = "jbd"
	case compat&extCompatHasJournal == 0 && inc&^ext2IncSupported == 0 && ro&^ext2ROSupported == 0:
		info.Type = "ext2"
	case compat&extCompatHasJournal != 0 && inc&^ext3IncSupported == 0 && ro&^ext3ROSupported == 0:
		info.Type = "ext3"
	case le32(sb, extFlags)&extFlagsTestFilesys != 0:
		info.Type = "ext4dev"
	default:
		info.Type = "ext4"
	}

	blocks := uint64(le32(sb, extBlocksCountLo))
	free := uint64(le32(sb, extFreeBlocksLo))
	if inc&extInc64Bit != 0 {
		blocks |= uint64(le32(sb, extBlocksCountHi)) << 32
		free |= uint64(le32(sb, extFreeBlocksHi)) << 32
	}
	if blocks < 1<<47 { // keeps blocks×bs within int64
		info.Size = int64(blocks) * bs
		if free <= blocks {
			info.Used = int64(blocks-free) * bs
		}
	}
	if info.Type == "jbd" {
		info.Used = -1
	}
	return info, true, nil
}
