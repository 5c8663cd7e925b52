"""Feature-domain augmentation, checked against the audio-domain operation it stands for.

Oracles: extract() on the scaled signal (gain: exact up to float32
rounding), extract() on the signal plus real white noise (noise: the same
mean level within the noise's own randomness), and counting (masks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.data.augment import (
    AugmentConfig,
    add_noise,
    augment_window,
    band_limit,
    equalize,
    mel_band_centres,
    mix_in,
    random_eq_curve,
    gain,
    mixup_pairs,
    pitch_shift,
    pitch_shift_offline,
    stretch_source_frames,
    spec_augment,
    time_shift,
    time_stretch,
    white_noise_profile,
)
from pyharmonies.errors import ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, extract

CONFIG = FeatureConfig()
SR = CONFIG.sample_rate


def music(seconds: float, rng: np.random.Generator, floor: float = 0.01) -> np.ndarray:
    """Two tones, one gated, over a little noise: every mel band well above amin."""
    t = np.arange(int(seconds * SR)) / SR
    y = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1330 * t) * (t % 0.5 < 0.25)
    return (y + floor * rng.standard_normal(t.size)).astype(np.float32)


def kinds(y: np.ndarray) -> dict[str, np.ndarray]:
    f = extract(y, CONFIG, features=["log_mel", *FRAME_VECTOR_FEATURES])
    return {"log_mel": f["log_mel"], "frame_vector": np.concatenate([f[n] for n in FRAME_VECTOR_FEATURES])}


@pytest.mark.parametrize("gain_db", [-20.0, -6.0, 3.5, 6.0])
def test_gain_equals_features_of_the_scaled_signal(rng, gain_db):
    y = music(1.5, rng)
    before = kinds(y)
    after = kinds(y * np.float32(10 ** (gain_db / 20)))
    assert before["log_mel"].min() > -60  # away from the -100 dB floor, where gain is exact
    # log_mel: x + gain_db; the residue is float32 rounding of dB values near -40..0 (spacing ~4e-6).
    np.testing.assert_allclose(gain(before["log_mel"], "log_mel", gain_db, CONFIG), after["log_mel"], rtol=0, atol=1e-4)
    # frame_vector: MFCC 0 and rms change, the rest is scale-invariant; float32 rounding of the
    # spectra (relative 1e-6) and of MFCC 0 (about -500: spacing 3e-5) is all that remains.
    np.testing.assert_allclose(
        gain(before["frame_vector"], "frame_vector", gain_db, CONFIG), after["frame_vector"], rtol=1e-5, atol=1e-3
    )
    moved = np.abs(gain(before["frame_vector"], "frame_vector", gain_db, CONFIG) - before["frame_vector"]).max(axis=1)
    assert np.flatnonzero(moved > 1e-3).tolist() == [0, CONFIG.n_mfcc + 1]  # MFCC 0 and rms only


def test_gain_keeps_the_silence_floor(rng):
    y = music(1.0, rng)
    y[: SR // 2] = 0.0  # digital silence: mel power 0, at the amin floor
    x = kinds(y)["log_mel"]
    floor = np.float32(-100.0)
    assert (x == floor).any()
    louder, quieter = gain(x, "log_mel", 6.0, CONFIG), gain(x, "log_mel", -80.0, CONFIG)
    assert (louder[x == floor] == floor).all()  # unknown power below amin: stays at the floor
    assert quieter.min() == floor  # nothing goes below the floor
    assert louder.dtype == np.float32 and louder is not x


def test_noise_profile_is_the_mel_power_of_white_noise():
    profile = white_noise_profile(CONFIG)
    assert profile.shape == (CONFIG.n_mels,) and (profile > 0).all()
    noise = np.random.default_rng(99).standard_normal(10 * SR).astype(np.float32)
    measured = extract(noise, CONFIG, features=["mel"])["mel"][:, 4:-4].mean(axis=1)
    # Two independent noise estimates: the narrowest (lowest) bands hold ~2 FFT bins, so
    # 430 frames give about 5 % standard error per band; 20 % is four of them.
    np.testing.assert_allclose(profile, measured, rtol=0.2)
    assert white_noise_profile(CONFIG) is not white_noise_profile(CONFIG)  # copies of a cached value


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_noise_reaches_the_asked_snr_like_real_noise(rng, snr_db):
    y = music(3.0, rng, floor=0.0)
    clean = kinds(y)["log_mel"]
    profile = white_noise_profile(CONFIG)
    augmented = add_noise(clean, "log_mel", snr_db, CONFIG, profile)
    power = 10 ** (clean.astype(np.float64) / 10)
    aug_power = 10 ** (augmented.astype(np.float64) / 10)
    # By construction: the mean noise power added is exactly the asked fraction.
    assert 10 * np.log10(power.mean() / (aug_power.mean() - power.mean())) == pytest.approx(snr_db, abs=1e-3)
    # Against real white noise at that level: the same SNR within 0.5 dB (the real noise's
    # fluctuation and its cross terms with the signal, which the expectation leaves out)...
    sigma = np.sqrt(power.mean() / (profile.mean() * 10 ** (snr_db / 10)))
    noisy = kinds(y + (sigma * rng.standard_normal(y.size)).astype(np.float32))["log_mel"]
    real_power = 10 ** (noisy.astype(np.float64) / 10)
    assert 10 * np.log10(power.mean() / (real_power.mean() - power.mean())) == pytest.approx(snr_db, abs=0.5)
    # ...and the same mean level in every band within 1.5 dB.
    np.testing.assert_allclose(10 * np.log10(aug_power.mean(1) / real_power.mean(1)), 0.0, atol=1.5)


def test_noise_leaves_frame_vectors_unchanged(rng):
    x = kinds(music(0.5, rng))["frame_vector"]
    out = add_noise(x, "frame_vector", 10.0, CONFIG, None)
    np.testing.assert_array_equal(out, x)
    assert out is not x


def test_time_shift_is_a_rotation(rng):
    x = np.arange(3 * 20, dtype=np.float32).reshape(3, 20)
    shifts = set()
    for _ in range(200):
        out = time_shift(x, 4, rng)
        shift = int(np.flatnonzero(out[0] == x[0, 0])[0])
        shift = shift if shift <= 4 else shift - 20
        np.testing.assert_array_equal(out, np.roll(x, shift, axis=1))
        shifts.add(shift)
    assert shifts == set(range(-4, 5))
    np.testing.assert_array_equal(time_shift(x, 0, rng), x)


def mask_runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()


def test_spec_augment_masks_count_and_width(rng):
    x = rng.standard_normal((64, 130)).astype(np.float32)
    widest_f = widest_t = 0
    for _ in range(300):
        out = spec_augment(x, rng, freq_masks=2, freq_width=8, time_masks=3, time_width=16, fill=np.nan)
        masked = np.isnan(out)
        rows, cols = masked.all(axis=1), masked.all(axis=0)
        assert (masked == (rows[:, None] | cols[None, :])).all()  # whole rows and whole frames only
        row_runs, col_runs = mask_runs(rows), mask_runs(cols)
        assert len(row_runs) <= 2 and len(col_runs) <= 3  # overlapping masks merge into one run
        assert sum(row_runs) <= 2 * 8 and sum(col_runs) <= 3 * 16
        np.testing.assert_array_equal(out[~masked], x[~masked])
        widest_f, widest_t = max(widest_f, max(row_runs, default=0)), max(widest_t, max(col_runs, default=0))
    assert widest_f >= 8 and widest_t >= 16  # the full width is reached (uniform in [0, width])


def test_spec_augment_fills_with_row_means_and_frame_vectors_get_time_masks_only(rng):
    x = rng.standard_normal((28, 50)).astype(np.float32) + np.arange(28, dtype=np.float32)[:, None]
    out = spec_augment(x, np.random.default_rng(3), freq_masks=0, time_masks=1, time_width=50)
    changed = (out != x).any(axis=0)
    assert changed.any() and not (out != x).all(axis=1).any()
    np.testing.assert_allclose(
        out[:, changed], np.repeat(x.mean(axis=1, keepdims=True), changed.sum(), axis=1), rtol=1e-6
    )


def test_mixup_pairs(rng):
    perm, lam = mixup_pairs(32, 0.2, rng)
    assert sorted(perm.tolist()) == list(range(32))
    assert lam.dtype == np.float32 and lam.shape == (32,) and (lam >= 0.5).all() and (lam <= 1).all()
    _, none = mixup_pairs(8, 0.0, rng)
    assert (none == 1).all()


def test_augment_window_is_deterministic_for_a_seed(rng):
    x = kinds(music(3.0, rng))["log_mel"][:, :129]
    cfg = AugmentConfig(p_gain=1, p_noise=1, p_shift=1, p_mask=1)
    a = augment_window(x, "log_mel", np.random.default_rng(5), cfg, CONFIG, None)
    b = augment_window(x, "log_mel", np.random.default_rng(5), cfg, CONFIG, None)
    c = augment_window(x, "log_mel", np.random.default_rng(6), cfg, CONFIG, None)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(augment_window(x, "log_mel", rng, AugmentConfig.off(), CONFIG, None), x)
    fv = kinds(music(3.0, rng))["frame_vector"][:, :129]
    out = augment_window(fv, "frame_vector", np.random.default_rng(5), cfg, CONFIG, None)
    assert out.shape == fv.shape and not np.array_equal(out, fv)


def test_augment_config_validates_and_round_trips():
    cfg = AugmentConfig(p_noise=0.1, snr_db=(5, 20))
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg and cfg.snr_db == (5.0, 20.0)
    with pytest.raises(ParameterError, match="p_gain must be a probability"):
        AugmentConfig(p_gain=1.5)
    with pytest.raises(ParameterError, match="snr_db must be"):
        AugmentConfig(snr_db=(30, 10))
    with pytest.raises(ParameterError, match="unknown AugmentConfig field"):
        AugmentConfig.from_dict({"p_flip": 0.5})
    with pytest.raises(ParameterError, match=r"must be shaped \(64, frames\)"):
        gain(np.zeros((28, 10), np.float32), "log_mel", 1.0, CONFIG)


def test_pitch_shift_offline_moves_an_octave(tmp_path):
    t = np.arange(SR) / SR
    src = tmp_path / "a440.wav"
    sf.write(src, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    dst = pitch_shift_offline(src, tmp_path / "shifted" / "a880.wav", 12, SR)
    y, sr = sf.read(dst, dtype="float32")
    assert sr == SR and y.size == SR  # the tempo (length) is kept
    peak_hz = np.fft.rfftfreq(y.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(y)))]
    assert peak_hz == pytest.approx(880, abs=2)  # 1 Hz bins; the phase vocoder smears a little


def test_random_eq_curve_is_smooth_and_bounded(rng):
    for _ in range(20):
        curve = random_eq_curve(64, 9.0, rng)
        assert curve.shape == (64,) and np.abs(curve).max() <= 9.0 + 1e-5
        assert np.abs(np.diff(curve)).max() < 2.0  # a few half-cosines over 64 bands: no jumps


def test_equalize_adds_the_curve_to_log_mel_and_its_dct_to_mfccs(rng):
    scipy_fft = pytest.importorskip("scipy.fft", reason="scipy gives the reference DCT")
    f = kinds(music(1.0, rng))
    curve = random_eq_curve(CONFIG.n_mels, 6.0, rng)
    mel = equalize(f["log_mel"], "log_mel", curve, CONFIG)
    np.testing.assert_allclose(mel - f["log_mel"], np.broadcast_to(curve[:, None], mel.shape), atol=1e-4)
    fv = equalize(f["frame_vector"], "frame_vector", curve, CONFIG)
    shift = scipy_fft.dct(curve.astype(np.float64), norm="ortho")[: CONFIG.n_mfcc]
    np.testing.assert_allclose(fv[: CONFIG.n_mfcc] - f["frame_vector"][: CONFIG.n_mfcc], np.broadcast_to(shift[:, None], (CONFIG.n_mfcc, fv.shape[1])), atol=1e-3)
    np.testing.assert_array_equal(fv[CONFIG.n_mfcc :], f["frame_vector"][CONFIG.n_mfcc :])
    with pytest.raises(ParameterError, match="one per mel band"):
        equalize(f["log_mel"], "log_mel", curve[:10], CONFIG)


def test_mel_band_centres_match_librosa():
    librosa = pytest.importorskip("librosa", reason="librosa is the reference mel scale")
    for htk in (False, True):
        config = FeatureConfig(htk=htk)
        ref = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax, htk=htk)[1:-1]
        np.testing.assert_allclose(mel_band_centres(config), ref, rtol=1e-9)


def test_band_limit_floors_the_bands_above_the_cutoff(rng):
    f = kinds(music(1.0, rng))
    out = band_limit(f["log_mel"], "log_mel", 4000.0, CONFIG)
    above = mel_band_centres(CONFIG) > 4000.0
    assert above.any() and not above.all()
    assert np.all(out[above] == out.min())
    np.testing.assert_array_equal(out[~above], f["log_mel"][~above])
    np.testing.assert_array_equal(band_limit(f["frame_vector"], "frame_vector", 4000.0, CONFIG), f["frame_vector"])


def test_eq_and_band_limit_are_off_by_default_and_leave_the_random_stream_alone(rng):
    x = kinds(music(1.0, rng))["log_mel"]
    a = augment_window(x, "log_mel", np.random.default_rng(5), AugmentConfig(), CONFIG, None)
    b = augment_window(x, "log_mel", np.random.default_rng(5), AugmentConfig(p_eq=0.0, p_bandlimit=0.0, eq_db=12), CONFIG, None)
    np.testing.assert_array_equal(a, b)
    c = augment_window(x, "log_mel", np.random.default_rng(5), AugmentConfig.off().__class__(**{**AugmentConfig.off().to_dict(), "p_eq": 1.0}), CONFIG, None)
    assert not np.array_equal(c, x)
    with pytest.raises(ParameterError, match="bandlimit_hz"):
        AugmentConfig(bandlimit_hz=(5000, 1000))


# ------------------------------------------------------------------ pitch shift and time stretch


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz, semitones", [(220.0, 2.0), (440.0, -3.0), (1000.0, 2.5), (3000.0, -1.5)])
def test_pitch_shift_moves_a_tone_where_the_shifted_tone_lies(hz, semitones):
    mel = extract(tone(hz), CONFIG, features=["log_mel"])["log_mel"]
    want = extract(tone(hz * 2 ** (semitones / 12)), CONFIG, features=["log_mel"])["log_mel"]
    got = pitch_shift(mel, "log_mel", semitones, CONFIG)
    assert got.shape == mel.shape and got.dtype == np.float32
    middle = slice(5, -5)  # away from the edges of the clip
    assert abs(int(np.argmax(got[:, middle].mean(axis=1))) - int(np.argmax(want[:, middle].mean(axis=1)))) <= 1
    assert abs(got[:, middle].mean(axis=1).max() - want[:, middle].mean(axis=1).max()) < 3.0  # dB: the peak's level is kept


def test_pitch_shift_by_zero_and_of_frame_vectors_changes_nothing(rng):
    f = kinds(music(1.0, rng))
    np.testing.assert_array_equal(pitch_shift(f["log_mel"], "log_mel", 0.0, CONFIG), f["log_mel"])
    np.testing.assert_array_equal(pitch_shift(f["frame_vector"], "frame_vector", 3.0, CONFIG), f["frame_vector"])


def test_time_stretch_reads_frames_at_the_rate():
    ramp = np.arange(300, dtype=np.float32)[None, :].repeat(3, axis=0)
    for rate in (0.8, 1.0, 1.17, 1.25):
        need = stretch_source_frames(rate, 129)
        out = time_stretch(ramp[:, :need], rate, 129)
        assert out.shape == (3, 129)
        np.testing.assert_allclose(out[0], np.arange(129) * rate, atol=1e-4)
    np.testing.assert_array_equal(time_stretch(ramp, 1.0, 50), ramp[:, :50])
    with pytest.raises(ParameterError, match="needs"):
        time_stretch(ramp[:, :129], 1.25, 129)
    with pytest.raises(ParameterError, match="rate > 0"):
        time_stretch(ramp, 0.0, 10)


def test_a_stretched_gate_keeps_its_spectrum_and_changes_its_period():
    y = tone(1000.0, 4.0) * ((np.arange(4 * SR) / SR) % 0.5 < 0.25)  # gated at 2 Hz
    mel = extract(y, CONFIG, features=["log_mel"])["log_mel"]
    fast = time_stretch(mel, 1.25, 100)  # 2.5 Hz
    band = int(np.argmax(mel.mean(axis=1)))
    assert int(np.argmax(fast.mean(axis=1))) == band

    def period(row):
        spectrum = np.abs(np.fft.rfft(row - row.mean(), n=4096))
        return 1 / np.fft.rfftfreq(4096, CONFIG.hop_length / SR)[np.argmax(spectrum[1:]) + 1]

    assert period(fast[band]) == pytest.approx(0.5 / 1.25, rel=0.05)
    assert period(mel[band, :100]) == pytest.approx(0.5, rel=0.05)


def test_pitch_and_stretch_are_off_by_default_and_leave_the_random_stream_alone(rng):
    x = kinds(music(1.0, rng))["log_mel"]
    a = augment_window(x, "log_mel", np.random.default_rng(5), AugmentConfig(), CONFIG, None)
    b = augment_window(x, "log_mel", np.random.default_rng(5), AugmentConfig(pitch_semitones=5, stretch=0.5), CONFIG, None)
    np.testing.assert_array_equal(a, b)
    stream = np.random.default_rng(9)
    assert AugmentConfig().stretch_rate(stream) == 1.0
    assert stream.random() == np.random.default_rng(9).random()  # nothing drawn
    rates = [AugmentConfig(p_stretch=1.0, stretch=0.25).stretch_rate(rng) for _ in range(500)]
    assert 1 / 1.25 - 1e-9 <= min(rates) < 0.85 and 1.2 < max(rates) <= 1.25 + 1e-9
    with pytest.raises(ParameterError, match="stretch"):
        AugmentConfig(stretch=1.5)
    with pytest.raises(ParameterError, match="pitch_semitones"):
        AugmentConfig(pitch_semitones=-1)


# ------------------------------------------------------------------ crop jitter


class _RampSource:
    """A stand-in feature source: one row whose value is the frame index, 100 frames per clip."""

    kind = "frame_vector"

    def __init__(self):
        from pyharmonies.features import FeatureConfig

        self.config = FeatureConfig()

    def __call__(self, clip):
        return np.arange(100, dtype=np.float32)[None, :].repeat(28, axis=0)


def _ramp_dataset(crop_jitter: float, starts, stretch: float = 0.0):
    from pyharmonies.data.sources import Clip
    from pyharmonies.training.dataset import Normalizer, WindowDataset
    from pyharmonies.windows import Window

    off = AugmentConfig.off()
    off.crop_jitter = crop_jitter
    off.p_stretch, off.stretch = (1.0, stretch) if stretch else (0.0, off.stretch)
    clip = Clip(path=Path("ramp.wav"), label="a", track="t")
    identity = Normalizer(np.zeros(28, np.float32), np.ones(28, np.float32))
    return WindowDataset([clip], {"a": 0}, [Window(0, s) for s in starts], _RampSource(), identity, 20, augment=off, seed=3)


def test_crop_jitter_moves_training_windows_within_the_clip_and_changes_with_the_epoch():
    ds = _ramp_dataset(0.5, [0, 40, 80])
    firsts = {}
    for epoch in range(40):
        ds.set_epoch(epoch)
        for i in range(3):
            x = ds[i][0].numpy()
            start = int(x[0, 0])
            np.testing.assert_array_equal(x[0], np.arange(start, start + 20))  # a real crop: contiguous frames
            firsts.setdefault(i, set()).add(start)
    assert min(firsts[0]) == 0 and max(firsts[0]) <= 10  # never before the clip's start
    assert min(firsts[1]) >= 30 and max(firsts[1]) <= 50 and len(firsts[1]) > 10  # ±0.5 window
    assert max(firsts[2]) <= 80 and min(firsts[2]) >= 70  # never past the last full window
    ds.set_epoch(7)
    first_read, second_read = int(ds[1][0][0, 0]), int(ds[1][0][0, 0])
    assert first_read == second_read  # a function of (seed, epoch, index): resumable


def test_without_crop_jitter_windows_stay_on_the_grid():
    ds = _ramp_dataset(0.0, [0, 40, 80])
    for epoch in range(5):
        ds.set_epoch(epoch)
        assert [int(ds[i][0][0, 0]) for i in range(3)] == [0, 40, 80]


def test_crop_jitter_outside_0_1_is_refused():
    with pytest.raises(ParameterError, match="crop_jitter"):
        AugmentConfig(crop_jitter=1.5)


def test_stretched_training_windows_read_the_clip_at_a_new_speed_each_epoch():
    ds = _ramp_dataset(0.0, [0, 40, 80], stretch=0.25)
    slopes = set()
    for epoch in range(20):
        ds.set_epoch(epoch)
        for i, start in enumerate([0, 40, 80]):
            x = ds[i][0].numpy()[0]
            assert x.shape == (20,) and x[0] == start
            inside = x[: int((99 - start) / 1.25)]  # frames read from within the clip
            steps = np.diff(inside)
            np.testing.assert_allclose(steps, steps[0], atol=1e-4)  # one speed per window
            assert 1 / 1.25 - 1e-4 <= steps[0] <= 1.25 + 1e-4
            slopes.add(round(float(steps[0]), 3))
    assert len(slopes) > 20


def test_pretraining_refuses_a_stretch_it_would_not_apply():
    from pyharmonies.training.pretrain import PretrainConfig

    with pytest.raises(ParameterError, match="does not time-stretch"):
        PretrainConfig(audio=["a"], augment_options={"p_stretch": 0.5})


# ------------------------------------------------------------------ mixing in a window of the same class


def test_mix_in_equals_the_features_of_the_summed_audio(rng):
    # Two unrelated sounds: their cross terms average out over a band's bins and 344 frames, as mix_in assumes.
    t = np.arange(8 * SR) / SR
    a = music(8.0, rng, floor=0.02)
    b = (0.15 * np.sin(2 * np.pi * 587 * t) * (t % 0.3 < 0.2) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    other_db = -6.0
    mixed = mix_in(kinds(a)["log_mel"], kinds(b)["log_mel"], "log_mel", other_db, CONFIG)
    real = kinds(a + (10 ** (other_db / 20) * b).astype(np.float32))["log_mel"]
    assert mixed.shape == real.shape and mixed.dtype == np.float32
    # The mean level of every band within 1 dB of the real mixture's, and most cells within 3 dB
    # (over eight noise seeds: at most 0.54 dB off, 96.6-97.1% of cells within 3 dB).
    np.testing.assert_allclose(10 * np.log10((10 ** (mixed / 10)).mean(1) / (10 ** (real / 10)).mean(1)), 0.0, atol=1.0)
    assert np.mean(np.abs(mixed - real) < 3.0) > 0.9


def test_mix_in_of_silence_and_at_very_low_gain_changes_nothing(rng):
    x = kinds(music(1.0, rng))["log_mel"]
    floor = np.full_like(x, -100.0)
    np.testing.assert_allclose(mix_in(x, floor, "log_mel", 0.0, CONFIG), x, atol=1e-4)
    np.testing.assert_allclose(mix_in(floor, x, "log_mel", 0.0, CONFIG), x, atol=1e-4)
    np.testing.assert_allclose(mix_in(x, x, "log_mel", -200.0, CONFIG), x, atol=1e-4)
    np.testing.assert_allclose(mix_in(x, x, "log_mel", 0.0, CONFIG), x + 10 * np.log10(2), atol=1e-4)  # twice the power


def test_mix_in_refuses_other_shapes_and_leaves_frame_vectors_unchanged(rng):
    feats = kinds(music(1.0, rng))
    with pytest.raises(ParameterError, match="same shape"):
        mix_in(feats["log_mel"], feats["log_mel"][:, :-1], "log_mel", 0.0, CONFIG)
    out = mix_in(feats["frame_vector"], feats["frame_vector"][:, ::-1], "frame_vector", 0.0, CONFIG)
    np.testing.assert_array_equal(out, feats["frame_vector"])
    with pytest.raises(ParameterError, match="mix_class_db"):
        AugmentConfig(mix_class_db=(-6.0, 3.0))
    with pytest.raises(ParameterError, match="mix_class_db"):
        AugmentConfig(mix_class_db=(0.0, -6.0))
    assert AugmentConfig.from_dict(AugmentConfig(p_mix_class=0.5).to_dict()) == AugmentConfig(p_mix_class=0.5)


class _TrackSource:
    """A stand-in log-mel source: clip k is -100 dB everywhere except band k, at 0 dB."""

    kind = "log_mel"

    def __init__(self):
        self.config = FeatureConfig()

    def __call__(self, clip):
        x = np.full((self.config.n_mels, 40), -100.0, dtype=np.float32)
        x[int(clip.track[1:])] = 0.0
        return x


def _track_dataset(labels_tracks, p_mix_class: float, seed: int = 3):
    from pyharmonies.data.sources import Clip
    from pyharmonies.training.dataset import Normalizer, WindowDataset
    from pyharmonies.windows import Window

    off = AugmentConfig.off()
    off.p_mix_class = p_mix_class
    clips = [Clip(path=Path(f"{i}.wav"), label=label, track=track) for i, (label, track) in enumerate(labels_tracks)]
    identity = Normalizer(np.zeros(CONFIG.n_mels, np.float32), np.ones(CONFIG.n_mels, np.float32))
    windows = [Window(i, 0) for i in range(len(clips))]
    label_index = {label: k for k, label in enumerate(sorted({c.label for c in clips}))}
    return WindowDataset(clips, label_index, windows, _TrackSource(), identity, 20, augment=off, seed=seed)


def test_class_partners_are_the_windows_of_the_class_from_other_tracks():
    from pyharmonies.data.sources import Clip
    from pyharmonies.training.dataset import class_partners
    from pyharmonies.windows import Window

    clips = [Clip(Path("a"), "x", "t0"), Clip(Path("b"), "x", "t0"), Clip(Path("c"), "x", "t1"), Clip(Path("d"), "y", "t2")]
    windows = [Window(0, 0), Window(1, 0), Window(2, 0), Window(2, 20), Window(3, 0)]
    assert [p.tolist() for p in class_partners(clips, windows)] == [[2, 3], [2, 3], [0, 1], [0, 1], []]


def test_a_window_hears_another_track_of_its_class_and_never_one_of_another_class():
    # Tracks t0, t1, t2 are class x, t3 class y: a window of t0 may hear band 1 or 2, never 3.
    ds = _track_dataset([("x", "t0"), ("x", "t1"), ("x", "t2"), ("y", "t3")], p_mix_class=1.0)
    heard = {i: set() for i in range(4)}
    for epoch in range(30):
        ds.set_epoch(epoch)
        for i in range(4):
            x, label = ds[i]
            bands = set(np.flatnonzero(x.numpy()[0].max(axis=1) > -90.0).tolist())
            assert i in bands and label == ds.labels[i]
            heard[i] |= bands - {i}
    assert heard == {0: {1, 2}, 1: {0, 2}, 2: {0, 1}, 3: set()}  # class y has no other track: nothing mixed in
    ds.set_epoch(4)
    np.testing.assert_array_equal(ds[0][0].numpy(), ds[0][0].numpy())  # a function of (seed, epoch, index)


def test_mixing_in_is_off_by_default_and_then_leaves_the_random_stream_alone():
    tracks = [("x", "t0"), ("x", "t1")]
    plain, off = _track_dataset(tracks, 0.0), _track_dataset(tracks, 0.0)
    off.augment.mix_class_db = (-3.0, 0.0)  # its level alone changes nothing while p_mix_class is 0
    assert AugmentConfig().p_mix_class == 0.0 and plain.partners is None
    for epoch in range(3):
        plain.set_epoch(epoch), off.set_epoch(epoch)
        for i in range(2):
            np.testing.assert_array_equal(plain[i][0].numpy(), off[i][0].numpy())
            assert np.flatnonzero(plain[i][0].numpy()[0].max(axis=1) > -90.0).tolist() == [i]


def test_pretraining_refuses_a_class_mix_it_could_not_apply():
    from pyharmonies.training.pretrain import PretrainConfig

    with pytest.raises(ParameterError, match="no classes to mix within"):
        PretrainConfig(audio=["a"], augment_options={"p_mix_class": 0.5})
    PretrainConfig(audio=["a"], augment_options={"p_mix_class": 0.0})  # off: accepted


def test_frame_vector_windows_are_never_mixed_and_no_partner_is_read():
    ds = _ramp_dataset(0.0, [0, 40, 80])
    ds.augment.p_mix_class = 1.0
    mixing = type(ds)(ds.clips, {"a": 0}, ds.windows, ds.source, ds.normalizer, 20, augment=ds.augment, seed=3)
    assert mixing.partners is None
    for i, start in enumerate([0, 40, 80]):
        np.testing.assert_array_equal(mixing[i][0].numpy()[0], np.arange(start, start + 20))
