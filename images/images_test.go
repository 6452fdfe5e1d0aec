package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/klauspost/compress/zstd"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// testKDF keeps Argon2id cheap in tests; the format records the cost.
var testKDF = KDFCost{Time: 1, MemKiB: 64}

// mixedData returns n bytes of text-like, random, zero and repeated runs.
func mixedData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	words := []string{"lifeboat ", "disk ", "image ", "restore ", "the ", "a ", "backup\n", "sector ", "chunk, "}
	for off := 0; off < n; {
		l := min(n-off, 4096*(1+r.IntN(200)))
		switch r.IntN(4) {
		case 0:
			for i := off; i < off+l; {
				i += copy(b[i:off+l], words[r.IntN(len(words))])
			}
		case 1:
			for i := off; i < off+l; i++ {
				b[i] = byte(r.Uint32())
			}
		case 2: // zeros
		case 3:
			if off > l {
				copy(b[off:off+l], b[r.IntN(off-l):])
			}
		}
		off += l
	}
	return b
}

func writeImage(t testing.TB, path string, data [][]byte, o WriterOptions) {
	t.Helper()
	w, err := Create(path, o)
	if err != nil {
		t.Fatal(err)
	}
	meta := &Metadata{}
	for _, d := range data {
		if _, err := w.AddStream(context.Background(), bytes.NewReader(d), int64(len(d)), StreamOptions{}); err != nil {
			t.Fatal(err)
		}
		meta.Streams = append(meta.Streams, Stream{Kind: KindDisk, Mode: ModeAllSectors, SectorSize: 512})
	}
	if err := w.Commit(meta); err != nil {
		t.Fatal(err)
	}
}

func pw(s string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(s), nil } }

func readAll(t testing.TB, im *Image, i int) []byte {
	t.Helper()
	sr, err := im.Stream(i)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = sr.ForEachChunk(context.Background(), 0, sr.Size(), func(c Chunk) error {
		if c.Data == nil {
			out.Write(make([]byte, int(c.Len)))
		} else {
			out.Write(c.Data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := mixedData(9<<20+12345, 1)
	small := mixedData(200<<10, 2)
	for _, lvl := range []Level{LevelNone, LevelFast, LevelNormal, LevelHigh} {
		for _, c := range []Cipher{CipherNone, CipherAES256GCM, CipherXChaCha20Poly1305} {
			for _, split := range []int64{0, 1 << 20} {
				name := fmt.Sprintf("%v/%v/split%d", lvl, c, split)
				t.Run(name, func(t *testing.T) {
					o := WriterOptions{Compression: lvl, SplitSize: split, ChunkSize: 256 << 10, KDF: testKDF}
					oo := OpenOptions{}
					if c != CipherNone {
						o.Cipher, o.Password = c, []byte("secret")
						oo.Password = pw("secret")
					}
					path := filepath.Join(t.TempDir(), "x.lbi")
					writeImage(t, path, [][]byte{data, small}, o)
					im, err := Open(path, oo)
					if err != nil {
						t.Fatal(err)
					}
					defer im.Close()
					if split > 0 && len(im.Info().Parts) < 3 {
						t.Fatalf("split image has %d parts", len(im.Info().Parts))
					}
					if !bytes.Equal(readAll(t, im, 0), data) || !bytes.Equal(readAll(t, im, 1), small) {
						t.Fatal("round trip differs")
					}
					if err := im.Verify(context.Background(), VerifyOptions{}); err != nil {
						t.Fatal(err)
					}
					// random access
					sr, _ := im.Stream(0)
					r := rand.New(rand.NewPCG(3, 4))
					for range 50 {
						off := r.Int64N(int64(len(data)))
						n := min(r.IntN(600<<10), len(data)-int(off))
						got := make([]byte, n)
						if _, err := sr.ReadAt(got, off); err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, data[off:int(off)+n]) {
							t.Fatalf("ReadAt(%d, %d) differs", off, n)
						}
					}
				})
			}
		}
	}
}

// A copy of data at another 4 KiB-aligned offset is stored once, and zero
// runs become holes.
func TestDedupAndHoles(t *testing.T) {
	rnd := func(n int, seed byte) []byte {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{seed}).Read(b)
		return b
	}
	a, b, c := rnd(3<<20, 1), rnd(1<<20, 2), rnd(12<<10, 3)
	var data []byte
	for _, part := range [][]byte{a, make([]byte, 1<<20), b, c, a, make([]byte, 5<<20+100)} {
		data = append(data, part...)
	}
	path := filepath.Join(t.TempDir(), "d.lbi")
	const avg = 64 << 10
	writeImage(t, path, [][]byte{data}, WriterOptions{ChunkSize: avg, Compression: LevelNormal})
	im, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var stored, holes int64
	for _, r := range im.x.Records {
		stored += int64(r.RawLen)
	}
	for _, e := range im.x.Streams[0].Ext {
		if e.Ref == refZero {
			holes += int64(e.Len)
		}
	}
	unique := int64(len(a) + len(b) + len(c))
	// The copy resynchronises within about one chunk (Min + Avg).
	if slack := stored - unique; slack < 0 || slack > 4*avg {
		t.Errorf("stored %d plaintext bytes for %d unique: the copy was not deduplicated", stored, unique)
	}
	if holes < 6<<20 {
		t.Errorf("holes cover %d bytes, want the 6 MiB of zeros", holes)
	}
	if !bytes.Equal(readAll(t, im, 0), data) {
		t.Fatal("differs")
	}
}

func TestStreamWriter(t *testing.T) {
	data := mixedData(3<<20, 5)
	pr, pw := io.Pipe()
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(pr); done <- b }()
	w, err := NewStreamWriter(pw, "-", WriterOptions{Compression: LevelFast})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}}); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	img := <-done
	im, err := OpenReaderAt(bytes.NewReader(img), int64(len(img)), "piped", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, im, 0), data) {
		t.Fatal("differs")
	}
}

func TestNothingBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lbi")
	w, err := Create(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := mixedData(1<<20, 1)
	w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("image visible before commit: %v", err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %v", ents)
	}
	// A cancelled backup leaves nothing either.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w, _ = Create(path, WriterOptions{})
	if _, err := w.AddStream(ctx, bytes.NewReader(data), int64(len(data)), StreamOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("cancel left %v", ents)
	}
}

func TestWrongPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lbi")
	writeImage(t, path, [][]byte{mixedData(1<<20, 1)}, WriterOptions{Password: []byte("right"), KDF: testKDF})
	if _, err := Open(path, OpenOptions{Password: pw("wrong")}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	im, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatalf("locked open: %v", err)
	}
	if _, err := im.Stream(0); err == nil {
		t.Fatal("locked image gave a stream")
	}
	if err := im.Unlock([]byte("right")); err != nil {
		t.Fatal(err)
	}
}

// TestEveryFlippedByteIsCaught flips bytes all over small images and
// requires Open or Verify to fail: header, chunks, metadata, index, trailer
// and split part headers.
func TestEveryFlippedByteIsCaught(t *testing.T) {
	for _, tc := range []struct {
		enc bool
		lvl Level
	}{{false, LevelNormal}, {true, LevelNormal}, {false, LevelFast}, {true, LevelFast}} {
		enc := tc.enc
		t.Run(fmt.Sprintf("encrypted=%v,%v", enc, tc.lvl), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.lbi")
			o := WriterOptions{ChunkSize: 64 << 10, Compression: tc.lvl, SplitSize: 128 << 10}
			oo := OpenOptions{}
			if enc {
				o.Password, o.KDF, oo.Password = []byte("pw"), testKDF, pw("pw")
			}
			writeImage(t, path, [][]byte{mixedData(400<<10, 9)}, o)
			var parts []string
			for n := 1; ; n++ {
				if _, err := os.Stat(PartName(path, n)); err != nil {
					break
				}
				parts = append(parts, PartName(path, n))
			}
			for _, p := range parts {
				orig, _ := os.ReadFile(p)
				step := max(1, len(orig)/300)
				for pos := 0; pos < len(orig); pos += step {
					// every byte of the first 200 and last 200, a sample between
					if pos > 200 && pos < len(orig)-200 && (pos/step)%1 != 0 {
						continue
					}
					flipped := bytes.Clone(orig)
					flipped[pos] ^= 0x20
					os.WriteFile(p, flipped, 0o644)
					if err := openAndVerify(path, oo); err == nil {
						t.Fatalf("flip at %s byte %d not detected", filepath.Base(p), pos)
					}
					if err := openAndVerifyWith(path, oo, VerifyOptions{}); err == nil {
						t.Fatalf("flip at %s byte %d not detected by a verify that is not thorough (restore's)", filepath.Base(p), pos)
					}
					if pos < 200 {
						pos -= step - 1 // walk the header byte by byte
					} else if pos > len(orig)-200-step && pos < len(orig)-200 {
						pos = len(orig) - 200 - step
					}
				}
				os.WriteFile(p, orig, 0o644)
			}
			if err := openAndVerify(path, oo); err != nil {
				t.Fatalf("restored image fails: %v", err)
			}
		})
	}
}

