#!/usr/bin/env bash
# The device side on arm64 under emulation: a fresh venv in the arm64 root, the harmonies wheel
# installed into it by pip (offline, from the wheel cache) as on a Pi, then the device-side tests,
# the cross-architecture check against the x86-64 reference, and the start-up and memory figures.
#
#   arm64/test.sh ROOT WHEEL WHEELS PREBUILT OUT
#     ROOT      arm64/root.sh's root        WHEEL     make wheel-arm64's wheel
#     WHEELS    the aarch64 wheel cache     PREBUILT  tests/make_prebuilt.py's folder (x86-64)
#     OUT       where the reports go: pip-freeze.txt, crossarch.md, figures.md
set -euo pipefail
root=${1:?usage: arm64/test.sh ROOT WHEEL WHEELS PREBUILT OUT}; wheel=${2:?}; wheels=${3:?}; prebuilt=${4:?}; out=${5:?}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs() { (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")"); }
root=$(abs "$root"); wheel=$(abs "$wheel"); wheels=$(abs "$wheels"); prebuilt=$(abs "$prebuilt")
mkdir -p "$out"; out=$(abs "$out")

# qemu-user reads files under QEMU_LD_PREFIX first (the dynamic loader, libraries, /proc/cpuinfo),
# then the host's (the repository, /tmp). Cortex-A72 is a Pi 4 (cortex-a76 for a Pi 5).
export QEMU_LD_PREFIX=$root QEMU_CPU=${QEMU_CPU:-cortex-a72}
# No Python here, nor any it starts, puts its working directory on sys.path: the tests must import
# the installed wheel, never the repository's pyharmonies/ (whose extension is x86-64).
export PYTHONSAFEPATH=1 PIP_DISABLE_PIP_VERSION_CHECK=1
step() { printf '\n== %s (%s s so far)\n' "$1" "$SECONDS"; }

venv=$root/opt/harmonies
step "venv and pip install $(basename "$wheel")[ort] under emulation"
rm -rf "$venv"
"$root/usr/bin/python3.11" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheels" \
  "$wheel[ort]" -r "$repo/arm64/requirements.txt"
"$venv/bin/python" -m pip freeze --all > "$out/pip-freeze.txt"
cd "$out"  # not the repository
"$venv/bin/python" -c "
import platform, pyharmonies, pyharmonies._native as n
assert platform.machine() == 'aarch64', platform.machine()
assert '/site-packages/pyharmonies/' in n.__file__, n.__file__
print('imports', n.__file__)"

step "device-side tests under emulation"
HARMONIES_PREBUILT=$prebuilt "$venv/bin/python" -m pytest -p no:cacheprovider -q \
  --rootdir="$repo" -c "$repo/pyproject.toml" \
  "$repo"/tests/test_device_side.py "$repo"/tests/test_bundle_loading.py \
  "$repo"/tests/test_features.py "$repo"/tests/test_features_properties.py "$repo"/tests/test_windows.py \
  "$repo"/tests/test_stream.py "$repo"/tests/test_stream_stats.py "$repo"/tests/test_listen_live.py \
  "$repo"/tests/test_audio.py "$repo"/tests/test_crossarch.py

step "cross-architecture check: this arm64 against the x86-64 reference"
(cd "$prebuilt/crossarch" && "$venv/bin/python" -m pyharmonies.crossarch compare reference.npz \
  ../small-bundle/bundle *.wav --table "$out/crossarch.md") 2> >(grep -v 'XNNPACK delegate' >&2)

step "figures under emulation"
"$venv/bin/python" "$repo/arm64/figures.py" "$prebuilt/small-bundle/bundle" "$prebuilt/crossarch/clip30.wav" \
  --out "$out/figures.md" 2> >(grep -v 'XNNPACK delegate' >&2)
step "done"
