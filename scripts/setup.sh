#!/bin/bash
# Installs everything Boxcar's build and tests need on Debian 12. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(ignition ca-certificates build-essential pkg-config git)
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
