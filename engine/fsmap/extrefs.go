package fsmap

import (
	"cmp"
	"fmt"
	"slices"
)

// The reference walk of ext2/3/4: the bitmaps say which blocks are free,
// but on a damaged filesystem they may say so of blocks that inodes still
// use (a wrong BLOCK_UNINIT flag, swapped or cleared bits with the free
// counts adjusted to match). e2fsck trusts the inodes, not the bitmaps: it
// rebuilds the bitmaps from what the in-use inodes reference. So every
// block an in-use inode references — extent tree index and leaf blocks,
// indirect blocks, data blocks, xattr blocks — must lie inside the map;
// otherwise the filesystem is copied sector by sector.
//
// "In use" is what e2fsck's pass 1 scans: every inode the group
// descriptors say is initialized (all of them without uninit_bg or
// metadata_csum; with them, none of an INODE_UNINIT group and not the last
// bg_itable_unused of the others) whose link count is not zero, plus the
// bad-blocks inode. Directories are read too: an entry naming an inode
// that the descriptors call uninitialized makes e2fsck initialize that
// group and start over, so it is an inconsistency as well.

const (
	inoMode       = 0x00
	inoLinks      = 0x1A
	inoFlags      = 0x20
	inoBlock      = 0x28 // i_block, 60 bytes
	inoFileACL    = 0x68
	inoSizeLo     = 0x04
	inoSizeHi     = 0x6C
	inoFileACLHi  = 0x76
	inoFlExtents  = 0x80000
	inoFlInline   = 0x10000000
	extentMagic   = 0xF30A
	extentMaxTree = 5 // the kernel's EXT4_MAX_EXTENT_DEPTH

	gdItableUnused   = 0x1C
	gdItableUnusedHi = 0x32
	bgInodeUninit    = 0x0001

	extBadBlocksIno = 1
	extResizeIno    = 7
)

// extGroup is what the reference walk needs of a group descriptor.
type extGroup struct {
	bbm, ibm, it int64 // block bitmap, inode bitmap, inode table (blocks)
	ninit        int64 // initialized inodes at the start of the table
	blockUninit  bool  // flagged BLOCK_UNINIT (and the flag is honoured)
}

// extWalk holds the state of one reference walk.
type extWalk struct {
	fs     *extFS
	d      *dev
	c      cover
	groups []extGroup
	bud    budget
	bufs   [extentMaxTree + 4][]byte // one block per tree level
	dir    []byte                    // directory blocks
	ino    int64                     // the inode being walked
	isDir  bool
	// cut, when set, records Map.Cuts: the inode being walked is a
	// regular file of at least CutMinFile bytes.
	cut      func(off int64)
	cutFiles bool
	// run coalesces consecutive data blocks of indirect maps.
	runOff, runLen int64
	// extra are blocks of the resize inode outside the map, copied
	// rather than called damage (see covered).
	extra []Range
}

// checkExtMeta checks that no group's bitmaps or inode table overlap
// another's or the primary superblock and descriptors: colliding tables
// mean the descriptors are damaged, and e2fsck would then rebuild from the
// backup descriptors, whose tables this map need not hold.
func (fs *extFS) checkExtMeta(groups []extGroup) error {
	type meta struct {
		off, n, g int64
		what      string
	}
	ms := make([]meta, 0, 3*len(groups)+1)
	head := fs.groupBlock(0) + 1 + fs.descBlocks + fs.reservedGDT
	if fs.metaBG {
		head = fs.groupBlock(0) + 1 + fs.firstMetaBG + fs.reservedGDT
	}
	ms = append(ms, meta{0, head, -1, "superblock and group descriptors"})
	for g, gr := range groups {
		ms = append(ms, meta{gr.bbm, 1, int64(g), "block bitmap"}, meta{gr.ibm, 1, int64(g), "inode bitmap"}, meta{gr.it, fs.itable, int64(g), "inode table"})
	}
	slices.SortFunc(ms, func(a, b meta) int { return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.g, b.g)) })
	for i := 1; i < len(ms); i++ {
		if a, b := ms[i-1], ms[i]; b.off < a.off+a.n {
			name := func(m meta) string {
				if m.g < 0 {
					return "the " + m.what
				}
				return "group " + itoa(m.g) + "'s " + m.what
			}
			return fallbackf("%s %s at block %d overlaps %s (damaged filesystem: run e2fsck on the original)", fs.name, name(b), b.off, name(a))
		}
	}
	return nil
}

