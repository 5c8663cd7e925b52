"""Training end to end on a small synthetic corpus: accuracy, leak-free splits,
kill-and-resume, DDP, corrupt files, evaluation, fine-tuning, k-fold.

The corpus and the reference runs are module fixtures: each model is trained
once and several tests read its run directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pyharmonies.data.synth import synth_corpus
from pyharmonies.training import checkpoint, loop
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.evaluate import evaluate_run, window_probabilities
from pyharmonies.training.loop import train_run
from pyharmonies.training.svm import train_svm_run

# Small enough for a 2-core CI machine, large enough that 95 % means learning:
# 5 classes x 40 clips x 6 s; the test split holds ~15 % of the clips, four
# 3 s windows each (one every second: 3 s, not the CNN's default 2 s, is what the margins
# below were measured with).
CLASSES, CLIPS, SECONDS = 5, 40, 6.0

# The training seed, and torch's threads while training the reference runs: a CPU model's weights
# depend on how many threads split its reductions, so one thread gives the same runs on any
# machine with this CPU's kernels. benchmarks/bench_margins.py varies both (issue 10): over seeds
# 0-4 the test-split window accuracy was 1.0 for the CNN every time and 0.967-1.0 (median 0.983)
# for the LSTM, against the 0.95 below: 2 of the ~120 test windows from failing at worst. The
# transformer (40 epochs, patience 15) gave 0.975-1.0 (median 0.983) over the same seeds; with the
# CNN's 20 epochs and patience 6 seed 0 stopped at 0.958.
SEED = int(os.environ.get("HARMONIES_TEST_SEED", "0"))
TRAIN_THREADS = int(os.environ.get("HARMONIES_TEST_TRAIN_THREADS", "1"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=CLASSES, clips_per_class=CLIPS, seconds=SECONDS, seed=3, progress=False)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _cfg(corpus: Path, cache_dir: Path, out: Path, **kw) -> TrainConfig:
    # From scratch: these tests are about the loop; the pretrained start has its own (test_pretrain.py).
    base = dict(data=str(corpus), out=str(out), cache=str(cache_dir), epochs=20, batch_size=32, patience=6, seed=SEED, window=3.0, window_hop=1.0,
                backbone="none", members=1)
    base.update(kw)
    return TrainConfig(**base)


def _train_pinned(cfg: TrainConfig) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return train_run(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cnn_run(corpus, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cnn"
    return _train_pinned(_cfg(corpus, cache_dir, out, model="cnn", epochs=30, patience=10))


@pytest.fixture(scope="module")
def lstm_run(corpus, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lstm"
    return _train_pinned(_cfg(corpus, cache_dir, out, model="lstm", epochs=60, patience=15))


@pytest.fixture(scope="module")
def transformer_run(corpus, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "transformer"
    return _train_pinned(_cfg(corpus, cache_dir, out, model="transformer", epochs=40, patience=15))


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize("run_fixture", ["cnn_run", "lstm_run", "transformer_run"])
def test_model_reaches_95_percent_on_the_test_split(run_fixture, request):
    run = request.getfixturevalue(run_fixture)
    m = _metrics(run)
    test = m["splits"]["test"]
    print(f"{run_fixture}: test window accuracy {test['window']['accuracy']:.3f}, clip {test['clip']['accuracy']:.3f}, "
          f"epochs {m['epochs_run']}, {sum(h['seconds'] for h in m['history']):.1f} s of training")  # fmt: skip
    print(f"margin: training[{run_fixture}].test_window_accuracy {test['window']['accuracy']:.4f} >= 0.9500")  # benchmarks/bench_margins.py
    assert test["window"]["accuracy"] >= 0.95
    assert test["window"]["n"] > 0 and m["clips"]["test"] >= CLASSES


def test_svm_baseline_runs_and_reports(corpus, cache_dir, tmp_path):
    run = train_svm_run(_cfg(corpus, cache_dir, tmp_path / "svm", model="svm"), progress=False)
    m = _metrics(run)
    assert set(m["splits"]) == {"train", "val", "test"}
    assert m["splits"]["test"]["clip"]["accuracy"] > 1.0 / CLASSES  # better than chance
    assert (run / "report.md").exists() and (run / "confusion.png").exists()
    again = evaluate_run(run, corpus, split="test", progress=False)
    assert again["clip"] == m["splits"]["test"]["clip"]


# ---------------------------------------------------------------- run directory


def test_run_directory_holds_everything(cnn_run):
    for name in ("config.json", "splits.json", "metrics.json", "report.md", "confusion.png", "curves.png", "best.pt", "last.pt"):
        assert (cnn_run / name).exists(), name
    cfg = TrainConfig.load(cnn_run / "config.json")  # enough to reproduce the run
    assert cfg.model == "cnn"
    report = (cnn_run / "report.md").read_text()
    assert "macro F1" in report and "precision" in report and "confusion.png" in report
    ck = checkpoint.load(cnn_run / checkpoint.BEST)  # weights_only=True
    assert ck["meta"]["labels"] == sorted(ck["meta"]["labels"]) and len(ck["meta"]["labels"]) == CLASSES
    assert len(ck["meta"]["normalizer"]["mean"]) == ck["meta"]["input_shape"][0]


def test_no_track_in_two_splits(cnn_run):
    saved = json.loads((cnn_run / "splits.json").read_text())
    seen: dict[str, str] = {}
    for split, keys in saved["splits"].items():
        for key in keys:
            track = key.split("#")[0]
            assert seen.setdefault(track, split) == split, f"{track} in {seen[track]} and {split}"


def test_evaluate_reproduces_the_saved_test_metrics(cnn_run, corpus):
    saved = _metrics(cnn_run)["splits"]["test"]
    again = evaluate_run(cnn_run, corpus, split="test", progress=False)
    assert again["window"]["confusion"] == saved["window"]["confusion"]
    assert again["window"]["accuracy"] == pytest.approx(saved["window"]["accuracy"])
    assert again["clip"]["accuracy"] == pytest.approx(saved["clip"]["accuracy"])


def test_window_probabilities_cut_the_run_s_windows_or_longer_ones_for_the_cnn(cnn_run, corpus):
    own = window_probabilities(cnn_run, corpus, split="test", progress=False)
    assert own.window_frames == own.meta["window_frames"]  # 3 s at the defaults: 129 frames
    longer = window_probabilities(cnn_run, corpus, split="test", progress=False, window_seconds=6.0, hop_seconds=1.0)
    assert longer.window_frames == 258 and longer.hop_frames == 43
    assert {w.clip for w in longer.windows} == {w.clip for w in own.windows}  # the same clips, fewer and longer windows
    assert len(longer.windows) < len(own.windows)
    assert longer.probs.shape == (len(longer.windows), len(own.labels))
    np.testing.assert_allclose(longer.probs.sum(axis=1), 1.0, rtol=1e-5)


def test_cnn_is_within_the_parameter_budget(cnn_run):
    assert _metrics(cnn_run)["model"]["parameters"] <= 300_000


def test_the_transformer_run_is_one_of_the_others(transformer_run, corpus):
    """The same loop, files and report as any neural run; its size figures are the model's own."""
    from pyharmonies.models import count_macs, count_parameters
    from pyharmonies.training.loop import model_from_meta

    m = _metrics(transformer_run)
    ck = checkpoint.load(transformer_run / checkpoint.BEST)
    model = model_from_meta(ck["meta"])
    model.load_state_dict(ck["model"])  # strict: the fixed positions are not in the file, nothing else is missing
    assert ck["meta"]["model_name"] == "transformer" and ck["meta"]["input_kind"] == "frame_vector"
    assert ck["meta"]["model_config"]["d_model"] == 64 and ck["meta"]["input_shape"] == [28, 129]  # defaults resolved
    assert m["model"]["name"] == "transformer"
    assert m["model"]["parameters"] == count_parameters(model) and m["model"]["macs_per_window"] == count_macs(model)
    report = (transformer_run / "report.md").read_text()
    assert report.startswith(f"# Run `{transformer_run.name}`: transformer on") and "Beside the classical baseline" in report
    assert f"{m['model']['parameters']:,} parameters" in report
    again = evaluate_run(transformer_run, corpus, split="test", progress=False)
    assert again["window"]["confusion"] == m["splits"]["test"]["window"]["confusion"]


