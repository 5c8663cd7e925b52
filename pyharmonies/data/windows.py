"""Fixed-length windows of feature frames, cut from each clip.

A model sees ``window`` frames at a time (3 s by default: 129 frames at
22050 Hz with hop 512). Windows keep their clip's index, hence its split: a
window is never in a split its clip is not. A clip shorter than one window
gives one window, padded at the end with the features of digital silence
(:func:`silence_values`), which is also what a stream sees before a sound.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, extract


def window_frames(seconds: float, config: FeatureConfig) -> int:
    """Frames in a window of ``seconds``.

    Parameters
    ----------
    seconds : float
        Window length, > 0.
    config : FeatureConfig

    Returns
    -------
    int
        ``round(seconds * sample_rate / hop_length)``, at least 1 (e.g. 129
        for 3 s at the defaults).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) or not seconds > 0:
        raise ParameterError(f"window length must be a positive number of seconds, got {seconds!r}")
    return max(1, int(round(float(seconds) * config.sample_rate / config.hop_length)))


@dataclass(frozen=True)
class Window:
    """One window: the index of its clip and its first frame in the clip's features."""

    clip: int
    start: int


def make_windows(frame_counts: Sequence[int], window: int, hop: int) -> list[Window]:
    """Cut every clip into windows.

    Parameters
    ----------
    frame_counts : sequence of int
        Frames of each clip (``features.shape[1]``).
    window : int
        Frames per window, >= 1.
    hop : int
        Frames between the starts of successive windows, >= 1.

    Returns
    -------
    list of Window
        Per clip in order, windows starting at 0, hop, 2 hop... while
        ``start + window <= frames`` (frames after the last whole window are
        not used); a clip with ``0 < frames < window`` gets one window at 0,
        to be padded by :func:`take_window`; a clip with no frames, none.
    """
    for name, value in (("window", window), ("hop", hop)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be an integer >= 1 (frames), got {value!r}")
    out: list[Window] = []
    for clip, n in enumerate(frame_counts):
        n = int(n)
        if n <= 0:
            continue
        if n < window:
            out.append(Window(clip, 0))
            continue
        out.extend(Window(clip, start) for start in range(0, n - window + 1, hop))
    return out


def take_window(features: np.ndarray, start: int, window: int, pad_value: np.ndarray | float) -> np.ndarray:
    """Copy one window out of a clip's features, padding past its end.

    Parameters
    ----------
    features : np.ndarray, shape (n, frames)
        A clip's features (a memmap is fine: only the window is read).
    start : int
        First frame, ``0 <= start``.
    window : int
        Frames to return.
    pad_value : np.ndarray of shape (n,), or float
        Value of the missing frames, per row (e.g. ``silence_values(config)[kind]``).

    Returns
    -------
    np.ndarray, shape (n, window), float32, C-contiguous
        A new array (writing to it never touches ``features``).
    """
    if features.ndim != 2:
        raise ParameterError(f"features must be (n, frames), got shape {features.shape}")
    if start < 0 or window < 1:
        raise ParameterError(f"need start >= 0 and window >= 1, got start={start}, window={window}")
    n = features.shape[0]
    out = np.empty((n, window), dtype=np.float32)
    part = features[:, start : start + window]
    got = part.shape[1]
    out[:, :got] = part
    if got < window:
        pad = np.asarray(pad_value, dtype=np.float32)
        if pad.ndim == 1 and pad.shape[0] != n:
            raise ParameterError(f"pad_value has {pad.shape[0]} values, the features {n} rows")
        out[:, got:] = pad.reshape(-1, 1) if pad.ndim == 1 else pad
    return out


def silence_values(config: FeatureConfig) -> dict[str, np.ndarray]:
    """The features of digital silence, per kind: the padding of short clips.

    Parameters
    ----------
    config : FeatureConfig

    Returns
    -------
    dict of str to np.ndarray
        ``"log_mel"``: shape (n_mels,), all ``10 log10(amin / max(amin, ref))``
        (-100 dB at the defaults); ``"frame_vector"``: shape (n_mfcc + 8,),
        the frame vector of zeros (MFCC 0 is ``-100 * sqrt(n_mels)``, the
        others about 0; flatness 1; the rest 0). Computed once per config
        with :func:`~pyharmonies.features.extract`; read-only arrays.
    """
    return dict(_silence(config))


@functools.lru_cache(maxsize=16)
def _silence(config: FeatureConfig) -> tuple[tuple[str, np.ndarray], ...]:
    zeros = np.zeros(4 * config.n_fft + 8 * config.hop_length, dtype=np.float32)
    feats = extract(zeros, config, features=["log_mel", *FRAME_VECTOR_FEATURES])
    middle = feats["log_mel"].shape[1] // 2  # away from the edges (flux compares with the previous frame)
    log_mel = np.array(feats["log_mel"][:, middle], dtype=np.float32)
    vector = np.concatenate([feats[name][:, middle] for name in FRAME_VECTOR_FEATURES]).astype(np.float32)
    for array in (log_mel, vector):
        array.flags.writeable = False
    return (("log_mel", log_mel), ("frame_vector", vector))
