"""pyharmonies.windows (device side): input kinds, streamed input features, the window
cutter against make_windows/take_window, the data package's re-exports; and
pyharmonies.npyframes, the frame-by-frame .npy writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyharmonies import windows
from pyharmonies.errors import ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, extract
from pyharmonies.npyframes import HEADER_BYTES, NpyFrameWriter
from pyharmonies.windows import (
    InputFeatureStream,
    WindowCutter,
    input_features,
    kind_features,
    kind_rows,
    make_windows,
    silence_values,
    take_window,
)

CONFIG = FeatureConfig(n_mels=32, n_mfcc=13)


def _splits(n: int, rng: np.random.Generator) -> list[int]:
    """Cut points of ``n`` items into awkward pieces: empty ones, single ones, big ones."""
    sizes = [0, 1, 1, 2, 7, 0, 64, 3, 200, 1]
    cuts, at = [], 0
    while at < n:
        at = min(n, at + sizes[len(cuts) % len(sizes)] + int(rng.integers(0, 5)))
        cuts.append(at)
    return cuts


def test_kinds_and_their_rows():
    assert kind_features("log_mel") == ("log_mel",) and kind_features("frame_vector") == FRAME_VECTOR_FEATURES
    assert kind_rows(CONFIG, "log_mel") == 32 and kind_rows(CONFIG, "frame_vector") == 13 + 8
    with pytest.raises(ParameterError, match="unknown input kind 'chroma'; expected log_mel or frame_vector"):
        kind_features("chroma")


@pytest.mark.parametrize("kind", windows.INPUT_KINDS)
def test_input_features_stack_the_kinds_features_in_order(kind, rng):
    y = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    feats = extract(y, CONFIG)
    expected = np.concatenate([feats[name] for name in kind_features(kind)], axis=0)
    got = input_features(y, CONFIG, kind)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_streamed_input_features_equal_the_whole_signals(rng):
    # Exactly: the native streaming extractor runs the same C code on the same frames.
    y = (0.1 * rng.standard_normal(30_000)).astype(np.float32)
    stream = InputFeatureStream(CONFIG, windows.INPUT_KINDS)
    parts = {kind: [] for kind in windows.INPUT_KINDS}
    edges = [0, *_splits(y.size, rng)]
    for a, b in zip(edges[:-1], edges[1:]):
        for kind, frames in stream.push(y[a:b]).items():
            parts[kind].append(frames)
    for kind, frames in stream.flush().items():
        parts[kind].append(frames)
    for kind in windows.INPUT_KINDS:
        np.testing.assert_array_equal(np.concatenate(parts[kind], axis=1), input_features(y, CONFIG, kind))


@pytest.mark.parametrize(("frames", "window", "hop"), [(0, 4, 2), (1, 4, 2), (3, 4, 2), (4, 4, 2), (10, 4, 3), (10, 3, 5), (57, 8, 1), (200, 43, 21)])
def test_the_cutter_gives_make_windows_cut_by_take_window(frames, window, hop, rng):
    features = rng.standard_normal((5, frames)).astype(np.float32)
    pad = np.arange(5, dtype=np.float32) - 100
    expected = [take_window(features, w.start, window, pad) for w in make_windows([frames], window, hop)]
    cutter = WindowCutter(5, window, hop, pad)
    got, starts = [], []
    edges = [0, *_splits(frames, rng)]
    for a, b in zip(edges[:-1], edges[1:]):
        w, s = cutter.push(features[:, a:b])
        got.extend(w), starts.extend(s)
        assert cutter._buf.shape[1] < window + (b - a)  # only what a coming window needs is kept
    w, s = cutter.finish()
    got.extend(w), starts.extend(s)
    assert starts == [w.start for w in make_windows([frames], window, hop)]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert cutter.frames == 0  # finish() resets: the next push starts a new clip


def test_the_cutter_copies_and_checks_its_input():
    cutter = WindowCutter(2, 3, 1, 0.0)
    block = np.zeros((2, 4), np.float32)
    windows_, _ = cutter.push(block)
    block[:] = 7  # the caller's buffer is reused: kept frames and windows must not change
    more, _ = cutter.push(np.ones((2, 1), np.float32))
    assert np.all(windows_ == 0) and np.array_equal(more[0], [[0, 0, 1], [0, 0, 1]])
    with pytest.raises(ParameterError, match=r"frames must be \(rows, k\) = \(2, k\)"):
        cutter.push(np.zeros((3, 1)))
    with pytest.raises(ParameterError, match="hop must be an integer >= 1"):
        WindowCutter(2, 3, 0, 0.0)


def test_the_data_package_uses_the_device_sides_windows():
    from pyharmonies.data import windows as data_windows

    for name in ("Window", "WindowCutter", "make_windows", "silence_values", "take_window", "window_frames", "window_starts"):
        assert getattr(data_windows, name) is getattr(windows, name), name  # one definition, not a copy


def test_silence_values_are_the_input_features_of_zeros():
    zeros = np.zeros(4 * CONFIG.n_fft + 8 * CONFIG.hop_length, np.float32)
    for kind, values in silence_values(CONFIG).items():
        feats = input_features(zeros, CONFIG, kind)
        np.testing.assert_array_equal(values, feats[:, feats.shape[1] // 2])
        assert not values.flags.writeable


# ------------------------------------------------------------------ npyframes


def test_npy_frames_load_like_any_npy(tmp_path: Path, rng):
    x = rng.standard_normal((21, 300)).astype(np.float32)
    path = tmp_path / "x.npy"
    with open(path, "wb") as fh:
        out = NpyFrameWriter(fh, 21)
        edges = [0, *_splits(300, rng)]
        for a, b in zip(edges[:-1], edges[1:]):
            out.write(x[:, a:b])
        out.close()
    assert out.frames == 300 and path.stat().st_size == HEADER_BYTES + x.nbytes
    for loaded in (np.load(path, allow_pickle=False), np.load(path, mmap_mode="r")):
        assert loaded.shape == (21, 300) and loaded.dtype == np.float32 and loaded.flags.f_contiguous
        np.testing.assert_array_equal(loaded, x)
    with open(path, "wb") as fh:  # no frames at all is a valid (21, 0) array
        NpyFrameWriter(fh, 21).close()
    assert np.load(path).shape == (21, 0)
    with open(tmp_path / "y.npy", "wb") as fh, pytest.raises(ParameterError, match=r"blocks must be \(rows, k\) = \(21, k\)"):
        NpyFrameWriter(fh, 21).write(x[:3])
