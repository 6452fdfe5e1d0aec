package fsprobe

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzProbe from freshly made filesystems")

// fsCase makes one filesystem image with a real mkfs tool.
type fsCase struct {
	name    string
	sizeMiB int64
	tool    string   // looked up in PATH, /sbin and /usr/sbin
	args    []string // the image path is appended
	want    Info     // Type and FATBits checked; Label/UUID come from blkid
}

var fsCases = []fsCase{
	{name: "ext2", sizeMiB: 16, tool: "mkfs.ext2", args: []string{"-q", "-F", "-L", "lb-ext2"}, want: Info{Type: "ext2"}},
	{name: "ext3", sizeMiB: 16, tool: "mkfs.ext3", args: []string{"-q", "-F", "-L", "lb-ext3"}, want: Info{Type: "ext3"}},
	{name: "ext4", sizeMiB: 64, tool: "mkfs.ext4", args: []string{"-q", "-F", "-L", "lb-ext4"}, want: Info{Type: "ext4"}},
	{name: "ext4-64bit-4k", sizeMiB: 64, tool: "mkfs.ext4", args: []string{"-q", "-F", "-b", "4096", "-O", "64bit,^has_journal", "-L", "lb-ext4-64"}, want: Info{Type: "ext4"}},
	{name: "vfat12", sizeMiB: 2, tool: "mkfs.vfat", args: []string{"-F", "12", "-n", "LB-FAT12"}, want: Info{Type: "vfat", FATBits: 12}},
	{name: "vfat16", sizeMiB: 32, tool: "mkfs.vfat", args: []string{"-F", "16", "-n", "LB-FAT16"}, want: Info{Type: "vfat", FATBits: 16}},
	{name: "vfat32", sizeMiB: 64, tool: "mkfs.vfat", args: []string{"-F", "32", "-n", "LB-FAT32"}, want: Info{Type: "vfat", FATBits: 32}},
	{name: "vfat32-nolabel", sizeMiB: 64, tool: "mkfs.vfat", args: []string{"-F", "32", "-s", "8"}, want: Info{Type: "vfat", FATBits: 32}},
	{name: "exfat", sizeMiB: 32, tool: "mkfs.exfat", args: []string{"-L", "lb-exfat"}, want: Info{Type: "exfat"}},
	{name: "ntfs", sizeMiB: 32, tool: "mkntfs", args: []string{"-F", "-Q", "-q", "-L", "lb-ntfs"}, want: Info{Type: "ntfs"}},
	{name: "swap", sizeMiB: 8, tool: "mkswap", args: []string{"-L", "lb-swap"}, want: Info{Type: "swap"}},
}

// makeFS creates the image for c in dir and returns its path.
func makeFS(t testing.TB, dir string, c fsCase) string {
	t.Helper()
	tool := fstest.Tool(t, c.tool)
	img := filepath.Join(dir, c.name+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(c.sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fstest.Run(t, append(append([]string{tool}, c.args...), img)...)
	return img
}

// blkid returns `blkid -p -o export` of img as a map.
func blkid(t testing.TB, img string) map[string]string {
	t.Helper()
	out := fstest.Run(t, fstest.Tool(t, "blkid"), "-p", "-o", "export", img)
	m := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

func probeFile(t testing.TB, img string) Info {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	info, err := Probe(f, fi.Size())
	if err != nil {
		t.Fatalf("Probe(%s): %v", img, err)
	}
	return info
}

func TestProbeMatchesBlkid(t *testing.T) {
	dir := t.TempDir()
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			img := makeFS(t, dir, c)
			got := probeFile(t, img)
			b := blkid(t, img)
			t.Logf("Probe: %+v", got)
			t.Logf("blkid: %v", b)

			if got.Type != c.want.Type || got.Type != b["TYPE"] {
				t.Errorf("Type = %q, want %q (blkid %q)", got.Type, c.want.Type, b["TYPE"])
			}
			if got.FATBits != c.want.FATBits {
				t.Errorf("FATBits = %d, want %d", got.FATBits, c.want.FATBits)
			}
			if got.FATBits != 0 && b["VERSION"] != fmt.Sprintf("FAT%d", got.FATBits) {
				t.Errorf("FATBits = %d, blkid VERSION %q", got.FATBits, b["VERSION"])
			}
			if got.Label != b["LABEL"] {
				t.Errorf("Label = %q, blkid %q", got.Label, b["LABEL"])
			}
			if got.UUID != b["UUID"] {
				t.Errorf("UUID = %q, blkid %q", got.UUID, b["UUID"])
			}
			if strings.HasPrefix(got.Type, "ext") && strconv.FormatInt(got.BlockSize, 10) != b["BLOCK_SIZE"] {
				t.Errorf("BlockSize = %d, blkid %q", got.BlockSize, b["BLOCK_SIZE"])
			}
			if got.Size <= 0 || got.Size > c.sizeMiB<<20 {
				t.Errorf("Size = %d, want in (0, %d]", got.Size, c.sizeMiB<<20)
			}
			switch {
			case strings.HasPrefix(got.Type, "ext"):
				checkExtAgainstDumpe2fs(t, img, got)
			case got.FATBits == 32:
				checkFAT32AgainstFsck(t, img, got)
			default:
				if got.Used != -1 {
					t.Errorf("Used = %d, want -1 (unknown) for %s", got.Used, got.Type)
				}
			}
		})
	}
}

