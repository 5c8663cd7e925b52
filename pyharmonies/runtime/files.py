"""Whole files: decode block by block, extract the bundle's features, cut windows, vote.

A file is classified the way training evaluated clips: the features of the
file from the C core at the bundle's sample rate, windows of
``window_frames`` every ``hop_frames`` (half a window unless the bundle says
otherwise; frames after the last whole window are not used, and a file
shorter than one window gives one window padded with the features of
silence), the probabilities of each window, and their mean as the vote.

A bundle with an SVM fused (``train --fuse-svm``) also gets the file's
frame vectors from the same extractor; the SVM reads their mean and
standard deviation over each back-to-back piece of the file as long as its
training clips (:class:`~pyharmonies.runtime.svm.SegmentStatistics`), and the
answer is the fusion of the pieces' mean calibrated probabilities with the
vote (:mod:`pyharmonies.runtime.svm`).

The file is read in blocks (:func:`pyharmonies.audio.iter_blocks`), pushed
through the native streaming extractor and cut into windows as their frames
arrive (:class:`pyharmonies.windows.WindowCutter`); windows are run in
batches of ``batch_size``. What is kept is one block of audio, the frames of
the window being filled, one batch of windows, and the probabilities of
every window (``n_labels`` floats each: 3600 windows for an hour at a 1 s
hop), so memory does not grow with the file beyond those probabilities.
The streamed features equal whole-file extraction bit for bit, and the
blocks equal whole-file decoding and resampling, so the windows are those
of :func:`feature_windows` over the whole file's features.

Device side: numpy, soundfile, soxr, the feature core and one runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.audio import iter_blocks
from pyharmonies.errors import AudioError, ParameterError
from pyharmonies.runtime.classifier import WindowClassifier
from pyharmonies.runtime.svm import SegmentStatistics, fuse_probabilities
from pyharmonies.windows import InputFeatureStream, WindowCutter, take_window, window_starts

__all__ = ["FileResult", "WindowPrediction", "classify_blocks", "classify_file", "classify_signal", "feature_windows", "window_starts"]

#: Windows per runtime call (the TFLite files run one window at a time anyway).
BATCH_SIZE = 32


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
    model_probs, svm_probs : np.ndarray, shape (n_labels,), or None
        A bundle with an SVM fused (``train --fuse-svm``): ``probs`` is the
        fusion, and these the network's vote and the SVM's answer (the mean
        over the file's clip-long pieces) that it fused.
    """

    path: Path | None
    labels: tuple[str, ...]
    probs: np.ndarray = field(repr=False)
    top: list[tuple[str, float]]
    windows: list[WindowPrediction] = field(repr=False)
    duration_s: float
    padded: bool
    model_probs: np.ndarray | None = field(default=None, repr=False)  # with an SVM fused: the network's vote alone
    svm_probs: np.ndarray | None = field(default=None, repr=False)  # and the calibrated SVM's answer alone

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
            **({"model_probs": {name: round(float(p), 6) for name, p in zip(self.labels, self.model_probs)},
                "svm_probs": {name: round(float(p), 6) for name, p in zip(self.labels, self.svm_probs)}}
               if self.model_probs is not None and self.svm_probs is not None else {}),
        }  # fmt: skip


