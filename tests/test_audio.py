"""pyharmonies.audio: decoding, mono mixing, resampling, time ranges, errors.

All audio is generated here and written with soundfile (WAV, FLAC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.audio import load, resample, to_mono
from pyharmonies.errors import AudioError, HarmoniesError, ParameterError


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the strongest bin of a Hann-windowed spectrum, refined by
    parabolic interpolation of the log magnitude (to a fraction of a bin)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / y.size


# ------------------------------------------------------------------ decoding


def test_float_wav_reads_back_exactly(tmp_path: Path, rng: np.random.Generator):
    y = (0.5 * rng.standard_normal(4000)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, y, 22050, subtype="FLOAT")
    out = load(path, 22050)
    assert out.dtype == np.float32 and out.shape == y.shape
    np.testing.assert_array_equal(out, y)  # same rate: no resampling, float32 stored exactly


def test_int16_pcm_is_scaled_to_unit_range(tmp_path: Path):
    pcm = np.array([0, 16384, -32768, 32767, -1], dtype=np.int16)
    path = tmp_path / "pcm.wav"
    sf.write(path, pcm, 8000, subtype="PCM_16")
    np.testing.assert_array_equal(load(path, 8000), pcm.astype(np.float32) / 32768)


def test_flac_is_decoded(tmp_path: Path):
    y = tone(440, 0.5, 16000)
    path = tmp_path / "x.flac"
    sf.write(path, y, 16000, subtype="PCM_16")
    # FLAC is lossless over 16-bit PCM: the only error is the quantisation, 1/2 LSB.
    np.testing.assert_allclose(load(path, 16000), y, rtol=0, atol=0.5 / 32768 + 1e-7)


def test_stereo_is_mixed_to_the_mean_of_the_channels(tmp_path: Path):
    left, right = tone(440, 0.5, 22050, 0.6), tone(1000, 0.5, 22050, 0.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    # The mean is taken in float64 and rounded once to float32.
    expected = ((left.astype(np.float64) + right) / 2).astype(np.float32)
    np.testing.assert_array_equal(load(path, 22050), expected)


def test_to_mono_leaves_mono_alone_and_refuses_3d():
    y = np.arange(5, dtype=np.float32)
    assert to_mono(y) is y
    with pytest.raises(ParameterError, match="shape"):
        to_mono(np.zeros((2, 2, 2), np.float32))


# ------------------------------------------------------------------ resampling


@pytest.mark.parametrize("orig_sr, target_sr", [(44100, 22050), (16000, 22050), (48000, 16000)])
def test_resampling_keeps_duration_and_pitch(tmp_path: Path, orig_sr: int, target_sr: int):
    seconds, freq = 1.0, 1000.0
    path = tmp_path / f"tone_{orig_sr}.wav"
    sf.write(path, tone(freq, seconds, orig_sr), orig_sr, subtype="FLOAT")
    y = load(path, target_sr)
    assert y.dtype == np.float32
    assert y.size == round(seconds * orig_sr * target_sr / orig_sr)  # soxr: round(n * ratio)
    # A 1 s signal gives 1 Hz bins; interpolation resolves the peak to well
    # under 0.1 Hz for a pure tone, so 0.1 Hz shows the rate is right.
    assert abs(peak_hz(y, target_sr) - freq) < 0.1
    # The amplitude survives (soxr HQ passband ripple is far below 1 %);
    # the first and last 10 ms are skipped for the filter's edge transients.
    edge = target_sr // 100
    assert np.max(np.abs(y[edge:-edge])) == pytest.approx(0.5, rel=0.01)


def test_resample_rejects_bad_rates():
    with pytest.raises(ParameterError, match="positive"):
        resample(np.zeros(10, np.float32), 0, 22050)


# ------------------------------------------------------------------ ranges


def test_start_and_end_select_a_range(tmp_path: Path, rng: np.random.Generator):
    sr = 8000
    y = rng.uniform(-0.5, 0.5, 2 * sr).astype(np.float32)
    path = tmp_path / "r.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    np.testing.assert_array_equal(load(path, sr, start_s=0.5, end_s=1.25), y[4000:10000])
    np.testing.assert_array_equal(load(path, sr, start_s=1.5), y[12000:])
    np.testing.assert_array_equal(load(path, sr, end_s=0.25), y[:2000])
    # An end past the file stops at its end.
    np.testing.assert_array_equal(load(path, sr, start_s=1.75, end_s=10.0), y[14000:])


def test_range_with_resampling_has_the_resampled_length(tmp_path: Path):
    path = tmp_path / "r.wav"
    sf.write(path, tone(440, 2.0, 44100), 44100, subtype="FLOAT")
    assert load(path, 22050, start_s=0.5, end_s=1.5).size == 22050


def test_empty_range_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "short.wav"
    sf.write(path, tone(440, 1.0, 8000), 8000)
    with pytest.raises(AudioError, match="short.wav.*no audio in the range"):
        load(path, 8000, start_s=2.0)
    with pytest.raises(AudioError, match="short.wav"):
        load(path, 8000, start_s=0.5, end_s=0.5)


# ------------------------------------------------------------------ errors


def test_missing_file_names_the_file(tmp_path: Path):
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="nowhere.wav: no such file"):
        load(path, 22050)


@pytest.mark.parametrize(
    "content",
    [b"RIFF\x24\x00\x00\x00WAVEjunk-that-is-not-a-fmt-chunk", b"not audio at all " * 64, bytes(range(256)) * 8],
    ids=["truncated-riff", "text", "binary"],
)
def test_corrupt_file_names_the_file(tmp_path: Path, content: bytes):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="corrupt.wav: cannot decode audio") as info:
        load(path, 22050)
    assert isinstance(info.value, HarmoniesError)


def test_zero_byte_file_names_the_file(tmp_path: Path):
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.flac"):
        load(path, 22050)


def test_audio_file_without_samples_names_the_file(tmp_path: Path):
    path = tmp_path / "silent0.wav"
    sf.write(path, np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioError, match="silent0.wav"):
        load(path, 22050)


def test_non_finite_samples_are_refused(tmp_path: Path):
    y = np.zeros(100, np.float32)
    y[37] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN or Inf"):
        load(path, 8000)


def test_a_directory_is_not_audio(tmp_path: Path):
    with pytest.raises(AudioError, match=str(tmp_path.name)):
        load(tmp_path, 22050)