# ---------------------------------------------------------------- faults


def test_corrupt_file_is_reported_and_skipped(corpus, cache_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    bad = next((data / sorted(p.name for p in data.iterdir() if p.is_dir())[0]).glob("*.wav"))
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    run = train_run(_cfg(data, cache_dir, tmp_path / "run", model="lstm", epochs=2), progress=False)
    m = _metrics(run)
    assert any(Path(p["path"]).name == bad.name for p in m["problems"])
    assert bad.name in (run / "report.md").read_text()
    assert sum(m["clips"].values()) == CLASSES * CLIPS - 1


def _train_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyharmonies.cli", "train", *args]


def test_kill_and_resume_continues_from_the_last_epoch(corpus, cache_dir, tmp_path):
    # Dense windows (one every 0.1 s) make an epoch last long enough to be killed in.
    common = [str(corpus), "--model", "lstm", "--epochs", "6", "--patience", "100", "--window-hop", "0.1",
              "--cache", str(cache_dir), "--quiet"]  # fmt: skip
    reference = tmp_path / "reference"
    subprocess.run(_train_cmd(*common, "--out", str(reference)), check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(*common, "--out", str(killed)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    last = killed / checkpoint.LAST
    while time.monotonic() < deadline and proc.poll() is None:
        if last.exists() and checkpoint.load(last)["epoch"] >= 1:  # two epochs done
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch_at_kill = checkpoint.load(last)["epoch"]
    assert 1 <= epoch_at_kill < 5

    subprocess.run(_train_cmd(*common, "--out", str(killed), "--resume"), check=True, capture_output=True)
    resumed = _metrics(killed)
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, 7))
    # Shuffling, augmentation and dropout are functions of (seed, epoch): the
    # resumed run ends exactly where the uninterrupted one does.
    a = checkpoint.load(reference / checkpoint.LAST)["model"]
    b = checkpoint.load(last)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_second_run_into_the_same_directory_is_refused(cnn_run, corpus, cache_dir):
    from pyharmonies.errors import ParameterError

    with pytest.raises(ParameterError, match="--resume"):
        train_run(_cfg(corpus, cache_dir, cnn_run, model="cnn"), progress=False)


# ---------------------------------------------------------------- distributed


def test_ddp_two_processes_on_cpu_train_and_save_once(corpus, cache_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "pyharmonies.cli", "train", str(corpus), "--model", "lstm", "--epochs", "2", "--device", "cpu",
           "--cache", str(cache_dir), "--out", str(out), "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    m = _metrics(out)
    assert m["world_size"] == 2 and m["epochs_run"] == 2
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt"]  # written by rank 0 only
    assert not list(out.glob("*.part"))
    assert run.stdout.count("report:") == 1  # one summary, from rank 0


# ---------------------------------------------------------------- fine-tuning and folds


def test_fine_tune_with_new_labels_replaces_the_head(cnn_run, corpus, cache_dir, tmp_path):
    import shutil

    data = tmp_path / "three"
    data.mkdir()
    for label in sorted(p.name for p in corpus.iterdir() if p.is_dir())[:3]:
        shutil.copytree(corpus / label, data / label)
    run = train_run(_cfg(data, cache_dir, tmp_path / "ft", model="cnn", epochs=2, init=str(cnn_run), freeze_backbone=True), progress=False)
    before = checkpoint.load(cnn_run / checkpoint.BEST)["model"]
    after = checkpoint.load(run / checkpoint.BEST)
    assert after["meta"]["labels"] == sorted(p.name for p in data.iterdir())
    head_keys = [k for k in after["model"] if k.startswith("head.")]
    assert after["model"][head_keys[0]].shape[0] == 3
    for key, value in after["model"].items():
        if not key.startswith("head.") and value.is_floating_point():
            torch.testing.assert_close(value, before[key], msg=key)  # frozen backbone


def test_grouped_kfold(corpus, cache_dir, tmp_path):
    from pyharmonies.training.loop import train_folds

    out = tmp_path / "folds"
    train_folds(_cfg(corpus, cache_dir, out, model="lstm", epochs=1, folds=3), progress=False)
    summary = _metrics(out)
    assert summary["folds"] == 3 and len(summary["per_fold"]) == 3
    tests = [set(json.loads((out / f"fold-{k}" / "splits.json").read_text())["splits"]["test"]) for k in range(3)]
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2]) and not (tests[0] & tests[2])
    assert sum(len(t) for t in tests) == CLASSES * CLIPS  # every clip tested exactly once
    assert (out / "report.md").exists()
    # The SVM on the very same folds, paired with the model fold by fold.
    assert summary["baseline"]["model"] == "svm"
    assert summary["test"]["clip"]["pooled"]["n"] == CLASSES * CLIPS
    assert len(summary["versus_baseline"]["accuracy"]["values"]) == 3
    for k in range(3):
        fold = _metrics(out / f"fold-{k}")
        assert summary["per_fold"][k]["baseline_clip_accuracy"] == fold["baseline"]["splits"]["test"]["clip"]["accuracy"]
    report = (out / "report.md").read_text()
    assert "95% CI" in report and "SVM baseline on the same folds" in report and "confusion-svm.png" in report
    assert (out / "confusion.png").exists() and (out / "confusion-svm.png").exists()


