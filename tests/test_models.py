"""The models: shapes, budgets, MAC counting, learning, configs, fine-tuning, export parity.

The transformer's attention is also checked against PyTorch's own
``nn.MultiheadAttention`` carrying the same weights.

Export here means fp32 only (ONNX through torch.onnx, TFLite through
litert-torch), compared with PyTorch: the int8 paths and their accuracy belong
to ``pyharmonies.export`` and its tests.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models import (
    INPUT_KIND,
    MODELS,
    CNNConfig,
    LSTMConfig,
    MobileNetV2,
    SequenceLSTM,
    SequenceTransformer,
    TransformerConfig,
    build_model,
    config_to_dict,
    count_macs,
    count_parameters,
    model_config,
    summary,
)
from pyharmonies.models.cnn import make_divisible
from pyharmonies.models.ensemble import CNNEnsemble, EnsembleConfig
from pyharmonies.models.transformer import SelfAttention, sinusoidal_positions

#: A small transformer for the tests that train one: 2,720 parameters besides its head.
TINY_TRANSFORMER = {"d_model": 16, "heads": 2, "layers": 1, "ff": 32}

#: fp32 export vs PyTorch, max abs logit difference (issue 4's bound). Both sides compute in
#: float32 with different kernels and summation orders; on logits of order 1 that is ~1e-6.
EXPORT_ATOL = 1e-4


@pytest.fixture(autouse=True)
def _seed(seed: int) -> None:
    torch.manual_seed(seed)


def _realistic(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Give an untrained model the statistics of a trained one before its export is compared.

    At init, eval-mode BatchNorm is the identity (mean 0, var 1), so folding it into the
    convolutions would go untested. A few train-mode passes with a cumulative average set
    the running statistics to the data's; a wider head gives logits of order 1.
    """
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative moving average over the passes below
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(example + 0.1 * torch.randn_like(example))
        nn.init.normal_(model.head.weight, 0.0, 1.0 / model.feature_dim**0.5)
        nn.init.normal_(model.head.bias, 0.0, 0.1)
    return model.eval()


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("n_mels, frames", [(40, 65), (64, 129), (128, 259)])
@pytest.mark.parametrize("width", [0.5, 1.0, 1.5])
def test_cnn_output_shape(n_mels: int, frames: int, width: float) -> None:
    model = build_model("cnn", 7, (n_mels, frames), {"width": width})
    out = model(torch.randn(2, 1, n_mels, frames))
    assert out.shape == (2, 7)
    assert model.backbone(torch.randn(3, 1, n_mels, frames)).shape == (3, model.feature_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("frames", [65, 129, 259])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (1, True), (2, False), (2, True)])
def test_lstm_output_shape(frames: int, layers: int, bidirectional: bool) -> None:
    config = {"layers": layers, "bidirectional": bidirectional}
    model = build_model("lstm", 5, (28, frames), config)
    assert model(torch.randn(2, 28, frames)).shape == (2, 5)
    assert model.feature_dim == 64 * (2 if bidirectional else 1)
    assert model.backbone(torch.randn(3, 28, frames)).shape == (3, model.feature_dim)


@pytest.mark.parametrize("frames", [9, 65, 129])
@pytest.mark.parametrize(
    "options",
    [{}, {"pooling": "cls"}, {"positions": "learned"}, {"layers": 1, "heads": 1, "activation": "gelu"}, {"segment": 1}],
)
def test_transformer_output_shape(frames: int, options: dict) -> None:
    model = build_model("transformer", 5, (28, frames), options)
    assert model(torch.randn(2, 28, frames)).shape == (2, 5)
    assert model.feature_dim == model.config.d_model == 64
    assert model.backbone(torch.randn(3, 28, frames)).shape == (3, 64)
    steps = frames // model.config.segment + (options.get("pooling") == "cls")
    assert model.backbone.positions.shape == (1, steps, 64)


