"""Decode, mix to mono and resample audio files (soundfile + soxr).

Device side: imports numpy, soundfile and soxr only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyharmonies.errors import AudioError, ParameterError

#: File extensions the loaders look for when scanning folders.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of soundfile's ``(frames, channels)`` layout.

    Parameters
    ----------
    y : np.ndarray, shape (frames,) or (frames, channels)

    Returns
    -------
    np.ndarray, shape (frames,)
    """
    if y.ndim == 1:
        return y
    if y.ndim == 2:
        return y.mean(axis=1, dtype=np.float64).astype(y.dtype, copy=False)
    raise ParameterError(f"audio must be 1-D or (frames, channels), got shape {y.shape}")


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float signal with soxr (high quality).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    orig_sr, target_sr : int
        Rates in Hz.

    Returns
    -------
    np.ndarray, shape (round(n * target_sr / orig_sr),), float32
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr or y.size == 0:
        return y
    import soxr

    return np.asarray(soxr.resample(y, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def load(path: str | os.PathLike[str], sample_rate: int, *, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...).
    sample_rate : int
        Target rate in Hz.
    start_s, end_s : float, optional
        Only this time range of the file, in seconds.

    Returns
    -------
    np.ndarray, shape (n,), float32

    Raises
    ------
    AudioError
        The file is missing, unreadable, empty, or not audio; the message
        names the file and the reason.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    try:
        with sf.SoundFile(str(path)) as f:
            orig_sr = f.samplerate
            start = max(0, int(round(start_s * orig_sr)))
            stop = f.frames if end_s is None else min(f.frames, int(round(end_s * orig_sr)))
            if stop <= start:
                raise AudioError(f"{path}: no audio in the range {start_s}..{end_s} s (file has {f.frames / orig_sr:.2f} s)")
            f.seek(start)
            y = f.read(stop - start, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    if y.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    mono = to_mono(y)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{path}: decoded samples contain NaN or Inf")
    return resample(mono, orig_sr, sample_rate)
