"""Memory does not grow with the length of a file (issue 10): classify, features, the feature
cache, bundle evaluation and listen --source read block by block and keep only what a
window needs; and classifying in blocks gives exactly the whole-file path's results.

Peak memory is measured with tracemalloc, which sees every numpy buffer (decoded audio,
resampled audio, feature matrices) but not the native libraries' own small, fixed state;
benchmarks/bench_memory.py measures the whole process (peak RSS) on 1 to 60 minute files.
A file 4x longer must not raise the peak by more than a quarter (plus 256 KiB for the
interpreter's incidental allocations); the whole-file load() is the control: its peak
grows with the file, so the measurement does see decoded audio.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.audio import iter_blocks, load

SHORT_S, LONG_S = 40, 160


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[int, Path]:
    """44.1 kHz stereo 16-bit WAVs of noise and a tone, written in blocks."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(3)
    out = {}
    for seconds in (SHORT_S, LONG_S):
        path = folder / f"rec-{seconds}s.wav"
        with sf.SoundFile(path, "w", samplerate=44100, channels=2, subtype="PCM_16") as f:
            for start in range(0, seconds, 10):
                t = (start * 44100 + np.arange(10 * 44100)) / 44100
                f.write((0.2 * np.sin(2 * np.pi * 330 * t)[:, None] + 0.05 * rng.standard_normal((t.size, 2))).astype(np.float32))
        out[seconds] = path
    return out


def _peak(run) -> float:
    """Bytes allocated at the peak of ``run()`` beyond what was allocated before it."""
    run()  # warm-up: caches (extractor tables, silence values, the runtime's first call) are not the file's
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _flat(name: str, run_on) -> None:
    short, long = (_peak(lambda p=p: run_on(p)) for p in ("short", "long"))
    print(f"{name}: peak {short / 2**20:.2f} MiB for {SHORT_S} s, {long / 2**20:.2f} MiB for {LONG_S} s")
    assert long <= 1.25 * short + 256 * 1024, f"{name}: {long / 2**20:.2f} MiB for {LONG_S} s vs {short / 2**20:.2f} MiB for {SHORT_S} s"


def test_the_control_whole_file_load_grows(recordings):
    short, long = (_peak(lambda p=recordings[s]: load(p, 22050)) for s in (SHORT_S, LONG_S))
    assert long > 3 * short  # 4x the samples: the measurement sees decoded audio


def test_classify_file_is_flat(small_bundle, recordings):
    from pyharmonies.runtime import WindowClassifier, classify_file

    clf = WindowClassifier.open(small_bundle.bundle, backend="onnx")
    _flat("classify_file", lambda which: classify_file(clf, recordings[SHORT_S if which == "short" else LONG_S]))


def test_features_is_flat(recordings):
    from pyharmonies.commands.features import extract_file
    from pyharmonies.features import FEATURE_NAMES, FeatureConfig

    _flat("features", lambda which: extract_file(recordings[SHORT_S if which == "short" else LONG_S], FeatureConfig(), FEATURE_NAMES, None))


def test_the_feature_cache_is_flat(recordings, tmp_path):
    from pyharmonies.data.cache import FeatureCache
    from pyharmonies.features import FeatureConfig

    runs = iter(range(100))

    def compute(which: str) -> None:  # a new cache folder each time: computed, not read back
        cache = FeatureCache(tmp_path / str(next(runs)), FeatureConfig())
        assert cache.ensure([recordings[SHORT_S if which == "short" else LONG_S]], jobs=1, progress=False) == []

    _flat("feature cache", compute)


def test_evaluating_a_bundle_is_flat(small_bundle, recordings, tmp_path):
    from pyharmonies.runtime import load_bundle
    from pyharmonies.training.bundle_eval import evaluate_bundle

    label = load_bundle(small_bundle.bundle).labels[0]
    manifests = {}
    for which, seconds in (("short", SHORT_S), ("long", LONG_S)):
        manifests[which] = tmp_path / f"{which}.csv"
        manifests[which].write_text(f"path,label\n{recordings[seconds]},{label}\n")
    _flat("evaluate_bundle", lambda which: evaluate_bundle(small_bundle.bundle, manifests[which], backend="onnx"))


def test_listen_from_a_file_is_flat(small_bundle, recordings):
    from pyharmonies.runtime import WindowClassifier, load_bundle
    from pyharmonies.stream import FileSource, LiveSession, SlidingClassifier

    bundle = load_bundle(small_bundle.bundle)
    clf = WindowClassifier.open(small_bundle.bundle, backend="onnx")

    def replay(which: str) -> None:
        slider = SlidingClassifier(clf, bundle.feature_config, bundle.kind, bundle.window_frames, bundle.hop_frames, max_pending=0)
        source = FileSource(recordings[SHORT_S if which == "short" else LONG_S], bundle.feature_config.sample_rate, realtime=False)
        LiveSession(slider, source).run(lambda *a: None)

    _flat("listen --source --fast", replay)


def test_classifying_in_blocks_equals_the_whole_file_path(small_bundle, recordings):
    # Exactly: the blocks equal whole-file decoding and resampling (tests/test_audio.py), the streamed
    # features equal extract's, the windows are make_windows's; the runtime sees the same windows.
    from pyharmonies.runtime import WindowClassifier, classify_file, input_features
    from pyharmonies.runtime.files import classify_blocks, feature_windows

    path = recordings[SHORT_S]
    for backend in ("tflite", "onnx"):
        clf = WindowClassifier.open(small_bundle.bundle, backend=backend)
        whole = input_features(load(path, clf.feature_config.sample_rate), clf.feature_config, clf.kind)
        windows, starts = feature_windows(clf, whole)
        expected = clf.predict_batch(windows)
        for result in (classify_file(clf, path),
                       classify_blocks(clf, iter_blocks(path, clf.feature_config.sample_rate, block_s=0.0173), batch_size=5)):  # fmt: skip
            assert [round(w.start_s * clf.feature_config.sample_rate / clf.feature_config.hop_length) for w in result.windows] == starts
            # tflite runs one window at a time: exact. onnxruntime runs batches (32, 5, or all at once
            # above): equal bit for bit on the development machine, but its CPU kernels may be chosen
            # by batch size elsewhere, so 1e-6 on probabilities (float32 rounding of logits ~10).
            atol = 0.0 if backend == "tflite" else 1e-6
            np.testing.assert_allclose(np.stack([w.probs for w in result.windows]), expected, rtol=0, atol=atol)
            np.testing.assert_allclose(result.probs, expected.mean(axis=0), rtol=0, atol=atol)
        assert len(starts) > 32  # more windows than one batch