def test_width_scales_channels_in_multiples_of_eight() -> None:
    narrow, wide = (MobileNetV2(4, (64, 129), CNNConfig(width=w)) for w in (0.5, 1.5))
    for model in (narrow, wide):
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert all(c.out_channels % 8 == 0 for c in convs[1:])  # the stem's input is the 1 mel channel
    assert count_parameters(narrow) < count_parameters(build_model("cnn", 4, (64, 129))) < count_parameters(wide)
    # The rounding rule of the reference MobileNets: nearest multiple, never below 90%.
    assert [make_divisible(v) for v in (12, 16 * 0.5, 24 * 0.75, 96 * 1.5, 3)] == [16, 8, 24, 144, 8]


def test_segment_pool_averages_runs_of_frames_and_drops_the_tail() -> None:
    model = build_model("lstm", 3, (28, 10), {"segment": 4})
    x = torch.arange(2 * 28 * 10, dtype=torch.float32).reshape(2, 28, 10)
    pooled = model.backbone.pool(x)  # (B, L, F), L = 10 // 4 = 2; frames 8, 9 dropped
    expected = torch.stack([x[:, :, 0:4].mean(2), x[:, :, 4:8].mean(2)], dim=1)
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)


def test_residual_only_where_shapes_match() -> None:
    model = build_model("cnn", 4, (64, 129))
    blocks = [m for m in model.backbone if hasattr(m, "use_residual")]
    # Default stages (1,16,1,1) (4,24,2,2) (4,32,2,2) (4,64,2,2) (4,96,1,1) after a 16-channel stem:
    # 16 -> 16 at stride 1 adds its input; the first block of each new width cannot; repeats do.
    flags = [b.use_residual for b in blocks]
    assert flags == [True, False, True, False, True, False, True, False]


# ---------------------------------------------------------------- budgets and MACs


def test_default_models_fit_the_edge_budget() -> None:
    cnn = build_model("cnn", 10, (64, 129))
    lstm = build_model("lstm", 10, (28, 129))
    figures = {
        "cnn": (count_parameters(cnn), count_macs(cnn, (1, 1, 64, 129))),
        "lstm": (count_parameters(lstm), count_macs(lstm, (1, 28, 129))),
    }
    for name, (params, macs) in figures.items():
        print(f"{name}: {params:,} parameters, {macs:,} MACs per window")
    print(summary(cnn))
    print(summary(lstm))
    # Issue 3: <= 300k parameters at the default width. The int8 TFLite file also carries
    # ~28 bytes of bias and quantization parameters per output channel, so staying near 135k
    # parameters keeps it <= 250 KB (issue 4; measured 233 KB with litert-torch 0.10).
    assert figures["cnn"][0] <= 300_000
    assert 100_000 <= figures["cnn"][0] <= 150_000
    assert figures["cnn"][1] <= 20_000_000  # ~1 ms per window int8 on one core needs well under 50M
    assert figures["lstm"][0] <= 60_000  # int8 <= 150 KB (issue 4) with room for names and scales
    # What `harmonies train` builds for the cnn by default: narrow members averaged, no bigger than one CNN
    # (measured: 226 kB int8 untrained for 9 classes, about 243 kB trained; docs/EXPERIMENTS.md).
    from pyharmonies.training.config import DEFAULT_MEMBERS, MEMBER_WIDTH

    members = build_model("cnn_ensemble", 10, (64, 129), {"members": DEFAULT_MEMBERS["cnn"], "member": {"width": MEMBER_WIDTH}})
    params, macs = count_parameters(members), count_macs(members, (1, 1, 64, 129))
    print(f"cnn_ensemble (the default): {params:,} parameters, {macs:,} MACs per window")
    assert params <= figures["cnn"][0] and macs <= 20_000_000
    transformer = build_model("transformer", 10, (28, 129))
    params, macs = count_parameters(transformer), count_macs(transformer, (1, 28, 129))
    print(f"transformer: {params:,} parameters, {macs:,} MACs per window")
    print(summary(transformer))
    # The docstring's figures; about 70 KB of int8 weights, the LSTM's cost order rather than the CNN's.
    assert (params, macs) == (69_578, 2_417_280)


