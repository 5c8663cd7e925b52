"""The CNN's ``pool`` option: "time" keeps each frequency row of the last feature map, "global" averages them,
"meanmax" adds each channel's maximum to its mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from _tiny_runs import small_cnn_config
from pyharmonies.errors import ParameterError
from pyharmonies.models.cnn import CNNConfig, MobileNetV2
from pyharmonies.training.loop import train_run


@pytest.mark.parametrize("n_mels, rows", [(64, 4), (40, 3), (128, 8)])
def test_time_pooling_keeps_one_vector_per_band_whose_mean_is_the_global_pool(n_mels, rows):
    torch.manual_seed(0)
    per_band = MobileNetV2(5, (n_mels, 129), CNNConfig(pool="time")).eval()
    pooled = MobileNetV2(5, (n_mels, 129), CNNConfig(pool="global")).eval()
    own = {k: v for k, v in per_band.state_dict().items() if not k.startswith("head.")}
    pooled.load_state_dict(own, strict=False)  # the same convolutions; only the heads differ
    assert per_band.feature_dim == rows * pooled.feature_dim
    x = torch.randn(3, 1, n_mels, 129)
    with torch.no_grad():
        bands = per_band.backbone(x).view(3, pooled.feature_dim, rows)  # Flatten keeps (channel, row) order
        torch.testing.assert_close(bands.mean(dim=2), pooled.backbone(x), rtol=1e-5, atol=1e-5)
        assert per_band(torch.randn(2, 1, n_mels, 300)).shape == (2, 5)  # other window lengths still run


def test_meanmax_pooling_is_the_global_mean_then_the_global_maximum_of_each_channel():
    torch.manual_seed(0)
    both = MobileNetV2(5, (64, 129), CNNConfig(pool="meanmax")).eval()
    pooled = MobileNetV2(5, (64, 129), CNNConfig(pool="global")).eval()
    own = {k: v for k, v in both.state_dict().items() if not k.startswith("head.")}
    pooled.load_state_dict(own, strict=False)
    assert both.feature_dim == 2 * pooled.feature_dim
    x = torch.randn(3, 1, 64, 129)
    with torch.no_grad():
        features = both.backbone(x)
        last_map = both.backbone[:-2](x)  # before the pooling and the flattening: (B, C, M/16, T/16)
        torch.testing.assert_close(features[:, : pooled.feature_dim], pooled.backbone(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(features[:, pooled.feature_dim :], last_map.amax(dim=(2, 3)))
        assert bool((features[:, pooled.feature_dim :] >= features[:, : pooled.feature_dim] - 1e-6).all())
        assert both(torch.randn(2, 1, 64, 300)).shape == (2, 5)


def test_an_unknown_pool_is_refused():
    with pytest.raises(ParameterError, match="pool must be one of global, time, meanmax"):
        CNNConfig(pool="max")


@pytest.mark.parametrize("pool", ["time", "meanmax"])
def test_a_pooled_run_exports_as_a_verified_int8_bundle(pool, three_class_corpus: Path, tmp_path):
    from pyharmonies.export import export_run
    from pyharmonies.runtime.bundle import load_bundle

    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=1, model_options={"width": 0.5, "pool": pool}),
                    progress=False)  # fmt: skip
    bundle = export_run(run, tmp_path / "bundle", int8=True, calibration=32, allow_drop=True, progress=False, latency_runs=1)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["config"]["pool"] == pool
    load_bundle(bundle)  # the device side's checks pass: every file matches the reference outputs
