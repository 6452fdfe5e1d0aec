package pxe

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Firmware is the kind of network boot client a DHCP request came from.
type Firmware int

const (
	FirmwareNone        Firmware = iota // an ordinary DHCP client (no boot file)
	FirmwareBIOS                        // legacy BIOS PXE (option 93 = 0)
	FirmwareUEFI                        // x64 UEFI PXE (option 93 = 7 or 9)
	FirmwareUEFIHTTP                    // x64 UEFI HTTP boot (option 93 = 16)
	FirmwareIPXE                        // iPXE (user class "iPXE"), chained or in ROM
	FirmwareUnsupported                 // a PXE client of an architecture we have no loader for
)

func (f Firmware) String() string {
	switch f {
	case FirmwareNone:
		return "none"
	case FirmwareBIOS:
		return "bios"
	case FirmwareUEFI:
		return "uefi"
	case FirmwareUEFIHTTP:
		return "uefi-http"
	case FirmwareIPXE:
		return "ipxe"
	case FirmwareUnsupported:
		return "unsupported"
	}
	return fmt.Sprintf("firmware(%d)", int(f))
}

// DHCP option codes this file uses that dhcpv4 has no names for.
var (
	optIPXEEncap = dhcpv4.GenericOptionCode(175) // iPXE's encapsulated options
	optUUID      = dhcpv4.GenericOptionCode(97)  // client machine identifier, echoed in PXE replies
)

const (
	optNoPXEDHCP = 176 // inside 175: do not wait for ProxyDHCP offers
	pxePort      = 4011
)

// classify tells the firmware apart by options 60, 77 and 93.
func classify(req *dhcpv4.DHCPv4) (Firmware, iana.Arch) {
	vc := req.ClassIdentifier()
	pxe := strings.HasPrefix(vc, "PXEClient") || strings.HasPrefix(vc, "HTTPClient")
	ipxe := req.Options.Has(optIPXEEncap) || slices.Contains(req.UserClass(), "iPXE") ||
		strings.Contains(string(req.GetOneOption(dhcpv4.OptionUserClassInformation)), "iPXE")
	arch := iana.INTEL_X86PC
	if a := req.ClientArch(); len(a) > 0 {
		arch = a[0]
	}
	switch {
	case ipxe:
		return FirmwareIPXE, arch
	case !pxe:
		return FirmwareNone, arch
	case arch == iana.INTEL_X86PC:
		return FirmwareBIOS, arch
	case arch == iana.EFI_X86_64 || arch == iana.EFI_BC:
		return FirmwareUEFI, arch
	case arch == iana.EFI_X86_64_HTTP:
		return FirmwareUEFIHTTP, arch
	}
	return FirmwareUnsupported, arch
}

// bootFile is what a client of kind fw loads next.
func (s *Server) bootFile(fw Firmware, mac string) string {
	switch fw {
	case FirmwareIPXE:
		return s.scriptURL(mac)
	case FirmwareBIOS:
		return "undionly.kpxe"
	case FirmwareUEFI:
		if s.shim {
			return secureBootDir + "/shimx64.efi"
		}
		return s.efiLoader
	case FirmwareUEFIHTTP:
		// The same chain by URL: shim fetches grubx64.efi from beside
		// itself over HTTP, and GRUB 2.12 its prefix (2.06, loaded over
		// HTTP boot, found no configuration).
		base := "http://" + s.c.hostPort() + "/"
		if s.shim {
			return base + secureBootDir + "/shimx64.efi"
		}
		return base + "ipxe/" + s.efiLoader
	}
	return ""
}

func (s *Server) scriptURL(mac string) string {
	return "http://" + s.c.hostPort() + "/boot.ipxe?mac=" + mac
}

