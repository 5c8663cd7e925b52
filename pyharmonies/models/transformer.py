"""A small transformer encoder over the per-frame feature vector sequence.

The input is the LSTM's: the 28-value ``frame_vector`` of each frame of a
window, average-pooled into segments by :class:`~pyharmonies.models.lstm.SegmentPool`
(a 3 s window of 129 frames with ``segment=4`` becomes 32 steps). Each step
is projected to ``d_model`` values, given its position (sinusoidal or
learned), and read by a few pre-norm encoder layers (Vaswani et al., 2017,
with the layer norm before each sub-layer as in Xiong et al., 2020, which
trains without a long warm-up). The steps are then pooled, by their mean or
through a class token, into one vector for the classifier.

Attention is written with plain ops (linear, reshape, transpose, matmul,
softmax), not ``nn.MultiheadAttention``: its fused fast path is a single op
that the ONNX and TFLite converters each lower their own way, while these
lower one to one to ``MatMul``/``Softmax`` and ``BATCH_MATMUL``/``SOFTMAX``,
which both int8 quantizers know.

Shapes in the comments use ``B`` for the batch, ``F`` for features per frame,
``T`` for frames, ``L`` for steps (``T // segment``, plus one with a class
token), ``D`` for ``d_model``, ``H`` for heads and ``E = D // H`` per head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models.lstm import FrameVectorClassifier, SegmentPool

__all__ = ["SelfAttention", "SequenceTransformer", "TransformerConfig", "sinusoidal_positions"]

POSITIONS = ("sinusoidal", "learned")
POOLINGS = ("mean", "cls")
ACTIVATIONS = ("relu", "gelu")


@dataclass(frozen=True)
class TransformerConfig:
    """Hyper-parameters of :class:`SequenceTransformer`; the defaults are the edge model.

    On a 28 x 129 window with 10 classes: 69,578 parameters and 2.42M
    multiply-accumulates per window (``summary(model)`` lists them per block).
    """

    d_model: int = 64  # width of every step's vector (the residual stream)
    heads: int = 4  # attention heads; d_model must be a multiple of it (16 values per head by default)
    layers: int = 2  # encoder layers (attention + feed-forward each)
    ff: int = 128  # hidden width of each layer's feed-forward block (2 x d_model: half the usual 4x, for the edge)
    dropout: float = 0.1  # on each sub-layer's output, the attention weights, and before the classifier
    segment: int = 4  # frames averaged into one step: T frames -> T // segment steps (a shorter tail is dropped)
    positions: str = "sinusoidal"  # "sinusoidal" (fixed, no parameters) or "learned" (one vector per step)
    pooling: str = "mean"  # steps -> one vector: "mean" over the steps, or a learned class token ("cls")
    activation: str = "relu"  # of the feed-forward block: "relu" (fuses into the dense op in int8) or "gelu"

    def __post_init__(self) -> None:
        for name in ("d_model", "heads", "layers", "ff", "segment"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.d_model % self.heads:
            raise ParameterError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.positions not in POSITIONS:
            raise ParameterError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.pooling not in POOLINGS:
            raise ParameterError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.activation not in ACTIVATIONS:
            raise ParameterError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")


def sinusoidal_positions(steps: int, width: int) -> torch.Tensor:
    """The fixed position codes of Vaswani et al. (2017), shape ``(steps, width)``.

    Even columns ``sin(p / 10000^(i / width))``, odd ones the matching
    ``cos``, for position ``p`` and even column ``i``; an odd ``width``
    leaves its last column a sine.
    """
    position = torch.arange(steps, dtype=torch.float32)[:, None]  # (steps, 1)
    rates = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))  # (ceil(width/2),)
    codes = torch.zeros(steps, width)
    codes[:, 0::2] = torch.sin(position * rates)
    codes[:, 1::2] = torch.cos(position * rates[: width // 2])
    return codes


class SelfAttention(nn.Module):
    """Multi-head self-attention in plain ops: (B, L, D) -> (B, L, D).

    ``softmax(q k^T / sqrt(E)) v`` per head, the heads concatenated and
    mixed by ``out``. :meth:`macs` counts the two products between
    activations (``2 L^2 D`` per window), which no ``nn.Linear`` hook sees.
    """

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(d_model, 3 * d_model)  # (B, L, D) -> (B, L, 3D): queries, keys, values
        self.out = nn.Linear(d_model, d_model)  # the heads, concatenated, mixed back to D
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Sizes from x.shape go into reshapes only (traced as shape ops, so the ONNX batch axis stays
        # dynamic); the widths are the module's own ints.
        b, steps = x.shape[0], x.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=2)  # 3 x (B, L, D)
        q = q.reshape(b, steps, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, E)
        k = k.reshape(b, steps, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, E)
        v = v.reshape(b, steps, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, E)
        scores = torch.matmul(q * self.scale, k.transpose(2, 3))  # (B, H, L, L)
        weights = self.dropout(torch.softmax(scores, dim=-1))  # (B, H, L, L), rows sum to 1
        mixed = torch.matmul(weights, v)  # (B, H, L, E)
        mixed = mixed.transpose(1, 2).reshape(b, steps, self.heads * self.head_dim)  # (B, L, D)
        return self.out(mixed)

    @staticmethod
    def macs(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-accumulates of ``q k^T`` and ``weights v`` for one window: ``2 L^2 D``."""
        _, steps, d = inputs[0].shape
        return 2 * steps * steps * d


