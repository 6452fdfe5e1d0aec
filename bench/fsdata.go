package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// FSDataVersion names the rules of PlanFiles and WriteFiles, and of the
// filesystem images made from them. It is part of the cached images' names,
// so bump it whenever the files or the way the images are made change.
const FSDataVersion = "fs1"

// FileKind is the kind of content of one generated file.
type FileKind uint8

const (
	// FileText is pseudo-English prose, like documents and source code.
	FileText FileKind = iota
	// FileRandom is incompressible, like photos, videos and archives.
	FileRandom
	// FileZeroRuns alternates runs of zeros with runs of text or random
	// data, like virtual machine disks and databases. The zeros are written,
	// not left as holes, so the filesystem allocates blocks for them.
	FileZeroRuns
	// FileDup is a byte-for-byte copy of an earlier, large file.
	FileDup
)

func (k FileKind) String() string {
	switch k {
	case FileText:
		return "text"
	case FileRandom:
		return "random"
	case FileZeroRuns:
		return "zero-runs"
	case FileDup:
		return "dup"
	}
	return fmt.Sprintf("FileKind(%d)", uint8(k))
}

// FileSpec is one file of the generated data set.
type FileSpec struct {
	Path string // slash-separated, relative to the filesystem's root
	Size int64
	Kind FileKind
	// Key selects the content: files with the same Key, Kind and Size hold
	// the same bytes. A FileDup has the Key and Content of its source.
	Key     uint64
	Content FileKind
	// Delete marks files that are written, then deleted once all files are
	// written, so that their blocks are free but not zero.
	Delete bool
}

// fileSetShare is the data set by bytes, before deletion; about 1 GiB stays.
var fileSetShare = []struct {
	dir            string
	kind           FileKind
	total          int64
	minSize, maxSz int64
}{
	{"docs", FileText, 330 << 20, 256 << 10, 16 << 20},
	{"media", FileRandom, 220 << 20, 1 << 20, 32 << 20},
	{"vm", FileZeroRuns, 130 << 20, 8 << 20, 32 << 20},
	{"tmp", FileText, 90 << 20, 1 << 20, 16 << 20},   // deleted
	{"tmp", FileRandom, 70 << 20, 1 << 20, 16 << 20}, // deleted
}

const (
	smallFiles    = 12000 // in smallDirs directories of src/
	smallDirs     = 240
	smallMin      = 200
	smallMax      = 32 << 10
	dupSources    = 2 // large files copied dupCopies times each into backup/
	dupCopies     = 2
	dupSourceSize = 32 << 20
	chunk         = 1 << 20 // unit of content generation and of writes
)

// PlanFiles returns the data set that WriteFiles writes for seed, in the
// order they are written: large and small files interleaved, so that the
// files deleted afterwards leave free space scattered over the filesystem.
// About 1.2 GiB is written and 1 GiB kept.
func PlanFiles(seed uint64) []FileSpec {
	r := rand.New(rand.NewPCG(seed, 0x66696c6573657431)) // "fileset1"
	var p plan
	add := p.add
	for _, s := range fileSetShare {
		for have, i := int64(0), 0; have < s.total; i++ {
			n := min(logUniform(r, s.minSize, s.maxSz), s.total-have) &^ 511
			n = max(n, 512)
			add(FileSpec{Path: fmt.Sprintf("%s/%s-%03d.%s", s.dir, s.kind, i, extension(s.kind)), Size: n, Kind: s.kind, Delete: s.dir == "tmp"})
			have += n
		}
	}
	var sources []FileSpec
	for i := range dupSources {
		k := []FileKind{FileText, FileRandom}[i%2]
		add(FileSpec{Path: fmt.Sprintf("backup/original-%d.%s", i, extension(k)), Size: dupSourceSize, Kind: k})
		sources = append(sources, p.files[len(p.files)-1])
	}
	for i, src := range sources {
		for c := range dupCopies {
			p.copyOf(src, fmt.Sprintf("backup/copy-%d-%d.%s", i, c, extension(src.Kind)))
		}
	}
	for i := range smallFiles {
		k := FileText
		if r.IntN(10) == 0 {
			k = FileRandom
		}
		dir := r.IntN(smallDirs)
		add(FileSpec{Path: fmt.Sprintf("src/d%02d/d%03d/f%05d.%s", dir%16, dir, i, extension(k)), Size: logUniform(r, smallMin, smallMax), Kind: k,
			Delete: r.IntN(12) == 0})
	}
	return p.shuffled(r)
}

// plan collects the files of a data set.
type plan struct {
	files []FileSpec
	key   uint64 // of the last file added
}

// add appends f with content of its own.
func (p *plan) add(f FileSpec) {
	p.key++
	f.Key, f.Content = p.key, f.Kind
	p.files = append(p.files, f)
}

