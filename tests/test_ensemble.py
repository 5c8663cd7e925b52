"""``harmonies ensemble``: CNN runs averaged into one run that evaluates, exports and classifies
like any other; members that cannot be averaged honestly are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _tiny_runs import small_cnn_config as _cfg
from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.ensemble import ensemble_folds, ensemble_run
from pyharmonies.training.evaluate import evaluate_run
from pyharmonies.training.loop import model_from_meta, train_folds, train_run


@pytest.fixture(scope="module")
def corpus(three_class_corpus) -> Path:
    return three_class_corpus


@pytest.fixture(scope="module")
def members(corpus, tmp_path_factory) -> list[Path]:
    """Two CNN runs on the same split with other random streams (mixup drawn differently)."""
    root = tmp_path_factory.mktemp("members")
    return [train_run(_cfg(corpus, root / "a"), progress=False), train_run(_cfg(corpus, root / "b", mixup=0.6), progress=False)]


@pytest.fixture(scope="module")
def averaged(members, tmp_path_factory) -> Path:
    return ensemble_run(members, tmp_path_factory.mktemp("ens") / "ab")


def test_the_ensembles_logits_are_the_mean_of_its_members(members, averaged):
    ens_ck = checkpoint.load(averaged / checkpoint.BEST)
    ensemble = model_from_meta(ens_ck["meta"])
    checkpoint.load_weights(ensemble, ens_ck["model"], averaged / checkpoint.BEST)
    nets = []
    for run in members:
        ck = checkpoint.load(run / checkpoint.BEST)
        net = model_from_meta(ck["meta"])
        checkpoint.load_weights(net, ck["model"], run / checkpoint.BEST)
        nets.append(net.eval())
    x = torch.randn(4, *ensemble.example_input(1).shape[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = (nets[0](x) + nets[1](x)) / 2
        torch.testing.assert_close(ensemble.eval()(x), expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(nets[0](x), nets[1](x), atol=1e-3)  # two different members


def test_the_ensemble_run_reports_itself_beside_its_members_and_reevaluates(members, averaged, corpus):
    metrics = json.loads((averaged / "metrics.json").read_text())
    assert set(metrics["members"]) == {str(m) for m in members}
    assert metrics["baseline"]["model"] == "svm"
    report = (averaged / "report.md").read_text()
    assert "the ensemble" in report and "SVM" in report
    again = evaluate_run(averaged, corpus, progress=False, out=averaged / "eval")
    assert again["clip"]["accuracy"] == pytest.approx(metrics["splits"]["test"]["clip"]["accuracy"])


def test_the_ensemble_exports_as_one_verified_int8_bundle(averaged, tmp_path, corpus):
    from pyharmonies.export import export_run
    from pyharmonies.runtime.bundle import load_bundle

    bundle = export_run(averaged, tmp_path / "bundle", int8=True, calibration=32, allow_drop=True, progress=False, latency_runs=1)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["name"] == "cnn_ensemble"
    assert {"model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite", "model.int8.tflite"} <= set(manifest["files"])
    load_bundle(bundle)  # the device side's checks pass
    result = CliRunner().invoke(cli, ["classify", str(bundle), str(next(corpus.rglob("*.wav")))])
    assert result.exit_code == 0, result.output
    # It embeds as well: every member's pooled features side by side, on the device as in PyTorch.
    from pyharmonies.training import checkpoint
    from pyharmonies.training.loop import model_from_meta

    net = model_from_meta(checkpoint.load(averaged / checkpoint.BEST)["meta"])
    dim = len(net.members) * net.members[0].feature_dim
    assert manifest["embedding"]["dim"] == dim and len(manifest["embedding"]["files"]) == 4
    rows = {row["file"]: row for row in manifest["embedding"]["verification"]["rows"]}
    assert rows["embedding.fp32.tflite"]["min_cosine"] > 0.9999 and rows["embedding.int8.tflite"]["mean_cosine"] > 0.95
    from pyharmonies.training.embed import open_embedder

    assert open_embedder(averaged).dim == open_embedder(bundle).dim == dim


def test_members_on_other_splits_are_refused(members, corpus, tmp_path):
    other = train_run(_cfg(corpus, tmp_path / "seed1", seed=1), progress=False)
    with pytest.raises(ParameterError, match="splits differ"):
        ensemble_run([members[0], other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_runs_holding_out_other_validation_tracks_need_one_normaliser(members, corpus, tmp_path):
    other_val = train_run(_cfg(corpus, tmp_path / "v1", val_seed=1), progress=False)
    with pytest.raises(ParameterError, match="normalisation differs.*--normalize-over train\\+val"):
        ensemble_run([members[0], other_val], tmp_path / "bad")
    shared = [train_run(_cfg(corpus, tmp_path / f"s{v}", val_seed=v, normalize_over="train+val"), progress=False)
              for v in (1, 2)]  # fmt: skip
    vals = [set(json.loads((r / "splits.json").read_text())["splits"]["val"]) for r in shared]
    assert vals[0] != vals[1]
    out = ensemble_run(shared, tmp_path / "both")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["own_validation"] is True and list(metrics["splits"]) == ["test"]
    assert json.loads((out / "splits.json").read_text())["splits"]["val"] == []
    again = evaluate_run(out, corpus, progress=False, out=out / "eval")
    assert again["clip"]["accuracy"] == pytest.approx(metrics["splits"]["test"]["clip"]["accuracy"])


def test_a_non_cnn_member_and_a_lone_run_are_refused(members, corpus, tmp_path):
    lstm = train_run(_cfg(corpus, tmp_path / "lstm", model="lstm", model_options={}), progress=False)
    with pytest.raises(ParameterError, match="lstm run"):
        ensemble_run([members[0], lstm], tmp_path / "bad")
    with pytest.raises(ParameterError, match="at least two"):
        ensemble_run([members[0]], tmp_path / "bad")


def test_folds_are_averaged_fold_by_fold_from_the_command_line(corpus, tmp_path):
    runs = [train_folds(_cfg(corpus, tmp_path / name, folds=2, **kw), progress=False)
            for name, kw in (("a", {}), ("b", {"average_weights": 0.9}))]  # fmt: skip
    result = CliRunner().invoke(cli, ["ensemble", *map(str, runs), "--out", str(tmp_path / "ab"), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "ab" / "metrics.json").read_text())
    assert summary["folds"] == 2 and summary["model"] == "cnn_ensemble"
    assert "versus_baseline" in summary
    per_fold = [json.loads((tmp_path / "ab" / f"fold-{k}" / "metrics.json").read_text()) for k in range(2)]
    assert [f["splits"]["test"]["clip"]["accuracy"] for f in per_fold] == [r["test_clip_accuracy"] for r in summary["per_fold"]]
    assert np.isfinite(summary["test_clip_accuracy_mean"])
    assert "an ensemble of 2 cnn runs" in (tmp_path / "ab" / "report.md").read_text()


def test_ensemble_folds_refuses_runs_with_other_folds(corpus, tmp_path):
    a = train_folds(_cfg(corpus, tmp_path / "a", folds=2), progress=False)
    b = train_folds(_cfg(corpus, tmp_path / "b", folds=2, seed=1), progress=False)
    with pytest.raises(ParameterError, match="splits differ"):
        ensemble_folds([a, b], tmp_path / "ab")
    assert not (tmp_path / "ab").exists()
