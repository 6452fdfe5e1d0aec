//go:build linux

package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readyTimeout is how long the test initramfs may take to print HARNESS
// READY: about 37 s alone, but make test runs this package's VMs side by
// side with other packages' (TCG on 2 cores), where one took over 60 s.
const readyTimeout = 3 * time.Minute

// boot starts the test initramfs with o's disks and network and waits for
// "HARNESS READY".
func boot(t *testing.T, o Options) *VM {
	t.Helper()
	o.Kernel, o.Initrd = assets(t)
	o.Append = "console=ttyS0 quiet panic=-1"
	o.Log = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout+2*time.Minute)
	t.Cleanup(cancel)
	vm, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	if _, err := vm.Expect(`^HARNESS READY$`, readyTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("ready %.1fs after start", vm.Elapsed().Seconds())
	return vm
}

func sparse(t *testing.T, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines sends cmd and collects the submatches of item lines until a line
// matches end.
func lines(t *testing.T, vm *VM, cmd, item, end string) [][]string {
	t.Helper()
	if err := vm.Send(cmd + "\n"); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for {
		i, m, err := vm.ExpectAny(45*time.Second, item, end)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			return got
		}
		got = append(got, m)
	}
}

func TestDisksOnEveryBus(t *testing.T) {
	t.Parallel()
	const MiB = 1 << 20
	tests := []struct {
		disk   Disk
		size   int64
		prefix string // of the guest's name for it
		ro     string
	}{
		{Disk{Bus: Virtio, Serial: "LB-VIRTIO", ReadOnly: true}, 16 * MiB, "vd", "1"},
		{Disk{Bus: AHCI, Serial: "LB-AHCI"}, 24 * MiB, "sd", "0"},
		{Disk{Bus: NVMe, Serial: "LB-NVME"}, 32 * MiB, "nvme", "0"},
		{Disk{Bus: USB, Serial: "LB-USB", ReadOnly: true}, 40 * MiB, "sd", "1"},
		{Disk{Bus: IDE, Serial: "LB-IDE"}, 48 * MiB, "sd", "0"},
	}
	var disks []Disk
	for _, tt := range tests {
		d := tt.disk
		d.Path = sparse(t, d.Bus.String()+".img", tt.size)
		disks = append(disks, d)
	}
	vm := boot(t, Options{Disks: disks})
	got := map[int64][]string{} // size → DISK line submatches
	for _, m := range lines(t, vm, "disks "+strconv.Itoa(len(disks)),
		`^DISK (\S+) size=(\d+) ro=(\d) serial=(.*)$`, `^DISKS DONE$`) {
		size, _ := strconv.ParseInt(m[2], 10, 64)
		got[size] = m
	}
	for _, tt := range tests {
		t.Run(tt.disk.Bus.String(), func(t *testing.T) {
			m, ok := got[tt.size]
			if !ok {
				t.Fatalf("no disk of %d bytes in the guest", tt.size)
			}
			if name, ro, serial := m[1], m[3], m[4]; !strings.HasPrefix(name, tt.prefix) || ro != tt.ro || serial != tt.disk.Serial {
				t.Errorf("guest shows %s ro=%s serial=%q, want %s* ro=%s serial=%q", name, ro, serial, tt.prefix, tt.ro, tt.disk.Serial)
			}
		})
	}
}

