# harmonies: developer and CI entry points.
#
#   make install              system packages (apt, when root and something is missing), .venv/,
#                             editable install with the train and test extras, extension up to date
#   make ext                  rebuild pyharmonies/_native*.so incrementally after editing native/ or
#                             pyharmonies/_native.cpp (make test and make demo do this for you)
#   make native-test          pure C build + ctest              (build/native)
#   make native-test-aarch64  cross build, ctest under qemu     (build/aarch64)
#   make native-test-asan     ASan+UBSan build + ctest          (build/asan)
#   make test                 all of the above, then pytest
#   make wheel-arm64          dist/arm64/harmonies-*-cp311-cp311-manylinux_*_aarch64.whl, cross-built
#                             for Raspberry Pi OS 64-bit (bookworm, Python 3.11)
#   make test-arm64           that wheel installed by pip in a Debian bookworm arm64 root, the
#                             device-side tests and the x86-64/arm64 comparison under qemu (arm64/)
#   make demo                 python -m pyharmonies.demo: instrument corpus, CNN training, int8 export
#                             to export/demo/, evaluation, live replay (about 5 minutes on 2 cores)
#   make backbone             rebuild the shipped pretrained backbone (pyharmonies/backbones/): the
#                             soundtracks set's music, unlabelled (about 40 minutes on 2 CPU cores)
#   make clean / distclean    build outputs / also .venv
#
# The editable install puts the repository's pyharmonies/ on sys.path, so Python edits need no
# reinstall; the extension is rebuilt by `make ext` (CMake, incremental) into pyharmonies/.
# The install is redone only when pyproject.toml, setup.py or CMakeLists.txt change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
# Serial at the make level: the targets share .venv and build/; cmake --build runs in parallel.
.NOTPARALLEL:
MAKEFLAGS += --no-print-directory

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.harmonies-install.stamp
EXTRAS ?= train,test,demo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# pytest processes (pytest-xdist). The fixtures that train do so on one torch thread (their
# weights are the same on any machine), so on the 2-core CI box one process left a core idle.
# Capped at 4: each process holds torch and its own copy of the session fixtures.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))

# cmake and ctest come from pip (the `cmake` wheel in .venv), like the Python build's.
VBIN := $(CURDIR)/$(VENV)/bin
CMAKE := $(VBIN)/cmake
CTEST := $(VBIN)/ctest

# fluidsynth + fluid-soundfont-gm render the instrument corpus (make demo); pulseaudio,
# pulseaudio-utils and libasound2-plugins let the tests record from tests/tools/virtual-mic.
# mmdebstrap and g++-aarch64-linux-gnu: the arm64 root and the aarch64 wheel (make test-arm64).
APT_PACKAGES := build-essential g++ libsndfile1 libportaudio2 \
                gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static \
                mmdebstrap \
                fluidsynth fluid-soundfont-gm \
                pulseaudio pulseaudio-utils libasound2-plugins

BUILD_DEPS := "setuptools>=64" wheel "pybind11>=2.12" "cmake>=3.18" ninja

.PHONY: install system-deps ext native-test native-test-aarch64 native-test-asan test demo backbone clean distclean \
        wheel-arm64 test-arm64

install: system-deps $(STAMP) ext

# Debian packages: apt-get only when something is missing and we are root.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "warning: missing system packages:$$missing (not root or no apt-get; skipping)" >&2; exit 0; \
	fi; \
	echo "apt-get install:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q; \
	apt-get install -y -q --no-install-recommends $$missing

# The venv with the build tools only (cmake, ninja, pybind11): enough for the C targets.
$(CMAKE):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(BUILD_DEPS)

$(STAMP): pyproject.toml setup.py CMakeLists.txt $(CMAKE) | system-deps
	@# --no-build-isolation: build with the venv's cmake/pybind11, the same ones `make ext` uses.
	$(PIP) install --no-build-isolation -e ".[$(EXTRAS)]"
	@touch $@

# Incremental rebuild of the extension straight into pyharmonies/ (where the editable install
# imports it from). CMake tracks native/src, native/include and _native.cpp; new *.c files are
# globbed with CONFIGURE_DEPENDS.
ext: $(STAMP)
	@if [ ! -f build/python/CMakeCache.txt ]; then \
	  $(CMAKE) -S . -B build/python \
	    -DCMAKE_BUILD_TYPE=Release \
	    -DHM_BUILD_PYTHON=ON -DHM_BUILD_TESTS=OFF -DHM_BUILD_EXAMPLES=OFF \
	    -DPython_EXECUTABLE=$(PY) \
	    -Dpybind11_DIR="$$($(PY) -m pybind11 --cmakedir)" \
	    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(CURDIR)/pyharmonies; \
	fi
	$(CMAKE) --build build/python -j $(JOBS)

