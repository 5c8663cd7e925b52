"""The bundle's golden self-check: reference audio and what every exported file gives for it.

The reference is a few windows of real audio from the run's verification
split (its validation clips, or test clips when it has no validation
split): a trained model gives such audio confident, distinct
probabilities, which synthetic noise would not. The windows are chosen
greedily among up to :data:`MAX_CANDIDATES` verification windows so that,
for every model file, every pair of labels differs in log-probability by
more than :data:`SEPARATION` times the file's tolerance in at least one
window (then a swap of the two labels cannot hide in the noise), with a
clear top-1 wherever a window allows one. Usually one or two windows do it;
at most ``max_windows`` are kept. The chosen windows, each ``window_frames``
hops long, are concatenated and written as 16-bit WAV at the bundle's
sample rate; the expected values are then computed from that WAV as the
device reads it, through the device runtime itself
(:mod:`pyharmonies.runtime.selfcheck`), so export and load run the same code.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.runtime.selfcheck import (
    REFERENCE_FILE,
    TOLERANCE,
    file_log_probs,
    normalized_means,
    read_reference_audio,
    reference_windows,
)

#: Verification windows considered for the reference (evenly spaced over the split).
MAX_CANDIDATES = 48

#: A window separates two labels when their log-probabilities differ by more than this many
#: tolerances: 2 makes a swap exceed the tolerance whatever the noise; the third absorbs the
#: small change a window's edge frames see once the windows are concatenated.
SEPARATION = 3.0


def candidate_segments(
    sources: Sequence[tuple[Path, float, int]], sample_rate: int, hop_length: int, window_frames: int, *, limit: int = MAX_CANDIDATES
) -> list[tuple[np.ndarray, str, float]]:
    """Audio of verification windows, as training cut them.

    Parameters
    ----------
    sources : sequence of (path, clip start in seconds, first frame in the clip)
        :attr:`RunSource.x_sources <pyharmonies.export.source.RunSource>`.
    sample_rate, hop_length, window_frames : int
        The bundle's.
    limit : int
        At most this many, evenly spaced over ``sources``.

    Returns
    -------
    list of (np.ndarray of shape (window_frames * hop_length,), file name, start in seconds)
        Windows whose audio is shorter than a whole window are left out.
    """
    from pyharmonies.audio import load

    if not sources:
        return []
    picks = np.unique(np.linspace(0, len(sources) - 1, num=min(limit, len(sources))).round().astype(int))
    length = window_frames * hop_length
    decoded: dict[Path, np.ndarray] = {}
    out = []
    for i in picks:
        path, start_s, start = sources[int(i)]
        if path not in decoded:
            decoded[path] = load(path, sample_rate)
        # The clip's first frame in its file: the first whose centre lies at or after start_s.
        first = max(0, math.ceil(start_s * sample_rate / hop_length - 1e-9))
        s0 = (first + start) * hop_length
        segment = decoded[path][s0 : s0 + length]
        if segment.shape[0] == length:
            out.append((np.ascontiguousarray(segment, dtype=np.float32), Path(path).name, round(s0 / sample_rate, 3)))
    return out


def synthetic_segments(sample_rate: int, hop_length: int, window_frames: int, n: int = 4) -> list[tuple[np.ndarray, str, float]]:
    """Deterministic stand-ins when the run has no whole verification window of audio: seeded noise and chords."""
    length = window_frames * hop_length
    rng = np.random.default_rng(0)
    t = np.arange(length) / sample_rate
    out = []
    for k in range(n):
        tones = sum(np.sin(2 * np.pi * f0 * (k + 1) * t) for f0 in (110.0, 138.6, 164.8))
        y = 0.1 * tones / 3 + 0.02 * (k + 1) * rng.standard_normal(length)
        out.append((y.astype(np.float32), f"synthetic-{k}", 0.0))
    return out


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _separated(lp: np.ndarray, pairs: list[tuple[int, int]], margin: float) -> np.ndarray:
    """``(windows, pairs)``: whether each window tells each pair of labels apart by more than ``margin``."""
    if not pairs:
        return np.zeros((lp.shape[0], 0), dtype=bool)
    i, j = np.asarray(pairs).T
    return np.abs(lp[:, i] - lp[:, j]) > margin


def _clear_top(lp: np.ndarray, margin: float) -> np.ndarray:
    ranked = np.sort(lp, axis=1)
    return (ranked[:, -1] - ranked[:, -2] > margin) if lp.shape[1] > 1 else np.ones(lp.shape[0], dtype=bool)


def choose_windows(log_probs: dict[str, np.ndarray], tolerances: dict[str, float], max_windows: int) -> list[int]:
    """Greedy choice of candidate windows that separate every pair of labels for every file.

    Parameters
    ----------
    log_probs : dict of str to np.ndarray, shape (candidates, n_labels)
        Per model file.
    tolerances : dict of str to float
        Per model file, nats.
    max_windows : int

    Returns
    -------
    list of int
        Candidate indices, at least one, at most ``max_windows``.
    """
    names = list(log_probs)
    n_cand, n_labels = next(iter(log_probs.values())).shape
    pairs = _pairs(n_labels)
    # (candidates, files * pairs): which (file, pair) each candidate covers.
    covers = np.concatenate([_separated(log_probs[f], pairs, SEPARATION * tolerances[f]) for f in names], axis=1)
    clear = np.all([_clear_top(log_probs[f], SEPARATION * tolerances[f]) for f in names], axis=0)
    eligible = np.flatnonzero(clear) if clear.any() else np.arange(n_cand)
    chosen: list[int] = []
    covered = np.zeros(covers.shape[1], dtype=bool)
    while len(chosen) < max_windows:
        gains = (covers[eligible] & ~covered).sum(axis=1)
        best = int(np.argmax(gains))
        if chosen and gains[best] == 0:
            break
        chosen.append(int(eligible[best]))
        covered |= covers[eligible[best]]
        eligible = np.delete(eligible, best)
        if covered.all() or eligible.size == 0:
            break
    return chosen


def build_reference(
    bundle_dir: str | Path, segments: list[tuple[np.ndarray, str, float]], *, max_windows: int = 4
) -> tuple[dict[str, Any], list[str]]:
    """Write ``reference.wav`` into a bundle folder and compute the manifest's ``reference`` entry.

    Parameters
    ----------
    bundle_dir : path
        The model files and a provisional ``manifest.json`` (without
        ``reference``); the runtime loads it with ``selfcheck=False``.
    segments : list of (np.ndarray, str, float)
        Candidate windows of audio, ``window_frames * hop_length`` samples
        each (:func:`candidate_segments`).
    max_windows : int
        Reference windows kept at most.

    Returns
    -------
    entry : dict
        The ``reference`` entry (see ``export/README.md``).
    notes : list of str
        Label pairs that a file's reference cannot tell apart (a swap of
        them would pass the check), in words; empty when every pair is covered.
    """
    import soundfile as sf

    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier

    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir, selfcheck=False)
    config, W = bundle.feature_config, bundle.window_frames
    if not segments:
        segments = synthetic_segments(config.sample_rate, config.hop_length, W)
    classifiers = {name: WindowClassifier(bundle, make_backend(bundle, mf.runtime, mf.precision)) for name, mf in bundle.files.items()}
    tolerances = {name: TOLERANCE[mf.precision] for name, mf in bundle.files.items()}

    candidates = np.stack([reference_windows(bundle, y, [0])[1][0] for y, _, _ in segments])
    scores = {name: file_log_probs(clf, candidates) for name, clf in classifiers.items()}
    chosen = choose_windows(scores, tolerances, max_windows)

    audio = np.clip(np.concatenate([segments[i][0] for i in chosen]), -1.0, 1.0)
    path = bundle_dir / REFERENCE_FILE
    sf.write(str(path), audio, config.sample_rate, subtype="PCM_16")
    y = read_reference_audio(path, config.sample_rate)
    starts = [k * W for k in range(len(chosen))]
    frames, windows = reference_windows(bundle, y, starts)
    expected = {name: file_log_probs(clf, windows) for name, clf in classifiers.items()}

    notes = []
    pairs = _pairs(len(bundle.labels))
    for name, lp in expected.items():
        missed = ~_separated(lp, pairs, 2 * tolerances[name]).any(axis=0)
        if missed.any():
            names = ", ".join(f"{bundle.labels[i]}/{bundle.labels[j]}" for (i, j), m in zip(pairs, missed) if m)
            notes.append(f"{name}: the reference cannot tell {names} apart (a swap of them would pass the self-check)")

    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    entry = {
        "file": REFERENCE_FILE,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "sample_rate": config.sample_rate,
        "samples": int(y.shape[0]),
        "frames": int(frames),
        "window_starts": starts,
        "source": [{"file": segments[i][1], "start_s": segments[i][2]} for i in chosen],
        "tolerance_nats": {name: tolerances[name] for name in bundle.files},
        "feature_means": _rounded(windows.astype(np.float64).mean(axis=2)),
        "normalized_means": _rounded(normalized_means(bundle, windows)),
        "expected": {
            name: {label: [_round(v) for v in lp[:, i]] for i, label in enumerate(bundle.labels)} for name, lp in expected.items()
        },
    }
    return entry, notes


def _round(v: float) -> float:
    # 9 significant digits: a float32-exact value, far below every tolerance of the check.
    return float(f"{float(v):.9g}")


def _rounded(a: np.ndarray) -> list[list[float]]:
    return [[_round(v) for v in row] for row in a]
