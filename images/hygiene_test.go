package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// craftKDF returns a small encrypted image (password "pw") whose header
// asks for another Argon2id cost: what an attacker hands a rescue machine.
// The header keeps its length (the tool version absorbs the difference),
// so everything before the key derivation still checks out.
func craftKDF(t testing.TB, time, memKiB uint32, threads uint8) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewStreamWriter(&buf, "crafted", WriterOptions{ChunkSize: 64 << 10, Password: []byte("pw"), KDF: testKDF, ToolVersion: strings.Repeat("v", 40)})
	if err != nil {
		t.Fatal(err)
	}
	data := mixedData(200<<10, 9)
	if _, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	hl, err := headerLen(b)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b[headerFixed : hl-sha256.Size])
	old := fmt.Sprintf(`"time":%d,"memory_kib":%d,"threads":4`, testKDF.Time, testKDF.MemKiB)
	repl := fmt.Sprintf(`"time":%d,"memory_kib":%d,"threads":%d`, time, memKiB, threads)
	if !strings.Contains(body, old) {
		t.Fatalf("header body lacks %s: %s", old, body)
	}
	body = strings.Replace(body, old, repl, 1)
	body = strings.Replace(body, strings.Repeat("v", 40), strings.Repeat("v", 40-(len(repl)-len(old))), 1)
	if len(body) != hl-sha256.Size-headerFixed {
		t.Fatalf("crafted body is %d bytes, want %d", len(body), hl-sha256.Size-headerFixed)
	}
	copy(b[headerFixed:], body)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(body)))
	sum := sha256.Sum256(b[:hl-sha256.Size])
	copy(b[hl-sha256.Size:], sum[:])
	return b
}

// noArgon2 makes any Argon2id derivation fail the test: a refusal must
// come before the cost is paid, not after.
func noArgon2(t *testing.T) {
	old := argon2Key
	argon2Key = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		t.Errorf("Argon2id ran (time %d, memory %d KiB, threads %d) although the cost must be refused first", time, memory, threads)
		return make([]byte, keyLen)
	}
	t.Cleanup(func() { argon2Key = old })
}

// withMemAvailable pretends the machine has avail bytes of memory free.
func withMemAvailable(t *testing.T, avail int64) {
	old := memAvailable
	memAvailable = func() (int64, error) { return avail, nil }
	t.Cleanup(func() { memAvailable = old })
}

// Defect 6 of issue 12: an image header could ask for 16 passes over
// 1 GiB (43 s and 1.07 GB per password try), enough to kill a 256 MB
// rescue machine. The reader refuses what the writer never makes, and what
// does not fit in the memory available, before deriving anything and
// before asking for the password.
func TestKDFCostRefusedBeforeDeriving(t *testing.T) {
	cases := []struct {
		name          string
		time, mem     uint32
		threads       uint8
		avail         int64 // 0: plenty
		want          error
		wantInMessage []string
	}{
		{"huge", 16, 1 << 20, 4, 0, ErrCorrupt, []string{"crafted", "16 passes over 1.0 GiB", "at most 8 passes over 256 MiB"}},
		{"passes", MaxKDF.Time + 1, 64 << 10, 4, 0, ErrCorrupt, []string{"9 passes"}},
		{"memory", 3, MaxKDF.MemKiB + 1, 4, 0, ErrCorrupt, []string{"at most"}},
		{"threads", 3, 64 << 10, 255, 0, ErrCorrupt, []string{"255 threads"}},
		{"low-memory", 3, 128 << 10, 4, 100 << 20, ErrKDFMemory, []string{"crafted", "3 passes over 128 MiB", "100 MiB"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := craftKDF(t, c.time, c.mem, c.threads)
			noArgon2(t)
			if c.avail != 0 {
				withMemAvailable(t, c.avail)
			} else {
				withMemAvailable(t, 64<<30)
			}
			asked := false
			ask := func() ([]byte, error) { asked = true; return []byte("pw"), nil }
			im, err := OpenReaderAt(bytes.NewReader(b), int64(len(b)), "crafted", OpenOptions{Password: ask})
			if err == nil {
				im.Close()
				t.Fatal("the crafted image opened")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v is not %v", err, c.want)
			}
			for _, w := range c.wantInMessage {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
			if asked {
				t.Error("the password was asked for an image whose key cannot be derived")
			}
			// Opened locked (info), then unlocked: the same refusal.
			im, err = OpenReaderAt(bytes.NewReader(b), int64(len(b)), "crafted", OpenOptions{})
			if err != nil {
				t.Fatalf("locked open: %v", err)
			}
			defer im.Close()
			if err := im.Unlock([]byte("pw")); !errors.Is(err, c.want) {
				t.Fatalf("Unlock: %v, want %v", err, c.want)
			}
		})
	}
}

// The writer refuses a cost the reader would refuse, before the first
// byte: an image nobody can open must not be written.
func TestKDFCostWriterCap(t *testing.T) {
	for _, c := range []struct {
		name  string
		cost  KDFCost
		avail int64
	}{
		{"passes", KDFCost{Time: MaxKDF.Time + 1, MemKiB: 64}, 64 << 30},
		{"memory", KDFCost{Time: 1, MemKiB: MaxKDF.MemKiB + 1}, 64 << 30},
		{"low-memory", KDFCost{Time: 1, MemKiB: 64 << 10}, 32 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			noArgon2(t)
			withMemAvailable(t, c.avail)
			path := filepath.Join(t.TempDir(), "x.lbi")
			w, err := Create(path, WriterOptions{Password: []byte("pw"), KDF: c.cost})
			if err == nil {
				w.Abort()
				t.Fatal("the writer accepted the cost")
			}
			if !strings.Contains(err.Error(), "Argon2id") {
				t.Errorf("message does not say what the cost is: %v", err)
			}
			if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
				t.Errorf("a refused writer left %v", ents)
			}
		})
	}
	// The default and the largest allowed cost pass the checks (the
	// derivation itself is not run here).
	withMemAvailable(t, 64<<30)
	for _, cost := range []KDFCost{{}, MaxKDF} {
		if err := checkKDF("x", cost.orDefault().params()); err != nil {
			t.Errorf("cost %+v: %v", cost, err)
		}
	}
}

// MemAvailable comes from /proc/meminfo on Linux; elsewhere the probe says
// it does not know, and only the static cap applies.
func TestMemAvailable(t *testing.T) {
	n, err := memAvailable()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no memory probe here: %v", err)
	}
	if err != nil || n <= 0 {
		t.Fatalf("memAvailable = %d, %v", n, err)
	}
}
