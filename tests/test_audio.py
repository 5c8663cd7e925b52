"""pyharmonies.audio: decoding, mono mixing, resampling, time ranges, errors; the block
reader (equal to whole-file decoding and resampling), header checks, truncated files.

All audio is generated here and written with soundfile (WAV, FLAC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies import audio
from pyharmonies.audio import AudioWarning, iter_blocks, load, probe, resample, to_mono
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


# ------------------------------------------------------------------ blocks


def _blocks(path: Path, sr: int, **kw) -> np.ndarray:
    parts = list(iter_blocks(path, sr, **kw))
    assert all(p.dtype == np.float32 and p.ndim == 1 and p.size for p in parts)
    return np.concatenate(parts)


@pytest.mark.parametrize("orig_sr, target_sr", [(44100, 22050), (48000, 22050), (16000, 22050), (22050, 22050), (8000, 16000)])
@pytest.mark.parametrize("block_s", [1e-4, 0.0117, 0.5, 30.0])
def test_blocks_equal_whole_file_resampling(tmp_path: Path, rng: np.random.Generator, orig_sr: int, target_sr: int, block_s: float):
    # Tolerance 0: soxr's fixed-rate engine gives the same output however its input is cut (python-soxr's
    # one-shot resample feeds the whole signal through the same engine), and the channel mean is per frame.
    y = (0.3 * rng.standard_normal((int(1.3 * orig_sr) + 17, 2))).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, y, orig_sr, subtype="FLOAT")
    whole = resample(to_mono(y), orig_sr, target_sr)
    got = _blocks(path, target_sr, block_s=block_s)
    assert got.shape == whole.shape
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_array_equal(load(path, target_sr), whole)


def test_blocks_of_a_range_equal_the_range_resampled(tmp_path: Path, rng: np.random.Generator):
    y = (0.3 * rng.standard_normal(3 * 44100)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, y, 44100, subtype="FLOAT")
    expected = resample(y[int(0.5 * 44100) : int(2.25 * 44100)], 44100, 22050)
    np.testing.assert_array_equal(_blocks(path, 22050, start_s=0.5, end_s=2.25, block_s=0.1), expected)


def test_block_size_is_bounded_in_samples_whatever_the_channels(tmp_path: Path, monkeypatch):
    import soundfile

    path = tmp_path / "many.wav"
    sf.write(path, np.zeros((20000, 48), np.float32), 8000, subtype="PCM_16")
    reads = []
    original = soundfile.SoundFile.read
    monkeypatch.setattr(soundfile.SoundFile, "read", lambda self, frames=-1, **kw: reads.append(frames) or original(self, frames, **kw))
    monkeypatch.setattr(audio, "MAX_BLOCK_SAMPLES", 48 * 1000)
    assert _blocks(path, 8000, block_s=10.0).size == 20000
    assert max(reads) == 1000  # 10 s asked, but never more than MAX_BLOCK_SAMPLES samples at once


def test_header_errors_come_at_the_call_and_decoding_errors_while_iterating(tmp_path: Path):
    with pytest.raises(AudioError, match="nowhere.wav: no such file"):
        iter_blocks(tmp_path / "nowhere.wav", 22050)  # not a lazy generator: the header is checked now
    y = np.zeros(3 * 8000, np.float32)
    y[2 * 8000 + 5] = np.inf
    path = tmp_path / "late-inf.wav"
    sf.write(path, y, 8000, subtype="FLOAT")
    blocks = iter_blocks(path, 8000, block_s=1.0)
    assert next(blocks).size == 8000 and next(blocks).size == 8000  # the first two seconds are fine
    with pytest.raises(AudioError, match=r"late-inf.wav: decoded samples contain NaN or Inf \(first at 2.001 s\)"):
        next(blocks)


# ------------------------------------------------------------------ headers


def _wav_with(tmp_path: Path, name: str, *, rate: int | None = None, channels: int | None = None, data_bytes: int | None = None,
              keep: float = 1.0) -> Path:  # fmt: skip
    """A 1 s 16-bit stereo WAV at 8 kHz, its header fields overwritten, its bytes cut to ``keep``."""
    import struct

    path = tmp_path / name
    sf.write(path, np.zeros((8000, 2), np.float32), 8000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    assert raw[36:40] == b"data"  # soundfile writes the canonical 44-byte header
    if rate is not None:
        raw[24:28] = struct.pack("<I", rate)
    if channels is not None:
        raw[22:24] = struct.pack("<H", channels)
    if data_bytes is not None:
        raw[40:44] = struct.pack("<I", data_bytes)
    path.write_bytes(bytes(raw[: int(len(raw) * keep)]))
    return path


@pytest.mark.parametrize("rate", [1, 999, 768_001, 100_000_000])
def test_an_absurd_sample_rate_is_refused_naming_the_file(tmp_path: Path, rate: int):
    path = _wav_with(tmp_path, "rate.wav", rate=rate)
    with pytest.raises(AudioError, match=rf"rate.wav: the header claims a sample rate of {rate} Hz, outside 1000..768000 Hz"):
        probe(path)
    with pytest.raises(AudioError, match="rate.wav"):
        load(path, 22050)


def test_too_many_channels_are_refused(tmp_path: Path):
    path = _wav_with(tmp_path, "ch.wav", channels=200)
    with pytest.raises(AudioError, match=f"ch.wav: the header claims 200 channels; at most {audio.MAX_CHANNELS} are supported"):
        iter_blocks(path, 22050)


def test_an_absurd_length_is_refused_naming_the_file(tmp_path: Path):
    # FLAC's STREAMINFO holds a 36-bit sample count that libsndfile believes: 2**36 - 1 frames in a small file.
    path = tmp_path / "long.flac"
    sf.write(path, tone(440, 1.0, 8000), 8000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"fLaC"
    raw[8 + 13] |= 0x0F  # the count's top 4 bits, then 4 bytes
    raw[8 + 14 : 8 + 18] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(raw))
    assert sf.info(str(path)).frames == 2**36 - 1
    with pytest.raises(AudioError, match=r"long.flac: the header claims 68719476735 frames .* more than a FLAC file of \d+ bytes can hold"):
        load(path, 8000)


def test_a_truncated_wav_is_used_with_a_warning_saying_how_much(tmp_path: Path):
    path = _wav_with(tmp_path, "cut.wav", keep=0.6)  # 1 s claimed, 0.6 s of it left (less the header)
    info = probe(path)
    assert info.claimed_frames == 8000 and info.frames < 8000
    with pytest.warns(AudioWarning, match=r"cut.wav: truncated: read 0.60 s of the 1.00 s its header claims"):
        y = load(path, 8000)
    assert y.size == info.frames


def test_a_header_claiming_more_data_than_the_file_has_is_a_truncated_file(tmp_path: Path):
    path = _wav_with(tmp_path, "big.wav", data_bytes=10 * 32000)  # claims 10 s, holds 1 s
    with pytest.warns(AudioWarning, match=r"big.wav: truncated: read 1.00 s of the 10.00 s"):
        assert load(path, 8000).size == 8000


def test_a_streaming_writers_unknown_length_is_not_truncation(tmp_path: Path, recwarn):
    path = _wav_with(tmp_path, "live.wav", data_bytes=0xFFFFFFFF)  # "unknown": libsndfile reads to the end
    assert load(path, 8000).size == 8000 and not recwarn.list


def test_probe_describes_a_good_file(tmp_path: Path):
    path = tmp_path / "ok.flac"
    sf.write(path, np.zeros((16000, 2), np.float32), 16000, subtype="PCM_24")
    info = probe(path)
    assert (info.sample_rate, info.frames, info.channels, info.format, info.subtype) == (16000, 16000, 2, "FLAC", "PCM_24")
    assert info.duration == 1.0 and info.claimed_frames is None
