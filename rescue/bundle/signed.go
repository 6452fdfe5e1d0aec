package bundle

// The Secure Boot chain of a bundle: Debian's signed shim and GRUB, copied
// into <bundle>/boot/ under fixed names, and the record of what they are.

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Files of the Secure Boot chain in <bundle>/boot/, as Build names them.
// Media and the PXE server take them from there.
const (
	// ShimEFI is Debian's shim, signed by the Microsoft UEFI CA (the key
	// every PC's firmware trusts): the first EFI binary under Secure
	// Boot. It loads grubx64.efi from its own folder (or over TFTP from
	// the folder it was served from) and checks it against Debian's key.
	ShimEFI = "shimx64.efi"
	// MokManagerEFI is shim's MOK manager, signed by Debian, which shim
	// starts when a key enrolment is pending.
	MokManagerEFI = "mmx64.efi"
	// GrubEFI is Debian's signed GRUB for disks and CDs (grubx64.efi):
	// built-in prefix /EFI/debian on the device it was loaded from, and
	// every module it needs built in, since it cannot load modules under
	// Secure Boot.
	GrubEFI = "grubx64.efi"
	// GrubNetEFI is Debian's signed network GRUB (grubnetx64.efi):
	// built-in prefix /grub on the TFTP server it came from, where it
	// reads /grub/x86_64-efi/grub.cfg or else /grub/grub.cfg.
	GrubNetEFI = "grubnetx64.efi"
)

// Signed is one file of the Secure Boot chain: where it came from and what
// it is.
type Signed struct {
	File    string `json:"file"`    // path in the bundle, e.g. "boot/shimx64.efi"
	Package string `json:"package"` // Debian package, e.g. "shim-signed"
	// Suite is the Debian suite the package came from when it is not
	// the build host's (apt's) own, e.g. "trixie" for GRUB.
	Suite   string `json:"suite,omitempty"`
	Version string `json:"version"` // the package's Debian version
	Source  string `json:"source"`  // the file's path in the package
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	// Signer is the CA the file's Authenticode signature chains to, as
	// Debian signs it: the one the firmware's db holds for shim, the one
	// built into shim for the rest. It is what the verifier checks, not
	// read from the file here (osslsigncode verify shows the chain).
	Signer string `json:"signer"`
}

// signedFiles are the chain's files: package, path in it, name in
// <bundle>/boot/, signer. Debian's fallback fbx64.efi is left out on
// purpose: it writes boot entries into the firmware's variables, which a
// rescue stick must not do to the machine it rescues.
// The CAs the chain's signatures lead to.
const (
	microsoftCA = "Microsoft Corporation UEFI CA 2011"
	debianCA    = "Debian Secure Boot CA"
)

// grubSuite is the Debian suite GRUB comes from: trixie's signed GRUB
// 2.12, not bookworm's 2.06 (the build host's), for memory. GRUB 2.06
// takes a quarter of free memory as its heap when it starts and boots the
// kernel through the EFI handover entry, so the kernel's 63.6 MiB
// init_size is allocated twice (once by GRUB, once by the EFI stub):
// every UEFI path then needed 288 MB, 320 MB under Secure Boot. GRUB 2.12
// grows its heap on demand and starts the kernel as an EFI image, and
// every UEFI path reaches the rescue environment at 256 MB (measured down
// to 224 MB under Secure Boot, 208 MB without). Bookworm's shim (16.1)
// accepts it: 2.12's SBAT generation (grub,7) is above the one shim
// requires (grub,5), and Debian's Secure Boot CA signs both.
//
// The network GRUB (GrubNetEFI) is trixie's 2.12 too, for the same
// reason, and because it has http built in (2.06 had only tftp): 2.12
// opens the initramfs at `initrd` but reads it only when the kernel's EFI
// stub asks for it (LoadFile2), seconds later under Secure Boot, and a
// TFTP transfer left idle that long is timed out by the server ("Failed
// to load initrd: 0x8000000000000001"), where an HTTP response waits. So
// the PXE server's GRUB configuration loads the kernel and the initramfs
// over HTTP (pxe's grubClientCfg).
const grubSuite = "trixie"

var signedFiles = []struct{ pkg, suite, src, name, signer string }{
	{"shim-signed", "", "usr/lib/shim/shimx64.efi.signed", ShimEFI, microsoftCA},
	{"shim-helpers-amd64-signed", "", "usr/lib/shim/mmx64.efi.signed", MokManagerEFI, debianCA},
	{"grub-efi-amd64-signed", grubSuite, "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", GrubEFI, debianCA},
	{"grub-efi-amd64-signed", grubSuite, "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", GrubNetEFI, debianCA},
}

// SecureBootCapable reports whether media and the PXE server can boot the
// bundle under Secure Boot: it has the signed chain and a signed kernel.
// The error says why not.
func (i *Info) SecureBootCapable() error {
	if !i.SecureBoot {
		if i.NoSecureBoot != "" {
			return errors.New(i.NoSecureBoot)
		}
		return errors.New("the bundle was built without Debian's signed boot chain; rebuild it with make rescue")
	}
	for _, name := range []string{ShimEFI, GrubEFI} {
		if i.SignedFile("boot/"+name) == nil {
			return fmt.Errorf("bundle.json marks the bundle Secure Boot capable but lists no boot/%s; rebuild it with make rescue", name)
		}
	}
	return nil
}

// SignedFile returns the record of the chain's file at path (relative to
// the bundle, e.g. "boot/shimx64.efi"), or nil.
func (i *Info) SignedFile(path string) *Signed {
	for k := range i.Signed {
		if i.Signed[k].File == path {
			return &i.Signed[k]
		}
	}
	return nil
}

// Authenticode reports whether the PE image at path carries an
// Authenticode signature (a certificate table in its security data
// directory). It does not check the signature: the firmware and shim do.
func Authenticode(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	p, err := pe.NewFile(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	defer p.Close()
	var dd []pe.DataDirectory
	switch h := p.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dd = h.DataDirectory[:h.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		dd = h.DataDirectory[:h.NumberOfRvaAndSizes]
	default:
		return false, fmt.Errorf("%s: no PE optional header", path)
	}
	if len(dd) <= pe.IMAGE_DIRECTORY_ENTRY_SECURITY {
		return false, nil
	}
	sec := dd[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
	if sec.VirtualAddress == 0 || sec.Size < 8 {
		return false, nil
	}
	// The first WIN_CERTIFICATE: length, revision, type 2 (PKCS#7).
	var hdr [8]byte
	if _, err := f.ReadAt(hdr[:], int64(sec.VirtualAddress)); err != nil {
		return false, fmt.Errorf("%s: certificate table: %w", path, err)
	}
	return binary.LittleEndian.Uint16(hdr[6:]) == 2, nil
}

// moduleSignatureMagic ends every kernel module signed with the kernel's
// module key (scripts/sign-file); a module that lost it (stripped, or
// recompressed by someone) does not load under lockdown.
var moduleSignatureMagic = []byte("~Module signature appended~\n")

// moduleSigned reports whether the module file at path ends with an
// appended signature.
func moduleSigned(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	n := int64(len(moduleSignatureMagic))
	if fi.Size() < n {
		return false, nil
	}
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, fi.Size()-n); err != nil && err != io.EOF {
		return false, err
	}
	return bytes.Equal(tail, moduleSignatureMagic), nil
}
