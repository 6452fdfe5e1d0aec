package mkmedia

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/engine/opt"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// The USB layout (GPT, 512-byte sectors, everything 1 MiB-aligned):
//
//	LBA 0          protective MBR; GRUB's boot.img in its boot-code area
//	LBA 1-33       primary GPT
//	1 MiB, 1 MiB   partition 1: BIOS boot (EF02), GRUB's core.img
//	2 MiB, ≥40 MiB partition 2: EFI System (FAT32, label LB-BOOT): BOOTX64.EFI
//	               (shim with grubx64.efi, mmx64.efi and EFI/debian/grub.cfg
//	               for a Secure Boot bundle, else the bundle's GRUB),
//	               boot/grub/grub.cfg, vmlinuz, initramfs, the marker file
//	…  to the end  partition 3: LIFEBOAT-DATA (Microsoft basic data, FAT32,
//	               label LIFEBOAT), where users keep their images
//	last 33 LBAs   backup GPT (inside the last, unpartitioned MiB)
const (
	usbAlign     = 1 << 20
	biosBootSize = 1 << 20
	// FAT32 made by go-diskfs below ~33 MiB is invalid and OVMF ignores it
	// (FACTS); our writer needs 33 MiB too. 40 MiB keeps a margin.
	minESPSize  = 40 << 20
	minDataSize = 40 << 20
	// cfgAllowance is the room the ESP reserves for grub.cfg and the marker,
	// so that MinUSBSize does not depend on the menu options.
	cfgAllowance = 64 << 10
	gptSectors   = 33 // backup GPT: 32 sectors of entries and the header
)

// Names on the USB media.
const (
	// DataPartName is the GPT partition name (PARTLABEL) of the data partition.
	DataPartName = "LIFEBOAT-DATA"
	// DataLabel is the data partition's filesystem label. FAT32 and exFAT
	// labels hold at most 11 characters, so it cannot be DataPartName: a
	// rescue job names the data partition as LABEL=LIFEBOAT.
	DataLabel = "LIFEBOAT"
	// ESPLabel is the EFI System Partition's filesystem label.
	ESPLabel = "LB-BOOT"
)

// Data filesystems for USBOptions.DataFS.
const (
	DataFAT32 = "fat32"
	DataExFAT = "exfat"
)

// USBOptions are the options of WriteUSB.
type USBOptions struct {
	MenuOptions
	// Size is the total size of an image file; 0 means MinUSBSize. For a
	// block device it must be 0 or the device's size.
	Size int64
	// DataFS is the filesystem of LIFEBOAT-DATA: "fat32" (the default,
	// read and written by Windows, macOS and the rescue environment; files
	// up to 4 GiB, so large images are written with --split) or "exfat"
	// (not written yet: it returns an error wrapping errors.ErrUnsupported).
	DataFS string
	// Confirm, if set, is called for a block device after every check has
	// passed and before anything is written, with the disk's size; an
	// error stops WriteUSB (the CLI asks the user to type the disk's name).
	Confirm func(device string, size int64) error
	// Log receives started/finished lines; nil discards them.
	Log *slog.Logger
}

// usbSource is everything WriteUSB reads, checked before anything is written.
type usbSource struct {
	dir                       string
	info                      *bundle.Info
	infoJSON                  []byte
	kernel, initrd            []byte
	efi                       []efiFile // EFI/… on the ESP (efiTree)
	core, mbr                 []byte
	espContent                int64 // bytes of files on the ESP, without grub.cfg
	minSize, espSize, minData int64
}