// checkExtRefs walks every in-use inode and fails with a fallback when one
// references a block outside c; cut, when not nil, is given Map.Cuts. It
// returns the resize inode's blocks that lie outside c: the caller adds
// them to the map.
func (fs *extFS) checkExtRefs(d *dev, c cover, groups []extGroup, cut func(off int64)) ([]Range, error) {
	w := &extWalk{fs: fs, d: d, c: c, groups: groups, bud: budget{fs.blocks + 64}, cut: cut}
	per := max(1, min(int64(chunk), fs.ipg*fs.inodeSize)/fs.inodeSize)
	buf := make([]byte, per*fs.inodeSize)
	for g, gr := range groups {
		for i0 := int64(0); i0 < gr.ninit; i0 += per {
			n := min(per, gr.ninit-i0)
			p := buf[:n*fs.inodeSize]
			if err := d.read(p, gr.it*fs.bs+i0*fs.inodeSize, "ext inode table"); err != nil {
				return nil, err
			}
			for i := range n {
				ino := int64(g)*fs.ipg + i0 + i + 1
				if err := w.inode(ino, p[i*fs.inodeSize:(i+1)*fs.inodeSize]); err != nil {
					return nil, err
				}
			}
		}
	}
	return w.extra, nil
}

func (w *extWalk) damaged(format string, args ...any) error {
	return fallbackf("%s inode %d %s (damaged filesystem: run e2fsck on the original)", w.fs.name, w.ino, fmt.Sprintf(format, args...))
}

// inode walks one inode's blocks.
func (w *extWalk) inode(ino int64, raw []byte) error {
	links := le16(raw, inoLinks)
	if links == 0 && ino != extBadBlocksIno {
		return nil
	}
	w.ino = ino
	fs := w.fs
	acl := int64(le32(raw, inoFileACL))
	if fs.is64 {
		acl |= int64(le16(raw, inoFileACLHi)) << 32
	}
	if acl != 0 {
		// Shared between inodes, so not charged to the budget.
		if err := w.covered(acl, 1, "extended attribute block"); err != nil {
			return err
		}
	}
	mode := le16(raw, inoMode) & 0xF000
	flags := le32(raw, inoFlags)
	size := int64(le32(raw, inoSizeLo)) | int64(le32(raw, inoSizeHi))<<32
	switch {
	case ino == extBadBlocksIno:
	case flags&inoFlInline != 0:
		return nil // the data is in the inode
	case mode == 0x8000, mode == 0x4000: // regular file, directory
	case mode == 0xA000: // symlink
		// A fast symlink keeps its target in i_block; some kernels set
		// the extents flag on them too (e2fsck's "fast symlink has
		// EXTENTS_FL set"), so only a real extent header counts.
		if size < 60 && (flags&inoFlExtents == 0 || le16(raw, inoBlock) != extentMagic) {
			return nil
		}
	default:
		return nil // devices, fifos, sockets: no blocks
	}
	w.isDir = mode == 0x4000 && ino != extBadBlocksIno
	w.cutFiles = mode == 0x8000 && ino != extBadBlocksIno && size >= CutMinFile && w.cut != nil
	iblock := raw[inoBlock : inoBlock+60]
	if flags&inoFlExtents != 0 {
		return w.extents(iblock, -1)
	}
	for i := range 12 {
		if err := w.data(int64(le32(iblock, 4*i))); err != nil {
			return err
		}
	}
	for lvl := 1; lvl <= 3; lvl++ {
		if blk := int64(le32(iblock, 4*(11+lvl))); blk != 0 {
			if err := w.indirect(blk, lvl); err != nil {
				return err
			}
		}
	}
	return w.flush()
}

// extents walks an extent tree node; depth is the level it must have, or
// -1 for the root in the inode.
func (w *extWalk) extents(node []byte, depth int) error {
	if le16(node, 0) != extentMagic {
		return w.damaged("has a damaged extent tree (no header)")
	}
	entries, maxEnt, d := int(le16(node, 2)), int(le16(node, 4)), int(le16(node, 6))
	if entries > maxEnt || 12+12*entries > len(node) || d > extentMaxTree || (depth >= 0 && d != depth) {
		return w.damaged("has a damaged extent tree (header %d/%d entries, depth %d)", entries, maxEnt, d)
	}
	for k := range entries {
		e := node[12+12*k : 24+12*k]
		if d == 0 {
			n := int64(le16(e, 4))
			init := n <= 32768
			if !init {
				n -= 32768
			}
			start := int64(le16(e, 6))<<32 | int64(le32(e, 8))
			if err := w.run(start, n, init); err != nil {
				return err
			}
			continue
		}
		leaf := int64(le16(e, 8))<<32 | int64(le32(e, 4))
		buf, err := w.readMeta(leaf, d, "extent tree")
		if err != nil {
			return err
		}
		if err := w.extents(buf, d-1); err != nil {
			return err
		}
	}
	return nil
}

