//go:build linux

package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// Binary is the QEMU that Start and KVMUsable run.
const Binary = "qemu-system-x86_64"

// Bus is the controller a disk hangs off, as the guest sees it.
type Bus int

const (
	Virtio Bus = iota // virtio-blk-pci: /dev/vdX, serial in /sys/block/vdX/serial
	AHCI              // SATA disk on an ich9-ahci controller: /dev/sdX
	NVMe              // NVMe controller with one namespace: /dev/nvmeNn1
	USB               // usb-storage on a qemu-xhci controller: /dev/sdX
	IDE               // the pc machine's PIIX IDE, at most 4 disks: /dev/sdX
)

func (b Bus) String() string {
	switch b {
	case Virtio:
		return "virtio"
	case AHCI:
		return "ahci"
	case NVMe:
		return "nvme"
	case USB:
		return "usb"
	case IDE:
		return "ide"
	}
	return "Bus(" + strconv.Itoa(int(b)) + ")"
}

// Disk is a raw image file attached to the guest.
type Disk struct {
	Path string // image file
	// Format is the image file's format for QEMU ("" is raw; qcow2,
	// vhdx).
	Format string
	Bus    Bus
	// Serial is what the guest reads as the disk's serial number. NVMe
	// needs one, so an empty Serial there becomes "lifeboatN" (N = index).
	Serial string
	// ReadOnly keeps the image file unchanged. On Virtio, NVMe and USB the
	// guest sees a read-only disk. QEMU's ATA disks (AHCI, IDE) cannot be
	// read-only; there the guest sees a writable disk whose writes QEMU
	// keeps in a temporary overlay (snapshot=on) and drops.
	ReadOnly bool
	// BadSectors make the disk fail reads like a dying one: every guest
	// read request that touches one of these 512-byte sectors fails with
	// EIO, on every try; reads that miss them, and all writes, work. QEMU's
	// blkdebug driver does it, with one inject-error rule per sector, so
	// keep the ranges to a few thousand sectors.
	BadSectors []SectorRange
}

// SectorRange is Count 512-byte sectors from sector Start.
type SectorRange struct {
	Start, Count int64
}

// Offset is where the range starts in bytes, as tools report it.
func (r SectorRange) Offset() int64 { return r.Start * 512 }

// Length is the range's size in bytes.
func (r SectorRange) Length() int64 { return r.Count * 512 }

// NetMode says what network the guest has.
type NetMode int

const (
	NetNone    NetMode = iota // no NIC at all
	NetNoCable                // a virtio-net NIC whose link is down; VM.SetLink(true) plugs it into NetUser's network
	NetNoDHCP                 // a virtio-net NIC with carrier on an empty segment: DHCP requests go unanswered
	NetUser                   // QEMU user networking (10.0.2.0/24) with its built-in DHCP server
	NetTap                    // a virtio-net NIC on Options.Tap (in Options.NetNS), with QEMU's iPXE ROM for network boot
)

// Firmware is what the VM boots with.
type Firmware int

const (
	BIOS Firmware = iota // SeaBIOS
	UEFI                 // OVMF (Debian's ovmf package) as one -bios image
	// UEFIPflash is OVMF as two flash chips, the way libvirt and real
	// boards have it: OVMFCode read-only and a private copy of OVMFVars
	// (made by Start) that the firmware may write.
	UEFIPflash
	// UEFISecureBoot is UEFIPflash with the factory state of a PC sold
	// with Windows: Debian's OVMF build with Secure Boot (OVMFCodeSB,
	// which keeps its variables behind SMM, so the machine is q35 with
	// smm=on and the flash is secure=on) and a copy of OVMFVarsMS, which
	// has Microsoft's KEK and db keys enrolled and Secure Boot enabled.
	// The firmware then runs only EFI binaries signed by a key in db
	// (shim, signed by the Microsoft UEFI CA) and refuses others with
	// "Access Denied" on the console. Machine must be "" or "q35" (Start
	// makes it q35,smm=on).
	//
	// The firmware says nothing on the serial console about the state. A
	// test reads it from the guest: the rescue environment prints
	// secureboot=1 in its LIFEBOAT-READY line (read from the SecureBoot
	// EFI variable), and Debian's kernel logs "secureboot: Secure boot
	// enabled" and "Kernel is locked down from EFI Secure Boot mode" when
	// booted without quiet.
	UEFISecureBoot
)

func (f Firmware) String() string {
	switch f {
	case UEFI:
		return "uefi"
	case UEFIPflash:
		return "uefi-pflash"
	case UEFISecureBoot:
		return "uefi-secureboot"
	}
	return "bios"
}

