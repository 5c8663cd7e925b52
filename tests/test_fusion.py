"""``train --fuse-svm``: the SVM's calibrated answer fused with the CNN's, from training to the device."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pyharmonies.errors import BundleError, ParameterError
from pyharmonies.runtime.svm import (
    CalibratedSvm,
    FrameStatistics,
    SegmentStatistics,
    calibrated_arrays,
    clip_statistics,
    fuse_probabilities,
    read_calibrated,
)

WEIGHT = 0.3


def _blobs(rng: np.random.Generator, classes: int, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 6) features drifting with the class, labels, and groups of five clips."""
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, 6)) + 0.7 * y[:, None]
    return x, y, np.asarray([f"track-{i // 5}" for i in range(n)])


# -- the SVM's probabilities on the device equal scikit-learn's --------------------------------


@pytest.mark.parametrize("classes", [2, 4])
def test_calibrated_svm_equals_scikit_learn(rng, classes):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold
    from sklearn.svm import SVC

    from pyharmonies.training.svm import fit_calibrated_svm, fit_svm

    x, y, groups = _blobs(rng, classes)
    labels = [f"label-{i}" for i in range(classes + 1)]  # one label the SVM never sees: a floor probability
    model = fit_calibrated_svm(x[:150], y[:150], groups[:150], x[150:175], y[150:175], labels, seed=0)
    base, c = fit_svm(x[:150], y[:150], x[150:175], y[150:175], labels, seed=0)
    z = (x - base.mean) / base.scale
    split = list(GroupKFold(5).split(z[:150], y[:150], groups[:150]))
    svc = SVC(C=c, kernel="rbf", gamma=base.gamma, class_weight="balanced")
    reference = CalibratedClassifierCV(svc, method="sigmoid", cv=split, ensemble=False).fit(z[:150], y[:150])

    ours = model.probabilities(x[175:])
    assert ours.shape == (25, classes + 1)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)
    assert (ours[:, classes] < 1e-9).all()
    np.testing.assert_allclose(ours[:, :classes], reference.predict_proba(z[175:]), atol=1e-9)
    inner = reference.calibrated_classifiers_[0].estimator
    np.testing.assert_allclose(model.svm.decision_values(x[175:]), inner.decision_function(z[175:]), atol=1e-9)
    np.testing.assert_array_equal(model.svm.predict(x[175:]), inner.predict(z[175:]))


def test_calibration_needs_two_tracks(rng):
    from pyharmonies.training.svm import fit_calibrated_svm

    x, y, _ = _blobs(rng, 3, n=30)
    with pytest.raises(ParameterError, match="two classes and two tracks"):
        fit_calibrated_svm(x, y, ["one track"] * 30, None, None, ["a", "b", "c"], seed=0)


def _calibrated(rng) -> CalibratedSvm:
    from pyharmonies.training.svm import fit_calibrated_svm

    x, y, groups = _blobs(rng, 3)
    return fit_calibrated_svm(x, y, groups, None, None, ["a", "b", "c"], seed=0)


