package mkmedia

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// ISOOptions shape the ISO.
type ISOOptions struct {
	MenuOptions
	// VolumeID is the ISO 9660 volume identifier (up to 32 of A–Z, 0–9
	// and _); default "LIFEBOAT".
	VolumeID string
}

// Where things live on the ISO. The El Torito images are ordinary files so
// that xorriso and a person can see them.
const (
	isoElTorito = "/boot/grub/eltorito.img"
	isoEFIImage = "/boot/grub/efiboot.img"
	isoCatalog  = "/boot/grub/boot.cat"

	cdSector   = 2048
	diskSector = 512
	// Room after the ISO 9660 volume for the backup GPT (32 sectors of
	// entries and the header), rounded up to whole CD sectors.
	gptTail = 32 * 1024
)

// WriteISO writes a hybrid ISO of the rescue bundle in bundleDir to path.
// The one image boots as a CD and, written raw to a stick, as a disk, under
// legacy BIOS and UEFI:
//
//   - BIOS CD: El Torito no-emulation entry → GRUB's eltorito.img.
//   - UEFI CD: El Torito EFI entry → FAT image with EFI/BOOT/BOOTX64.EFI.
//   - BIOS disk: MBR code from GRUB's boot_hybrid.img → the diskboot.img
//     inside eltorito.img → the same core as the CD.
//   - UEFI disk: a GPT (behind a protective MBR) whose EFI System Partition
//     is the El Torito FAT image.
//
// Every path ends in the same GRUB menu (GrubConfig) on the ISO 9660
// volume. The same bundle and options give the same bytes: times come from
// bundle.Info.Created and the disk identifiers from a hash of the content.
// The file is written under a temporary name, synced and renamed.
//
// Cancelling ctx stops the work between its steps (go-diskfs's ISO writer
// itself cannot be interrupted) and returns an error wrapping ctx.Err();
// the temporary file is removed.
func WriteISO(ctx context.Context, path, bundleDir string, o ISOOptions) (err error) {
	info, err := bundle.Read(bundleDir)
	if err != nil {
		return err
	}
	for _, n := range []string{"vmlinuz", "initramfs"} {
		if _, ok := info.Files[n]; !ok {
			return fmt.Errorf("rescue bundle %s: bundle.json lists no %s; rebuild it with make rescue", bundleDir, n)
		}
	}
	boot := BundleBootFiles(bundleDir)
	efi, err := efiTree(bundleDir, info)
	if err != nil {
		return err
	}
	eltorito, err := boot.Read(BootElTorito)
	if err != nil {
		return err
	}
	hybridMBR, err := boot.Read(BootHybridMBR)
	if err != nil {
		return err
	}
	if len(hybridMBR) != diskSector || len(eltorito) < 2560 {
		return fmt.Errorf("%w: %s or %s is damaged; rebuild the bundle with make rescue", ErrNoBootFiles, boot.Path(BootHybridMBR), boot.Path(BootElTorito))
	}
	volID := o.VolumeID
	if volID == "" {
		volID = "LIFEBOAT"
	}
	if err := checkVolumeID(volID); err != nil {
		return err
	}
	mtime := mediaTime(info)

	ws, err := os.MkdirTemp("", "lifeboat-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	if err := stageISOTree(ws, bundleDir, info, o.MenuOptions, efi, eltorito, mtime); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write ISO %s: cancelled: %w", path, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	isofs, err := iso9660.Create(file.New(tmp, false), 0, 0, cdSector, ws)
	if err != nil {
		return fmt.Errorf("create ISO %s: %w", path, err)
	}
	bios := &iso9660.ElToritoEntry{
		Platform:  iso9660.BIOS,
		Emulation: iso9660.NoEmulation,
		BootFile:  isoElTorito,
		BootTable: true,
	}
	bios.SetLoadSize(4) // cdboot.img is one CD sector; it reads the rest
	err = isofs.Finalize(iso9660.FinalizeOptions{
		Joliet:           true, // long names (initramfs) without Rock Ridge, whose timestamps include the unsettable ctime
		VolumeIdentifier: volID,
		ElTorito: &iso9660.ElTorito{
			BootCatalog:     isoCatalog,
			HideBootCatalog: true, // its directory record would carry time.Now()
			Entries: []*iso9660.ElToritoEntry{bios, {
				Platform:  iso9660.EFI,
				Emulation: iso9660.NoEmulation,
				BootFile:  isoEFIImage,
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("write ISO %s: %w", path, err)
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("write ISO %s: cancelled: %w", path, err)
	}
	if err := makeHybrid(tmp, hybridMBR, mtime); err != nil {
		return fmt.Errorf("write ISO %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp made it 0600
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// checkVolumeID accepts ECMA-119 d-characters, which is what BIOSes,
// GRUB's search --label and Windows show.
func checkVolumeID(id string) error {
	if len(id) > 32 {
		return fmt.Errorf("volume ID %q is longer than 32 characters", id)
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("volume ID %q: use only A-Z, 0-9 and _", id)
		}
	}
	return nil
}

// mediaTime is the time recorded for every file and volume: when the
// bundle was built, so media do not depend on when they are written. FAT
// cannot record times before 1980.
func mediaTime(info *bundle.Info) time.Time {
	t := info.Created.UTC().Truncate(time.Second)
	if floor := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC); t.Before(floor) {
		return floor
	}
	return t
}

// stageISOTree fills the workspace go-diskfs turns into the ISO 9660 tree.
func stageISOTree(ws, bundleDir string, info *bundle.Info, mo MenuOptions, efi []efiFile, eltorito []byte, mtime time.Time) error {
	if err := os.MkdirAll(filepath.Join(ws, "boot", "grub"), 0o755); err != nil {
		return err
	}
	// Booted as a CD, Debian's signed GRUB reads the ISO 9660 volume as
	// its device, so its config must be there too (see SignedGrubDir).
	times := []string{MarkerFile, KernelPath, InitrdPath, GrubCfgPath, isoElTorito, isoEFIImage, "/boot/grub", "/boot"}
	for _, f := range efi {
		if f.path != signedGrubCfg[1:] {
			continue
		}
		if err := os.MkdirAll(filepath.Join(ws, filepath.FromSlash(SignedGrubDir)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(ws, filepath.FromSlash(f.path)), f.data, 0o644); err != nil {
			return err
		}
		times = append(times, "/"+f.path, SignedGrubDir, "/EFI")
	}
	for _, c := range []struct{ from, to string }{
		{"vmlinuz", KernelPath},
		{"initramfs", InitrdPath},
	} {
		if err := copyFile(filepath.Join(bundleDir, c.from), filepath.Join(ws, filepath.FromSlash(c.to))); err != nil {
			return err
		}
	}
	for name, b := range map[string][]byte{
		MarkerFile:  MarkerContent(info),
		GrubCfgPath: []byte(GrubConfig(info, mo)),
		isoElTorito: eltorito,
	} {
		if err := os.WriteFile(filepath.Join(ws, filepath.FromSlash(name)), b, 0o644); err != nil {
			return err
		}
	}
	efiImg, err := efiBootImage(efi, info, mtime)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ws, filepath.FromSlash(isoEFIImage)), efiImg, 0o644); err != nil {
		return err
	}
	// Directory records carry these times; children before parents so a
	// directory's time is not changed by writing into it afterwards.
	for _, p := range append(times, "/") {
		if err := os.Chtimes(filepath.Join(ws, filepath.FromSlash(p)), mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}

// efiBootImage returns a FAT12 image holding the EFI tree (efiTree:
// EFI/BOOT/BOOTX64.EFI and, for Secure Boot, the signed GRUB and its
// config): the El Torito EFI boot image and, through the GPT, the hybrid
// disk's ESP. FAT12 because go-diskfs makes FAT32 only from about 33 MiB,
// which would triple the ISO.
func efiBootImage(efi []efiFile, info *bundle.Info, mtime time.Time) ([]byte, error) {
	// The files, FATs and directories, and a little slack; whole CD sectors.
	n := efiTreeSize(efi)
	size := n + n/8 + 64*1024
	size = (size + cdSector - 1) / cdSector * cdSector
	dir, err := os.MkdirTemp("", "lifeboat-efiboot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "efiboot.img"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return nil, err
	}
	fsys, err := fat12.Create(file.New(f, false), size, 0, diskSector, "LIFEBOAT", true)
	if err != nil {
		return nil, fmt.Errorf("EFI boot image: %w", err)
	}
	var paths []string
	dirs := map[string]bool{}
	for _, f := range efi {
		p := "/" + f.path
		d := path.Dir(p)
		if !dirs[d] {
			if err := fsys.Mkdir(d); err != nil {
				return nil, fmt.Errorf("EFI boot image: %w", err)
			}
			dirs[d] = true
		}
		w, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return nil, fmt.Errorf("EFI boot image: %w", err)
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, fmt.Errorf("EFI boot image: %s: %w", p, err)
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	// Files, then their folders, deepest first, then /EFI.
	for d := range dirs {
		paths = append(paths, d)
	}
	sort.Slice(paths[len(efi):], func(i, j int) bool { return paths[len(efi)+i] > paths[len(efi)+j] })
	for _, p := range append(paths, "/EFI") {
		if err := fsys.Chtimes(p, mtime, mtime, mtime); err != nil {
			return nil, fmt.Errorf("EFI boot image: %s: %w", p, err)
		}
	}
	img, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	if err := fat12SetTimes(img, mtime); err != nil {
		return nil, fmt.Errorf("EFI boot image: %w", err)
	}
	// Volume serial number (FAT12/16 extended BPB at 0x27) from the content.
	h := sha256.New()
	h.Write([]byte(BundleID(info)))
	for _, f := range efi {
		h.Write(f.data)
	}
	sum := h.Sum(nil)
	copy(img[0x27:0x2b], sum[:4])
	return img, nil
}

// makeHybrid turns the ISO 9660 image go-diskfs wrote into a hybrid one:
// it fixes the volume descriptors (order and times), writes GRUB's hybrid
// MBR code and a GPT whose EFI System Partition is the El Torito EFI image,
// and patches the BIOS image so its diskboot.img finds the core on a disk.
func makeHybrid(f *os.File, hybridMBR []byte, mtime time.Time) error {
	if err := fixVolumeDescriptors(f, mtime); err != nil {
		return err
	}
	if err := fixJoliet(f); err != nil {
		return fmt.Errorf("Joliet tree: %w", err)
	}
	pvd := make([]byte, cdSector)
	if _, err := f.ReadAt(pvd, 16*cdSector); err != nil {
		return err
	}
	isoSize := int64(binary.LittleEndian.Uint32(pvd[80:84])) * cdSector

	bios, efi, err := readBootCatalog(f)
	if err != nil {
		return err
	}

	// grub-mkrescue's --grub2-boot-info, done here: the blocklist of the
	// diskboot.img that follows cdboot.img (at byte 2048) starts at the
	// 512-byte sector after it. Then the boot info table's checksum (bytes
	// 64…end, which xorriso and cdboot.img agree on) is brought up to date.
	biosDisk := int64(bios.lba) * (cdSector / diskSector)
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], uint64(biosDisk+5))
	if _, err := f.WriteAt(le[:], int64(bios.lba)*cdSector+2048+500); err != nil {
		return err
	}
	if err := fixBootInfoChecksum(f, bios); err != nil {
		return err
	}

	// Identifiers from the content (volume descriptors onwards).
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 16*cdSector, isoSize-16*cdSector)); err != nil {
		return err
	}
	sum := h.Sum(nil)

	total := isoSize + gptTail
	if err := f.Truncate(total); err != nil {
		return err
	}
	mbr := make([]byte, diskSector)
	copy(mbr, hybridMBR[:0x1b0])
	// boot_hybrid.img reads its 64-bit start sector at 0x1b0: the
	// diskboot.img inside eltorito.img (xorriso --grub2-mbr).
	binary.LittleEndian.PutUint64(mbr[0x1b0:], uint64(biosDisk+4))
	copy(mbr[0x1b8:0x1bc], sum[0:4]) // disk signature
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return err
	}
	efiStart := uint64(efi.lba) * (cdSector / diskSector)
	efiSectors := uint64(efi.sectors)
	if efiSectors == 0 {
		return fmt.Errorf("EFI boot image has no size in the boot catalog")
	}
	table := &layout.Table{
		Type:       layout.GPT,
		SectorSize: diskSector,
		DiskGUID:   isoGUID(sum, "disk").String(),
		Partitions: []layout.Partition{{
			Number: 1,
			Start:  int64(efiStart) * diskSector,
			Size:   int64(efiSectors) * diskSector,
			Type:   string(gpt.EFISystemPartition),
			Name:   "EFI boot",
			GUID:   isoGUID(sum, "esp").String(),
		}},
	}
	if err := layout.WriteGPT(f, total, table); err != nil {
		return fmt.Errorf("GPT: %w", err)
	}
	return nil
}

// isoGUID derives a version-4-shaped GUID from the content hash.
func isoGUID(sum []byte, what string) uuid.UUID {
	h := sha256.Sum256(append(append([]byte{}, sum...), what...))
	var u uuid.UUID
	copy(u[:], h[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Volume descriptor types (ECMA-119 8.1.1).
const (
	vdBoot       = 0
	vdPrimary    = 1
	vdSupplement = 2
	vdTerminator = 255
)

// fixVolumeDescriptors puts the El Torito boot record right after the
// primary volume descriptor (sector 17, where El Torito says BIOSes look;
// go-diskfs puts Joliet's descriptor there and SeaBIOS then refuses the CD)
// and replaces the time.Now() dates go-diskfs writes with mtime.
func fixVolumeDescriptors(f *os.File, mtime time.Time) error {
	var vds [][]byte
	for s := int64(16); ; s++ {
		b := make([]byte, cdSector)
		if _, err := f.ReadAt(b, s*cdSector); err != nil {
			return fmt.Errorf("volume descriptor %d: %w", s, err)
		}
		if string(b[1:6]) != "CD001" {
			return fmt.Errorf("volume descriptor %d: bad signature", s)
		}
		vds = append(vds, b)
		if b[0] == vdTerminator {
			break
		}
		if len(vds) > 8 {
			return errors.New("volume descriptor set without terminator")
		}
	}
	var order [][]byte
	for _, want := range []byte{vdPrimary, vdBoot, vdSupplement, vdTerminator} {
		for _, b := range vds {
			if b[0] == want {
				order = append(order, b)
			}
		}
	}
	if len(order) != len(vds) || order[0][0] != vdPrimary {
		return errors.New("unexpected volume descriptors")
	}
	date := isoDate(mtime)
	for i, b := range order {
		if b[0] == vdPrimary || b[0] == vdSupplement {
			copy(b[813:830], date)                 // creation
			copy(b[830:847], date)                 // modification
			copy(b[847:864], isoDate(time.Time{})) // expiration: none
			copy(b[864:881], date)                 // effective
		}
		if _, err := f.WriteAt(b, int64(16+i)*cdSector); err != nil {
			return err
		}
	}
	return nil
}

// isoDate formats t as a volume descriptor date (ECMA-119 8.4.26.1); the
// zero time is "not specified".
func isoDate(t time.Time) []byte {
	if t.IsZero() {
		return append(bytes.Repeat([]byte{'0'}, 16), 0)
	}
	t = t.UTC()
	return append([]byte(fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/10_000_000)), 0)
}

type bootImage struct {
	lba     uint32 // CD sector
	sectors uint16 // 512-byte sectors the catalog says to load
}

// readBootCatalog returns the BIOS (default) and EFI entries of the El
// Torito catalog that the boot record at sector 17 points to.
func readBootCatalog(f io.ReaderAt) (bios, efi bootImage, err error) {
	br := make([]byte, cdSector)
	if _, err = f.ReadAt(br, 17*cdSector); err != nil {
		return
	}
	if br[0] != vdBoot || !bytes.HasPrefix(br[7:], []byte("EL TORITO SPECIFICATION")) {
		return bios, efi, errors.New("no El Torito boot record at sector 17")
	}
	cat := make([]byte, cdSector)
	if _, err = f.ReadAt(cat, int64(binary.LittleEndian.Uint32(br[0x47:]))*cdSector); err != nil {
		return
	}
	entry := func(e []byte) bootImage {
		return bootImage{lba: binary.LittleEndian.Uint32(e[8:12]), sectors: binary.LittleEndian.Uint16(e[6:8])}
	}
	if cat[0] != 1 || cat[0x1e] != 0x55 || cat[0x1f] != 0xaa || cat[0x20] != 0x88 {
		return bios, efi, errors.New("unexpected El Torito catalog")
	}
	bios = entry(cat[0x20:0x40])
	if (cat[0x40] != 0x90 && cat[0x40] != 0x91) || cat[0x41] != byte(iso9660.EFI) || cat[0x60] != 0x88 {
		return bios, efi, errors.New("El Torito catalog has no EFI entry after the BIOS one")
	}
	efi = entry(cat[0x60:0x80])
	return bios, efi, nil
}

// fixBootInfoChecksum recomputes the El Torito boot info table checksum of
// the BIOS image: the sum of its 32-bit words from byte 64 on.
func fixBootInfoChecksum(f *os.File, bios bootImage) error {
	tbl := make([]byte, 16)
	start := int64(bios.lba) * cdSector
	if _, err := f.ReadAt(tbl, start+8); err != nil {
		return err
	}
	length := int64(binary.LittleEndian.Uint32(tbl[8:12]))
	img := make([]byte, (length+3)/4*4)
	if _, err := f.ReadAt(img[:length], start); err != nil {
		return err
	}
	var sum uint32
	for i := 64; i+4 <= len(img); i += 4 {
		sum += binary.LittleEndian.Uint32(img[i:])
	}
	binary.LittleEndian.PutUint32(tbl[12:16], sum)
	_, err := f.WriteAt(tbl[12:16], start+20)
	return err
}

// fixJoliet points the Joliet tree's subdirectory records at the Joliet
// directories. go-diskfs v1.9.4 leaves them pointing at the primary tree's
// directories (whose names are 8.3 ASCII), so GRUB, Linux and xorriso saw
// /boot's children with mangled names. Both path tables list the
// directories in the same order, which gives the mapping.
func fixJoliet(f *os.File) error {
	readVD := func(sector int64) ([]byte, error) {
		b := make([]byte, cdSector)
		_, err := f.ReadAt(b, sector*cdSector)
		return b, err
	}
	pvd, err := readVD(16)
	if err != nil {
		return err
	}
	var svd []byte
	for s := int64(17); s < 24; s++ {
		b, err := readVD(s)
		if err != nil {
			return err
		}
		if b[0] == vdTerminator {
			break
		}
		if b[0] == vdSupplement {
			svd = b
		}
	}
	if svd == nil {
		return nil
	}
	pathTable := func(vd []byte) ([]uint32, error) {
		size := binary.LittleEndian.Uint32(vd[132:136])
		loc := binary.LittleEndian.Uint32(vd[140:144])
		b := make([]byte, size)
		if _, err := f.ReadAt(b, int64(loc)*cdSector); err != nil {
			return nil, err
		}
		var locs []uint32
		for i := 0; i+8 <= len(b); {
			n := int(b[i])
			if n == 0 {
				return nil, errors.New("bad path table")
			}
			locs = append(locs, binary.LittleEndian.Uint32(b[i+2:i+6]))
			i += 8 + n + n%2
		}
		return locs, nil
	}
	primary, err := pathTable(pvd)
	if err != nil {
		return err
	}
	joliet, err := pathTable(svd)
	if err != nil {
		return err
	}
	if len(primary) != len(joliet) {
		return fmt.Errorf("path tables list %d and %d directories", len(primary), len(joliet))
	}
	// Map primary directory locations to Joliet ones and read each Joliet
	// directory's size from its "." record.
	toJoliet := make(map[uint32]uint32, len(primary))
	sizes := make(map[uint32]uint32, len(joliet))
	extents := make(map[uint32][]byte, len(joliet))
	for i, j := range joliet {
		toJoliet[primary[i]] = j
		head := make([]byte, 34)
		if _, err := f.ReadAt(head, int64(j)*cdSector); err != nil {
			return err
		}
		size := binary.LittleEndian.Uint32(head[10:14])
		ext := make([]byte, size)
		if _, err := f.ReadAt(ext, int64(j)*cdSector); err != nil {
			return err
		}
		sizes[j], extents[j] = size, ext
	}
	for j, ext := range extents {
		changed := false
		for i := 0; i < len(ext); {
			n := int(ext[i])
			if n == 0 { // records do not cross sectors
				i = (i/cdSector + 1) * cdSector
				continue
			}
			if i+n > len(ext) || n < 34 {
				return fmt.Errorf("bad directory record at sector %d", j)
			}
			rec := ext[i : i+n]
			isDotOrDotDot := rec[32] == 1 && (rec[33] == 0 || rec[33] == 1)
			if rec[25]&2 != 0 && !isDotOrDotDot {
				loc := binary.LittleEndian.Uint32(rec[2:6])
				if jl, ok := toJoliet[loc]; ok {
					putBoth32(rec[2:10], jl)
					putBoth32(rec[10:18], sizes[jl])
					changed = true
				}
			}
			i += n
		}
		if changed {
			if _, err := f.WriteAt(ext, int64(j)*cdSector); err != nil {
				return err
			}
		}
	}
	return nil
}

// putBoth32 writes v in ECMA-119's both-byte-order form (LE then BE).
func putBoth32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b[0:4], v)
	binary.BigEndian.PutUint32(b[4:8], v)
}
