"""Training-time augmentation in the feature domain.

The cache holds features, not audio, so augmentation acts on a window of
features: ``log_mel`` in dB, shape (n_mels, frames), or ``frame_vector``,
shape (n_mfcc + 8, frames) with rows MFCC 0..n_mfcc-1, zcr, rms, centroid,
bandwidth, rolloff, flatness, flux, spectral entropy. Each function returns
a new array (float32) and draws its randomness from the
``np.random.Generator`` it is given, so a seeded generator reproduces a run.
Each docstring says what is exactly what the audio-domain operation would
give and what is an approximation.

The one audio-domain operation, :func:`pitch_shift_offline`, writes new
files (workstation only: it imports librosa) to be added to a dataset.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.errors import ParameterError, refuse_unknown_fields
from pyharmonies.features import FeatureConfig, extract

#: Feature kinds augmentation understands (as the cache's).
KINDS = ("log_mel", "frame_vector")

# Row offsets inside a frame vector, after the n_mfcc MFCCs.
_ZCR, _RMS = 0, 1


def _floor_db(config: FeatureConfig) -> float:
    """The dB value of power at or below ``amin`` (-100 dB at the defaults)."""
    return 10.0 * math.log10(config.amin) - 10.0 * math.log10(max(config.amin, config.ref))


def _shift_log_mel(x: np.ndarray, offset_db: np.ndarray | np.float32, config: FeatureConfig) -> np.ndarray:
    """``x + offset_db`` in dB, floor cells kept at the floor and nothing pushed below it."""
    floor = np.float32(_floor_db(config))
    at_floor = x <= floor + np.float32(1e-4)
    out = np.array(x, dtype=np.float32)
    out += offset_db
    np.maximum(out, floor, out=out)
    out[at_floor] = floor
    return out


def _mel_power(x: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The mel power (float64) of a log-mel in dB, as computed with ``config``."""
    return np.power(10.0, (x.astype(np.float64) + 10.0 * math.log10(max(config.amin, config.ref))) / 10.0)


