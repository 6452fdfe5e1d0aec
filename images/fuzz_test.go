package images

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata")

// seedImages are small valid images of every kind the reader must handle,
// and a crafted one it must refuse cheaply.
//
// The v1-* files in the corpus are the same images written in format 1
// (SHA-256 chunk names), by the writer before format 2; -update leaves
// them alone, and TestReadsFormat1Images reads them back.
func seedImages(t testing.TB) map[string][]byte {
	data, tail, changed := seedData()
	out := map[string][]byte{}
	for _, c := range seedKinds {
		var buf bytes.Buffer
		w, err := NewStreamWriter(&buf, c.name, c.o)
		if err != nil {
			t.Fatal(err)
		}
		w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{})
		w.AddStream(context.Background(), bytes.NewReader(tail), int64(len(tail)), StreamOptions{})
		meta := &Metadata{Streams: []Stream{{Kind: KindDisk, Table: &Table{Type: "gpt", Partitions: []Partition{{Number: 1, Start: 1 << 20, Size: 1 << 20}}}}, {Kind: KindPartition}}}
		if err := w.Commit(meta); err != nil {
			t.Fatal(err)
		}
		out[c.name] = buf.Bytes()
	}
	// An incremental point: its index (LBINDEX2) carries the chain and the
	// parent's records it refers to.
	parent, err := OpenReaderAt(bytes.NewReader(out["plain-normal"]), int64(len(out["plain-normal"])), "parent", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewStreamWriter(&buf, "incremental", WriterOptions{Compression: LevelNormal, Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	w.AddStream(context.Background(), bytes.NewReader(changed), int64(len(changed)), StreamOptions{})
	if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}, Point: &Point{Kind: PointIncremental}}); err != nil {
		t.Fatal(err)
	}
	out["incremental"] = buf.Bytes()
	// Not valid: an encrypted image whose header asks for 16 Argon2id
	// passes over 1 GiB. It must be refused before the key is derived.
	out["kdf-huge"] = craftKDF(t, 16, 1<<20, 4)
	return out
}

// seedData is what the seed images hold: data (four 64 KiB chunks:
// compressible text, zeros, a duplicate of the first, and a short
// incompressible tail stored raw) and tail in two streams, and the
// incremental's one stream, changed (data and tail with one block of the
// first chunk changed: stored as a patch record).
func seedData() (data, tail, changed []byte) {
	text := bytes.Repeat([]byte("lifeboat restores disks. "), 64<<10/25+1)[:64<<10]
	tail = make([]byte, 3000)
	for i := range tail {
		tail[i] = byte(i*7919 ^ i>>3*31)
	}
	data = append(append(append(bytes.Clone(text), make([]byte, 64<<10)...), text...), tail...)
	changed = append(bytes.Clone(data), tail...)
	copy(changed[8192:], "a changed block, stored as a patch on the parent's chunk")
	return data, tail, changed
}

var seedKinds = []struct {
	name string
	o    WriterOptions
}{
	{"plain-normal", WriterOptions{ChunkSize: 64 << 10, Compression: LevelNormal}},
	{"plain-fast", WriterOptions{ChunkSize: 64 << 10, Compression: LevelFast}},
	{"aes", WriterOptions{ChunkSize: 64 << 10, Compression: LevelFast, Password: []byte("pw"), KDF: testKDF}},
	{"xchacha", WriterOptions{ChunkSize: 64 << 10, Compression: LevelHigh, Cipher: CipherXChaCha20Poly1305, Password: []byte("pw"), KDF: testKDF}},
}

// TestUpdateSeedCorpus rewrites testdata/fuzz/FuzzOpen with -update.
func TestUpdateSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for name, b := range seedImages(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to the reader: it must refuse or read,
// never panic, hang or allocate without bound.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("LIFEBOAT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := OpenReaderAt(bytes.NewReader(b), int64(len(b)), "fuzz", OpenOptions{Workers: 1, Password: pw("pw")})
		if err != nil {
			return
		}
		defer im.Close()
		_ = im.Info()
		if err := im.Verify(context.Background(), VerifyOptions{}); err != nil {
			return
		}
		for i := range im.Streams() {
			sr, err := im.Stream(i)
			if err != nil {
				t.Fatal(err)
			}
			// A verified image reads completely (a point of a chain: as
			// far as its chain, which is not here, is not needed).
			if _, err := io.Copy(io.Discard, io.NewSectionReader(sr, 0, sr.Size())); err != nil && !(len(im.Chain()) > 0 && errors.Is(err, ErrChainMissing)) {
				t.Fatalf("verified image fails to read: %v", err)
			}
		}
	})
}