// handleDHCP builds the reply to one request that arrived on port 67 or
// 4011; nil means no reply. It is what the fuzz target drives, so it must
// cope with any packet dhcpv4.FromBytes accepts.
func (s *Server) handleDHCP(req *dhcpv4.DHCPv4, port int) *dhcpv4.DHCPv4 {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return nil
	}
	mac := req.ClientHWAddr.String()
	fw, arch := classify(req)
	mt := req.MessageType()
	log := s.log.With("mac", mac)
	if fw == FirmwareUnsupported {
		log.Warn("dhcp: no boot loader for this client architecture; it gets no boot file", "arch", arch.String(), "type", mt.String())
	}
	giaddr, _ := netip.AddrFromSlice(req.GatewayIPAddr.To4())
	relayed := giaddr.IsValid() && !giaddr.IsUnspecified()

	// Port 4011: the follow-up request of UEFI PXE and of iPXE after a
	// proxy offer. Boot information only, never an address.
	if port == pxePort {
		if fw == FirmwareNone || fw == FirmwareUnsupported || (mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform) {
			return nil
		}
		ciaddr, _ := netip.AddrFromSlice(req.ClientIPAddr.To4())
		s.clients.sawPXE(mac, ciaddr, fw.String())
		r := s.proxyReply(req, dhcpv4.MessageTypeAck, fw, mac)
		log.Info("dhcp: boot server ack (port 4011)", "ip", ciaddr, "firmware", fw.String(), "boot", r.BootFileName)
		return r
	}

	if s.c.Proxy {
		if mt != dhcpv4.MessageTypeDiscover || fw == FirmwareNone || fw == FirmwareUnsupported {
			return nil
		}
		s.clients.update(mac, netip.Addr{}, fw.String(), StageDiscover, "dhcp discover")
		r := s.proxyReply(req, dhcpv4.MessageTypeOffer, fw, mac)
		s.clients.update(mac, netip.Addr{}, fw.String(), StageOffered, "proxy offer "+r.BootFileName)
		log.Info("dhcp: proxy offer", "firmware", fw.String(), "boot", r.BootFileName)
		return r
	}

	if relayed && !s.prefix.Contains(giaddr) {
		log.Warn("dhcp: relayed request from another subnet ignored; full mode leases only on the interface's subnet (use --proxy beside that subnet's DHCP server)", "relay", giaddr)
		return nil
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		want, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
		s.clients.update(mac, netip.Addr{}, fw.String(), StageDiscover, "dhcp discover")
		ip, err := s.leases.offer(mac, want)
		if err != nil {
			s.warnEvery("pool", "dhcp: no address to offer; clients that hold a lease keep being served", "mac", mac, "err", err)
			return nil
		}
		r := s.fullReply(req, dhcpv4.MessageTypeOffer, ip, fw, mac)
		s.clients.update(mac, netip.Addr{}, fw.String(), StageOffered, "offered "+ip.String())
		log.Info("dhcp: offer", "ip", ip, "firmware", fw.String(), "boot", r.BootFileName)
		return r
	case dhcpv4.MessageTypeRequest:
		sid, _ := netip.AddrFromSlice(req.ServerIdentifier().To4())
		if sid.IsValid() && sid != s.c.Addr {
			log.Info("dhcp: client chose another server", "server", sid)
			return nil
		}
		ip, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
		if !ip.IsValid() {
			ip, _ = netip.AddrFromSlice(req.ClientIPAddr.To4())
		}
		if !ip.IsValid() || ip.IsUnspecified() {
			return s.nak(req, "request names no address")
		}
		if err := s.leases.commit(mac, ip, s.c.LeaseTime); err != nil {
			if sid.IsValid() || !s.prefix.Contains(ip) {
				log.Info("dhcp: nak", "ip", ip, "err", err)
				return s.nak(req, err.Error())
			}
			// INIT-REBOOT for an address we do not know: stay silent
			// (RFC 2131 4.3.2).
			log.Info("dhcp: ignoring request for an address we did not give", "ip", ip, "err", err)
			return nil
		}
		r := s.fullReply(req, dhcpv4.MessageTypeAck, ip, fw, mac)
		s.clients.update(mac, ip, fw.String(), StageBound, "acked "+ip.String())
		log.Info("dhcp: ack", "ip", ip, "firmware", fw.String(), "boot", r.BootFileName, "lease", s.c.LeaseTime)
		return r
	case dhcpv4.MessageTypeDecline:
		ip, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
		if err := s.leases.decline(mac, ip); err != nil {
			s.warnEvery("decline", "dhcp: DECLINE ignored: only the client that holds an address may decline it", "mac", mac, "ip", ip, "err", err)
			return nil
		}
		log.Warn("dhcp: client declined its address (another machine uses it); it returns to the pool later", "ip", ip, "after", s.c.DeclineHold)
	case dhcpv4.MessageTypeRelease:
		if err := s.leases.release(mac); err != nil {
			log.Error("dhcp: release", "err", err)
		}
		log.Info("dhcp: release", "ip", req.ClientIPAddr)
	case dhcpv4.MessageTypeInform:
		r := s.fullReply(req, dhcpv4.MessageTypeAck, netip.Addr{}, fw, mac)
		if r != nil {
			r.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
		}
		return r
	}
	return nil
}