def _log_mel(power: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Inverse of :func:`_mel_power`: dB relative to ``ref``, floored at ``amin``, float32."""
    ref_db = 10.0 * math.log10(max(config.amin, config.ref))
    return (10.0 * np.log10(np.maximum(power, config.amin)) - ref_db).astype(np.float32)


def _checked(x: np.ndarray, kind: str, config: FeatureConfig) -> np.ndarray:
    if kind not in KINDS:
        raise ParameterError(f"unknown feature kind {kind!r}; choose from {', '.join(KINDS)}")
    x = np.asarray(x)
    rows = config.n_mels if kind == "log_mel" else config.n_mfcc + 8
    if x.ndim != 2 or x.shape[0] != rows:
        raise ParameterError(f"{kind} window must be shaped ({rows}, frames) for this config, got {x.shape}")
    return x


def gain(x: np.ndarray, kind: str, gain_db: float, config: FeatureConfig) -> np.ndarray:
    """The features of the same audio made ``gain_db`` louder (amplitude x 10**(gain_db/20)).

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
        A ``kind`` window computed with ``config``.
    kind : {"log_mel", "frame_vector"}
    gain_db : float
        Gain in dB (negative: quieter).
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    ``log_mel``: ``x + gain_db``, exact wherever the mel power is above
    ``amin`` before and after. Values at the floor ``10 log10(amin/ref)``
    (power unknown, somewhere below ``amin``) stay at the floor, and nothing
    goes below it.

    ``frame_vector``: MFCC 0 gains ``gain_db * sqrt(n_mels)`` (the
    orthonormal DCT-II of a constant dB shift puts it all in coefficient 0,
    whose basis is ``1/sqrt(n_mels)``); the other MFCCs are unchanged; rms is
    multiplied by ``10**(gain_db/20)``. zcr (signs), centroid, bandwidth and
    rolloff (ratios of sums of the magnitude spectrum), flatness (geometric
    over arithmetic mean), flux and spectral entropy (of spectra normalised
    by their sum) do not depend on scale. Exact away from the floor: where
    a mel band or spectral bin of the frame is under ``amin`` (flatness
    clamps power there), where pyAudioAnalysis's 2.2e-16 guards matter
    (near-silent frames), or where samples are within librosa's 1e-10 zcr
    threshold, the true features of the scaled audio differ a little.
    """
    x = _checked(x, kind, config)
    if kind == "log_mel":
        return _shift_log_mel(x, np.float32(gain_db), config)
    out = np.array(x, dtype=np.float32)
    out[0] += np.float32(gain_db * math.sqrt(config.n_mels))
    out[config.n_mfcc + _RMS] *= np.float32(10.0 ** (gain_db / 20.0))
    return out


def add_noise(
    x: np.ndarray, kind: str, snr_db: float, config: FeatureConfig, noise_profile: np.ndarray | None
) -> np.ndarray:
    """The features of the audio with white noise added at ``snr_db``.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
    kind : {"log_mel", "frame_vector"}
    snr_db : float
        Signal-to-noise ratio in dB: the window's mean mel power over the
        noise's mean mel power (both averaged over bands and frames).
    config : FeatureConfig
    noise_profile : np.ndarray, shape (n_mels,), or None
        :func:`white_noise_profile` of ``config`` (computed here if None).

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    ``log_mel``: power-domain addition. The mel power of the window
    (``10**(x/10) * ref``) plus the *expected* mel power of white noise at
    the asked level, converted back to dB. Approximate: real noise also adds
    its random fluctuation around that mean (a few dB in narrow low bands,
    less in wide ones) and signal-noise cross terms that average to zero;
    the mean level and the spectral shape are right. The SNR is measured in
    the mel domain, not on the waveform.

    ``frame_vector``: not supported (MFCCs and spectral statistics of a sum
    are not functions of the parts' features): ``x`` is returned unchanged,
    as a copy.
    """
    x = _checked(x, kind, config)
    if kind != "log_mel":
        return np.array(x, dtype=np.float32)
    profile = white_noise_profile(config) if noise_profile is None else np.asarray(noise_profile, dtype=np.float64)
    if profile.shape != (config.n_mels,):
        raise ParameterError(f"noise_profile must have shape ({config.n_mels},), got {profile.shape}")
    power = _mel_power(x, config)
    scale = power.mean() / (profile.mean() * 10.0 ** (snr_db / 10.0))
    return _log_mel(power + scale * profile[:, None], config)


def mix_in(x: np.ndarray, other: np.ndarray, kind: str, other_db: float, config: FeatureConfig) -> np.ndarray:
    """The features of two pieces of audio played together, the second ``other_db`` louder than it was.

    Parameters
    ----------
    x, other : np.ndarray, shape (n, frames)
        Two ``kind`` windows of the same length, computed with ``config``.
    kind : {"log_mel", "frame_vector"}
    other_db : float
        Gain applied to ``other`` before the sum, dB (negative: quieter).
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    ``log_mel``: power-domain addition, ``10 log10(10**(x/10) + 10**((other
    + other_db)/10))`` relative to ``ref``; cells at the floor count as no
    power. Exact for the expected mel power of two independent sources
    (their cross terms average to zero), approximate for one frame, as in
    :func:`add_noise`.

    ``frame_vector``: not supported (the features of a sum are not functions
    of the parts' features): ``x`` is returned unchanged, as a copy.
    """
    x = _checked(x, kind, config)
    other = _checked(other, kind, config)
    if other.shape != x.shape:
        raise ParameterError(f"windows to mix must have the same shape, got {x.shape} and {other.shape}")
    if kind != "log_mel":
        return np.array(x, dtype=np.float32)
    floor = _floor_db(config) + 1e-4
    mine, theirs = _mel_power(x, config), _mel_power(other, config) * 10.0 ** (other_db / 10.0)
    mine[x <= floor] = 0.0  # power somewhere under amin: nothing to add
    theirs[other <= floor] = 0.0
    return _log_mel(mine + theirs, config)


def white_noise_profile(config: FeatureConfig) -> np.ndarray:
    """Mean mel power of unit-variance white noise, per band.

    Parameters
    ----------
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n_mels,), float64
        Measured once per config with :func:`~pyharmonies.features.extract`
        over 30 s of seeded Gaussian noise (the frames touching the zero
        padding left out); within about 3 % of the expectation in the
        narrowest bands.
    """
    return np.array(_white_noise_profile(config))


@functools.lru_cache(maxsize=8)
def _white_noise_profile(config: FeatureConfig) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(30 * config.sample_rate).astype(np.float32)
    mel = extract(noise, config, features=["mel"])["mel"].astype(np.float64)
    edge = config.n_fft // config.hop_length + 1
    profile = mel[:, edge:-edge].mean(axis=1)
    profile.flags.writeable = False
    return profile


def time_shift(x: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Rotate the window in time by a random number of frames.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
    max_frames : int
        The shift is uniform in ``[-max_frames, max_frames]``.
    rng : np.random.Generator

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    Circular (``np.roll``): frames leaving one end come in at the other, so
    the window keeps all its content and its statistics; the seam is one
    cut, like the cut at a window's edges. (Edge padding would instead
    invent a frozen stretch of sound that music never has.)
    """
    x = np.asarray(x)
    if max_frames < 0:
        raise ParameterError(f"max_frames must be >= 0, got {max_frames}")
    shift = int(rng.integers(-max_frames, max_frames + 1)) if max_frames else 0
    return np.roll(x, shift, axis=1).astype(np.float32, copy=False) if shift else np.array(x, dtype=np.float32)


def spec_augment(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 16,
    fill: np.ndarray | float | None = None,
) -> np.ndarray:
    """SpecAugment masks: bands of rows and stretches of frames set to a fill value.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
    rng : np.random.Generator
    freq_masks, time_masks : int
        Number of masks of each kind (``freq_masks=0`` for ``frame_vector``,
        whose rows are not a frequency axis).
    freq_width, time_width : int
        Each mask's width is uniform in ``[0, width]`` (capped at the axis
        length), its start uniform among the positions where it fits, as
        in Park et al. (2019). Masks may overlap.
    fill : float or np.ndarray of shape (n,), optional
        Value of masked cells, per row; by default each row's mean over the
        window (so that masking does not shift the per-row statistics that
        normalisation relies on, as a constant such as 0 dB would).

    Returns
    -------
    np.ndarray, shape (n, frames), float32
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ParameterError(f"x must be (n, frames), got shape {x.shape}")
    for name, value in (
        ("freq_masks", freq_masks),
        ("freq_width", freq_width),
        ("time_masks", time_masks),
        ("time_width", time_width),
    ):
        if value < 0:
            raise ParameterError(f"{name} must be >= 0, got {value}")
    n, frames = x.shape
    out = np.array(x, dtype=np.float32)
    values = x.mean(axis=1, dtype=np.float64) if fill is None else fill
    values = np.broadcast_to(np.asarray(values, dtype=np.float32), (n,))
    for start, width in _mask_spans(n, freq_masks, freq_width, rng):
        out[start : start + width, :] = values[start : start + width, None]
    for start, width in _mask_spans(frames, time_masks, time_width, rng):
        out[:, start : start + width] = values[:, None]
    return out


def _mask_spans(length: int, count: int, width: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` (start, width) pairs, width uniform in [0, min(width, length)]."""
    spans = []
    for _ in range(count):
        w = int(rng.integers(0, min(width, length) + 1))
        spans.append((int(rng.integers(0, length - w + 1)), w))
    return spans



def random_eq_curve(n_bands: int, max_db: float, rng: np.random.Generator, components: int = 3) -> np.ndarray:
    """A smooth random equaliser curve over ``n_bands`` mel bands, in dB.

    A sum of ``components`` half-cosines of increasing order across the
    bands (a tilt, a bump, a wave) with random weights and phases, scaled so
    that its largest magnitude is a uniform draw in ``[0, max_db]``.

    Returns
    -------
    np.ndarray, shape (n_bands,), float32
    """
    position = (np.arange(n_bands) + 0.5) / n_bands
    curve = np.zeros(n_bands)
    for order in range(1, components + 1):
        curve += rng.normal() / order * np.cos(np.pi * order * position + rng.uniform(0, 2 * np.pi))
    peak = float(np.abs(curve).max())
    if peak == 0.0:
        return np.zeros(n_bands, dtype=np.float32)
    return (curve * (rng.uniform(0.0, max_db) / peak)).astype(np.float32)


def equalize(x: np.ndarray, kind: str, curve_db: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The features of the audio passed through an equaliser of ``curve_db`` per mel band.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
    kind : {"log_mel", "frame_vector"}
    curve_db : np.ndarray, shape (n_mels,)
        Gain of each mel band in dB (:func:`random_eq_curve`).
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    ``log_mel``: ``x + curve`` per band, floor cells kept at the floor (as
    :func:`gain`). Exact for a filter whose gain is constant across each mel
    band's triangle; a smooth curve over 64 bands is close to that.
    ``frame_vector``: the MFCCs gain the orthonormal DCT-II of the curve (the
    MFCCs are that DCT of the log-mel); the spectral statistics (centroid,
    rolloff...) are left as they are, which is an approximation.
    """
    x = _checked(x, kind, config)
    curve = np.asarray(curve_db, dtype=np.float32)
    if curve.shape != (config.n_mels,):
        raise ParameterError(f"curve_db must have {config.n_mels} values (one per mel band), got shape {curve.shape}")
    if kind == "log_mel":
        return _shift_log_mel(x, curve[:, None], config)
    out = np.array(x, dtype=np.float32)
    out[: config.n_mfcc] += _dct_ortho(curve.astype(np.float64))[: config.n_mfcc, None].astype(np.float32)
    return out


def _dct_ortho(v: np.ndarray) -> np.ndarray:
    """Orthonormal DCT-II of a vector (as scipy.fft.dct(v, norm="ortho"))."""
    n = v.shape[0]
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))
    scale = np.full(n, np.sqrt(2.0 / n))
    scale[0] = np.sqrt(1.0 / n)
    return scale * (basis @ v)


def mel_band_centres(config: FeatureConfig) -> np.ndarray:
    """Centre frequency of each mel band in Hz, (n_mels,), on the config's mel scale."""
    if config.htk:
        to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
        to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    else:  # Slaney's: linear to 1 kHz, logarithmic above (librosa's default)
        f_sp, min_log_hz = 200.0 / 3, 1000.0
        min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

        def to_mel(f):
            f = np.asarray(f, dtype=np.float64)
            return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)

        def to_hz(m):
            m = np.asarray(m, dtype=np.float64)
            return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    edges = np.linspace(to_mel(config.fmin), to_mel(config.fmax), config.n_mels + 2)
    return np.asarray(to_hz(edges[1:-1]), dtype=np.float64)


def band_limit(x: np.ndarray, kind: str, cutoff_hz: float, config: FeatureConfig) -> np.ndarray:
    """The log-mel of the audio low-passed at ``cutoff_hz``: bands centred above it go to the floor.

    A brick-wall approximation of a band-limited recording (a low bit-rate
    codec, an old transfer). ``frame_vector`` windows are returned unchanged
    (its spectral statistics would need the spectrum).

    Returns
    -------
    np.ndarray, shape (n, frames), float32
    """
    x = _checked(x, kind, config)
    out = np.array(x, dtype=np.float32)
    if kind == "log_mel":
        out[mel_band_centres(config) > cutoff_hz, :] = np.float32(_floor_db(config))
    return out


def pitch_shift(x: np.ndarray, kind: str, semitones: float, config: FeatureConfig) -> np.ndarray:
    """The log-mel of the same music played ``semitones`` higher (lower if negative), same tempo.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
        A ``kind`` window computed with ``config``.
    kind : {"log_mel", "frame_vector"}
    semitones : float
        The shift; every frequency is multiplied by ``2 ** (semitones / 12)``.
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    ``log_mel``: each band takes the dB value found, by linear interpolation
    between band centres, at its own centre frequency divided by the shift
    factor. An approximation of resampled audio: band widths are not
    rescaled (a fraction of a dB for a few semitones), and bands whose source
    lies outside the analysed range repeat the edge band. Schlüter and
    Grill (2015) shift pitch on the mel axis the same way; here it stands
    for a new piece in the same instrumentation, so that a network learns a
    soundtrack's timbre rather than a track's key.
    ``frame_vector``: returned unchanged (MFCCs and spectral statistics of
    shifted audio are not a function of the frame vector).
    """
    x = _checked(x, kind, config)
    out = np.array(x, dtype=np.float32)
    if kind != "log_mel" or semitones == 0:
        return out
    centres = mel_band_centres(config)
    source = np.interp(centres / 2.0 ** (semitones / 12.0), centres, np.arange(len(centres), dtype=np.float64))
    return _read_between(out, source, axis=0)


def time_stretch(x: np.ndarray, rate: float, frames: int) -> np.ndarray:
    """``frames`` frames of the features of the music played ``rate`` times as fast, same pitch.

    Parameters
    ----------
    x : np.ndarray, shape (n, available)
        Consecutive frames from the window's start, at least
        :func:`stretch_source_frames` ``(rate, frames)`` of them.
    rate : float
        Speed factor, > 0: output frame ``j`` is input frame ``j * rate``.
    frames : int
        Frames to return.

    Returns
    -------
    np.ndarray, shape (n, frames), float32

    Notes
    -----
    Linear interpolation between neighbouring frames, for either feature
    kind. An approximation of a phase vocoder: every frame's spectrum is
    kept as it is (no pitch change), but onsets are smeared over a frame
    when slowing down and short notes may be skipped when speeding up.
    """
    x = np.asarray(x)
    if not rate > 0 or frames < 1:
        raise ParameterError(f"need rate > 0 and frames >= 1, got rate={rate}, frames={frames}")
    need = stretch_source_frames(rate, frames)
    if x.ndim != 2 or x.shape[1] < need:
        raise ParameterError(f"time_stretch needs (n, >= {need}) frames for rate {rate:g}, got shape {x.shape}")
    return _read_between(x, np.arange(frames, dtype=np.float64) * rate, axis=1)


def _read_between(x: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """``x`` (n, frames) read along ``axis`` at fractional ``positions`` (>= 0), linear between neighbours, float32."""
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    frac = (positions - low).astype(np.float32)
    frac = frac[:, None] if axis == 0 else frac[None, :]
    return (np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac).astype(np.float32)


def stretch_source_frames(rate: float, frames: int) -> int:
    """How many input frames :func:`time_stretch` reads to make ``frames`` at ``rate``."""
    return int(math.floor((frames - 1) * rate)) + 2


def mixup_pairs(n: int, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Partners and weights for mixup (Zhang et al., 2018); the mixing is done in torch.

    Parameters
    ----------
    n : int
        Batch size.
    alpha : float
        Beta(alpha, alpha) parameter; ``alpha <= 0`` means no mixing.
    rng : np.random.Generator

    Returns
    -------
    perm : np.ndarray, shape (n,), int64
        Sample ``i`` is mixed with sample ``perm[i]`` (a permutation).
    lam : np.ndarray, shape (n,), float32
        Per-sample weights in [0.5, 1]: ``x[i] = lam[i] x[i] + (1 - lam[i]) x[perm[i]]``
        and the same for the one-hot targets. ``max(l, 1 - l)`` of a Beta
        draw, so that each mixed sample is mostly itself.

    Notes
    -----
    Mixing log-mel windows averages dB values, which is not the log-mel of
    mixed audio; as in the usual practice, it regularises rather than
    simulates.
    """
    if n < 0:
        raise ParameterError(f"n must be >= 0, got {n}")
    perm = rng.permutation(n).astype(np.int64)
    if alpha <= 0:
        return perm, np.ones(n, dtype=np.float32)
    lam = rng.beta(alpha, alpha, size=n)
    return perm, np.maximum(lam, 1.0 - lam).astype(np.float32)


@dataclass
class AugmentConfig:
    """What :func:`augment_window` does, and how often.

    Each ``p_*`` is the probability, per window (per batch for mixup), that
    the augmentation is applied. :meth:`off` gives a config that changes
    nothing.
    """

    p_gain: float = 0.5  # a random gain: the same music played louder or softer
    gain_db: float = 6.0  # gain uniform in [-gain_db, +gain_db] dB
    p_noise: float = 0.3  # white noise added (log_mel only; see add_noise)
    snr_db: tuple[float, float] = (10.0, 40.0)  # SNR uniform in this range, dB (mel domain)
    crop_jitter: float = 0.0  # training windows start up to this fraction of a window earlier or later: a new crop every epoch
    p_shift: float = 0.5  # a circular time shift
    max_shift: float = 0.1  # at most this fraction of the window, either way
    p_mask: float = 0.5  # SpecAugment masks
    freq_masks: int = 2  # frequency masks (log_mel only)
    freq_width: int = 8  # widest frequency mask, mel bands
    time_masks: int = 2  # time masks
    time_width: int = 16  # widest time mask, frames (about 0.37 s at the defaults)
    p_mixup: float = 0.5  # a batch is mixed with a permutation of itself (in the training loop)
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) for the mixup weights
    p_eq: float = 0.0  # a random smooth equaliser (hides a recording's or mastering's colour)
    eq_db: float = 6.0  # the curve's peak is uniform in [0, eq_db] dB
    p_bandlimit: float = 0.0  # a random low-pass (log_mel only; hides codec and bandwidth cues)
    bandlimit_hz: tuple[float, float] = (3000.0, 11025.0)  # cut-off uniform in this range, Hz
    p_pitch: float = 0.0  # the window played higher or lower (log_mel only; see pitch_shift)
    pitch_semitones: float = 2.0  # shift uniform in [-pitch_semitones, +pitch_semitones]
    p_stretch: float = 0.0  # the window played faster or slower (see time_stretch)
    stretch: float = 0.15  # rate log-uniform in [1 / (1 + stretch), 1 + stretch]
    p_mix_class: float = 0.0  # a window of another track of the same class played along (log_mel only; see mix_in)
    mix_class_db: tuple[float, float] = (-12.0, 0.0)  # that window's gain uniform in this range, dB

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.startswith("p_") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ParameterError(f"{f.name} must be a probability in [0, 1], got {getattr(self, f.name)!r}")
        self.snr_db = tuple(float(v) for v in self.snr_db)  # type: ignore[assignment]
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ParameterError(f"snr_db must be (low, high) with low <= high, got {self.snr_db!r}")
        self.bandlimit_hz = tuple(float(v) for v in self.bandlimit_hz)  # type: ignore[assignment]
        if len(self.bandlimit_hz) != 2 or not 0 < self.bandlimit_hz[0] <= self.bandlimit_hz[1]:
            raise ParameterError(f"bandlimit_hz must be (low, high) with 0 < low <= high, got {self.bandlimit_hz!r}")
        self.mix_class_db = tuple(float(v) for v in self.mix_class_db)  # type: ignore[assignment]
        if len(self.mix_class_db) != 2 or not self.mix_class_db[0] <= self.mix_class_db[1] <= 0.0:
            raise ParameterError(f"mix_class_db must be (low, high) with low <= high <= 0 dB, got {self.mix_class_db!r}")
        if not 0.0 <= self.crop_jitter <= 1.0:
            raise ParameterError(f"crop_jitter is a fraction of the window, in [0, 1], got {self.crop_jitter!r}")
        for name in ("gain_db", "eq_db", "max_shift", "mixup_alpha", "freq_masks", "freq_width", "time_masks", "time_width",
                     "pitch_semitones"):
            if getattr(self, name) < 0:
                raise ParameterError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.max_shift > 1:
            raise ParameterError(f"max_shift is a fraction of the window, at most 1, got {self.max_shift}")
        if not 0.0 <= self.stretch <= 1.0:
            raise ParameterError(f"stretch is a fraction of the speed, in [0, 1], got {self.stretch!r}")

    def stretch_rate(self, rng: np.random.Generator) -> float:
        """A random speed factor for one window: 1 unless stretching is on and drawn (draws nothing when off)."""
        if not (self.p_stretch and self.stretch) or rng.random() >= self.p_stretch:
            return 1.0
        return float((1.0 + self.stretch) ** rng.uniform(-1.0, 1.0))

    @classmethod
    def off(cls) -> AugmentConfig:
        """A config that applies nothing (every probability 0)."""
        return cls(p_gain=0.0, p_noise=0.0, p_shift=0.0, p_mask=0.0, p_mixup=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready fields (``snr_db`` as a list)."""
        data = dataclasses.asdict(self)
        data["snr_db"] = list(self.snr_db)
        data["bandlimit_hz"] = list(self.bandlimit_hz)
        data["mix_class_db"] = list(self.mix_class_db)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        refuse_unknown_fields(cls, data, "AugmentConfig field(s)")
        return cls(**dict(data))


def augment_window(
    x: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    config: FeatureConfig,
    noise_profile: np.ndarray | None,
) -> np.ndarray:
    """Apply a random selection of pitch shift, gain, EQ, band limit, noise, time shift and masks to one window.

    Parameters
    ----------
    x : np.ndarray, shape (n, frames)
        An un-normalised ``kind`` window (augment before normalising).
    kind : {"log_mel", "frame_vector"}
    rng : np.random.Generator
    cfg : AugmentConfig
    config : FeatureConfig
        The config the features were computed with.
    noise_profile : np.ndarray of shape (n_mels,), or None
        :func:`white_noise_profile` (computed and cached if None).

    Returns
    -------
    np.ndarray, shape (n, frames), float32
        A new array; in order: pitch shift, gain, EQ, band limit and noise (these three log_mel only), shift, masks
        (time masks only for frame_vector). Mixup is the training loop's
        (:func:`mixup_pairs`).
    """
    out = np.array(_checked(x, kind, config), dtype=np.float32)
    # The optional ones are drawn only when enabled, so that the default's random stream (and its runs) are unchanged.
    if kind == "log_mel" and cfg.p_pitch and rng.random() < cfg.p_pitch:
        out = pitch_shift(out, kind, float(rng.uniform(-cfg.pitch_semitones, cfg.pitch_semitones)), config)
    if cfg.p_gain and rng.random() < cfg.p_gain:
        out = gain(out, kind, float(rng.uniform(-cfg.gain_db, cfg.gain_db)), config)
    if cfg.p_eq and rng.random() < cfg.p_eq:
        out = equalize(out, kind, random_eq_curve(config.n_mels, cfg.eq_db, rng), config)
    if kind == "log_mel" and cfg.p_bandlimit and rng.random() < cfg.p_bandlimit:
        out = band_limit(out, kind, float(rng.uniform(*cfg.bandlimit_hz)), config)
    if kind == "log_mel" and cfg.p_noise and rng.random() < cfg.p_noise:
        out = add_noise(out, kind, float(rng.uniform(*cfg.snr_db)), config, noise_profile)
    if cfg.p_shift and rng.random() < cfg.p_shift:
        out = time_shift(out, int(round(cfg.max_shift * out.shape[1])), rng)
    if cfg.p_mask and rng.random() < cfg.p_mask:
        out = spec_augment(
            out,
            rng,
            freq_masks=cfg.freq_masks if kind == "log_mel" else 0,
            freq_width=cfg.freq_width,
            time_masks=cfg.time_masks,
            time_width=cfg.time_width,
        )
    return out


def pitch_shift_offline(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], semitones: float, sample_rate: int
) -> Path:
    """Write a pitch-shifted copy of an audio file (workstation only: uses librosa).

    Parameters
    ----------
    src : path-like
        Any file :func:`pyharmonies.audio.load` reads.
    dst : path-like
        Output file; the format follows the suffix (``.wav`` is 16-bit PCM,
        soundfile's default); its folder is made.
    semitones : float
        Shift in semitones (negative: down), tempo kept
        (``librosa.effects.pitch_shift``: phase vocoder plus resampling).
    sample_rate : int
        Rate to decode at and to write.

    Returns
    -------
    Path
        ``dst``.

    Notes
    -----
    The result is scaled down if its peak would clip (>= 1.0), never up.
    Add the files to a manifest with the source's label and *track*, so
    that a shifted copy never lands in another split than its original.
    """
    import librosa
    import soundfile as sf

    from pyharmonies.audio import load

    y = load(src, sample_rate)
    shifted = librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=float(semitones))
    peak = float(np.max(np.abs(shifted))) if shifted.size else 0.0
    if peak >= 1.0:
        shifted = shifted * (0.999 / peak)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), np.asarray(shifted, dtype=np.float32), sample_rate)
    return dst
