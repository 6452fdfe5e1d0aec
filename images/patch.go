package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Patches. A content-defined chunk that changed in a few places since the
// parent point would be stored whole; an incremental stores instead the
// 4 KiB blocks of it that differ from the parent point's bytes at the same
// stream offset. Such a record has the CodecPatch flag; its plaintext is
//
//	uint32 count n, n × uint32 block number (ascending), then the n blocks
//	(4096 bytes each; the chunk's last block may be shorter)
//
// and its RawLen and Sum are the patched chunk's, so dedup, delta restore
// and verification treat it as any chunk. Reading it needs the image's
// parent attached (AttachChain), whose own patches need its parent, and so
// on down the chain.

const patchBlock = 4096

// makePatch returns the patch turning base into b, or nil when too much
// differs for a patch to pay.
func makePatch(b, base []byte) []byte {
	if len(base) != len(b) {
		return nil
	}
	var idx []uint32
	for i := 0; i < len(b); i += patchBlock {
		e := min(i+patchBlock, len(b))
		if !bytes.Equal(b[i:e], base[i:e]) {
			idx = append(idx, uint32(i/patchBlock))
		}
	}
	blocks := (len(b) + patchBlock - 1) / patchBlock
	if len(idx) == 0 || len(idx) == blocks {
		return nil // unchanged (a dedup miss of another kind), or all new
	}
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+4*len(idx)+len(idx)*patchBlock), uint32(len(idx)))
	for _, i := range idx {
		out = binary.LittleEndian.AppendUint32(out, i)
	}
	for _, i := range idx {
		s := int(i) * patchBlock
		out = append(out, b[s:min(s+patchBlock, len(b))]...)
	}
	if len(out) >= len(b) {
		return nil // the block list costs more than the blocks it spares
	}
	return out
}

var errPatch = errors.New("patch does not apply")

// applyPatch rebuilds a patched record's chunk from the parent point's
// bytes at the record's origin offset.
func (im *Image) applyPatch(r *record, patch []byte) ([]byte, error) {
	if im.parent == nil {
		return nil, fmt.Errorf("%w: the point it patches (%s) is not attached", ErrChainMissing, im.h.ParentUUID)
	}
	if int(r.Stream) >= len(im.x.Streams) || r.Chunk >= uint64(len(im.x.Streams[r.Stream].off)) {
		return nil, errPatch
	}
	off := im.x.Streams[r.Stream].off[r.Chunk]
	sr, err := im.parent.Stream(int(r.Stream))
	if err != nil {
		return nil, err
	}
	out := make([]byte, r.RawLen)
	if _, err := sr.ReadAt(out, off); err != nil {
		return nil, fmt.Errorf("read the parent point %s: %w", im.parent.Name, err)
	}
	if len(patch) < 4 {
		return nil, errPatch
	}
	n := int(binary.LittleEndian.Uint32(patch))
	blocks := (len(out) + patchBlock - 1) / patchBlock
	if n > blocks || len(patch) < 4+4*n {
		return nil, errPatch
	}
	data := patch[4+4*n:]
	prev := -1
	for k := range n {
		i := int(binary.LittleEndian.Uint32(patch[4+4*k:]))
		if i <= prev || i >= blocks {
			return nil, errPatch
		}
		prev = i
		s := i * patchBlock
		e := min(s+patchBlock, len(out))
		if len(data) < e-s {
			return nil, errPatch
		}
		copy(out[s:e], data[:e-s])
		data = data[e-s:]
	}
	if len(data) != 0 {
		return nil, errPatch
	}
	return out, nil
}