def test_every_neural_report_carries_the_svm_on_the_same_split(cnn_run, corpus, cache_dir, tmp_path):
    m = _metrics(cnn_run)
    assert m["baseline"]["model"] == "svm" and set(m["baseline"]["splits"]) == {"train", "val", "test"}
    svm = train_svm_run(_cfg(corpus, cache_dir, tmp_path / "svm", model="svm"), progress=False)
    # Same seed, same split: the stand-alone SVM run is the baseline the report shows.
    assert _metrics(svm)["splits"]["test"]["clip"] == m["baseline"]["splits"]["test"]["clip"]
    assert "Beside the classical baseline" in (cnn_run / "report.md").read_text()


def test_train_config_file_is_the_base_and_the_command_line_overrides_it(corpus, cache_dir, tmp_path):
    from click.testing import CliRunner

    from pyharmonies.cli import cli

    base = _cfg(corpus, cache_dir, tmp_path / "elsewhere", model="lstm", epochs=7, mixup=0.5, select_by="clip_accuracy",
                augment_options={"p_eq": 0.5, "eq_db": 9.0}, window=1.0, data="/nowhere")  # fmt: skip
    base.save(tmp_path / "best.json")
    out = tmp_path / "from-config"
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        result = CliRunner().invoke(cli, ["train", str(corpus), "--config", str(tmp_path / "best.json"), "--epochs", "1",
                                           "--out", str(out), "--cache", str(cache_dir), "-q"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    saved = TrainConfig.load(out / "config.json")
    assert saved.model == "lstm" and saved.mixup == 0.5 and saved.select_by == "clip_accuracy"
    assert saved.augment_options == {"p_eq": 0.5, "eq_db": 9.0} and saved.window == 1.0
    assert saved.epochs == 1 and saved.data == str(corpus) and saved.out == str(out)  # the command line wins
    history = _metrics(out)["history"]
    assert history[0]["val_clip_accuracy"] is not None
    assert "SVM baseline, same split" in result.output


def test_the_epoch_budget_defaults_to_the_one_measured_for_each_model(tmp_path):
    """The CNN's default budget is the 10 epochs (patience 4) measured on real music; the sequence
    models keep 30 (patience 8); what is given, on the command line or in a file, is kept."""
    assert (TrainConfig(data="d").epochs, TrainConfig(data="d").patience) == (10, 4)
    for model in ("lstm", "transformer"):
        assert (TrainConfig(data="d", model=model).epochs, TrainConfig(data="d", model=model).patience) == (30, 8)
    given = TrainConfig(data="d", epochs=25, patience=3)
    assert (given.epochs, given.patience) == (25, 3)
    given.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json").to_dict() == given.to_dict()
    TrainConfig(data="d").save(tmp_path / "default.json")  # a run records the numbers, not "the default"
    saved = json.loads((tmp_path / "default.json").read_text())
    assert (saved["epochs"], saved["patience"]) == (10, 4)


def test_the_cnn_keeps_its_last_epoch_by_default_and_the_sequence_models_select_by_clip_accuracy(tmp_path):
    assert TrainConfig(data="d").select_by == "last"
    for model in ("lstm", "transformer"):
        assert TrainConfig(data="d", model=model).select_by == "clip_accuracy"
    assert TrainConfig(data="d", select_by="clip_accuracy").select_by == "clip_accuracy"
    TrainConfig(data="d").save(tmp_path / "config.json")  # a run records the choice, not "the default"
    assert json.loads((tmp_path / "config.json").read_text())["select_by"] == "last"


def test_the_cnn_sees_2_s_windows_by_default_and_the_sequence_models_3_s(tmp_path):
    assert TrainConfig(data="d").window == 2.0
    for model in ("lstm", "transformer"):
        assert TrainConfig(data="d", model=model).window == 3.0
    assert TrainConfig(data="d", window=5.0).window == 5.0
    TrainConfig(data="d").save(tmp_path / "config.json")  # a run records the seconds, not "the default"
    assert json.loads((tmp_path / "config.json").read_text())["window"] == 2.0


def test_a_cnn_from_scratch_averages_three_narrow_networks_by_default(tmp_path):
    """The default CNN is three width-0.4 members (measured on real music, docs/EXPERIMENTS.md); a start
    from another run, a backbone or a teacher is one network, and so are the other models."""
    default = TrainConfig(data="d")
    assert default.members == 3 and default.model_options == {"width": 0.4}
    assert TrainConfig(data="d", model_options={"width": 0.6, "dropout": 0.1}).model_options == {"width": 0.6, "dropout": 0.1}
    assert TrainConfig(data="d", members=5, model_options={"dropout": 0.1}).model_options == {"dropout": 0.1, "width": 0.4}
    assert TrainConfig(data="d", members=1).model_options == {}  # one full-width network
    for one in (dict(init="runs/cnn"), dict(backbone="shipped"), dict(teacher="runs/ensemble"), dict(model="lstm"),
                dict(model="transformer"), dict(model="svm"), dict(model="probe", backbone="shipped")):
        cfg = TrainConfig(data="d", **one)
        assert cfg.members == 1 and cfg.model_options == {}, one
    default.save(tmp_path / "config.json")  # a run records the members and their width, not "the default"
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["members"] == 3 and saved["model_options"] == {"width": 0.4}
    assert TrainConfig.load(tmp_path / "config.json") == default


def test_bad_training_options_are_refused_before_anything_runs(corpus, tmp_path):
    from pyharmonies.errors import ParameterError

    with pytest.raises(ParameterError, match="select_by"):
        _cfg(corpus, tmp_path, tmp_path / "x", select_by="loss")
    with pytest.raises(ParameterError, match="unknown AugmentConfig field"):
        _cfg(corpus, tmp_path, tmp_path / "x", augment_options={"p_reverb": 1.0})
    assert not (tmp_path / "x").exists()


def test_transformer_folds_and_compare_from_the_command_line(corpus, cache_dir, tmp_path):
    """`train --model transformer --folds 2`: the K-fold summary with the SVM on the same folds, then `compare`."""
    from click.testing import CliRunner

    from pyharmonies.cli import cli

    out = tmp_path / "tf-2f"
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        result = CliRunner().invoke(cli, ["train", str(corpus), "--model", "transformer", "--folds", "2", "--epochs", "1",
                                          "--model-options", '{"d_model": 16, "heads": 2, "layers": 1, "ff": 32}',
                                          "--out", str(out), "--cache", str(cache_dir), "-q"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "2 folds: test clip accuracy" in result.output and "SVM baseline, same folds" in result.output
    summary = _metrics(out)
    assert summary["model"] == "transformer" and summary["folds"] == 2 and summary["baseline"]["model"] == "svm"
    assert summary["test"]["clip"]["pooled"]["n"] == CLASSES * CLIPS
    assert _metrics(out / "fold-1")["model"]["config"]["d_model"] == 16
    result = CliRunner().invoke(cli, ["compare", str(out)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("| tf-2f |"))
    assert row.split("|")[2].strip() == "transformer" and row.split("|")[3].strip() == "2"
    refused = CliRunner().invoke(cli, ["train", str(corpus), "--model", "transformer", "--backbone", "shipped", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "only the cnn starts from a pretrained backbone" in refused.output


def test_a_killed_cross_validation_resumes_keeping_the_finished_folds(corpus, cache_dir, tmp_path):
    from pyharmonies.errors import ParameterError
    from pyharmonies.training.loop import train_folds

    out = tmp_path / "folds"
    cfg = _cfg(corpus, cache_dir, out, model="lstm", epochs=2, folds=3)
    train_folds(cfg, progress=False)
    first = _metrics(out)
    kept = (out / "fold-0" / "metrics.json").stat().st_mtime_ns
    # As if killed during fold 2, after its first epoch: no summary, no fold-2 metrics.
    (out / "metrics.json").unlink()
    (out / "fold-2" / "metrics.json").unlink()
    with pytest.raises(ParameterError, match="--resume"):
        train_folds(cfg, progress=False)
    with pytest.raises(ParameterError, match="other options"):
        train_folds(_cfg(corpus, cache_dir, out, model="lstm", epochs=3, folds=3), progress=False, resume=True)
    train_folds(cfg, progress=False, resume=True)
    again = _metrics(out)
    assert (out / "fold-0" / "metrics.json").stat().st_mtime_ns == kept  # not retrained
    assert again["test"]["clip"]["accuracy"]["values"] == first["test"]["clip"]["accuracy"]["values"]


def test_resume_takes_a_folder_and_its_manifest_for_one_dataset(tmp_path):
    from pyharmonies.errors import ParameterError
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import check_resumable

    data, other = tmp_path / "set", tmp_path / "other"
    for folder in (data, other):
        folder.mkdir()
        (folder / "manifest.csv").write_text("path,label,track_id\n")
    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(data=str(data), model="lstm", out=str(run)).save(run / "config.json")
    check_resumable(TrainConfig(data=str(data / "manifest.csv"), model="lstm", out=str(run)), run)  # the folder is read through it
    with pytest.raises(ParameterError, match="data .*other"):
        check_resumable(TrainConfig(data=str(other / "manifest.csv"), model="lstm", out=str(run)), run)


def test_select_by_last_keeps_the_final_epoch_and_never_stops_early(three_class_corpus, tmp_path):
    from _tiny_runs import small_cnn_config

    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=3, patience=1, select_by="last"), progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["best_epoch"] == 3  # patience 1 would have allowed a stop
    best = checkpoint.load(run / checkpoint.BEST)
    last = checkpoint.load(run / checkpoint.LAST, keys=checkpoint.RESUME_KEYS)
    assert best["model"].keys() == last["model"].keys()
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    assert all(entry["val_clip_accuracy"] is not None for entry in metrics["history"])  # still scored, for the report
    assert "Kept the last epoch's weights (3 of 3 run)" in (run / "report.md").read_text()


def test_balance_tracks_hands_the_sampler_each_training_window_s_track(three_class_corpus, tmp_path, monkeypatch):
    from _tiny_runs import small_cnn_config

    from pyharmonies.training import loop
    from pyharmonies.training.sampling import BalancedSampler

    seen = []

    class Recording(BalancedSampler):
        def __init__(self, labels, **kwargs):
            seen.append((list(labels), kwargs.get("groups")))
            super().__init__(labels, **kwargs)

    monkeypatch.setattr(loop, "BalancedSampler", Recording)
    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=1, balance="tracks"), progress=False)
    (labels, groups), = seen
    train_tracks = json.loads((run / "splits.json").read_text())["groups"]["train"]
    assert groups is not None and len(groups) == len(labels)  # one track per training window
    assert len(set(groups)) < len(groups)  # several windows per track share it
    assert set(groups) == set(train_tracks)


def test_pooled_log_probabilities_are_the_log_of_each_bag_s_mean_probability():
    logits = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    pooled = loop.pooled_log_probabilities(logits, 4)
    expected = torch.log(torch.softmax(logits, dim=1).view(3, 4, 5).mean(dim=1))
    assert pooled.shape == (3, 5)
    torch.testing.assert_close(pooled, expected)
    torch.testing.assert_close(torch.logsumexp(pooled, dim=1), torch.zeros(3))  # normalised: cross_entropy takes them as they are


def test_a_clip_bag_run_scores_one_pooled_prediction_per_bag_of_one_clip(three_class_corpus, tmp_path, monkeypatch):
    from _tiny_runs import small_cnn_config

    from pyharmonies.training.sampling import ClipBagSampler

    samplers, scored = [], []

    class Recording(ClipBagSampler):
        def __init__(self, clips, labels, **kwargs):
            samplers.append(self)
            super().__init__(clips, labels, **kwargs)

    real_loss = loop._Trainer._loss

    def recording_loss(self, logits, y):
        scored.append((logits.detach().clone(), y.clone()))
        return real_loss(self, logits, y)

    monkeypatch.setattr(loop, "ClipBagSampler", Recording)
    monkeypatch.setattr(loop._Trainer, "_loss", recording_loss)
    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=1, batch_size=8, clip_bag=4, mixup=0.0), progress=False)
    (sampler,) = samplers
    assert sampler.bag == 4 and (sampler.probabilities > 0).all()
    assert sum(len(y) for _, y in scored) == len(sampler) // 4  # one score per bag
    for logits, y in scored:
        assert logits.shape == (len(y), 3) and len(y) <= 2  # a batch of 8 windows holds 2 bags
        torch.testing.assert_close(torch.logsumexp(logits, dim=1), torch.zeros(len(y)))  # pooled probabilities
    assert json.loads((run / "config.json").read_text())["clip_bag"] == 4
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"clip_bag": 1}, "clip_bag must be 0"),
        ({"clip_bag": 3}, r"batch_size \(32\) must be a multiple of clip_bag \(3\)"),
        ({"clip_bag": 4, "balance": "tracks"}, "class-balanced"),
        ({"clip_bag": 4, "teacher": "runs/ensemble"}, "teacher"),
        ({"clip_bag": 4, "model": "svm"}, "not the svm"),
    ],
)
def test_clip_bag_options_that_cannot_work_are_refused(options, message):
    from pyharmonies.errors import ParameterError

    with pytest.raises(ParameterError, match=message):
        TrainConfig(data="d", **options)


