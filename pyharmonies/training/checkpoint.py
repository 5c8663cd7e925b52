"""Checkpoints: written atomically, read back with ``weights_only=True``.

A checkpoint is a dict of tensors and plain containers only (configs as
dicts, labels as a list of str), so loading it never runs pickled code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from pyharmonies.errors import ParameterError

BEST = "best.pt"  # the weights with the best validation macro-F1
LAST = "last.pt"  # everything needed to resume: weights, optimizer, schedule, history


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` so that a reader (or a kill) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; runs are often shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a clear error if it is missing."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"{path}: no checkpoint there (was the run trained, or killed before its first epoch?)")
    return torch.load(path, map_location=map_location, weights_only=True)