func openAndVerify(path string, oo OpenOptions) error {
	return openAndVerifyWith(path, oo, VerifyOptions{Thorough: true})
}

func openAndVerifyWith(path string, oo OpenOptions, vo VerifyOptions) error {
	im, err := Open(path, oo)
	if err != nil {
		return err
	}
	defer im.Close()
	return im.Verify(context.Background(), vo)
}

func TestTruncatedAndMissingParts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.lbi")
	writeImage(t, path, [][]byte{mixedData(2<<20, 3)}, WriterOptions{Compression: LevelNone, SplitSize: 256 << 10, ChunkSize: 64 << 10})
	// missing middle part
	p3 := PartName(path, 3)
	os.Rename(p3, p3+".away")
	_, err := Open(path, OpenOptions{})
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrIncomplete) || ce.Part != p3 {
		t.Fatalf("missing part: err = %v", err)
	}
	os.Rename(p3+".away", p3)
	// truncated last part
	var last string
	for n := 1; ; n++ {
		if _, err := os.Stat(PartName(path, n)); err != nil {
			break
		}
		last = PartName(path, n)
	}
	st, _ := os.Stat(last)
	os.Truncate(last, st.Size()-1)
	if _, err := Open(path, OpenOptions{}); !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: err = %v", err)
	}
	// not an image
	os.WriteFile(path, []byte("hello"), 0o644)
	if _, err := Open(path, OpenOptions{}); !errors.Is(err, ErrNotImage) {
		t.Fatalf("not an image: err = %v", err)
	}
}

func TestFlippedChunkNamesOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.lbi")
	writeImage(t, path, [][]byte{mixedData(1<<20, 4)}, WriterOptions{ChunkSize: 64 << 10})
	b, _ := os.ReadFile(path)
	pos := len(b) / 2
	b[pos] ^= 1
	os.WriteFile(path, b, 0o644)
	im, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = im.Verify(context.Background(), VerifyOptions{Stored: true})
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	if ce.Offset > int64(pos) || int64(pos)-ce.Offset > 64<<10 {
		t.Fatalf("reported offset %d, flipped %d", ce.Offset, pos)
	}
	t.Log(err)
}

func BenchmarkWriteNormal(b *testing.B) {
	data := mixedData(64<<20, 1)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, _ := NewStreamWriter(io.Discard, "-", WriterOptions{Compression: LevelNormal})
		w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{})
		w.Commit(&Metadata{Streams: []Stream{{}}})
	}
}

// Only the used ranges are read and stored; short gaps read back as zeros
// (stored as such), long gaps are unused extents, and everything in the used
// ranges reads back exactly, also encrypted.
func TestUsedRanges(t *testing.T) {
	data := mixedData(24<<20, 7)
	used := []Range{{0, 4096}, {8192, 512}, {3 << 20, 5<<20 + 1234}, {12 << 20, 1 << 20}, {24<<20 - 4096, 4096}}
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprint("encrypted=", enc), func(t *testing.T) {
			o := WriterOptions{Compression: LevelFast, KDF: testKDF}
			if enc {
				o.Password = []byte("pw")
			}
			path := filepath.Join(t.TempDir(), "u.lbi")
			w, err := Create(path, o)
			if err != nil {
				t.Fatal(err)
			}
			var progress int64
			st, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)),
				StreamOptions{Used: used, Progress: func(n int64) { progress += n }})
			if err != nil {
				t.Fatal(err)
			}
			if want := StreamWork(int64(len(data)), used); progress != want {
				t.Errorf("progress added up to %d, want %d", progress, want)
			}
			if st.UnusedBytes != (3<<20-8704)+(12<<20-8<<20-1234)+(24<<20-4096-13<<20) {
				t.Errorf("unused bytes %d", st.UnusedBytes)
			}
			if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindPartition, Mode: ModeUsed}}}); err != nil {
				t.Fatal(err)
			}
			im, err := Open(path, OpenOptions{Password: func() ([]byte, error) { return []byte("pw"), nil }})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if err := im.Verify(context.Background(), VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
			sr, _ := im.Stream(0)
			got := make([]byte, len(data))
			if _, err := sr.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			var pos int64
			for _, r := range used {
				if !allZero(got[pos:r.Off]) {
					t.Errorf("gap %d-%d does not read as zeros", pos, r.Off)
				}
				if !bytes.Equal(got[r.Off:r.Off+r.Len], data[r.Off:r.Off+r.Len]) {
					t.Errorf("used range %d+%d differs", r.Off, r.Len)
				}
				pos = r.Off + r.Len
			}
			var unused int64
			sr.ForEachChunk(context.Background(), 0, sr.Size(), func(c Chunk) error {
				if c.Unused {
					unused += c.Len
				}
				return nil
			})
			if unused != st.UnusedBytes {
				t.Errorf("reader sees %d unused bytes, writer recorded %d", unused, st.UnusedBytes)
			}
		})
	}
}

