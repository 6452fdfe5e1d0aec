// Package vdisk writes virtual disk files for virtual machines: raw
// (sparse), qcow2 (version 3, as QEMU and libvirt use it) and VHDX
// (dynamic, as Hyper-V uses it), in pure Go so that it works everywhere
// lifeboat does. A Writer takes the disk's bytes at increasing offsets, as
// an image's chunks come, leaves out every all-zero block (it reads as
// zeros), and writes the format's tables on Close.
//
// The layouts follow QEMU's docs/interop/qcow2.txt and Microsoft's
// [MS-VHDX] specification; the tests check every file with qemu-img check
// and qemu-img compare.
package vdisk

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/images"
)

// Formats are the formats New writes.
var Formats = []string{"raw", "qcow2", "vhdx"}

// FormatOf is the format a file name's extension asks for ("" if none).
func FormatOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".img", ".raw":
		return "raw"
	case ".qcow2":
		return "qcow2"
	case ".vhdx":
		return "vhdx"
	}
	return ""
}

// Writer takes a disk's bytes.
type Writer interface {
	// WriteAt writes p at off; every call is at or after the end of the
	// previous one. Bytes never written read as zeros.
	WriteAt(p []byte, off int64) (int, error)
	// Close writes the format's tables; the file is complete after it.
	Close() error
}

// File is what a Writer writes to.
type File interface {
	io.WriterAt
	Truncate(size int64) error
}

// New starts a virtual disk of size bytes in format on f (empty).
func New(f File, format string, size int64) (Writer, error) {
	if size <= 0 || size%512 != 0 {
		return nil, fmt.Errorf("vdisk: size %d is not a positive multiple of 512", size)
	}
	switch format {
	case "raw":
		return newBlocks(size, 64<<10, &raw{f: f, size: size, bs: 64 << 10}), nil
	case "qcow2":
		return newQcow2(f, size)
	case "vhdx":
		return newVHDX(f, size)
	}
	return nil, fmt.Errorf("vdisk: unknown format %q (use %s)", format, strings.Join(Formats, ", "))
}

// sink takes whole blocks that are not all zeros, in increasing order.
type sink interface {
	block(index int64, data []byte) error
	finish() error
}

// blocks cuts increasing writes into blocks of bs bytes for a sink,
// leaving out all-zero ones.
type blocks struct {
	size, bs int64
	cur      int64 // index of the block in buf; -1 none
	buf      []byte
	dirty    bool
	end      int64 // end of the last write
	s        sink
	closed   bool
}

func newBlocks(size, bs int64, s sink) *blocks {
	return &blocks{size: size, bs: bs, cur: -1, buf: make([]byte, bs), s: s}
}

var errOrder = errors.New("vdisk: writes must come at increasing offsets")

func (b *blocks) WriteAt(p []byte, off int64) (int, error) {
	if off < b.end {
		return 0, errOrder
	}
	if off+int64(len(p)) > b.size {
		return 0, fmt.Errorf("vdisk: write at %d+%d past the disk's end (%d)", off, len(p), b.size)
	}
	n := 0
	for len(p) > 0 {
		i := off / b.bs
		if i != b.cur {
			if err := b.flush(); err != nil {
				return n, err
			}
			b.cur = i
		}
		rel := off - i*b.bs
		m := copy(b.buf[rel:], p)
		b.dirty = true
		p, off, n = p[m:], off+int64(m), n+m
	}
	b.end = off
	return n, nil
}

func (b *blocks) flush() error {
	if b.cur < 0 || !b.dirty {
		return nil
	}
	data := b.buf[:min(b.bs, b.size-b.cur*b.bs)]
	var err error
	if !images.IsZero(data) {
		err = b.s.block(b.cur, data)
	}
	clear(b.buf)
	b.dirty = false
	return err
}

func (b *blocks) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.flush(); err != nil {
		return err
	}
	return b.s.finish()
}

// raw is a sparse plain file.
type raw struct {
	f    File
	size int64
	bs   int64
}

func (r *raw) block(i int64, data []byte) error {
	_, err := r.f.WriteAt(data, i*r.bs)
	return err
}

func (r *raw) finish() error { return r.f.Truncate(r.size) }