func checkExtAgainstDumpe2fs(t *testing.T, img string, got Info) {
	out := fstest.Run(t, fstest.Tool(t, "dumpe2fs"), "-h", img)
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs -h has no %q:\n%s", name, out)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	bs, blocks, free := field("Block size"), field("Block count"), field("Free blocks")
	if got.BlockSize != bs {
		t.Errorf("BlockSize = %d, dumpe2fs %d", got.BlockSize, bs)
	}
	if got.Size != blocks*bs {
		t.Errorf("Size = %d, dumpe2fs %d×%d", got.Size, blocks, bs)
	}
	if want := (blocks - free) * bs; got.Used != want {
		t.Errorf("Used = %d, dumpe2fs (%d-%d)×%d = %d", got.Used, blocks, free, bs, want)
	}
}

// checkFAT32AgainstFsck compares Used with fsck.fat's "U/T clusters", which
// it computes by walking the FAT (mkfs.vfat writes a matching FSInfo).
func checkFAT32AgainstFsck(t *testing.T, img string, got Info) {
	out := fstest.Run(t, fstest.Tool(t, "fsck.fat"), "-n", img)
	m := regexp.MustCompile(`(\d+)/(\d+) clusters`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("fsck.fat -n: no cluster summary in %q", out)
	}
	used, _ := strconv.ParseInt(m[1], 10, 64)
	total, _ := strconv.ParseInt(m[2], 10, 64)
	want := got.Size - (total-used)*got.BlockSize
	if got.Used != want {
		t.Errorf("Used = %d, from fsck.fat %d/%d clusters of %d = %d", got.Used, used, total, got.BlockSize, want)
	}
}

func TestProbeUnknown(t *testing.T) {
	rnd := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(rnd)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", []byte("hello")},
		{"zeros", make([]byte, 1<<20)},
		{"random", rnd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Probe(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil || got != (Info{}) {
				t.Errorf("Probe = %+v, %v; want Info{}, nil", got, err)
			}
		})
	}
}

// TestProbeTruncated checks that a filesystem whose device is shorter than
// its metadata says still probes without error or panic.
func TestProbeTruncated(t *testing.T) {
	img := makeFS(t, t.TempDir(), fsCases[2])
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1024, 1100, 2048, 4096, 64 << 10} {
		got, err := Probe(bytes.NewReader(data[:n]), int64(n))
		if err != nil {
			t.Errorf("Probe(first %d bytes): %v", n, err)
		}
		if wantExt := n >= 2048; (got.Type == "ext4") != wantExt {
			t.Errorf("Probe(first %d bytes).Type = %q", n, got.Type)
		}
	}
}

type failingReader struct{}

var errDisk = errors.New("medium error")

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

func TestProbeIOError(t *testing.T) {
	_, err := Probe(failingReader{}, 1<<20)
	if !errors.Is(err, errDisk) {
		t.Fatalf("Probe on failing reader: err = %v, want it to wrap %v", err, errDisk)
	}
}

// seedBytes is how much of each image goes into the fuzz seed corpus.
const seedBytes = 64 << 10

// TestUpdateSeedCorpus regenerates testdata/fuzz/FuzzProbe with -update.
func TestUpdateSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz/FuzzProbe")
	}
	dir := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzProbe")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range fsCases {
		img := makeFS(t, dir, c)
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(io.LimitReader(f, seedBytes))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.TrimRight(data, "\x00")
		if err := os.WriteFile(filepath.Join(out, c.name), corpusFile(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// corpusFile encodes data in the "go test fuzz v1" format.
func corpusFile(data []byte) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "go test fuzz v1\n[]byte(%q)\n", data)
	w.Flush()
	return b.Bytes()
}

func FuzzProbe(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Probe(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("Probe on in-memory data: %v", err)
		}
		if info.Type == "" && info != (Info{}) {
			t.Fatalf("unknown type with fields set: %+v", info)
		}
		if info.Size < 0 || info.BlockSize < 0 || info.Used < -1 {
			t.Fatalf("negative figures: %+v", info)
		}
	})
}

// TestProbeEncrypted uses hand-made headers: cryptsetup and BitLocker are not
// among the tools the tests may install. Offsets follow the LUKS2 on-disk
// format and libblkid's bitlocker.c.
func TestProbeEncrypted(t *testing.T) {
	luks := make([]byte, 4096)
	copy(luks, "LUKS\xba\xbe\x00\x02")
	copy(luks[24:], "secret-home")
	copy(luks[168:], "6f8a1ad4-1c4e-4b4e-9d55-0c6f0f9d1b2a")
	bitlocker := make([]byte, 4096)
	copy(bitlocker, "\xeb\x58\x90-FVE-FS-")
	bitlocker[510], bitlocker[511] = 0x55, 0xAA
	for _, tc := range []struct {
		name string
		data []byte
		want Info
	}{
		{"luks2", luks, Info{Type: "crypto_LUKS", Label: "secret-home", UUID: "6f8a1ad4-1c4e-4b4e-9d55-0c6f0f9d1b2a", Used: -1}},
		{"bitlocker", bitlocker, Info{Type: "BitLocker", Used: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Probe(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil || got != tc.want {
				t.Errorf("Probe = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