func loadUSBSource(dir string) (*usbSource, error) {
	info, err := bundle.Read(dir)
	if err != nil {
		return nil, err
	}
	s := &usbSource{dir: dir, info: info}
	if s.infoJSON, err = os.ReadFile(filepath.Join(dir, "bundle.json")); err != nil {
		return nil, fmt.Errorf("rescue bundle %s: %w", dir, err)
	}
	sum := func(name string, b []byte) error {
		if f, ok := info.Files[name]; ok && f.SHA256 != "" {
			if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != f.SHA256 {
				return fmt.Errorf("rescue bundle %s: %s does not match its checksum in bundle.json; rebuild it with make rescue", dir, name)
			}
		}
		return nil
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{"vmlinuz", &s.kernel}, {"initramfs", &s.initrd}} {
		if *f.dst, err = os.ReadFile(filepath.Join(dir, f.name)); err != nil {
			return nil, fmt.Errorf("rescue bundle %s: %w; rebuild it with make rescue", dir, err)
		}
		if err := sum(f.name, *f.dst); err != nil {
			return nil, err
		}
	}
	boot := BundleBootFiles(dir)
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{BootCoreBIOS, &s.core}, {BootMBR, &s.mbr}} {
		if *f.dst, err = boot.Read(f.name); err != nil {
			return nil, err
		}
		if err := sum("boot/"+f.name, *f.dst); err != nil {
			return nil, err
		}
	}
	if err := checkGrubBIOS(s.mbr, s.core); err != nil {
		return nil, fmt.Errorf("rescue bundle %s: %w; rebuild it with make rescue", dir, err)
	}
	if s.efi, err = efiTree(dir, info); err != nil {
		return nil, err
	}
	s.espContent = int64(len(s.kernel)+len(s.initrd)) + efiTreeSize(s.efi)
	// Room for the files, their clusters and directories, and the FATs
	// (1/64 of the volume with 512-byte clusters), rounded up to a MiB.
	s.espSize = max(minESPSize, alignUp(s.espContent+s.espContent/16+cfgAllowance+(4<<20), usbAlign))
	s.minData = minDataSize
	s.minSize = usbAlign + biosBootSize + s.espSize + s.minData + usbAlign
	return s, nil
}

// MinUSBSize returns the smallest image file or device WriteUSB accepts for
// the bundle in bundleDir.
func MinUSBSize(bundleDir string) (int64, error) {
	s, err := loadUSBSource(bundleDir)
	if err != nil {
		return 0, err
	}
	return s.minSize, nil
}

// GRUB i386-pc layout (grub's include/grub/i386/pc/boot.h, boot.S, diskboot.S).
const (
	grubKernelSector = 0x5c  // boot.img: uint64 LBA of core.img's first sector
	grubBootDrive    = 0x64  // boot.img: 0xff = use the drive the BIOS passed in %dl
	grubDriveCheck   = 0x66  // boot.img: jmp that grub-bios-setup may nop out
	grubNTMagic      = 0x1b8 // boot.img: end of boot code; disk signature, partition table follow
	grubListStart    = 0x1f4 // diskboot.img (core.img sector 0): blocklist {u64 start, u16 len, u16 segment}
	grubListLen      = 0x1fc
	grubListSeg      = 0x1fe
	grubKernelSeg    = 0x820 // where diskboot.img loads the rest of core.img
)

// checkGrubBIOS checks that mbr and core are GRUB's i386-pc boot.img and a
// core.img made by grub-mkimage (one blocklist entry covering the rest).
func checkGrubBIOS(mbr, core []byte) error {
	if len(mbr) != 512 || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return fmt.Errorf("boot/%s is not GRUB's 512-byte i386-pc boot.img", BootMBR)
	}
	if len(core) < 1024 || len(core) > biosBootSize {
		return fmt.Errorf("boot/%s is %d bytes; a GRUB i386-pc core.img must fit the %d-byte BIOS boot partition", BootCoreBIOS, len(core), biosBootSize)
	}
	sectors := (len(core) + 511) / 512
	if binary.LittleEndian.Uint16(core[grubListSeg:]) != grubKernelSeg ||
		int(binary.LittleEndian.Uint16(core[grubListLen:])) != sectors-1 {
		return fmt.Errorf("boot/%s is not a GRUB i386-pc core.img made by grub-mkimage (its blocklist does not cover %d sectors)", BootCoreBIOS, sectors-1)
	}
	return nil
}