def test_calibrated_file_round_trip_and_refusals(rng, tmp_path):
    model = _calibrated(rng)
    path = tmp_path / "svm.npz"
    np.savez(path, **calibrated_arrays(model))
    x = rng.normal(size=(7, 6))
    np.testing.assert_allclose(read_calibrated(path).probabilities(x), model.probabilities(x), atol=2e-3)  # float16 support vectors: 3e-4 at most over 5 seeds

    arrays = calibrated_arrays(model)
    arrays["slope"] = np.asarray([object()] * 3, dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ParameterError, match="pickled objects"):
        read_calibrated(tmp_path / "pickled.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:300])
    with pytest.raises(ParameterError, match="cut.npz"):
        read_calibrated(tmp_path / "cut.npz")
    arrays = calibrated_arrays(model)
    arrays["offset"] = arrays["offset"][:2]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(ParameterError, match="short.npz.*calibration"):
        read_calibrated(tmp_path / "short.npz")


def test_frame_statistics_equal_clip_statistics_in_any_blocks(rng):
    frames = rng.normal(loc=3.0, size=(28, 431))
    stats = FrameStatistics(28)
    for lo in range(0, 431, 37):
        stats.push(frames[:, lo : lo + 37])
    np.testing.assert_allclose(stats.vector(), clip_statistics([frames])[0], rtol=1e-9, atol=1e-9)
    with pytest.raises(ParameterError, match="no frames"):
        FrameStatistics(28).vector()


@pytest.mark.parametrize(
    ("frames", "cuts"),
    [
        (1000, [0, 300, 600, 1000]),  # a last piece under half a segment joins the one before
        (1050, [0, 300, 600, 900, 1050]),  # half a segment or more is a segment of its own
        (301, [0, 301]),  # one clip's length and a frame more: one segment, as the clip was fitted
        (200, [0, 200]),  # shorter than a segment: one segment
    ],
)
def test_segment_statistics_read_a_long_file_as_clips(rng, frames, cuts):
    x = rng.normal(loc=2.0, size=(28, frames)) * np.linspace(0.5, 3.0, frames)  # spread changing along the file
    whole, blocks = SegmentStatistics(28, 300), SegmentStatistics(28, 300)
    whole.push(x)
    for lo in range(0, frames, 37):
        blocks.push(x[:, lo : lo + 37])
    expected = clip_statistics([x[:, a:b] for a, b in zip(cuts, cuts[1:])])
    np.testing.assert_allclose(whole.vectors(), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(blocks.vectors(), expected, rtol=1e-9, atol=1e-9)


def test_segment_statistics_refusals():
    with pytest.raises(ParameterError, match="segment_frames"):
        SegmentStatistics(28, 0)
    with pytest.raises(ParameterError, match="no frames"):
        SegmentStatistics(28, 10).vectors()
    with pytest.raises(ParameterError, match=r"\(28, frames\)"):
        SegmentStatistics(28, 10).push(np.zeros((27, 5)))


def test_fusion_weights():
    cnn = np.asarray([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    svm = np.asarray([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(fuse_probabilities(cnn, svm, 0.0), cnn)
    np.testing.assert_allclose(fuse_probabilities(cnn, svm, 1.0), svm)
    fused = fuse_probabilities(cnn, svm, WEIGHT)
    expected = cnn**0.7 * svm**0.3
    np.testing.assert_allclose(fused, expected / expected.sum(axis=1, keepdims=True))
    with pytest.raises(ParameterError, match="between 0 and 1"):
        fuse_probabilities(cnn, svm, 1.5)
    with pytest.raises(ParameterError, match="shapes"):
        fuse_probabilities(cnn, svm[:, :2], WEIGHT)


# -- a CNN run fused, exported, and run by the device ------------------------------------------


@dataclass(frozen=True)
class FusedRun:
    run: Path
    bundle: Path
    corpus: Path


@pytest.fixture(scope="module")
def fused(tmp_path_factory, three_class_corpus) -> FusedRun:
    """A small CNN trained with ``fuse_svm`` 0.3 on 3 classes x 10 clips (each its own track), exported as fp32 ONNX."""
    from _tiny_runs import small_cnn_config

    from pyharmonies.export import export_run
    from pyharmonies.training.loop import train_run

    base = tmp_path_factory.mktemp("fused")
    run = train_run(small_cnn_config(three_class_corpus, base / "run", fuse_svm=WEIGHT), progress=False)
    bundle = export_run(run, base / "bundle", formats="onnx", progress=False, latency_runs=1)
    return FusedRun(run, bundle, three_class_corpus)


def test_the_run_holds_the_fused_answer(fused):
    from pyharmonies.training.fusion import FUSION_ARRAYS, FUSION_JSON, REPORT_HEADING

    metrics = json.loads((fused.run / "metrics.json").read_text())
    fusion = metrics["fusion"]
    assert fusion["weight"] == WEIGHT and fusion["support_vectors"] > 0
    assert set(fusion["splits"]) == {"val", "test"}
    for split in ("val", "test"):
        assert fusion["splits"][split]["clip"]["n"] == metrics["splits"][split]["clip"]["n"]
    assert (fused.run / FUSION_ARRAYS).exists()
    info = json.loads((fused.run / FUSION_JSON).read_text())
    assert info["weight"] == WEIGHT and info["clip_seconds"] == pytest.approx(4.0, abs=0.1)
    report = (fused.run / "report.md").read_text()
    assert report.count(REPORT_HEADING) == 1 and report.index(REPORT_HEADING) < report.index("## Configuration")


def test_fusing_again_replaces_the_report_section(fused, tmp_path):
    from pyharmonies.training.fusion import REPORT_HEADING, fuse_run

    run = tmp_path / "run"
    shutil.copytree(fused.run, run)
    again = fuse_run(run, 0.6, progress=False)
    assert again["weight"] == 0.6
    report = (run / "report.md").read_text()
    assert report.count(REPORT_HEADING) == 1 and "--fuse-svm 0.6" in report
    assert json.loads((run / "metrics.json").read_text())["fusion"]["weight"] == 0.6
    with pytest.raises(ParameterError, match="between 0 and 1"):
        fuse_run(run, 1.2, progress=False)


def test_the_bundle_answers_with_the_fusion(fused):
    from pyharmonies.audio import load
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.files import classify_file
    from pyharmonies.windows import input_features

    bundle = load_bundle(fused.bundle)
    assert bundle.svm is not None and bundle.svm.weight == WEIGHT
    manifest = json.loads((fused.bundle / "manifest.json").read_text())
    assert manifest["svm"]["file"] == "svm.npz"
    assert "## Fused with the SVM" in (fused.bundle / "report.md").read_text()
    clf = WindowClassifier(bundle)
    path = next(iter(sorted(fused.corpus.rglob("*.wav"))))
    result = classify_file(clf, path)
    frames = input_features(load(path, bundle.feature_config.sample_rate), bundle.feature_config, "frame_vector")
    svm = bundle.svm.model.probabilities(clip_statistics([frames]))[0]
    np.testing.assert_allclose(result.svm_probs, svm, atol=1e-6)
    np.testing.assert_allclose(result.probs, fuse_probabilities(result.model_probs, svm, WEIGHT), atol=1e-6)
    assert set(result.to_dict()) >= {"model_probs", "svm_probs"}


def test_a_long_file_is_read_by_the_svm_as_clips(fused):
    from pyharmonies.audio import load
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.files import classify_signal
    from pyharmonies.windows import input_features

    bundle = load_bundle(fused.bundle)
    config = bundle.feature_config
    clips = [load(p, config.sample_rate) for p in sorted(fused.corpus.rglob("*.wav"))[:3]]  # about clip_seconds each
    y = np.concatenate([*clips, clips[0][: config.sample_rate // 2]])  # and half a second more
    result = classify_signal(WindowClassifier(bundle), y)
    frames = input_features(y, config, "frame_vector")
    clip = bundle.svm.clip_frames(config.sample_rate, config.hop_length)
    assert 3 * clip < frames.shape[1] < 3.5 * clip  # three pieces, the last few frames joining the third
    pieces = clip_statistics([frames[:, :clip], frames[:, clip : 2 * clip], frames[:, 2 * clip :]])
    expected = bundle.svm.model.probabilities(pieces).mean(axis=0)
    np.testing.assert_allclose(result.svm_probs, expected, atol=1e-6)
    whole = bundle.svm.model.probabilities(clip_statistics([frames]))[0]
    assert not np.allclose(result.svm_probs, whole, atol=1e-3)  # not the statistics of the whole file
    np.testing.assert_allclose(result.probs, fuse_probabilities(result.model_probs, expected, WEIGHT), atol=1e-6)


def test_evaluate_reports_the_fusion_as_training_scored_it(fused):
    from pyharmonies.training.bundle_eval import evaluate_bundle

    results = evaluate_bundle(fused.bundle, fused.corpus, split="test", backend="onnx", precision="fp32")
    trained = json.loads((fused.run / "metrics.json").read_text())["fusion"]["splits"]["test"]
    assert results["fused"]["weight"] == WEIGHT
    assert results["fused"]["clip"]["n"] == trained["clip"]["n"]
    assert results["fused"]["clip"]["accuracy"] == pytest.approx(trained["clip"]["accuracy"])
    assert results["fused"]["svm_clip"]["accuracy"] == pytest.approx(trained["svm_clip"]["accuracy"])


def test_listen_fuses_each_result_with_the_recent_statistics(fused):
    from pyharmonies.audio import load
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.stream import SlidingClassifier
    from pyharmonies.windows import input_features

    bundle = load_bundle(fused.bundle)
    config = bundle.feature_config
    y = np.concatenate([load(p, config.sample_rate) for p in sorted(fused.corpus.rglob("*.wav"))[:3]])  # 12 s, past one clip
    slider = SlidingClassifier(WindowClassifier(bundle), config, bundle.kind, bundle.window_frames, bundle.hop_frames,
                               max_pending=0, svm=bundle.svm)  # fmt: skip
    results = [r for lo in range(0, len(y), 1500) for r in slider.push(y[lo : lo + 1500])] + slider.finish()
    frames = input_features(y, config, "frame_vector")
    clip = int(round(bundle.svm.clip_seconds * config.sample_rate / config.hop_length))
    for r in (results[0], results[len(results) // 2], results[-1]):
        end = r.start_frame + bundle.window_frames
        stats = clip_statistics([frames[:, max(0, end - clip) : end]])
        expected = fuse_probabilities(r.raw_probs[None], bundle.svm.model.probabilities(stats), WEIGHT)[0]
        np.testing.assert_allclose(r.probs, expected, atol=1e-5)


def test_a_modified_svm_file_is_refused(fused, tmp_path):
    from pyharmonies.runtime.bundle import load_bundle

    bundle = tmp_path / "bundle"
    shutil.copytree(fused.bundle, bundle)
    data = bytearray((bundle / "svm.npz").read_bytes())
    data[-100] ^= 0xFF
    (bundle / "svm.npz").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="svm.npz: checksum mismatch"):
        load_bundle(bundle)
    (bundle / "svm.npz").unlink()
    with pytest.raises(BundleError, match="svm.npz is missing"):
        load_bundle(bundle)


def test_only_the_cnn_is_fused(tmp_path):
    from pyharmonies.training.config import TrainConfig

    with pytest.raises(ParameterError, match="fuse_svm"):
        TrainConfig(data="d", out=str(tmp_path), model="lstm", fuse_svm=WEIGHT)
    with pytest.raises(ParameterError, match="fuse_svm"):
        TrainConfig(data="d", out=str(tmp_path), model="cnn", fuse_svm=1.5)


def test_the_cross_validation_summary_carries_the_fusion(tmp_path):
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.crossval import summarize_folds
    from pyharmonies.training.report import write_folds_report

    def clip(accuracy: float) -> dict:
        right = int(round(10 * accuracy))
        return {"n": 10, "accuracy": accuracy, "macro_f1": accuracy, "weighted_f1": accuracy,
                "confusion": [[right, 10 - right], [0, 0]],
                "per_class": {k: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 5} for k in "ab"}}  # fmt: skip

    folds = [{"labels": ["a", "b"], "splits": {"test": {"clip": clip(a)}},
              "baseline": {"model": "svm", "splits": {"test": {"clip": clip(b)}}},
              "fusion": {"weight": WEIGHT, "splits": {"test": {"clip": clip(f)}}}}
             for a, b, f in ((0.5, 0.4, 0.6), (0.7, 0.5, 0.7), (0.6, 0.6, 0.8))]  # fmt: skip
    summary = summarize_folds(folds)
    assert summary["fused"]["weight"] == WEIGHT
    assert summary["fused"]["clip"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["fused"]["versus_model"]["accuracy"]["mean"] == pytest.approx(0.1)
    assert summary["fused"]["versus_baseline"]["accuracy"]["mean"] == pytest.approx(0.2)
    assert [f["fused_clip_accuracy"] for f in summary["per_fold"]] == [0.6, 0.7, 0.8]
    write_folds_report(tmp_path, TrainConfig(data="d", out=str(tmp_path), model="cnn", fuse_svm=WEIGHT), summary)
    report = (tmp_path / "report.md").read_text()
    assert "Fused with the SVM (`--fuse-svm 0.3`): **70.0 ± 10.0%**" in report
    assert "+10.0 ± 10.0 points over cnn alone, +20.0 ± 0.0 over the SVM baseline" in report
    assert "| fused clip accuracy |" in report and "| 80.0% |" in report
    del folds[1]["fusion"]
    assert "fused" not in summarize_folds(folds)


def test_the_command_line_refuses_fusing_the_svm_with_itself(tmp_path):
    from click.testing import CliRunner

    from pyharmonies.cli import cli

    result = CliRunner().invoke(cli, ["train", str(tmp_path), "--model", "svm", "--fuse-svm", "0.3"])
    assert result.exit_code == 2 and "--fuse-svm: not used by --model svm" in result.output
    result = CliRunner().invoke(cli, ["train", str(tmp_path), "--model", "cnn", "--fuse-svm", "1.5"])
    assert result.exit_code == 2 and "--fuse-svm" in result.output


def test_the_self_check_covers_the_svm(fused, tmp_path):
    from pyharmonies.export.bundle import sha256_file, write_manifest
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.svm import read_calibrated

    manifest = json.loads((fused.bundle / "manifest.json").read_text())
    assert set(manifest["svm"]["reference"]["log_probs"]) == set(manifest["labels"])
    bundle = tmp_path / "bundle"
    shutil.copytree(fused.bundle, bundle)
    model = read_calibrated(bundle / "svm.npz")
    arrays = calibrated_arrays(model)
    arrays["offset"] = arrays["offset"] + 1.0  # another calibration, its checksum updated: only the self-check sees it
    np.savez(bundle / "svm.npz", **arrays)
    manifest["svm"].update(sha256=sha256_file(bundle / "svm.npz"), bytes=(bundle / "svm.npz").stat().st_size)
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match="self-check failed: svm.npz"):
        load_bundle(bundle)


def test_compare_shows_the_fused_answer_after_its_run(fused):
    from pyharmonies.training.compare import compare_runs

    metrics = json.loads((fused.run / "metrics.json").read_text())
    comp = compare_runs([fused.run], names=["cnn"])
    assert [e.name for e in comp.entries] == ["cnn", "cnn + svm (fused)", "svm (baseline of cnn)"]
    assert comp.entries[1].figures["accuracy"]["mean"] == pytest.approx(metrics["fusion"]["splits"]["test"]["clip"]["accuracy"])
    assert [e.name for e in compare_runs([fused.run], names=["cnn"], level="window").entries][:1] == ["cnn"]
    assert all("fused" not in e.name for e in compare_runs([fused.run], level="window").entries)


def test_resume_fuses_a_finished_run_without_retraining_it(three_class_corpus, tmp_path):
    import hashlib

    from _tiny_runs import small_cnn_config

    from pyharmonies.training.loop import train_run

    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run"), progress=False)
    assert "fusion" not in json.loads((run / "metrics.json").read_text())
    weights = hashlib.sha256((run / "best.pt").read_bytes()).hexdigest()
    train_run(small_cnn_config(three_class_corpus, tmp_path / "run", fuse_svm=WEIGHT), progress=False, resume=True)
    assert json.loads((run / "metrics.json").read_text())["fusion"]["weight"] == WEIGHT
    assert hashlib.sha256((run / "best.pt").read_bytes()).hexdigest() == weights


@pytest.mark.parametrize("command", ["classify", "listen"])
def test_the_device_runs_the_fusion_without_the_workstation(fused, command):
    import subprocess
    import sys

    clip = sorted(fused.corpus.rglob("*.wav"))[0]
    args = [command, str(fused.bundle), str(clip), "--json"] if command == "classify" else \
        [command, "--model", str(fused.bundle), "--source", str(clip), "--fast", "--json"]  # fmt: skip
    code = ("import sys\nfrom pyharmonies.cli import cli\n"
            "cli.main(args=sys.argv[1:], prog_name='harmonies', standalone_mode=False)\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')"
            " or m.startswith(('pyharmonies.training', 'pyharmonies.export', 'pyharmonies.data'))))\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "LOADED []"
    first = json.loads(out.stdout.splitlines()[0])
    assert ("svm_probs" in first) if command == "classify" else ("top" in first)


def test_evaluating_the_run_gives_the_fused_answer_too(fused, tmp_path):
    from pyharmonies.training.evaluate import evaluate_run

    results = evaluate_run(fused.run, fused.corpus, split="test", progress=False, out=tmp_path / "eval")
    trained = json.loads((fused.run / "metrics.json").read_text())["fusion"]["splits"]["test"]
    assert results["fused"]["weight"] == WEIGHT
    assert results["fused"]["clip"]["accuracy"] == pytest.approx(trained["clip"]["accuracy"])
    assert results["fused"]["clip"]["confusion"] == trained["clip"]["confusion"]
    assert "fused with the SVM" in (tmp_path / "eval" / "report.md").read_text()


def test_members_are_not_fused_one_by_one(tmp_path):
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.members import member_configs

    cfg = TrainConfig(data="d", out=str(tmp_path), model="cnn", members=3, fuse_svm=WEIGHT)
    assert [m.fuse_svm for m in member_configs(cfg)] == [None, None, None]
