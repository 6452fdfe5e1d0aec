package images

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// v1Seed returns a format-1 image of the seed corpus: bytes written by the
// writer before format 2, not remade by this one.
func v1Seed(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzOpen", "v1-"+name))
	if err != nil {
		t.Fatal(err)
	}
	q, ok := strings.CutPrefix(strings.TrimSpace(string(f)), "go test fuzz v1\n[]byte(")
	if !ok {
		t.Fatalf("v1-%s is not a fuzz corpus file", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
	if err != nil {
		t.Fatalf("v1-%s: %v", name, err)
	}
	return []byte(s)
}

func openBytes(t *testing.T, b []byte, name string) *Image {
	t.Helper()
	im, err := OpenReaderAt(bytes.NewReader(b), int64(len(b)), name, OpenOptions{Workers: 2, Password: pw("pw")})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

// checkReads verifies im thoroughly (every chunk against its hash) and
// reads its streams back.
func checkReads(t *testing.T, im *Image, want ...[]byte) {
	t.Helper()
	if err := im.Verify(context.Background(), VerifyOptions{Thorough: true}); err != nil {
		t.Fatalf("%s: %v", im.Name, err)
	}
	if im.Streams() != len(want) {
		t.Fatalf("%s has %d streams, want %d", im.Name, im.Streams(), len(want))
	}
	for i, w := range want {
		if got := readAll(t, im, i); !bytes.Equal(got, w) {
			t.Fatalf("%s stream %d: %d bytes, not the %d written", im.Name, i, len(got), len(w))
		}
	}
}

func headerVersion(b []byte) uint16 { return binary.LittleEndian.Uint16(b[8:]) }

// TestReadsFormat1Images: images written before format 2 name chunks by
// SHA-256; they still open, verify chunk by chunk and read, and an
// incremental on such a chain keeps SHA-256 (and format 1), so its lookups
// find the parent's chunks.
func TestReadsFormat1Images(t *testing.T) {
	data, tail, changed := seedData()
	var parent *Image
	for _, k := range seedKinds {
		b := v1Seed(t, k.name)
		im := openBytes(t, b, "v1-"+k.name)
		if headerVersion(b) != 1 || im.h.hash != hashSHA256 || im.Info().ChunkHash != "SHA-256" {
			t.Fatalf("v1-%s: version %d, hash %v: not a format-1 image", k.name, headerVersion(b), im.h.hash)
		}
		checkReads(t, im, data, tail)
		if want := map[Level]string{LevelFast: "S2"}[k.o.Compression]; im.Info().Codecs != cmp.Or(want, "zstd") {
			t.Errorf("v1-%s: Info().Codecs = %q", k.name, im.Info().Codecs)
		}
		if k.name == "plain-normal" {
			parent = im
		}
	}
	old := openBytes(t, v1Seed(t, "incremental"), "v1-incremental")
	if err := old.AttachChain([]*Image{parent}); err != nil {
		t.Fatal(err)
	}
	checkReads(t, old, changed)

	var buf bytes.Buffer
	w, err := NewStreamWriter(&buf, "inc", WriterOptions{Compression: LevelNormal, Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.AddStream(context.Background(), bytes.NewReader(changed), int64(len(changed)), StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}, Point: &Point{Kind: PointIncremental}}); err != nil {
		t.Fatal(err)
	}
	if v := headerVersion(buf.Bytes()); v != 1 || bytes.Contains(buf.Bytes()[:512], []byte("chunk_hash")) {
		t.Fatalf("an incremental on a format-1 chain is format %d", v)
	}
	inc := openBytes(t, buf.Bytes(), "inc")
	if err := inc.AttachChain([]*Image{parent}); err != nil {
		t.Fatal(err)
	}
	checkReads(t, inc, changed)
	// Only the changed chunk (as a patch) and the new tail are stored:
	// the text, its copy and the old tail were found in the parent by
	// their SHA-256.
	if len(inc.x.Records) != 2 || inc.x.Records[0].Codec&CodecPatch == 0 {
		t.Fatalf("incremental on a format-1 parent stores %d records (%d bytes): its lookups missed the parent's chunks", len(inc.x.Records), st.Stored)
	}
}

// TestNewImagesAreFormat2: a new full backup names chunks by BLAKE3 and
// says so (a thorough Verify compares every chunk with it), and so does a
// point of its chain, whose lookups find the full's chunks.
func TestNewImagesAreFormat2(t *testing.T) {
	data, tail, changed := seedData()
	seeds := seedImages(t)
	b := seeds["plain-normal"]
	full := openBytes(t, b, "full")
	if headerVersion(b) != 2 || full.h.ChunkHash != "blake3" || full.Info().ChunkHash != "BLAKE3" {
		t.Fatalf("new image: version %d, chunk hash %q", headerVersion(b), full.h.ChunkHash)
	}
	checkReads(t, full, data, tail)
	b = seeds["incremental"]
	inc := openBytes(t, b, "incremental")
	if headerVersion(b) != 2 || inc.h.hash != hashBLAKE3 {
		t.Fatalf("incremental on a format-2 full: version %d, hash %v", headerVersion(b), inc.h.hash)
	}
	if err := inc.AttachChain([]*Image{full}); err != nil {
		t.Fatal(err)
	}
	checkReads(t, inc, changed)
	if len(inc.x.Records) != 2 || inc.x.Records[0].Codec&CodecPatch == 0 {
		t.Fatalf("incremental stores %d records: its lookups missed the parent's chunks", len(inc.x.Records))
	}

	// A chain whose points name chunks differently is not one chain.
	inc2 := openBytes(t, b, "incremental")
	full.h.hash = hashSHA256
	if err := inc2.AttachChain([]*Image{full}); err == nil || !strings.Contains(err.Error(), "names chunks by SHA-256") {
		t.Fatalf("a SHA-256 parent under a BLAKE3 point: %v", err)
	}
}

// TestHeaderVersionNamesTheHash: the header's version and chunk_hash must
// agree; a newer version is refused as newer, not as damage.
func TestHeaderVersionNamesTheHash(t *testing.T) {
	withVersion := func(b []byte, v uint16) []byte {
		b = bytes.Clone(b)
		hl, err := headerLen(b)
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint16(b[8:], v)
		sum := sha256.Sum256(b[:hl-sha256.Size])
		copy(b[hl-sha256.Size:], sum[:])
		return b
	}
	v2 := seedImages(t)["plain-normal"]
	v1 := v1Seed(t, "plain-normal")
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"format 1 claiming BLAKE3", withVersion(v2, 1), "its header"},
		{"format 2 without a chunk hash", withVersion(v1, 2), "its header"},
		{"format 3", withVersion(v2, 3), "format version 3 is not supported by this lifeboat (it reads versions 1 to 2); use a newer lifeboat"},
	} {
		_, err := OpenReaderAt(bytes.NewReader(c.b), int64(len(c.b)), "x", OpenOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
