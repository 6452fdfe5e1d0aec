// Package bundle builds the rescue bundle: Debian's kernel, and an
// initramfs made through u-root's Go APIs holding u-root's init, a few
// u-root commands, the lifeboat binary as the uinit, the kernel modules the
// rescue environment needs and ntfs-3g with its libraries. The media writer
// and the PXE server package what it writes:
//
//	out/rescue/vmlinuz        the kernel (EFI-stub bzImage)
//	out/rescue/initramfs      zstd-compressed newc cpio
//	out/rescue/bundle.json    versions, sizes, checksums, default command line,
//	                          the signed components and secure_boot
//	out/rescue/boot/          GRUB images for media (mkmedia/grubprep) and
//	                          Debian's signed shimx64.efi, mmx64.efi,
//	                          grubx64.efi, grubnetx64.efi (ShimEFI …)
//
// Smallest use:
//
//	b, err := bundle.Build(ctx, bundle.Options{Out: "out/rescue", Source: "."})
package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Info is bundle.json.
type Info struct {
	Version       string          `json:"version"`
	KernelVersion string          `json:"kernel_version"`
	Cmdline       string          `json:"cmdline"`
	Created       time.Time       `json:"created"`
	Files         map[string]File `json:"files"`
	Modules       []string        `json:"modules"`
	Commands      []string        `json:"commands"`
	// SecureBoot says the bundle boots under Secure Boot: Debian's signed
	// shim and GRUB are in boot/ (Signed lists them), the kernel carries
	// Debian's Authenticode signature and every module its appended
	// signature. NoSecureBoot says why not when it is false.
	SecureBoot   bool   `json:"secure_boot"`
	NoSecureBoot string `json:"no_secure_boot,omitempty"`
	// Signed are the signed components: shim, MOK manager, GRUB (disk and
	// network) and the kernel, with their Debian packages and checksums.
	Signed []Signed `json:"signed,omitempty"`
}

// File is one file of the bundle.
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Read reads dir/bundle.json and checks that the files it lists are there
// with their recorded sizes.
func Read(dir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, "bundle.json"))
	if err != nil {
		return nil, fmt.Errorf("rescue bundle %s: %w; build it with make rescue", dir, err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("rescue bundle %s: bundle.json: %w", dir, err)
	}
	// The signed boot files are checked by whoever uses them (media
	// writers, the PXE server), which say which of their files is missing.
	for name, f := range info.Files {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("rescue bundle %s: %w; rebuild it with make rescue", dir, err)
		}
		if st.Size() != f.Size {
			return nil, fmt.Errorf("rescue bundle %s: %s is %d bytes, bundle.json says %d; rebuild it with make rescue", dir, name, st.Size(), f.Size)
		}
	}
	return &info, nil
}
