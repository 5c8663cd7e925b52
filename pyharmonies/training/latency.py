"""The decision-latency curve: clip accuracy against the seconds of audio heard.

``harmonies listen`` answers once per hop, from the windows it has heard so
far, smoothed. How long must it listen before its answer can be trusted?
This module replays, for every test clip, the answers ``listen`` would
print, and measures the accuracy of the answer shown after each number of
seconds heard.

The answers are ``listen``'s own:

- *windowing*: a window of the model's ``W`` frames every hop from the
  clip's first frame (the run's hop, which its bundle records and
  ``listen`` uses by default; a bundle's ``input.hop_frames``); the ``k``-th
  answer (``k = 0, 1, ...``) comes after ``(W + k * hop) * hop_length /
  sample_rate`` seconds, the time ``listen`` prints beside it;
- *smoothing*: :class:`~pyharmonies.stream.smoothing.Smoother`, fresh for
  each clip (as for a new file), ``ema`` by default (``listen``'s default),
  or ``vote`` or ``none``; ``mean`` (not a ``listen`` choice) is the
  running mean of every window heard so far, the clip vote of
  ``harmonies evaluate``: its last answer is the clip-level figure;
- the answer is the top label of the smoothed probabilities, whatever its
  confidence (``listen --threshold 0``; a threshold only hides answers).

``listen --hop`` and ``--window`` (a result averaging several windows) are
not modelled: the curve is for ``listen``'s defaults.

*The path*: a bundle is measured the way ``listen`` runs it by default. An
LSTM bundle with a step model streams statefully (each frame through the
LSTM once, the state carried; :mod:`pyharmonies.training.bundle_stream`):
its answers are the stream's results at the same frames, each clip a fresh
stream, and the windows' probabilities below are those results'. Other
bundles, and training runs (PyTorch), run the window model over each
window. ``streaming`` forces either path for a bundle (``--streaming`` /
``--windowed``).

Each window is classified once (:func:`score_clips`); every point of the
curve is derived from those probabilities (:func:`accuracy_curve`).

Two curves:

- *from the start*: the answers from the clip's first window on;
- *from a random point*: the answers starting at a window drawn uniformly
  among the clip's windows (seeded by ``seed`` and the clip's key, so a
  clip gets the same start whatever else is evaluated), wrapping around to
  the clip's first window after its last. Wrapping, rather than stopping at
  the clip's end, keeps every clip in every point of the curve, and each
  answer still rests on as many windows as the seconds heard say; the
  windows are the same as from the start (only their order changes), so
  with ``mean`` smoothing both curves end on the same figure. A stream
  switched on mid-song sees the frames as the offline features have them
  (the extractor's state as if it had been running), which differs from a
  freshly started one in the left padding of the very first frame only.
  A stateful stream cannot be rolled: it is started afresh (zero state) at
  the random window's first frame and fed the clip's frames from there,
  wrapping to its first frame after its last. It gives as many answers,
  the first resting on one window as from the start; later ones remember
  everything since the start point (across the wrap too, which a stream
  switched on mid-song and fed the song in a loop would hear).

With ``per="track"`` each track's test clips are joined into one stream
(:func:`join_tracks`): the curve then runs over minutes of a recording rather
than one clip's seconds, which is what a listener in a room hears. A
stateful stream joins the clips' frames and carries its state across the
joins (the scoring itself is per track then).

Before its first window (``W`` frames) the model has no answer: the curve
starts at one window, and a "time to a trustworthy answer" is never shorter.
A clip with fewer windows than others keeps its last answer for the later
points (it has been heard whole); a clip shorter than one window gets the
one window padded with silence that evaluation gives it (``listen`` would
print nothing for it).

The *time to a trustworthy answer* (:func:`trustworthy_time`) is the first
number of seconds heard from which the accuracy stays at or above 90 % of
its final value (the accuracy once every clip has been heard whole) at
every later point of the curve.

Workstation side (it reads runs and labelled datasets). A bundle's windows
are run by the device runtime without torch; a run's by PyTorch.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.errors import ParameterError

#: Smoothings of the curve: ``listen --smoothing``'s three, and ``mean``, evaluation's clip vote.
SMOOTHINGS = ("ema", "vote", "none", "mean")
#: ``listen``'s default smoothing.
DEFAULT_SMOOTHING = "ema"
#: The share of the final accuracy an answer must reach to be trusted.
TRUST_FRACTION = 0.9
#: The default seed of the random starting points.
DEFAULT_SEED = 0
#: What one stream heard is: each clip on its own, or a track's clips joined (longer streams).
UNITS = ("clip", "track")
#: The curves, as named in the JSON and the report.
ORDERS = ("from_start", "random_start")


@dataclass
class ClipScores:
    """One clip's window probabilities, in the order of the windows' starts."""

    key: str  # the clip's key (data.sources.Clip.key): seeds its random starting point
    label: int  # the index of its true label
    probs: np.ndarray  # (n_windows, n_labels), n_windows >= 1: what listen smooths at each of its answers
    track: str = ""  # the recording it was cut from (data.sources.Clip.track), for per="track"
    # A stateful stream's answers heard from the random point (a fresh stream started there, wrapping);
    # None: the random-point curve rolls ``probs``, the windows being independent of each other.
    random_probs: np.ndarray | None = None


@dataclass
class ScoredClips:
    """The windows of a model (or of each fold's) on the test clips, classified once."""

    name: str  # the run's or bundle's folder name
    model: str  # the model's kind as the run or bundle names it (cnn, lstm...): a label, not a dispatch
    source: str  # "run" or "bundle"
    labels: list[str]
    clips: list[ClipScores]
    window_frames: int
    hop_frames: int
    frame_seconds: float  # hop_length / sample_rate
    runtime: str  # what ran the windows: "pytorch fp32", or the bundle's file and runtime
    folds: int = 0  # 0: one model; K: K folds' models, each on its own test clips
    problems: list[dict[str, str]] = field(default_factory=list)  # files and clips left out
    path: str = "windowed"  # "windowed": the window model over each window; "stateful": a step model's stream
    unit: str = "clip"  # what each ClipScores is: a clip, or (a stateful stream per track) a track
    seed: int | None = None  # of the random starts streamed into random_probs (stateful); None: none


# ------------------------------------------------------------------ the curve from probabilities


def decisions(probs: np.ndarray, smoothing: str = DEFAULT_SMOOTHING) -> np.ndarray:
    """The label ``listen`` shows after each window of one clip.

    Parameters
    ----------
    probs : np.ndarray, shape (n_windows, n_labels)
        The model's probabilities of the clip's windows, in the order heard.
    smoothing : {"ema", "vote", "none", "mean"}
        ``listen``'s smoothings with their defaults (a fresh
        :class:`~pyharmonies.stream.smoothing.Smoother`), or ``mean``: the
        running mean of the windows so far.

    Returns
    -------
    np.ndarray, shape (n_windows,), int
        The top label index after each window.
    """
    from pyharmonies.stream.smoothing import Smoother

    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ParameterError(f"probs must be (n_windows >= 1, n_labels), got shape {p.shape}")
    if smoothing not in SMOOTHINGS:
        raise ParameterError(f"unknown smoothing {smoothing!r}; choose from {', '.join(SMOOTHINGS)}")
    if smoothing == "mean":
        return np.cumsum(p, axis=0, dtype=np.float64).argmax(axis=1)  # the running sum has the mean's argmax
    smoother = Smoother(smoothing, p.shape[1])
    return np.asarray([int(np.argmax(smoother(row))) for row in p])


def join_tracks(clips: Sequence[ClipScores]) -> list[ClipScores]:
    """Each track's clips as one stream: their windows concatenated in the order given (the dataset's).

    A dataset cut from long recordings (``harmonies dataset soundtracks``: back-to-back
    clips of each track, near-silent ones dropped) then yields curves over minutes
    rather than one clip's seconds. The join is an approximation of hearing the track:
    windows that would straddle two clips are missing, and a dropped clip's
    seconds are not heard, so each answer is counted one hop after the one before.

    Parameters
    ----------
    clips : sequence of ClipScores
        With their ``track`` set.

    Returns
    -------
    list of ClipScores
        One per track, in order of first appearance; ``key`` is the track.

    Raises
    ------
    ParameterError
        A clip without a track, or a track whose clips have different labels.
    """
    joined: dict[str, list[ClipScores]] = {}
    for clip in clips:
        if not clip.track:
            raise ParameterError(f"clip {clip.key} has no track: the curve cannot join tracks")
        joined.setdefault(clip.track, []).append(clip)
    out = []
    for track, parts in joined.items():
        labels = {p.label for p in parts}
        if len(labels) != 1:
            raise ParameterError(f"track {track!r} has clips of {len(labels)} labels: it cannot be heard as one stream")
        out.append(ClipScores(track, parts[0].label, np.concatenate([p.probs for p in parts]), track))
    return out


def random_start(key: str, n_windows: int, seed: int = DEFAULT_SEED) -> int:
    """The window a clip is heard from in the random-point curve.

    Uniform over ``0 .. n_windows - 1``, drawn from a generator seeded with
    ``seed`` and the CRC-32 of ``key``: the same clip gets the same start in
    any run, whatever the other clips.
    """
    if n_windows < 1:
        raise ParameterError(f"n_windows must be >= 1, got {n_windows}")
    return int(np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))]).integers(n_windows))


