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
	// Suite is the Debian suite it came from when fetched with
	// FetchPackageFrom ("trixie"); empty for the host's apt sources.
	Suite string
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
	return FetchPackageFrom(ctx, cacheDir, "", name, log)
}

// FetchPackageFrom is FetchPackage for the Debian suite suite (e.g.
// "trixie") instead of the host's apt sources, when suite is not empty. It
// never touches the host's apt configuration: apt runs on a private state
// in the cache,
//
//	cacheDir/apt-SUITE/sources.list   (deb MIRROR SUITE main)
//	cacheDir/apt-SUITE/lists/         (its package lists)
//	cacheDir/apt-SUITE/cache/         (apt's cache)
//
// with MIRROR http://deb.debian.org/debian, or $LIFEBOAT_DEBIAN_MIRROR.
// Its lists are fetched (apt-get update, signatures checked with the
// host's Debian keyring) when missing, older than a day, or for another
// mirror. The .deb is checked and unpacked as FetchPackage does.
func FetchPackageFrom(ctx context.Context, cacheDir, suite, name string, log *slog.Logger) (*Package, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cacheDir, unlock, err := openCache(ctx, cacheDir, "package")
	if err != nil {
		return nil, err
	}
	defer unlock()
	log = log.With("package", name)
	apt := hostApt
	if suite != "" {
		log = log.With("suite", suite)
		if apt, err = suiteApt(ctx, cacheDir, suite, log); err != nil {
			return nil, err
		}
	}

	tmp, err := os.MkdirTemp(cacheDir, "download.tmp-")
	if err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	deb, err := apt.printURIs(ctx, tmp, name, log)
	if err != nil {
		return nil, apt.explain(name, err)
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
		Suite:   suite,
	}
	if fi, err := os.Stat(p.Root); err == nil && fi.IsDir() {
		log.Debug("package: reusing cache", "root", p.Root)
		return p, nil
	}
	if err := apt.download(ctx, tmp, p.Deb, name, deb, log); err != nil {
		return nil, apt.explain(name, err)
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
func (a aptSource) printURIs(ctx context.Context, tmp, pkg string, log *slog.Logger) (debFile, error) {
	argv := a.aptGet("download", "--print-uris", pkg)
	out, err := run(ctx, tmp, argv...)
	if err != nil && ctx.Err() == nil && a.suite == "" {
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
func (a aptSource) download(ctx context.Context, tmp, debPath, pkg string, deb debFile, log *slog.Logger) error {
	if deb.verify(debPath) == nil {
		return nil
	}
	log.Info("package: download started", "deb", deb.name, "size", deb.size)
	start := time.Now()
	if _, err := run(ctx, tmp, a.aptGet("download", pkg)...); err != nil {
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

// aptSource is where apt looks for packages: the host's configuration
// (suite "") or a private state for one Debian suite (opts point apt at
// it).
type aptSource struct {
	suite  string
	mirror string
	dir    string   // cacheDir/apt-SUITE
	opts   []string // -o options for apt-get
}

var hostApt = aptSource{}

// aptGet is aptGet with a's options.
func (a aptSource) aptGet(args ...string) []string {
	return aptGet(append(append([]string{}, a.opts...), args...)...)
}

// explain says, for a package fetched from a suite, which suite and how
// to repair it; host errors are returned as they are.
func (a aptSource) explain(pkg string, err error) error {
	if a.suite == "" || err == nil {
		return err
	}
	return fmt.Errorf("%s from Debian %s (mirror %s, apt state %s): %w; fix: check that this machine reaches the mirror or set %s to another Debian mirror, that the keyring (debian-archive-keyring) is recent enough to know %s's signing key, or remove %s to fetch the lists again",
		pkg, a.suite, a.mirror, a.dir, err, MirrorEnv, a.suite, a.dir)
}

// MirrorEnv names the environment variable that replaces DefaultMirror
// for packages fetched from another suite (FetchPackageFrom).
const MirrorEnv = "LIFEBOAT_DEBIAN_MIRROR"

// DefaultMirror is the Debian mirror FetchPackageFrom uses.
const DefaultMirror = "http://deb.debian.org/debian"

// listsMaxAge is how old a suite's package lists may get before
// FetchPackageFrom fetches them again.
const listsMaxAge = 24 * time.Hour

// suiteApt prepares cacheDir/apt-SUITE and runs apt-get update on it when
// its lists are missing, older than listsMaxAge, or for another
// sources.list (another mirror). The caller holds the cache's lock.
func suiteApt(ctx context.Context, cacheDir, suite string, log *slog.Logger) (aptSource, error) {
	if suite == "" || strings.ContainsAny(suite, "/ \t\n") || strings.HasPrefix(suite, ".") {
		return aptSource{}, fmt.Errorf("Debian suite %q: not a suite name such as trixie", suite)
	}
	mirror := strings.TrimSpace(os.Getenv(MirrorEnv))
	if mirror == "" {
		mirror = DefaultMirror
	}
	dir := filepath.Join(cacheDir, "apt-"+suite)
	a := aptSource{suite: suite, mirror: mirror, dir: dir, opts: []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
	}}
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return aptSource{}, fmt.Errorf("package cache: %w", err)
		}
	}
	list := fmt.Sprintf("deb %s %s main\n", mirror, suite)
	sources := filepath.Join(dir, "sources.list")
	// stamp is touched after each successful apt-get update (apt dates
	// the lists by the mirror's clock, not by when it fetched them).
	stamp := filepath.Join(dir, "updated")
	old, _ := os.ReadFile(sources)
	why := ""
	if string(old) != list {
		if err := os.WriteFile(sources, []byte(list), 0o644); err != nil {
			return aptSource{}, fmt.Errorf("package cache: %w", err)
		}
		why = "new sources.list: " + strings.TrimSpace(list)
	} else if !hasRelease(filepath.Join(dir, "lists")) {
		why = "no package lists"
	} else if fi, err := os.Stat(stamp); err != nil {
		why = "package lists of unknown age"
	} else if time.Since(fi.ModTime()) > listsMaxAge {
		why = "package lists older than a day"
	}
	if why == "" {
		return a, nil
	}
	log.Info("package: apt-get update started", "why", why, "apt", dir)
	start := time.Now()
	if _, err := run(ctx, "", a.aptGet("update")...); err != nil {
		log.Error("package: apt-get update failed", "err", err)
		// Leave no lists that look fresh behind a failed update.
		os.Remove(sources)
		return aptSource{}, a.explain("lists", err)
	}
	if !hasRelease(filepath.Join(dir, "lists")) {
		os.Remove(sources)
		return aptSource{}, a.explain("lists", fmt.Errorf("apt-get update left no Release file in %s", filepath.Join(dir, "lists")))
	}
	if err := os.WriteFile(stamp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return aptSource{}, fmt.Errorf("package cache: %w", err)
	}
	log.Info("package: apt-get update finished", "took", time.Since(start).Round(time.Millisecond))
	return a, nil
}

// hasRelease reports whether an apt lists folder holds a suite's
// (In)Release file, which apt-get update keeps only once it verified it.
func hasRelease(lists string) bool {
	for _, pat := range []string{"*_InRelease", "*_Release"} {
		if m, _ := filepath.Glob(filepath.Join(lists, pat)); len(m) > 0 {
			return true
		}
	}
	return false
}
