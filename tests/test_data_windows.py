"""Fixed windows of frames: counts, starts, padding with the features of silence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyharmonies.data.windows import Window, make_windows, silence_values, take_window, window_frames
from pyharmonies.errors import ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, extract


def test_window_frames():
    assert window_frames(3.0, FeatureConfig()) == 129  # 3 * 22050 / 512 = 129.2
    assert window_frames(1.0, FeatureConfig(sample_rate=16000, hop_length=160)) == 100
    assert window_frames(1e-6, FeatureConfig()) == 1
    for bad in (0, -1.0, "3"):
        with pytest.raises(ParameterError, match="positive number of seconds"):
            window_frames(bad, FeatureConfig())


def test_make_windows_starts_hops_and_short_clips():
    windows = make_windows([10, 3, 0, 7], window=4, hop=3)
    assert windows == [
        Window(0, 0), Window(0, 3), Window(0, 6),  # 9 + 4 > 10: the last 1 frame is not used
        Window(1, 0),  # shorter than a window: one, padded later
        Window(3, 0), Window(3, 3),  # the clip with no frames has none
    ]  # fmt: skip
    with pytest.raises(ParameterError, match="hop must be an integer >= 1"):
        make_windows([10], 4, 0)


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 60), max_size=8), window=st.integers(1, 20), hop=st.integers(1, 20))
def test_windows_cover_whole_clips_only(counts, window, hop):
    windows = make_windows(counts, window, hop)
    for clip, n in enumerate(counts):
        starts = [w.start for w in windows if w.clip == clip]
        if n == 0:
            assert starts == []
        elif n < window:
            assert starts == [0]
        else:
            assert starts == list(range(0, n - window + 1, hop))
            assert starts[-1] + window <= n < starts[-1] + window + hop  # no whole window left out


def test_take_window_copies_and_pads_per_row(rng):
    features = rng.standard_normal((3, 10)).astype(np.float32)
    inside = take_window(features, 2, 5, 0.0)
    np.testing.assert_array_equal(inside, features[:, 2:7])
    inside[:] = 0
    assert features[0, 2] != 0  # a copy
    pad = np.array([-1, -2, -3], np.float32)
    tail = take_window(features, 8, 5, pad)
    np.testing.assert_array_equal(tail[:, :2], features[:, 8:])
    np.testing.assert_array_equal(tail[:, 2:], np.repeat(pad[:, None], 3, axis=1))
    assert tail.flags.c_contiguous and tail.dtype == np.float32
    np.testing.assert_array_equal(take_window(features, 0, 12, -5.0)[:, 10:], -5.0)
    with pytest.raises(ParameterError, match="pad_value has 2 values"):
        take_window(features, 8, 5, pad[:2])


def test_silence_values_are_the_features_of_zeros():
    config = FeatureConfig(n_mels=40, n_mfcc=13)
    values = silence_values(config)
    assert values["log_mel"].shape == (40,) and values["frame_vector"].shape == (13 + 8,)
    np.testing.assert_array_equal(values["log_mel"], -100.0)  # 10 log10(amin) with ref 1
    feats = extract(np.zeros(4096, np.float32), config, features=["log_mel", *FRAME_VECTOR_FEATURES])
    vector = np.concatenate([feats[n] for n in FRAME_VECTOR_FEATURES])
    np.testing.assert_array_equal(values["frame_vector"], vector[:, 3])
    assert values["frame_vector"][0] == pytest.approx(-100 * np.sqrt(40), rel=1e-6)  # the DCT of a constant
    with pytest.raises(ValueError):
        values["log_mel"][0] = 0  # shared, so read-only
