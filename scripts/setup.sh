#!/bin/bash
# Installs everything Boxcar's build and tests need on Debian 12. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ignition: differential peer (ignition-validate, the ignition binary).
# gdisk..cryptsetup-bin: the provisioning disks stage (sgdisk, mkfs.*, mdadm).
# postgresql, chromium: the update server's second database and dashboard tests.
# cgpt, dbus: slot attributes and the update_engine D-Bus API (update agent).
# etcd-server/-client: the etcd reboot lock; erofs-utils, squashfs-tools: sysext.
# ovmf..linux-image-amd64: the QEMU test bed (crates/boxcar-testbed, QEMU below):
# OVMF, busybox for test initramfs images, mtools/dosfstools for ESPs
# made without mounting, systemd-boot and its UKI stub, objcopy, the Debian
# kernel (PVH vmlinux extracted from it) and its modules, xz to unpack it.
# curl: the staging benchmark's shell pipeline (curl | tee sha256sum | zstd -d | dd).
# mmdebstrap, uidmap, arch-test: `boxcar image build` (Debian root without mounts; UKI
# stub, ESP via mtools, initrd check with cpio, qcow2).
pkgs=(ignition openssl ca-certificates build-essential pkg-config git
      gdisk fdisk e2fsprogs xfsprogs btrfs-progs dosfstools mdadm cryptsetup-bin
      postgresql chromium chromium-driver
      cgpt dbus zstd curl etcd-server etcd-client erofs-utils squashfs-tools
      ovmf busybox-static mtools systemd-boot-efi cpio
      binutils xz-utils kmod linux-image-amd64
      mmdebstrap uidmap arch-test)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
# QEMU for the test bed. Some machine images carry qemu-utils from
# bookworm-backports, which Breaks bookworm's qemu-system-x86: install the
# set at qemu-system-x86's candidate version (downgrading qemu-utils).
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
if [ -z "$(pkg_version qemu-system-x86)" ] || [ "$(pkg_version qemu-utils)" != "$(pkg_version qemu-system-x86)" ]; then
  apt-get update -qq
  v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  apt-get install -y -qq --allow-downgrades "qemu-system-x86=$v" "qemu-utils=$v" "qemu-block-extra=$v"
fi
command -v cargo >/dev/null || { echo "setup: cargo (rustup) is required" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
# Fuzzing runs on the nightly toolchain with cargo-fuzz.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
echo "setup: ok"
