package pxe

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// UEFILoader is what UEFI network boot clients are told to boot first, in
// full and in proxy mode: PXE clients (DHCP option 93 = 7 or 9) by TFTP
// name, HTTP boot clients (16) by URL, from which shim fetches GRUB and
// GRUB its configuration over HTTP. BIOS clients always get iPXE
// (undionly.kpxe), and iPXE (chained or in a NIC's ROM) always gets the
// iPXE script.
//
// The server cannot tell from a DHCP request whether the client's
// firmware enforces Secure Boot, so the choice is per server, not per
// client: UEFILoaderAuto gives every UEFI client the signed chain when the
// bundle holds it, because that chain boots with Secure Boot on and off,
// while iPXE (unsigned) boots only with it off.
//
// Behind a proxy, the network GRUB (trixie's 2.12) finds this server from
// the proxy offer the firmware followed, even when the network's DHCP
// server names another next-server (seen in TestPXESecureBootProxy; the
// 2.06 it replaced looked only at the DHCP server's next-server).
type UEFILoader int

const (
	// UEFILoaderAuto is UEFILoaderShim when the rescue bundle holds the
	// signed chain, and UEFILoaderIPXE with a bundle built without
	// Secure Boot support.
	UEFILoaderAuto UEFILoader = iota
	// UEFILoaderShim: shimx64.efi (signed by the Microsoft UEFI CA), which
	// loads Debian's signed network GRUB (served as grubx64.efi beside
	// it) over TFTP, whose per-client grub.cfg loads the Debian-signed
	// kernel and the initramfs over HTTP. Boots with Secure Boot on or
	// off; slower to start than iPXE (two loaders over TFTP at firmware
	// speed, and GRUB's own TCP).
	UEFILoaderShim
	// UEFILoaderIPXE: snponly.efi, the way UEFI clients booted before
	// Secure Boot support. Unsigned: firmware with Secure Boot on refuses
	// it.
	UEFILoaderIPXE
)

func (l UEFILoader) String() string {
	switch l {
	case UEFILoaderAuto:
		return "auto"
	case UEFILoaderShim:
		return "shim"
	case UEFILoaderIPXE:
		return "ipxe"
	}
	return fmt.Sprintf("uefiloader(%d)", int(l))
}

// ParseUEFILoader reads auto, shim or ipxe.
func ParseUEFILoader(s string) (UEFILoader, error) {
	for _, l := range []UEFILoader{UEFILoaderAuto, UEFILoaderShim, UEFILoaderIPXE} {
		if s == l.String() {
			return l, nil
		}
	}
	return UEFILoaderAuto, fmt.Errorf("UEFI loader %q: use auto (shim when the bundle is Secure Boot capable, else iPXE), shim or ipxe", s)
}

// The signed boot chain in a rescue bundle, as rescue/bundle writes it:
// Debian's shim-signed and grub-efi-amd64-signed (grubnetx64.efi is the
// network GRUB, whose built-in prefix is /grub and which has tftp,
// efinet and http built in: under Secure Boot it loads no modules).
const (
	bundleShim        = "boot/" + bundle.ShimEFI
	bundleGRUBNet     = "boot/" + bundle.GrubNetEFI
	bundleMokManager  = "boot/" + bundle.MokManagerEFI
	secureBootDir     = "secureboot" // served directory of the chain
	loaderIPXE        = "ipxe"
	loaderShim        = "shim+grub"
	grubCfgPrefixName = "grub"
)

// secureBootFiles maps the names served under secureboot/ onto the
// bundle. Shim, loaded as secureboot/shimx64.efi, fetches grubx64.efi
// from the directory it came from: that name is the network GRUB.
var secureBootFiles = map[string]string{
	"shimx64.efi": bundleShim,
	"grubx64.efi": bundleGRUBNet,
	"mmx64.efi":   bundleMokManager,
}

// errNotTheClient refuses a client's configuration with a job to a
// request from another address (HTTP 403).
var errNotTheClient = errors.New("a job is sent only to the client itself")

// loaderName is what a client of kind fw boots first, for the status
// table and the log: "ipxe" or "shim+grub" ("" for none).
func (s *Server) loaderName(fw Firmware) string {
	switch fw {
	case FirmwareBIOS, FirmwareIPXE:
		return loaderIPXE
	case FirmwareUEFI, FirmwareUEFIHTTP:
		if s.shim {
			return loaderShim
		}
		return loaderIPXE
	}
	return ""
}

