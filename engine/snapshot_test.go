package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Random overlays over a random disk (seeded; the seed is printed): every
// read, within and across their edges, equals the disk with the overlays'
// bytes copied over it.
func TestOverlayReader(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	for range 50 {
		base := make([]byte, 1+r.IntN(1<<16))
		for i := range base {
			base[i] = byte(r.Uint32())
		}
		want := bytes.Clone(base)
		var ov []overlay
		for pos := int64(r.IntN(100)); pos < int64(len(base)); {
			size := 1 + r.Int64N(int64(len(base))/4+1)
			size = min(size, int64(len(base))-pos)
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			ov = append(ov, overlay{start: pos, size: size, r: bytes.NewReader(b)})
			copy(want[pos:], b)
			pos += size + r.Int64N(500)
		}
		r.Shuffle(len(ov), func(i, j int) { ov[i], ov[j] = ov[j], ov[i] })
		o := newOverlayReader(bytes.NewReader(base), ov)
		for range 200 {
			off := r.Int64N(int64(len(base)))
			n := r.IntN(len(base) - int(off) + 1)
			p := make([]byte, n)
			got, err := o.ReadAt(p, off)
			if got != n || !bytes.Equal(p, want[off:off+int64(n)]) || (err != nil && !errors.Is(err, io.EOF)) {
				t.Fatalf("ReadAt(%d at %d) = %d, %v; bytes equal: %v", n, off, got, err, bytes.Equal(p[:got], want[off:off+int64(got)]))
			}
		}
	}
}

// fakeSnapshots stands in for VSS (there is no Windows here): each
// volume's snapshot is the bytes given, or fails; it counts what it took
// and released.
type fakeSnapshots struct {
	frozen map[string][]byte
	fail   map[string]error
	mu     sync.Mutex
	taken  int
	freed  int
	// onTake runs after a snapshot is taken, onRead at its first read.
	onTake, onRead func()
}

type readHook struct {
	io.ReaderAt
	once *sync.Once
	f    func()
}

func (r readHook) ReadAt(p []byte, off int64) (int, error) {
	if r.f != nil {
		r.once.Do(r.f)
	}
	return r.ReaderAt.ReadAt(p, off)
}

func (f *fakeSnapshots) Snapshot(ctx context.Context, name string) (io.ReaderAt, int64, func() error, error) {
	if err := f.fail[name]; err != nil {
		return nil, 0, nil, err
	}
	f.mu.Lock()
	f.taken++
	f.mu.Unlock()
	if f.onTake != nil {
		f.onTake()
	}
	b := f.frozen[name]
	r := readHook{bytes.NewReader(b), &sync.Once{}, f.onRead}
	return r, int64(len(b)), func() error { f.mu.Lock(); f.freed++; f.mu.Unlock(); return nil }, nil
}

// withSnapshots makes Backup see the volumes vols on any source and
// snapshot them with f, as on a live Windows disk.
func withSnapshots(t *testing.T, f *fakeSnapshots, vols []blockdev.MountedVolume, volErr error) {
	oldS, oldV := platformSnapshotter, mountedVolumes
	platformSnapshotter = f
	mountedVolumes = func(string) ([]blockdev.MountedVolume, error) { return vols, volErr }
	t.Cleanup(func() { platformSnapshotter, mountedVolumes = oldS, oldV })
}