// usbLayout is where the partitions go on a disk of size bytes.
type usbLayout struct {
	size                     int64
	biosStart                int64
	espStart, espSize        int64
	dataStart, dataSize      int64
	diskGUID                 string
	biosGUID, espGUID, dGUID string
	espID, dataID            uint32
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

func planUSB(s *usbSource, size int64, seed []byte) usbLayout {
	l := usbLayout{size: size, biosStart: usbAlign, espStart: usbAlign + biosBootSize, espSize: s.espSize}
	l.dataStart = l.espStart + l.espSize
	end := (size - gptSectors*512) / usbAlign * usbAlign
	l.dataSize = end - l.dataStart
	l.diskGUID = guidFrom(seed, "disk")
	l.biosGUID = guidFrom(seed, "bios-boot")
	l.espGUID = guidFrom(seed, "esp")
	l.dGUID = guidFrom(seed, "data")
	l.espID = binary.LittleEndian.Uint32(hashOf(seed, "esp-volume-id"))
	l.dataID = binary.LittleEndian.Uint32(hashOf(seed, "data-volume-id"))
	return l
}

func hashOf(seed []byte, tag string) []byte {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte(tag))
	return h.Sum(nil)
}

// guidFrom derives a version-4-shaped GUID from the content hash, so that
// the same bundle and options give the same disk.
func guidFrom(seed []byte, tag string) string {
	b := hashOf(seed, tag)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// WriteUSB writes a bootable USB layout to target: an image file (created,
// or replaced through a temporary file and a rename) or a block device
// (checked first: not mounted, not holding the running system or the
// bundle, large enough; nothing is written before every check passes).
// Refusals wrap engine.ErrRefused.
//
// Cancelling ctx stops the write at its next write call and returns an
// error wrapping ctx.Err(): an image file is then removed, a stick is left
// partly written (write it again).
func WriteUSB(ctx context.Context, target, bundleDir string, o USBOptions) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	switch o.DataFS {
	case "", DataFAT32:
	case DataExFAT:
		return fmt.Errorf("data filesystem exfat: %w: lifeboat cannot write exFAT yet; use fat32", errors.ErrUnsupported)
	default:
		return fmt.Errorf("data filesystem %q: use fat32 or exfat", o.DataFS)
	}
	if o.Size < 0 {
		return fmt.Errorf("USB size %d: must not be negative", o.Size)
	}
	s, err := loadUSBSource(bundleDir)
	if err != nil {
		return err
	}
	cfg := GrubConfig(s.info, o.MenuOptions)
	if len(cfg) > cfgAllowance/2 {
		return &engine.FixError{Err: fmt.Errorf("boot menu is %d bytes, more than the %d the ESP keeps for it", len(cfg), cfgAllowance/2), Fix: opt.With("shorten {}", opt.Use{Option: opt.Append})}
	}

	fi, err := os.Stat(target)
	isDev := err == nil && !fi.Mode().IsRegular()
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("USB target %s: %w", target, err)
	case err == nil && fi.IsDir():
		return &engine.RefusedError{Object: target, Reason: "it is a folder", Fix: opt.Text("name an image file (e.g. lifeboat-usb.img) or a disk such as /dev/sdb")}
	}
	if isDev {
		return writeUSBDevice(ctx, target, s, cfg, o, log, start)
	}
	return writeUSBFile(ctx, target, s, cfg, o, log, start, err == nil)
}

