"""Where fixtures find what ``tests/make_prebuilt.py`` made (``make test-arm64``).

A module of its own, not conftest.py: a test module that imports ``conftest``
by name gets whichever conftest pytest loaded first (tests/parity has one too).
"""

from __future__ import annotations

import os
from pathlib import Path


def prebuilt(name: str) -> Path | None:
    """``$HARMONIES_PREBUILT/name``, where a fixture finds what tests/make_prebuilt.py made for it.

    ``make test-arm64`` sets ``HARMONIES_PREBUILT``: the device-side tests then run under emulation
    on arm64, where torch is not installed (the device never has it), so bundles cannot be trained
    there; they are made on x86-64 beforehand. None when the variable is unset (train here)."""
    root = os.environ.get("HARMONIES_PREBUILT")
    if not root:
        return None
    path = Path(root) / name
    if not path.is_dir():
        raise FileNotFoundError(f"HARMONIES_PREBUILT={root} has no {name}/: run tests/make_prebuilt.py {root}")
    return path