func (s *Server) nak(req *dhcpv4.DHCPv4, why string) *dhcpv4.DHCPv4 {
	r, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.c.Addr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptMessage(why)),
	)
	if err != nil {
		return nil
	}
	return r
}

// fullReply is an offer or ack of a full DHCP server: ip (unless zero),
// the network settings and, for boot clients, the boot file. Option 60 is
// left out on purpose: with it, UEFI PXE would go to port 4011 first; and
// iPXE is told (175.176) not to wait for ProxyDHCP offers.
func (s *Server) fullReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, ip netip.Addr, fw Firmware, mac string) *dhcpv4.DHCPv4 {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.c.Addr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(s.prefix.Bits(), 32))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.c.LeaseTime)),
	}
	if ip.IsValid() {
		mods = append(mods, dhcpv4.WithYourIP(ip.AsSlice()))
	}
	if s.c.Router.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(s.c.Router.AsSlice())))
	}
	if len(s.c.DNS) > 0 {
		var ips []net.IP
		for _, a := range s.c.DNS {
			ips = append(ips, a.AsSlice())
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(ips...)))
	}
	r, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil
	}
	s.addBoot(req, r, fw, mac)
	if fw == FirmwareIPXE {
		r.UpdateOption(dhcpv4.OptGeneric(optIPXEEncap, []byte{optNoPXEDHCP, 1, 1}))
	}
	if fw == FirmwareUEFIHTTP {
		r.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	}
	return r
}

// proxyReply is a ProxyDHCP offer (port 67) or boot server ack (port
// 4011): no address, option 60 "PXEClient", and the boot file. BIOS PXE
// and iPXE are told by option 43 (discovery control 8) to boot the file
// directly; UEFI firmware, some of which ignores such offers, gets no
// option 43 and asks on port 4011 instead (as pixiecore does).
func (s *Server) proxyReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, fw Firmware, mac string) *dhcpv4.DHCPv4 {
	vc := "PXEClient"
	if fw == FirmwareUEFIHTTP {
		vc = "HTTPClient"
	}
	r, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.c.Addr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vc)),
		dhcpv4.WithOptionCopied(req, optUUID),
	)
	if err != nil {
		return nil
	}
	r.ClientIPAddr = req.ClientIPAddr
	s.addBoot(req, r, fw, mac)
	if fw == FirmwareBIOS || fw == FirmwareIPXE {
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
	}
	return r
}

// addBoot sets next-server and the boot file name (in the header, where
// all firmware looks, and as options 66/67 for clients that ask).
func (s *Server) addBoot(req, r *dhcpv4.DHCPv4, fw Firmware, mac string) {
	file := s.bootFile(fw, mac)
	if file == "" {
		return
	}
	// iPXE chained from the firmware keeps the loader the firmware was
	// given; iPXE in a NIC's ROM is the loader.
	s.clients.setLoader(mac, s.loaderName(fw), fw == FirmwareIPXE)

	r.ServerIPAddr = s.c.Addr.AsSlice()
	r.ServerHostName = s.c.Addr.String()
	r.BootFileName = file
	if req.IsOptionRequested(dhcpv4.OptionTFTPServerName) {
		r.UpdateOption(dhcpv4.OptTFTPServerName(s.c.Addr.String()))
	}
	if req.IsOptionRequested(dhcpv4.OptionBootfileName) {
		r.UpdateOption(dhcpv4.OptBootFileName(file))
	}
}

// replyAddr is where a reply goes: back to the sender on port 4011 and to
// relays; to the client's address when it has one; broadcast otherwise
// (PXE firmware and iPXE all accept broadcast replies, and it needs no ARP
// entry for an address the client does not have yet).
func replyAddr(req *dhcpv4.DHCPv4, peer net.Addr, port int) net.Addr {
	if port == pxePort {
		return peer
	}
	if gi := req.GatewayIPAddr.To4(); gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: dhcpv4.ServerPort}
	}
	if ci := req.ClientIPAddr.To4(); ci != nil && !ci.IsUnspecified() && !req.IsBroadcast() {
		return &net.UDPAddr{IP: ci, Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