class EncoderLayer(nn.Module):
    """Pre-norm encoder layer: ``x + attention(norm(x))``, then ``x + feed_forward(norm(x))``; (B, L, D) -> (B, L, D)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        d = config.d_model
        self.norm1 = nn.LayerNorm(d)
        self.attention = SelfAttention(d, config.heads, config.dropout)
        self.norm2 = nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(
            nn.Linear(d, config.ff),  # (B, L, D) -> (B, L, ff)
            nn.ReLU() if config.activation == "relu" else nn.GELU(),
            nn.Linear(config.ff, d),  # -> (B, L, D)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x)))  # (B, L, D)
        return x + self.dropout(self.feed_forward(self.norm2(x)))  # (B, L, D)


class SequenceTransformer(FrameVectorClassifier):
    """Transformer-encoder classifier of one window of frame vectors.

    Parameters
    ----------
    n_classes : int
        Number of output logits (>= 1).
    input_shape : tuple of int
        ``(n_features, frames)`` of one window, e.g. ``(28, 129)``; ``frames``
        must give at least one segment. The step count, and so the position
        codes, are fixed by it: the model reads windows of this length only.
    config : TransformerConfig
        Width, heads, layers, positions, pooling.

    ``backbone`` maps ``(B, F, T)`` to a pooled vector ``(B, d_model)``;
    ``head`` is the final ``nn.Linear(d_model, n_classes)``.
    """

    def __init__(
        self, n_classes: int, input_shape: tuple[int, int], config: TransformerConfig = TransformerConfig()
    ) -> None:
        super().__init__(n_classes, input_shape, config)

    def make_backbone(self) -> tuple[nn.Module, int]:
        steps = self.input_shape[1] // self.config.segment
        return _TransformerBackbone(self.input_shape[0], steps, self.config), self.config.d_model


class _TransformerBackbone(nn.Module):
    """Segment pooling -> projection to D -> (class token) + positions -> encoder layers -> norm -> pooling."""

    def __init__(self, n_features: int, steps: int, config: TransformerConfig) -> None:
        super().__init__()
        d = config.d_model
        self.pool = SegmentPool(config.segment)  # (B, F, T) -> (B, L, F)
        self.projection = nn.Linear(n_features, d)  # (B, L, F) -> (B, L, D)
        self.cls = nn.Parameter(torch.zeros(1, 1, d)) if config.pooling == "cls" else None
        total = steps + (self.cls is not None)
        if config.positions == "learned":
            self.positions = nn.Parameter(0.02 * torch.randn(1, total, d))  # (1, L, D)
        else:
            # Not saved in checkpoints: recomputed from the config, and a constant of the exported graphs.
            self.register_buffer("positions", sinusoidal_positions(total, d)[None], persistent=False)  # (1, L, D)
        self.input_dropout = nn.Dropout(config.dropout)
        self.layers = nn.Sequential(*(EncoderLayer(config) for _ in range(config.layers)))
        self.norm = nn.LayerNorm(d)
        self.pooling = config.pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection(self.pool(x))  # (B, L, D)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + L, D): the token first
        x = self.input_dropout(x + self.positions)  # (B, L, D)
        x = self.norm(self.layers(x))  # (B, L, D)
        if self.pooling == "cls":
            return x[:, 0, :]  # (B, D): what the class token gathered
        return x.mean(dim=1)  # (B, D)
