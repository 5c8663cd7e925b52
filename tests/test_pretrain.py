"""Self-supervised pretraining, backbone files, and training that starts from a backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.data.synth import synth_corpus
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.models.cnn import MobileNetV2
from pyharmonies.models.registry import model_config
from pyharmonies.training import checkpoint
from pyharmonies.training.backbone import load_backbone, resolve_backbone, save_backbone, shipped_backbone_path
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.embedding import knn_accuracy
from pyharmonies.training.loop import train_folds, train_run
from pyharmonies.training.pretrain import PretrainConfig, nt_xent, pretrain_run

#: A tiny MobileNetV2 (conftest's SMALL_CNN) on 32 mels: pretraining and fine-tuning in seconds.
SMALL_CNN = {"blocks": ((1, 8, 1, 1), (2, 16, 1, 2)), "last_channels": 32}
FEATURES = {"n_mels": 32}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain") / "synth"
    synth_corpus(root, classes=3, clips_per_class=4, seconds=3.0, seed=11, progress=False, jobs=1)
    return root


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("backbone") / "run"
    cfg = PretrainConfig(audio=[str(corpus)], out=str(out), epochs=2, batch_size=6, window=1.0, steps_per_epoch=3,
                         model_options=SMALL_CNN, features=FEATURES, cache=str(out.parent / "cache"), probe=str(corpus),
                         probe_every=1)  # fmt: skip
    return pretrain_run(cfg, progress=False)


def test_nt_xent_is_low_for_matching_pairs_and_high_for_shuffled_ones():
    torch.manual_seed(0)
    a = torch.randn(16, 8)
    matched = nt_xent(a, a + 0.01 * torch.randn(16, 8), 0.2)
    shuffled = nt_xent(a, a[torch.randperm(16)], 0.2)
    assert float(matched) < 0.5 < np.log(31) - 1 < float(shuffled)  # chance: log(2B - 1)


def test_pretraining_writes_a_backbone_report_and_a_probe_curve(pretrained):
    history = json.loads((pretrained / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]  # epoch 0: the untrained network's probe
    assert all(np.isfinite(h["loss"]) for h in history[1:]) and all(0 <= h["knn_accuracy"] <= 1 for h in history)
    assert {"report.md", "pretrain.png", "backbone.npz", "last.pt", "config.json"} <= {p.name for p in pretrained.iterdir()}
    found = load_backbone(pretrained)
    assert found.meta["pretraining"]["epochs"] == 2 and found.meta["pretraining"]["recordings"] == 12
    assert found.feature_config == FeatureConfig(**FEATURES) and found.window_frames > 0
    assert all(k.startswith("backbone.") for k in found.state)
    assert "k-NN clip accuracy" in (pretrained / "report.md").read_text()


def test_a_resumed_pretraining_continues_where_it_stopped(corpus, tmp_path):
    base = dict(audio=[str(corpus)], out=str(tmp_path / "run"), batch_size=6, window=1.0, steps_per_epoch=2,
                model_options=SMALL_CNN, features=FEATURES, cache=str(tmp_path / "cache"))  # fmt: skip
    torch.set_num_threads(1)
    whole = pretrain_run(PretrainConfig(**{**base, "out": str(tmp_path / "whole"), "epochs": 3}), progress=False)
    pretrain_run(PretrainConfig(**base, epochs=3, minutes=1e-6), progress=False)  # stops after one epoch
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1
    with pytest.raises(ParameterError, match="already holds"):
        pretrain_run(PretrainConfig(**base, epochs=3), progress=False)
    resumed = pretrain_run(PretrainConfig(**base, epochs=3), progress=False, resume=True)
    a, b = load_backbone(whole).state, load_backbone(resumed).state
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # the same weights as the uninterrupted run


def test_backbone_files_are_checked_not_trusted(tmp_path, pretrained):
    with pytest.raises(ParameterError, match="no backbone there"):
        load_backbone(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a readable backbone"):
        load_backbone(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(ParameterError, match="not a harmonies backbone"):
        load_backbone(tmp_path / "plain.npz")
    objects = tmp_path / "objects.npz"
    np.savez(objects, __meta__=np.asarray("{}"), **{"backbone.0": np.asarray([{"a": 1}], dtype=object)})
    with pytest.raises(ParameterError):
        load_backbone(objects)  # object arrays would need unpickling: refused
    net = MobileNetV2(2, (32, 44), model_config("cnn", SMALL_CNN))
    with pytest.raises(ParameterError, match="lacks"):
        save_backbone(tmp_path / "b.npz", net, {"model_config": {}})


def test_training_starts_from_a_backbone_and_records_it(corpus, pretrained, tmp_path):
    cfg = TrainConfig(data=str(corpus), out=str(tmp_path / "run"), cache=str(tmp_path / "cache"), window=1.0, epochs=1,
                      features=FEATURES, model_options=SMALL_CNN, backbone=str(pretrained), batch_size=8)  # fmt: skip
    run = train_run(cfg, progress=False)
    # The starting weights are the backbone's: check them against a 0-epoch comparison of one tensor's
    # distance (one epoch of fine-tuning moves weights far less than they differ from a fresh init).
    found = load_backbone(pretrained)
    tuned = checkpoint.load(run / checkpoint.BEST)
    key = "backbone.0.0.weight"
    fresh = MobileNetV2(3, (32, 44), model_config("cnn", SMALL_CNN)).state_dict()[key]
    assert float((tuned["model"][key] - found.state[key]).norm()) < 0.5 * float((fresh - found.state[key]).norm())
    assert tuned["meta"]["backbone"]["sha256"] == found.sha256
    assert tuned["meta"]["normalizer"] == found.meta["normalizer"]
    assert "Started from the backbone" in (run / "report.md").read_text()


def test_a_backbone_that_does_not_fit_is_refused_with_what_to_do(corpus, pretrained, tmp_path):
    cfg = dict(data=str(corpus), cache=str(tmp_path / "cache"), window=1.0, epochs=1, batch_size=8, model_options=SMALL_CNN,
               members=1)
    with pytest.raises(ParameterError, match="other features.*n_mels 32 vs 40.*harmonies pretrain"):
        train_run(TrainConfig(**cfg, out=str(tmp_path / "a"), features={"n_mels": 40}, backbone=str(pretrained)), progress=False)
    with pytest.raises(ParameterError, match="another shape.*last_channels 32 vs 48"):
        train_run(TrainConfig(**{**cfg, "model_options": {**SMALL_CNN, "last_channels": 48}}, out=str(tmp_path / "b"),
                              features=FEATURES, backbone=str(pretrained)), progress=False)  # fmt: skip
    with pytest.raises(ParameterError, match="the shipped backbone does not fit.*other features"):
        train_run(TrainConfig(**cfg, out=str(tmp_path / "c"), features=FEATURES, backbone="shipped"), progress=False)
    run = train_run(TrainConfig(**cfg, out=str(tmp_path / "d"), features=FEATURES), progress=False)  # the default
    assert "from scratch" in (run / "report.md").read_text()


def test_fold_runs_fill_in_their_own_backbone(corpus, pretrained, tmp_path):
    for k in range(2):
        (tmp_path / f"bb{k}").mkdir()
        (tmp_path / f"bb{k}" / "backbone.npz").write_bytes((pretrained / "backbone.npz").read_bytes())
    cfg = TrainConfig(data=str(corpus), out=str(tmp_path / "folds"), cache=str(tmp_path / "cache"), window=1.0, epochs=1,
                      batch_size=8, features=FEATURES, model_options=SMALL_CNN, folds=2,
                      backbone=str(tmp_path / "bb{fold}"))  # fmt: skip
    train_folds(cfg, progress=False)
    for k in range(2):
        meta = checkpoint.load(tmp_path / "folds" / f"fold-{k}" / checkpoint.BEST)["meta"]
        assert meta["backbone"]["path"] == str(tmp_path / f"bb{k}" / "backbone.npz")
    with pytest.raises(ParameterError, match="only filled in by --folds"):
        resolve_backbone(str(tmp_path / "bb{fold}"))


def test_pretraining_can_leave_out_a_folds_test_tracks(corpus, tmp_path):
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.data.splits import save_splits, split_groups
    from pyharmonies.data.unlabelled import open_unlabelled

    (tmp_path / "ds").mkdir()
    # A manifest, whose track ids the exclusion reads.
    rows = ["path,label,track_id"] + [f"{c.path},{c.label},{c.track}" for c in open_dataset(corpus).clips]
    (tmp_path / "ds" / "m.csv").write_text("\n".join(rows) + "\n")
    clips = open_dataset(tmp_path / "ds" / "m.csv").clips
    splits = split_groups(clips, seed=0, val=0.25, test=0.25)
    save_splits(tmp_path / "splits.json", splits, clips, group_by="track", seed=0)
    audio = open_unlabelled([tmp_path / "ds" / "m.csv"], exclude=tmp_path / "splits.json")
    test_paths = {clips[i].path for i in splits["test"]}
    assert audio.excluded_tracks == len({clips[i].track for i in splits["test"]}) > 0
    assert not test_paths & {c.path for c in audio.clips} and len(audio.clips) == len(clips) - len(test_paths)
    with pytest.raises(ParameterError, match="needs a dataset source"):
        open_unlabelled([next(corpus.rglob("*.wav"))], exclude=tmp_path / "splits.json")


def test_knn_accuracy_ignores_a_clips_own_track():
    emb = np.asarray([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], dtype=np.float32)
    # Clips 0 and 1 are one track: without the exclusion each would find its twin.
    assert knn_accuracy(emb, ["a", "a", "b", "b"], ["t0", "t0", "t1", "t2"], k=1) == 0.5
    assert knn_accuracy(emb, ["a", "a", "b", "b"], ["t0", "t1", "t2", "t3"], k=1) == 1.0


def test_the_pretrain_command_explains_and_refuses_bad_options(corpus, tmp_path):
    result = CliRunner().invoke(cli, ["pretrain", "--help"])
    assert result.exit_code == 0 and "NT-Xent" in result.output and "--exclude" in result.output
    result = CliRunner().invoke(cli, ["pretrain", str(corpus), "--out", str(tmp_path / "x"), "--model-options", '{"wdth": 1}'])
    assert result.exit_code != 0 and "wdth" in result.output
    result = CliRunner().invoke(cli, ["train", str(corpus), "--model", "lstm", "--from-scratch"])
    assert result.exit_code != 0 and "only the cnn" in result.output
    result = CliRunner().invoke(cli, ["train", str(corpus), "--backbone", "shipped", "--from-scratch"])
    assert result.exit_code != 0 and "contradict" in result.output


def test_the_shipped_backbone_loads_and_fits_the_default_cnn(corpus, tmp_path):
    found = load_backbone(shipped_backbone_path())
    assert shipped_backbone_path().stat().st_size <= 1_000_000
    assert found.mismatch(FeatureConfig(), {}) is None
    assert found.meta["pretraining"]["hours"] > 5 and found.meta["pretraining"]["recordings"] >= 100
    net = found.model(n_classes=4)
    assert net(torch.zeros(2, 1, 64, 129)).shape == (2, 4)
    run = train_run(TrainConfig(data=str(corpus), out=str(tmp_path / "run"), cache=str(tmp_path / "cache"), epochs=1,
                                batch_size=8, backbone="shipped"), progress=False)  # fmt: skip
    assert checkpoint.load(run / checkpoint.BEST)["meta"]["backbone"]["shipped"] is True
    assert "Started from the shipped backbone" in (run / "report.md").read_text()


def test_pretraining_under_torchrun_saves_once(corpus, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29523",
           "-m", "pyharmonies.cli", "pretrain", str(corpus), "--epochs", "1", "--batch-size", "4", "--window", "1",
           "--steps-per-epoch", "2", "--model-options", json.dumps(SMALL_CNN), "--device", "cpu",
           "--cache", str(tmp_path / "cache"), "--out", str(out), "--quiet"]  # fmt: skip
    features = tmp_path / "features.json"
    features.write_text(json.dumps(FEATURES))
    cmd[cmd.index("--device"):cmd.index("--device")] = ["--feature-config", str(features)]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("backbone:") == 1  # one summary, from rank 0
    info = load_backbone(out).meta["pretraining"]
    assert info["world_size"] == 2 and info["epochs"] == 1


def test_head_epochs_hold_the_backbone_still_then_join_the_schedule():
    from pyharmonies.training.loop import delayed, lr_lambda

    base = lr_lambda(100, 10)
    held = delayed(base, 20, 5)
    assert [held(s) for s in (0, 10, 19)] == [0.0, 0.0, 0.0]
    assert held(20) == pytest.approx(base(20) / 5) and held(24) == pytest.approx(base(24)) and held(60) == base(60)
    with pytest.raises(ParameterError, match="head_epochs"):
        TrainConfig(data="d", epochs=3, head_epochs=4)


def test_during_head_epochs_only_the_head_learns(corpus, pretrained, tmp_path):
    cfg = TrainConfig(data=str(corpus), out=str(tmp_path / "run"), cache=str(tmp_path / "cache"), window=1.0, epochs=2,
                      head_epochs=2, features=FEATURES, model_options=SMALL_CNN, backbone=str(pretrained),
                      batch_size=8, augment=False)  # fmt: skip
    run = train_run(cfg, progress=False)
    tuned, found = checkpoint.load(run / checkpoint.LAST)["model"], load_backbone(pretrained)
    # Weights of the backbone: untouched by the optimiser (BatchNorm's running statistics still follow the data).
    learnt = [k for k in found.state if k.endswith("weight") or k.endswith("bias")]
    assert learnt and all(torch.equal(tuned[k], found.state[k]) for k in learnt)
    assert not torch.equal(tuned["head.weight"], torch.zeros_like(tuned["head.weight"]))
