"""``harmonies train --model probe``: logistic regression on a backbone's clip or window embeddings, exported as a CNN.

A backbone is made once per module from a tiny CNN trained for 1 epoch (3 classes x 5
synthetic clips of 3 s, 1 s windows, 32 mels). Oracles: the folded head gives the probe's
own logits (float32 rounding of a 32-term dot product: 1e-4); the exported fp32 bundle
classifies the test clips with the probe's clip probabilities (1e-4: PyTorch vs runtime
float rounding, as export's own fp32 check) and so the same labels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pyharmonies.cli import cli

from _tiny_backbone import train_tiny_backbone


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from pyharmonies.data.synth import synth_corpus

    base = tmp_path_factory.mktemp("probe")
    corpus = base / "synth"
    synth_corpus(corpus, classes=3, clips_per_class=5, seconds=3.0, seed=7, progress=False, jobs=1)
    _, backbone = train_tiny_backbone(base, corpus)
    return {"corpus": corpus, "backbone": backbone, "cache": base / "cache", "base": base}


@pytest.fixture(scope="module")
def probe_run(made):
    out = made["base"] / "probe"
    code, stdout, stderr = invoke("train", made["corpus"], "--model", "probe", "--backbone", made["backbone"], "--out", out,
                                  "--cache", made["cache"], "-q")  # fmt: skip
    assert code == 0, stderr
    return out, stdout


def test_probe_reports_like_the_other_models(probe_run):
    out, stdout = probe_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["name"] == "probe" and metrics["model"]["C"] in (0.01, 0.1, 1.0, 10.0)
    chosen = metrics["model"]["validation_macro_f1"]  # both ways of fitting were scored on validation; the better one kept
    assert set(chosen) == {"clips", "windows"} and chosen[metrics["model"]["fit_on"]] == max(chosen.values())
    assert set(metrics["splits"]) == {"train", "val", "test"}
    for split in metrics["splits"].values():
        assert {"window", "clip"} <= set(split) and 0 <= split["clip"]["accuracy"] <= 1
    assert set(metrics["baseline"]["splits"]) == {"train", "val", "test"}  # the SVM on the same split
    assert metrics["clips"]["test"] == metrics["splits"]["test"]["clip"]["n"]
    assert "SVM baseline, same split" in stdout and "clip accuracy" in stdout
    report = (out / "report.md").read_text()
    assert "linear probe" in report and "bb.npz" in report and (out / "confusion.png").is_file()
    assert f"{metrics['model']['fit_on']} {chosen[metrics['model']['fit_on']]:.3f}" in report
    with np.load(out / "probe.npz", allow_pickle=False) as z:  # arrays only
        assert z["weight"].shape == (3, 32) and z["bias"].shape == (3,) and z["mean"].shape == (32,)


def test_best_pt_is_a_cnn_whose_head_is_the_folded_probe(made, probe_run, rng):
    from pyharmonies.training import checkpoint
    from pyharmonies.training.loop import model_from_meta
    from pyharmonies.training.probe import LinearProbe

    out, _ = probe_run
    ck = checkpoint.load(out / checkpoint.BEST)
    assert ck["meta"]["model_name"] == "cnn" and ck["meta"]["backbone"]["path"] == str(made["backbone"])
    net = model_from_meta(ck["meta"])
    net.load_state_dict(ck["model"])
    with np.load(out / "probe.npz", allow_pickle=False) as z:
        probe = LinearProbe(z["mean"], z["scale"], z["weight"], z["bias"], float(z["C"]))
    x = torch.from_numpy(rng.normal(0.0, 1.0, (6, 1, 32, 43)).astype(np.float32))
    with torch.no_grad():
        emb = net.eval().backbone(x)
        logits = net(x).numpy()
    np.testing.assert_allclose(logits, probe.logits(emb.numpy()), atol=1e-4)


def test_the_exported_bundle_classifies_test_clips_as_the_probe_does(made, probe_run):
    from pyharmonies.data.cache import FeatureCache
    from pyharmonies.data.splits import load_splits
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.export import export_run
    from pyharmonies.features import FeatureConfig
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.files import classify_file
    from pyharmonies.training.backbone import load_backbone
    from pyharmonies.training.embedding import embed_features
    from pyharmonies.training.probe import LinearProbe, clip_probs

    out, _ = probe_run
    bundle = export_run(out, made["base"] / "bundle", formats="onnx", int8=True, allow_drop=True, calibration=16,
                        progress=False, latency_runs=1)  # fmt: skip
    clips = open_dataset(made["corpus"]).clips
    test = [clips[i] for i in load_splits(out / "splits.json", clips)["test"]]
    bb = load_backbone(made["backbone"])
    fcfg = FeatureConfig.from_dict(bb.meta["feature_config"])
    cache = FeatureCache(made["cache"], fcfg)
    clf = WindowClassifier.open(bundle, backend="onnx", precision="fp32")
    emb = embed_features(bb.model(3), [cache.clip_features(c, "log_mel") for c in test], bb.window_frames, bb.normalizer,
                         fcfg, hop=clf.hop_frames)  # fmt: skip
    with np.load(out / "probe.npz", allow_pickle=False) as z:
        probe = LinearProbe(z["mean"], z["scale"], z["weight"], z["bias"], float(z["C"]))
    expected = clip_probs(probe, emb.windows, emb.window_clip, np.arange(len(test)))
    got = np.stack([classify_file(clf, c.path).probs for c in test])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()
    metrics = json.loads((out / "metrics.json").read_text())
    labels = json.loads((bundle / "manifest.json").read_text())["labels"]
    truth = np.asarray([labels.index(c.label) for c in test])
    assert np.mean(got.argmax(1) == truth) == pytest.approx(metrics["splits"]["test"]["clip"]["accuracy"])
    int8 = WindowClassifier.open(bundle, backend="onnx", precision="int8")
    agree = np.mean([classify_file(int8, c.path).label == labels[i] for c, i in zip(test, expected.argmax(1))])
    assert agree >= 2 / 3  # int8 on a 1-epoch backbone: most clips, not necessarily all (the export report has the figure)


def test_probe_folds(made, tmp_path):
    out = tmp_path / "folds"
    code, stdout, stderr = invoke("train", made["corpus"], "--model", "probe", "--backbone", made["backbone"], "--folds", 3,
                                  "--out", out, "--cache", made["cache"], "-q")  # fmt: skip
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["folds"] == 3 and summary["model"] == "probe"
    assert len(summary["test"]["clip"]["accuracy"]["values"]) == 3 and "baseline" in summary
    assert all((out / f"fold-{k}" / "best.pt").is_file() for k in range(3))
    assert "3 folds: test clip accuracy" in stdout and "SVM baseline, same folds" in stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from-scratch"], "--from-scratch: not used by --model probe"),
        (["--epochs", "3"], "--epochs: not used by --model probe"),
        (["--window", "2"], "--window: not used by --model probe"),
    ],
)
def test_options_the_probe_does_not_use_are_refused(made, tmp_path, args, message):
    code, _, err = invoke("train", made["corpus"], "--model", "probe", "--backbone", made["backbone"], *args, "--out", tmp_path / "x")
    assert code != 0 and message in err


def test_probe_needs_a_backbone_that_fits(made, tmp_path, monkeypatch):
    from pyharmonies.training import backbone

    monkeypatch.setattr(backbone, "shipped_backbone_path", lambda: tmp_path / "none.npz")
    code, _, err = invoke("train", made["corpus"], "--model", "probe", "--out", tmp_path / "a", "--cache", made["cache"])
    assert code != 0 and "no shipped backbone" in err and "--backbone PATH" in err
    config = tmp_path / "features.json"
    config.write_text(json.dumps({"n_mels": 40}))
    code, _, err = invoke("train", made["corpus"], "--model", "probe", "--backbone", made["backbone"], "--feature-config", config,
                          "--out", tmp_path / "b", "--cache", made["cache"])  # fmt: skip
    assert code != 0 and "differs from the backbone's" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("n_labels", [2, 3])
def test_the_arrays_predict_as_scikit_learn_does(rng, n_labels):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pyharmonies.training.probe import fit_probe

    y = np.repeat(np.arange(n_labels), 20)
    x = rng.normal(0.0, 1.0, (len(y), 8)) * rng.uniform(0.1, 5.0, 8) + y[:, None] * 0.7 + 3.0
    probe = fit_probe(x, y, n_labels, seed=0)  # C = 1 without a validation score
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, random_state=0)).fit(x, y)
    z = probe.logits(x)
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, ref.predict_proba(x), atol=1e-9)  # the same arithmetic, reordered: float64 rounding
    w, b = probe.folded()
    np.testing.assert_allclose(x @ w.T + b, z, atol=1e-9)


def test_the_int8_tflite_probe_adds_its_bias_in_float(made, probe_run):
    """litert-torch mis-scales a fully connected layer's bias; the probe's large folded bias goes after the int8 product."""
    from pyharmonies.export import export_run
    from pyharmonies.export.tflite_export import _head_bias_as_add

    out, _ = probe_run
    bundle = export_run(out, made["base"] / "bundle-tflite", formats="tflite", int8=True, allow_drop=True, calibration=16,
                        progress=False, latency_runs=1)  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["files"]["model.int8.tflite"]
    assert "bias added in float" in entry["quantization"] and entry["output"]["dtype"] == "float32"
    assert entry["input"]["dtype"] == "int8"
    rows = {r["file"]: r for r in manifest["verification"]["rows"]}
    assert rows["model.int8.tflite"]["agreement"] >= 2 / 3  # as the ONNX int8 test above: a 1-epoch backbone (measured 0.92)
    # The split copy computes what the head does, in float.
    import torch

    from pyharmonies.training import checkpoint
    from pyharmonies.training.loop import model_from_meta

    ck = checkpoint.load(out / checkpoint.BEST)
    net = model_from_meta(ck["meta"]).eval()
    net.load_state_dict(ck["model"])
    x = torch.randn(3, net.feature_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(_head_bias_as_add(net).head(x), net.head(x), rtol=0, atol=1e-5)
