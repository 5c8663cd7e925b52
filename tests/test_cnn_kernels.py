"""The CNN's ``kernels`` option: each stage's depthwise kernel, and the receptive field it gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from _tiny_runs import small_cnn_config
from pyharmonies.errors import ParameterError
from pyharmonies.models.cnn import CNNConfig, MobileNetV2, receptive_field
from pyharmonies.training.loop import train_run

THREE_BY_THREE = ((3, 3),) * 5
DEEP_ONE_BY_ONE = ((3, 3), (3, 3), (3, 3), (1, 1), (1, 1))


def measured_field(config: CNNConfig) -> tuple[int, int]:
    """The rows and columns of a large input that reach the centre of the last feature map (its gradient)."""
    model = MobileNetV2(3, (256, 256), config).eval()
    x = torch.randn(1, 1, 256, 256, requires_grad=True)
    last_map = model.backbone[:-2](x)  # before the pooling and the flattening
    last_map[0, :, last_map.shape[2] // 2, last_map.shape[3] // 2].sum().backward()
    reached = x.grad[0, 0] != 0
    rows = reached.any(dim=1).nonzero().flatten()
    cols = reached.any(dim=0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize(
    "kernels, expected",
    [
        (None, (123, 123)),
        (DEEP_ONE_BY_ONE, (43, 43)),
        (((3, 3), (3, 3), (1, 1), (1, 1), (1, 1)), (19, 19)),
        (((3, 3), (3, 3), (1, 3), (1, 3), (1, 3)), (19, 123)),  # frequency only
        (((5, 5), (3, 3), (3, 3), (3, 3), (3, 3)), (127, 127)),
    ],
)
def test_the_receptive_field_is_what_the_gradient_reaches(kernels, expected):
    torch.manual_seed(0)
    config = CNNConfig(kernels=kernels)
    assert receptive_field(config) == expected
    assert measured_field(config) == expected


def test_three_by_three_everywhere_is_the_default_network():
    torch.manual_seed(0)
    default = MobileNetV2(4, (64, 86))
    torch.manual_seed(0)
    spelt_out = MobileNetV2(4, (64, 86), CNNConfig(kernels=THREE_BY_THREE))
    assert spelt_out.config == default.config  # the one form of the default: None
    x = torch.randn(2, 1, 64, 86)
    with torch.no_grad():
        torch.testing.assert_close(default.eval()(x), spelt_out.eval()(x), rtol=0, atol=0)


def test_one_by_one_deep_stages_keep_the_shapes_and_need_fewer_weights():
    small = MobileNetV2(4, (64, 86), CNNConfig(kernels=[list(k) for k in DEEP_ONE_BY_ONE]))  # lists, as JSON gives them
    assert small.config.kernels == DEEP_ONE_BY_ONE
    assert small(torch.randn(2, 1, 64, 86)).shape == (2, 4)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in MobileNetV2(4, (64, 86)).parameters())


@pytest.mark.parametrize(
    "kernels, message",
    [
        (((3, 3),) * 4, "one .frequency, time. size per stage: 5 stages, got 4"),
        (((3, 3),) * 4 + ((2, 2),), "odd positive integers, got \\(2, 2\\)"),
        (((3, 3),) * 4 + ((3,),), "odd positive integers"),
        (((3, 3),) * 4 + ((0, 1),), "odd positive integers"),
    ],
)
def test_bad_kernels_are_refused(kernels, message):
    with pytest.raises(ParameterError, match=message):
        CNNConfig(kernels=kernels)


def test_a_run_with_one_by_one_deep_stages_exports_as_a_verified_int8_bundle(three_class_corpus: Path, tmp_path):
    from pyharmonies.export import export_run
    from pyharmonies.runtime.bundle import load_bundle

    options = {"width": 0.5, "kernels": [list(k) for k in DEEP_ONE_BY_ONE]}
    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=1, model_options=options), progress=False)
    bundle = export_run(run, tmp_path / "bundle", int8=True, calibration=32, allow_drop=True, progress=False, latency_runs=1)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["config"]["kernels"] == [list(k) for k in DEEP_ONE_BY_ONE]
    load_bundle(bundle)  # the device side's checks pass: every file matches the reference outputs


def test_the_shipped_backbone_is_three_by_three_and_refuses_other_kernels():
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.backbone import load_backbone, shipped_backbone_path

    found = load_backbone(shipped_backbone_path())
    assert "kernels" not in found.meta["model_config"]  # pretrained before the option: 3 x 3 throughout
    assert found.mismatch(FeatureConfig(), {"kernels": [list(k) for k in THREE_BY_THREE]}) is None
    why = found.mismatch(FeatureConfig(), {"kernels": [list(k) for k in DEEP_ONE_BY_ONE]})
    assert why is not None and why.startswith("its network has another shape (kernels None vs")
