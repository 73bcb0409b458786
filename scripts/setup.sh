#!/bin/bash
# Installs everything Boxcar's build and tests need on Debian 12. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ignition: differential peer (ignition-validate, the ignition binary).
# gdisk..cryptsetup-bin: the provisioning disks stage (sgdisk, mkfs.*, mdadm).
# postgresql, chromium: the update server's second database and dashboard tests.
# cgpt, dbus: slot attributes and the update_engine D-Bus API (update agent).
# etcd-server/-client: the etcd reboot lock; erofs-utils, squashfs-tools: sysext.
# curl: the staging benchmark's shell pipeline (curl | tee sha256sum | zstd -d | dd).
pkgs=(ignition openssl ca-certificates build-essential pkg-config git
      gdisk fdisk e2fsprogs xfsprogs btrfs-progs dosfstools mdadm cryptsetup-bin
      postgresql chromium chromium-driver
      cgpt dbus zstd curl etcd-server etcd-client erofs-utils squashfs-tools)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo (rustup) is required" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
# Fuzzing runs on the nightly toolchain with cargo-fuzz.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
echo "setup: ok"