// indirect walks an indirect block of the given level (1: its entries are
// data blocks).
func (w *extWalk) indirect(blk int64, lvl int) error {
	buf, err := w.readMeta(blk, extentMaxTree+lvl, "indirect block")
	if err != nil {
		return err
	}
	for i := 0; i+4 <= len(buf); i += 4 {
		p := int64(le32(buf, i))
		if p == 0 {
			continue
		}
		if lvl == 1 {
			err = w.data(p)
		} else {
			err = w.indirect(p, lvl-1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readMeta checks, charges and reads metadata block blk into the buffer
// of the given level.
func (w *extWalk) readMeta(blk int64, level int, what string) ([]byte, error) {
	if err := w.covered(blk, 1, what); err != nil {
		return nil, err
	}
	if !w.bud.spend(1) {
		return nil, w.overBudget()
	}
	if w.bufs[level] == nil {
		w.bufs[level] = make([]byte, w.fs.bs)
	}
	buf := w.bufs[level]
	if err := w.d.read(buf, blk*w.fs.bs, "ext "+what); err != nil {
		return nil, err
	}
	return buf, nil
}

func (w *extWalk) overBudget() error {
	return fallbackf("%s inodes reference more blocks than the filesystem holds: blocks are shared between inodes or loop (damaged filesystem: run e2fsck on the original)", w.fs.name)
}

// data adds one data block of an indirect map to the current run.
func (w *extWalk) data(blk int64) error {
	if blk == 0 {
		return nil
	}
	if w.runLen > 0 && blk == w.runOff+w.runLen {
		w.runLen++
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.runOff, w.runLen = blk, 1
	return nil
}

func (w *extWalk) flush() error {
	if w.runLen == 0 {
		return nil
	}
	off, n := w.runOff, w.runLen
	w.runLen = 0
	return w.run(off, n, true)
}

// run checks n data blocks from start; init is false for an unwritten
// extent (allocated, reads as zeros).
func (w *extWalk) run(start, n int64, init bool) error {
	if n == 0 {
		return nil
	}
	if !w.bud.spend(n) {
		return w.overBudget()
	}
	if err := w.covered(start, n, "data"); err != nil {
		return err
	}
	if w.cutFiles && init {
		w.cut(start * w.fs.bs)
		w.cut((start + n) * w.fs.bs)
	}
	if !w.isDir || !init {
		return nil
	}
	return w.dirBlocks(start, n)
}

// covered checks that blocks [blk, blk+n) lie inside the filesystem and
// the map.
func (w *extWalk) covered(blk, n int64, what string) error {
	fs := w.fs
	if blk < fs.firstData || blk >= fs.blocks || n > fs.blocks-blk {
		return w.damaged("has its %s at block %d, outside the %d-block filesystem", what, blk, fs.blocks)
	}
	if w.c.has(blk*fs.bs, n*fs.bs) {
		return nil
	}
	if w.ino == extResizeIno {
		// mke2fs 1.47 gives some bigalloc filesystems a resize inode
		// whose double-indirect block lies in a cluster the bitmap calls
		// free (e2fsck accepts it). The reserved descriptor blocks are
		// not data anyone loses; copying them costs a few KiB, calling
		// the filesystem damaged costs the whole intelligent backup.
		w.extra = append(w.extra, Range{Off: blk * fs.bs, Len: n * fs.bs})
		return nil
	}
	// Name the first block left out, and the flag that left it out.
	for b := blk; b < blk+n; b++ {
		if !w.c.has(b*fs.bs, fs.bs) {
			if g := (b - fs.firstData) / fs.bpg; g < int64(len(w.groups)) && w.groups[g].blockUninit {
				return w.damaged("uses block %d in group %d, which is flagged BLOCK_UNINIT (holding no data)", b, g)
			}
			return w.damaged("uses block %d that its block bitmap marks free", b)
		}
	}
	return nil
}

// dirBlocks reads the directory blocks [start, start+n) and checks that
// no entry names an inode the descriptors call uninitialized.
func (w *extWalk) dirBlocks(start, n int64) error {
	fs := w.fs
	// Already charged by run: a sound filesystem reads each directory
	// block once.
	if w.dir == nil {
		w.dir = make([]byte, max(fs.bs, min(chunk, 64*fs.bs)))
	}
	per := int64(len(w.dir)) / fs.bs
	for b := int64(0); b < n; b += per {
		k := min(per, n-b)
		p := w.dir[:k*fs.bs]
		if err := w.d.read(p, (start+b)*fs.bs, "ext directory"); err != nil {
			return err
		}
		for i := int64(0); i < k; i++ {
			if err := w.dirBlock(p[i*fs.bs : (i+1)*fs.bs]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *extWalk) dirBlock(b []byte) error {
	fs := w.fs
	for off := 0; off+8 <= len(b); {
		ino := int64(le32(b, off))
		rl := int(le16(b, off+4))
		if len(b) >= 65536 && (rl == 0 || rl == 65535) {
			rl = 65536
		} else if len(b) >= 65536 {
			rl = rl&65532 | (rl&3)<<16
		}
		if rl < 8 || rl%4 != 0 || off+rl > len(b) {
			return w.damaged("is a directory with a damaged block (entry length %d at byte %d)", rl, off)
		}
		if ino != 0 && ino <= fs.inodes {
			g, i := (ino-1)/fs.ipg, (ino-1)%fs.ipg
			if i >= w.groups[g].ninit {
				return w.damaged("is a directory naming inode %d, which group %d's descriptor marks as never used", ino, g)
			}
		}
		off += rl
	}
	return nil
}
