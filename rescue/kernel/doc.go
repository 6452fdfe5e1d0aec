// Package kernel provides the Linux kernel and the kernel modules of the
// rescue environment: Debian's current amd64 kernel, fetched as a .deb and
// unpacked into a cache without touching the host's own packages, and a
// trimmed module tree for the initramfs that u-root's pkg/kmodule can load.
//
// The smallest use:
//
//	k, err := kernel.Fetch(ctx, "/var/cache/lifeboat/kernel", nil)
//	if err != nil { ... }
//	mods, err := k.Resolve(kernel.DefaultModules)
//	if err != nil { ... }
//	err = k.Stage(initramfsRoot, mods) // writes initramfsRoot/lib/modules/<release>/
//
// and k.Image is the bzImage to boot with that initramfs. Users who bring
// their own kernel use FromDirs instead of Fetch.
//
// Fetch needs apt-get, apt-cache and dpkg (a Debian or Ubuntu host) and
// depmod from the kmod package. Everything after it is pure Go.
//
// ParseAliases and Aliases.Match, the modules.alias matcher that Resolve
// and the rescue environment's coldplug share, build on every OS; the rest
// of the package is Linux-only.
package kernel
