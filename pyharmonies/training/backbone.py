"""Pretrained CNN backbones on disk: one ``.npz`` of weights and a JSON description, never pickled.

A backbone file holds the ``backbone.*`` tensors of a :class:`MobileNetV2`
(everything up to the pooled features; no classifier head) as float32
arrays, and under the key ``__meta__`` a JSON document: the model config,
the feature config, the window it was pretrained on, the input normaliser
and how it was made (method, data, epochs). ``numpy.load(...,
allow_pickle=False)`` reads it, so loading runs no code.

``harmonies pretrain`` writes ``OUT/backbone.npz``; the package ships one
(:func:`shipped_backbone_path`, documented by the model card beside it);
``harmonies train --model cnn --backbone shipped|PATH`` starts from one, and
``--model probe`` embeds with one (the shipped one unless told otherwise).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyharmonies._atomic import atomic_open
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.models.cnn import MobileNetV2
from pyharmonies.models.registry import config_to_dict, model_config
from pyharmonies.training.dataset import Normalizer

__all__ = ["BACKBONE_FILE", "BACKBONE_FORMAT", "Backbone", "load_backbone", "resolve_backbone", "save_backbone",
           "shipped_backbone_path"]  # fmt: skip

BACKBONE_FORMAT = "harmonies-backbone/1"
BACKBONE_FILE = "backbone.npz"  # in a pretraining run's folder
SHIPPED_NAME = "soundtracks-cnn.npz"
META_KEY = "__meta__"
#: Model config fields that must match for the weights to fit; ``dropout`` only acts on the head.
SHAPE_FIELDS = ("width", "stem_channels", "blocks", "last_channels", "round_to", "kernels")


@dataclass
class Backbone:
    """A loaded backbone: its description and its ``backbone.*`` weights."""

    path: Path
    meta: dict[str, Any]
    state: dict[str, torch.Tensor]  # "backbone.0.0.weight" -> tensor, as in MobileNetV2.state_dict()
    sha256: str

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.meta["feature_config"])

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_dict(self.meta["normalizer"])

    @property
    def window_frames(self) -> int:
        return int(self.meta["window_frames"])

    def model(self, n_classes: int = 1, dropout: float | None = None) -> MobileNetV2:
        """A :class:`MobileNetV2` with these backbone weights and a fresh head of ``n_classes`` logits."""
        options = dict(self.meta["model_config"])
        if dropout is not None:
            options["dropout"] = dropout
        net = MobileNetV2(n_classes, (int(self.meta["input_shape"][0]), self.window_frames), model_config("cnn", options))
        missing, unexpected = net.load_state_dict(self.state, strict=False)
        head = {k for k in net.state_dict() if not k.startswith("backbone.")}
        if set(missing) != head or unexpected:
            raise ParameterError(f"{self.path}: its weights do not fit the model its description names")
        return net

    def mismatch(self, feature_config: FeatureConfig, model_options: dict[str, Any]) -> str | None:
        """Why this backbone cannot start a CNN on ``feature_config`` with ``model_options``, or None if it can."""
        if self.meta["feature_config"] != feature_config.to_dict():
            mine, theirs = self.meta["feature_config"], feature_config.to_dict()
            differ = ", ".join(f"{k} {mine.get(k)!r} vs {theirs.get(k)!r}" for k in sorted(set(mine) | set(theirs))
                               if mine.get(k) != theirs.get(k))  # fmt: skip
            return f"it was pretrained on other features ({differ})"
        wanted = config_to_dict(model_config("cnn", model_options))
        mine = config_to_dict(model_config("cnn", self.meta["model_config"]))  # as `model` builds it: absent fields default
        differ = [f"{k} {mine[k]!r} vs {wanted[k]!r}" for k in SHAPE_FIELDS if mine[k] != wanted[k]]
        if differ:
            return f"its network has another shape ({', '.join(differ)})"
        return None


def save_backbone(path: str | Path, model: MobileNetV2, meta: dict[str, Any]) -> Path:
    """Write ``model``'s backbone weights and ``meta`` (JSON-ready) to ``path`` atomically; returns ``path``.

    ``meta`` must hold ``model_config``, ``feature_config``, ``window_frames``,
    ``input_shape`` and ``normalizer``; ``format`` is added.
    """
    missing = [k for k in ("model_config", "feature_config", "window_frames", "input_shape", "normalizer") if k not in meta]
    if missing:
        raise ParameterError(f"backbone meta lacks {', '.join(missing)}")
    arrays = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items() if k.startswith("backbone.")}
    arrays[META_KEY] = np.asarray(json.dumps({**meta, "format": BACKBONE_FORMAT}, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def load_backbone(path: str | Path) -> Backbone:
    """Read a backbone file (or a ``harmonies pretrain`` run folder holding one).

    Raises
    ------
    ParameterError
        Missing, unreadable, not a backbone, another format version, or
        arrays that are not float tensors; one line naming the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / BACKBONE_FILE
    if not path.is_file():
        raise ParameterError(f"{path}: no backbone there (`harmonies pretrain AUDIO --out DIR` writes DIR/{BACKBONE_FILE})")
    raw = path.read_bytes()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParameterError(f"{path}: not a readable backbone file ({reason})") from None
    if META_KEY not in arrays:
        raise ParameterError(f"{path}: not a harmonies backbone (no {META_KEY} entry)")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except json.JSONDecodeError:
        raise ParameterError(f"{path}: its description is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != BACKBONE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ParameterError(f"{path}: backbone format {found!r}; this version reads {BACKBONE_FORMAT}")
    bad = [k for k, v in arrays.items() if not k.startswith("backbone.") or v.dtype.kind != "f"]
    if bad or not arrays:
        raise ParameterError(f"{path}: unexpected entries in a backbone file ({', '.join(bad[:3]) or 'no weights'})")
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in arrays.items()}
    return Backbone(path, meta, state, hashlib.sha256(raw).hexdigest())


def shipped_backbone_path() -> Path:
    """The backbone the package ships (pretrained on the soundtracks set's music; see its model card)."""
    return Path(str(resources.files("pyharmonies") / "backbones" / SHIPPED_NAME))


def resolve_backbone(name: str) -> Path | None:
    """The file ``TrainConfig.backbone`` names: ``"shipped"``, ``"none"`` (None), or a path.

    In ``--folds`` runs a path may hold ``{fold}``, which each fold's run
    replaces by its number (one backbone pretrained without each fold's test
    tracks); here it is refused.
    """
    if name == "none":
        return None
    if name == "shipped":
        return shipped_backbone_path()
    if "{fold}" in name:
        raise ParameterError(f"--backbone {name}: '{{fold}}' is only filled in by --folds runs")
    return Path(name)
