"""An exponential moving average of a network's weights, the copy that is validated and kept.

On a few hundred clips the validation score of the raw weights jumps by
several points from one epoch to the next (docs/EXPERIMENTS.md), and the
best epoch is picked by that noisy score. Averaging the weights over the
last steps (Polyak averaging; the "EMA" of image and audio recipes) gives a
model in a flatter region that changes smoothly between epochs. The average
is a copy of the network: the optimiser trains the raw weights, validation,
``best.pt`` and the export see the average.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s parameters and floating buffers.

    Parameters
    ----------
    model : nn.Module
        The network being trained (not a DDP wrapper: its ``.module``).
    decay : float
        The weight of the old average per optimiser step, in (0, 1). The
        horizon is about ``1 / (1 - decay)`` steps. Early on the decay is
        capped at ``(1 + step) / (10 + step)`` so the random initial weights
        are forgotten fast.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the averaging decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.model.eval()
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights in (call after every optimiser step)."""
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        averaged = self.model.state_dict()
        for name, value in model.state_dict().items():
            target = averaged[name]
            if target.is_floating_point():
                target.lerp_(value, 1.0 - decay)
            else:
                target.copy_(value)  # BatchNorm's batch counter
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        """What ``last.pt`` keeps to resume: the averaged weights and the step count."""
        return {"weights": self.model.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (``KeyError``/``RuntimeError`` if it does not fit)."""
        self.model.load_state_dict(state["weights"])
        self.steps = int(state["steps"])
