"""The Python feature API: configuration, batch extraction, streaming, errors.

Agreement with librosa lives in tests/parity/; random property tests in
test_features_properties.py. Here: the contract of the API itself.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyharmonies.errors import HarmoniesError, ParameterError
from pyharmonies.features import (
    FEATURE_NAMES,
    FRAME_VECTOR_FEATURES,
    FeatureConfig,
    StreamingExtractor,
    extract,
    frame_vector,
)

SR = 22050


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """Two seconds of tones and noise with a nonzero first sample."""
    rng = np.random.default_rng(1234)
    t = np.arange(2 * SR) / SR
    y = 0.4 * np.sin(2 * np.pi * 330 * t + 0.3) + 0.2 * np.sin(2 * np.pi * 2200 * t) + 0.05 * rng.standard_normal(t.size)
    return y.astype(np.float32)


# ---------------------------------------------------------------- FeatureConfig


def test_defaults_are_the_documented_contract():
    c = FeatureConfig()
    assert (c.sample_rate, c.n_fft, c.win_length, c.hop_length) == (22050, 1024, 1024, 512)
    assert (c.window, c.center, c.n_mels, c.fmin, c.fmax, c.htk) == ("hann", True, 64, 0.0, 11025.0, False)
    assert (c.n_mfcc, c.ref, c.amin) == (20, 1.0, 1e-10)


def test_json_round_trip_and_resolved_fields():
    c = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, htk=True, fmin=50.0)
    text = c.to_json()
    data = json.loads(text)
    assert data["fmax"] == 8000.0 and data["win_length"] == 512  # None resolved
    assert FeatureConfig.from_json(text) == c
    assert hash(FeatureConfig.from_json(text)) == hash(c)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        FeatureConfig().n_fft = 2048  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        (dict(n_fft=1000), "n_fft=1000"),
        (dict(n_fft=128, hop_length=64), "n_fft=128"),
        (dict(n_fft=8192), "n_fft=8192"),
        (dict(hop_length=2048), "hop_length=2048"),
        (dict(hop_length=0), "hop_length=0"),
        (dict(win_length=2048), "win_length=2048"),
        (dict(fmax=12000.0), "fmax=12000.0"),
        (dict(fmin=-1.0), "fmin=-1.0"),
        (dict(fmin=9000.0, fmax=8000.0), "fmin=9000.0"),
        (dict(n_mels=0), "n_mels=0"),
        (dict(n_mfcc=65), "n_mfcc=65"),
        (dict(amin=0.0), "amin=0.0"),
        (dict(sample_rate=10), "sample_rate=10"),
        (dict(sample_rate=44100, n_fft=256, hop_length=128, n_mels=128), "empty mel filter"),
    ],
)
def test_invalid_config_names_the_field(kwargs, names):
    with pytest.raises(ParameterError, match=names.replace(".", r"\.")):
        FeatureConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_fft=1024.0), dict(center="yes"), dict(window="hamming"), dict(fmin="0"), dict(n_mels=True)],
)
def test_wrong_types_are_refused(kwargs):
    with pytest.raises(ParameterError):
        FeatureConfig(**kwargs)


def test_from_json_refuses_unknown_fields_and_bad_text():
    with pytest.raises(ParameterError, match="n_fftt"):
        FeatureConfig.from_json('{"n_fftt": 1024}')
    with pytest.raises(ParameterError, match="malformed"):
        FeatureConfig.from_json("{not json")


def test_numpy_scalars_become_plain_values_and_json_works():
    # As they come out of arrays, np.load or a pandas row: the config holds plain Python values.
    assert FeatureConfig(n_mels=np.int64(64)).to_json() == FeatureConfig().to_json()
    c = FeatureConfig(
        sample_rate=np.int64(16000), n_fft=np.int32(512), win_length=np.int16(400), hop_length=np.uint16(160),
        n_mels=np.int64(40), n_mfcc=np.int8(13), fmin=np.float32(50.0), fmax=np.float64(8000.0),
        ref=np.int64(1), amin=np.float64(1e-10), center=np.bool_(True), htk=np.bool_(False), window=np.str_("hann"),
    )  # fmt: skip
    plain = FeatureConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40, n_mfcc=13, fmin=50.0, fmax=8000.0)
    expected = {"sample_rate": int, "n_fft": int, "win_length": int, "hop_length": int, "n_mels": int,
                "n_mfcc": int, "fmin": float, "fmax": float, "ref": float, "amin": float, "center": bool,
                "htk": bool, "window": str}  # fmt: skip
    assert {k: type(v) for k, v in c.to_dict().items()} == expected
    assert c == plain and hash(c) == hash(plain)  # one cache entry, one bundle config
    assert json.loads(c.to_json()) == plain.to_dict()
    assert FeatureConfig.from_json(c.to_json()) == plain
    assert FeatureConfig(n_fft=np.int64(2048)).win_length == 2048 and type(FeatureConfig(n_fft=np.int64(2048)).win_length) is int


def test_errors_share_one_tree():
    assert issubclass(ParameterError, HarmoniesError) and issubclass(ParameterError, ValueError)


def test_workspace_grows_with_selected_features():
    c = FeatureConfig()
    assert 0 < c.workspace_bytes(["zcr"]) < c.workspace_bytes(["log_mel"]) < c.workspace_bytes()


# ---------------------------------------------------------------- extract


def test_extract_returns_every_named_feature_shaped_like_librosa(clip):
    c = FeatureConfig()
    feats = extract(clip, c)
    assert tuple(feats) == FEATURE_NAMES
    frames = 1 + clip.size // c.hop_length
    expected_rows = {"mfcc": 20, "mel": 64, "log_mel": 64, "chroma": 12}
    for name, value in feats.items():
        assert value.shape == (expected_rows.get(name, 1), frames), name
        assert value.dtype == np.float32
        assert np.all(np.isfinite(value)), name


def test_subset_equals_the_full_set(clip):
    full = extract(clip)
    part = extract(clip, features=["spectral_rolloff", "mfcc"])
    assert list(part) == ["spectral_rolloff", "mfcc"]
    for name in part:
        np.testing.assert_array_equal(part[name], full[name])


def test_log_mel_is_db_of_mel(clip):
    feats = extract(clip, features=["mel", "log_mel"])
    # float32 log10 of float32 values: a few ulps of ~100 dB.
    np.testing.assert_allclose(feats["log_mel"], 10 * np.log10(np.maximum(1e-10, feats["mel"].astype(np.float64))), atol=1e-4)


def test_frame_vector_rows_are_the_documented_features(clip):
    fv = frame_vector(clip)
    feats = extract(clip, features=FRAME_VECTOR_FEATURES)
    stacked = np.concatenate([feats[name] for name in FRAME_VECTOR_FEATURES], axis=0)
    assert fv.shape == (28, 1 + clip.size // 512)
    np.testing.assert_array_equal(fv, stacked)


def test_float64_and_int16_inputs(clip):
    ref = extract(clip, features=["log_mel"])["log_mel"]
    np.testing.assert_array_equal(extract(clip.astype(np.float64), features=["log_mel"])["log_mel"], ref)
    pcm = np.round(clip * 20000).astype(np.int16)
    from_pcm = extract(pcm, features=["rms"])["rms"]
    scaled = extract(pcm.astype(np.float32) / 32768.0, features=["rms"])["rms"]
    np.testing.assert_array_equal(from_pcm, scaled)


def test_non_contiguous_input_is_accepted(clip):
    stereo = np.stack([clip, -clip], axis=1)  # (frames, channels)
    left = stereo[:, 0]
    assert not left.flags.c_contiguous
    np.testing.assert_array_equal(extract(left, features=["zcr"])["zcr"], extract(clip, features=["zcr"])["zcr"])


def test_silence_gives_finite_documented_values():
    feats = extract(np.zeros(4000, np.float32))
    for name, value in feats.items():
        assert np.all(np.isfinite(value)), name
    np.testing.assert_array_equal(feats["log_mel"], np.float32(-100.0))  # 10 log10(amin)
    for name in ("zcr", "rms", "spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "chroma", "spectral_flux"):
        np.testing.assert_array_equal(feats[name], 0.0)
    np.testing.assert_array_equal(feats["spectral_flatness"], 1.0)  # all bins at amin


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (np.zeros(0, np.float32), ValueError, "empty"),
        (np.zeros((2, 100), np.float32), ValueError, r"1-D mono.*mean\(axis=1\)"),
        (np.array([0.0, 0.5, np.inf, np.nan]), ValueError, "Inf at index 2"),
        (np.array([0.0, np.nan], np.float32), ValueError, "NaN at index 1"),
        (np.array([0.0, 2e9], np.float32), ValueError, r"sample 1 is 2e\+09.*y / 32768"),
        (np.zeros(100, np.int32), TypeError, "int32"),
        (np.zeros(100, np.complex64), TypeError, "complex64"),
    ],
)
def test_bad_input_is_refused_clearly(bad, error, message):
    with pytest.raises(error, match=message):
        extract(bad)


def test_unknown_feature_names_are_listed():
    with pytest.raises(ParameterError, match="'mffc'.*choose from"):
        extract(np.zeros(100, np.float32), features=["mffc"])
    with pytest.raises(ParameterError, match="empty"):
        extract(np.zeros(100, np.float32), features=[])


def test_config_must_be_a_feature_config():
    with pytest.raises(ParameterError, match="FeatureConfig"):
        extract(np.zeros(100, np.float32), {"n_fft": 1024})  # type: ignore[arg-type]


# ---------------------------------------------------------------- streaming


def _stream(y: np.ndarray, blocks: list[int], config: FeatureConfig, features=None) -> dict[str, np.ndarray]:
    stream = StreamingExtractor(config, features=features)
    parts, start, i = [], 0, 0
    while start < y.size:
        size = blocks[i % len(blocks)]
        parts.append(stream.push(y[start : start + size]))
        start += size
        i += 1
    parts.append(stream.flush())
    return {name: np.concatenate([p[name] for p in parts], axis=1) for name in parts[0]}


# python-soxr's awkward sizes: 1 sample, odd primes, a block longer than the clip.
@pytest.mark.parametrize("blocks", [[1], [17], [509], [44100], [3, 1000, 1, 4096, 7], [10**6]])
@pytest.mark.parametrize("center", [True, False])
def test_stream_equals_batch_exactly(clip, blocks, center):
    c = FeatureConfig(center=center, hop_length=300 if center else 512)
    y = clip[: 12000 if blocks == [1] else clip.size]  # keep the 1-sample case quick
    batch = extract(y, c)
    streamed = _stream(y, blocks, c)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(streamed[name], batch[name], err_msg=name)


def test_stream_of_a_clip_shorter_than_a_frame(clip):
    y = clip[:300]
    streamed = _stream(y, [7], FeatureConfig())
    batch = extract(y)
    assert batch["rms"].shape == (1, 1)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(streamed[name], batch[name], err_msg=name)


def test_flush_starts_a_new_stream_and_reset_forgets(clip):
    c = FeatureConfig()
    stream = StreamingExtractor(c, features=["mfcc"])
    first = np.concatenate([stream.push(clip)["mfcc"], stream.flush()["mfcc"]], axis=1)
    again = np.concatenate([stream.push(clip)["mfcc"], stream.flush()["mfcc"]], axis=1)
    np.testing.assert_array_equal(first, again)
    stream.push(np.ones(5000, np.float32))
    stream.reset()
    after_reset = np.concatenate([stream.push(clip)["mfcc"], stream.flush()["mfcc"]], axis=1)
    np.testing.assert_array_equal(first, after_reset)


def test_push_of_nothing_and_flush_of_nothing():
    stream = StreamingExtractor(features=["rms"])
    assert stream.push(np.zeros(0, np.float32))["rms"].shape == (1, 0)
    assert stream.flush()["rms"].shape == (1, 0)