// grubFile says what a name under grub/ (GRUB's prefix on this server)
// is: the loader configuration that GRUB's built-in config sources
// (grub.cfg, or x86_64-efi/grub.cfg, which it would try first but cannot
// see: test -e lists the directory, which TFTP cannot), or a client's own
// configuration lifeboat/MAC.cfg that the loader configuration sources
// with GRUB's $net_default_mac. ok is false for any other name (GRUB also
// asks for its module lists, x86_64-efi/*.lst, which a signed GRUB has no
// use for: it loads no modules under Secure Boot). MAC is spelt as GRUB
// spells $net_default_mac: lower case, with colons.
func grubFile(name string) (kind grubKind, hw net.HardwareAddr, ok bool) {
	switch name {
	case "grub.cfg", "x86_64-efi/grub.cfg":
		return grubLoader, nil, true
	}
	m, found := strings.CutPrefix(name, "lifeboat/")
	if !found {
		return 0, nil, false
	}
	m, found = strings.CutSuffix(m, ".cfg")
	if !found || len(m) != len("52:54:00:12:34:56") {
		return 0, nil, false
	}
	// Only GRUB's spelling: one name per client.
	hw, err := net.ParseMAC(m)
	if err != nil || len(hw) != 6 || hw.String() != m {
		return 0, nil, false
	}
	return grubClient, hw, true
}

// grubKind is what a file under grub/ is.
type grubKind int

const (
	grubLoader grubKind = iota // grub.cfg: finds the client's own
	grubClient                 // lifeboat/MAC.cfg
)

// grubLoaderCfg is the configuration GRUB reads first: it sources the
// client's own configuration, found by the MAC address of the card GRUB
// booted from (as iPXE's script is fetched with ?mac=). No serial console
// of its own: firmware that has one (OVMF does) already copies the
// console there.
func grubLoaderCfg() string {
	return `# Lifeboat: the network GRUB of UEFI clients (shim loaded it). The
# client's own configuration comes next, by the MAC address it booted from.
set timeout=0
if [ -n "$net_default_mac" ]; then
	source "$prefix/lifeboat/$net_default_mac.cfg"
fi
echo "Lifeboat: this machine's configuration could not be loaded from the PXE server (see its log)."
`
}

// grubClientCfg is one client's GRUB configuration: the same kernel,
// initramfs and command line as its iPXE script, over HTTP from this
// server like iPXE's. Debian's signed network GRUB (2.12) has http built
// in (and loads no modules under Secure Boot). Not over TFTP: that GRUB
// opens the initramfs at `initrd` and reads it only when the kernel's EFI
// stub asks, seconds later, and a TFTP transfer idle that long is timed
// out (an HTTP response waits, bounded by StallTimeout).
func (s *Server) grubClientCfg(mac, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "echo 'Lifeboat: booting the rescue environment for %s'\n", mac)
	dev := "(http," + s.c.hostPort() + ")"
	fmt.Fprintf(&b, "linux %s/rescue/vmlinuz", dev)
	for _, p := range kernel.SplitCmdline(cmdline) {
		b.WriteString(" " + grubQuote(p))
	}
	fmt.Fprintf(&b, "\ninitrd %s/rescue/initramfs\nboot\n", dev)
	return b.String()
}

// grubQuote makes p one word of GRUB's script language, taken literally:
// single quotes (inside which nothing is special: no $ expansion, no
// wildcards), and a single quote as '\”.
func grubQuote(p string) string {
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}

// grubConfig answers a name under grub/ for the client at ip, over TFTP
// or HTTP: the loader configuration, or the client's own. A client's own
// configuration with a job (rule arguments) goes only to that client,
// with a new report token, as the iPXE script does. It returns the
// configuration and, for the log, the job's arguments ({token} standing
// for the token).
func (s *Server) grubConfig(name string, ip netip.Addr) (cfg, args string, err error) {
	kind, hw, ok := grubFile(name)
	switch {
	case !ok:
		return "", "", fmt.Errorf("grub/%s: %w", name, fs.ErrNotExist)
	case kind == grubLoader:
		return grubLoaderCfg(), "", nil
	}
	mac := hw.String()
	var token string
	if s.ruleArgs(hw) != "" {
		if ok, _ := s.isClient(mac, ip); !ok {
			s.warnEvery("script", "grub: configuration with a job refused: the request came from an address that is not the address of that client; only the client itself gets its job (and report token)", "mac", mac, "ip", ip)
			return "", "", fmt.Errorf("this address does not belong to %s: %w", mac, errNotTheClient)
		}
		token = newToken()
	}
	cmdline, args := s.cmdline(hw, token)
	s.clients.boot(mac, ip, token, "grub config")
	return s.grubClientCfg(mac, cmdline), args, nil
}
