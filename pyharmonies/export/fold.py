"""BatchNorm folded into the convolution before it, in a copy of the model.

Every exported file starts from the folded copy, so none of them holds a
BatchNorm (the ONNX graph is checked for ``BatchNormalization`` after
export); the PyTorch reference of the verification is the unfolded model, so
the fp32 comparison also checks the fold.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode, each ``Conv2d -> BatchNorm2d`` pair fused into one ``Conv2d``.

    The pairs are found inside ``nn.Sequential`` containers (where the CNN
    keeps them); the folded BatchNorm becomes ``nn.Identity``. A BatchNorm that
    does not follow a convolution is left as it is (and the ONNX check then
    reports it).
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, bn)
                module._modules[second] = nn.Identity()
    return folded


def has_batchnorm(model: nn.Module) -> bool:
    """Whether any BatchNorm module is left."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
