"""An LSTM bundle on a labelled dataset as ``listen`` runs it: each clip a stateful stream through its step model.

``harmonies listen`` (and ``classify --streaming``) run an LSTM bundle with a
step model statefully: each frame through the LSTM once, the state carried,
a result every hop where a window would end (:mod:`pyharmonies.runtime.streaming`).
:func:`bundle_stream_probabilities` replays that on the clips of a dataset,
so that ``harmonies evaluate --streaming`` and the latency curve measure
what the device answers rather than the window model:

- each *unit* is a fresh stream (a zero state, frames numbered from 0): a
  clip (its frames cut out of its file's features, as the windowed
  evaluation cuts them), or with ``unit="track"`` a track's clips joined in
  the dataset's order (the state carried across the joins: one recording
  heard from start to end, as a listener in a room hears it);
- a result at each frame ``W - 1 + k * hop`` (the bundle's hop), as many as
  the unit has windows; a unit shorter than a window is padded with the
  features of silence to one window (one result), as the windowed path pads
  its one window;
- its probabilities are the softmax of the streamed logits (``listen``'s
  ``raw_probs``, before smoothing).

With a ``seed``, each unit is also streamed from a random point: a result
index ``s`` drawn as :func:`pyharmonies.training.latency.random_start` draws
a window, and a fresh stream (zero state) started at the unit's frame
``s * hop``, wrapping to its first frame after its last. The stream then
has as many results as from the start, and it is what a device switched on
at that point (and fed the recording in a loop) answers: its first result
rests on one window of audio, like the windowed path's, but later ones on
everything heard since the start point, across the wrap too.

Workstation side (it reads labelled datasets), torch-free: numpy, the
dataset readers, the device runtime.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.runtime.bundle import Bundle, load_bundle
from pyharmonies.runtime.classifier import softmax
from pyharmonies.training.bundle_eval import BundleScores, _progress, read_clip_frames, select_clips

__all__ = ["StreamScores", "StreamedUnit", "bundle_stream_probabilities"]

#: What one stream is: a clip, or a track's clips joined.
UNITS = ("clip", "track")


@dataclass
class StreamedUnit:
    """One stream's results (a clip, or a track's clips joined)."""

    key: str  # the clip's key, or the track's name
    label: int  # the index of its true label in the bundle's labels
    track: str  # the recording its clips were cut from ("" when the dataset does not say)
    clips: list[int]  # indices into StreamScores.clips, in the order streamed
    probs: np.ndarray  # (n_results, n_labels): the stream's probabilities from the unit's first frame
    random_probs: np.ndarray | None = field(default=None, repr=False)  # the same from a random point (with a seed)


@dataclass
class StreamScores:
    """Every result of a bundle's stateful stream on a dataset's clips (see :func:`bundle_stream_probabilities`)."""

    bundle: Bundle
    ran: dict[str, Any]  # what ran: runtime, provider, precision, file, threads, path ("stateful"), describe
    clips: list  # data.sources.Clip: the clips evaluated
    units: list[StreamedUnit]  # in the order of their first clip in the dataset
    problems: list  # data.sources.Problem: files and clips left out
    files: int  # files in the dataset, readable or not
    unit: str = "clip"
    seed: int | None = None  # of the random starting points; None: none streamed

    def as_bundle_scores(self) -> BundleScores:
        """The results as :class:`~pyharmonies.training.bundle_eval.BundleScores` (one clip per unit, from the start)."""
        if self.unit != "clip":
            raise ParameterError("only results streamed per clip have a clip each")
        probs = np.concatenate([u.probs for u in self.units])
        ids = np.concatenate([np.full(u.probs.shape[0], u.clips[0]) for u in self.units])
        return BundleScores(self.bundle, self.ran, self.clips, probs, ids, self.problems, self.files)


def bundle_stream_probabilities(
    bundle_dir: str | os.PathLike[str] | Bundle,
    data: str | os.PathLike[str],
    *,
    split: str = "all",
    backend: str = "auto",
    precision: str = "auto",
    threads: int = 1,
    cache: str | os.PathLike[str] | None = None,
    unit: str = "clip",
    seed: int | None = None,
    progress: bool = False,
) -> StreamScores:
    """The probabilities of every result of an LSTM bundle's stateful stream on ``data``, from the device runtime.

    Parameters
    ----------
    bundle_dir : path-like or Bundle
        A bundle with a step model (``streaming`` section).
    data : path-like
        A dataset with the bundle's labels.
    split, backend, precision, threads, cache, progress
        As :func:`~pyharmonies.training.bundle_eval.evaluate_bundle`; ``backend`` and
        ``precision`` choose the step file (and its hop model) as ``listen`` does.
    unit : {"clip", "track"}
        One stream per clip, or per track (its clips joined in the dataset's order).
    seed : int, optional
        Also stream each unit from a random point (see the module docstring).

    Returns
    -------
    StreamScores

    Raises
    ------
    BundleError
        The bundle is refused, or has no step model for the runtime and precision asked.
    ParameterError
        As :func:`~pyharmonies.training.bundle_eval.evaluate_bundle`; ``unit="track"`` with a clip
        that has no track, or a track of two labels.
    """
    from pyharmonies.data.cache import FeatureCache
    from pyharmonies.data.sources import Problem, failure_reason
    from pyharmonies.runtime.streaming import open_streamer

    if unit not in UNITS:
        raise ParameterError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
    streamer = open_streamer(bundle, backend, precision, threads=threads)
    clips, problems, n_files = select_clips(bundle, data, split)
    label_index = {label: i for i, label in enumerate(bundle.labels)}

    members: dict[str, list[int]] = {}  # unit key -> its clips, in the dataset's order
    for i, clip in enumerate(clips):
        if unit == "track" and not clip.track:
            raise ParameterError(f"clip {clip.key} has no track: its stream cannot be joined to its track's")
        members.setdefault(clip.key if unit == "clip" else clip.track, []).append(i)
    unit_of = {i: key for key, ids in members.items() for i in ids}
    for key, ids in members.items():
        if len({clips[i].label for i in ids}) != 1:
            raise ParameterError(f"track {key!r} has clips of several labels: it cannot be heard as one stream")
    waiting = {key: len(ids) for key, ids in members.items()}  # clips of each unit not read yet
    read: dict[str, dict[int, np.ndarray]] = defaultdict(dict)  # the features of the clips read, until their unit is whole
    done: dict[str, StreamedUnit] = {}

    def finish_unit(key: str) -> None:
        parts = read.pop(key, {})
        ids = sorted(parts)
        if not ids:
            return
        features = np.concatenate([parts[i] for i in ids], axis=1)
        probs = _stream(streamer, features)
        if probs is None:  # no frame: no result, as the windowed path gives no window
            return
        random = None
        if seed is not None:
            from pyharmonies.training.latency import random_start

            start = random_start(key, probs.shape[0], seed) * streamer.hop_frames
            random = _stream(streamer, np.concatenate([features[:, start:], features[:, :start]], axis=1))
        first = clips[ids[0]]
        done[key] = StreamedUnit(key, label_index[first.label], first.track, ids, probs, random)

    feature_cache = FeatureCache(cache if cache is not None else _tmp(), bundle.feature_config)
    by_path: dict[Any, list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        by_path[clip.path].append(i)
    bar = _progress(len(by_path), progress)
    try:
        for path, ids in by_path.items():
            pieces: dict[int, list[np.ndarray]] = {i: [] for i in ids}
            try:
                if cache is not None:
                    whole = feature_cache.load(path, bundle.kind)  # memory-mapped
                    for i in ids:
                        first, stop = feature_cache.frame_range(clips[i], whole.shape[1])
                        pieces[i].append(np.array(whole[:, first:stop], dtype=np.float32))  # a copy: the memmap closes
                else:
                    read_clip_frames(path, [(i, clips[i]) for i in ids], bundle.feature_config, bundle.kind, feature_cache,
                                     lambda i, frames: pieces[i].append(np.array(frames, dtype=np.float32)))  # fmt: skip
            except Exception as err:  # this file's failure, whatever it is: reported, the others go on
                problems.append(Problem(path, failure_reason(err, path)))
                pieces = {}
            finally:
                bar.update(1)
            for i in ids:
                key = unit_of[i]
                if i in pieces:
                    read[key][i] = np.concatenate(pieces[i], axis=1) if pieces[i] else np.zeros((bundle.rows, 0), np.float32)
                waiting[key] -= 1
                if waiting[key] == 0:
                    finish_unit(key)
    finally:
        bar.close()
    if not done:
        raise ParameterError(f"{data}: no clip gave a result ({len(problems)} problem(s))")
    units = [done[key] for key in members if key in done]
    hop = streamer.hop_frames
    b = streamer.backend
    files = b.file.name if streamer.hop_backend is None else f"{streamer.hop_backend.file.name} + {b.file.name}"
    ran = {"runtime": b.runtime, "provider": b.provider, "precision": b.precision, "file": files, "threads": b.threads,
           "path": "stateful", "describe": streamer.describe(), "hop_frames": hop}  # fmt: skip
    return StreamScores(bundle, ran, clips, units, problems, n_files, unit, seed)


def _stream(streamer: Any, features: np.ndarray) -> np.ndarray | None:
    """A fresh stream over ``features`` (rows, n): the probabilities of its results, or None when it gives none."""
    from pyharmonies.runtime.streaming import stream_logits

    _, logits = stream_logits(streamer, features)
    return softmax(logits) if logits.shape[0] else None


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()  # the FeatureCache object is used for frame_range only: it writes nothing