def test_pooled_normalizer_uses_one_mean_and_std_for_every_row():
    from pyharmonies.training.dataset import Normalizer

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(4, n)) * np.arange(1, 5)[:, None] + np.arange(4)[:, None] for n in (10, 7)]
    everything = np.concatenate(arrays, axis=1)
    pooled = Normalizer.fit(arrays, pooled=True)
    np.testing.assert_allclose(pooled.mean, np.full(4, everything.mean()), rtol=1e-5)
    np.testing.assert_allclose(pooled.std, np.full(4, everything.std()), rtol=1e-5)
    per_band = Normalizer.fit(arrays)
    np.testing.assert_allclose(per_band.mean, everything.mean(axis=1), rtol=1e-5)
    # The pooled standardisation keeps the rows' order of level; the per-band one removes it.
    assert np.all(np.diff(pooled(everything).mean(axis=1)) > 0)
    np.testing.assert_allclose(per_band(everything).mean(axis=1), 0.0, atol=1e-5)


def test_global_normalisation_is_saved_with_the_model(three_class_corpus, tmp_path):
    from _tiny_runs import small_cnn_config

    run = train_run(small_cnn_config(three_class_corpus, tmp_path / "run", epochs=1, normalize="global"), progress=False)
    normalizer = checkpoint.load(run / checkpoint.BEST)["meta"]["normalizer"]
    assert len(normalizer["mean"]) == 64 and len(set(normalizer["mean"])) == 1 and len(set(normalizer["std"])) == 1
    assert json.loads((run / "config.json").read_text())["normalize"] == "global"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"normalize": "rows"}, "normalize must be one of band, global"),
        ({"normalize": "global", "model": "lstm"}, "the lstm's inputs"),
        ({"normalize": "global", "backbone": "shipped"}, "keeps that model's input standardisation"),
        ({"normalize": "global", "init": "runs/cnn"}, "keeps that model's input standardisation"),
    ],
)
def test_normalize_options_that_cannot_work_are_refused(options, message):
    from pyharmonies.errors import ParameterError

    with pytest.raises(ParameterError, match=message):
        TrainConfig(data="d", **options)