def test_macs_match_a_hand_computation_for_a_tiny_cnn() -> None:
    config = CNNConfig(stem_channels=8, blocks=((2, 8, 1, 1), (3, 16, 1, 2)), last_channels=16, dropout=0.0)
    model = MobileNetV2(3, (8, 12), config)
    # stem 3x3 s2, 1 -> 8 on 8x12 -> 4x6:                 9*1*8*24      = 1728
    # block 1 (t=2, 8 -> 8, s1) on 4x6:  expand 8->16        8*16*24    = 3072
    #                                    depthwise 3x3 x16   9*16*24    = 3456
    #                                    project 16->8       16*8*24    = 3072
    # block 2 (t=3, 8 -> 16, s2):        expand 8->24 @4x6   8*24*24    = 4608
    #                                    depthwise @2x3      9*24*6     = 1296
    #                                    project 24->16 @2x3 24*16*6    = 2304
    # last 1x1 16->16 @2x3                                  16*16*6    = 1536
    # head 16->3                                            48
    expected = 1728 + 3072 + 3456 + 3072 + 4608 + 1296 + 2304 + 1536 + 48
    assert count_macs(model, (1, 1, 8, 12)) == expected
    assert count_macs(model, (5, 1, 8, 12)) == expected  # per window whatever the batch
    assert count_macs(model) == expected  # default: the model's own input_shape


def test_macs_match_a_hand_computation_for_lstms() -> None:
    # 28 x 40 frames, segment 4 -> 10 steps; projection 28 -> 8; hidden 6, 2 layers, bidirectional.
    config = LSTMConfig(hidden=6, layers=2, bidirectional=True, segment=4, projection=8)
    model = SequenceLSTM(3, (28, 40), config)
    projection = 10 * 28 * 8
    layer1 = 2 * 10 * 4 * (8 + 6) * 6  # directions * steps * gates * (in + hidden) * hidden
    layer2 = 2 * 10 * 4 * (12 + 6) * 6  # the second layer reads both directions: in = 12
    head = 12 * 3
    assert count_macs(model, (1, 28, 40)) == projection + layer1 + layer2 + head
    # Without the projection the first layer reads the 28 features; one direction, one layer.
    plain = SequenceLSTM(3, (28, 40), LSTMConfig(hidden=6, segment=4, projection=0))
    assert count_macs(plain) == 10 * 4 * (28 + 6) * 6 + 6 * 3


def test_macs_match_a_hand_computation_for_a_transformer() -> None:
    # 28 x 40 frames, segment 4 -> 10 steps (11 with the class token); d 8, 2 heads, ff 12, 2 layers, 3 classes.
    config = TransformerConfig(d_model=8, heads=2, layers=2, ff=12, segment=4, pooling="cls")
    model = SequenceTransformer(3, (28, 40), config)
    projection = 10 * 28 * 8  # the class token is prepended after the projection
    per_layer = 11 * (8 * 24 + 8 * 8 + 8 * 12 + 12 * 8)  # qkv, out, feed-forward, per step
    attention = 2 * 11 * 11 * 8  # q k^T and weights v: L^2 E per head, H heads
    head = 8 * 3
    assert count_macs(model) == projection + 2 * (per_layer + attention) + head
    assert SelfAttention.macs((torch.zeros(4, 11, 8),), torch.zeros(4, 11, 8)) == attention  # per window, whatever the batch


def test_summary_lists_blocks_and_totals() -> None:
    model = build_model("cnn", 10, (64, 129))
    text = summary(model, (1, 1, 64, 129))
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["block", "type", "output", "params", "MACs"]
    assert any(line.startswith("backbone.1 ") and "InvertedResidual" in line for line in lines)
    assert "1x10" in next(line for line in lines if line.startswith("head"))
    total = lines[-1].split()
    assert total[0] == "total" and total[-2:] == [f"{count_parameters(model):,}", f"{count_macs(model):,}"]


def test_count_macs_leaves_the_training_modes_alone() -> None:
    model = build_model("cnn", 4, (40, 65))
    model.train()
    model.backbone.eval()  # fine-tuning with a frozen backbone keeps its BatchNorm statistics
    count_macs(model)
    assert model.training and model.head.training and not model.backbone.training
    assert not any(m.training for m in model.backbone.modules())
    model.eval()
    summary(model)
    assert not any(m.training for m in model.modules())


