"""The device side never imports torch (DESIGN.md: the one rule of the
architecture), checked in a fresh interpreter so that other tests' imports
cannot hide a leak."""

from __future__ import annotations

import subprocess
import sys

import pytest

DEVICE_MODULES = [
    "pyharmonies",
    "pyharmonies.features",
    "pyharmonies.audio",
    "pyharmonies._native",
    "pyharmonies.runtime",
    "pyharmonies.runtime.backends",
    "pyharmonies.runtime.files",
    "pyharmonies.runtime.evaluate",
]


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_device_module_does_not_import_torch(module):
    code = (
        f"import {module}, sys; "
        "heavy = sorted(m for m in ('torch', 'librosa', 'sklearn', 'matplotlib') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_extracting_features_does_not_import_torch():
    code = (
        "import numpy as np, sys\n"
        "from pyharmonies.features import extract, StreamingExtractor\n"
        "extract(np.zeros(3000, np.float32))\n"
        "StreamingExtractor().push(np.zeros(3000, np.float32))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