// Reads that touch a bad sector fail, on every try; the sectors around
// them, and writes, work.
func TestBadSectors(t *testing.T) {
	t.Parallel()
	disk := sparse(t, "bad.img", 16<<20)
	vm := boot(t, Options{Disks: []Disk{{Path: disk, Bus: Virtio, BadSectors: []SectorRange{{20003, 3}, {30000, 1}}}}})
	for _, tt := range []struct {
		sector, count int64
		ok            bool
	}{
		{20002, 1, true}, {20003, 1, false}, {20004, 1, false}, {20005, 1, false}, {20006, 1, true},
		{20005, 1, false}, // again: the error stays
		{19996, 8, false}, // covers the range's start
		{20000, 8, false}, // 4 KiB page holding part of it
		{20005, 3, false}, {20006, 16, true},
		{29999, 1, true}, {30000, 1, false}, {30001, 1, true},
		{0, 2048, true},
	} {
		cmd := fmt.Sprintf("read vda %d %d", tt.sector, tt.count)
		want := "ok"
		if !tt.ok {
			want = "err=input/output error"
		}
		if err := vm.Send(cmd + "\n"); err != nil {
			t.Fatal(err)
		}
		m, err := vm.Expect(`^READ vda \d+ \d+ (.*)$`, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != want {
			t.Errorf("%s: %s, want %s", cmd, m[1], want)
		}
	}
}

func TestSendEcho(t *testing.T) {
	t.Parallel()
	vm := boot(t, Options{})
	const text = "hello from the host, with spaces"
	if err := vm.Send("echo " + text + "\n"); err != nil {
		t.Fatal(err)
	}
	m, err := vm.Expect(`^ECHO (.*)$`, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != text {
		t.Fatalf("guest echoed %q, want %q", m[1], text)
	}
}

func TestWaitSeesPowerOff(t *testing.T) {
	t.Parallel()
	vm := boot(t, Options{})
	if err := vm.Send("poweroff\n"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("powered off %.1fs after start", vm.Elapsed().Seconds())
	if err := vm.Send("echo too late\n"); !errors.Is(err, ErrExited) {
		t.Errorf("Send after power-off: %v, want ErrExited", err)
	}
	if _, err := vm.Expect(`never`, time.Second); !errors.Is(err, ErrExited) {
		t.Errorf("Expect after power-off: %v, want ErrExited", err)
	}
}

func TestTimeoutsQuoteTheConsole(t *testing.T) {
	t.Parallel()
	vm := boot(t, Options{})
	start := time.Now()
	_, err := vm.Expect(`^NEVER PRINTED$`, 2*time.Second)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Expect: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("Expect gave up after %v, want 2s", d)
	}
	if !strings.Contains(err.Error(), "HARNESS READY") || !strings.Contains(err.Error(), "NEVER PRINTED") {
		t.Errorf("the error quotes neither the console nor the pattern:\n%v", err)
	}
	// Wait on a guest that keeps running kills it and says so.
	err = vm.Wait(500 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed it") {
		t.Fatalf("Wait on a running guest: %v", err)
	}
	if err := vm.Send("echo\n"); !errors.Is(err, ErrExited) {
		t.Errorf("Send after the kill: %v, want ErrExited", err)
	}
}

func TestNet(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		net     NetMode
		carrier []string // per NIC
	}{
		{NetNone, nil},
		{NetNoCable, []string{"0"}},
		{NetNoDHCP, []string{"1"}},
		{NetUser, []string{"1"}},
	} {
		t.Run(tt.net.String(), func(t *testing.T) {
			t.Parallel()
			vm := boot(t, Options{Net: tt.net})
			carriers := func() []string {
				var c []string
				for _, m := range lines(t, vm, "net "+strconv.Itoa(len(tt.carrier)), `^NET (\S+) carrier=(\d*)$`, `^NET DONE$`) {
					c = append(c, m[2])
				}
				return c
			}
			if got := carriers(); !slices.Equal(got, tt.carrier) {
				t.Fatalf("carrier %q, want %q", got, tt.carrier)
			}
			if tt.net != NetNoCable {
				return
			}
			if err := vm.SetLink(true); err != nil {
				t.Fatal(err)
			}
			if got := carriers(); !slices.Equal(got, []string{"1"}) {
				t.Fatalf("after SetLink(true): carrier %q, want 1", got)
			}
		})
	}
}

// A QEMU that refuses its arguments makes Start fail with QEMU's reason.
func TestStartFailureQuotesStderr(t *testing.T) {
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skipf("%s is missing: apt-get install qemu-system-x86", Binary)
	}
	missing := filepath.Join(t.TempDir(), "missing.img")
	_, err := Start(context.Background(), Options{
		Kernel: filepath.Join(t.TempDir(), "vmlinuz"),
		Disks:  []Disk{{Path: missing, Bus: Virtio}},
		Accel:  AccelTCG,
	})
	if err == nil || !strings.Contains(err.Error(), "qemu stderr:") || !strings.Contains(err.Error(), "missing.img") {
		t.Fatalf("Start with a missing image: %v", err)
	}
	t.Log(err)
}

func TestKVMUsable(t *testing.T) {
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skipf("%s is missing: apt-get install qemu-system-x86", Binary)
	}
	start := time.Now()
	usable := KVMUsable(context.Background())
	t.Logf("KVMUsable = %v after %v", usable, time.Since(start))
	if d := time.Since(start); d > kvmProbeTimeout+2*time.Second {
		t.Errorf("the probe took %v", d)
	}
}

// TestSecureBootFirmware boots Debian's signed kernel under UEFISecureBoot
// and reads the state where the kernel reports it: the firmware has Secure
// Boot on and the kernel locked itself down. Under UEFIPflash the same
// kernel sees Secure Boot off. (OVMF hands a -kernel image over without
// checking its signature, so this proves the firmware's state, not the
// chain; qemu-tests/secureboot_test.go boots the signed chain from media.)
func TestSecureBootFirmware(t *testing.T) {
	t.Parallel()
	kernel, initrd := assets(t)
	for _, tt := range []struct {
		fw   Firmware
		want []string // in the kernel's order
	}{
		{UEFISecureBoot, []string{`Kernel is locked down from EFI Secure Boot`, `secureboot: Secure boot enabled`}},
		{UEFIPflash, []string{`secureboot: Secure boot disabled`}},
	} {
		t.Run(tt.fw.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			vm, err := Start(ctx, Options{Kernel: kernel, Initrd: initrd, Firmware: tt.fw, Machine: "q35",
				Append: "console=ttyS0 panic=-1", Log: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Kill()
			for _, re := range tt.want {
				if _, err := vm.Expect(re, 2*time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := vm.Expect(`^HARNESS READY$`, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}
