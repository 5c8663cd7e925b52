"""A small LSTM over the per-frame feature vector sequence.

The input is the 28-value ``frame_vector`` (20 MFCC + 8 spectral statistics,
see ``pyharmonies.features``) for each frame of a window. Frames are
average-pooled into segments (a 3 s window of 129 frames with ``segment=4``
becomes 32 steps), so the recurrence is short: cheap on a device and easy to
export with a fixed sequence length.

Shapes in the comments use ``B`` for the batch, ``F`` for features per frame,
``T`` for frames, ``L = T // segment`` for steps and ``H`` for the hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pyharmonies.errors import ParameterError

__all__ = ["FrameVectorClassifier", "LSTMConfig", "SegmentPool", "SequenceLSTM"]

POOLINGS = ("mean", "last")


@dataclass(frozen=True)
class LSTMConfig:
    """Hyper-parameters of :class:`SequenceLSTM`; the defaults are the edge model.

    On a 28 x 129 window with 10 classes: 26,666 parameters and 0.82M
    multiply-accumulates per window (``summary(model)`` lists them per block).
    """

    hidden: int = 64  # LSTM hidden size per direction
    layers: int = 1  # stacked LSTM layers, 1 or 2
    bidirectional: bool = False  # a second LSTM reads the segments backwards; doubles the LSTM cost
    dropout: float = 0.2  # dropout between stacked layers (when layers = 2) and before the classifier
    segment: int = 4  # frames averaged into one step: T frames -> T // segment steps (a shorter tail is dropped)
    projection: int = 32  # width of a Linear + ReLU on each step's features before the LSTM; 0: none
    pooling: str = "mean"  # steps -> one vector: "mean" over time (every step, both directions) or the "last" step

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ParameterError(f"hidden must be >= 1, got {self.hidden}")
        if self.layers not in (1, 2):
            raise ParameterError(f"layers must be 1 or 2, got {self.layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.segment < 1:
            raise ParameterError(f"segment must be >= 1, got {self.segment}")
        if self.projection < 0:
            raise ParameterError(f"projection must be >= 0 (0: none), got {self.projection}")
        if self.pooling not in POOLINGS:
            raise ParameterError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")


class SegmentPool(nn.Module):
    """Average non-overlapping runs of ``segment`` frames: (B, F, T) -> (B, L, F), L = T // segment.

    Written as a reshape and a mean (not ``avg_pool1d``) so that it lowers to
    plain RESHAPE + MEAN in TFLite and Reshape + ReduceMean in ONNX; the frame
    count is fixed per model, so the reshape is static.
    """

    def __init__(self, segment: int) -> None:
        super().__init__()
        self.segment = segment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, t = x.shape
        steps = t // self.segment
        x = x[:, :, : steps * self.segment]  # (B, F, L * segment)
        x = x.reshape(b, f, steps, self.segment).mean(dim=3)  # (B, F, L)
        return x.transpose(1, 2)  # (B, L, F)


class FrameVectorClassifier(nn.Module):
    """A backbone over one window of frame vectors, dropout and a linear head: the LSTM's and the transformer's frame.

    Subclasses build ``backbone``, mapping ``(B, F, T)`` to ``(B, feature_dim)``,
    in :meth:`make_backbone`; ``config`` must have ``segment`` and ``dropout``.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], config) -> None:
        super().__init__()
        if n_classes < 1:
            raise ParameterError(f"n_classes must be >= 1, got {n_classes}")
        if len(input_shape) != 2 or min(input_shape) < 1:
            raise ParameterError(f"input_shape is (n_features, frames), got {input_shape!r}")
        if input_shape[1] < config.segment:
            raise ParameterError(f"{input_shape[1]} frames give no segment of {config.segment} frames")
        self.config = config
        self.n_classes = n_classes
        self.input_shape = (int(input_shape[0]), int(input_shape[1]))
        self.backbone, self.feature_dim = self.make_backbone()
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.feature_dim, n_classes)  # (B, feature_dim) -> (B, n_classes)

    def make_backbone(self) -> tuple[nn.Module, int]:
        """The backbone for ``self.input_shape`` and ``self.config``, and its output width."""
        raise NotImplementedError

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros shaped like the model's input, ``(batch, n_features, frames)``, on its device (for export, MACs)."""
        return torch.zeros(batch, *self.input_shape, device=self.head.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, F, T) frame vectors, normalised
        features = self.backbone(x)  # (B, feature_dim)
        return self.head(self.dropout(features))  # (B, n_classes)


class SequenceLSTM(FrameVectorClassifier):
    """LSTM classifier of one window of frame vectors.

    Parameters
    ----------
    n_classes : int
        Number of output logits (>= 1).
    input_shape : tuple of int
        ``(n_features, frames)`` of one window, e.g. ``(28, 129)``; ``frames``
        must give at least one segment.
    config : LSTMConfig
        Hidden size, layers, direction, segment length, pooling.

    ``backbone`` maps ``(B, F, T)`` to a pooled sequence vector
    ``(B, feature_dim)``; ``head`` is the final
    ``nn.Linear(feature_dim, n_classes)``.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], config: LSTMConfig = LSTMConfig()) -> None:
        super().__init__(n_classes, input_shape, config)

    def make_backbone(self) -> tuple[nn.Module, int]:
        backbone = _LSTMBackbone(self.input_shape[0], self.config)
        return backbone, backbone.feature_dim


class _LSTMBackbone(nn.Module):
    """Segment pooling -> optional projection -> LSTM -> pooling over time: (B, F, T) -> (B, H * directions)."""

    def __init__(self, n_features: int, config: LSTMConfig) -> None:
        super().__init__()
        self.pool = SegmentPool(config.segment)
        if config.projection:
            self.projection: nn.Module = nn.Sequential(nn.Linear(n_features, config.projection), nn.ReLU())
            lstm_in = config.projection
        else:
            self.projection = nn.Identity()
            lstm_in = n_features
        self.lstm = nn.LSTM(
            lstm_in,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,  # nn.LSTM warns about dropout with one layer
        )
        self.time_pooling = config.pooling
        self.feature_dim = config.hidden * (2 if config.bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)  # (B, L, F)
        x = self.projection(x)  # (B, L, P) or (B, L, F)
        # No initial state is passed: the zeros are constants of the exported graph.
        out, _ = self.lstm(x)  # (B, L, H * directions)
        if self.time_pooling == "mean":
            return out.mean(dim=1)  # (B, H * directions)
        return out[:, -1, :]  # (B, H * directions)

