#!/usr/bin/env bash
# The Raspberry Pi OS 64-bit userland, as far as harmonies needs it: Debian bookworm arm64 with
# Python 3.11 and the libraries of the device side, extracted by mmdebstrap (no maintainer scripts
# run, so it takes seconds instead of minutes under emulation), plus a Pi 4's /proc/cpuinfo.
#
#   arm64/root.sh ROOT            (as root; ARM64_MIRROR overrides the mirror taken from apt's sources)
set -euo pipefail
root=${1:?usage: arm64/root.sh ROOT}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The host's Debian mirror (deb822 .sources or a one-line sources.list), not a hard-coded one.
mirror=${ARM64_MIRROR:-$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -v security | grep '/debian/\?$' | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

packages=python3.11,python3.11-venv,libpython3.11-dev,libsndfile1,libportaudio2,libstdc++6
rm -rf "$root"
mkdir -p "$(dirname "$root")"  # mmdebstrap wants the parent to exist
echo "arm64 root: bookworm from $mirror into $root"
mmdebstrap --quiet --mode=root --variant=extract --architectures=arm64 --include="$packages" \
  bookworm "$root" "$mirror"
# onnxruntime and ai-edge-litert read /proc/cpuinfo to pick their kernels; under qemu-user they
# would read the host's x86 one and crash. Through QEMU_LD_PREFIX this file is what they read.
mkdir -p "$root/proc"
cp "$here/cpuinfo-pi4" "$root/proc/cpuinfo"
