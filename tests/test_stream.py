"""Streaming (issue 5): ring buffer, smoothing, sliding windows, `harmonies listen`, `harmonies devices`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.stream import RingBuffer, Smoother

from _prebuilt import prebuilt

CNN_OPTIONS = {"blocks": ((1, 8, 1, 1), (2, 16, 1, 2)), "last_channels": 32}


def invoke(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


# ------------------------------------------------------------------ ring buffer


def test_ring_wraps_around_in_order():
    ring = RingBuffer(10)
    x = np.arange(100, dtype=np.float32)
    got, pos = [], 0
    for n_write, n_read in [(7, 5), (6, 4), (5, 9), (8, 8), (3, 3)]:
        assert ring.write(x[pos : pos + n_write]) == n_write
        pos += n_write
        got.append(ring.read(n_read))
    np.testing.assert_array_equal(np.concatenate(got), x[:pos])
    assert ring.available == 0 and ring.overflows == 0


def test_ring_counts_overflow_and_keeps_the_oldest():
    ring = RingBuffer(8)
    assert ring.write(np.arange(5, dtype=np.float32)) == 5
    assert ring.write(np.arange(5, 11, dtype=np.float32)) == 3
    assert ring.overflows == 3 and ring.overflow_events == 1
    np.testing.assert_array_equal(ring.read(), np.arange(8, dtype=np.float32))
    assert ring.write(np.zeros(20, dtype=np.float32)) == 8
    assert ring.overflows == 15 and ring.overflow_events == 2


def test_ring_write_never_allocates():
    ring = RingBuffer(4096)
    block = np.ones(1000, dtype=np.float32)
    out = np.empty(1000, dtype=np.float32)
    for _ in range(10):  # warm up
        ring.write(block)
        ring.read_into(out)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        ring.write(block)
        ring.read_into(out)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 4096, f"ring write/read allocated {grown} bytes over 1000 calls"
    assert ring._buf.nbytes == 4096 * 4


# ------------------------------------------------------------------ smoothing


def test_ema_math():
    s = Smoother("ema", 2, alpha=0.25)
    np.testing.assert_allclose(s(np.array([1.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(s(np.array([0.0, 1.0])), [0.75, 0.25], rtol=1e-6)
    np.testing.assert_allclose(s(np.array([0.0, 1.0])), [0.5625, 0.4375], rtol=1e-6)


def test_vote_math():
    s = Smoother("vote", 3, n=3)
    s(np.array([0.6, 0.3, 0.1]))
    s(np.array([0.1, 0.8, 0.1]))
    p = s(np.array([0.1, 0.7, 0.2]))
    np.testing.assert_allclose(p, [1 / 3, 2 / 3, 0.0], atol=1e-6)
    p = s(np.array([0.0, 0.0, 1.0]))  # window 1 leaves the vote
    np.testing.assert_allclose(p, [0.0, 2 / 3, 1 / 3], atol=1e-6)
    assert int(p.argmax()) == 1


def test_none_passes_through():
    p = np.array([0.2, 0.8], dtype=np.float32)
    np.testing.assert_allclose(Smoother("none", 2)(p), p)


@pytest.mark.parametrize("method", ["ema", "vote", "none"])
def test_no_nan_on_zeros_or_nan(method):
    s = Smoother(method, 4)
    for p in (np.zeros(4), np.full(4, np.nan), np.array([np.inf, 0, 0, 0]), np.zeros(4)):
        out = s(p)
        assert np.all(np.isfinite(out)) and abs(float(out.sum()) - 1.0) < 1e-5


def test_unknown_smoothing_is_refused():
    with pytest.raises(ValueError, match="ema, vote, none"):
        Smoother("median", 3)


# ------------------------------------------------------------------ sliding windows (no model)


class _Recorder:
    """A fake classifier that records the windows it sees."""

    labels = ("a", "b")

    def __init__(self):
        self.seen = []

    def predict(self, window):
        self.seen.append(np.array(window))
        return np.array([0.25, 0.75], dtype=np.float32)


@pytest.mark.parametrize("block", [37, 700, 4096])
def test_sliding_windows_match_offline_alignment(block, rng):
    from pyharmonies.features import FeatureConfig
    from pyharmonies.runtime.classifier import input_features
    from pyharmonies.runtime.files import window_starts
    from pyharmonies.stream import SlidingClassifier

    config = FeatureConfig(n_mels=32)
    y = (0.1 * rng.standard_normal(22050 * 2)).astype(np.float32)
    W, hop = 20, 7
    rec = _Recorder()
    slider = SlidingClassifier(rec, config, "log_mel", W, hop, "none", max_pending=0)
    results = []
    for i in range(0, len(y), block):
        results += slider.push(y[i : i + block])
    results += slider.finish()
    feats = input_features(y, config, "log_mel")
    starts = window_starts(feats.shape[1], W, hop)
    assert [r.start_frame for r in results] == starts
    for s, w in zip(starts, rec.seen):
        np.testing.assert_array_equal(w, feats[:, s : s + W])
    assert slider.dropped == 0


def test_sliding_drops_the_oldest_when_behind():
    from pyharmonies.features import FeatureConfig
    from pyharmonies.stream import SlidingClassifier

    config = FeatureConfig(n_mels=32)
    rec = _Recorder()
    slider = SlidingClassifier(rec, config, "log_mel", 4, 1, "none", max_pending=3)
    results = slider.push(np.zeros(512 * 40, dtype=np.float32))  # ~40 frames at once: 37 windows pending
    assert len(results) == 3 and slider.dropped == slider.frames_seen - 3 - 3
    assert [r.start_frame for r in results] == [slider.frames_seen - 6, slider.frames_seen - 5, slider.frames_seen - 4]
    assert all(np.isfinite(r.probs).all() for r in results)


# ------------------------------------------------------------------ a tiny bundle


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 classes x 4 clips x 3 s; a tiny CNN, 2 epochs; fp32 ONNX bundle; a clip as a wav.
    Made beforehand where ``HARMONIES_PREBUILT`` is set (tests/conftest.py, ``prebuilt``)."""
    made = prebuilt("stream")
    if made is not None:
        return made / "bundle", made / "clip.wav"
    return make_tiny(tmp_path_factory.mktemp("stream"))


