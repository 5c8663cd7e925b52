"""Knowledge distillation: one network trained to match a teacher's answers as well as the labels.

Averaging five CNN runs gains about 3 points over its members on the
soundtracks folds (``docs/EXPERIMENTS.md``), at five times the size. A
student of one network's size can keep part of that gain by learning the
teacher's whole output distribution, whose small probabilities say which
classes a window resembles (Hinton, Vinyals and Dean, "Distilling the
Knowledge in a Neural Network", 2015).

The teacher's probabilities are computed once per run, on the clean
training windows, not on every augmented batch: one pass of the teacher
instead of one per step, which on a CPU is the difference between minutes
and hours for a five-member teacher. The student sees augmented (and
mixed) windows and is asked for the clean window's (mixed) answer.

A teacher must never have trained on the student's test or validation
clips, or the student would learn them through it: :func:`check_teacher_splits`
refuses such a teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pyharmonies.data.splits import load_splits
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint

__all__ = ["Teacher", "WithIndex", "check_teacher_splits", "distill_loss", "load_teacher", "soften"]

#: What a teacher's checkpoint must share with the student's run, so that its answers are about the same windows.
SHARED = ("labels", "input_kind", "window_frames", "feature_config")


@dataclass
class Teacher:
    """A loaded teacher: the model in eval mode, its checkpoint's meta and its run folder."""

    model: torch.nn.Module
    meta: dict[str, Any]
    run: Path


def load_teacher(run: str | Path, student_meta: dict[str, Any]) -> Teacher:
    """The best model of the run ``run`` (a CNN, LSTM or ensemble run), checked against the student's meta.

    Raises
    ------
    ParameterError
        No checkpoint there, or a teacher whose labels, input kind, window or
        features differ from the student's (named).
    """
    from pyharmonies.training.loop import model_from_meta

    run = Path(run)
    if not (run / checkpoint.BEST).is_file():
        hint = ""
        if (run / "fold-0").is_dir():
            hint = " (a --folds run: train the student with the same --folds, and each fold learns from the teacher's fold)"
        raise ParameterError(f"--teacher {run}: no {checkpoint.BEST} there{hint}")
    ck = checkpoint.load(run / checkpoint.BEST)
    meta = ck["meta"]
    for key in SHARED:
        if meta.get(key) != student_meta.get(key):
            raise ParameterError(f"--teacher {run}: its {key} differs from this run's; a teacher must answer for the same "
                                 "labels, features and windows")  # fmt: skip
    model = model_from_meta(meta)
    checkpoint.load_weights(model, ck["model"], run / checkpoint.BEST)
    model.eval()
    return Teacher(model=model, meta=meta, run=run)


def check_teacher_splits(teacher_run: Path, splits: dict[str, Sequence[int]], clips: Sequence[Any]) -> None:
    """Refuse a teacher that trained on the student's validation or test clips, or chose its epoch on test clips.

    ``splits`` are the student's split indices into ``clips``; the teacher's
    come from its ``splits.json``.
    """
    theirs = load_splits(teacher_run / "splits.json", clips)
    ours = {name: set(members) for name, members in splits.items()}
    if set(theirs.get("train", ())) & (ours.get("val", set()) | ours.get("test", set())) or \
            set(theirs.get("val", ())) & ours.get("test", set()):  # fmt: skip
        raise ParameterError(f"--teacher {teacher_run}: it trained on (or chose its epoch by) clips this run validates or "
                             "tests on; distil from a run on the same splits (same data, --split-seed or --seed, and --folds)")  # fmt: skip


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``probs`` ``(n, classes)`` at a temperature: ``softmax(log(p) / T)``; T > 1 lifts the small probabilities."""
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def distill_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of the student's ``logits`` (B, C) at ``temperature`` against soft ``targets`` (B, C).

    Scaled by ``T**2`` so that its gradients keep their size as T changes
    (Hinton et al.); equal to the KL divergence up to the targets' entropy.
    """
    logp = F.log_softmax(logits / temperature, dim=1)
    return -(targets * logp).sum(dim=1).mean() * temperature**2


class WithIndex(Dataset):
    """``dataset``'s items with their index appended: ``(x, y, i)``, so a batch can look up per-window targets."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return (*self.dataset[i], i)

    def __getattr__(self, name: str) -> Any:
        # labels, set_epoch...: the wrapped dataset's (only called for names this class lacks)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
