"""The decision-latency curve (``harmonies evaluate --latency-curve``): its answers are
``listen``'s, its seconds are ``listen``'s, its final point is evaluation's clip accuracy
with the clip vote's smoothing, for a run, a bundle and a cross-validation; the time to a
trustworthy answer on hand-made curves; the files and the command line.

The runs and bundles are the session's tiny ``small_bundle`` (3 classes x 4 clips of 3 s,
1 s windows every 0.5 s) and a tiny LSTM on its corpus: they need not classify well, the
identities below hold whatever they answer. An LSTM bundle is measured as ``listen`` runs
it, statefully through its step and hop models: its answers are checked against the
device's own stream (``classify --streaming``'s), from the start and from a random point.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.training.latency import (
    ClipScores,
    accuracy_curve,
    correct_answers,
    decisions,
    join_tracks,
    measure,
    random_start,
    score_clips,
    trustworthy_time,
)


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------ the time to a trustworthy answer


def test_trustworthy_time_is_the_first_point_from_which_the_curve_stays_above_90_percent_of_its_end():
    seconds = [3.0, 4.5, 6.0, 7.5, 9.0]
    accuracy = [0.5, 0.85, 0.7, 0.82, 0.8]  # final 0.8, target 0.72: reached at 4.5 s, lost at 6 s, for good at 7.5 s
    got = trustworthy_time(seconds, accuracy)
    assert got["final"] == 0.8 and got["target"] == pytest.approx(0.72)
    assert (got["seconds"], got["index"]) == (7.5, 3)
    assert (got["first_seconds"], got["first_index"]) == (4.5, 1)


def test_trustworthy_time_counts_a_point_exactly_at_90_percent():
    # 9/13 is exactly 90% of 10/13; in floating point 0.9 * (10/13) is one ulp above 9/13.
    assert 0.9 * (10 / 13) > 9 / 13
    got = trustworthy_time([1.0, 2.0, 3.0], [0.0, 9 / 13, 10 / 13])
    assert got["index"] == 1 and got["first_index"] == 1


def test_trustworthy_time_of_flat_and_of_zero_curves_is_the_first_point():
    assert trustworthy_time([2.0, 3.0], [0.6, 0.6])["seconds"] == 2.0
    assert trustworthy_time([2.0, 3.0], [0.5, 0.0])["seconds"] == 2.0  # 90% of nothing is reached at once
    got = trustworthy_time([2.0, 3.0, 4.0], [1.0, 0.5, 0.6], fraction=1.0)
    assert got["target"] == 0.6 and (got["index"], got["first_index"]) == (2, 0)  # fraction 1: at or above the final value


@pytest.mark.parametrize("seconds, accuracy", [([1.0, 1.0], [0.5, 0.5]), ([2.0, 1.0], [0.5, 0.5]), ([1.0], [0.5, 0.5]), ([], [])])
def test_trustworthy_time_refuses_a_bad_axis(seconds, accuracy):
    with pytest.raises(ParameterError):
        trustworthy_time(seconds, accuracy)


# ------------------------------------------------------------------ the answers are listen's


class _Replay:
    """A classifier for SlidingClassifier that returns preset probabilities, one row per window."""

    def __init__(self, probs: np.ndarray, labels: tuple[str, ...]):
        self.probs, self.labels, self.calls = probs, labels, 0

    def predict(self, window: np.ndarray) -> np.ndarray:
        row = self.probs[self.calls % len(self.probs)]
        self.calls += 1
        return row


@pytest.mark.parametrize("smoothing", ["ema", "vote", "none"])
def test_answers_and_seconds_are_those_listen_prints(smoothing, rng):
    from pyharmonies.stream.sliding import SlidingClassifier
    from pyharmonies.training.latency import ScoredClips, accuracy_curve

    config = FeatureConfig()
    window, hop, n = 8, 3, 12
    probs = rng.dirichlet(np.full(4, 0.7), size=n).astype(np.float32)
    replay = _Replay(probs, ("a", "b", "c", "d"))
    slider = SlidingClassifier(replay, config, "log_mel", window, hop, smoothing, max_pending=0)
    samples = (window + (n - 1) * hop - 1) * config.hop_length  # the last window's end frame, and no further one
    results = slider.push(np.zeros(samples, dtype=np.float32)) + slider.finish()
    assert len(results) == n and replay.calls == n
    assert [r.label for r in results] == [replay.labels[k] for k in decisions(probs, smoothing)]
    scored = ScoredClips("x", "cnn", "run", list(replay.labels), [ClipScores("k", 0, probs)], window, hop,
                         config.hop_length / config.sample_rate, "test")  # fmt: skip
    curve = accuracy_curve(scored, smoothing=smoothing)
    # listen's time column: (start + W) * hop_length / sample_rate, the same expression in another order.
    np.testing.assert_allclose(curve["seconds"], [r.time for r in results], rtol=1e-12)


def test_mean_smoothing_is_the_running_mean_of_the_windows(rng):
    probs = rng.dirichlet(np.ones(3), size=20)
    want = [int(np.argmax(probs[: k + 1].mean(axis=0))) for k in range(20)]
    assert decisions(probs, "mean").tolist() == want


def test_a_clip_keeps_its_last_answer_once_heard_whole():
    one_hot = np.eye(3)
    long = ClipScores("long", 2, one_hot[[0, 1, 2, 2, 2]])
    short = ClipScores("short", 1, one_hot[[0, 1]])
    right = correct_answers([long, short], smoothing="none")
    assert right.tolist() == [[False, False, True, True, True], [False, True, True, True, True]]


def test_a_tracks_clips_join_into_one_stream_in_the_order_given():
    one_hot = np.eye(3)
    clips = [ClipScores("a1", 0, one_hot[[1, 1]], "a"), ClipScores("b1", 2, one_hot[[2]], "b"),
             ClipScores("a2", 0, one_hot[[0, 0, 0]], "a")]  # fmt: skip
    joined = join_tracks(clips)
    assert [(t.key, t.label, t.track) for t in joined] == [("a", 0, "a"), ("b", 2, "b")]
    assert joined[0].probs.tolist() == one_hot[[1, 1, 0, 0, 0]].tolist()
    # Track a is wrong for two answers, then right: heard as one stream, not as two clips.
    assert correct_answers(joined, smoothing="none").tolist() == [[False, False, True, True, True], [True] * 5]
    with pytest.raises(ParameterError, match="2 labels"):
        join_tracks([ClipScores("a1", 0, one_hot[[0]], "a"), ClipScores("a2", 1, one_hot[[1]], "a")])
    with pytest.raises(ParameterError, match="no track"):
        join_tracks([ClipScores("x", 0, one_hot[[0]])])


def test_random_starts_are_seeded_per_clip_uniform_and_wrap_around():
    starts = [random_start(f"clip-{i}", 4, seed=0) for i in range(400)]
    assert starts == [random_start(f"clip-{i}", 4, seed=0) for i in range(400)]  # the same clip, the same start
    assert starts != [random_start(f"clip-{i}", 4, seed=1) for i in range(400)]
    counts = np.bincount(starts, minlength=4)
    assert counts.min() > 70  # 100 expected per value; below 70 has a probability under 1e-3 for a uniform draw
    # Window j answers label j: from start s, the answers are s, s+1, ..., wrapping to 0.
    clips = [ClipScores(f"clip-{i}", 0, np.eye(5)) for i in range(20)]
    right = correct_answers(clips, smoothing="none", order="random_start", seed=3)
    for clip, row in zip(clips, right):
        s = random_start(clip.key, 5, seed=3)
        assert row.tolist() == [(s + k) % 5 == 0 for k in range(5)]


# ------------------------------------------------------------------ runs, bundles and folds


@dataclass(frozen=True)
class Model:
    run: Path
    bundle: Path
    corpus: Path


@pytest.fixture(scope="module")
def lstm(small_bundle, tmp_path_factory) -> Model:
    """A tiny LSTM on small_bundle's corpus (1 epoch) and its fp32 ONNX bundle: the frame-vector path."""
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    base = tmp_path_factory.mktemp("lstm")
    cfg = TrainConfig(data=str(small_bundle.corpus), out=str(base / "run"), cache=str(small_bundle.cache), model="lstm", window=1.0,
                      seed=0, batch_size=8, epochs=1, patience=1, augment=False, mixup=0.0, model_options={"hidden": 8},
                      backbone="none")  # fmt: skip
    run = train_run(cfg, progress=False)
    bundle = export_run(run, base / "bundle", formats="onnx", progress=False, latency_runs=1, data=str(small_bundle.corpus))
    return Model(run, bundle, small_bundle.corpus)


