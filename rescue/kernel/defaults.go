//go:build linux

package kernel

// DefaultModules are the modules the rescue environment loads: its disks,
// its USB keyboard and sticks, its CD, its network cards and the
// filesystems it mounts. Names built into a kernel are dropped by Resolve.
//
// In Debian 12's 6.1 amd64 kernel every name here is either a module or
// built in (af_packet is built in); none is missing. NTFS has no driver at
// all (NTFS3 is off): it is mounted with ntfs-3g over fuse.
var DefaultModules = []string{
	// virtio (QEMU and most clouds)
	"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", "virtio_console",
	// entropy: without RDRAND (QEMU TCG, old CPUs) the kernel RNG may not be
	// ready for a long time, and getrandom blocks the DHCP client
	"virtio_rng",
	// SATA, and the PIIX IDE that QEMU's default pc machine gives a -cdrom
	"ahci", "ata_piix", "sd_mod",
	// NVMe
	"nvme",
	// USB host controllers, sticks, keyboards
	"xhci_pci", "xhci_hcd", "ehci_pci", "ehci_hcd", "ohci_pci", "ohci_hcd", "uhci_hcd",
	"usb_storage", "uas", "usbhid", "hid_generic",
	// CD-ROM
	"sr_mod", "cdrom",
	// NICs
	"e1000", "e1000e", "r8169", "igb",
	// filesystems; crc32c_generic is named because ext4 finds its checksum
	// through the crypto API, which asks for it only by a soft dependency
	// that kmodule ignores.
	"crc32c_generic", "ext4", "vfat", "exfat", "isofs", "fuse",
	"nls_cp437", "nls_iso8859_1", "nls_utf8", "nls_ascii", // Debian's FAT default iocharset is ascii
	// raw sockets for DHCP, images on files
	"af_packet", "loop",
	// the firmware's variables, for the Secure Boot state (a module in
	// Debian's kernel, not built in)
	"efivarfs",
}