def test_example_input_has_the_model_input_shape() -> None:
    assert build_model("cnn", 3, (40, 65)).example_input(2).shape == (2, 1, 40, 65)
    assert build_model("lstm", 3, (28, 65)).example_input().shape == (1, 28, 65)
    assert build_model("transformer", 3, (28, 65)).example_input(3).shape == (3, 28, 65)
    with pytest.raises(ParameterError, match="no example_input"):
        count_macs(nn.Linear(3, 4))
    assert count_macs(nn.Linear(3, 4), (1, 3)) == 12


# ---------------------------------------------------------------- the transformer's parts


def test_attention_equals_pytorchs_multihead_attention_with_the_same_weights() -> None:
    attention = SelfAttention(16, 4, dropout=0.0).eval()
    reference = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(attention.qkv.weight)  # both stack queries, keys, values in that order
        reference.in_proj_bias.copy_(attention.qkv.bias)
        reference.out_proj.weight.copy_(attention.out.weight)
        reference.out_proj.bias.copy_(attention.out.bias)
        x = torch.randn(3, 7, 16)
        expected, _ = reference(x, x, x, need_weights=False)
        # float32 sums in another order (PyTorch's fused kernel scales after the product): ~1e-7 on values of order 1.
        torch.testing.assert_close(attention(x), expected, rtol=0, atol=1e-5)


def test_sinusoidal_positions_follow_the_formula() -> None:
    codes = sinusoidal_positions(5, 6)
    assert codes.shape == (5, 6)
    torch.testing.assert_close(codes[0], torch.tensor([0.0, 1.0] * 3))  # position 0: sin 0, cos 0
    p, i = 3, 4  # the even column 4 and its odd partner 5 share the rate 10000^(-4/6)
    rate = 10000.0 ** (-i / 6)
    torch.testing.assert_close(codes[p, i], torch.tensor(np.sin(p * rate), dtype=torch.float32))
    torch.testing.assert_close(codes[p, i + 1], torch.tensor(np.cos(p * rate), dtype=torch.float32))
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # an odd width ends on a sine column
    torch.testing.assert_close(sinusoidal_positions(4, 5)[:, 4], torch.sin(torch.arange(4.0) * 10000.0 ** (-4 / 5)))