@pytest.fixture(params=["cnn", "lstm"])
def model(request, small_bundle) -> Model:
    if request.param == "cnn":
        return Model(small_bundle.run, small_bundle.bundle, small_bundle.corpus)
    return request.getfixturevalue("lstm")


def test_a_runs_curve_ends_on_the_clip_accuracy_evaluate_reports(model, tmp_path):
    from pyharmonies.training.evaluate import evaluate_run

    want = evaluate_run(model.run, model.corpus, split="all", progress=False, out=tmp_path / "eval")["clip"]
    curve = measure(model.run, model.corpus, split="all", smoothing="mean", progress=False)
    assert curve["clips"] == want["n"] == 12
    assert curve["from_start"]["final"] == curve["random_start"]["final"] == curve["clip_accuracy"] == want["accuracy"]
    seconds = np.asarray(curve["seconds"])
    assert np.all(np.diff(seconds) > 0)
    # Every synthetic clip is its own track: joined per track, nothing changes.
    tracks = measure(model.run, model.corpus, split="all", smoothing="mean", per="track", progress=False)
    assert tracks["per"] == "track" and tracks["clips"] == 12
    assert tracks["from_start"]["correct"] == curve["from_start"]["correct"]
    # 1 s windows (43 frames) every 0.5 s (22 frames) over 3 s clips: the first answer after one window.
    assert curve["window_frames"] == 43 and curve["hop_frames"] == 22
    np.testing.assert_allclose(seconds, (43 + 22 * np.arange(seconds.size)) * 512 / 22050, rtol=1e-12)
    assert curve["first_answer_seconds"] == seconds[0]


