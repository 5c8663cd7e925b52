"""A MobileNetV2-style CNN over a log-mel window.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
(2018), scaled down for a ``1 x n_mels x frames`` log-mel input (by default
``1 x 64 x 86``: 2 s at 22050 Hz, hop 512). Every op is one that converts to
int8 TFLite (litert-torch PT2E) and to int8 ONNX (onnxruntime QDQ): Conv2d,
BatchNorm2d (folded into the convolution at export), ReLU6 (``hardtanh``),
add, adaptive average (and max) pooling, concatenation, Linear.

Shapes in the comments use ``B`` for the batch, ``M`` for mel bands, ``T`` for
frames and ``C`` for channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pyharmonies.errors import ParameterError

__all__ = ["CNNConfig", "InvertedResidual", "MeanMaxPool", "MobileNetV2", "make_divisible", "receptive_field"]

#: CNNConfig.pool's choices.
POOLS = ("global", "time", "meanmax")

#: One stage of the network: (expansion t, output channels c, repeats n, stride s),
#: MobileNetV2's notation (Table 2 of the paper).
BlockSpec = tuple[int, int, int, int]
#: The (frequency, time) size of one stage's depthwise kernels.
KernelSpec = tuple[int, int]


@dataclass(frozen=True)
class CNNConfig:
    """Hyper-parameters of :class:`MobileNetV2`; the defaults are the edge model.

    At ``width=1.0`` on a 64 x 129 log-mel window with 10 classes: 134,922
    parameters and 14.4M multiply-accumulates per window (``summary(model)``
    lists them per block). The budget is the int8 TFLite file (<= 250 KB):
    besides one byte per weight it holds, per output channel of every
    convolution, an int32 bias and a float32 scale plus an int64 zero point for
    both weight and bias (~28 bytes), which is why the model stays near 135k
    parameters rather than 250k.
    """

    width: float = 1.0  # width multiplier on every channel count (stem, blocks, last conv)
    stem_channels: int = 16  # output channels of the 3x3 stride-2 stem convolution, before `width`
    # (t, c, n, s) per stage. MobileNetV2's ImageNet table is (1,16,1,1), (6,24,2,2), (6,32,3,2),
    # (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1) for 224x224x3 (3.4M parameters); here the
    # input is ~64x129x1, so one fewer stride-2 stage (total stride 16: 64x129 -> 4x9); expansion 4,
    # fewer repeats and narrower deep stages fit the int8 file in 250 KB (see the class docstring).
    blocks: tuple[BlockSpec, ...] = (
        (1, 16, 1, 1),  # -> 32 x 65 (the stem halved 64 x 129)
        (4, 24, 2, 2),  # -> 16 x 33
        (4, 32, 2, 2),  # -> 8 x 17
        (4, 64, 2, 2),  # -> 4 x 9
        (4, 80, 1, 1),  # -> 4 x 9
    )
    last_channels: int = 192  # the 1x1 conv before pooling (1280 in the paper); width scales it only above 1.0
    dropout: float = 0.2  # dropout on the pooled features, before the classifier
    # How the last feature map becomes one vector: "global" averages over frequency and time
    # (MobileNetV2's); "time" averages over time only and keeps each of the M/16 frequency rows,
    # so the classifier knows in which band a pattern sits; "meanmax" concatenates the global mean
    # and the global maximum of each channel, as music taggers do (how much of a window holds a
    # pattern, and how strongly it appears at its peak; docs/EXPERIMENTS.md).
    pool: str = "global"
    # (frequency, time) size of the depthwise kernels of each stage in `blocks`; None: 3 x 3 in every
    # stage. A 1 in the deep stages shrinks the receptive field: each output then sees a patch of the
    # log-mel rather than the whole window (`receptive_field`; Koutini et al., "The Receptive Field as
    # a Regularizer in Deep Convolutional Neural Networks for Acoustic Scene Classification", 2019).
    kernels: tuple[KernelSpec, ...] | None = None
    round_to: int = 8  # channel counts after `width` are rounded to multiples of this (SIMD-friendly)

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ParameterError(f"width must be > 0, got {self.width}")
        if self.stem_channels < 1 or self.last_channels < 1 or self.round_to < 1:
            raise ParameterError("stem_channels, last_channels and round_to must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pool not in POOLS:
            raise ParameterError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if not self.blocks:
            raise ParameterError("blocks must name at least one stage")
        for spec in self.blocks:
            if len(spec) != 4 or any(int(v) != v or v < 1 for v in spec):
                raise ParameterError(f"each block is (t, c, n, s) of positive integers, got {spec!r}")
            if spec[3] not in (1, 2):
                raise ParameterError(f"block stride must be 1 or 2, got {spec!r}")
        # JSON and torch checkpoints hand back lists; keep the field a hashable tuple of tuples.
        object.__setattr__(self, "blocks", tuple(tuple(int(v) for v in spec) for spec in self.blocks))
        if self.kernels is not None:
            if len(self.kernels) != len(self.blocks):
                raise ParameterError(f"kernels gives one (frequency, time) size per stage: {len(self.blocks)} stages, "
                                     f"got {len(self.kernels)}")  # fmt: skip
            for spec in self.kernels:
                if len(spec) != 2 or any(int(v) != v or v < 1 or v % 2 == 0 for v in spec):
                    raise ParameterError(f"each kernel is (frequency, time) of odd positive integers, got {spec!r}")
            kernels = tuple(tuple(int(v) for v in spec) for spec in self.kernels)
            # 3 x 3 spelt out is the default: one form, so configs (and backbones) compare equal.
            object.__setattr__(self, "kernels", None if set(kernels) == {(3, 3)} else kernels)

    def stage_kernels(self) -> tuple[KernelSpec, ...]:
        """The (frequency, time) depthwise kernel of each stage, ``kernels`` or 3 x 3 throughout."""
        return self.kernels if self.kernels is not None else ((3, 3),) * len(self.blocks)


def receptive_field(config: CNNConfig) -> KernelSpec:
    """How many (mel bands, frames) of the input one position of the last feature map sees.

    The stem's 3 x 3 stride-2 convolution, then each block's depthwise
    convolution (its stage's kernel; the first block of a stage carries the
    stride); 1 x 1 convolutions add nothing. With the defaults: (123, 123),
    more than a whole 64 x 86 window.
    """
    sizes = []
    for axis in (0, 1):
        field, jump = 3, 2  # the stem
        for (_t, _c, n, s), kernel in zip(config.blocks, config.stage_kernels()):
            for i in range(n):
                field += (kernel[axis] - 1) * jump
                jump *= s if i == 0 else 1
        sizes.append(field)
    return sizes[0], sizes[1]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never dropping below 90% of it.

    The rounding rule of the reference MobileNet implementations
    (``_make_divisible`` in TensorFlow's and torchvision's ``mobilenet``).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6; ``activation=False`` drops the ReLU6 (linear bottleneck)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | KernelSpec = 1,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        rows, cols = (kernel, kernel) if isinstance(kernel, int) else kernel
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, (rows, cols), stride, padding=((rows - 1) // 2, (cols - 1) // 2), groups=groups,
                      bias=False),  # fmt: skip
            nn.BatchNorm2d(out_ch),
        ]
        if activation:
            layers.append(nn.ReLU6(inplace=False))  # hardtanh(0, 6); not in-place, so export graphs stay simple
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when t = 1) -> depthwise (``kernel``) -> 1x1 linear projection, plus the input when it fits."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int, kernel: KernelSpec = (3, 3)) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, 1))  # (B, in, H, W) -> (B, hidden, H, W)
        layers.append(ConvBNReLU6(hidden, hidden, kernel, stride, groups=hidden))  # -> (B, hidden, H/s, W/s)
        layers.append(ConvBNReLU6(hidden, out_ch, 1, activation=False))  # -> (B, out, H/s, W/s), linear
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MeanMaxPool(nn.Module):
    """Each channel's mean and maximum over the whole map: (B, C, H, W) -> (B, 2C, 1, 1), means first."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # amax, not AdaptiveMaxPool2d: litert-torch has no lowering for adaptive max pooling.
        return torch.cat([self.mean(x), x.amax(dim=(2, 3), keepdim=True)], dim=1)


