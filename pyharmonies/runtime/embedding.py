"""Embeddings on the device: a bundle's embedding model, fed windows of raw features.

A CNN bundle exported by this version carries, beside its classifier, the
same network without its head (``embedding.<precision>.<runtime>``, listed
under the manifest's ``embedding`` section): one normalised window in, the
pooled features out, ``(batch, dim)``. A file's vector is the mean of its
windows' vectors, windows cut as :func:`pyharmonies.windows.window_starts`
cuts them (every ``window_frames`` by default: no overlap, as ``harmonies
embed`` does on the workstation).

Device side: numpy, soundfile, soxr, the feature core and one runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from pyharmonies.audio import iter_blocks
from pyharmonies.errors import AudioError, BundleError, ParameterError
from pyharmonies.runtime.backends import (BACKEND_CHOICES, PRECISION_CHOICES, Backend, OnnxBackend, TFLiteBackend,
                                          available_backends)  # fmt: skip
from pyharmonies.runtime.bundle import PRECISIONS, RUNTIMES, Bundle, ModelFile, load_bundle
from pyharmonies.windows import InputFeatureStream, WindowCutter, silence_values, take_window, window_starts

__all__ = ["BundleEmbedder", "FileEmbedding", "choose_embedding_file"]

#: Windows per runtime call.
BATCH_SIZE = 32


def choose_embedding_file(bundle: Bundle, backend: str = "auto", precision: str = "auto") -> ModelFile:
    """The embedding file to run: int8 first (the device's model), in an installed runtime.

    Raises
    ------
    BundleError
        The bundle has no embedding files (a bundle of an LSTM, or exported
        before they existed: re-export it), or none an installed runtime runs.
    """
    if backend not in BACKEND_CHOICES or precision not in PRECISION_CHOICES:
        raise ParameterError(f"backend must be one of {', '.join(BACKEND_CHOICES)} and precision one of "
                             f"{', '.join(PRECISION_CHOICES)}, got {backend!r}, {precision!r}")  # fmt: skip
    if not bundle.embedding_files:
        raise BundleError(f"{bundle.path}: this bundle carries no embedding model (an LSTM's bundle has none; a CNN "
                          "bundle exported before embeddings existed: re-export the run with `harmonies export RUN`)")  # fmt: skip
    installed = available_backends()
    for p in PRECISIONS if precision == "auto" else (precision,):
        for runtime in RUNTIMES if backend == "auto" else (backend,):
            for mf in bundle.embedding_files.values():
                if mf.runtime == runtime and mf.precision == p and runtime in installed:
                    return mf
    held = ", ".join(bundle.embedding_files)
    raise BundleError(f"{bundle.path}: no embedding file for {precision} {backend} that an installed runtime runs "
                      f"(the bundle holds {held}; installed: {', '.join(installed) or 'none'})")  # fmt: skip


@dataclass(frozen=True)
class FileEmbedding:
    """The embedding of one file: ``windows`` (n, dim), their first frames ``starts`` (n,), and ``vector`` (dim,), their mean."""

    windows: np.ndarray = field(repr=False)
    starts: np.ndarray = field(repr=False)
    vector: np.ndarray = field(repr=False)
    duration_s: float = 0.0


class BundleEmbedder:
    """A bundle's embedding model, fed windows of raw log-mel features.

    Parameters
    ----------
    bundle : Bundle
        From :func:`~pyharmonies.runtime.bundle.load_bundle`; must carry embedding files.
    backend, precision : str
        As :func:`~pyharmonies.runtime.backends.make_backend` (``auto``: int8 when present).
    threads : int

    Attributes
    ----------
    dim, rows, window_frames : int
    feature_config : FeatureConfig
    file : ModelFile
        The embedding file that runs.
    """

    def __init__(self, bundle: Bundle, backend: str = "auto", precision: str = "auto", *, threads: int = 1):
        if bundle.kind != "log_mel":
            raise BundleError(f"{bundle.path}: embeddings come from CNN bundles (log-mel input); this one reads {bundle.kind}")
        self.bundle = bundle
        self.file = choose_embedding_file(bundle, backend, precision)
        cls = TFLiteBackend if self.file.runtime == "tflite" else OnnxBackend
        self.backend: Backend = cls(bundle, self.file, threads=threads, n_outputs=bundle.embedding_dim)
        self.dim = int(bundle.embedding_dim)
        self.rows, self.window_frames = bundle.rows, bundle.window_frames
        self.feature_config = bundle.feature_config
        self.pad_values = silence_values(self.feature_config)["log_mel"]
        self._inv = (1.0 / bundle.std.astype(np.float64)).astype(np.float32)[:, None]
        self._shift = (-bundle.mean.astype(np.float64) / bundle.std.astype(np.float64)).astype(np.float32)[:, None]

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, backend: str = "auto", precision: str = "auto", threads: int = 1) -> BundleEmbedder:
        """Load and verify the bundle at ``path`` (checksums, self-check) and its embedding file."""
        return cls(load_bundle(path), backend, precision, threads=threads)

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings ``(n, dim)`` float32 of raw log-mel windows ``(n, rows, window_frames)``."""
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.rows, self.window_frames):
            raise ParameterError(f"expected windows (n, {self.rows}, {self.window_frames}), got shape {x.shape}")
        out = [self.backend.run((x[i : i + BATCH_SIZE] * self._inv + self._shift)[:, None]) for i in range(0, len(x), BATCH_SIZE)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_features(self, features: np.ndarray, *, hop: int | None = None) -> FileEmbedding:
        """Embed a clip's raw log-mel ``(rows, frames)``: windows every ``hop`` frames (default a window), and their mean.

        A clip shorter than a window gives one window padded with silence; a clip of no frame is an error.
        """
        hop = hop or self.window_frames
        starts = window_starts(features.shape[1], self.window_frames, hop)
        if not starts:
            raise AudioError("no frame to embed")
        vectors = self.embed_windows(np.stack([take_window(features, s, self.window_frames, self.pad_values) for s in starts]))
        frame_s = self.feature_config.hop_length / self.feature_config.sample_rate
        return FileEmbedding(vectors, np.asarray(starts, np.int64), vectors.mean(axis=0), features.shape[1] * frame_s)

    def embed_file(self, path: str | os.PathLike[str], *, hop: int | None = None) -> FileEmbedding:
        """Embed an audio file, decoded and featurised block by block (memory bounded by one batch of windows).

        Raises
        ------
        AudioError
            Missing, undecodable or too short to give a frame (the message names it).
        """
        hop = hop or self.window_frames
        config = self.feature_config
        stream = InputFeatureStream(config, ["log_mel"])
        cutter = WindowCutter(self.rows, self.window_frames, hop, self.pad_values)
        starts: list[int] = []
        chunks: list[np.ndarray] = []
        n_samples = 0

        def take(windows: np.ndarray, first: list[int]) -> None:
            if len(first):
                starts.extend(first)
                chunks.append(self.embed_windows(windows))

        for block in iter_blocks(path, config.sample_rate):
            n_samples += len(block)
            take(*cutter.push(stream.push(block)["log_mel"]))
        take(*cutter.push(stream.flush()["log_mel"]))
        take(*cutter.finish())
        if not starts:
            raise AudioError(f"{path}: too short to embed ({n_samples} samples give no frame)")
        vectors = np.concatenate(chunks)
        return FileEmbedding(vectors, np.asarray(starts, np.int64), vectors.mean(axis=0), n_samples / config.sample_rate)