// copyOf appends a copy of src at path: a FileDup with src's content.
func (p *plan) copyOf(src FileSpec, path string) {
	p.files = append(p.files, FileSpec{Path: path, Size: src.Size, Kind: FileDup, Key: src.Key, Content: src.Content})
}

// shuffled returns the files in a random order of r: small and large files
// interleaved on the disk, copies away from their sources. A copy is
// generated afresh, like its source, so the order does not matter to the
// content.
func (p *plan) shuffled(r *rand.Rand) []FileSpec {
	r.Shuffle(len(p.files), func(i, j int) { p.files[i], p.files[j] = p.files[j], p.files[i] })
	return p.files
}

// logUniform draws a size from lo to hi, spread evenly over the octaves like
// the sizes of real files: a uniform exponent, then a uniform size within
// the octave.
func logUniform(r *rand.Rand, lo, hi int64) int64 {
	octaves := 0
	for lo<<(octaves+1) <= hi {
		octaves++
	}
	base := lo << r.IntN(octaves+1)
	return min(hi, base+r.Int64N(base))
}

func extension(k FileKind) string {
	switch k {
	case FileText:
		return "txt"
	case FileRandom:
		return "bin"
	case FileZeroRuns:
		return "vdi"
	}
	return "dat"
}

// WriteFiles writes the files of PlanFiles(seed) under root, then deletes
// those marked Delete. It returns the bytes written and the bytes kept.
func WriteFiles(ctx context.Context, root string, seed uint64) (written, kept int64, err error) {
	return writeFiles(ctx, root, seed, PlanFiles(seed))
}

// writeFiles writes files, a plan made from seed, under root, then deletes
// those marked Delete.
func writeFiles(ctx context.Context, root string, seed uint64, files []FileSpec) (written, kept int64, err error) {
	vocab := newVocabulary(seed)
	buf := make([]byte, 0, chunk+textSlack)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return written, kept, fmt.Errorf("bench: write test files: %w", err)
		}
		path := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, kept, fmt.Errorf("bench: write test files: %w", err)
		}
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return written, kept, fmt.Errorf("bench: write test files: %w", err)
		}
		err = fileContent(f, seed, vocab, buf, func(p []byte) error {
			_, err := out.Write(p)
			return err
		})
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return written, kept, fmt.Errorf("bench: write test file %s: %w", path, err)
		}
		written += f.Size
		kept += f.Size
	}
	for _, f := range files {
		if f.Delete {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(f.Path))); err != nil {
				return written, kept, fmt.Errorf("bench: delete test file: %w", err)
			}
			kept -= f.Size
		}
	}
	return written, kept, nil
}

// fileContent produces the bytes of f in pieces of at most chunk bytes,
// passing each to emit. buf is scratch space of capacity chunk+textSlack.
// The content depends only on (seed, f.Key, f.Content, f.Size).
func fileContent(f FileSpec, seed uint64, v *vocabulary, buf []byte, emit func([]byte) error) error {
	if f.Content != FileZeroRuns {
		return runContent(f.Content, f.Size, contentKey(seed, f.Key, 0), v, buf, emit)
	}
	// Runs of 64 KiB to 4 MiB; half of them zeros, the others data that is
	// text three times out of four.
	r := rand.New(rand.NewPCG(seed^f.Key, 0x7a65726f72756e73)) // "zeroruns"
	for left, run := f.Size, uint64(1); left > 0; run++ {
		n := min(left, int64(64<<10)<<r.IntN(7))
		kind := FileText
		switch x := r.IntN(8); {
		case x < 4:
			kind = FileZeroRuns // zeros
		case x == 4:
			kind = FileRandom
		}
		if err := runContent(kind, n, contentKey(seed, f.Key, run), v, buf, emit); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// runContent emits n bytes of one kind: FileText, FileRandom, or zeros for
// anything else.
func runContent(kind FileKind, n int64, key [32]byte, v *vocabulary, buf []byte, emit func([]byte) error) error {
	var rnd *rand.ChaCha8
	if kind == FileRandom {
		rnd = rand.NewChaCha8(key)
	}
	for piece := uint64(0); n > 0; piece++ {
		m := int(min(n, chunk))
		var p []byte
		switch kind {
		case FileText:
			seed := binary.LittleEndian.Uint64(key[:8]) ^ piece
			p = v.appendText(buf[:0], m, rand.NewPCG(seed, binary.LittleEndian.Uint64(key[8:16])))
		case FileRandom:
			p = buf[:m]
			rnd.Read(p)
		default:
			p = buf[:m]
			clear(p)
		}
		if err := emit(p); err != nil {
			return err
		}
		n -= int64(m)
	}
	return nil
}

func contentKey(seed, key, run uint64) [32]byte {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:16], key)
	binary.LittleEndian.PutUint64(b[16:], run)
	return sha256.Sum256(append([]byte("lifeboat bench file "+FSDataVersion+"\x00"), b[:]...))
}
