package fsmap

import (
	"encoding/binary"
	"hash/crc32"
)

// ext2/3/4. Field offsets, feature bits and checksum rules are those of
// e2fsprogs' lib/ext2fs (ext2_fs.h, csum.c, closefs.c:
// ext2fs_super_and_bgd_loc2) and the kernel's Documentation/filesystems/ext4.
//
// Used is: the boot block and superblock; in every group, the superblock
// backup, group descriptor blocks (meta_bg too) and reserved GDT blocks
// where that group has them; every group's block bitmap, inode bitmap and
// whole inode table as its descriptor locates them; and every cluster set
// in the block bitmaps. A BLOCK_UNINIT group's bitmap is not on disk, but
// such a group holds nothing but the metadata listed above, which is what
// libext2fs itself marks for it — unless the flag is wrong, which the
// reference walk in extrefs.go catches with every other block the bitmaps
// leave out while an inode still uses it.
const (
	extSBOffset = 1024

	extInodesCount      = 0x00
	extBlocksCountLo    = 0x04
	extFirstDataBlock   = 0x14
	extLogBlockSize     = 0x18
	extLogClusterSize   = 0x1C
	extBlocksPerGroup   = 0x20
	extClustersPerGroup = 0x24
	extInodesPerGroup   = 0x28
	extMagic            = 0x38
	extRevLevel         = 0x4C
	extInodeSize        = 0x58
	extFeatureCompat    = 0x5C
	extFeatureIncompat  = 0x60
	extFeatureROCompat  = 0x64
	extUUID             = 0x68
	extReservedGDT      = 0xCE
	extDescSize         = 0xFE
	extFirstMetaBG      = 0x104
	extBlocksCountHi    = 0x150
	extBackupBGs        = 0x24C
	extChecksumSeed     = 0x270
	extChecksum         = 0x3FC

	extCompatSparseSuper2 = 0x0200

	extIncompatRecover  = 0x0004
	extIncompatMetaBG   = 0x0010
	extIncompat64Bit    = 0x0080
	extIncompatCsumSeed = 0x2000

	extROSparseSuper  = 0x0001
	extROGDTCsum      = 0x0010
	extROBigalloc     = 0x0200
	extROMetadataCsum = 0x0400

	// group descriptor
	gdBlockBitmap     = 0x00
	gdInodeBitmap     = 0x04
	gdInodeTable      = 0x08
	gdFreeBlocks      = 0x0C
	gdFlags           = 0x12
	gdBlockBitmapCsum = 0x18
	gdChecksum        = 0x1E
	gdBlockBitmapHi   = 0x20
	gdInodeBitmapHi   = 0x24
	gdInodeTableHi    = 0x28
	gdFreeBlocksHi    = 0x2C
	gdBlockBitmapCsHi = 0x38

	bgBlockUninit = 0x0002
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le: no inversion on entry or exit, which is
// how ext4 chains its metadata checksums.
func crc32c(crc uint32, p []byte) uint32 { return ^crc32.Update(^crc, castagnoli, p) }

// crc16 is e2fsprogs' ext2fs_crc16 (CRC-16/ARC polynomial, no final xor),
// used by the uninit_bg (gdt_csum) descriptor checksum.
func crc16(crc uint16, p []byte) uint16 {
	for _, c := range p {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

type extFS struct {
	name        string // ext2, ext3 or ext4, for messages
	bs          int64  // block size
	ratio       int64  // blocks per cluster (bigalloc), else 1
	blocks      int64
	firstData   int64
	bpg, cpg    int64 // blocks, clusters per group
	groups      int64
	descSize    int64
	descPer     int64 // descriptors per block
	descBlocks  int64
	reservedGDT int64
	metaBG      bool
	firstMetaBG int64
	itable      int64 // inode table blocks per group
	sparse      bool
	sparse2     bool
	backupBGs   [2]int64
	mcsum       bool // metadata_csum
	gdtCsum     bool // uninit_bg
	seed        uint32
	uuid        []byte
	ipg         int64 // inodes per group
	inodeSize   int64
	inodes      int64
	is64        bool // 64bit: block numbers in inodes have high halves
}

func mapExt(d *dev, b *builder, name string) (int64, error) {
	sb := make([]byte, 1024)
	if err := d.read(sb, extSBOffset, "ext superblock"); err != nil {
		return 0, err
	}
	if le16(sb, extMagic) != 0xEF53 {
		return 0, fallbackf("ext superblock has no magic number")
	}
	compat := le32(sb, extFeatureCompat)
	inc := le32(sb, extFeatureIncompat)
	ro := le32(sb, extFeatureROCompat)
	fs := &extFS{
		sparse:  ro&extROSparseSuper != 0,
		sparse2: compat&extCompatSparseSuper2 != 0,
		metaBG:  inc&extIncompatMetaBG != 0,
		mcsum:   ro&extROMetadataCsum != 0,
		gdtCsum: ro&extROGDTCsum != 0,
		uuid:    sb[extUUID : extUUID+16],
		name:    name,
		is64:    inc&extIncompat64Bit != 0,
	}
	if fs.mcsum {
		if got, want := crc32c(^uint32(0), sb[:extChecksum]), le32(sb, extChecksum); got != want {
			return 0, fallbackf("ext superblock fails its checksum (stored %#08x, computed %#08x)", want, got)
		}
		fs.seed = crc32c(^uint32(0), fs.uuid)
		if inc&extIncompatCsumSeed != 0 {
			fs.seed = le32(sb, extChecksumSeed)
		}
	}

	if inc&extIncompatRecover != 0 {
		// Blocks allocated by transactions still in the journal are not
		// yet marked in the on-disk bitmaps.
		return 0, fallbackf("ext journal needs recovery (the filesystem was not cleanly unmounted); mount it once or run e2fsck to map only its used blocks")
	}
	logBS := le32(sb, extLogBlockSize)
	if logBS > 6 {
		return 0, fallbackf("ext superblock: block size 2^(10+%d) is not one ext supports", logBS)
	}
	fs.bs = 1024 << logBS
	fs.blocks = int64(le32(sb, extBlocksCountLo))
	fs.descSize = 32
	if inc&extIncompat64Bit != 0 {
		fs.blocks |= int64(le32(sb, extBlocksCountHi)) << 32
		fs.descSize = int64(le16(sb, extDescSize))
		if fs.descSize < 64 || fs.descSize > 1024 || !isPow2(uint64(fs.descSize)) {
			return 0, fallbackf("ext superblock: descriptor size %d is invalid", fs.descSize)
		}
	}
	if fs.blocks == 0 || fs.blocks > d.size/fs.bs {
		return 0, fallbackf("ext superblock says %d blocks of %d bytes, more than the %d-byte volume holds", fs.blocks, fs.bs, d.size)
	}
	fs.ratio = 1
	if ro&extROBigalloc != 0 {
		logCS := le32(sb, extLogClusterSize)
		if logCS < logBS || logCS-logBS > 16 {
			return 0, fallbackf("ext superblock: bigalloc cluster size 2^(10+%d) is invalid", logCS)
		}
		fs.ratio = 1 << (logCS - logBS)
	}
	fs.firstData = int64(le32(sb, extFirstDataBlock))
	fs.bpg = int64(le32(sb, extBlocksPerGroup))
	fs.cpg = fs.bpg
	if fs.ratio > 1 {
		fs.cpg = int64(le32(sb, extClustersPerGroup))
	}
	ipg := int64(le32(sb, extInodesPerGroup))
	inodeSize := int64(128)
	if le32(sb, extRevLevel) >= 1 {
		inodeSize = int64(le16(sb, extInodeSize))
	}
	switch {
	case fs.firstData != 0 && !(fs.firstData == 1 && fs.bs == 1024 && fs.ratio == 1):
		return 0, fallbackf("ext superblock: first data block %d is invalid for %d-byte blocks", fs.firstData, fs.bs)
	case fs.cpg < 8 || fs.cpg > 8*fs.bs || fs.cpg%8 != 0 || fs.bpg != fs.cpg*fs.ratio:
		return 0, fallbackf("ext superblock: %d blocks and %d clusters per group are invalid", fs.bpg, fs.cpg)
	case ipg < 1 || ipg > 8*fs.bs:
		return 0, fallbackf("ext superblock: %d inodes per group is invalid", ipg)
	case inodeSize < 128 || inodeSize > fs.bs || !isPow2(uint64(inodeSize)):
		return 0, fallbackf("ext superblock: inode size %d is invalid", inodeSize)
	case fs.blocks <= fs.firstData:
		return 0, fallbackf("ext superblock: %d blocks is too few", fs.blocks)
	}
	fs.groups = (fs.blocks - fs.firstData + fs.bpg - 1) / fs.bpg
	if inodes := int64(le32(sb, extInodesCount)); inodes != fs.groups*ipg {
		return 0, fallbackf("ext superblock: %d inodes is not %d groups × %d inodes", inodes, fs.groups, ipg)
	}
	fs.ipg, fs.inodeSize, fs.inodes = ipg, inodeSize, fs.groups*ipg
	fs.itable = (ipg*inodeSize + fs.bs - 1) / fs.bs
	fs.descPer = fs.bs / fs.descSize
	fs.descBlocks = (fs.groups + fs.descPer - 1) / fs.descPer
	fs.reservedGDT = int64(le16(sb, extReservedGDT))
	fs.firstMetaBG = int64(le32(sb, extFirstMetaBG))
	if fs.metaBG && fs.firstMetaBG > fs.descBlocks {
		return 0, fallbackf("ext superblock: first meta_bg %d is past the %d descriptor blocks", fs.firstMetaBG, fs.descBlocks)
	}
	fs.backupBGs = [2]int64{int64(le32(sb, extBackupBGs)), int64(le32(sb, extBackupBGs+4))}

	// The boot block (1 KiB blocks: block 0 belongs to no group) and the
	// primary superblock.
	b.add(0, 2*extSBOffset)
	for g := range fs.groups {
		fs.addSuperAndDesc(b, g)
	}

	clusterBytes := fs.bs * fs.ratio
	desc := make([]byte, fs.bs)
	bitmap := make([]byte, fs.bs)
	groups := make([]extGroup, fs.groups)
	for g := range fs.groups {
		i := g % fs.descPer
		if i == 0 {
			loc := fs.descLoc(g / fs.descPer)
			if err := d.read(desc, loc*fs.bs, "ext group descriptors"); err != nil {
				return 0, err
			}
		}
		gd := desc[i*fs.descSize : (i+1)*fs.descSize]
		if err := fs.checkDesc(g, gd); err != nil {
			return 0, err
		}
		bbm := int64(le32(gd, gdBlockBitmap))
		ibm := int64(le32(gd, gdInodeBitmap))
		it := int64(le32(gd, gdInodeTable))
		if fs.descSize >= 64 {
			bbm |= int64(le32(gd, gdBlockBitmapHi)) << 32
			ibm |= int64(le32(gd, gdInodeBitmapHi)) << 32
			it |= int64(le32(gd, gdInodeTableHi)) << 32
		}
		for _, m := range []struct {
			blk, n int64
			what   string
		}{{bbm, 1, "block bitmap"}, {ibm, 1, "inode bitmap"}, {it, fs.itable, "inode table"}} {
			if m.blk < fs.firstData || m.blk >= fs.blocks || m.n > fs.blocks-m.blk {
				return 0, fallbackf("ext group %d descriptor puts its %s at block %d, outside the %d-block filesystem", g, m.what, m.blk, fs.blocks)
			}
			b.add(m.blk*fs.bs, m.n*fs.bs)
		}

		flags := le16(gd, gdFlags)
		groups[g] = extGroup{bbm: bbm, ibm: ibm, it: it, ninit: ipg}
		if fs.mcsum || fs.gdtCsum {
			// Hints that e2fsck and the kernel honour: inodes past
			// ninit are never read, so they are checked against what
			// directories name instead.
			unused := int64(le16(gd, gdItableUnused))
			if fs.descSize >= 64 {
				unused |= int64(le16(gd, gdItableUnusedHi)) << 16
			}
			if unused > ipg {
				return 0, fallbackf("%s group %d descriptor counts %d unused inodes of %d (damaged filesystem: run e2fsck on the original)", name, g, unused, ipg)
			}
			groups[g].ninit = ipg - unused
			if flags&bgInodeUninit != 0 {
				groups[g].ninit = 0
			}
			if flags&bgBlockUninit != 0 {
				// Only the metadata added above lives here, unless
				// the flag is wrong: the reference walk below tells.
				groups[g].blockUninit = true
				continue
			}
		}
		if err := d.read(bitmap, bbm*fs.bs, "ext block bitmap"); err != nil {
			return 0, err
		}
		if fs.mcsum {
			n := fs.cpg / 8
			crc := crc32c(fs.seed, bitmap[:n])
			ok := uint16(crc) == le16(gd, gdBlockBitmapCsum)
			if fs.descSize >= gdBlockBitmapCsHi+2 {
				ok = ok && uint16(crc>>16) == le16(gd, gdBlockBitmapCsHi)
			}
			if !ok {
				return 0, fallbackf("ext4 block bitmap of group %d fails its checksum", g)
			}
		}
		first := fs.firstData + g*fs.bpg // block
		clusters := min(fs.cpg, (fs.blocks-first+fs.ratio-1)/fs.ratio)
		var used int64
		bitRuns(bitmap, clusters, 0, func(c, n int64) {
			b.add(first*fs.bs+c*clusterBytes, n*clusterBytes)
			used += n
		})
		// A bitmap that disagrees with its group's free count is damaged
		// in a way no checksum caught (or the filesystem has none).
		free := int64(le16(gd, gdFreeBlocks))
		if fs.descSize >= 64 {
			free |= int64(le16(gd, gdFreeBlocksHi)) << 16
		}
		if used+free != clusters {
			return 0, fallbackf("ext block bitmap of group %d marks %d of %d clusters used, but its descriptor counts %d free", g, used, clusters, free)
		}
	}
	if err := fs.checkExtMeta(groups); err != nil {
		return 0, err
	}
	b.rs = b.finish()
	extra, err := fs.checkExtRefs(d, cover(b.rs), groups, b.cut)
	if err != nil {
		return 0, err
	}
	if len(extra) > 0 {
		for _, r := range extra {
			b.add(r.Off, r.Len)
		}
		b.rs = b.finish()
	}
	return clusterBytes, nil
}

// hasSuper reports whether group g holds a superblock backup
// (ext2fs_bg_has_super).
func (fs *extFS) hasSuper(g int64) bool {
	switch {
	case g == 0:
		return true
	case fs.sparse2:
		return g == fs.backupBGs[0] || g == fs.backupBGs[1]
	case g <= 1 || !fs.sparse:
		return true
	case g%2 == 0:
		return false
	}
	for _, p := range []int64{3, 5, 7} {
		x := p
		for x < g {
			x *= p
		}
		if x == g {
			return true
		}
	}
	return false
}

// groupBlock returns the first block of group g, where its superblock
// backup would be. With 1 KiB blocks and bigalloc the first data block is
// 0 but the superblock is still at byte 1024: block 1.
func (fs *extFS) groupBlock(g int64) int64 {
	if blk := fs.firstData + g*fs.bpg; blk != 0 || fs.bs != 1024 {
		return blk
	}
	return 1
}

// descLoc returns the block holding descriptor block i.
func (fs *extFS) descLoc(i int64) int64 {
	if !fs.metaBG || i < fs.firstMetaBG {
		return fs.groupBlock(0) + 1 + i
	}
	g := i * fs.descPer
	loc := fs.groupBlock(g)
	if fs.hasSuper(g) {
		loc++
	}
	return loc
}

// addSuperAndDesc adds group g's superblock backup, descriptor blocks and
// reserved GDT blocks (ext2fs_super_and_bgd_loc2).
func (fs *extFS) addSuperAndDesc(b *builder, g int64) {
	first := fs.groupBlock(g)
	super := fs.hasSuper(g)
	if super {
		n := 1 + fs.descBlocks + fs.reservedGDT
		if fs.metaBG {
			n = 1 + fs.firstMetaBG + fs.reservedGDT
		}
		b.add(first*fs.bs, min(n, fs.blocks-first)*fs.bs)
	}
	if fs.metaBG && g/fs.descPer >= fs.firstMetaBG {
		if i := g % fs.descPer; i == 0 || i == 1 || i == fs.descPer-1 {
			loc := first
			if super {
				loc++
			}
			if loc < fs.blocks {
				b.add(loc*fs.bs, fs.bs)
			}
		}
	}
}

// checkDesc verifies group g's descriptor checksum, if the filesystem has
// one.
func (fs *extFS) checkDesc(g int64, gd []byte) error {
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], uint32(g))
	stored := le16(gd, gdChecksum)
	var got uint16
	switch {
	case fs.mcsum:
		crc := crc32c(fs.seed, le[:])
		crc = crc32c(crc, gd[:gdChecksum])
		crc = crc32c(crc, []byte{0, 0})
		crc = crc32c(crc, gd[gdChecksum+2:])
		got = uint16(crc)
	case fs.gdtCsum:
		crc := crc16(^uint16(0), fs.uuid)
		crc = crc16(crc, le[:])
		crc = crc16(crc, gd[:gdChecksum])
		crc = crc16(crc, gd[gdChecksum+2:])
		got = crc
	default:
		return nil
	}
	if got != stored {
		return fallbackf("ext4 group descriptor %d fails its checksum (stored %#04x, computed %#04x)", g, stored, got)
	}
	return nil
}
