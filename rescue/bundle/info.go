// Package bundle builds the rescue bundle: Debian's kernel, and an
// initramfs made through u-root's Go APIs holding u-root's init, a few
// u-root commands, the lifeboat binary as the uinit, the kernel modules the
// rescue environment needs and ntfs-3g with its libraries. The media writer
// and the PXE server package what it writes:
//
//	out/rescue/vmlinuz        the kernel (EFI-stub bzImage)
//	out/rescue/initramfs      zstd-compressed newc cpio
//	out/rescue/bundle.json    versions, sizes, checksums, default command line
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
	for name, f := range info.Files {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("rescue bundle %s: %w; rebuild it with make rescue", dir, err)
		}
		if st.Size() != f.Size {
			return nil, fmt.Errorf("rescue bundle %s: %s is %d bytes, bundle.json says %d; rebuild it with make rescue", dir, name, st.Size(), f.Size)
		}
	}
	return &info, nil
}