// A chain: full, then an incremental that refers to the full's chunks and
// stores only what changed, then an incremental on it; every point reads
// back its own moment, and a point without its chain refuses to decode.
func TestChain(t *testing.T) {
	dir := t.TempDir()
	base := mixedData(16<<20, 3)
	v1 := bytes.Clone(base)
	r := rand.New(rand.NewPCG(9, 9))
	change := func(b []byte) []byte {
		b = bytes.Clone(b)
		for range 4 { // 4 × 128 KiB of new random data
			off := r.IntN(len(b) - 128<<10)
			for i := off; i < off+128<<10; i++ {
				b[i] = byte(r.Uint32())
			}
		}
		return b
	}
	v2 := change(v1)
	v3 := change(v2)
	o := WriterOptions{Compression: LevelFast, Password: []byte("pw"), KDF: testKDF}
	pw := OpenOptions{Password: func() ([]byte, error) { return []byte("pw"), nil }}
	write := func(name string, data []byte, parent *Image) (string, StreamStats) {
		path := filepath.Join(dir, name)
		wo := o
		wo.Parent = parent
		w, err := Create(path, wo)
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}}); err != nil {
			t.Fatal(err)
		}
		return path, st
	}
	open := func(path string, chain ...*Image) *Image {
		im, err := Open(path, pw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { im.Close() })
		if len(chain) > 0 {
			if err := im.AttachChain(chain); err != nil {
				t.Fatal(err)
			}
		}
		return im
	}
	readAll := func(im *Image) []byte {
		sr, err := im.Stream(0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, sr.Size())
		if _, err := sr.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return b
	}
	p1, _ := write("full.lbi", v1, nil)
	full := open(p1)
	p2, st2 := write("inc1.lbi", v2, full)
	if st2.ParentChunks == 0 || st2.Records > 8 {
		t.Errorf("incremental stored %d records and referred to %d of the full's; want few stored, most referred", st2.Records, st2.ParentChunks)
	}
	inc1 := open(p2, full)
	if got := inc1.Chain(); len(got) != 1 || got[0] != full.UUID() || inc1.Info().ParentUUID != full.UUID() {
		t.Errorf("chain %v, parent %s", got, inc1.Info().ParentUUID)
	}
	p3, _ := write("inc2.lbi", v3, inc1)
	inc2 := open(p3, full, inc1)
	for _, c := range []struct {
		im   *Image
		want []byte
	}{{full, v1}, {inc1, v2}, {inc2, v3}} {
		if !bytes.Equal(readAll(c.im), c.want) {
			t.Errorf("%s does not read back its moment", c.im.Name)
		}
	}
	// Without its chain attached, a point names what is missing.
	lone := open(p3)
	sr, _ := lone.Stream(0)
	_, err := sr.ReadAt(make([]byte, sr.Size()), 0)
	if !errors.Is(err, ErrChainMissing) {
		t.Errorf("reading without the chain: %v", err)
	}
	if err := lone.AttachChain([]*Image{inc1, full}); err == nil {
		t.Error("a chain in the wrong order was accepted")
	}
}