def test_fixed_positions_are_not_saved_and_learned_ones_are() -> None:
    fixed = build_model("transformer", 3, (28, 65)).state_dict()
    learned = build_model("transformer", 3, (28, 65), {"positions": "learned", "pooling": "cls"}).state_dict()
    assert "backbone.positions" not in fixed and "backbone.cls" not in fixed  # rebuilt from the config at load
    assert learned["backbone.positions"].shape == (1, 65 // 4 + 1, 64) and learned["backbone.cls"].shape == (1, 1, 64)


def test_the_class_token_reads_every_step_and_mean_pooling_none_is_left_out() -> None:
    """Both poolings see the whole window: a change in the last segment moves the output."""
    for pooling in ("mean", "cls"):
        model = build_model("transformer", 3, (28, 40), {"pooling": pooling, "dropout": 0.0}).eval()
        x = torch.randn(1, 28, 40)
        later = x.clone()
        later[:, :, 36:] += 1.0  # the tenth (last) segment only
        with torch.no_grad():
            assert not torch.allclose(model(x), model(later)), pooling


# ---------------------------------------------------------------- learning


def _separable_batch(kind: str, n_per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes that differ the way music classes do, with noise on top.

    CNN (1 x 24 x 32 log-mel-like): energy in a low, middle or high band.
    LSTM (28 x 32 frame vectors): a feature rising, falling or steady over time.
    """
    labels = torch.arange(3).repeat_interleave(n_per_class)
    if kind == "cnn":
        x = 0.5 * torch.randn(labels.numel(), 1, 24, 32, generator=generator)
        for c in range(3):
            x[labels == c, :, 8 * c : 8 * c + 8, :] += 1.5
    else:
        x = 0.5 * torch.randn(labels.numel(), 28, 32, generator=generator)
        ramp = torch.linspace(-1.5, 1.5, 32)
        x[labels == 0, 3, :] += ramp
        x[labels == 1, 3, :] -= ramp
        x[labels == 2, 5, :] += 1.5
    return x, labels


@pytest.mark.parametrize(
    "name, options",
    [("cnn", {"width": 0.5}), ("lstm", {"hidden": 16, "projection": 16}), ("transformer", TINY_TRANSFORMER),
     ("transformer", {**TINY_TRANSFORMER, "pooling": "cls", "positions": "learned"})],
)  # fmt: skip
def test_a_few_adam_steps_learn_a_separable_batch(name: str, options: dict) -> None:
    generator = torch.Generator().manual_seed(7)
    x, y = _separable_batch(name, 12, generator)
    model = build_model(name, 3, tuple(x.shape[-2:]), options)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    with torch.no_grad():
        first = loss_fn(model(x), y).item()
    for _ in range(40):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        logits = model(x)
    final = loss_fn(logits, y).item()
    # Chance is ln 3 = 1.10; a model that learns gets far below it in 40 steps.
    assert first > 0.9 and final < 0.3 * first, (first, final)
    assert (logits.argmax(1) == y).float().mean() >= 0.95


# ---------------------------------------------------------------- configs and the registry


def test_registry_names_and_input_kinds() -> None:
    assert set(MODELS) == set(INPUT_KIND) == {"cnn", "lstm", "transformer", "cnn_ensemble"}
    assert MODELS["cnn"] == (MobileNetV2, CNNConfig) and MODELS["lstm"] == (SequenceLSTM, LSTMConfig)
    assert MODELS["transformer"] == (SequenceTransformer, TransformerConfig)
    assert MODELS["cnn_ensemble"] == (CNNEnsemble, EnsembleConfig)
    assert INPUT_KIND == {"cnn": "log_mel", "lstm": "frame_vector", "transformer": "frame_vector", "cnn_ensemble": "log_mel"}
    assert isinstance(build_model("cnn", 2, (40, 65)), MobileNetV2)
    ensemble = build_model("cnn_ensemble", 2, (40, 65), {"members": 3, "member": {"width": 0.5}})
    assert isinstance(ensemble, CNNEnsemble) and len(ensemble.members) == 3 and ensemble.members[0].config.width == 0.5
    assert isinstance(build_model("lstm", 2, (28, 65)), SequenceLSTM)
    assert isinstance(build_model("transformer", 2, (28, 65)), SequenceTransformer)


@pytest.mark.parametrize(
    "name, options",
    [
        ("cnn", {"width": 0.75, "blocks": [[1, 8, 1, 1], [4, 16, 2, 2]], "dropout": 0.1}),
        ("lstm", {"hidden": 32, "layers": 2, "bidirectional": True, "pooling": "last"}),
        ("transformer", {"d_model": 32, "heads": 2, "layers": 3, "positions": "learned", "pooling": "cls", "activation": "gelu"}),
    ],
)
def test_config_round_trips_through_a_weights_only_checkpoint_and_json(name: str, options: dict, tmp_path) -> None:
    config = model_config(name, options)
    model = build_model(name, 4, (40, 65) if name == "cnn" else (28, 65), config)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": name, "config": config_to_dict(config), "state_dict": model.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert model_config(loaded["model"], loaded["config"]) == config
    rebuilt = build_model(loaded["model"], 4, (40, 65) if name == "cnn" else (28, 65), loaded["config"])
    rebuilt.load_state_dict(loaded["state_dict"])  # strict: same architecture
    # JSON turns tuples into lists; the config turns them back.
    from_json = model_config(name, json.loads(json.dumps(dataclasses.asdict(config))))
    assert from_json == config and hash(from_json) == hash(config)


def test_defaults_and_instances_pass_through() -> None:
    assert model_config("cnn", None) == CNNConfig()
    cfg = LSTMConfig(hidden=8)
    assert model_config("lstm", cfg) is cfg
    assert build_model("lstm", 2, (28, 65), cfg).config is cfg


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_model("resnet", 2, (64, 129)), r"unknown model 'resnet'; valid models: cnn, cnn_ensemble, lstm, transformer"),
        (lambda: build_model("cnn", 2, (64, 129), {"depth": 3}), r"'depth'.*valid options: blocks, dropout"),
        (lambda: model_config("lstm", {"hiden": 3}), r"'hiden' for model 'lstm'; valid options: bidir"),
        (lambda: build_model("cnn", 2, (64, 129), {"width": 0}), r"width must be > 0"),
        (lambda: build_model("cnn", 2, (64, 129), {"width": "wide"}), r"invalid options for model 'cnn'"),
        (lambda: build_model("cnn", 2, (64, 129), {"blocks": [("x", 8, 1, 1)]}), r"invalid options for model 'cnn'"),
        (lambda: build_model("cnn", 2, (64, 129), {"blocks": [(6, 24.5, 2, 1)]}), r"\(t, c, n, s\) of positive integers"),
        (lambda: build_model("cnn", 2, (64, 129), {"blocks": [(6, 24, 2, 3)]}), r"stride must be 1 or 2"),
        (lambda: build_model("lstm", 2, (28, 129), {"layers": 3}), r"layers must be 1 or 2"),
        (lambda: build_model("lstm", 2, (28, 129), {"pooling": "max"}), r"pooling must be one of"),
        (lambda: build_model("lstm", 2, (28, 3), {"segment": 4}), r"3 frames give no segment of 4"),
        (lambda: build_model("cnn", 0, (64, 129)), r"n_classes must be >= 1"),
        (lambda: build_model("transformer", 2, (28, 129), {"d_model": 30}), r"d_model \(30\) must be a multiple of heads \(4\)"),
        (lambda: build_model("transformer", 2, (28, 129), {"heads": 0}), r"heads must be an integer >= 1"),
        (lambda: build_model("transformer", 2, (28, 129), {"layers": 1.5}), r"layers must be an integer >= 1"),
        (lambda: build_model("transformer", 2, (28, 129), {"positions": "rotary"}), r"positions must be one of"),
        (lambda: build_model("transformer", 2, (28, 129), {"pooling": "max"}), r"pooling must be one of \('mean', 'cls'\)"),
        (lambda: build_model("transformer", 2, (28, 129), {"activation": "tanh"}), r"activation must be one of"),
        (lambda: build_model("transformer", 2, (28, 129), {"dropout": 1.0}), r"dropout must be in \[0, 1\)"),
        (lambda: build_model("transformer", 2, (28, 3)), r"3 frames give no segment of 4"),
        (lambda: model_config("transformer", {"dim": 64}), r"'dim' for model 'transformer'; valid options: activation, d_model"),
        (lambda: model_config("cnn", [("width", 1.0)]), r"must be a mapping"),
    ],
)
def test_bad_names_and_options_are_parameter_errors(call, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        call()


# ---------------------------------------------------------------- fine-tuning


@pytest.mark.parametrize("name, shape", [("cnn", (1, 40, 65)), ("lstm", (28, 65)), ("transformer", (28, 65))])
def test_head_can_be_replaced_and_backbone_frozen(name: str, shape: tuple) -> None:
    model = build_model(name, 10, shape[-2:])
    model.head = nn.Linear(model.feature_dim, 3)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    assert count_parameters(model, trainable_only=True) == model.feature_dim * 3 + 3

    x = torch.randn(4, *shape)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimiser.step()
    assert model(x).shape == (4, 3)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"head.weight", "head.bias"}


# ---------------------------------------------------------------- export


def _export_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # onnxscript (needed by the torch.export-based exporter, torch's default) is not a
        # dependency; the TorchScript exporter is deprecated but complete for these ops.
        warnings.filterwarnings(
            "ignore", message="You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # nn.LSTM checks its flat weights with Python bools while traced: constant for a fixed model.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="torch.nn.modules.rnn")
        # The LSTM's zero initial state is built from the input's shape, so any batch size runs
        # (checked below with a batch other than the exported one).
        warnings.filterwarnings(
            "ignore", message="Exporting a model to ONNX with a batch_size other than 1", category=UserWarning
        )
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, options, shape",
    [
        ("cnn", {}, (1, 64, 129)),
        ("lstm", {}, (28, 129)),
        ("lstm", {"layers": 2, "bidirectional": True}, (28, 129)),
        ("transformer", {}, (28, 129)),
        ("transformer", {"pooling": "cls", "positions": "learned", "activation": "gelu"}, (28, 129)),
    ],
)
def test_onnx_export_matches_pytorch(name: str, options: dict, shape: tuple) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = build_model(name, 6, shape[-2:], options)
    if name == "cnn":
        _realistic(model, torch.randn(16, *shape))
    model.eval()
    data = _export_onnx(model, torch.randn(1, *shape))
    graph = onnx.load_from_string(data)
    ops = {n.op_type for n in graph.graph.node}
    assert "BatchNormalization" not in ops  # folded into Conv by the exporter in eval mode
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = torch.randn(3, *shape)  # batch 3, exported with batch 1
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(expected).max() > 0.05  # the comparison is not between near-zeros
    np.testing.assert_allclose(got, expected, rtol=0, atol=EXPORT_ATOL)


@pytest.fixture(scope="module")
def litert_torch():
    """litert-torch, imported once; importing it takes several seconds (TensorFlow-sized runtime)."""
    with warnings.catch_warnings():
        # torchao, imported by litert-torch, registers an Enum pytree constant in a deprecated way.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.utils._pytree")
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.utils._pytree")
        return pytest.importorskip("litert_torch")


def _convert_tflite(litert_torch, model: nn.Module, example: torch.Tensor) -> bytes:
    with warnings.catch_warnings():
        # torch.export's pytree pickling in litert-torch's passes uses a deprecated isinstance check.
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        # nn.LSTM's flat weight list is rebuilt while torch.export traces it; the values are the
        # parameters themselves, so the exported constants are right (the logits are compared below).
        warnings.filterwarnings(
            "ignore", message=r"The tensor attributes self\.backbone\.lstm\._flat_weights", category=UserWarning
        )
        edge = litert_torch.convert(model.eval(), (example,))
    return edge.model_content()


@pytest.mark.parametrize(
    "name, options, shape",
    [
        ("cnn", {}, (1, 64, 129)),
        # 33 frames = 8 steps. litert-torch unrolls nn.LSTM into per-step ops: 2 bidirectional layers
        # take ~14 s to convert over 32 steps, ~5 s over 8; the ops and their wiring are the same.
        ("lstm", {"layers": 2, "bidirectional": True}, (28, 33)),
        ("transformer", {"pooling": "cls", "positions": "learned"}, (28, 129)),
    ],
)
def test_tflite_fp32_conversion_matches_pytorch(litert_torch, name: str, options: dict, shape: tuple) -> None:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    model = build_model(name, 6, shape[-2:], options)
    if name == "cnn":
        _realistic(model, torch.randn(16, *shape))
    model.eval()
    example = torch.randn(1, *shape)
    start = time.perf_counter()
    data = _convert_tflite(litert_torch, model, example)
    seconds = time.perf_counter() - start
    print(f"litert-torch fp32 conversion of {name} {options}: {seconds:.1f} s, {len(data) / 1024:.0f} KB")
    interpreter = interpreter_mod.Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    assert tuple(inp["shape"]) == (1, *shape) and inp["dtype"] == np.float32
    for _ in range(3):
        x = torch.randn(1, *shape)
        interpreter.set_tensor(inp["index"], x.numpy())
        interpreter.invoke()
        with torch.no_grad():
            expected = model(x).numpy()
        assert np.abs(expected).max() > 0.05
        np.testing.assert_allclose(interpreter.get_tensor(out["index"]), expected, rtol=0, atol=EXPORT_ATOL)


@pytest.mark.parametrize("options, match", [({"members": 1}, "at least 2"), ({"members": True}, "at least 2"),
                                             ({"member": {"widht": 1}}, "invalid member"), ({"member": [1]}, "mapping")])  # fmt: skip
def test_bad_ensemble_options_are_refused(options, match) -> None:
    with pytest.raises(ParameterError, match=match):
        build_model("cnn_ensemble", 2, (40, 65), options)
