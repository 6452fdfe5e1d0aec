//go:build unix

package images

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// withUmask sets the process umask for the test (not parallel: the umask
// belongs to the process).
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Defect 6 of issue 12: images were created 0644, a whole-disk backup
// readable by every local user. Every file the writer creates — each part
// under its temporary name and its final one — has WriterOptions.Mode
// (default 0600), whatever the umask; replacing an image gives the new
// file that mode too.
func TestImageFileMode(t *testing.T) {
	// Incompressible, so that it fills several parts of the smallest split.
	data := make([]byte, 8*minLibSplit)
	rand.NewChaCha8([32]byte{6}).Read(data)
	for _, c := range []struct {
		name  string
		umask int
		mode  fs.FileMode
		want  fs.FileMode
	}{
		{"default", 0o022, 0, 0o600},
		{"default-open-umask", 0, 0, 0o600},
		{"0640", 0o022, 0o640, 0o640},
		{"0666-despite-umask", 0o077, 0o666, 0o666},
	} {
		t.Run(c.name, func(t *testing.T) {
			withUmask(t, c.umask)
			dir := t.TempDir()
			path := filepath.Join(dir, "x.lbi")
			// An older image in the way, readable by all, replaced.
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			o := WriterOptions{Compression: LevelNone, SplitSize: minLibSplit, ChunkSize: 64 << 10, Mode: c.mode, Overwrite: true}
			w, err := Create(path, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.AddStream(context.Background(), bytes.NewReader(data), int64(len(data)), StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			// Before commit: the temporary names.
			ents, _ := os.ReadDir(dir)
			partials := 0
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), partialSuffix) {
					partials++
					if m := modeOf(t, filepath.Join(dir, e.Name())); m != c.want {
						t.Errorf("%s is %04o, want %04o", e.Name(), m, c.want)
					}
				}
			}
			if partials < 2 {
				t.Fatalf("expected several temporary parts, found %d in %v", partials, ents)
			}
			if err := w.Commit(&Metadata{Streams: []Stream{{Kind: KindDisk}}}); err != nil {
				t.Fatal(err)
			}
			ents, _ = os.ReadDir(dir)
			if len(ents) < 3 {
				t.Fatalf("expected at least 3 parts, found %v", ents)
			}
			for _, e := range ents {
				if m := modeOf(t, filepath.Join(dir, e.Name())); m != c.want {
					t.Errorf("%s is %04o, want %04o", e.Name(), m, c.want)
				}
			}
		})
	}
}

// A mode that is not read/write permission bits with the owner's included
// is refused before any file is created.
func TestImageFileModeRefused(t *testing.T) {
	for _, m := range []fs.FileMode{0o755, 0o400, 0o200, 0o700, 0o4600, 0o1600, fs.ModeDir | 0o600} {
		dir := t.TempDir()
		w, err := Create(filepath.Join(dir, "x.lbi"), WriterOptions{Mode: m})
		if err == nil {
			w.Abort()
			t.Errorf("mode %v accepted", m)
			continue
		}
		if !strings.Contains(err.Error(), "0600") {
			t.Errorf("mode %v: message does not show an example: %v", m, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("mode %v: a refused writer left %v", m, ents)
		}
	}
}
