"""Checkpoints: written atomically, read back with ``weights_only=True``.

A checkpoint is a dict of tensors and plain containers only (configs as
dicts, labels as a list of str), so loading it never runs pickled code. A
file that is not one (truncated, corrupt, or asking for other Python
objects) is refused with a :class:`CheckpointError` whose one-line message
names it.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from pyharmonies._atomic import atomic_open
from pyharmonies.training.errors import CheckpointError

BEST = "best.pt"  # the weights kept: the best epoch by select_by, or the last epoch (select_by "last")
LAST = "last.pt"  # everything needed to resume: weights, optimizer, schedule, history

#: What every checkpoint holds; ``last.pt`` also holds :data:`RESUME_KEYS`.
KEYS = ("model", "meta")
RESUME_KEYS = (*KEYS, "optimizer", "scheduler", "epoch", "best", "bad_epochs", "history")
#: What ``meta`` must hold to rebuild and feed the model (see ``loop.build_meta``).
META_KEYS = ("model_name", "model_config", "labels", "input_kind", "input_shape", "window_frames",
             "feature_config", "normalizer")  # fmt: skip


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` so that a reader (or a kill) never sees half a file.

    The file gets the mode of any new file (0666 less the umask), not
    ``mkstemp``'s 0600: runs are often shared.
    """
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def load(path: Path, map_location: str | torch.device = "cpu", *, keys: Iterable[str] = KEYS) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Parameters
    ----------
    path : Path
    map_location : str or torch.device
    keys : iterable of str
        Top-level entries the checkpoint must have (:data:`RESUME_KEYS` to resume).

    Raises
    ------
    CheckpointError
        The file is missing or unreadable, truncated or corrupt, asks for
        Python objects other than tensors and plain containers (refused:
        unpickling them could run code), or lacks ``keys``. One line,
        starting with the path.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint there (was the run trained, or killed before its first epoch?)")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols and the like on files it then refuses anyway.
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False: never that. Name what was asked for, if anything.
        found = re.search(r"GLOBAL (\S+)", str(err))
        if found:
            raise CheckpointError(
                f"{path}: refused: it asks to load the Python object {found.group(1)}, and unpickling one could run "
                "code (checkpoints are read with weights_only=True; harmonies writes tensors and plain containers only)"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt); retrain, or restore the file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    except Exception:  # a truncated zip (RuntimeError), an empty file (EOFError), garbage (KeyError...)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt); retrain, or restore the file") from None
    missing = [k for k in keys if not isinstance(ck, dict) or k not in ck]
    if not missing and "meta" in keys:
        meta = ck["meta"]
        missing = [f"meta.{k}" for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise CheckpointError(f"{path}: not a harmonies checkpoint (it has no {', '.join(missing)})")
    return ck


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Path, *, strict: bool = True) -> Any:
    """``model.load_state_dict(state)``, with a :class:`CheckpointError` naming ``path`` when they do not fit."""
    try:
        return model.load_state_dict(state, strict=strict)
    except (RuntimeError, TypeError, AttributeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__  # one line
        if len(reason) > 300:
            reason = reason[:297] + "..."
        raise CheckpointError(f"{path}: its weights do not fit the model its meta describes ({reason})") from None
