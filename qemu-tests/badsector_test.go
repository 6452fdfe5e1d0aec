//go:build linux

package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// badSectors are the source disk's unreadable spots. Neither range starts
// or ends on a 4 KiB boundary, and the second one straddles one, so a
// rescue that only narrows reads down to pages reports too much.
var badSectors = []qemu.SectorRange{{Start: 20003, Count: 3}, {Start: 50004, Count: 8}}

const badDiskSize = 32 << 20

// TestBadSectorRescue backs up a disk with unreadable sectors (QEMU's
// blkdebug driver fails every read that touches them) inside the rescue
// environment. With --rescue the backup completes and records exactly the
// bad ranges, and a restore reproduces everything else; without it the
// backup stops and names the device and the offset.
func TestBadSectorRescue(t *testing.T) {
	bundle := needRescueVM(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	want := make([]byte, badDiskSize)
	rng := rand.New(rand.NewChaCha8([32]byte{'l', 'i', 'f', 'e', 'b', 'o', 'a', 't'}))
	for i := 0; i < len(want); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			want[i+j] = byte(v >> (8 * j))
		}
	}
	writeFile(t, src, string(want))
	target := sparse(t, filepath.Join(dir, "target.img"), badDiskSize)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	vm, err := qemu.Start(ctx, qemu.Options{
		Kernel: filepath.Join(bundle, "vmlinuz"),
		Initrd: filepath.Join(bundle, "initramfs"),
		// The test types commands at the lifeboat> prompt, not the text UI.
		Append: "console=ttyS0,115200 quiet panic=-1 lifeboat.ui=prompt",
		// The image is written to /tmp, in RAM: 32 MiB of random data
		// does not compress.
		MemoryMB: 512,
		Disks: []qemu.Disk{
			{Path: src, Bus: qemu.Virtio, Serial: "LB-SOURCE", ReadOnly: true, BadSectors: badSectors},
			{Path: target, Bus: qemu.Virtio, Serial: "LB-TARGET"},
		},
		Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.Expect(`LIFEBOAT-READY`, bootTimeout); err != nil {
		t.Fatal(err)
	}
	srcDev, tgtDev := guestDisk(t, vm, "LB-SOURCE"), guestDisk(t, vm, "LB-TARGET")
	if _, err := vm.Expect(`lifeboat> $`, time.Minute); err != nil {
		t.Fatal(err)
	}
	con := &promptConsole{t: t, vm: vm}

	// Without --rescue the first bad sector stops the backup, and the
	// message says where. This also proves the injection works: the same
	// command reads the whole disk without error when nothing is injected.
	t.Run("without rescue", func(t *testing.T) {
		out, code := con.run("backup disk " + srcDev + " -o /tmp/bad2.lbi --sector-by-sector --compression fast")
		if code == 0 {
			t.Fatalf("a backup of a disk with unreadable sectors succeeded without --rescue:\n%s", out)
		}
		if !strings.Contains(out, srcDev) {
			t.Errorf("the error does not name the device %s:\n%s", srcDev, out)
		}
		m := regexp.MustCompile(`offset[ =:]*(0x[0-9a-fA-F]+|\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the error names no offset:\n%s", out)
		}
		off, _ := strconv.ParseInt(m[1], 0, 64)
		// The failing read holds the first bad sector; the engine reads
		// at most 16 MiB (the largest chunk) at once.
		first := badSectors[0]
		if off%512 != 0 || off > first.Offset()+first.Length()-512 || off <= first.Offset()-16<<20 {
			t.Errorf("the error names offset %d, but the first unreadable range is %d+%d:\n%s", off, first.Offset(), first.Length(), out)
		} else if off < first.Offset() {
			t.Logf("the error names offset %d, the start of the failed read; the first bad byte is at %d", off, first.Offset())
		}
	})

	rescued := t.Run("with rescue", func(t *testing.T) {
		out, code := con.run("backup disk " + srcDev + " -o /tmp/bad.lbi --rescue --compression fast")
		if code != 0 {
			t.Fatalf("backup --rescue failed (exit %d):\n%s", code, out)
		}
		if !regexp.MustCompile(`(?i)damaged|unreadable`).MatchString(out) {
			t.Errorf("backup --rescue printed no warning about the damaged ranges:\n%s", out)
		}
		out, code = con.run("info /tmp/bad.lbi")
		if code != 0 {
			t.Fatalf("info failed (exit %d):\n%s", code, out)
		}
		var got []qemu.SectorRange
		for _, m := range regexp.MustCompile(`(?im)^\s*damaged:\s*(\d+)\+(\d+)\b`).FindAllStringSubmatch(out, -1) {
			off, _ := strconv.ParseInt(m[1], 10, 64)
			n, _ := strconv.ParseInt(m[2], 10, 64)
			got = append(got, qemu.SectorRange{Start: off / 512, Count: n / 512})
			if off%512 != 0 || n%512 != 0 {
				t.Errorf("damaged range %s+%s is not in whole sectors", m[1], m[2])
			}
		}
		if !slices.Equal(got, badSectors) {
			t.Errorf("info lists damaged sectors %v, want exactly %v:\n%s", got, badSectors, out)
		}
		out, code = con.run("info --json /tmp/bad.lbi")
		if code != 0 {
			t.Fatalf("info --json failed (exit %d):\n%s", code, out)
		}
		if got, err := jsonDamaged(out); err != nil {
			t.Errorf("info --json: %v:\n%s", err, out)
		} else if !slices.Equal(got, badSectors) {
			t.Errorf("info --json lists damaged sectors %v, want exactly %v:\n%s", got, badSectors, out)
		}
		out, code = con.run("restore /tmp/bad.lbi --target " + tgtDev + " --yes")
		if code != 0 {
			t.Fatalf("restore failed (exit %d):\n%s", code, out)
		}
	})

	if _, err := con.send("poweroff"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(time.Minute); err != nil {
		t.Fatalf("the VM did not power off: %v", err)
	}
	if !rescued {
		return
	}
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	// Zeros where the source could not be read, the source elsewhere.
	for _, r := range badSectors {
		clear(want[r.Offset() : r.Offset()+r.Length()])
	}
	if len(got) != len(want) {
		t.Fatalf("the target is %d bytes, want %d", len(got), len(want))
	}
	var diff []qemu.SectorRange // runs of differing sectors
	for s := int64(0); s < badDiskSize/512; s++ {
		if bytes.Equal(got[s*512:(s+1)*512], want[s*512:(s+1)*512]) {
			continue
		}
		if n := len(diff); n > 0 && diff[n-1].Start+diff[n-1].Count == s {
			diff[n-1].Count++
		} else {
			diff = append(diff, qemu.SectorRange{Start: s, Count: 1})
		}
	}
	if len(diff) > 0 {
		t.Errorf("the restored target differs from the source (with zeros where unreadable) in sectors (start+count) %v", diff)
	}
}

// guestDisk returns the device the rescue environment lists with serial.
func guestDisk(t *testing.T, vm *qemu.VM, serial string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^disk: (/dev/\S+) .*serial=` + regexp.QuoteMeta(serial) + `\b`)
	if m := re.FindStringSubmatch(vm.Console()); m != nil {
		return m[1]
	}
	m, err := vm.Expect(re.String(), time.Minute)
	if err != nil {
		t.Fatalf("the rescue environment lists no disk with serial %s: %v", serial, err)
	}
	return m[1]
}

// promptConsole types commands at the rescue environment's `lifeboat> `
// prompt, which runs each as a lifeboat command and prints "(exit status
// N)" when one fails.
type promptConsole struct {
	t  *testing.T
	vm *qemu.VM
}

// commandTimeout is generous: everything runs under TCG.
const commandTimeout = 8 * time.Minute

// send types line and returns what the console showed until the next
// prompt.
func (c *promptConsole) send(line string) (string, error) {
	before := c.vm.Console()
	if err := c.vm.Send(line + "\n"); err != nil {
		return "", err
	}
	if line == "poweroff" {
		return "", nil
	}
	if _, err := c.vm.Expect(`lifeboat> $`, commandTimeout); err != nil {
		return "", err
	}
	out := strings.TrimPrefix(c.vm.Console(), before)
	return strings.TrimSuffix(out, "lifeboat> "), nil
}

// run types a lifeboat command and returns its output and exit status.
func (c *promptConsole) run(cmd string) (string, int) {
	c.t.Helper()
	out, err := c.send(cmd)
	if err != nil {
		c.t.Fatalf("%s: %v", cmd, err)
	}
	if m := regexp.MustCompile(`(?m)^\(exit status (\d+)\)$`).FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		return out, n
	}
	if strings.Contains(out, "(signal:") || strings.Contains(out, "(exec:") {
		return out, -1
	}
	return out, 0
}

// jsonDamaged finds the JSON document in out and collects every
// "damaged":[{"offset":N,"length":N}] in it, in order, as sector ranges.
func jsonDamaged(out string) ([]qemu.SectorRange, error) {
	i, j := strings.IndexByte(out, '{'), strings.LastIndexByte(out, '}')
	if i < 0 || j < i {
		return nil, fmt.Errorf("no JSON object in the output")
	}
	var doc any
	if err := json.Unmarshal([]byte(out[i:j+1]), &doc); err != nil {
		return nil, err
	}
	var got []qemu.SectorRange
	found := false
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if strings.EqualFold(k, "damaged") {
					found = true
					list, _ := v[k].([]any)
					for _, e := range list {
						m, _ := e.(map[string]any)
						off, ok1 := m["offset"].(float64)
						n, ok2 := m["length"].(float64)
						if !ok1 || !ok2 || int64(off)%512 != 0 || int64(n)%512 != 0 {
							return fmt.Errorf("damaged entry %v is not {offset, length} in whole sectors", e)
						}
						got = append(got, qemu.SectorRange{Start: int64(off) / 512, Count: int64(n) / 512})
					}
					continue
				}
				if err := walk(v[k]); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf(`no "damaged" member`)
	}
	return got, nil
}
