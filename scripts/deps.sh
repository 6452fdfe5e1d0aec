#!/usr/bin/env bash
# Installs the Debian packages that building and testing Lifeboat need,
# only those missing. Idempotent; run by `make deps` and .ci/run.
set -euo pipefail

pkgs=(
  e2fsprogs   # mkfs.ext4, e2fsck, dumpe2fs: real filesystems in tests
  dosfstools  # mkfs.vfat, fsck.vfat
  exfatprogs  # mkfs.exfat
  ntfs-3g     # mkntfs, ntfsresize, NTFS mounts in tests
  exfat-fuse  # exFAT mounts in tests, and lifeboat mount/ls/extract where the kernel has no exfat driver (as here)
  fusefat     # an independent FAT reader in tests (this kernel has no vfat driver)
  util-linux  # losetup, mount, blkid
  fdisk       # sfdisk: MBR/GPT fixtures
  gdisk       # sgdisk: GPT fixtures and cross-checks
  zstd        # the peer in make bench
  partclone   # Clonezilla's imager: used-block counts in tests, a peer in make bench
  qemu-utils  # qemu-img
  restic      # a file-level peer in make bench's cpu part
  qemu-system-x86  # the rescue environment boots in QEMU in the tests
  kmod        # depmod for the rescue kernel's modules
  dpkg        # dpkg -x unpacks the rescue kernel without installing it
  apt
  grub-pc-bin grub-efi-amd64-bin  # GRUB images for the media, made at bundle time
  ovmf        # UEFI firmware for the QEMU boots
  xorriso     # cross-checks the ISO in tests
  mtools      # reads the USB image's FAT partitions in tests
  ipxe        # network boot loaders the PXE server hands out
  dnsmasq-base  # an ordinary DHCP server beside ours in the proxy-mode test
  iproute2    # network namespaces for the PXE tests
  samba       # a real SMB server (smbd) for the smb:// image tests
  systemd     # systemd-analyze verify/calendar and systemd as PID 1 in a container: the task units in tests
  coreutils
  gcc libc6-dev  # go test -race (make test runs rescue, tui and pxe under it)
  wine64 gcc-mingw-w64-x86-64  # the Windows lane: lifeboat.exe under Wine (cmd/lifeboat TestWindowsLane)
  make
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