// Patches: an incremental whose chunks changed in a few 4 KiB blocks stores
// those blocks only, and reads back exactly — also with used ranges of odd
// lengths and short gaps, where chunks do not start on 4 KiB boundaries.
func TestPatchedIncremental(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 5))
	v1 := make([]byte, 12<<20)
	for i := range v1 {
		v1[i] = byte(r.Uint32())
	}
	// Short gaps (stored as zeros) and a long one (unused) before changes.
	used := []Range{{0, 512}, {4096, 1<<20 + 512}, {1<<20 + 8192, 3 << 20}, {5 << 20, 3<<20 - 512}, {10 << 20, 2<<20 - 4096}}
	v2 := bytes.Clone(v1)
	for _, off := range []int{6000, 1<<20 + 20000, 3 << 20, 6<<20 + 77, 11<<20 + 5000} {
		for i := off; i < off+3000; i++ {
			v2[i] ^= 0x5a
		}
	}
	write := func(name string, data []byte, parent *Image) (string, StreamStats) {
		p := filepath.Join(dir, name)
		w, err := Create(p, WriterOptions{ChunkSize: 64 << 10, Compression: LevelFast, Parent: parent})
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{Used: used})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindPartition}}}); err != nil {
			t.Fatal(err)
		}
		return p, st
	}
	p1, _ := write("full.lbi", v1, nil)
	full, err := Open(p1, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	p2, st := write("inc.lbi", v2, full)
	inc, err := Open(p2, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	if err := inc.AttachChain([]*Image{full}); err != nil {
		t.Fatal(err)
	}
	if err := inc.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	// 28,720 bytes: five patches of one or two blocks. One chunk stored
	// whole (64 KiB of random bytes) instead of patched would pass 40 KiB.
	if st.Stored > 40<<10 {
		t.Errorf("the incremental stored %d bytes for 15000 changed bytes", st.Stored)
	}
	sr, _ := inc.Stream(0)
	got := make([]byte, len(v2))
	if _, err := sr.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for _, u := range used {
		if !bytes.Equal(got[u.Off:u.Off+u.Len], v2[u.Off:u.Off+u.Len]) {
			t.Fatalf("used range %d+%d reads back wrong", u.Off, u.Len)
		}
	}
}

// Reads of a zstd record with a content checksum let the decoder's check
// of it stand in for SHA-256; records without one (older images) and
// check (full) still compare SHA-256; a wrong checksum is refused.
func TestReadsCheckTheFrameChecksum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.lbi")
	writeImage(t, path, [][]byte{mixedData(4<<20, 9)}, WriterOptions{ChunkSize: 64 << 10, Compression: LevelNormal})
	im, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	old, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
	n := 0
	for i := range im.x.Records {
		r := im.x.Records[i]
		if r.Codec != CodecZstd {
			continue
		}
		n++
		stored := make([]byte, r.Len)
		if _, err := im.src.ReadAt(stored, r.Off); err != nil {
			t.Fatal(err)
		}
		if !frameChecksummed(stored) {
			t.Fatalf("record %d: the writer made a frame without a content checksum", i)
		}
		plain, err := im.open(&r, "x", bytes.Clone(stored), nil, checkRead)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		bad := bytes.Clone(stored)
		bad[len(bad)-1] ^= 1 // the checksum's last byte
		if _, err := im.open(&r, "x", bad, nil, checkRead); err == nil {
			t.Fatalf("record %d: a wrong frame checksum was not caught", i)
		}
		wrongSum := r
		wrongSum.Sum[0] ^= 1
		if _, err := im.open(&wrongSum, "x", bytes.Clone(stored), nil, checkRead); err != nil {
			t.Fatalf("record %d: a read with a frame checksum compared SHA-256 anyway: %v", i, err)
		}
		if _, err := im.open(&wrongSum, "x", bytes.Clone(stored), nil, checkThorough); err == nil {
			t.Fatalf("record %d: a full check did not compare SHA-256", i)
		}
		// An older writer's frame (no checksum): SHA-256 decides.
		legacy := old.EncodeAll(plain, nil)
		if frameChecksummed(legacy) {
			t.Fatal("a frame without checksum looks checksummed")
		}
		if _, err := im.open(&r, "x", legacy, nil, checkRead); err != nil {
			t.Fatalf("record %d in an older image's form: %v", i, err)
		}
		if _, err := im.open(&wrongSum, "x", old.EncodeAll(plain, nil), nil, checkRead); err == nil {
			t.Fatalf("record %d: without a frame checksum a wrong SHA-256 went unnoticed", i)
		}
	}
	if n == 0 {
		t.Fatal("no compressed records to test")
	}
	// After a Verify passed, reads rely on it (restore's second pass: the
	// bytes, CRC-checked again, are those it checked), but a Verify never
	// does: a second one checks the frame checksums again.
	if err := im.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range im.x.Records {
		r := im.x.Records[i]
		if r.Codec != CodecZstd {
			continue
		}
		bad := make([]byte, r.Len)
		if _, err := im.src.ReadAt(bad, r.Off); err != nil {
			t.Fatal(err)
		}
		bad[len(bad)-1] ^= 1
		if _, err := im.open(&r, "x", bytes.Clone(bad), nil, checkRead); err != nil {
			t.Fatalf("record %d: a read after a passed Verify checked the frame checksum again: %v", i, err)
		}
		if _, err := im.open(&r, "x", bad, nil, checkVerify); err == nil {
			t.Fatalf("record %d: a Verify after a passed Verify did not check the frame checksum", i)
		}
		break
	}
}