def correct_answers(clips: Sequence[ClipScores], *, smoothing: str = DEFAULT_SMOOTHING, order: str = "from_start",
                    seed: int = DEFAULT_SEED) -> np.ndarray:  # fmt: skip
    """Whether each clip's answer is right after each number of windows heard.

    Parameters
    ----------
    clips : sequence of ClipScores
    smoothing : str
        As :func:`decisions`.
    order : {"from_start", "random_start"}
        Heard from the first window, or from :func:`random_start`'s, wrapping around (a clip
        with ``random_probs``: those, its stream from that point).
    seed : int
        Of the random starts.

    Returns
    -------
    np.ndarray, shape (n_clips, max_windows), bool
        Column ``k``: after ``k + 1`` answers; a clip with fewer windows
        keeps its last answer.
    """
    if order not in ORDERS:
        raise ParameterError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not clips:
        raise ParameterError("no clips to measure")
    width = max(c.probs.shape[0] for c in clips)
    out = np.zeros((len(clips), width), dtype=bool)
    for i, clip in enumerate(clips):
        p = clip.probs
        if order == "random_start":
            p = clip.random_probs if clip.random_probs is not None else np.roll(p, -random_start(clip.key, p.shape[0], seed), axis=0)
        right = decisions(p, smoothing) == clip.label
        out[i, : right.size] = right
        out[i, right.size :] = right[-1]
    return out