def make_tiny(base: Path) -> tuple[Path, Path]:
    """Train and export the bundle of :func:`tiny` under ``base``; its bundle and clip."""
    import soundfile as sf

    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    corpus = base / "synth"
    synth_corpus(corpus, classes=3, clips_per_class=4, seconds=3.0, seed=5, progress=False, jobs=1)
    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="cnn", window=1.0, seed=0,
                      features={"n_mels": 32}, batch_size=8, epochs=2, patience=2, augment=False, mixup=0.0,
                      model_options=CNN_OPTIONS, backbone="none", members=1)  # fmt: skip
    run = train_run(cfg, progress=False)
    bundle = export_run(run, base / "bundle", formats="onnx", allow_drop=True, progress=False, latency_runs=1, data=str(corpus))
    wav = next(corpus.rglob("*.wav"))
    y, sr = sf.read(wav, dtype="float32")
    clip = base / "clip.wav"
    sf.write(clip, np.concatenate([y, y[: sr // 3]]), sr)  # 4 s: not a whole number of hops
    return bundle, clip


def test_listen_fast_json_equals_offline_classification(tiny):
    from pyharmonies.runtime import WindowClassifier, classify_file

    bundle, clip = tiny
    code, out, err = invoke("listen", "--model", bundle, "--source", clip, "--fast", "--json", "--smoothing", "none",
                            "--backend", "onnx")  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    rows = lines[:-1]
    clf = WindowClassifier.open(bundle, backend="onnx")
    offline = classify_file(clf, clip)
    assert len(rows) == len(offline.windows) >= 3 and summary["windows"] == len(rows)
    assert summary["dropped"] == 0 and summary["overflows"] == 0
    for row, w in zip(rows, offline.windows):
        assert row["time"] == pytest.approx(w.end_s, abs=1e-3)
        assert row["top"] == w.label
        np.testing.assert_allclose([row["probs"][name] for name in clf.labels], w.probs, atol=1e-5)
        assert set(row) == {"time", "top", "probs", "latency_ms", "dropped", "overflows"}


def test_listen_text_threshold_and_summary(tiny):
    bundle, clip = tiny
    code, out, _ = invoke("listen", "--model", bundle, "--source", clip, "--fast", "--threshold", "0.9999999", "--smoothing", "ema")
    assert code == 0
    assert "uncertain" in out and "windows classified" in out and "p95" in out


def test_listen_realtime_paces_the_file(tiny):
    import time

    bundle, clip = tiny
    t0 = time.monotonic()
    code, out, _ = invoke("listen", "--model", bundle, "--source", clip, "--duration", "1.5", "--json")
    assert code == 0 and time.monotonic() - t0 >= 1.4
    assert json.loads(out.splitlines()[-1])["summary"]["windows"] >= 1


_NO_TORCH = textwrap.dedent(
    """
    import sys
    from pyharmonies.cli import cli
    code = cli.main(args=sys.argv[1:], prog_name="harmonies", standalone_mode=False)
    print("EXIT", code)
    print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "litert_torch", "librosa", "sklearn", "matplotlib")))
    """
)


def test_listen_never_imports_torch(tiny):
    bundle, clip = tiny
    out = subprocess.run([sys.executable, "-c", _NO_TORCH, "listen", "--model", str(bundle), "--source", str(clip), "--fast", "--json"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout and "EXIT None" in out.stdout


# ------------------------------------------------------------------ CLI


def test_listen_help():
    code, out, _ = invoke("listen", "--help")
    assert code == 0
    for mention in ("--model", "--device", "--source", "--fast", "--window", "--hop", "--smoothing", "--threshold", "--top-k", "--json",
                    "--duration", "--reconnect", "--selftest", "--minutes", "--backend", "Exit status"):  # fmt: skip
        assert mention in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fast"], "--fast replays a --source FILE"),
     (["--selftest", "--source", "x.wav"], "--selftest checks a microphone"),
     (["--window", "0.5", "--source", "x.wav"], "is shorter than the model's window")],  # fmt: skip
)
def test_listen_usage_errors(tiny, args, message):
    bundle, _ = tiny
    code, _, err = invoke("listen", "--model", bundle, *args)
    assert code == 2 and message in err


def test_listen_without_a_model_says_where_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARMONIES_MODEL", raising=False)
    code, _, err = invoke("listen")
    assert code == 2 and "no model: give --model BUNDLE" in err and "make demo" in err


def test_listen_window_averages_windows(tiny):
    bundle, clip = tiny
    base = ["listen", "--model", bundle, "--source", clip, "--fast", "--json", "--smoothing", "none", "--backend", "onnx"]
    _, one, _ = invoke(*base)
    code, two, _ = invoke(*base, "--window", "1.5", "--hop", "0.5")  # the model's window is 1 s: 2 windows per result
    assert code == 0
    rows1 = [json.loads(line) for line in one.splitlines()[:-1]]
    rows2 = [json.loads(line) for line in two.splitlines()[:-1]]
    assert len(rows2) >= 2
    labels = list(rows1[0]["probs"])
    # hop 0.5 s is the bundle's hop here (half a window), so the results pair up with plain ones
    for k in range(1, len(rows2)):
        want = (np.array([rows1[k - 1]["probs"][n] for n in labels]) + np.array([rows1[k]["probs"][n] for n in labels])) / 2
        np.testing.assert_allclose([rows2[k]["probs"][n] for n in labels], want, atol=1e-5)


def test_devices_reports_clearly():
    code, out, err = invoke("devices")
    assert (code == 0 and "Hz" in out) or (code == 1 and ("no audio input devices" in err or "PortAudio" in err))


def test_sigterm_ends_listen_cleanly_with_a_summary(tiny):
    import signal
    import time

    bundle, clip = tiny
    with subprocess.Popen([sys.executable, "-m", "pyharmonies.cli", "listen", "--model", str(bundle), "--source", str(clip), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:  # fmt: skip
        for line in proc.stderr:  # wait until it replays
            if line.startswith("replaying"):
                break
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)  # what `systemctl stop` sends
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert 1.0 <= summary["audio_s"] < 4.0  # stopped early, not at the end of the 4 s clip
