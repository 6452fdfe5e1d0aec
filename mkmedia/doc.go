// Package mkmedia writes Lifeboat's boot media from a rescue bundle (see
// package rescue/bundle): a hybrid ISO (WriteISO) and a USB stick or stick
// image (WriteUSB). It is pure Go and builds for Windows: everything that
// needs a Linux tool — GRUB's core images — was made once, when the bundle
// was built, by package mkmedia/grubprep into <bundle>/boot/ (BootFiles).
// Media creation only copies and patches those bytes, so the same bundle and
// options give byte-identical media.
//
// Every medium boots GRUB, whose built-in early config finds the volume
// holding MarkerFile and loads the menu GrubConfig writes: the rescue
// environment (default), the same with safe graphics and a verbose boot,
// and power off. On UEFI, a bundle with Debian's signed chain
// (bundle.Info.SecureBoot) gets shim as BOOTX64.EFI, which starts Debian's
// signed grubx64.efi; that GRUB reads SignedGrubConfig from SignedGrubDir,
// which does the early config's search and loads the same menu. So the
// media boot with Secure Boot on and off; see efiTree.
//
// The hybrid ISO (why GRUB, and this layout):
//
//	sector 0 (512 B)    MBR: GRUB's boot_hybrid.img code, start sector of the
//	                    core at 0x1b0, protective 0xEE partition
//	sectors 1–33        GPT: one EFI System Partition = /boot/grub/efiboot.img
//	CD sector 16…       ISO 9660 + Joliet, El Torito boot record at 17
//	  /boot/grub/eltorito.img  BIOS El Torito image (cdboot + diskboot + core)
//	  /boot/grub/efiboot.img   UEFI El Torito image, FAT12: EFI/BOOT/BOOTX64.EFI
//	                           (shim, with grubx64.efi, mmx64.efi and
//	                           EFI/debian/grub.cfg for Secure Boot)
//	  /EFI/debian/grub.cfg     SignedGrubConfig (Secure Boot bundles): the
//	                           signed GRUB's prefix when booted as a CD
//	  /boot/grub/grub.cfg, /boot/vmlinuz, /boot/initramfs, /lifeboat.id
//	last 32 KiB         backup GPT
//
// This is the layout grub-mkrescue asks xorriso for. It was chosen over
// ISOLINUX's isohdpfx.bin (which boots the same six ways) because one
// bootloader and one menu then serve the CD, the hybrid disk and the USB
// image under BIOS and UEFI, and because Debian's signed shim and GRUB keep
// a path open to Secure Boot. The BIOS disk path reuses the El Torito image:
// the MBR code loads the diskboot.img that follows cdboot.img, whose
// blocklist WriteISO points at the core behind it (xorriso's
// --grub2-mbr and --grub2-boot-info, done in Go).
//
// Smallest use:
//
//	err := mkmedia.WriteISO(ctx, "out/lifeboat.iso", "out/rescue", mkmedia.ISOOptions{})
package mkmedia