def trustworthy_time(seconds: Sequence[float], accuracy: Sequence[float], fraction: float = TRUST_FRACTION) -> dict[str, Any]:
    """When the accuracy reaches, and stays at, ``fraction`` of its final value.

    Parameters
    ----------
    seconds : sequence of float, shape (n,)
        Increasing: the seconds heard at each point.
    accuracy : sequence of float, shape (n,)
        The accuracy at each point; the last is the final accuracy.
    fraction : float
        In (0, 1].

    Returns
    -------
    dict
        ``final`` (the last accuracy), ``target`` (``fraction * final``),
        ``seconds``: the time to a trustworthy answer, the first point from
        which every point, itself included, is at or above ``target`` (always
        defined: the last point is its own final value); ``first_seconds``:
        the first point at or above ``target`` (the curve may dip below
        afterwards); ``index`` and ``first_index``: their positions.
    """
    t = np.asarray(seconds, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    if t.ndim != 1 or t.shape != a.shape or t.size == 0:
        raise ParameterError(f"seconds and accuracy must be two non-empty 1-D arrays of one length, got {t.shape} and {a.shape}")
    if np.any(np.diff(t) <= 0):
        raise ParameterError("seconds must increase")
    if not 0.0 < fraction <= 1.0:
        raise ParameterError(f"fraction must be in (0, 1], got {fraction}")
    final = float(a[-1])
    target = fraction * final
    # Accuracies are ratios of counts: k/n equal to fraction * final may come out one ulp short of it.
    ok = a >= target - 1e-12
    below = np.flatnonzero(~ok)
    index = int(below[-1]) + 1 if below.size else 0
    first = int(np.flatnonzero(ok)[0])  # the last point is always ok
    return {"final": final, "target": target, "seconds": float(t[index]), "index": index,
            "first_seconds": float(t[first]), "first_index": first}  # fmt: skip


def accuracy_curve(scored: ScoredClips, *, smoothing: str = DEFAULT_SMOOTHING, seed: int = DEFAULT_SEED,
                   fraction: float = TRUST_FRACTION, per: str = "clip") -> dict[str, Any]:  # fmt: skip
    """The latency curves of scored clips, as ``latency.json`` holds them.

    Parameters
    ----------
    scored : ScoredClips
    smoothing : {"ema", "vote", "none", "mean"}
    seed : int
        Of the random starting points (for stateful scores, the one they were streamed with).
    fraction : float
        Of the final accuracy, for the time to a trustworthy answer.
    per : {"clip", "track"}
        Each clip heard on its own, or each track's clips joined into one
        stream (:func:`join_tracks`); ``clips`` then counts tracks. Stateful
        scores must have been streamed per track already (``scored.unit``).

    Returns
    -------
    dict
        ``seconds`` (the seconds heard at each answer, increasing),
        ``from_start`` and ``random_start``: ``accuracy`` and ``correct``
        (counts) per point and :func:`trustworthy_time`'s figures;
        ``clip_accuracy``: evaluation's clip vote (the mean of every window's
        probabilities) on the same clips; and what produced them.
    """
    if smoothing not in SMOOTHINGS:
        raise ParameterError(f"unknown smoothing {smoothing!r}; choose from {', '.join(SMOOTHINGS)}")
    if per not in UNITS:
        raise ParameterError(f"per must be one of {', '.join(UNITS)}, got {per!r}")
    if scored.path == "stateful" and per != scored.unit:
        raise ParameterError(f"stateful streams were scored per {scored.unit}: score them per {per} (score_clips(per=...))")
    if scored.seed is not None and int(seed) != scored.seed:
        raise ParameterError(f"the random starts were streamed with seed {scored.seed}, not {seed}: score the clips again")
    streams = join_tracks(scored.clips) if per == "track" and scored.unit == "clip" else list(scored.clips)
    n = len(streams)
    curves: dict[str, Any] = {}
    seconds: list[float] = []
    for order in ORDERS:
        right = correct_answers(streams, smoothing=smoothing, order=order, seed=seed)
        counts = right.sum(axis=0)
        seconds = [(scored.window_frames + k * scored.hop_frames) * scored.frame_seconds for k in range(right.shape[1])]
        accuracy = counts / n
        curves[order] = {"accuracy": accuracy.tolist(), "correct": counts.tolist(),
                         **trustworthy_time(seconds, accuracy, fraction)}  # fmt: skip
    vote = [int(np.argmax(c.probs.mean(axis=0))) == c.label for c in streams]  # as evaluate computes it (per clip)
    return {
        "name": scored.name,
        "model": scored.model,
        "source": scored.source,
        "runtime": scored.runtime,
        "path": scored.path,
        "folds": scored.folds,
        "labels": list(scored.labels),
        "clips": n,
        "per": per,
        "smoothing": smoothing,
        "seed": int(seed),
        "fraction": float(fraction),
        "window_seconds": scored.window_frames * scored.frame_seconds,
        "hop_seconds": scored.hop_frames * scored.frame_seconds,
        "window_frames": scored.window_frames,
        "hop_frames": scored.hop_frames,
        "first_answer_seconds": seconds[0],
        "seconds": seconds,
        **curves,
        "clip_accuracy": float(np.mean(vote)),
        "problems": list(scored.problems),
    }


# ------------------------------------------------------------------ scoring a run, a bundle or folds


def fold_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """The ``fold-0 .. fold-K-1`` folders of a cross-validation (a run's or a folder of bundles); [] if none."""
    path = Path(path)
    folds = []
    while (path / f"fold-{len(folds)}").is_dir():
        folds.append(path / f"fold-{len(folds)}")
    return folds


def score_clips(path: str | os.PathLike[str], data: str | os.PathLike[str], *, split: str = "test", backend: str = "auto",
                precision: str = "auto", threads: int = 1, progress: bool = True, streaming: bool | None = None,
                per: str = "clip", seed: int = DEFAULT_SEED) -> ScoredClips:  # fmt: skip
    """Classify every window of the clips once: a run's, a bundle's, or each fold's model on its test clips.

    Parameters
    ----------
    path : path-like
        A training run (its best PyTorch model), a bundle (a folder with
        ``manifest.json``: its model file in the device runtime, no torch),
        or a cross-validation: a folder with ``fold-0 .. fold-K-1``, each a
        run or a bundle; each fold's model is then scored on its own test
        clips and the clips pooled (each clip is tested once).
    data : path-like
        The dataset (folder or CSV manifest) with the model's labels; for
        the test split, the one it was trained on.
    split : str
        ``test``: the run's saved test split (a bundle's: its source run's);
        ``all``: every clip (not for a cross-validation).
    backend, precision, threads
        For bundles: as :func:`~pyharmonies.runtime.backends.make_backend`.
    progress : bool
    streaming : bool, optional
        For bundles: the path ``listen`` takes by default when None (stateful
        for an LSTM bundle with a step model, windowed otherwise); True: the
        stateful stream (a bundle without a step model is refused); False: the
        window model. A training run is always windowed.
    per : {"clip", "track"}
        Stateful streams only: one stream per clip, or per track (its clips
        joined); windowed scores are per clip whatever ``per`` says
        (:func:`accuracy_curve` joins them).
    seed : int
        Stateful streams only: of the random starting points streamed.

    Returns
    -------
    ScoredClips

    Raises
    ------
    ParameterError
        Not a run, bundle or cross-validation; an SVM run (no windows); folds
        that disagree on labels, windows or path; ``split="all"`` with folds;
        ``streaming=True`` for a training run.
    """
    from pyharmonies.runtime.bundle import MANIFEST

    path = Path(path)
    if (path / MANIFEST).is_file():
        return _score_bundle(path, data, split, backend, precision, threads, progress, streaming, per, seed)
    folds = fold_dirs(path)
    if not folds:
        if not (path / "config.json").is_file():
            raise ParameterError(f"{path}: neither a run (config.json), a bundle ({MANIFEST}) nor a cross-validation (fold-0/)")
        if (backend, precision, threads) != ("auto", "auto", 1):
            raise ParameterError(f"{path} is a training run; --backend, --precision and --threads apply to bundles")
        if streaming:
            raise ParameterError(f"{path} is a training run: it has no step model to stream with; export it "
                                 "(harmonies export) and measure the bundle")  # fmt: skip
        return _score_run(path, data, split, progress)
    if split != "test":
        raise ParameterError(f"{path} is a cross-validation: each fold's model is measured on its own test clips; "
                             f"--split {split} would test clips a model trained on")  # fmt: skip
    parts = [score_clips(fold, data, split="test", backend=backend, precision=precision, threads=threads, progress=progress,
                         streaming=streaming, per=per, seed=seed) for fold in folds]  # fmt: skip
    first = parts[0]
    for fold, part in zip(folds, parts):
        same = (part.labels, part.window_frames, part.hop_frames, part.frame_seconds, part.path, part.unit)
        if same != (first.labels, first.window_frames, first.hop_frames, first.frame_seconds, first.path, first.unit):
            raise ParameterError(f"{fold} differs from {folds[0]} in its labels, window, hop or streaming: not one cross-validation")
    return ScoredClips(path.name, first.model, first.source, first.labels, [c for p in parts for c in p.clips],
                       first.window_frames, first.hop_frames, first.frame_seconds, first.runtime, folds=len(folds),
                       problems=_unique([q for p in parts for q in p.problems]), path=first.path, unit=first.unit,
                       seed=first.seed)  # fmt: skip


def _unique(problems: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for p in problems:
        seen.setdefault((p["path"], p["reason"]), p)
    return list(seen.values())


def _score_run(run: Path, data, split: str, progress: bool) -> ScoredClips:
    from pyharmonies.training.evaluate import window_probabilities

    scored = window_probabilities(run, data, split=split, progress=progress)
    fcfg = scored.prep.feature_config
    ids = np.asarray([w.clip for w in scored.windows])
    clips = []
    for c in np.unique(ids):
        rows = np.flatnonzero(ids == c)  # in start order: windows are cut clip by clip
        clip = scored.prep.clips[c]
        clips.append(ClipScores(clip.key, int(scored.y[rows[0]]), scored.probs[rows], clip.track))
    problems = [{"path": str(p.path), "reason": p.reason} for p in scored.prep.problems]
    return ScoredClips(run.name, str(scored.meta["model_name"]), "run", scored.labels, clips, scored.window_frames,
                       scored.hop_frames, fcfg.hop_length / fcfg.sample_rate, "pytorch fp32", problems=problems)  # fmt: skip


def _score_bundle(path: Path, data, split: str, backend: str, precision: str, threads: int, progress: bool,
                  streaming: bool | None, per: str, seed: int) -> ScoredClips:  # fmt: skip
    from pyharmonies.runtime.bundle import load_bundle

    bundle = load_bundle(path)
    fcfg = bundle.feature_config
    name, model = path.name, str(bundle.model.get("name", "?"))
    frame_s = fcfg.hop_length / fcfg.sample_rate
    if bundle.streaming is not None if streaming is None else streaming:
        from pyharmonies.training.bundle_stream import bundle_stream_probabilities

        streamed = bundle_stream_probabilities(bundle, data, split=split, backend=backend, precision=precision, threads=threads,
                                               unit=per, seed=seed, progress=progress)  # fmt: skip
        clips = [ClipScores(u.key, u.label, u.probs, u.track, u.random_probs) for u in streamed.units]
        problems = [{"path": str(p.path), "reason": p.reason} for p in streamed.problems]
        return ScoredClips(name, model, "bundle", list(bundle.labels), clips, bundle.window_frames, bundle.hop_frames, frame_s,
                           f"{streamed.ran['describe']}, stateful", problems=problems, path="stateful", unit=per,
                           seed=int(seed))  # fmt: skip
    from pyharmonies.training.bundle_eval import bundle_window_probabilities

    scored = bundle_window_probabilities(bundle, data, split=split, backend=backend, precision=precision, threads=threads,
                                         progress=progress)  # fmt: skip
    label_index = {label: i for i, label in enumerate(bundle.labels)}
    clips = []
    for c in np.unique(scored.clip_ids):
        clip = scored.clips[c]
        clips.append(ClipScores(clip.key, label_index[clip.label], scored.probs[scored.clip_ids == c], clip.track))
    problems = [{"path": str(p.path), "reason": p.reason} for p in scored.problems]
    ran = scored.ran
    return ScoredClips(name, model, "bundle", list(bundle.labels), clips, bundle.window_frames, bundle.hop_frames, frame_s,
                       f"{ran['file']} ({ran['precision']} {ran['provider']})", problems=problems)  # fmt: skip


def is_bundle_like(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a bundle, or a cross-validation whose folds are bundles."""
    from pyharmonies.runtime.bundle import MANIFEST

    path = Path(path)
    return (path / MANIFEST).is_file() or (path / "fold-0" / MANIFEST).is_file()


def measure(path: str | os.PathLike[str], data: str | os.PathLike[str], *, split: str = "test",
            smoothing: str = DEFAULT_SMOOTHING, seed: int = DEFAULT_SEED, backend: str = "auto", precision: str = "auto",
            threads: int = 1, progress: bool = True, per: str = "clip", streaming: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """The latency curves of one run, bundle or cross-validation: :func:`score_clips`, then :func:`accuracy_curve`.

    ``streaming``: a bundle's path, as :func:`score_clips` (None: the one ``listen`` takes by default).
    """
    scored = score_clips(path, data, split=split, backend=backend, precision=precision, threads=threads, progress=progress,
                         streaming=streaming, per=per, seed=seed)  # fmt: skip
    return accuracy_curve(scored, smoothing=smoothing, seed=seed, per=per)