def test_a_bundles_curve_ends_on_the_clip_accuracy_evaluate_reports_without_torch(model):
    """The CNN's windows, or the LSTM's stateful results (listen's default path for it), voted as evaluate votes."""
    streaming = json.loads((model.bundle / "manifest.json").read_text())["model"]["name"] == "lstm"
    code = (
        "import json, sys\n"
        "from pyharmonies.training.bundle_eval import evaluate_bundle\n"
        "from pyharmonies.training.latency import measure\n"
        f"b, d = {str(model.bundle)!r}, {str(model.corpus)!r}\n"
        f"want = evaluate_bundle(b, d, split='all', backend='onnx', precision='fp32', streaming={streaming})['clip']['accuracy']\n"
        "c = measure(b, d, split='all', smoothing='mean', backend='onnx', precision='fp32', progress=False)\n"
        "print(json.dumps([want, c['from_start']['final'], c['random_start']['final'], c['clips'], c['path'], "
        "c['clip_accuracy'], 'torch' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    want, start, random, clips, path, vote, torch_loaded = json.loads(out.stdout)
    assert start == vote == want and clips == 12 and path == ("stateful" if streaming else "windowed")
    if not streaming:  # the same windows in another order; a stateful stream from elsewhere gives other results
        assert random == want
    assert torch_loaded is False


def _fake_folds(run: Path, corpus: Path, base: Path) -> Path:
    """A two-fold "cross-validation" of one run's copies, each testing half of the clips."""
    from pyharmonies.data.sources import open_dataset

    keys = sorted(c.key for c in open_dataset(corpus).clips)
    folds = base / "folds"
    for k, half in enumerate((keys[::2], keys[1::2])):
        fold = Path(shutil.copytree(run, folds / f"fold-{k}"))
        splits = json.loads((fold / "splits.json").read_text())
        splits["splits"]["test"] = half
        (fold / "splits.json").write_text(json.dumps(splits))
    shutil.copy(run / "config.json", folds / "config.json")
    return folds


def _two_clip_tracks(corpus: Path, tmp_path: Path) -> Path:
    """A manifest of the corpus's clips regrouped as two-clip tracks (4 clips per label, in order)."""
    rows = (corpus / "manifest.csv").read_text().splitlines()
    regrouped = ["path,label,track_id"]
    for i, row in enumerate(rows[1:]):
        path, label = row.split(",")[:2]
        regrouped.append(f"{corpus / path},{label},{label}-{i // 2}")
    manifest = tmp_path / "tracks.csv"
    manifest.write_text("\n".join(regrouped) + "\n")
    return manifest


def test_per_track_hears_a_tracks_clips_as_one_stream(small_bundle, tmp_path):
    """The same clips regrouped as two-clip tracks: half as many streams, each twice as long."""
    manifest = _two_clip_tracks(small_bundle.corpus, tmp_path)
    clips = measure(small_bundle.run, manifest, split="all", smoothing="mean", progress=False)
    tracks = measure(small_bundle.run, manifest, split="all", smoothing="mean", per="track", progress=False)
    assert (clips["clips"], tracks["clips"]) == (12, 6)
    assert len(tracks["seconds"]) == 2 * len(clips["seconds"])
    assert tracks["seconds"][: len(clips["seconds"])] == clips["seconds"]  # one hop between answers throughout


def test_a_cross_validation_pools_each_folds_test_clips(small_bundle, tmp_path):
    folds = _fake_folds(small_bundle.run, small_bundle.corpus, tmp_path)
    pooled = measure(folds, small_bundle.corpus, smoothing="mean", progress=False)
    whole = measure(small_bundle.run, small_bundle.corpus, split="all", smoothing="mean", progress=False)
    assert pooled["folds"] == 2 and pooled["clips"] == 12 and pooled["name"] == "folds"
    # The same model in both folds: pooling its halves gives the whole set's curve.
    assert pooled["from_start"]["correct"] == whole["from_start"]["correct"]
    assert pooled["random_start"]["correct"] == whole["random_start"]["correct"]  # starts are seeded per clip
    with pytest.raises(ParameterError, match="cross-validation"):
        measure(folds, small_bundle.corpus, split="all", progress=False)


# ------------------------------------------------------------------ an LSTM bundle, statefully


def _clip_features(model: Model) -> dict[str, tuple[Path, np.ndarray]]:
    """Each clip's path and raw frame vectors, by key, computed as listen computes them."""
    from pyharmonies.audio import load
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.windows import input_features

    cfg = load_bundle(model.bundle).feature_config
    return {c.key: (c.path, input_features(load(c.path, cfg.sample_rate), cfg, "frame_vector")) for c in open_dataset(model.corpus).clips}


def test_an_lstm_bundles_answers_are_its_stateful_stream_from_the_start_and_from_a_random_point(lstm):
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import softmax
    from pyharmonies.runtime.streaming import classify_file_streaming, open_streamer, stream_logits

    stateful = score_clips(lstm.bundle, lstm.corpus, split="all", backend="onnx", precision="fp32", progress=False, seed=3)
    windowed = score_clips(lstm.bundle, lstm.corpus, split="all", backend="onnx", precision="fp32", progress=False, streaming=False)
    assert (stateful.path, windowed.path, stateful.seed) == ("stateful", "windowed", 3)
    assert "hop model of 5 steps + step model" in stateful.runtime and "model.fp32.onnx" in windowed.runtime
    streamer = open_streamer(load_bundle(lstm.bundle), "onnx", "fp32")
    features = _clip_features(lstm)
    for clip, win in zip(stateful.clips, windowed.clips):
        path, raw = features[clip.key]
        # From the start: classify --streaming's results for the file, as many as the windows.
        device = np.stack([w.probs for w in classify_file_streaming(streamer, path).windows])
        assert clip.probs.shape == win.probs.shape == device.shape and clip.key == win.key
        np.testing.assert_allclose(clip.probs, device, rtol=0, atol=1e-6)  # the same files and frames
        # The first result is the window model's first window (both fp32 files within 1e-4 of PyTorch in logits).
        np.testing.assert_allclose(clip.probs[0], win.probs[0], rtol=0, atol=2e-4)
        # From a random point: a fresh stream from the drawn window's first frame, wrapping to the clip's start.
        start = 22 * random_start(clip.key, clip.probs.shape[0], 3)
        rolled = np.concatenate([raw[:, start:], raw[:, :start]], axis=1)
        np.testing.assert_allclose(clip.random_probs, softmax(stream_logits(streamer, rolled)[1]), rtol=0, atol=1e-6)
    curve = accuracy_curve(stateful, smoothing="mean", seed=3)
    assert curve["path"] == "stateful" and curve["from_start"]["final"] == curve["clip_accuracy"]
    with pytest.raises(ParameterError, match="streamed with seed 3, not 0"):
        accuracy_curve(stateful)
    with pytest.raises(ParameterError, match="scored per clip: score them per track"):
        accuracy_curve(stateful, seed=3, per="track")
    with pytest.raises(ParameterError, match="training run: it has no step model"):
        score_clips(lstm.run, lstm.corpus, split="all", streaming=True, progress=False)


def test_a_stateful_stream_per_track_carries_its_state_across_the_clips(lstm, tmp_path):
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import softmax
    from pyharmonies.runtime.streaming import open_streamer, stream_logits

    manifest = _two_clip_tracks(lstm.corpus, tmp_path)
    tracks = score_clips(lstm.bundle, manifest, split="all", backend="onnx", precision="fp32", per="track", progress=False)
    assert (tracks.unit, len(tracks.clips)) == ("track", 6)
    streamer = open_streamer(load_bundle(lstm.bundle), "onnx", "fp32")
    features = list(_clip_features(lstm).values())
    for i, track in enumerate(tracks.clips):
        joined = np.concatenate([features[2 * i][1], features[2 * i + 1][1]], axis=1)
        assert track.key == track.track and track.probs.shape[0] == (joined.shape[1] - 43) // 22 + 1  # answers across the join
        np.testing.assert_allclose(track.probs, softmax(stream_logits(streamer, joined)[1]), rtol=0, atol=1e-6)
    curve = accuracy_curve(tracks, per="track")
    assert curve["clips"] == 6 and curve["per"] == "track"


def _bundle_folds(model: Model, base: Path) -> Path:
    """A two-fold "cross-validation" of one bundle's copies, each testing half of the clips (its source run's copy says so)."""
    runs = _fake_folds(model.run, model.corpus, base / "runs")
    folds = base / "bundles"
    for k in range(2):
        fold = Path(shutil.copytree(model.bundle, folds / f"fold-{k}"))
        manifest = json.loads((fold / "manifest.json").read_text())
        manifest["source_run"] = str(runs / f"fold-{k}")
        (fold / "manifest.json").write_text(json.dumps(manifest))
    return folds


def test_a_cross_validation_of_lstm_bundles_streams_each_folds_test_clips(lstm, tmp_path):
    folds = _bundle_folds(lstm, tmp_path)
    options = dict(smoothing="mean", backend="onnx", precision="fp32", progress=False)
    pooled = measure(folds, lstm.corpus, **options)
    whole = measure(lstm.bundle, lstm.corpus, split="all", **options)
    assert (pooled["path"], pooled["folds"], pooled["clips"]) == ("stateful", 2, 12) and "stateful" in pooled["runtime"]
    # The same model in both folds: pooling its halves gives the whole set's curves (random starts are seeded per clip).
    assert pooled["from_start"]["correct"] == whole["from_start"]["correct"]
    assert pooled["random_start"]["correct"] == whole["random_start"]["correct"]
    windowed = measure(folds, lstm.corpus, streaming=False, **options)
    assert windowed["path"] == "windowed" and windowed["clips"] == 12


# ------------------------------------------------------------------ the command line


def test_cli_writes_the_png_the_table_and_the_json_of_a_run_and_a_bundle(small_bundle, tmp_path):
    out = tmp_path / "curve"
    code, stdout, _ = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--split", "all", "--latency-curve", "--quiet",
                             "--with", small_bundle.bundle, "--backend", "onnx", "--names", "cnn run,cnn bundle", "--out", out)  # fmt: skip
    assert code == 0, stdout
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "latency.json").read_text())
    assert [c["name"] for c in record["curves"]] == ["cnn run", "cnn bundle"]
    assert [c["source"] for c in record["curves"]] == ["run", "bundle"]
    assert all(c["smoothing"] == "ema" for c in record["curves"])  # listen's default
    table = (out / "latency.md").read_text()
    assert "| cnn run (cnn) | 12 clips |" in table and "Time to a trustworthy answer" in table
    assert "trustworthy (>= 90% of it) after" in stdout
    # An earlier latency.json joins a new figure without measuring anything again.
    again = tmp_path / "again"
    code, stdout, _ = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--split", "all", "--latency-curve", "--quiet",
                             "--smoothing", "none", "--with", out / "latency.json", "--out", again)  # fmt: skip
    assert code == 0, stdout
    curves = json.loads((again / "latency.json").read_text())["curves"]
    assert [(c["name"], c["smoothing"]) for c in curves] == [("run", "none"), ("cnn run", "ema"), ("cnn bundle", "ema")]


