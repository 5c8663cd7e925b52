"""An ensemble of CNNs in one network: what one exported file holding several trained runs computes.

On a few hundred real clips, two runs of the same recipe differ by several
points on one fold (docs/EXPERIMENTS.md): which epoch validation picks, and
what the network memorised, is noise. Averaging independently trained
networks cancels part of that noise. The members keep their own weights; the
ensemble's logits are the mean of theirs, so its softmax is the normalised
geometric mean of the members' probabilities. Plain convolutions, a stack and
a mean: it exports and quantizes like one CNN, at ``members`` times the cost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models.cnn import CNNConfig, MobileNetV2


@dataclass(frozen=True)
class EnsembleConfig:
    """How many CNN members, and the configuration they all share."""

    members: int = 2
    member: dict[str, Any] = field(default_factory=dict)  # CNNConfig fields (the defaults if empty)

    def __post_init__(self) -> None:
        if isinstance(self.members, bool) or not isinstance(self.members, int) or self.members < 2:
            raise ParameterError(f"an ensemble needs at least 2 members, got {self.members!r}")
        if not isinstance(self.member, dict):
            raise ParameterError(f"member must be a mapping of CNNConfig fields, got {type(self.member).__name__}")
        try:
            resolved = CNNConfig(**self.member)
        except TypeError as err:
            raise ParameterError(f"invalid member CNN options: {err}") from None
        object.__setattr__(self, "member", dataclasses.asdict(resolved))


class ConcatenatedBackbones(nn.Module):
    """Several CNN backbones over one input, their pooled features side by side.

    ``(B, 1, M, T) -> (B, sum of the backbones' feature_dim)``: an ensemble's embedding,
    each member's view of a window kept whole rather than averaged away.
    """

    def __init__(self, backbones: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(backbones)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)


class CNNEnsemble(nn.Module):
    """``members`` :class:`MobileNetV2` networks over one log-mel input; logits are their mean.

    Parameters
    ----------
    n_classes : int
    input_shape : (n_mels, frames)
    config : EnsembleConfig
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], config: EnsembleConfig | None = None) -> None:
        super().__init__()
        self.config = config or EnsembleConfig()
        self.input_shape = tuple(input_shape)
        member = CNNConfig(**self.config.member)
        self.members = nn.ModuleList(MobileNetV2(n_classes, input_shape, member) for _ in range(self.config.members))

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros shaped like the input, ``(batch, 1, n_mels, frames)`` (for export, MACs)."""
        return self.members[0].example_input(batch)

    @property
    def backbone(self) -> ConcatenatedBackbones:
        """The members' pooled features side by side, ``(B, 1, M, T) -> (B, feature_dim)``: the embedding.

        Built on each access from the members' own backbones, so the weights are shared and a
        checkpoint (the state dict) holds each of them once.
        """
        return ConcatenatedBackbones([m.backbone for m in self.members])

    @property
    def feature_dim(self) -> int:
        """Length of an embedding: the members' ``feature_dim`` summed."""
        return sum(m.feature_dim for m in self.members)

    def forward(self, x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for ``x`` ``(B, 1, M, T)``: the members' mean, or with ``per_member`` each
        member's, ``(members, B, n_classes)`` (mutual learning scores them one by one)."""
        logits = torch.stack([m(x) for m in self.members])
        return logits if per_member else logits.mean(dim=0)