native-test: $(CMAKE)
	$(CMAKE) -S . -B build/native -DCMAKE_BUILD_TYPE=Release -DHM_BUILD_PYTHON=OFF
	$(CMAKE) --build build/native -j $(JOBS)
	cd build/native && $(CTEST) --output-on-failure -j $(JOBS)

native-test-aarch64: system-deps $(CMAKE)
	$(CMAKE) -S . -B build/aarch64 -DCMAKE_BUILD_TYPE=Release -DHM_BUILD_PYTHON=OFF \
	  -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake
	$(CMAKE) --build build/aarch64 -j $(JOBS)
	cd build/aarch64 && $(CTEST) --output-on-failure -j $(JOBS)

native-test-asan: $(CMAKE)
	$(CMAKE) -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DHM_BUILD_PYTHON=OFF -DHM_SANITIZE=ON
	$(CMAKE) --build build/asan -j $(JOBS)
	@# ASAN_OPTIONS/UBSAN_OPTIONS are set per test by CMakeLists.txt (HM_SANITIZE).
	cd build/asan && $(CTEST) --output-on-failure -j $(JOBS)

test: install native-test native-test-aarch64 native-test-asan
	@# --dist loadfile: a test file runs in one process, so its module fixtures are made once.
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# ---------------------------------------------------------------- arm64 (Raspberry Pi OS 64-bit)
# Downloads are cached in .cache/arm64 (the root, the aarch64 wheels, the wheel tools): a second
# run needs no network. Each is redone only when the file that describes it changes.
ARM64 := .cache/arm64
ARM64_ROOT := $(ARM64)/root
ARM64_WHEELS := $(ARM64)/wheels
ARM64_TOOLS := $(ARM64)/tools
ARM64_DIST := dist/arm64
# The Pi's platform tags, listed: pip matches --platform literally (no older manylinux implied).
ARM64_PLATFORMS := $(foreach t,manylinux_2_36 manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_17 \
                     manylinux2014 linux,--platform $(t)_aarch64) --platform any

$(ARM64)/root.stamp: arm64/root.sh arm64/cpuinfo-pi4 | system-deps
	arm64/root.sh $(ARM64_ROOT)
	@touch $@

$(ARM64)/wheels.stamp: arm64/requirements.txt $(CMAKE)
	@mkdir -p $(ARM64_WHEELS)
	@# Offline first: every pinned wheel already in the cache. Else ask the index.
	$(PIP) download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
	  --abi cp311 --abi abi3 --abi none $(ARM64_PLATFORMS) -d $(ARM64_WHEELS) -r arm64/requirements.txt \
	  --no-index --find-links $(ARM64_WHEELS) 2>/dev/null || \
	$(PIP) download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
	  --abi cp311 --abi abi3 --abi none $(ARM64_PLATFORMS) -d $(ARM64_WHEELS) -r arm64/requirements.txt
	@touch $@

$(ARM64_TOOLS)/bin/auditwheel: arm64/tools.txt
	@test -x $(ARM64_TOOLS)/bin/python || $(PYTHON) -m venv $(ARM64_TOOLS)
	$(ARM64_TOOLS)/bin/pip install --quiet -r arm64/tools.txt
	@touch $@

wheel-arm64: $(CMAKE) $(ARM64)/root.stamp $(ARM64_TOOLS)/bin/auditwheel
	arm64/wheel.sh $(PY) $(ARM64_ROOT) $(ARM64_TOOLS) $(ARM64_DIST)

# The fixtures that need training (torch) are made here on x86-64 first (tests/make_prebuilt.py),
# with this machine's reference outputs for the cross-architecture check.
test-arm64: install wheel-arm64 $(ARM64)/wheels.stamp
	arm64/binfmt.sh
	$(PY) tests/make_prebuilt.py build/arm64/prebuilt
	arm64/test.sh $(ARM64_ROOT) $$(ls $(ARM64_DIST)/harmonies-*_aarch64.whl) $(ARM64_WHEELS) \
	  build/arm64/prebuilt build/arm64

demo: install
	$(PY) -m pyharmonies.demo

# One torch thread, as the shipped file was made: float sums in another order (more threads, other
# CPU kernels) give slightly different weights. MODEL_CARD.md records the run.
backbone: install
	test -f data/soundtracks/manifest.csv || $(VBIN)/harmonies dataset soundtracks data/soundtracks
	OMP_NUM_THREADS=1 $(VBIN)/harmonies pretrain data/soundtracks --out runs/backbone-soundtracks --epochs 15 \
	  --batch-size 64 --seed 0 --probe data/soundtracks --probe-every 5 --quiet
	cp runs/backbone-soundtracks/backbone.npz pyharmonies/backbones/soundtracks-cnn.npz

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
	rm -f pyharmonies/_native*.so
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(ARM64)
