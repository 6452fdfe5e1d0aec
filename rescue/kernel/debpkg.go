//go:build linux

package kernel

// Fetching any Debian package the way Fetch fetches the kernel: the boot
// chain that Secure Boot needs (shim-signed, grub-efi-amd64-signed) comes
// from Debian's packages too, downloaded and unpacked, never installed.

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Package is a Debian package unpacked (dpkg -x) in a cache.
type Package struct {
	Name    string // e.g. "shim-signed"
	Version string // Debian version, e.g. "1.51~1+deb12u1+16.1-2~deb12u1"
	Deb     string // the .deb in the cache
	Root    string // the unpacked tree: Root/usr/lib/…
}

// File returns the path of rel (a path inside the package, such as
// "usr/lib/shim/shimx64.efi.signed") in the unpacked tree.
func (p *Package) File(rel string) string {
	return filepath.Join(p.Root, filepath.FromSlash(strings.TrimPrefix(rel, "/")))
}

// FetchPackage returns apt's candidate version of the Debian package name,
// unpacked in cacheDir, as Fetch does for the kernel: apt-get download
// --print-uris names the .deb with its size and SHA256, apt-get download
// fetches it (checked against both), and dpkg -x unpacks it. The cache
// holds
//
//	cacheDir/NAME_VERSION_ARCH.deb
//	cacheDir/pkg-NAME_VERSION_ARCH/       (the unpacked tree)
//
// A second call for the same version only asks apt. Concurrent calls on the
// same cacheDir (and Fetch) wait for each other. log may be nil.
func FetchPackage(ctx context.Context, cacheDir, name string, log *slog.Logger) (*Package, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cacheDir, unlock, err := openCache(ctx, cacheDir, "package")
	if err != nil {
		return nil, err
	}
	defer unlock()
	log = log.With("package", name)

	tmp, err := os.MkdirTemp(cacheDir, "download.tmp-")
	if err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	deb, err := printURIs(ctx, tmp, name, log)
	if err != nil {
		return nil, err
	}
	version, err := debVersion(deb.name, name)
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris %s: %w", name, err)
	}
	p := &Package{
		Name:    name,
		Version: version,
		Deb:     filepath.Join(cacheDir, deb.name),
		Root:    filepath.Join(cacheDir, "pkg-"+strings.TrimSuffix(deb.name, ".deb")),
	}
	if fi, err := os.Stat(p.Root); err == nil && fi.IsDir() {
		log.Debug("package: reusing cache", "root", p.Root)
		return p, nil
	}
	if err := download(ctx, tmp, p.Deb, name, deb, log); err != nil {
		return nil, err
	}
	log.Info("package: unpack started", "deb", p.Deb)
	start := time.Now()
	newRoot, err := os.MkdirTemp(cacheDir, "pkg-"+name+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	defer os.RemoveAll(newRoot) // a no-op after the rename below
	if _, err := run(ctx, "", "dpkg", "-x", p.Deb, newRoot); err != nil {
		log.Error("package: unpack failed", "err", err)
		return nil, err
	}
	if err := os.Rename(newRoot, p.Root); err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	log.Info("package: unpack finished", "root", p.Root, "took", time.Since(start).Round(time.Millisecond))
	return p, nil
}

// removeStale removes what a Fetch or FetchPackage that was killed left;
// call it with the cache's lock held, when nobody uses them.
func removeStale(cacheDir string) {
	for _, pat := range []string{"download.tmp-*", "root-*.tmp-*", "pkg-*.tmp-*"} {
		stale, _ := filepath.Glob(filepath.Join(cacheDir, pat))
		for _, p := range stale {
			os.RemoveAll(p)
		}
	}
}

// printURIs asks apt where the candidate .deb of pkg is, from the empty
// folder tmp (--print-uris prints nothing for a file already in the working
// directory). A fresh container has no package lists: then it runs apt-get
// update once and asks again.
func printURIs(ctx context.Context, tmp, pkg string, log *slog.Logger) (debFile, error) {
	argv := aptGet("download", "--print-uris", pkg)
	out, err := run(ctx, tmp, argv...)
	if err != nil && ctx.Err() == nil {
		log.Info("package: apt-get update started", "why", err)
		start := time.Now()
		if _, err := run(ctx, "", aptGet("update")...); err != nil {
			log.Error("package: apt-get update failed", "err", err)
			return debFile{}, err
		}
		log.Info("package: apt-get update finished", "took", time.Since(start).Round(time.Millisecond))
		out, err = run(ctx, tmp, argv...)
	}
	if err != nil {
		return debFile{}, err
	}
	deb, err := parsePrintURIs(out)
	if err != nil {
		return debFile{}, fmt.Errorf("apt-get download --print-uris %s: %w", pkg, err)
	}
	return deb, nil
}

// download puts pkg's .deb at debPath unless a file there already has the
// size and hash apt expects. apt-get download writes into tmp (a folder in
// the same cache); the file is checked, then renamed into place.
func download(ctx context.Context, tmp, debPath, pkg string, deb debFile, log *slog.Logger) error {
	if deb.verify(debPath) == nil {
		return nil
	}
	log.Info("package: download started", "deb", deb.name, "size", deb.size)
	start := time.Now()
	if _, err := run(ctx, tmp, aptGet("download", pkg)...); err != nil {
		log.Error("package: download failed", "err", err)
		return err
	}
	if err := deb.verify(filepath.Join(tmp, deb.name)); err != nil {
		return fmt.Errorf("apt-get download %s: %w", pkg, err)
	}
	if err := os.Rename(filepath.Join(tmp, deb.name), debPath); err != nil {
		return fmt.Errorf("package cache: %w", err)
	}
	log.Info("package: download finished", "deb", debPath, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// debVersion returns the Debian version in a .deb's file name as apt names
// it: NAME_VERSION_ARCH.deb, with the epoch's colon written %3a.
func debVersion(file, name string) (string, error) {
	rest, ok := strings.CutPrefix(file, name+"_")
	if !ok {
		return "", fmt.Errorf("%s is not a .deb of %s", file, name)
	}
	rest = strings.TrimSuffix(rest, ".deb")
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", fmt.Errorf("%s has no version and architecture", file)
	}
	v, err := url.PathUnescape(rest[:i])
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// openCache makes cacheDir absolute, creates it, takes its lock (other
// fetches on it wait) and clears what interrupted fetches left; the caller
// runs unlock when done. what names the cache in errors.
func openCache(ctx context.Context, cacheDir, what string) (dir string, unlock func(), err error) {
	dir, err = filepath.Abs(cacheDir)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("%s cache: %w", what, err)
	}
	unlock, err = lockDir(ctx, dir)
	if err != nil {
		return "", nil, err
	}
	removeStale(dir)
	return dir, unlock, nil
}
