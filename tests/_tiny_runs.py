"""The small CNN run that the ensemble and distillation tests train in seconds, on conftest's three-class corpus."""

from __future__ import annotations

from pathlib import Path

from pyharmonies.training.config import TrainConfig


def small_cnn_config(corpus: Path, out: Path, **overrides) -> TrainConfig:
    """A half-width CNN, 2 epochs, 1 s between windows, seed 0, its cache beside ``out``; ``overrides`` on top."""
    base = dict(data=str(corpus), out=str(out), cache=str(out.parent / "cache"), model="cnn", epochs=2, patience=10,
                window_hop=1.0, seed=0, model_options={"width": 0.5}, members=1)  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)