// OVMF is where Debian's ovmf package puts the UEFI firmware.
const OVMF = "/usr/share/ovmf/OVMF.fd"

// The split OVMF build for UEFIPflash (4 MiB flash, as Debian's libvirt uses).
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// The Secure Boot OVMF build for UEFISecureBoot: code that needs SMM, and
// variables with Microsoft's keys enrolled and Secure Boot on.
const (
	OVMFCodeSB = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFVarsMS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// varsTemplate is the variable store Start copies for f ("" if f has none).
func (f Firmware) varsTemplate() string {
	switch f {
	case UEFIPflash:
		return OVMFVars
	case UEFISecureBoot:
		return OVMFVarsMS
	}
	return ""
}

func (n NetMode) String() string {
	switch n {
	case NetNone:
		return "none"
	case NetNoCable:
		return "nocable"
	case NetNoDHCP:
		return "nodhcp"
	case NetUser:
		return "user"
	case NetTap:
		return "tap"
	}
	return "NetMode(" + strconv.Itoa(int(n)) + ")"
}

// Accel chooses QEMU's accelerator.
type Accel int

const (
	AccelAuto Accel = iota // KVM if KVMUsable, else TCG
	AccelTCG
	AccelKVM
)

func (a Accel) String() string {
	switch a {
	case AccelAuto:
		return "auto"
	case AccelTCG:
		return "tcg"
	case AccelKVM:
		return "kvm"
	}
	return "Accel(" + strconv.Itoa(int(a)) + ")"
}

// Options describe one VM: a kernel (Kernel, Initrd, Append), or what the
// firmware boots (CDROM, disks, the network with Boot "n").
type Options struct {
	Kernel, Initrd string
	Firmware       Firmware
	// CDROM is an ISO on an AHCI CD drive.
	CDROM string
	// Boot is the firmware's boot order without Kernel: "d" CD, "c" disk,
	// "n" network.
	Boot string
	// NetNS runs QEMU inside this network namespace (ip netns exec), so
	// NetTap's tap device can live on a bridge the test made there.
	NetNS string
	Tap   string // the tap device for NetTap
	MAC   string // the NIC's MAC address; QEMU's default if empty
	// NoNICROM leaves out QEMU's iPXE option ROM on NetTap, so that OVMF's
	// own network stack does the PXE boot (firmware that only does TFTP).
	NoNICROM bool
	// HTTPBoot makes OVMF boot from the network by UEFI HTTP boot (DHCP
	// option 93 = 16, a URL as boot file) instead of PXE, as a PC set to
	// "UEFI HTTP boot" does: OVMF's PXE is switched off through its
	// fw_cfg knobs, so its HTTPv4 boot option is the first that can
	// boot. With NoNICROM on NetTap, under UEFI firmware.
	HTTPBoot bool
	// Append is the kernel command line. The console is the first serial
	// port, so it needs console=ttyS0 for the kernel's and init's output.
	Append   string
	MemoryMB int // default 256
	CPUs     int // default 1
	// Machine is QEMU's machine type: "" is QEMU's default (i440fx, "pc"),
	// "q35" the PCIe chipset of most PCs sold since 2010.
	Machine string
	// NoEntropy leaves out the virtio-rng device, as on a PC whose CPU
	// has no RDRAND: the guest's kernel RNG then takes a while to be
	// ready, which nothing on a boot path may wait for.
	NoEntropy bool
	Disks     []Disk
	Net       NetMode
	Accel     Accel
	// ExtraArgs go to QEMU last.
	ExtraArgs []string
	// varsFile is the writable copy of the firmware's variable store for
	// UEFIPflash and UEFISecureBoot (set by Start).
	varsFile string
	// Log, if set, receives every console line as it arrives (prefixed by
	// the time since Start) and QEMU's own complaints. It is called from the
	// VM's reader goroutines until Kill or Wait returns; t.Logf fits.
	Log func(format string, args ...any)
}

// netID is the name of the guest NIC's netdev, which QMP's set_link takes.
const netID = "net0"

// args returns QEMU's arguments, without the binary, for a VM whose QMP
// socket is qmpSock. It does no I/O, so tests can check it.
func (o Options) args(accel Accel, qmpSock string) ([]string, error) {
	if o.Kernel == "" && o.CDROM == "" && o.Boot == "" && len(o.Disks) == 0 {
		return nil, fmt.Errorf("qemu: nothing to boot: set Options.Kernel, CDROM, Disks or Boot")
	}
	mem, cpus := o.MemoryMB, o.CPUs
	if mem <= 0 {
		mem = 256
	}
	if cpus <= 0 {
		cpus = 1
	}
	a := []string{
		// No display, no default devices (NIC, CD-ROM, VGA): only what
		// Options ask for. The serial port is the console on stdio.
		"-nographic", "-nodefaults", "-serial", "stdio",
		"-no-reboot",
		// Start paused; Start sets the link state over QMP, then continues.
		"-S", "-chardev", "socket,id=qmp,path=" + optEscape(qmpSock), "-mon", "chardev=qmp,mode=control",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
	}
	machine := o.Machine
	if o.Firmware == UEFISecureBoot {
		// The Secure Boot build keeps its variables in SMM: without
		// smm=on it hangs before printing anything.
		switch machine {
		case "", "q35":
			machine = "q35,smm=on"
		default:
			return nil, fmt.Errorf("qemu: UEFISecureBoot needs the q35 machine (with SMM), not %q", machine)
		}
	}
	if machine != "" {
		a = append(a, "-machine", machine)
	}
	if !o.NoEntropy {
		// Entropy for the guest: QEMU's default CPU under TCG has no
		// RDRAND. The rescue environment must not need it (NoEntropy
		// tests prove that); other guests' tools may.
		a = append(a, "-device", "virtio-rng-pci")
	}
	switch accel {
	case AccelKVM:
		a = append(a, "-accel", "kvm", "-cpu", "host")
	default:
		a = append(a, "-accel", "tcg")
	}
	switch o.Firmware {
	case UEFI:
		a = append(a, "-bios", OVMF)
	case UEFIPflash, UEFISecureBoot:
		if o.varsFile == "" {
			return nil, fmt.Errorf("qemu: %v needs the copy of %s that Start makes", o.Firmware, o.Firmware.varsTemplate())
		}
		code := OVMFCode
		if o.Firmware == UEFISecureBoot {
			code = OVMFCodeSB
			// Only SMM code may write the flash that holds the
			// variables, so the OS cannot turn Secure Boot off.
			a = append(a, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		a = append(a, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+optEscape(code),
			"-drive", "if=pflash,format=raw,unit=1,file="+optEscape(o.varsFile))
	}
	if o.Kernel != "" {
		a = append(a, "-kernel", o.Kernel)
		if o.Initrd != "" {
			a = append(a, "-initrd", o.Initrd)
		}
		if o.Append != "" {
			a = append(a, "-append", o.Append)
		}
	}
	if o.Boot != "" {
		a = append(a, "-boot", "order="+o.Boot)
	}
	if o.CDROM != "" {
		a = append(a, "-drive", "file="+optEscape(o.CDROM)+",if=none,id=cd0,format=raw,media=cdrom,readonly=on",
			"-device", "ich9-ahci,id=cdahci", "-device", "ide-cd,drive=cd0,bus=cdahci.0")
	}
	d, err := diskArgs(o.Disks)
	if err != nil {
		return nil, err
	}
	a = append(a, d...)
	switch o.Net {
	case NetNone:
	case NetNoCable, NetUser:
		// romfile= leaves out the iPXE option ROM: we boot with -kernel,
		// and SeaBIOS would spend time starting it.
		a = append(a, "-netdev", "user,id="+netID, "-device", "virtio-net-pci,netdev="+netID+",romfile=")
	case NetNoDHCP:
		// A hub with only the guest on it: carrier, but nobody answers.
		// QEMU warns that the hub "is not connected to host network".
		a = append(a, "-netdev", "hubport,id="+netID+",hubid=0", "-device", "virtio-net-pci,netdev="+netID+",romfile=")
	case NetTap:
		if o.Tap == "" {
			return nil, fmt.Errorf("qemu: NetTap needs Options.Tap")
		}
		dev := "virtio-net-pci,netdev=" + netID
		if o.MAC != "" {
			dev += ",mac=" + o.MAC
		}
		if o.NoNICROM {
			dev += ",romfile="
		}
		a = append(a, "-netdev", "tap,id="+netID+",ifname="+optEscape(o.Tap)+",script=no,downscript=no", "-device", dev)
		if o.HTTPBoot {
			if o.Firmware == BIOS || !o.NoNICROM {
				return nil, fmt.Errorf("qemu: HTTPBoot needs UEFI firmware and NoNICROM (iPXE's ROM would boot first)")
			}
			a = append(a, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
				"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
		}
	default:
		return nil, fmt.Errorf("qemu: unknown %v", o.Net)
	}
	return append(a, o.ExtraArgs...), nil
}

const (
	maxAHCI = 6 // ports of one ich9-ahci controller
	maxIDE  = 4 // two PIIX channels, master and slave
)

func diskArgs(disks []Disk) ([]string, error) {
	var a []string
	var nAHCI, nIDE int
	var xhci bool
	for i, d := range disks {
		if d.Path == "" {
			return nil, fmt.Errorf("qemu: disk %d has no Path", i)
		}
		id := "d" + strconv.Itoa(i)
		format := "raw"
		if d.Format != "" {
			if len(d.BadSectors) > 0 {
				return nil, fmt.Errorf("qemu: disk %d: bad sectors need a raw image", i)
			}
			format = d.Format
		}
		drive := "file=" + optEscape(d.Path) + ",if=none,id=" + id + ",format=" + format
		if len(d.BadSectors) > 0 {
			bad, err := blkdebugOpts(d.BadSectors)
			if err != nil {
				return nil, fmt.Errorf("qemu: disk %d: %w", i, err)
			}
			// raw stays on top: its reads send blkdebug the read_aio
			// event that arms the rules.
			drive = "if=none,id=" + id + ",format=raw,file.driver=blkdebug,file.image.driver=file,file.image.filename=" +
				optEscape(d.Path) + bad
		}
		dev := ""
		switch d.Bus {
		case Virtio:
			dev = "virtio-blk-pci,drive=" + id
		case AHCI:
			if nAHCI == maxAHCI {
				return nil, fmt.Errorf("qemu: disk %d: an AHCI controller has %d ports, all taken", i, maxAHCI)
			}
			if nAHCI == 0 {
				a = append(a, "-device", "ich9-ahci,id=ahci")
			}
			dev = "ide-hd,drive=" + id + ",bus=ahci." + strconv.Itoa(nAHCI)
			nAHCI++
		case NVMe:
			if d.Serial == "" {
				d.Serial = "lifeboat" + strconv.Itoa(i)
			}
			dev = "nvme,drive=" + id
		case USB:
			if !xhci {
				a = append(a, "-device", "qemu-xhci,id=xhci")
				xhci = true
			}
			dev = "usb-storage,drive=" + id + ",bus=xhci.0"
		case IDE:
			if nIDE == maxIDE {
				return nil, fmt.Errorf("qemu: disk %d: the IDE controller has %d places, all taken", i, maxIDE)
			}
			dev = "ide-hd,drive=" + id + ",bus=ide." + strconv.Itoa(nIDE/2) + ",unit=" + strconv.Itoa(nIDE%2)
			nIDE++
		default:
			return nil, fmt.Errorf("qemu: disk %d: unknown %v", i, d.Bus)
		}
		if d.ReadOnly {
			if d.Bus == AHCI || d.Bus == IDE {
				drive += ",snapshot=on"
			} else {
				drive += ",readonly=on"
			}
		}
		if d.Serial != "" {
			dev += ",serial=" + optEscape(d.Serial)
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	return a, nil
}

// maxBadSectors bounds BadSectors: blkdebug checks every rule on every
// read request.
const maxBadSectors = 4096

// blkdebugOpts returns the inject-error rules of blkdebug for the sectors,
// as -drive options of the drive's file node (leading comma included).
// A rule fails a request that covers its sector's first byte, so one rule
// per sector makes requests fail exactly where they touch a range.
func blkdebugOpts(rs []SectorRange) (string, error) {
	var b strings.Builder
	n := 0
	for _, r := range rs {
		if r.Start < 0 || r.Count <= 0 {
			return "", fmt.Errorf("bad sector range %d+%d: need Start >= 0 and Count > 0", r.Start, r.Count)
		}
		if n+int(min(r.Count, maxBadSectors+1)) > maxBadSectors {
			return "", fmt.Errorf("more than %d bad sectors: blkdebug checks one rule per sector on every read", maxBadSectors)
		}
		for s := r.Start; s < r.Start+r.Count; s++ {
			k := ",file.inject-error." + strconv.Itoa(n) + "."
			b.WriteString(k + "event=read_aio" + k + "iotype=read" + k + "errno=5" + k + "sector=" + strconv.FormatInt(s, 10))
			n++
		}
	}
	return b.String(), nil
}

// optEscape doubles commas, QEMU's escape inside an option value.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// netnsPrefix runs QEMU inside a network namespace when one is named.
func netnsPrefix(ns string) []string {
	if ns == "" {
		return nil
	}
	return []string{"ip", "netns", "exec", ns}
}