func TestBackupReadsSnapshots(t *testing.T) {
	const mib = 1 << 20
	dir := t.TempDir()
	live := make([]byte, 8*mib)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range live {
		live[i] = byte(r.Uint32())
	}
	disk := filepath.Join(dir, "disk.img")
	os.WriteFile(disk, live, 0o644)
	// C: at 1–3 MiB, D: at 4–6 MiB; the snapshots hold what the volumes
	// held when the backup started (here: other bytes than the disk has
	// now, so that the image shows which was read).
	frozenC, frozenD := bytes.Repeat([]byte("C-frozen"), 2*mib/8), bytes.Repeat([]byte("D-frozen"), 2*mib/8)
	vols := []blockdev.MountedVolume{
		{Name: `\\?\Volume{c}\`, Paths: []string{`C:\`}, Start: 1 * mib, Size: 2 * mib},
		{Name: `\\?\Volume{d}\`, Paths: []string{`D:\`}, Start: 4 * mib, Size: 2 * mib},
	}
	restore := func(t *testing.T, img string) []byte {
		out := img + ".img"
		if _, err := Restore(context.Background(), RestoreOptions{Image: img, Target: out}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		return b
	}

	// Both volumes snapshotted; or D: is FAT, of which VSS takes no
	// snapshot: it is read live, and the result says so.
	for _, tc := range []struct {
		name   string
		fail   error  // D:'s snapshot
		frozen int    // volumes read from snapshots
		says   string // in the result's warnings
	}{
		{"both", nil, 2, `volume D:\ was read from a snapshot`},
		{"one-fails", errors.New("VSS: the volume's filesystem does not support shadow copies"), 1,
			`no snapshot of D:\ (VSS: the volume's filesystem does not support shadow copies): read live`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSnapshots{frozen: map[string][]byte{vols[0].Name: frozenC, vols[1].Name: frozenD}}
			if tc.fail != nil {
				f.fail = map[string]error{vols[1].Name: tc.fail}
			}
			withSnapshots(t, f, vols, nil)
			img := filepath.Join(t.TempDir(), "x.lbi")
			res, err := Backup(context.Background(), BackupOptions{Source: disk, Kind: images.KindDisk, Output: img})
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Clone(live)
			copy(want[1*mib:], frozenC)
			if tc.fail == nil {
				copy(want[4*mib:], frozenD)
			}
			if !bytes.Equal(restore(t, img), want) {
				t.Errorf("the image does not hold the snapshots' bytes where the volumes lie and the disk's elsewhere")
			}
			if f.taken != tc.frozen || f.freed != tc.frozen {
				t.Errorf("snapshots taken %d, released %d; want %d", f.taken, f.freed, tc.frozen)
			}
			if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, `volume C:\ was read from a snapshot`) || !strings.Contains(w, tc.says) {
				t.Errorf("warnings do not say what was read how:\n%s", w)
			}
		})
	}

	for _, when := range []string{"snapshotting", "reading"} {
		t.Run("cancelled-while-"+when, func(t *testing.T) {
			// Ctrl-C while the snapshots are taken, or while they are
			// read: no image, every snapshot taken released.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &fakeSnapshots{frozen: map[string][]byte{vols[0].Name: frozenC, vols[1].Name: frozenD}, onTake: cancel}
			if when == "reading" {
				f.onTake, f.onRead = nil, cancel
			}
			withSnapshots(t, f, vols, nil)
			img := filepath.Join(t.TempDir(), "x.lbi")
			_, err := Backup(ctx, BackupOptions{Source: disk, Kind: images.KindDisk, Output: img})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want cancelled", err)
			}
			if m, _ := filepath.Glob(img + "*"); len(m) > 0 {
				t.Errorf("a cancelled backup left %v", m)
			}
			if f.taken == 0 || f.freed != f.taken {
				t.Errorf("snapshots taken %d, released %d", f.taken, f.freed)
			}
		})
	}

	t.Run("volumes-unknown", func(t *testing.T) {
		// The volumes cannot be listed (e.g. one spans disks): refused
		// before the image is created.
		withSnapshots(t, &fakeSnapshots{}, nil, fmt.Errorf("volumes E:\\ span several disks"))
		img := filepath.Join(t.TempDir(), "x.lbi")
		_, err := Backup(context.Background(), BackupOptions{Source: disk, Kind: images.KindDisk, Output: img})
		if err == nil || !strings.Contains(err.Error(), "span several disks") {
			t.Fatalf("err = %v", err)
		}
		if m, _ := filepath.Glob(img + "*"); len(m) > 0 {
			t.Errorf("files left: %v", m)
		}
	})
}
