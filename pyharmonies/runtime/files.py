"""Whole files: decode, extract the bundle's features, cut windows, vote.

A file is classified the way training evaluated clips: features of the
whole file from the C core at the bundle's sample rate, windows of
``window_frames`` every ``hop_frames`` (half a window unless the bundle says
otherwise; frames after the last whole window are not used, and a file
shorter than one window gives one window padded with the features of
silence), the probabilities of each window, and their mean as the vote.

Device side: numpy, soundfile, soxr, the feature core and one runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.audio import load
from pyharmonies.errors import AudioError
from pyharmonies.runtime.classifier import WindowClassifier, input_features


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a file and its probabilities."""

    start_s: float  # time of the window's first frame (frame t is centred on t * hop_length / sample_rate)
    end_s: float  # start_s + the window's length
    probs: np.ndarray = field(repr=False)  # (n_labels,), sums to 1
    label: str = ""  # the most probable label
    confidence: float = 0.0  # its probability


@dataclass(frozen=True)
class FileResult:
    """The classification of one file.

    Attributes
    ----------
    path : Path or None
    labels : tuple of str
        The bundle's labels (the order of every ``probs``).
    probs : np.ndarray, shape (n_labels,)
        The vote: the mean of the windows' probabilities.
    top : list of (str, float)
        The ``top_k`` labels of the vote, most probable first.
    windows : list of WindowPrediction
    duration_s : float
        Seconds of audio classified.
    padded : bool
        The file was shorter than one window, so its one window was padded
        with silence.
    """

    path: Path | None
    labels: tuple[str, ...]
    probs: np.ndarray = field(repr=False)
    top: list[tuple[str, float]]
    windows: list[WindowPrediction] = field(repr=False)
    duration_s: float
    padded: bool

    @property
    def label(self) -> str:
        """The winning label."""
        return self.top[0][0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what ``harmonies classify --json`` prints)."""
        return {
            "path": None if self.path is None else str(self.path),
            "label": self.label,
            "top": [{"label": name, "prob": round(p, 6)} for name, p in self.top],
            "probs": {name: round(float(p), 6) for name, p in zip(self.labels, self.probs)},
            "duration_s": round(self.duration_s, 3),
            "padded": self.padded,
            "windows": [
                {"start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3), "label": w.label, "prob": round(w.confidence, 6)}
                for w in self.windows
            ],
        }


def window_starts(frames: int, window: int, hop: int) -> list[int]:
    """First frames of the windows of a clip of ``frames`` frames.

    As :func:`pyharmonies.data.windows.make_windows` cuts training clips:
    ``0, hop, 2 hop, ...`` while a whole window fits; one window at 0 for
    ``0 < frames < window``; none for no frames.
    """
    from pyharmonies.data.windows import make_windows

    return [w.start for w in make_windows([frames], window, hop)]


def feature_windows(classifier: WindowClassifier, features: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Cut raw features ``(rows, frames)`` into windows ``(n, rows, window_frames)`` and their starts."""
    from pyharmonies.data.windows import take_window

    starts = window_starts(features.shape[1], classifier.window_frames, classifier.hop_frames)
    if not starts:
        return np.zeros((0, classifier.rows, classifier.window_frames), dtype=np.float32), []
    stack = np.stack([take_window(features, s, classifier.window_frames, classifier.pad_values) for s in starts])
    return stack, starts


def classify_signal(
    classifier: WindowClassifier, y: np.ndarray, *, top_k: int = 3, path: str | os.PathLike[str] | None = None
) -> FileResult:
    """Classify a mono signal already at the bundle's sample rate.

    Parameters
    ----------
    classifier : WindowClassifier
    y : np.ndarray, shape (n_samples,)
        Mono float32 audio at ``classifier.feature_config.sample_rate``.
    top_k : int
        Labels kept in :attr:`FileResult.top`.
    path : path-like, optional
        Recorded in the result.

    Returns
    -------
    FileResult

    Raises
    ------
    AudioError
        The signal is too short to give one frame (only with ``center=False``).
    """
    config = classifier.feature_config
    features = input_features(y, config, classifier.kind)
    windows, starts = feature_windows(classifier, features)
    if not starts:
        where = f"{path}: " if path is not None else ""
        raise AudioError(f"{where}too short to classify ({len(y)} samples give no frame of {config.n_fft})")
    probs = classifier.predict_batch(windows)  # (n, n_labels)
    frame_s = config.hop_length / config.sample_rate
    length_s = classifier.window_frames * frame_s
    preds = []
    for start, p in zip(starts, probs):
        best = int(np.argmax(p))
        preds.append(WindowPrediction(start * frame_s, start * frame_s + length_s, p, classifier.labels[best], float(p[best])))
    vote = probs.mean(axis=0).astype(np.float32)
    return FileResult(
        path=None if path is None else Path(path),
        labels=classifier.labels,
        probs=vote,
        top=classifier.top(vote, top_k),
        windows=preds,
        duration_s=len(y) / config.sample_rate,
        padded=features.shape[1] < classifier.window_frames,
    )


def classify_file(classifier: WindowClassifier, path: str | os.PathLike[str], *, top_k: int = 3) -> FileResult:
    """Classify an audio file: every window, then the vote.

    Parameters
    ----------
    classifier : WindowClassifier
    path : path-like
        Any format libsndfile reads; mixed to mono and resampled (soxr) to
        the bundle's sample rate.
    top_k : int
        Labels kept in :attr:`FileResult.top`.

    Returns
    -------
    FileResult

    Raises
    ------
    AudioError
        The file is missing or cannot be decoded (the message names it).
    """
    y = load(path, classifier.feature_config.sample_rate)
    return classify_signal(classifier, y, top_k=top_k, path=path)
