// Package pxe is Lifeboat's network boot server: DHCP (a full server that
// leases addresses, or a proxy that only answers PXE clients beside an
// existing router), TFTP for the first-stage boot loader (iPXE) and HTTP for
// the iPXE script, the rescue kernel and initramfs, images and the job
// reports that the rescue environment posts back.
//
// Which file a client boots is decided from DHCP options 93 (client
// architecture) and 77 (user class "iPXE"): BIOS firmware gets
// undionly.kpxe over TFTP; iPXE, whether chained that way or already in
// the NIC's option ROM, gets http://SERVER/boot.ipxe?mac=MAC, a script
// that boots the rescue environment with the kernel parameters of the
// first Rules entry that matches the client's MAC address.
//
// UEFI firmware (option 93 = 7 or 9) gets Secure Boot's chain when the
// bundle holds it
// (Config.UEFILoader; the server cannot see whether a client enforces
// Secure Boot, and the chain boots either way): secureboot/shimx64.efi
// (signed by the Microsoft UEFI CA), which fetches secureboot/grubx64.efi
// from the same directory: Debian's signed network GRUB. Its built-in
// prefix is /grub, so it reads grub/x86_64-efi/grub.cfg, which this server
// makes: it sources grub/lifeboat/MAC.cfg by GRUB's $net_default_mac, the
// client's own configuration with the same kernel, initramfs and command
// line its iPXE script would have had, loaded over HTTP (GRUB 2.12 has http
// built in). The same in proxy mode: that GRUB finds this server from the
// proxy offer. UEFI HTTP boot clients (16) get the same chain by URL
// (http://SERVER/secureboot/shimx64.efi), all of it over HTTP. Without the
// chain in the bundle, UEFI clients get snponly.efi (by URL for HTTP boot).
//
// A job (a rule's arguments: which image to restore where) goes only to
// the client itself: /boot.ipxe?mac=MAC answers with the job only when the
// request comes from MAC's address, as the kernel's neighbour table (or
// the lease, or the client's port-4011 request) says. Each such script
// carries a new report token,
// lifeboat.report=http://SERVER/api/report/MAC?token=T, and a report is
// accepted only with the token of that client's latest boot ({token} in a
// rule's own lifeboat.report URL stands for it). Everything a client sends
// is cleaned of control characters before it reaches the status table,
// /api/status or the log, and every per-client structure is bounded
// (Config's Max* fields). What this protects and what it does not:
// README.md, "Security".
//
// Smallest use (as root, on an interface that has an IPv4 address):
//
//	err := pxe.Serve(ctx, pxe.Config{Interface: "br0", Bundle: "out/rescue"})
//
// Serve returns when ctx is cancelled. Start does the same but returns once
// every socket is open, for callers that show Server.Clients.
//
// Network namespaces (Linux): sockets belong to the namespace of the thread
// that creates them. Start opens all of them, and runs the TFTP server that
// opens one socket per transfer, on a thread that it moves into
// Config.Netns (a path such as /run/netns/NAME) or, when that is empty,
// into the namespace of the thread that called Start. So a test may either
// pass Netns, or call Start from a goroutine that did runtime.LockOSThread
// and unix.Setns itself.
package pxe
