// Package bench measures Lifeboat's backup and restore speed against the
// plain-tool baseline (dd piped into zstd, and back) on a generated disk.
//
// The disk is made by Generate: a reproducible mix of text-like data,
// random data, zeros and duplicated segments, so that every run on every
// machine measures the same bytes. Run drives the measurement and prints a
// table; cmd/lbbench is its command-line front end (`make bench`).
//
// RunFS is the second part: ext4 and NTFS images, filled through a loop
// mount with the files of PlanFiles (text, random data, zero runs, copies,
// many small files, and deleted files whose blocks are free but not zero),
// backed up and restored by lifeboat and by partclone | zstd (Clonezilla's
// way), qemu-img's compressed qcow2 and dd | zstd, from a cold page cache.
//
// RunCPU measures CPU-seconds (user+sys of every process of a step), output
// size and wall time, with a cold and a warm page cache, on an ext4 image
// about 60 % full of PlanCPUFiles' data set: lifeboat (default, fast,
// encrypted) against qemu-img, dd | zstd, partclone | zstd and restic.
//
// The smallest use writes a 64 MiB test disk:
//
//	f, _ := os.Create("disk.img")
//	err := bench.Generate(f, 64<<20, 1)
package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// GeneratorVersion names the layout and content rules of Generate. It is part
// of cached disk file names, so bump it whenever Generate's output changes.
const GeneratorVersion = "v1"

// Kind is the kind of content in one segment of a generated disk.
type Kind uint8

const (
	// KindText is pseudo-English prose: words from a generated vocabulary
	// drawn with Zipf-like frequencies, with punctuation and line breaks.
	KindText Kind = iota
	// KindRandom is incompressible pseudo-random bytes.
	KindRandom
	// KindZero is all zero bytes, like unused space on a fresh disk.
	KindZero
	// KindDup is a byte-for-byte copy of an earlier text or random segment,
	// like a duplicated file.
	KindDup
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindRandom:
		return "random"
	case KindZero:
		return "zero"
	case KindDup:
		return "dup"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// kindPercent is the target share of disk bytes for each Kind.
var kindPercent = [numKinds]int64{KindText: 40, KindRandom: 20, KindZero: 25, KindDup: 15}

const (
	blockSize  = 4 << 10  // segment boundaries are multiples of this
	minSegment = 64 << 10 // shortest segment, except the last one
	maxSegment = 16 << 20 // longest segment
	vocabSize  = 4096
	textSlack  = 64 // room for the word that crosses the end of a text buffer
)

// Segment is one run of a single Kind of content in a generated disk.
type Segment struct {
	Offset, Length int64
	Kind           Kind
	// Source is the index of the segment whose content this one holds: the
	// segment's own index, or for KindDup the earlier segment it copies.
	Source int
	// Content is the kind of bytes the segment holds: Kind, or for KindDup
	// the Kind of its source.
	Content Kind
}

// Generate writes size bytes of a mixed test disk to w. The bytes are a pure
// function of (size, seed): the same pair gives the same disk on every
// machine and in every run.
//
// The disk is a sequence of segments of 64 KiB to 16 MiB (log-uniform, on
// 4 KiB boundaries) of four kinds; by bytes roughly 40% text-like, 20% random,
// 25% zeros and 15% duplicates of an earlier text or random segment. Layout
// and content come from math/rand/v2's PCG and ChaCha8 generators, whose
// output the Go project keeps stable across releases and architectures, and
// from integer arithmetic only, so no floating-point rounding can differ
// between machines. If either ever changed, GeneratorVersion must change too.
//
// Segments are generated in parallel on GOMAXPROCS goroutines and written to w
// in order, in writes of at most 16 MiB.
func Generate(w io.Writer, size int64, seed uint64) error {
	if size < 0 {
		return fmt.Errorf("generate test disk: negative size %d", size)
	}
	segs := Plan(size, seed)
	vocab := newVocabulary(seed)

	type job struct {
		seg  Segment
		buf  []byte
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *job)
	ordered := make(chan *job, 2*workers) // bounds memory to ~3×workers×16 MiB
	quit := make(chan struct{})
	pool := sync.Pool{New: func() any { b := make([]byte, 0, maxSegment+textSlack); return &b }}

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				bp := pool.Get().(*[]byte)
				j.buf = segmentContent((*bp)[:0], j.seg, seed, vocab)
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		for _, s := range segs {
			j := &job{seg: s, done: make(chan struct{})}
			if s.Kind == KindZero {
				close(j.done)
			}
			select {
			case ordered <- j:
			case <-quit:
				return
			}
			if s.Kind == KindZero {
				continue
			}
			select {
			case work <- j:
			case <-quit:
				return
			}
		}
	}()
	defer wg.Wait()

	zeros := make([]byte, 1<<20)
	for j := range ordered {
		<-j.done
		var err error
		if j.seg.Kind == KindZero {
			for left := j.seg.Length; left > 0 && err == nil; {
				n := min(left, int64(len(zeros)))
				_, err = w.Write(zeros[:n])
				left -= n
			}
		} else {
			_, err = w.Write(j.buf)
			b := j.buf[:0]
			pool.Put(&b)
		}
		if err != nil {
			close(quit)
			for j := range ordered { // let the producer and workers finish
				<-j.done
			}
			return fmt.Errorf("generate test disk: write at offset %d: %w", j.seg.Offset, err)
		}
	}
	return nil
}