func writeUSBFile(ctx context.Context, target string, s *usbSource, cfg string, o USBOptions, log *slog.Logger, start time.Time, exists bool) error {
	size := o.Size
	if size == 0 {
		size = s.minSize
	}
	if size%512 != 0 {
		return &engine.RefusedError{Object: target, Reason: fmt.Sprintf("the size %d is not a multiple of 512 bytes", size), Fix: opt.With("give a size in whole MiB, e.g. {}", opt.Use{Option: opt.Size, Value: "8G"})}
	}
	if size < s.minSize {
		return &engine.RefusedError{Object: target,
			Reason: fmt.Sprintf("the size %s (%d bytes) is smaller than the %s (%d bytes) this rescue bundle needs", engine.HumanBytes(size), size, engine.HumanBytes(s.minSize), s.minSize),
			Fix: opt.With("give {} or more, or leave {} out for the minimum",
				opt.Use{Option: opt.Size, Value: fmt.Sprintf("%dM", (s.minSize+usbAlign-1)/usbAlign)}, opt.Use{Option: opt.Size})}
	}
	if exists {
		// Replacing the file leaves a loop device on the old one: say so
		// rather than let a mounted image silently keep the old content.
		mps, err := blockdev.MountPoints(target)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("check USB image %s: %w", target, err)
		}
		if len(mps) > 0 {
			return &engine.RefusedError{Object: target, Reason: fmt.Sprintf("it is mounted through a loop device (%s)", strings.Join(mps, ", ")), Fix: opt.Text("unmount it and detach the loop device first, or choose another file name")}
		}
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("create USB image next to %s: %w", target, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Truncate(size); err != nil {
		return &engine.FixError{Err: fmt.Errorf("create USB image %s (%s): %w", target, engine.HumanBytes(size), err), Fix: opt.With("free some space or choose a smaller {}", opt.Use{Option: opt.Size})}
	}
	log.Info("USB image started", "target", target, "bytes", size)
	if err := writeUSBLayout(cancelWriter{ctx, f}, size, true, s, cfg, o); err != nil {
		return fmt.Errorf("USB image %s: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("USB image %s: %w", target, err)
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp made it 0600
		return fmt.Errorf("USB image %s: %w", target, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("USB image %s: %w", target, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("USB image %s: %w", target, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil { // make the rename durable (fails harmlessly on Windows)
		d.Sync()
		d.Close()
	}
	log.Info("USB image finished", "target", target, "bytes", size, "elapsed", time.Since(start))
	return nil
}

func writeUSBDevice(ctx context.Context, target string, s *usbSource, cfg string, o USBOptions, log *slog.Logger, start time.Time) error {
	refuse := func(reason string, fix opt.Fix) error {
		fix.Text += " (nothing was written)"
		return &engine.RefusedError{Object: target, Reason: reason, Fix: fix}
	}
	mps, err := blockdev.MountPoints(target)
	if err != nil {
		return fmt.Errorf("check USB target %s: %w", target, err)
	}
	if len(mps) > 0 && !blockdev.DismountsOnOpen() {
		return refuse(fmt.Sprintf("it has mounted filesystems (%s)", strings.Join(mps, ", ")), opt.Text("unmount them first (umount), or choose another disk"))
	}
	if len(mps) > 0 {
		log.Info("usb: the stick's volumes are locked and dismounted while it is written", "volumes", strings.Join(mps, ", "))
	}
	for _, p := range []string{"/", s.dir} {
		held, err := blockdev.Holds(target, p)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("check USB target %s: %w", target, err)
		}
		if held && p == "/" {
			return refuse("it holds the running system", opt.Text("choose the USB stick's disk; run \"lifeboat disks\" to list disks"))
		}
		if held {
			return refuse(fmt.Sprintf("it holds the rescue bundle %s", s.dir), opt.Text("copy the bundle to another disk, or choose another disk"))
		}
	}
	if disks, err := blockdev.List(); err == nil {
		real, _ := filepath.EvalSymlinks(target)
		for _, d := range disks {
			for _, p := range d.Partitions {
				if p.Path == target || p.Path == real {
					return refuse(fmt.Sprintf("it is partition %d of %s, not a whole disk", p.Number, d.Path), opt.Text(fmt.Sprintf("name the whole disk (%s)", d.Path)))
				}
			}
			if d.Path == target && runtime.GOOS == "windows" {
				// Windows numbers its internal disks beside the sticks;
				// one wrong digit must not erase one.
				if why := notAStick(d); why != "" {
					return refuse(why, opt.With("choose the stick's disk (\"lifeboat disks\" shows each disk's bus), or write an image file with {} and copy it to the disk yourself", opt.Use{Option: opt.Output}))
				}
			}
		}
	}
	d, err := blockdev.Open(target, blockdev.ReadWriteExclusive)
	if errors.Is(err, blockdev.ErrBusy) && blockdev.DismountsOnOpen() {
		// Windows: the error names the volume that could not be locked.
		return refuse(err.Error(), opt.Text("or choose another disk"))
	}
	if errors.Is(err, blockdev.ErrBusy) {
		return refuse("it is in use (mounted, swap, LVM or RAID)", opt.Text("stop using it first, or choose another disk"))
	}
	if err != nil {
		return fmt.Errorf("USB target: %w", err)
	}
	defer d.Close()
	switch {
	case d.SectorSize != 512:
		return refuse(fmt.Sprintf("it has %d-byte sectors; GRUB's BIOS boot code needs 512-byte sectors", d.SectorSize), opt.With("choose another stick, or write an image file with {}", opt.Use{Option: opt.Output}))
	case o.Size != 0 && o.Size != d.Size:
		return refuse(opt.Flag(opt.Use{Option: opt.Size})+" applies to image files only", opt.With("leave {} out when writing to a disk", opt.Use{Option: opt.Size}))
	case d.Size < s.minSize:
		return refuse(fmt.Sprintf("it is %s (%d bytes), smaller than the %s (%d bytes) this rescue bundle needs", engine.HumanBytes(d.Size), d.Size, engine.HumanBytes(s.minSize), s.minSize), opt.Text("choose a larger stick"))
	}
	if o.Confirm != nil {
		if err := o.Confirm(target, d.Size); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("USB target %s: cancelled before anything was written: %w", target, engine.BeforeWriting(err))
	}
	log.Info("USB write started", "target", target, "bytes", d.Size)
	if err := writeUSBLayout(cancelWriter{ctx, d}, d.Size, false, s, cfg, o); err != nil {
		return fmt.Errorf("USB target %s: %w", target, err)
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("USB target %s: %w", target, err)
	}
	if err := d.RereadPartitions(); err != nil {
		log.Warn("USB target: the kernel did not re-read the partition table; unplug and replug the stick", "target", target, "err", err)
	}
	log.Info("USB write finished", "target", target, "bytes", d.Size, "elapsed", time.Since(start))
	return nil
}

// writeUSBLayout writes the whole layout to w, a disk of size bytes. fresh
// says w reads as zeros (a new file): then zero blocks are skipped and the
// file stays sparse; otherwise everything outside the data area of the
// data partition is written, so a used stick carries no stale signatures.
func writeUSBLayout(w io.WriterAt, size int64, fresh bool, s *usbSource, cfg string, o USBOptions) error {
	dataFS := o.DataFS
	if dataFS == "" {
		dataFS = DataFAT32
	}
	h := sha256.New()
	fmt.Fprintf(h, "lifeboat usb 1\x00%d\x00%s\x00", size, dataFS)
	parts := [][]byte{s.infoJSON, s.kernel, s.initrd}
	for _, f := range s.efi {
		parts = append(parts, f.data)
	}
	for _, b := range append(parts, s.core, s.mbr, []byte(cfg)) {
		sum := sha256.Sum256(b)
		h.Write(sum[:])
	}
	seed := h.Sum(nil)
	l := planUSB(s, size, seed)
	created := s.info.Created
	if created.IsZero() {
		created = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}

	// Sector 0 and the gap before partition 1: GRUB's boot code; the
	// partition table is added by the GPT writer below.
	head := make([]byte, usbAlign)
	copy(head[:grubNTMagic], s.mbr[:grubNTMagic])
	// boot.img loads core.img's first sector (diskboot.img) from this LBA.
	// The boot-drive byte (0x64, 0xff: use %dl) and the drive check at 0x66
	// stay as GRUB ships them: keeping the check's jmp is what
	// grub-bios-setup --allow-floppy does, so a BIOS that boots the stick
	// as a floppy (%dl=0) still reads from the stick.
	binary.LittleEndian.PutUint64(head[grubKernelSector:], uint64(l.biosStart/512))
	if _, err := w.WriteAt(head, 0); err != nil {
		return fmt.Errorf("write boot sector: %w", err)
	}
	if !fresh {
		tail := make([]byte, size-(l.dataStart+l.dataSize))
		if _, err := w.WriteAt(tail, l.dataStart+l.dataSize); err != nil {
			return fmt.Errorf("clear the end of the disk: %w", err)
		}
	}

	// Partition 1: core.img, its blocklist pointing at its own second
	// sector, as grub-bios-setup writes it for a BIOS boot partition.
	bios := make([]byte, biosBootSize)
	copy(bios, s.core)
	binary.LittleEndian.PutUint64(bios[grubListStart:], uint64(l.biosStart/512+1))
	if _, err := w.WriteAt(bios, l.biosStart); err != nil {
		return fmt.Errorf("write BIOS boot partition: %w", err)
	}

	// Partition 2: the ESP.
	var files []fatFile
	for _, f := range s.efi {
		files = append(files, fatFile{Path: f.path, Data: f.data})
	}
	esp := fatVolume{Size: l.espSize, Label: ESPLabel, VolumeID: l.espID, Time: created, HiddenSectors: uint32(l.espStart / 512),
		Files: append(files, []fatFile{
			{Path: "boot/grub/grub.cfg", Data: []byte(cfg)},
			{Path: "boot/vmlinuz", Data: s.kernel},
			{Path: "boot/initramfs", Data: s.initrd},
			{Path: strings.TrimPrefix(MarkerFile, "/"), Data: MarkerContent(s.info)},
		}...)}
	if err := writeFAT32(io.NewOffsetWriter(w, l.espStart), esp, fresh); err != nil {
		return fmt.Errorf("EFI System Partition: %w", err)
	}

	// Partition 3: LIFEBOAT-DATA, empty.
	data := fatVolume{Size: l.dataSize, Label: DataLabel, VolumeID: l.dataID, Time: created, HiddenSectors: uint32(min(l.dataStart/512, 0xffffffff))}
	if err := writeFAT32(io.NewOffsetWriter(w, l.dataStart), data, fresh); err != nil {
		return fmt.Errorf("data partition %s: %w", DataPartName, err)
	}

	t := &layout.Table{
		Type:       layout.GPT,
		SectorSize: 512,
		DiskGUID:   l.diskGUID,
		Partitions: []layout.Partition{
			{Number: 1, Start: l.biosStart, Size: biosBootSize, Type: string(gpt.BIOSBoot), Name: "BIOS boot", GUID: l.biosGUID},
			{Number: 2, Start: l.espStart, Size: l.espSize, Type: string(gpt.EFISystemPartition), Name: "EFI system partition", GUID: l.espGUID},
			{Number: 3, Start: l.dataStart, Size: l.dataSize, Type: string(gpt.MicrosoftBasicData), Name: DataPartName, GUID: l.dGUID},
		},
	}
	if err := layout.WriteGPT(w, size, t); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	return nil
}

// cancelWriter stops writing once ctx is cancelled: every write of the
// layout (boot code, partitions, FAT structures, files) goes through it.
type cancelWriter struct {
	ctx context.Context
	w   io.WriterAt
}

func (c cancelWriter) WriteAt(b []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("cancelled: %w", err)
	}
	return c.w.WriteAt(b, off)
}

// Sync passes through, so the GPT writer's syncs still reach the disk.
func (c cancelWriter) Sync() error {
	if s, ok := c.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// notAStick says why d is no USB stick or card (a fixed disk on another
// bus), or "" when it may be one.
func notAStick(d blockdev.Disk) string {
	if d.Removable || d.Bus == "usb" || d.Bus == "mmc" {
		return ""
	}
	bus := d.Bus
	if bus == "" {
		bus = "internal or virtual"
	}
	return fmt.Sprintf("it is a fixed %s disk (%s), not a USB stick or card", bus, strings.TrimSpace(d.Model+" "+engine.HumanBytes(d.Size)))
}
