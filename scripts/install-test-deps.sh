#!/usr/bin/env bash
# System packages the test suite compiles fixtures with: cross compilers for 32-bit,
# big-endian and ARM ELF, musl-gcc for musllinux wheels, and chromium (headless render of the
# HTML report), and libisal-dev so the package is built for ISA-L's C inflater (the tests then
# cover that path; without it setup.py builds without it). The cross libc headers are named
# explicitly: only the g++ cross packages depend on them, and recommends are not installed.
# Idempotent; needs root or sudo.
set -euo pipefail
pkgs=(gcc g++ binutils zlib1g-dev gcc-i686-linux-gnu g++-i686-linux-gnu gcc-aarch64-linux-gnu
      g++-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-s390x-linux-gnu musl-tools
      libc6-dev-armhf-cross libc6-dev-s390x-cross
      chromium libisal-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