// Plan returns the segment layout that Generate(w, size, seed) writes.
func Plan(size int64, seed uint64) []Segment {
	r := rand.NewPCG(seed, 0x6c696665626f6174) // "lifeboat"
	var segs []Segment
	var have [numKinds]int64
	var sources []int // indexes of text and random segments, for duplicates
	for off := int64(0); off < size; {
		// Log-uniform length in integers: pick one of the eight octaves
		// between 64 KiB and 16 MiB, then a uniform length within it.
		lo := int64(minSegment) << (r.Uint64() % 8)
		n := (lo + int64(r.Uint64()%uint64(lo))) &^ (blockSize - 1)
		n = min(n, size-off)

		// Pick a kind at random, weighted by how far each kind lags behind
		// its share of the bytes written so far, so the mix stays close to
		// kindPercent however few segments there are.
		var deficit [numKinds]int64
		var total int64
		for k := range numKinds {
			if k == KindDup && len(sources) == 0 {
				continue
			}
			deficit[k] = max(0, kindPercent[k]*(off+n)-100*have[k])
			total += deficit[k]
		}
		k := KindText
		if total > 0 {
			x := int64(r.Uint64() % uint64(total))
			for k = range numKinds {
				if x < deficit[k] {
					break
				}
				x -= deficit[k]
			}
		}

		s := Segment{Offset: off, Length: n, Kind: k, Source: len(segs), Content: k}
		if k == KindDup {
			src := segs[sources[r.Uint64()%uint64(len(sources))]]
			s.Source, s.Content = src.Source, src.Content
			s.Length = min(src.Length, size-off)
		}
		if k == KindText || k == KindRandom {
			sources = append(sources, len(segs))
		}
		segs = append(segs, s)
		have[k] += s.Length
		off += s.Length
	}
	return segs
}

// segmentContent appends the content of s to buf and returns it. The content
// of segment i depends only on (seed, i), and a shorter length gives a prefix
// of a longer one, which is what lets a duplicate regenerate its source
// instead of keeping it in memory.
func segmentContent(buf []byte, s Segment, seed uint64, v *vocabulary) []byte {
	var key [16]byte
	binary.LittleEndian.PutUint64(key[:8], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(s.Source))
	cs := sha256.Sum256(append([]byte("lifeboat bench segment "+GeneratorVersion+"\x00"), key[:]...))
	start, n := len(buf), int(s.Length)
	switch s.Content {
	case KindRandom:
		buf = slices.Grow(buf, n)[:start+n]
		rand.NewChaCha8(cs).Read(buf[start:])
		return buf
	case KindText:
		r := rand.NewPCG(binary.LittleEndian.Uint64(cs[:8]), binary.LittleEndian.Uint64(cs[8:16]))
		return v.appendText(buf, n, r)
	}
	// Generate writes zeros without a buffer; this is for tests.
	return append(buf, make([]byte, n)...)
}
