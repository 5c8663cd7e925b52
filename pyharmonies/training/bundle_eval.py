"""Evaluate a bundle on a labelled dataset with the device runtime (no torch).

The figures are those ``harmonies evaluate RUN`` gives for a training run,
computed the way training computed them: the features of each file from the
C core, each clip's frames cut out of its file's features, windows of the
bundle's length every hop (half a window by default) padded with silence
when a clip is shorter than one window, window-level metrics and clip-level
ones (the mean of a clip's window probabilities). Only the model differs:
the bundle's ONNX or TFLite file, fp32 or int8, in the runtime the device
uses.

With ``streaming=True`` an LSTM bundle is measured as ``listen`` runs it by
default: each clip a fresh stateful stream through its step (and hop) model,
a result where each window would end
(:mod:`pyharmonies.training.bundle_stream`); the result-level metrics take
the place of the window-level ones, and a clip votes by the mean of its
results' probabilities.

Workstation side (it reads labelled datasets and computes training's
metrics), but torch-free: numpy, the dataset readers, the device runtime.
Without a feature cache, each file is read block by block and every clip's
windows are cut from the frames as they arrive (one
:class:`~pyharmonies.windows.WindowCutter` per clip of the file), so memory
does not grow with the length of a file. A file that fails, for whatever
reason, is reported and the others are evaluated.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.runtime.backends import make_backend
from pyharmonies.runtime.bundle import Bundle, load_bundle
from pyharmonies.runtime.classifier import WindowClassifier
from pyharmonies.windows import InputFeatureStream, WindowCutter, take_window, window_starts

SPLIT_CHOICES = ("all", "test", "val", "train")


def find_source_run(bundle: Bundle) -> Path | None:
    """The bundle's source run directory on this machine, or None.

    ``source_run`` as the manifest records it: an absolute path, or one
    relative to the current directory, to the bundle, or to the folder that
    holds the bundle's folder (``export/<name>`` beside ``runs/<name>``).
    """
    if not bundle.source_run:
        return None
    given = Path(bundle.source_run)
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, bundle.path / given, bundle.path.parent / given, bundle.path.parent.parent / given]
    for candidate in candidates:
        if (candidate / "splits.json").is_file():
            return candidate
    return None


def _split_keys(bundle: Bundle, split: str) -> set[str]:
    run = find_source_run(bundle)
    if run is None:
        where = f"its source run {bundle.source_run!r} is not on this machine" if bundle.source_run else "the manifest names no source run"
        raise ParameterError(f"--split {split} uses the splits of the run the bundle was exported from, but {where}; use --split all")
    try:
        saved = json.loads((run / "splits.json").read_text(encoding="utf-8"))
        return set(saved["splits"][split])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ParameterError(f"{run / 'splits.json'}: cannot read the {split!r} split ({err})") from None


def evaluate_bundle(
    bundle_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    split: str = "all",
    backend: str = "auto",
    precision: str = "auto",
    threads: int = 1,
    cache: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = False,
    out: str | os.PathLike[str] | None = None,
    streaming: bool = False,
) -> dict[str, Any]:
    """Metrics of a bundle's model on a dataset, run by the device runtime.

    Parameters
    ----------
    bundle_dir : path-like
        A bundle directory (``harmonies export`` writes them).
    data : path-like
        A dataset (class folders, GTZAN or a CSV manifest) with the bundle's
        labels; clips of other labels are reported and left out.
    split : {"all", "test", "val", "train"}
        ``all``: every readable clip; otherwise the clips of that split of
        the bundle's source run (its ``splits.json`` must be on this
        machine, and ``data`` the dataset it was trained on).
    backend, precision, threads
        As :func:`~pyharmonies.runtime.backends.make_backend`.
    cache : path-like, optional
        A feature cache folder (training's ``.cache/features``): features
        are read from it (memory-mapped: the pages of a file's features count
        in the process's resident memory while it is evaluated), and computed
        into it when missing. By default each file is read block by block
        and its windows cut as its frames arrive: nothing is written, and
        memory does not grow with the file.
    batch_size : int
        Windows per runtime call (TFLite files run one window at a time anyway).
    progress : bool
        A progress bar on stderr (needs tqdm).
    out : path-like, optional
        A folder to write ``metrics.json`` and ``report.md`` into. Nothing is
        written by default: a bundle is a deliverable, evaluating it must not
        change it.
    streaming : bool
        An LSTM bundle's step model, statefully, a fresh stream per clip (as
        ``listen`` runs it): ``"window"`` then holds the metrics of its
        results (one where each window ends), ``"clip"`` those of their vote.

    Returns
    -------
    dict
        ``"window"`` and ``"clip"``: metrics as
        :func:`~pyharmonies.training.metrics.classification_metrics` gives
        them; ``"backend"``: what ran (runtime, provider, precision, file,
        threads, and ``path``: ``"windowed"`` or ``"stateful"``);
        ``"problems"``: ``[{"path", "reason", "kind"}]`` of the files or
        clips left out (``kind`` as :class:`~pyharmonies.data.sources.Problem`'s:
        ``"file"`` for a file that could not be read); ``"files"``:
        ``{"total", "failed"}``, the dataset's files and those that could not
        be read (a command exits non-zero when any did); with an SVM fused
        (``train --fuse-svm``), ``"fused"``: ``weight``, ``clip`` (the
        fusion's metrics: the bundle's answer) and ``svm_clip`` (the SVM's alone).

    Raises
    ------
    BundleError
        The bundle is refused (see :func:`~pyharmonies.runtime.bundle.load_bundle`), or (``streaming``)
        has no step model for the runtime and precision asked.
    ParameterError
        Bad arguments, no usable clip, or a split without its source run.
    """
    from pyharmonies.runtime.svm import fuse_probabilities
    from pyharmonies.training.metrics import classification_metrics, clip_probabilities  # numpy only

    if streaming:
        from pyharmonies.training.bundle_stream import bundle_stream_probabilities

        scored = bundle_stream_probabilities(bundle_dir, data, split=split, backend=backend, precision=precision,
                                             threads=threads, cache=cache, progress=progress).as_bundle_scores()  # fmt: skip
    else:
        scored = bundle_window_probabilities(bundle_dir, data, split=split, backend=backend, precision=precision, threads=threads,
                                             cache=cache, batch_size=batch_size, progress=progress)  # fmt: skip
    bundle, clips, probs, ids = scored.bundle, scored.clips, scored.probs, scored.clip_ids
    label_index = {label: i for i, label in enumerate(bundle.labels)}
    problems = scored.problems
    y = np.asarray([label_index[clips[i].label] for i in ids])
    order, clip_probs = clip_probabilities(probs, ids)
    clip_true = np.asarray([label_index[clips[c].label] for c in order])
    results: dict[str, Any] = {
        "window": classification_metrics(y, probs.argmax(axis=1), bundle.labels),
        "clip": classification_metrics(clip_true, clip_probs.argmax(axis=1), bundle.labels),
        "backend": dict(scored.ran),
        "problems": [{"path": str(p.path), "reason": p.reason, "kind": p.kind} for p in problems],
        "files": {"total": scored.files, "failed": len({p.path for p in problems if p.kind == "file"})},
    }
    if bundle.svm is not None:
        stats = clip_frame_statistics(clips, order, bundle.feature_config)
        svm_probs = bundle.svm.model.probabilities(stats)
        results["fused"] = {"weight": bundle.svm.weight,
                            "clip": classification_metrics(clip_true, fuse_probabilities(clip_probs, svm_probs, bundle.svm.weight).argmax(axis=1),
                                                           bundle.labels),
                            "svm_clip": classification_metrics(clip_true, svm_probs.argmax(axis=1), bundle.labels)}  # fmt: skip
    if out is not None:
        _write(Path(out), bundle, data, split, results)
    return results


def clip_frame_statistics(clips: list, indices: np.ndarray, config: Any) -> np.ndarray:
    """(len(indices), features) the frame-vector statistics the fused SVM reads, of ``clips[i]`` for each ``i`` in ``indices``.

    Each file is read again block by block, its clips' frames cut as the
    window model's were (:func:`read_clip_frames`).
    """
    from pyharmonies.data.cache import FeatureCache
    from pyharmonies.runtime.svm import FrameStatistics

    ranges = FeatureCache(tempfile.gettempdir(), config)  # for frame_range only: it writes nothing
    by_path: dict[Path, list[tuple[int, Any]]] = defaultdict(list)
    for position, i in enumerate(indices):
        by_path[clips[i].path].append((position, clips[i]))
    stats: dict[int, FrameStatistics] = {}

    def deliver(position: int, frames: np.ndarray) -> None:
        stats.setdefault(position, FrameStatistics(frames.shape[0])).push(frames)

    for path, members in by_path.items():
        read_clip_frames(path, members, config, "frame_vector", ranges, deliver)
    return np.stack([stats[p].vector() for p in range(len(indices))])


@dataclass
class BundleScores:
    """Every window of a bundle's model on a dataset's clips (see :func:`bundle_window_probabilities`), or every
    result of its stateful stream (:meth:`~pyharmonies.training.bundle_stream.StreamScores.as_bundle_scores`)."""

    bundle: Bundle
    ran: dict[str, Any]  # what ran: runtime, provider, precision, file, threads, path ("windowed" or "stateful")
    clips: list  # data.sources.Clip: the clips evaluated
    probs: np.ndarray  # (n_windows, n_labels) probabilities
    clip_ids: np.ndarray  # (n_windows,) the index into clips of each window; a clip's windows in order of their start
    problems: list  # data.sources.Problem: files and clips left out
    files: int  # files in the dataset, readable or not


def windowed_description(clf: WindowClassifier) -> dict[str, Any]:
    """``BundleScores.ran`` for the window model: its runtime, provider, precision, file and threads."""
    b = clf.backend
    return {"runtime": b.name, "provider": b.provider, "precision": b.precision, "file": b.file.name, "threads": b.threads,
            "path": "windowed", "describe": b.describe()}  # fmt: skip


def select_clips(bundle: Bundle, data: str | os.PathLike[str], split: str) -> tuple[list, list, int]:
    """The clips of ``data`` to evaluate the bundle on: those of its labels (and of the source run's ``split``).

    Returns
    -------
    clips : list of data.sources.Clip
    problems : list of data.sources.Problem
        Unreadable files, and clips of labels the model does not know.
    files : int
        Files in the dataset, readable or not.

    Raises
    ------
    ParameterError
        A bad split, no clip left, or a split without its source run.
    """
    from pyharmonies.data.sources import Problem, open_dataset

    if split not in SPLIT_CHOICES:
        raise ParameterError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}")
    index = open_dataset(data)
    problems: list[Problem] = list(index.problems)
    files = {c.path for c in index.clips} | {p.path for p in index.problems}
    known = set(bundle.labels)
    clips = []
    for clip in index.clips:
        if clip.label in known:
            clips.append(clip)
        else:
            problems.append(Problem(clip.path, f"label {clip.label!r} is not one the model knows", "label"))
    if split != "all":
        keys = _split_keys(bundle, split)
        clips = [c for c in clips if c.key in keys]
        if not clips:
            raise ParameterError(f"none of this dataset's clips are in the source run's {split!r} split (another dataset?); use --split all")
    if not clips:
        raise ParameterError(f"{data}: no clip with a label the model knows ({', '.join(bundle.labels)})")
    return clips, problems, len(files)


def bundle_window_probabilities(
    bundle_dir: str | os.PathLike[str] | Bundle,
    data: str | os.PathLike[str],
    *,
    split: str = "all",
    backend: str = "auto",
    precision: str = "auto",
    threads: int = 1,
    cache: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> BundleScores:
    """The probabilities of every window of a bundle's model on ``data``, from the device runtime.

    The windows and the parameters are those of :func:`evaluate_bundle`
    (which computes its metrics from this); each window is run once.
    ``bundle_dir`` may be a loaded :class:`Bundle`.

    Returns
    -------
    BundleScores

    Raises
    ------
    BundleError, ParameterError
        As :func:`evaluate_bundle`.
    """
    from pyharmonies.data.cache import FeatureCache
    from pyharmonies.data.sources import Problem, failure_reason

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if split not in SPLIT_CHOICES:
        raise ParameterError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}")
    bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
    clf = WindowClassifier(bundle, make_backend(bundle, backend, precision, threads=threads))
    config, kind = bundle.feature_config, bundle.kind
    clips, problems, n_files = select_clips(bundle, data, split)

    # Without a cache folder the FeatureCache object is used for frame_range only: it writes nothing.
    feature_cache = FeatureCache(cache if cache is not None else tempfile.gettempdir(), config)
    by_path: dict[Path, list[int]] = defaultdict(list)
    for i, clip in enumerate(clips):
        by_path[clip.path].append(i)
    pad = clf.pad_values
    window, hop = bundle.window_frames, bundle.hop_frames

    clip_ids: list[int] = []  # the clip of every window run, in order
    chunks: list[np.ndarray] = []  # their probabilities
    pending: list[np.ndarray] = []  # raw windows not run yet (fewer than batch_size: memory stays flat)
    file_ids: list[int] = []  # this file's windows: kept only if the whole file goes through
    file_chunks: list[np.ndarray] = []

    def run(final: bool = False) -> None:
        while len(pending) >= batch_size or (final and pending):
            file_chunks.append(clf.predict_batch(np.stack(pending[:batch_size])))
            del pending[:batch_size]

    def add(i: int, windows) -> None:
        for w in windows:
            file_ids.append(i)
            pending.append(w)
        run()

    bar = _progress(len(by_path), progress)
    try:
        for path, members in by_path.items():
            file_ids.clear()
            file_chunks.clear()
            pending.clear()
            try:
                if cache is not None:
                    whole = feature_cache.load(path, kind)  # memory-mapped
                    for i in members:
                        first, stop = feature_cache.frame_range(clips[i], whole.shape[1])
                        feats = whole[:, first:stop]
                        add(i, (take_window(feats, s, window, pad) for s in window_starts(feats.shape[1], window, hop)))
                else:
                    cutters = {i: WindowCutter(clf.rows, clf.window_frames, clf.hop_frames, clf.pad_values) for i in members}
                    read_clip_frames(path, [(i, clips[i]) for i in members], config, kind, feature_cache,
                                     lambda i, frames: add(i, cutters[i].push(frames)[0]))  # fmt: skip
                    for i in members:
                        add(i, cutters[i].finish()[0])
                run(final=True)
            except Exception as err:  # this file's failure, whatever it is: reported, the others go on
                problems.append(Problem(path, failure_reason(err, path)))
                continue
            finally:
                bar.update(1)
            clip_ids.extend(file_ids)
            chunks.extend(file_chunks)
    finally:
        bar.close()
    if not clip_ids:
        raise ParameterError(f"{data}: no clip gave a window ({len(problems)} problem(s))")
    return BundleScores(bundle, windowed_description(clf), clips, np.concatenate(chunks), np.asarray(clip_ids), problems, n_files)


def read_clip_frames(path: Path, members: list[tuple[int, Any]], config: Any, kind: str, feature_cache: Any, deliver: Any) -> None:
    """Read ``path`` block by block; hand each clip's frames to ``deliver(i, frames)`` as they arrive.

    Each clip ``(i, clip)`` covers the frames :meth:`FeatureCache.frame_range`
    gives it; ``deliver`` receives those frames only, consecutive pieces
    ``(rows, k)`` in order, so that a window cutter (or a stream) fed them
    sees the clip's frames cut out of the whole file's.
    """
    from pyharmonies.audio import iter_blocks

    ranges = []
    for i, clip in members:
        first, stop = feature_cache.frame_range(clip, sys.maxsize)  # clamped to the file's end by the stream itself
        ranges.append((i, first, stop))
    stream = InputFeatureStream(config, [kind])
    done = 0  # frames of the file so far

    def pieces(frames: np.ndarray) -> None:
        nonlocal done
        a, b = done, done + frames.shape[1]
        for i, first, stop in ranges:
            lo, hi = max(a, first), min(b, stop)
            if lo < hi:
                deliver(i, frames[:, lo - a : hi - a])
        done = b

    for block in iter_blocks(path, config.sample_rate):
        pieces(stream.push(block)[kind])
    pieces(stream.flush()[kind])


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a training extra; the device may not have it
        return _NoBar()
    return tqdm(total=total, desc="files", unit="file", file=sys.stderr, leave=False)


def _write(out: Path, bundle: Bundle, data, split: str, results: dict[str, Any]) -> None:
    from pyharmonies.training.report import confusion_text, metrics_table  # numpy only

    out.mkdir(parents=True, exist_ok=True)
    record = {"bundle": str(bundle.path), "data": str(data), "split": split, **results}
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    b = results["backend"]
    lines = [
        f"# Evaluation of bundle `{bundle.path}` on `{data}` ({split})",
        "",
        f"Model file `{b['file']}`: {b['precision']} in {b['provider']} ({b['threads']} thread(s)).",
        "",
    ]
    stateful = b.get("path") == "stateful"
    if stateful:
        lines += [f"Streamed as `listen` runs the bundle: {b['describe']}. Each clip is a fresh stream; a result comes "
                  "where each window would end, and a clip votes by the mean of its results' probabilities.", ""]  # fmt: skip
    for level in ("window", "clip"):
        heading = "result (stateful stream)" if stateful and level == "window" else level
        lines += [f"## Per {heading}", ""] + metrics_table(results[level]) + [""]
    lines += confusion_text(results["window"]["confusion"], list(bundle.labels))
    if "fused" in results:
        fused = results["fused"]
        lines += ["", f"## Per clip, fused with the SVM (weight {fused['weight']:g}): the bundle's answer", "",
                  f"The calibrated SVM alone: clip accuracy {100 * fused['svm_clip']['accuracy']:.1f}%.", ""]  # fmt: skip
        lines += metrics_table(fused["clip"]) + [""] + confusion_text(fused["clip"]["confusion"], list(bundle.labels))
    if results["problems"]:
        lines += ["", f"## Left out ({len(results['problems'])})", ""]
        lines += [f"- `{p['path']}`: {p['reason']}" for p in results["problems"]]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