def feature_windows(classifier: WindowClassifier, features: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Cut a whole clip's raw features ``(rows, frames)`` into windows ``(n, rows, window_frames)`` and their starts."""
    starts = window_starts(features.shape[1], classifier.window_frames, classifier.hop_frames)
    if not starts:
        return np.zeros((0, classifier.rows, classifier.window_frames), dtype=np.float32), []
    stack = np.stack([take_window(features, s, classifier.window_frames, classifier.pad_values) for s in starts])
    return stack, starts


def classify_blocks(
    classifier: WindowClassifier,
    blocks: Iterable[np.ndarray],
    *,
    top_k: int = 3,
    path: str | os.PathLike[str] | None = None,
    batch_size: int = BATCH_SIZE,
) -> FileResult:
    """Classify a mono signal that arrives in blocks, already at the bundle's sample rate.

    Parameters
    ----------
    classifier : WindowClassifier
    blocks : iterable of np.ndarray, each shape (m,)
        Consecutive pieces of the signal (any sizes), mono float32 at
        ``classifier.feature_config.sample_rate``; e.g.
        :func:`~pyharmonies.audio.iter_blocks`.
    top_k : int
        Labels kept in :attr:`FileResult.top`.
    path : path-like, optional
        Recorded in the result, and named in errors.
    batch_size : int
        Windows per runtime call.

    Returns
    -------
    FileResult
        The same, whatever the block sizes.

    Raises
    ------
    AudioError
        The signal is too short to give one frame (only with ``center=False``).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    config, kind = classifier.feature_config, classifier.kind
    fusion = classifier.bundle.svm
    stream = InputFeatureStream(config, [kind, "frame_vector"] if fusion is not None else [kind])
    statistics = None
    if fusion is not None:
        statistics = SegmentStatistics(fusion.model.svm.features // 2, fusion.clip_frames(config.sample_rate, config.hop_length))
    cutter = WindowCutter(classifier.rows, classifier.window_frames, classifier.hop_frames, classifier.pad_values)
    starts: list[int] = []
    pending: list[np.ndarray] = []  # windows not run yet: fewer than batch_size, then run
    chunks: list[np.ndarray] = []  # probabilities (k, n_labels), in window order

    def take(windows: np.ndarray, first: list[int], final: bool = False) -> None:
        starts.extend(first)
        pending.extend(windows)
        while len(pending) >= batch_size or (final and pending):
            batch = pending[:batch_size]
            del pending[:batch_size]
            chunks.append(classifier.predict_batch(np.stack(batch)))

    n_samples = 0
    for block in blocks:
        n_samples += len(block)
        frames = stream.push(block)
        take(*cutter.push(frames[kind]))
        if statistics is not None:
            statistics.push(frames["frame_vector"])
    frames = stream.flush()
    take(*cutter.push(frames[kind]))
    if statistics is not None:
        statistics.push(frames["frame_vector"])
    n_frames = cutter.frames
    take(*cutter.finish(), final=True)
    if not starts:
        where = f"{path}: " if path is not None else ""
        raise AudioError(f"{where}too short to classify ({n_samples} samples give no frame of {config.n_fft})")
    probs = np.concatenate(chunks)  # (n, n_labels)
    frame_s = config.hop_length / config.sample_rate
    length_s = classifier.window_frames * frame_s
    preds = []
    for start, p in zip(starts, probs):
        best = int(np.argmax(p))
        preds.append(WindowPrediction(start * frame_s, start * frame_s + length_s, p, classifier.labels[best], float(p[best])))
    vote = probs.mean(axis=0).astype(np.float32)
    model_probs = svm_probs = None
    if fusion is not None and statistics is not None:
        model_probs, svm_probs = vote, fusion.file_probabilities(statistics).astype(np.float32)
        vote = fuse_probabilities(model_probs, svm_probs, fusion.weight).astype(np.float32)
    return FileResult(
        path=None if path is None else Path(path),
        labels=classifier.labels,
        probs=vote,
        top=classifier.top(vote, top_k),
        windows=preds,
        duration_s=n_samples / config.sample_rate,
        padded=n_frames < classifier.window_frames,
        model_probs=model_probs,
        svm_probs=svm_probs,
    )


def classify_signal(
    classifier: WindowClassifier, y: np.ndarray, *, top_k: int = 3, path: str | os.PathLike[str] | None = None
) -> FileResult:
    """Classify a whole mono signal already at the bundle's sample rate (see :func:`classify_blocks`).

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
    y = np.asarray(y)
    step = 16 * classifier.feature_config.sample_rate  # the features of 16 s at a time, not of the whole signal
    return classify_blocks(classifier, (y[i : i + step] for i in range(0, max(len(y), 1), step)), top_k=top_k, path=path)


def classify_file(classifier: WindowClassifier, path: str | os.PathLike[str], *, top_k: int = 3) -> FileResult:
    """Classify an audio file: every window, then the vote.

    Parameters
    ----------
    classifier : WindowClassifier
    path : path-like
        Any format libsndfile reads; decoded block by block, mixed to mono
        and resampled (soxr) to the bundle's sample rate.
    top_k : int
        Labels kept in :attr:`FileResult.top`.

    Returns
    -------
    FileResult

    Raises
    ------
    AudioError
        The file is missing, cannot be decoded, or its header is refused
        (the message names it).

    Warns
    -----
    pyharmonies.audio.AudioWarning
        The file is truncated; what it holds is classified.
    """
    blocks = iter_blocks(path, classifier.feature_config.sample_rate)
    return classify_blocks(classifier, blocks, top_k=top_k, path=path)
