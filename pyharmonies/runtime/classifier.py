"""Probabilities of windows of raw features: normalise, run the model, softmax.

:class:`WindowClassifier` is what ``harmonies classify`` runs per window of a
file and ``harmonies listen`` per hop of the microphone: it takes the
features exactly as :func:`~pyharmonies.features.extract` or the
:class:`~pyharmonies.features.StreamingExtractor` gives them (see
:func:`pyharmonies.windows.input_features`), applies the bundle's normalisation and layout, and
returns probabilities over the bundle's labels.

Device side: numpy, the feature core and one runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from pyharmonies.errors import BundleError, ParameterError
from pyharmonies.runtime.backends import Backend, make_backend
from pyharmonies.runtime.bundle import Bundle, load_bundle
from pyharmonies.windows import input_features, silence_values

__all__ = ["WindowClassifier", "input_features", "softmax", "top_labels"]  # input_features: pyharmonies.windows's, re-exported


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis, float32; finite for any finite logits.

    The largest logit is subtracted first, so no ``exp`` overflows and the
    sum is at least 1 (never 0/0, whatever the input: silence included).
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def top_labels(labels: Sequence[str], probs: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable of ``labels`` for one probability vector ``(n_labels,)``, most probable first."""
    p = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-p, kind="stable")[: max(1, int(k))]
    return [(labels[i], float(p[i])) for i in order]


class WindowClassifier:
    """A bundle's model, fed windows of raw features.

    Parameters
    ----------
    bundle : Bundle
        From :func:`~pyharmonies.runtime.bundle.load_bundle`.
    backend : Backend, optional
        From :func:`~pyharmonies.runtime.backends.make_backend`; by default
        ``make_backend(bundle)`` (auto runtime, int8 when present, 1 thread).

    Attributes
    ----------
    bundle, backend
    labels : tuple of str
    kind : str
        The raw features each window holds (``"log_mel"`` or ``"frame_vector"``).
    rows, window_frames, hop_frames : int
    feature_config : FeatureConfig
    pad_values : np.ndarray, shape (rows,)
        The features of digital silence, which pad a clip shorter than a window.

    Examples
    --------
    >>> clf = WindowClassifier.open("export/demo")                        # doctest: +SKIP
    >>> feats = input_features(y, clf.feature_config, clf.kind)           # doctest: +SKIP
    >>> probs = clf.predict(feats[:, :clf.window_frames])                 # doctest: +SKIP
    >>> clf.labels[int(probs.argmax())]                                   # doctest: +SKIP
    'strings'
    """

    def __init__(self, bundle: Bundle, backend: Backend | None = None):
        if not isinstance(bundle, Bundle):
            raise ParameterError(f"bundle must be a Bundle (load_bundle(path)), got {type(bundle).__name__}")
        self.bundle = bundle
        self.backend = backend if backend is not None else make_backend(bundle)
        if self.backend.bundle is not bundle and self.backend.bundle.path != bundle.path:
            raise ParameterError("the backend was made from another bundle")
        self.labels = bundle.labels
        self.kind = bundle.kind
        self.rows = bundle.rows
        self.window_frames = bundle.window_frames
        self.hop_frames = bundle.hop_frames
        self.feature_config = bundle.feature_config
        # (x - mean) / std as x * inv + shift: one fused pass per window.
        self._inv = (1.0 / bundle.std.astype(np.float64)).astype(np.float32)[:, None]
        self._shift = (-bundle.mean.astype(np.float64) / bundle.std.astype(np.float64)).astype(np.float32)[:, None]
        self._pad: np.ndarray | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, backend: str = "auto", precision: str = "auto", threads: int = 1
    ) -> WindowClassifier:
        """Load and verify the bundle at ``path`` and make its backend (see :func:`make_backend`)."""
        bundle = load_bundle(path)
        return cls(bundle, make_backend(bundle, backend, precision, threads=threads))

    def __repr__(self) -> str:
        return f"<WindowClassifier {self.bundle.name!r}: {len(self.labels)} labels, {self.backend.describe()}>"

    @property
    def pad_values(self) -> np.ndarray:
        if self._pad is None:
            self._pad = silence_values(self.feature_config)[self.kind]
        return self._pad

    def normalize(self, windows: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` per row, laid out as the model reads it.

        Parameters
        ----------
        windows : np.ndarray, shape (n, rows, window_frames)

        Returns
        -------
        np.ndarray, shape (n, 1, rows, window_frames) (NCHW) or (n, rows, window_frames) (NCT), float32
        """
        x = np.asarray(windows, dtype=np.float32)
        x = x * self._inv + self._shift
        return x[:, None] if self.bundle.layout == "NCHW" else x

    def logits_batch(self, windows: np.ndarray) -> np.ndarray:
        """Logits ``(n, n_labels)`` of raw feature windows ``(n, rows, window_frames)``."""
        x = self._check(windows)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.backend.run(self.normalize(x))
        if not np.all(np.isfinite(logits)):
            raise BundleError(f"{self.backend.file.name} returned NaN or Inf logits for finite features")
        return logits

    def predict_batch(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities of a batch of windows.

        Parameters
        ----------
        windows : np.ndarray, shape (n, rows, window_frames)
            Raw features (not normalised), e.g. consecutive slices of
            :func:`input_features`.

        Returns
        -------
        np.ndarray, shape (n, n_labels), float32
            Each row sums to 1.
        """
        return softmax(self.logits_batch(windows))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of one window.

        Parameters
        ----------
        features : np.ndarray, shape (rows, window_frames)
            Raw features of one window (not normalised).

        Returns
        -------
        np.ndarray, shape (n_labels,), float32
            Sums to 1; finite for silence too.
        """
        x = np.asarray(features)
        if x.ndim != 2:
            raise ParameterError(f"one window is (rows, frames) = ({self.rows}, {self.window_frames}), got shape {x.shape}")
        return self.predict_batch(x[None])[0]

    def top(self, probs: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable labels of one probability vector, most probable first."""
        return top_labels(self.labels, probs, k)

    def _check(self, windows: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        x = np.asarray(windows, dtype=np.float32)
        want = (self.rows, self.window_frames)
        if x.ndim != 3 or x.shape[1:] != want:
            raise ParameterError(
                f"windows must be (n, rows, frames) = (n, {want[0]}, {want[1]}) of raw {self.kind} features, got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ParameterError("windows hold NaN or Inf; the feature core never produces them (check the input)")
        return x
