package mkmedia

// What goes into EFI/ on a medium's ESP (and the El Torito EFI image): the
// Secure Boot chain when the bundle has one, else the bundle's own GRUB.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// Debian's signed boot chain in <bundle>/boot/, as the bundle builder names
// it (package rescue/bundle); present when bundle.Info.SecureBoot is true.
const (
	BootShim       = bundle.ShimEFI       // shimx64.efi: becomes EFI/BOOT/BOOTX64.EFI
	BootGrubSigned = bundle.GrubEFI       // grubx64.efi: shim loads it from EFI/BOOT/
	BootMokManager = bundle.MokManagerEFI // mmx64.efi: shim starts it for a pending key enrolment
)

// SignedGrubDir is where Debian's signed GRUB looks for its config: its
// built-in prefix is /EFI/debian on the device it was loaded from, and it
// sources $prefix/grub.cfg from there. Media put SignedGrubConfig in it on
// the ESP and, for a CD (where GRUB sees the ISO 9660 volume as its
// device), in the ISO 9660 tree. Only when this folder does not exist on
// its device does that GRUB search every disk for /.disk/info — a Debian
// installer stick's — and take that disk's /boot/grub/grub.cfg: the
// folder's presence is what keeps it on our medium.
const SignedGrubDir = "/EFI/debian"

// signedGrubCfg is the config file inside SignedGrubDir.
const signedGrubCfg = SignedGrubDir + "/grub.cfg"

// SignedGrubConfig is what Debian's signed GRUB sources from SignedGrubDir:
// the same steps as the early config built into the bundle's own GRUB
// images (mkmedia/grubprep), then the menu. $root is the device GRUB was
// loaded from; search prefers it and the other partitions of its disk, so
// with two Lifeboat sticks attached GRUB stays on the one it started from.
func SignedGrubConfig() string {
	return `# Lifeboat: Debian's signed GRUB (prefix /EFI/debian) sources this.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set lb_boot="$root"
regexp --set=1:lb_disk "^([^,]*)" "$root"
search --no-floppy --file --set=root --hint="$lb_boot" --hint="$lb_disk" --hint="${lb_disk}," ` + MarkerFile + `
set prefix="($root)/boot/grub"
source "$prefix/grub.cfg"
`
}

// efiFile is one file of the EFI tree, path relative to the volume root.
type efiFile struct {
	path string
	data []byte
}

// efiTree returns the files a medium's ESP carries under EFI/: with a
// Secure-Boot-capable bundle, shim as the removable-media loader
// EFI/BOOT/BOOTX64.EFI, the signed GRUB and MOK manager beside it, and
// SignedGrubConfig in SignedGrubDir; otherwise the bundle's own GRUB as
// BOOTX64.EFI. Shim also boots with Secure Boot off, so one layout serves
// both. Every signed file is checked against its checksum in bundle.json.
func efiTree(dir string, info *bundle.Info) ([]efiFile, error) {
	boot := BundleBootFiles(dir)
	if info.SecureBootCapable() != nil {
		efi, err := boot.Read(BootEFI)
		if err != nil {
			return nil, err
		}
		return []efiFile{{"EFI/BOOT/BOOTX64.EFI", efi}}, nil
	}
	var files []efiFile
	for _, f := range []struct{ name, path string }{
		{BootShim, "EFI/BOOT/BOOTX64.EFI"},
		{BootGrubSigned, "EFI/BOOT/" + BootGrubSigned},
		{BootMokManager, "EFI/BOOT/" + BootMokManager},
	} {
		b, err := boot.Read(f.name)
		if err != nil {
			return nil, err
		}
		rec := info.SignedFile("boot/" + f.name)
		if rec == nil {
			return nil, fmt.Errorf("rescue bundle %s: bundle.json lists no boot/%s among the signed files; rebuild it with make rescue", dir, f.name)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != rec.SHA256 {
			return nil, fmt.Errorf("rescue bundle %s: boot/%s does not match its checksum in bundle.json (%s %s); rebuild it with make rescue", dir, f.name, rec.Package, rec.Version)
		}
		files = append(files, efiFile{f.path, b})
	}
	return append(files, efiFile{signedGrubCfg[1:], []byte(SignedGrubConfig())}), nil
}

// efiTreeSize is the bytes of the files in t.
func efiTreeSize(t []efiFile) int64 {
	var n int64
	for _, f := range t {
		n += int64(len(f.data))
	}
	return n
}
