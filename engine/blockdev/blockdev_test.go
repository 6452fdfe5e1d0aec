package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// makeFile writes a size-byte file whose bytes are their offset mod 251, so a
// misplaced read shows.
func makeFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i % 251)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openT(t *testing.T, path string, mode Mode) *Device {
	t.Helper()
	d, err := Open(path, mode)
	if err != nil {
		t.Fatalf("Open(%q, %v): %v", path, mode, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func modes() []Mode {
	ms := []Mode{ReadOnly, ReadWrite}
	if runtime.GOOS == "linux" || runtime.GOOS == "windows" {
		ms = append(ms, ReadWriteExclusive)
	}
	return ms
}

func TestOpenPlainFile(t *testing.T) {
	for _, size := range []int{0, 512, 1 << 20, 1<<20 + 3} {
		for _, mode := range modes() {
			t.Run(fmt.Sprintf("%d/%v", size, mode), func(t *testing.T) {
				p := makeFile(t, t.TempDir(), "disk.img", size)
				d := openT(t, p, mode)
				if d.Path != p || d.Size != int64(size) || d.SectorSize != 512 || d.IsBlock || d.Mode() != mode {
					t.Errorf("got Path=%q Size=%d SectorSize=%d IsBlock=%v Mode=%v, want %q %d 512 false %v",
						d.Path, d.Size, d.SectorSize, d.IsBlock, d.Mode(), p, size, mode)
				}
			})
		}
	}
}

func TestReadWriteAt(t *testing.T) {
	const size = 64 << 10
	p := makeFile(t, t.TempDir(), "disk.img", size)
	d := openT(t, p, ReadWrite)

	tests := []struct {
		name  string
		off   int64
		n     int
		wantN int  // bytes written and read back
		short bool // WriteAt must fail: past the end
	}{
		{"first sector", 0, 512, 512, false},
		{"unaligned middle", 12345, 1000, 1000, false},
		{"up to the end", size - 100, 100, 100, false},
		{"across the end", size - 100, 300, 100, true},
		{"past the end", size + 512, 512, 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := bytes.Repeat([]byte{byte(0xA0 + i)}, tt.n)
			n, err := d.WriteAt(buf, tt.off)
			if n != tt.wantN || (err != nil) != tt.short {
				t.Fatalf("WriteAt(%d bytes, %d) = %d, %v; want %d, error %v", tt.n, tt.off, n, err, tt.wantN, tt.short)
			}
			if tt.short && (!strings.Contains(err.Error(), p) || !errors.Is(err, io.ErrShortWrite)) {
				t.Errorf("WriteAt past the end: %v; want the path and io.ErrShortWrite", err)
			}
			got := make([]byte, tt.n)
			n, err = d.ReadAt(got, tt.off)
			if n != tt.wantN {
				t.Fatalf("ReadAt = %d, %v; want %d", n, err, tt.wantN)
			}
			if n < tt.n && err != io.EOF {
				t.Errorf("short ReadAt error = %v, want io.EOF", err)
			}
			if !bytes.Equal(got[:n], buf[:n]) {
				t.Errorf("read back differs from what was written")
			}
		})
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := d.DropCache(); err != nil {
		t.Fatal(err)
	}
	// Plain files never grow past the size they had when opened.
	if fi, err := os.Stat(p); err != nil || fi.Size() != size {
		t.Errorf("file size after writes = %v, %v; want %d", fi.Size(), err, size)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	p := makeFile(t, t.TempDir(), "disk.img", 4096)
	d := openT(t, p, ReadOnly)
	if n, err := d.WriteAt([]byte{1}, 0); n != 0 || err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("WriteAt on ReadOnly = %d, %v; want an error naming %s", n, err, p)
	}
	if err := d.Zero(); err == nil {
		t.Errorf("Zero on ReadOnly succeeded")
	}
}

func TestZero(t *testing.T) {
	const size = 1<<20 + 512
	p := makeFile(t, t.TempDir(), "disk.img", size)
	d := openT(t, p, ReadWrite)
	if err := d.Zero(); err != nil {
		t.Fatal(err)
	}
	if d.Size != size {
		t.Errorf("Size after Zero = %d, want %d", d.Size, size)
	}
	got, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || !bytes.Equal(got, make([]byte, size)) {
		t.Errorf("after Zero read %d bytes, not all zero", len(got))
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != size {
		t.Errorf("file size after Zero = %v, %v; want %d", fi.Size(), err, size)
	}
}

func TestTruncate(t *testing.T) {
	p := makeFile(t, t.TempDir(), "disk.img", 4096)
	d := openT(t, p, ReadWrite)
	if err := d.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 8192 || d.Size != 8192 {
		t.Errorf("after Truncate(8192): file %v (%v), Size %d", fi.Size(), err, d.Size)
	}
	if n, err := d.WriteAt(make([]byte, 512), 8192-512); n != 512 || err != nil {
		t.Errorf("WriteAt into the grown part = %d, %v", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.img")
	tests := []struct {
		name   string
		path   string
		mode   Mode
		is     error  // errors.Is must hold
		phrase string // the error must say what to do
	}{
		{"missing ReadOnly", missing, ReadOnly, fs.ErrNotExist, `run "lifeboat disks"`},
		{"missing ReadWrite", missing, ReadWrite, fs.ErrNotExist, `run "lifeboat disks"`},
		{"directory", dir, ReadOnly, nil, "is a directory"},
		{"unknown mode", missing, Mode(7), nil, "Mode(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(tt.path, tt.mode)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%q, %v) succeeded", tt.path, tt.mode)
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.phrase) {
				t.Errorf("error %q does not name %q and say %q", err, tt.path, tt.phrase)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created %s", missing)
	}
}

// TestOpenErrorHints checks the advice for causes a test cannot provoke
// portably (permission denied needs a non-root user).
func TestOpenErrorHints(t *testing.T) {
	tests := []struct {
		cause  error
		is     error
		phrase string
	}{
		{fs.ErrPermission, fs.ErrPermission, "run as root (or Administrator)"},
		{fs.ErrNotExist, fs.ErrNotExist, `no such disk or file; run "lifeboat disks" to list disks`},
		{ErrBusy, ErrBusy, ""},
	}
	for _, tt := range tests {
		t.Run(tt.cause.Error(), func(t *testing.T) {
			err := openError("/dev/sdx", &fs.PathError{Op: "open", Path: "/dev/sdx", Err: tt.cause})
			if !errors.Is(err, tt.is) || !strings.HasPrefix(err.Error(), "open /dev/sdx: ") || !strings.Contains(err.Error(), tt.phrase) {
				t.Errorf("openError = %q; want errors.Is %v and %q", err, tt.is, tt.phrase)
			}
		})
	}
}

func TestHoldsFiles(t *testing.T) {
	dir := t.TempDir()
	img := makeFile(t, dir, "disk.img", 4096)
	other := makeFile(t, dir, "other.img", 4096)
	link := filepath.Join(dir, "link.img")
	if err := os.Link(img, link); err != nil {
		t.Logf("no hard links here: %v", err)
		link = img
	}
	tests := []struct {
		name string
		file string
		want bool
	}{
		{"same file", img, true},
		{"same file by another name", link, true},
		{"different file", other, false},
		{"file in the image's directory, not yet made", filepath.Join(dir, "out", "backup.lbi"), false},
		{"the image's directory", dir, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Holds(img, tt.file)
			if err != nil || got != tt.want {
				t.Errorf("Holds(%q, %q) = %v, %v; want %v", img, tt.file, got, err, tt.want)
			}
		})
	}
	if _, err := Holds(filepath.Join(dir, "missing.img"), img); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Holds on a missing device: %v, want fs.ErrNotExist", err)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ReadOnly: "ReadOnly", ReadWrite: "ReadWrite", ReadWriteExclusive: "ReadWriteExclusive", Mode(9): "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