class MobileNetV2(nn.Module):
    """MobileNetV2-style classifier of one log-mel window.

    Parameters
    ----------
    n_classes : int
        Number of output logits (>= 1).
    input_shape : tuple of int
        ``(n_mels, frames)`` of one window, kept for the summary and export.
        The network is convolutional up to the global pooling, so other
        window sizes run too (each stride-2 stage rounds up).
    config : CNNConfig
        Width, stages, dropout.

    ``backbone`` maps ``(B, 1, M, T)`` to pooled features ``(B, feature_dim)``;
    ``head`` is the final ``nn.Linear(feature_dim, n_classes)``. Fine-tuning
    replaces ``head`` and may freeze ``backbone``.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, int], config: CNNConfig = CNNConfig()) -> None:
        super().__init__()
        if n_classes < 1:
            raise ParameterError(f"n_classes must be >= 1, got {n_classes}")
        if len(input_shape) != 2 or min(input_shape) < 1:
            raise ParameterError(f"input_shape is (n_mels, frames), got {input_shape!r}")
        self.config = config
        self.n_classes = n_classes
        self.input_shape = (int(input_shape[0]), int(input_shape[1]))
        width, div = config.width, config.round_to

        in_ch = make_divisible(config.stem_channels * width, div)
        layers: list[nn.Module] = [ConvBNReLU6(1, in_ch, 3, stride=2)]  # (B, 1, M, T) -> (B, stem, M/2, T/2)
        for (t, c, n, s), kernel in zip(config.blocks, config.stage_kernels()):
            out_ch = make_divisible(c * width, div)
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t, kernel))
                in_ch = out_ch
        last = make_divisible(config.last_channels * max(1.0, width), div)
        layers.append(ConvBNReLU6(in_ch, last, 1))  # (B, C, M/16, T/16) -> (B, last, M/16, T/16)
        if config.pool == "time":
            rows = self.input_shape[0]
            for _ in range(1 + sum(1 for spec in config.blocks if spec[3] == 2)):  # the stem and each stride-2 stage
                rows = (rows + 1) // 2  # a 3x3 stride-2 convolution with padding 1 rounds up
            layers.append(nn.AdaptiveAvgPool2d((rows, 1)))  # -> (B, last, M/16, 1): the mean over time, per band
            self.feature_dim = last * rows
        elif config.pool == "meanmax":
            layers.append(MeanMaxPool())  # -> (B, 2 * last, 1, 1)
            self.feature_dim = 2 * last
        else:
            layers.append(nn.AdaptiveAvgPool2d(1))  # -> (B, last, 1, 1)
            self.feature_dim = last
        layers.append(nn.Flatten(1))  # -> (B, feature_dim)
        self.backbone = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.feature_dim, n_classes)  # (B, feature_dim) -> (B, n_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation over each convolution's fan-in. torchvision's MobileNetV2 uses fan-out,
        # which for a depthwise 3x3 counts all `hidden * 9` outputs and shrinks activations ~10x per
        # block: train-mode BatchNorm hides that, but the running statistics start at (0, 1) and
        # need hundreds of steps to reach variances of 1e-4, so eval-mode logits are off early in
        # training. Fan-in keeps every block's output variance of order 1 from the first step.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros shaped like the model's input, ``(batch, 1, n_mels, frames)``, on its device (for export, MACs)."""
        return torch.zeros(batch, 1, *self.input_shape, device=self.head.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, M, T) log-mel, normalised
        features = self.backbone(x)  # (B, feature_dim)
        return self.head(self.dropout(features))  # (B, n_classes)
