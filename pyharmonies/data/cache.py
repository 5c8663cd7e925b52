"""Features of whole audio files, computed once and memory-mapped.

Training reads the same features every epoch; decoding, resampling and the
FFTs are paid once per file and :class:`~pyharmonies.features.FeatureConfig`.
Layout on disk::

    root/<config id>/config.json                   the FeatureConfig (to_json)
    root/<config id>/<sha256>.log_mel.npy          float32 (n_mels, frames)
    root/<config id>/<sha256>.frame_vector.npy     float32 (n_mfcc + 8, frames)

``config id`` is the first 16 hex digits of the SHA-256 of the config's JSON,
so a changed config lands in a new folder and is recomputed; ``sha256`` is
the file's content hash, so a renamed file is still a hit and an edited file
is recomputed. Files are written to a temporary name and renamed
(``os.replace``): a killed run, or two processes computing the same file,
never leave a torn array.

Features are computed the way ``harmonies classify`` computes them on the
device: the file decoded and resampled block by block
(:func:`pyharmonies.audio.iter_blocks`), both kinds from one native
streaming extractor (:class:`pyharmonies.windows.InputFeatureStream`),
each block's frames appended to the arrays on disk as they come
(:mod:`pyharmonies.npyframes`). The frames equal those of
:func:`pyharmonies.features.extract` over the whole decoded file, bit for
bit, and a worker's memory does not grow with the file. The arrays are
stored in Fortran order (frame after frame), so a window of frames is one
contiguous stretch of the memory map; arrays cached before in C order load
as well.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import atomic_open
from pyharmonies.audio import AudioWarning, iter_blocks
from pyharmonies.data.sources import Clip, Problem, failure_reason
from pyharmonies.errors import AudioError, ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.npyframes import NpyFrameWriter
from pyharmonies.windows import INPUT_KINDS, InputFeatureStream, kind_rows

#: The kinds of features the cache holds, as the models take them.
FEATURE_KINDS: tuple[str, ...] = INPUT_KINDS

# Memory maps kept open per cache object (each holds a file descriptor).
_OPEN_MAPS = 128

# With jobs=None, fewer files than this are computed in-process.
_MIN_PARALLEL = 16

# Frame-boundary slack: start_s * sr / hop that is an integer up to rounding stays that integer.
_FRAME_EPS = 1e-9


class FeatureCache:
    """Whole-file features on disk, keyed by (file content, FeatureConfig).

    Parameters
    ----------
    root : path-like
        The cache folder (made on first write); several configs share it.
    config : FeatureConfig

    Attributes
    ----------
    directory : Path
        ``root/<config id>``, where this config's arrays live.
    hits, misses : int
        Lookups answered from disk, and files computed (or attempted): each
        file in :meth:`ensure` counts once, each :meth:`load` call once.

    Notes
    -----
    Picklable (for data-loader workers): open memory maps are not carried
    over. Content hashes are memoised per ``(path, size, mtime_ns)``, so a
    file is hashed once per object unless it changes.

    Examples
    --------
    >>> cache = FeatureCache("cache", FeatureConfig())                 # doctest: +SKIP
    >>> problems = cache.ensure([c.path for c in index.clips])         # doctest: +SKIP
    >>> x = cache.clip_features(index.clips[0], "log_mel")             # doctest: +SKIP
    >>> x.shape                                                        # doctest: +SKIP
    (64, 1293)
    """

    def __init__(self, root: str | os.PathLike[str], config: FeatureConfig):
        if not isinstance(config, FeatureConfig):
            raise ParameterError(f"config must be a FeatureConfig, got {type(config).__name__}")
        self.root = Path(root)
        self.config = config
        self.config_id = hashlib.sha256(config.to_json().encode("utf-8")).hexdigest()[:16]
        self.directory = self.root / self.config_id
        self.hits = 0
        self.misses = 0
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._maps: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()  # memory maps would pickle as full copies
        return state

    # ------------------------------------------------------------ public

    def content_hash(self, path: str | os.PathLike[str]) -> str:
        """SHA-256 (hex) of the file's bytes, memoised by (path, size, mtime_ns).

        Raises ``OSError`` (``FileNotFoundError``...) if the file cannot be read.
        """
        name = os.fspath(path)
        st = os.stat(name)
        memo = (name, st.st_size, st.st_mtime_ns)
        digest = self._hashes.get(memo)
        if digest is None:
            with open(name, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            self._hashes[memo] = digest
        return digest

    def array_path(self, digest: str, kind: str) -> Path:
        """Where the ``kind`` features of content ``digest`` are stored."""
        _check_kind(kind)
        return self.directory / f"{digest}.{kind}.npy"

    def ensure(
        self, paths: Sequence[str | os.PathLike[str]], *, jobs: int | None = None, progress: bool = True
    ) -> list[Problem]:
        """Compute the features of every file not cached yet.

        Parameters
        ----------
        paths : sequence of path-like
            Audio files (repeats, and files with the same content, are
            computed once).
        jobs : int, optional
            Worker processes; 1 computes in this process. If omitted,
            ``os.cpu_count()``, or 1 for fewer than 16 files to compute
            (starting a worker costs about as much as a dozen files).
            Workers are spawned (not forked: safe after torch or CUDA
            initialised), so a calling script needs the usual
            ``if __name__ == "__main__":`` guard.
        progress : bool
            Draw a tqdm bar on stderr while computing.

        Returns
        -------
        list of Problem
            Files that are missing, unreadable, undecodable or that failed
            in any other way (the error's text), in input order; never an
            exception for a bad file (a ``KeyboardInterrupt`` still stops).

        Warns
        -----
        AudioWarning
            A file is truncated (its features are those of what it holds).
        """
        auto = jobs is None
        if jobs is None:
            jobs = os.cpu_count() or 1
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ParameterError(f"jobs must be an integer >= 1, got {jobs!r}")
        problems: dict[Path, Problem] = {}
        todo: dict[str, list[Path]] = {}  # digest -> the paths with that content
        order = list(dict.fromkeys(Path(p) for p in paths))
        for path in order:
            try:
                digest = self.content_hash(path)
            except FileNotFoundError:
                problems[path] = Problem(path, "no such file")
                continue
            except OSError as err:
                problems[path] = Problem(path, f"cannot read ({err.strerror or err})")
                continue
            if digest in todo:
                todo[digest].append(path)
            elif self._cached(digest):
                self.hits += 1
            else:
                todo[digest] = [path]
        if todo:
            if auto and len(todo) < _MIN_PARALLEL:
                jobs = 1  # starting workers would cost more than these few files
            self._write_config()
            for digest, (error, notes) in self._compute_all({d: ps[0] for d, ps in todo.items()}, jobs, progress):
                self.misses += 1
                _rewarn(notes)
                if error is not None:
                    problems.update((path, Problem(path, error)) for path in todo[digest])
        return [problems[p] for p in order if p in problems]

    def load(self, path: str | os.PathLike[str], kind: str) -> np.ndarray:
        """The ``kind`` features of a whole file, computing them if needed.

        Parameters
        ----------
        path : path-like
        kind : str
            One of :data:`FEATURE_KINDS`.

        Returns
        -------
        np.ndarray, shape (n, frames), float32
            A read-only memory map (``n_mels`` rows for ``log_mel``,
            ``n_mfcc + 8`` for ``frame_vector``).

        Raises
        ------
        ParameterError
            Unknown ``kind``.
        AudioError
            The file is missing or cannot be decoded, or its features could
            not be computed for another reason (the message says why).

        Warns
        -----
        AudioWarning
            The file is truncated (its features are those of what it holds).
        """
        _check_kind(kind)
        try:
            digest = self.content_hash(path)
        except FileNotFoundError:
            raise AudioError(f"{path}: no such file") from None
        except OSError as err:
            raise AudioError(f"{path}: cannot read ({err.strerror or err})") from None
        memo = (digest, kind)
        array = self._maps.get(memo)
        if array is not None:
            self._maps.move_to_end(memo)
            self.hits += 1
            return array
        if self._cached(digest):
            self.hits += 1
            try:
                array = np.load(self.array_path(digest, kind), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):  # damaged on disk: compute again below
                array = None
        if array is None:
            self.misses += 1
            self._write_config()
            error, notes = _compute(os.fspath(path), digest, os.fspath(self.directory), self.config.to_json())
            _rewarn(notes)
            if error is not None:
                raise AudioError(f"{path}: {error}")
            array = np.load(self.array_path(digest, kind), mmap_mode="r", allow_pickle=False)
        self._maps[memo] = array
        while len(self._maps) > _OPEN_MAPS:
            self._maps.popitem(last=False)
        return array

    def clip_features(self, clip: Clip, kind: str) -> np.ndarray:
        """The frames of a clip's time range, out of its file's features.

        Parameters
        ----------
        clip : Clip
        kind : str
            One of :data:`FEATURE_KINDS`.

        Returns
        -------
        np.ndarray, shape (n, m), float32
            A read-only view: the frames ``t`` whose centre time
            ``t * hop_length / sample_rate`` lies in ``[start_s, end_s)``
            (``m`` may be 0 for a range shorter than one hop). Frames at
            the edges of a range were computed with the neighbouring audio
            in their window (up to ``n_fft / 2`` samples), as a stream
            would have it; they are not re-extracted from the cut alone.
        """
        whole = self.load(clip.path, kind)
        return whole[:, slice(*self.frame_range(clip, whole.shape[1]))]

    def frame_range(self, clip: Clip, frames: int) -> tuple[int, int]:
        """``(first, stop)``: the frames of :meth:`clip_features` in a file of ``frames`` frames."""
        per_second = self.config.sample_rate / self.config.hop_length
        first = min(frames, max(0, int(np.ceil(clip.start_s * per_second - _FRAME_EPS))))
        stop = frames if clip.end_s is None else min(frames, int(np.ceil(clip.end_s * per_second - _FRAME_EPS)))
        return first, max(first, stop)

    # ------------------------------------------------------------ internals

    def _cached(self, digest: str) -> bool:
        return all(self.array_path(digest, kind).is_file() for kind in FEATURE_KINDS)

    def _write_config(self) -> None:
        target = self.directory / "config.json"
        if not target.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.config.to_dict(), indent=1, sort_keys=True) + "\n"
            _replace_into(target, lambda f: f.write(text.encode("utf-8")))

    def _compute_all(self, todo: dict[str, Path], jobs: int, progress: bool) -> list[tuple[str, tuple[str | None, list[str]]]]:
        from tqdm import tqdm

        config_json = self.config.to_json()
        directory = os.fspath(self.directory)
        items = list(todo.items())
        results: list[tuple[str, tuple[str | None, list[str]]]] = []
        with tqdm(
            total=len(items), desc="features", unit="file", file=sys.stderr, disable=not progress, leave=False
        ) as bar:
            if jobs == 1 or len(items) == 1:
                for digest, path in items:
                    results.append((digest, _compute(os.fspath(path), digest, directory, config_json)))
                    bar.update(1)
                return results
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=context)
            try:
                futures = {
                    pool.submit(_compute, os.fspath(path), digest, directory, config_json): digest
                    for digest, path in items
                }
                for future in as_completed(futures):
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as err:
                        outcome = (f"the feature worker process died ({err})", [])
                    results.append((futures[future], outcome))
                    bar.update(1)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        return results


def _check_kind(kind: str) -> None:
    if kind not in FEATURE_KINDS:
        raise ParameterError(f"unknown feature kind {kind!r}; the cache holds {', '.join(FEATURE_KINDS)}")


@functools.lru_cache(maxsize=4)
def _config(config_json: str) -> FeatureConfig:
    return FeatureConfig.from_json(config_json)


def _compute(path: str, digest: str, directory: str, config_json: str) -> tuple[str | None, list[str]]:
    """Decode one file block by block, extract both kinds, store them as they come.

    Runs in worker processes: arguments and result are plain strings. Returns
    the error text (None on success) and the text of the file's warnings (a
    truncated file), which the caller shows. Any exception but a
    ``KeyboardInterrupt`` is this file's failure, not the run's: a
    ``MemoryError`` or a decoder's error is reported like a corrupt header.
    """
    config = _config(config_json)
    folder = Path(directory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        try:
            stream = InputFeatureStream(config, FEATURE_KINDS)
            blocks = iter_blocks(path, config.sample_rate)
            with contextlib.ExitStack() as stack:
                writers = {
                    kind: NpyFrameWriter(stack.enter_context(atomic_open(folder / f"{digest}.{kind}.npy", "wb")), kind_rows(config, kind))
                    for kind in FEATURE_KINDS
                }
                for block in blocks:
                    for kind, frames in stream.push(block).items():
                        writers[kind].write(frames)
                for kind, frames in stream.flush().items():
                    writers[kind].write(frames)
                for writer in writers.values():
                    writer.close()
        except Exception as err:  # this file's failure, whatever it is (never the run's)
            return failure_reason(err, path), []
    return None, [str(w.message) for w in caught if issubclass(w.category, AudioWarning)]


def _rewarn(notes: list[str]) -> None:
    """Show a worker's warnings in this process (where the caller can see or catch them)."""
    for note in notes:
        warnings.warn(AudioWarning(note), stacklevel=3)


def _replace_into(target: Path, write: Any) -> None:
    """Write through ``write(file)`` to a temporary file beside ``target``, then rename it over."""
    with atomic_open(target, "wb") as f:
        write(f)
