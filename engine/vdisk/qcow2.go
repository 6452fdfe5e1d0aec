package vdisk

import (
	"encoding/binary"
	"fmt"
)

// qcow2 version 3 with 64 KiB clusters and 16-bit refcounts. The data
// clusters follow the header in the order they come; each L2 table is
// written when the writes have passed the 512 MiB it maps, and the L1
// table and the refcount structures at the end, before the header.
type qcow2 struct {
	f    File
	size int64

	next    int64 // next free cluster
	l1      []uint64
	l2      []uint64 // the L2 table being filled
	l2Index int64    // which one; -1 none
}

const (
	qcowClusterBits = 16
	qcowCluster     = 1 << qcowClusterBits
	qcowL2Entries   = qcowCluster / 8
	qcowCopied      = 1 << 63 // refcount is exactly one
	qcowHeaderLen   = 104
)

func newQcow2(f File, size int64) (Writer, error) {
	l1Size := (size + qcowCluster*qcowL2Entries - 1) / (qcowCluster * qcowL2Entries)
	q := &qcow2{f: f, size: size, next: 1, l1: make([]uint64, l1Size), l2Index: -1}
	return newBlocks(size, qcowCluster, q), nil
}

func (q *qcow2) alloc(n int64) int64 {
	off := q.next * qcowCluster
	q.next += n
	return off
}

func (q *qcow2) block(i int64, data []byte) error {
	if l2 := i / qcowL2Entries; l2 != q.l2Index {
		if err := q.writeL2(); err != nil {
			return err
		}
		q.l2Index, q.l2 = l2, make([]uint64, qcowL2Entries)
	}
	off := q.alloc(1)
	if _, err := q.f.WriteAt(data, off); err != nil {
		return err
	}
	q.l2[i%qcowL2Entries] = uint64(off) | qcowCopied
	return nil
}

func (q *qcow2) writeL2() error {
	if q.l2Index < 0 {
		return nil
	}
	off := q.alloc(1)
	if _, err := q.f.WriteAt(be64s(q.l2), off); err != nil {
		return err
	}
	q.l1[q.l2Index] = uint64(off) | qcowCopied
	q.l2Index = -1
	return nil
}

func (q *qcow2) finish() error {
	if err := q.writeL2(); err != nil {
		return err
	}
	l1Clusters := max(1, (int64(len(q.l1))*8+qcowCluster-1)/qcowCluster)
	l1Off := q.alloc(l1Clusters)
	if _, err := q.f.WriteAt(be64s(q.l1), l1Off); err != nil {
		return err
	}
	// Refcounts (16 bits: 32768 per block) for every cluster of the file,
	// the refcount table and blocks included: grow until they count
	// themselves.
	const perBlock = qcowCluster / 2
	var blocks, tableClusters int64
	for {
		total := q.next + blocks + tableClusters
		nb := (total + perBlock - 1) / perBlock
		nt := max(1, (nb*8+qcowCluster-1)/qcowCluster)
		if nb == blocks && nt == tableClusters {
			break
		}
		blocks, tableClusters = nb, nt
	}
	tableOff := q.alloc(tableClusters)
	firstBlock := q.next
	q.alloc(blocks)
	total := q.next
	table := make([]uint64, tableClusters*qcowCluster/8)
	for b := range blocks {
		table[b] = uint64((firstBlock + b) * qcowCluster)
		rc := make([]byte, qcowCluster)
		for c := b * perBlock; c < min(total, (b+1)*perBlock); c++ {
			binary.BigEndian.PutUint16(rc[(c-b*perBlock)*2:], 1)
		}
		if _, err := q.f.WriteAt(rc, (firstBlock+b)*qcowCluster); err != nil {
			return err
		}
	}
	if _, err := q.f.WriteAt(be64s(table), tableOff); err != nil {
		return err
	}
	h := make([]byte, qcowCluster)
	copy(h, "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], 3)                      // version
	be.PutUint32(h[20:], qcowClusterBits)       // cluster_bits
	be.PutUint64(h[24:], uint64(q.size))        // size
	be.PutUint32(h[36:], uint32(len(q.l1)))     // l1_size
	be.PutUint64(h[40:], uint64(l1Off))         // l1_table_offset
	be.PutUint64(h[48:], uint64(tableOff))      // refcount_table_offset
	be.PutUint32(h[56:], uint32(tableClusters)) // refcount_table_clusters
	be.PutUint32(h[96:], 4)                     // refcount_order: 16 bits
	be.PutUint32(h[100:], qcowHeaderLen)        // header_length
	// Header extensions end at once (type 0, length 0: the zeros at 104).
	if _, err := q.f.WriteAt(h, 0); err != nil {
		return err
	}
	if err := q.f.Truncate(total * qcowCluster); err != nil {
		return fmt.Errorf("vdisk: %w", err)
	}
	return nil
}

func be64s(v []uint64) []byte {
	b := make([]byte, len(v)*8)
	for i, x := range v {
		binary.BigEndian.PutUint64(b[i*8:], x)
	}
	return b
}
