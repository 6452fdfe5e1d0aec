//go:build linux

package qemu

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
		want []string // must appear in this order, among others
	}{
		{"virtio", Options{Disks: []Disk{{Path: "a.img", Bus: Virtio, Serial: "S1"}}},
			[]string{"-drive", "file=a.img,if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0,serial=S1"}},
		{"ahci", Options{Disks: []Disk{{Path: "a.img", Bus: AHCI}, {Path: "b.img", Bus: AHCI, ReadOnly: true}}},
			[]string{"-device", "ich9-ahci,id=ahci",
				"-drive", "file=a.img,if=none,id=d0,format=raw", "-device", "ide-hd,drive=d0,bus=ahci.0",
				"-drive", "file=b.img,if=none,id=d1,format=raw,snapshot=on", "-device", "ide-hd,drive=d1,bus=ahci.1"}},
		{"nvme gets a serial", Options{Disks: []Disk{{Path: "a.img", Bus: NVMe, ReadOnly: true}}},
			[]string{"-drive", "file=a.img,if=none,id=d0,format=raw,readonly=on", "-device", "nvme,drive=d0,serial=lifeboat0"}},
		{"usb", Options{Disks: []Disk{{Path: "a,b.img", Bus: USB, Serial: "U"}}},
			[]string{"-device", "qemu-xhci,id=xhci",
				"-drive", "file=a,,b.img,if=none,id=d0,format=raw", "-device", "usb-storage,drive=d0,bus=xhci.0,serial=U"}},
		{"ide", Options{Disks: []Disk{{Path: "a.img", Bus: IDE}, {Path: "b.img", Bus: IDE}, {Path: "c.img", Bus: IDE}}},
			[]string{"ide-hd,drive=d0,bus=ide.0,unit=0", "ide-hd,drive=d1,bus=ide.0,unit=1", "ide-hd,drive=d2,bus=ide.1,unit=0"}},
		{"bad sectors", Options{Disks: []Disk{{Path: "a,b.img", Bus: Virtio, ReadOnly: true, BadSectors: []SectorRange{{20003, 2}, {7, 1}}}}},
			[]string{"-drive", "if=none,id=d0,format=raw,file.driver=blkdebug,file.image.driver=file,file.image.filename=a,,b.img" +
				",file.inject-error.0.event=read_aio,file.inject-error.0.iotype=read,file.inject-error.0.errno=5,file.inject-error.0.sector=20003" +
				",file.inject-error.1.event=read_aio,file.inject-error.1.iotype=read,file.inject-error.1.errno=5,file.inject-error.1.sector=20004" +
				",file.inject-error.2.event=read_aio,file.inject-error.2.iotype=read,file.inject-error.2.errno=5,file.inject-error.2.sector=7" +
				",readonly=on", "-device", "virtio-blk-pci,drive=d0"}},
		{"defaults", Options{}, []string{"-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot", "-S", "-m", "256", "-smp", "1", "-accel", "tcg"}},
		{"nocable", Options{Net: NetNoCable}, []string{"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="}},
		{"nodhcp", Options{Net: NetNoDHCP}, []string{"-netdev", "hubport,id=net0,hubid=0", "-device", "virtio-net-pci,netdev=net0,romfile="}},
		{"q35 without entropy, pflash", Options{Machine: "q35", NoEntropy: true, Firmware: UEFIPflash, varsFile: "/tmp/v,ars.fd"},
			[]string{"-machine", "q35", "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMFCode,
				"-drive", "if=pflash,format=raw,unit=1,file=/tmp/v,,ars.fd"}},
		{"secure boot", Options{Firmware: UEFISecureBoot, varsFile: "/tmp/vars.fd"},
			[]string{"-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMFCodeSB,
				"-drive", "if=pflash,format=raw,unit=1,file=/tmp/vars.fd"}},
		{"secure boot on q35", Options{Firmware: UEFISecureBoot, Machine: "q35", varsFile: "/tmp/vars.fd"},
			[]string{"-machine", "q35,smm=on"}},
		{"entropy by default", Options{}, []string{"-device", "virtio-rng-pci"}},
		{"extra last", Options{ExtraArgs: []string{"-smp", "2"}, Net: NetUser}, []string{"virtio-net-pci,netdev=net0,romfile=", "-smp", "2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Kernel = "vmlinuz"
			got, err := tt.o.args(AccelTCG, "/tmp/qmp.sock")
			if err != nil {
				t.Fatal(err)
			}
			if !subsequence(got, tt.want) {
				t.Errorf("args\n%q\nlack, in order,\n%q", got, tt.want)
			}
		})
	}
}

func TestArgsNoNIC(t *testing.T) {
	got, err := Options{Kernel: "vmlinuz"}.args(AccelTCG, "/tmp/qmp.sock")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, "-netdev") || slices.Contains(got, "-nic") {
		t.Errorf("NetNone has a NIC: %q", got)
	}
}

func TestArgsErrors(t *testing.T) {
	seven := make([]Disk, 7)
	for i := range seven {
		seven[i] = Disk{Path: "a.img", Bus: AHCI}
	}
	for name, o := range map[string]Options{
		"no kernel":         {},
		"no path":           {Kernel: "k", Disks: []Disk{{Bus: Virtio}}},
		"seven AHCI":        {Kernel: "k", Disks: seven},
		"bad bus":           {Kernel: "k", Disks: []Disk{{Path: "a.img", Bus: Bus(42)}}},
		"bad net":           {Kernel: "k", Net: NetMode(42)},
		"empty bad range":   {Kernel: "k", Disks: []Disk{{Path: "a.img", BadSectors: []SectorRange{{5, 0}}}}},
		"too many bad":      {Kernel: "k", Disks: []Disk{{Path: "a.img", BadSectors: []SectorRange{{0, maxBadSectors + 1}}}}},
		"secure boot on pc": {Kernel: "k", Firmware: UEFISecureBoot, Machine: "pc", varsFile: "v"},
		"secure boot vars":  {Kernel: "k", Firmware: UEFISecureBoot},
	} {
		if _, err := o.args(AccelTCG, "s"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// subsequence reports whether want appears in got in order, each element
// of want matching a whole element of got.
func subsequence(got, want []string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func TestKVMProbeMatchesSource(t *testing.T) {
	for _, tool := range []string{"as", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (binutils)", tool)
		}
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "probe.o"), filepath.Join(dir, "probe.bin")
	for _, argv := range [][]string{
		{"as", "-o", obj, "testdata/kvmprobe/probe.S"},
		{"ld", "-Ttext=0x7c00", "--oformat=binary", "-e", "start", "-o", bin, obj},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	got, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 512)
	copy(want, kvmProbe)
	want[510], want[511] = 0x55, 0xaa
	if !bytes.Equal(got, want) {
		t.Fatalf("probe.S assembles to\n% x\nbut kvmProbe is\n% x", got, want)
	}
}

func TestArgsNoEntropy(t *testing.T) {
	got, err := Options{Kernel: "vmlinuz", NoEntropy: true}.args(AccelTCG, "/tmp/qmp.sock")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, "virtio-rng-pci") {
		t.Errorf("NoEntropy still gives the guest an entropy device: %q", got)
	}
	if _, err := (Options{Kernel: "vmlinuz", Firmware: UEFIPflash}).args(AccelTCG, "/tmp/qmp.sock"); err == nil {
		t.Error("UEFIPflash without a variable store copy was accepted")
	}
}
