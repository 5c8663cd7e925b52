"""Properties of the feature binding over random configurations and signals.

For any valid configuration, any length and any block sizes: no crash, no NaN
or Inf from finite input, the librosa frame count, and streaming (push blocks,
then flush) equal to batch exactly, bit for bit. Unusable input is refused
with the right exception and message.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from pyharmonies.errors import ParameterError
from pyharmonies.features import FEATURE_NAMES, FeatureConfig, StreamingExtractor, extract

SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)
N_FFTS = (256, 512, 1024, 2048, 4096)
MAX_LENGTH = 20000
#: Frames per example at most: hop_length=1 over 20000 samples would be 20000
#: frames (about 0.5 s at n_fft=4096), so short hops get proportionally shorter
#: signals; every hop still meets every length up to hop * MAX_FRAMES.
MAX_FRAMES = 3000

# Bounded run time: each example extracts a signal twice (batch, stream) or more.
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


@st.composite
def configs(draw) -> FeatureConfig:
    n_fft = draw(st.sampled_from(N_FFTS))
    # n_mels up to n_fft / 8 (128 for n_fft >= 1024): mostly what the FFT fills;
    # the rest is refused with "empty mel filter" and not used.
    n_mels = draw(st.integers(1, min(128, n_fft // 8)))
    kwargs = dict(
        sample_rate=draw(st.sampled_from(SAMPLE_RATES)),
        n_fft=n_fft,
        hop_length=draw(st.integers(1, n_fft)),
        win_length=draw(st.integers(1, n_fft)),
        center=draw(st.booleans()),
        n_mels=n_mels,
        htk=draw(st.booleans()),
        n_mfcc=draw(st.integers(1, min(n_mels, 20))),
    )
    try:
        return FeatureConfig(**kwargs)
    except ParameterError as err:
        # The one refusal a drawn configuration may meet.
        assert "empty mel filter" in str(err), err
        reject()


@st.composite
def signals(draw, config: FeatureConfig) -> np.ndarray:
    n = draw(st.integers(0, min(MAX_LENGTH, config.hop_length * MAX_FRAMES)))
    dtype = draw(st.sampled_from(["float32", "float64", "int16"]))
    kind = draw(st.sampled_from(["noise", "silence", "tone", "impulses", "full_scale"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "noise":
        # From far below float32's normal range (1e-30: powers underflow to 0) to loud.
        y = draw(st.sampled_from([1e-30, 1e-6, 0.1, 1.0, 100.0])) * rng.standard_normal(n)
    elif kind == "silence":
        y = np.zeros(n)
    elif kind == "tone":
        y = np.sin(2 * np.pi * rng.uniform(20, config.sample_rate / 2) / config.sample_rate * np.arange(n))
    elif kind == "impulses":
        y = np.zeros(n)
        y[rng.integers(0, max(n, 1), size=min(n, 5))] = 1.0
    else:  # full_scale: the extremes of the PCM range
        y = rng.choice([-1.0, 32767 / 32768], size=n)
    if dtype == "int16":
        return np.clip(np.round(y * 32768), -32768, 32767).astype(np.int16)
    return y.astype(dtype)


@st.composite
def blocks(draw, n: int) -> list[int]:
    """Block sizes to push, cycled until the signal is used up."""
    if draw(st.booleans()):
        return [n + draw(st.integers(1, 5000))]  # one block longer than the clip
    return draw(st.lists(st.integers(1, 5000), min_size=1, max_size=4))


def expected_frames(config: FeatureConfig, n: int) -> int:
    """librosa's frame count, written out independently of the core."""
    if n == 0:
        return 0
    if config.center:
        return 1 + n // config.hop_length
    return 0 if n < config.n_fft else 1 + (n - config.n_fft) // config.hop_length


def stream(ex: StreamingExtractor, y: np.ndarray, sizes: list[int]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ex.features}
    start, i = 0, 0
    while start < y.size:
        stop = start + sizes[i % len(sizes)]
        for name, value in ex.push(y[start:stop]).items():
            parts[name].append(value)
        start, i = stop, i + 1
    for name, value in ex.flush().items():
        parts[name].append(value)
    return {name: np.concatenate(values, axis=1) for name, values in parts.items()}


@PROPERTY_SETTINGS
@given(data=st.data())
def test_streaming_equals_batch_and_frames_are_librosas(data):
    config = data.draw(configs(), label="config")
    y = data.draw(signals(config), label="y")
    sizes = data.draw(blocks(y.size), label="block sizes")
    # All features, or a selection: a selection computes only what it needs.
    features = data.draw(st.none() | st.lists(st.sampled_from(FEATURE_NAMES), min_size=1, unique=True))
    n = y.size
    frames = config.frames(n)
    assert frames == expected_frames(config, n)

    ex = StreamingExtractor(config, features=features)
    streamed = stream(ex, y, sizes)
    if n == 0:
        with pytest.raises(ValueError, match="empty"):
            extract(y, config, features=features)
        assert all(v.shape == (config.feature_size(k), 0) for k, v in streamed.items())
        return

    batch = extract(y, config, features=features)
    assert set(batch) == set(features or FEATURE_NAMES)
    for name, value in batch.items():
        assert value.dtype == np.float32
        assert value.shape == (config.feature_size(name), frames), name
        assert np.isfinite(value).all(), f"{name}: non-finite output for finite input"
        # Exactly, not approximately: the same C code on the same frames.
        assert np.array_equal(streamed[name], value), f"{name}: streaming differs from batch"

    # flush() reset the stream: a second pass, split differently, gives the same frames.
    again = stream(ex, y, [max(1, n // 3), 1, 4999])
    for name, value in batch.items():
        assert np.array_equal(again[name], value), f"{name}: a reset stream differs"

    if features is not None:
        # The values of a feature do not depend on which others were asked for.
        everything = extract(y, config)
        for name, value in batch.items():
            assert np.array_equal(everything[name], value), f"{name}: differs when computed with other features"


@PROPERTY_SETTINGS
@given(
    n=st.integers(1, 5000),
    data=st.data(),
    dtype=st.sampled_from(["float32", "float64"]),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_a_non_finite_sample_is_refused_by_index(n, data, dtype, bad):
    index = data.draw(st.integers(0, n - 1), label="index")
    y = np.zeros(n, dtype=dtype)
    y[index] = bad
    word = "NaN" if np.isnan(bad) else "Inf"
    with pytest.raises(ValueError, match=rf"{word} at index {index}\b"):
        extract(y, FeatureConfig())
    # A stream names the index within the block it was given.
    ex = StreamingExtractor(FeatureConfig(), features=["rms"])
    with pytest.raises(ValueError, match=rf"{word} at index {index}\b"):
        ex.push(y)


@pytest.mark.parametrize("shape", [(2, 100), (100, 2), (1, 1), (3, 4, 5)])
def test_multichannel_input_is_refused(shape):
    y = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match="1-D mono"):
        extract(y, FeatureConfig())
    with pytest.raises(ValueError, match="1-D mono"):
        StreamingExtractor(FeatureConfig()).push(y)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "uint16", "float16", "complex64", "bool", "U1"])
def test_other_dtypes_are_refused(dtype):
    y = np.zeros(1024, dtype=dtype)
    with pytest.raises(TypeError, match="float32, float64 or int16"):
        extract(y, FeatureConfig())
    with pytest.raises(TypeError, match="float32, float64 or int16"):
        StreamingExtractor(FeatureConfig()).push(y)


def test_object_arrays_are_refused():
    with pytest.raises(TypeError):
        extract(np.array([0.1, None, 0.3], dtype=object), FeatureConfig())
