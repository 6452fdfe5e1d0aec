package vdisk

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// vhdx is a dynamic VHDX ([MS-VHDX]): the file type identifier, two
// headers, two region tables, an empty log, the metadata region and the
// block allocation table (BAT) in the first megabytes, then 2 MiB payload
// blocks in the order they come. Blocks never written are "not present"
// and read as zeros.
type vhdx struct {
	f     File
	size  int64
	bat   []uint64
	next  int64 // file offset of the next payload block
	batAt int64
}

const (
	vhdxBlock        = 2 << 20
	vhdxSector       = 512
	vhdxChunkRatio   = (1 << 23) * vhdxSector / vhdxBlock
	vhdxLogAt        = 1 << 20
	vhdxLogLen       = 1 << 20
	vhdxMetaAt       = 2 << 20
	vhdxMetaLen      = 1 << 20
	vhdxBATAt        = 3 << 20
	vhdxFullyPresent = 6
)

var (
	guidBAT        = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata   = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidDiskSize   = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidDiskID     = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
	guidLogical    = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysical   = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
	castagnoli     = crc32.MakeTable(crc32.Castagnoli)
)

func newVHDX(f File, size int64) (Writer, error) {
	blocks := (size + vhdxBlock - 1) / vhdxBlock
	entries := blocks + (blocks-1)/vhdxChunkRatio
	batLen := (entries*8 + 1<<20 - 1) / (1 << 20) * (1 << 20)
	v := &vhdx{f: f, size: size, bat: make([]uint64, entries), batAt: vhdxBATAt, next: vhdxBATAt + batLen}
	return newBlocks(size, vhdxBlock, v), nil
}

func (v *vhdx) block(i int64, data []byte) error {
	if len(data) < vhdxBlock {
		// The last block of a disk that is not a multiple of 2 MiB:
		// stored whole.
		data = append(data[:len(data):len(data)], make([]byte, vhdxBlock-len(data))...)
	}
	if _, err := v.f.WriteAt(data, v.next); err != nil {
		return err
	}
	v.bat[i+i/vhdxChunkRatio] = uint64(v.next>>20)<<20 | vhdxFullyPresent
	v.next += vhdxBlock
	return nil
}

func (v *vhdx) finish() error {
	le := binary.LittleEndian
	// File type identifier.
	id := make([]byte, 64<<10)
	copy(id, "vhdxfile")
	for i, c := range utf16.Encode([]rune("lifeboat")) {
		le.PutUint16(id[8+2*i:], c)
	}
	writes := []struct {
		off int64
		b   []byte
	}{{0, id}}
	// Headers: the one with the higher sequence number is current.
	var fileGUID, dataGUID [16]byte
	rand.Read(fileGUID[:])
	rand.Read(dataGUID[:])
	for i, off := range []int64{64 << 10, 128 << 10} {
		h := make([]byte, 4096)
		copy(h, "head")
		le.PutUint64(h[8:], uint64(i+1))
		copy(h[16:], fileGUID[:])
		copy(h[32:], dataGUID[:])
		// LogGuid zero: no log to replay.
		le.PutUint16(h[66:], 1) // version
		le.PutUint32(h[68:], vhdxLogLen)
		le.PutUint64(h[72:], vhdxLogAt)
		le.PutUint32(h[4:], crc32.Checksum(h, castagnoli))
		writes = append(writes, struct {
			off int64
			b   []byte
		}{off, h})
	}
	// Region tables.
	rt := make([]byte, 64<<10)
	copy(rt, "regi")
	le.PutUint32(rt[8:], 2)
	for i, r := range []struct {
		g        [16]byte
		off, len int64
	}{{guidBAT, v.batAt, (int64(len(v.bat))*8 + 1<<20 - 1) / (1 << 20) * (1 << 20)}, {guidMetadata, vhdxMetaAt, vhdxMetaLen}} {
		e := rt[16+32*i:]
		copy(e, r.g[:])
		le.PutUint64(e[16:], uint64(r.off))
		le.PutUint32(e[24:], uint32(r.len))
		le.PutUint32(e[28:], 1) // required
	}
	le.PutUint32(rt[4:], crc32.Checksum(rt, castagnoli))
	writes = append(writes, struct {
		off int64
		b   []byte
	}{192 << 10, rt}, struct {
		off int64
		b   []byte
	}{256 << 10, rt})
	// Metadata: the table, then the items from 64 KiB on.
	md := make([]byte, vhdxMetaLen)
	copy(md, "metadata")
	var diskID [16]byte
	rand.Read(diskID[:])
	params := make([]byte, 8)
	le.PutUint32(params, vhdxBlock) // no parent, blocks not kept allocated
	items := []struct {
		g     [16]byte
		data  []byte
		flags uint32
	}{
		{guidFileParams, params, 4},
		{guidDiskSize, le.AppendUint64(nil, uint64(v.size)), 6},
		{guidDiskID, diskID[:], 6},
		{guidLogical, le.AppendUint32(nil, vhdxSector), 6},
		{guidPhysical, le.AppendUint32(nil, 4096), 6},
	}
	le.PutUint16(md[10:], uint16(len(items)))
	at := 64 << 10
	for i, it := range items {
		e := md[32+32*i:]
		copy(e, it.g[:])
		le.PutUint32(e[16:], uint32(at))
		le.PutUint32(e[20:], uint32(len(it.data)))
		le.PutUint32(e[24:], it.flags)
		copy(md[at:], it.data)
		at += 64 // each item on its own small slot
	}
	writes = append(writes, struct {
		off int64
		b   []byte
	}{vhdxMetaAt, md})
	bat := make([]byte, len(v.bat)*8)
	for i, e := range v.bat {
		le.PutUint64(bat[i*8:], e)
	}
	writes = append(writes, struct {
		off int64
		b   []byte
	}{v.batAt, bat})
	for _, w := range writes {
		if _, err := v.f.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	return v.f.Truncate(v.next)
}

// guid encodes a GUID as Windows stores it: the first three fields little
// endian, the rest as written.
func guid(s string) (g [16]byte) {
	var h []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		var v byte
		for _, c := range s[i : i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'A' && c <= 'F':
				v |= byte(c - 'A' + 10)
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		h = append(h, v)
		i++
	}
	copy(g[:], h)
	g[0], g[1], g[2], g[3] = h[3], h[2], h[1], h[0]
	g[4], g[5] = h[5], h[4]
	g[6], g[7] = h[7], h[6]
	return g
}