def test_cli_measures_an_lstm_bundle_as_listen_runs_it(lstm, tmp_path):
    base = ("evaluate", lstm.bundle, lstm.corpus, "--split", "all", "--latency-curve", "--quiet", "--backend", "onnx")
    code, stdout, _ = invoke(*base, "--out", tmp_path / "a")
    assert code == 0, stdout
    assert f"{lstm.bundle.name} (lstm, stateful): 12 clips" in stdout and "the mean of every result of each clip" in stdout
    curve = json.loads((tmp_path / "a" / "latency.json").read_text())["curves"][0]
    assert curve["path"] == "stateful" and "hop model" in curve["runtime"]
    table = (tmp_path / "a" / "latency.md").read_text()
    assert "(lstm, stateful)" in table and "Results streamed by" in table and "A *stateful* model" in table
    code, stdout, _ = invoke(*base, "--windowed", "--out", tmp_path / "b")
    assert code == 0 and f"{lstm.bundle.name} (lstm): 12 clips" in stdout
    assert json.loads((tmp_path / "b" / "latency.json").read_text())["curves"][0]["path"] == "windowed"


def test_cli_refuses_what_does_not_fit(small_bundle, tmp_path):
    code, _, err = invoke("evaluate", small_bundle.bundle, small_bundle.corpus, "--split", "all", "--latency-curve")
    assert code == 2 and "give --out" in err  # a bundle is never written into
    code, _, err = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--with", small_bundle.bundle)
    assert code == 2 and "go with --latency-curve" in err
    code, _, err = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--latency-curve", "--backend", "onnx", "--out", tmp_path)
    assert code == 2 and "no bundle is measured" in err
    code, _, err = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--latency-curve", "--streaming", "--out", tmp_path)
    assert code == 2 and "--streaming and --windowed choose a bundle's path; no bundle is measured" in err
    code, _, err = invoke("evaluate", small_bundle.bundle, small_bundle.corpus, "--split", "all", "--latency-curve", "--streaming",
                          "--out", tmp_path / "cnn")  # fmt: skip
    assert code == 1 and "no step model to stream with" in err
    not_latency = tmp_path / "other.json"
    not_latency.write_text("{}")
    code, _, err = invoke("evaluate", small_bundle.run, small_bundle.corpus, "--split", "all", "--latency-curve", "--quiet",
                          "--with", not_latency, "--out", tmp_path / "x")  # fmt: skip
    assert code == 1 and "not a latency file" in err
