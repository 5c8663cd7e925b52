"""The SVM baseline as arrays, on the device: votes, calibrated probabilities, and fusion with the CNN.

The classical baseline is an RBF support-vector machine on the clip
statistics of the frame vector (the mean and standard deviation of each of
its 28 rows over a clip's frames). Training fits it with scikit-learn and
keeps plain arrays (:class:`RbfSvm`); this module predicts from them with
numpy alone, exactly as scikit-learn's ``SVC`` does, so the device needs
neither scikit-learn nor a pickle.

:class:`CalibratedSvm` adds what fusing needs: one sigmoid per class over
the SVM's one-vs-rest decision values (scikit-learn's
``CalibratedClassifierCV(method="sigmoid", ensemble=False)``), fitted at
training time on decision values of tracks the SVM did not train on.
:func:`fuse_probabilities` then weighs the CNN's clip probabilities with the
SVM's in the log domain (``docs/EXPERIMENTS.md``, "The SVM as one more member").

Device side: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pyharmonies.errors import ParameterError

SVM_ARRAYS = ("mean", "scale", "support_vectors", "n_support", "dual_coef", "intercept", "classes")
CALIBRATION_ARRAYS = ("slope", "offset")

_ROWS_PER_CHUNK = 64  # clips per kernel block: (64, support vectors) float64 stays small
_FLOOR = 1e-12  # smallest probability taken to the log: a class the SVM never saw is unlikely, not impossible


def clip_statistics(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(clips, 2 n) mean and std over frames of each (n, frames) array."""
    return np.stack([np.concatenate([a.mean(axis=1), a.std(axis=1)]) for a in arrays]).astype(np.float64)


class FrameStatistics:
    """The mean and standard deviation of each row over every frame pushed so far, without keeping the frames.

    Equal to :func:`clip_statistics` of all the frames side by side (to
    float64 rounding): sums are kept in float64, per row.
    """

    def __init__(self, rows: int):
        self.rows = rows
        self.frames = 0
        self._sum = np.zeros(rows, np.float64)
        self._squares = np.zeros(rows, np.float64)

    def push(self, frames: np.ndarray) -> None:
        """Add (rows, n) frames."""
        frames = np.asarray(frames, np.float64)
        if frames.ndim != 2 or frames.shape[0] != self.rows:
            raise ParameterError(f"expected ({self.rows}, frames) features, got shape {frames.shape}")
        self.frames += frames.shape[1]
        self._sum += frames.sum(axis=1)
        self._squares += np.square(frames).sum(axis=1)

    def vector(self) -> np.ndarray:
        """(2 rows,) the mean then the standard deviation of each row; raises before any frame."""
        if self.frames == 0:
            raise ParameterError("no frames yet: the statistics of nothing are undefined")
        mean = self._sum / self.frames
        return np.concatenate([mean, np.sqrt(np.maximum(self._squares / self.frames - mean * mean, 0.0))])

    def merge(self, other: FrameStatistics) -> None:
        """Add the frames ``other`` has seen (same rows), as if they had been pushed here."""
        if other.rows != self.rows:
            raise ParameterError(f"cannot merge statistics of {other.rows} rows into {self.rows}")
        self.frames += other.frames
        self._sum += other._sum
        self._squares += other._squares


class SegmentStatistics:
    """:class:`FrameStatistics` of each back-to-back segment of ``segment_frames`` frames: a long file read as clips.

    The SVM was fitted on the statistics of clips of one length; a file many
    times longer is read as such clips, one statistics vector each (their
    probabilities are then averaged, as the network's windows are), not as one
    long clip whose standard deviations span sections a clip never spans
    (``benchmarks/svm_long_files.py``). The frames after the last whole
    segment make one more segment when they are at least half a segment, and
    join the last segment otherwise, so a file of one clip's length is one
    segment of all its frames. A file shorter than a segment is one segment.
    Keeps ``2 rows`` float64 sums per segment, never the frames.
    """

    def __init__(self, rows: int, segment_frames: int):
        if isinstance(segment_frames, bool) or not isinstance(segment_frames, int) or segment_frames < 1:
            raise ParameterError(f"segment_frames must be an integer >= 1, got {segment_frames!r}")
        self.rows = rows
        self.segment_frames = segment_frames
        self._done: list[FrameStatistics] = []
        self._current = FrameStatistics(rows)

    def push(self, frames: np.ndarray) -> None:
        """Add (rows, n) frames."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] != self.rows:
            raise ParameterError(f"expected ({self.rows}, frames) features, got shape {frames.shape}")
        start = 0
        while start < frames.shape[1]:
            take = min(self.segment_frames - self._current.frames, frames.shape[1] - start)
            self._current.push(frames[:, start : start + take])
            start += take
            if self._current.frames == self.segment_frames:
                self._done.append(self._current)
                self._current = FrameStatistics(self.rows)

    def vectors(self) -> np.ndarray:
        """(segments, 2 rows) each segment's mean then standard deviation per row; raises before any frame."""
        segments = list(self._done)
        tail = self._current
        if tail.frames and segments and 2 * tail.frames < self.segment_frames:
            last = FrameStatistics(self.rows)
            last.merge(segments.pop())
            last.merge(tail)
            segments.append(last)
        elif tail.frames or not segments:
            segments.append(tail)
        return np.stack([segment.vector() for segment in segments])


@dataclass(frozen=True)
class RbfSvm:
    """A fitted standardiser + RBF ``SVC`` as plain arrays; :meth:`predict` equals ``SVC.predict``.

    Support vectors are grouped by class (``n_support`` of each, in the order
    of ``classes``); ``dual_coef`` and ``intercept`` are libsvm's: for the
    pair of classes (i, j), i < j, the decision value is
    ``sum(dual_coef[j-1, sv of i] * K) + sum(dual_coef[i, sv of j] * K) + intercept[p]``,
    positive votes for i, and the most voted class wins (the first on a tie).
    """

    mean: np.ndarray  # (features,) the standardiser's mean
    scale: np.ndarray  # (features,) its standard deviation (1 for a constant feature)
    support_vectors: np.ndarray  # (n_sv, features), standardised, grouped by class
    n_support: np.ndarray  # (classes,) support vectors of each class
    dual_coef: np.ndarray  # (classes - 1, n_sv)
    intercept: np.ndarray  # (classes * (classes - 1) / 2,), pairs (0,1), (0,2)... (1,2)...
    classes: np.ndarray  # (classes,) the label indices the SVC was trained on, ascending
    gamma: float  # RBF kernel exp(-gamma * |x - sv|^2), on standardised features
    C: float  # the regularisation chosen (for the record; prediction does not use it)

    def __post_init__(self) -> None:
        n_classes, n_sv = np.size(self.classes), len(np.atleast_1d(self.support_vectors))
        n_features = self.mean.shape[0] if np.ndim(self.mean) == 1 else -1
        ok = (
            all(isinstance(getattr(self, n), np.ndarray) and np.issubdtype(getattr(self, n).dtype, np.number) for n in SVM_ARRAYS)
            and np.issubdtype(self.classes.dtype, np.integer) and np.issubdtype(self.n_support.dtype, np.integer)
            and self.classes.ndim == 1 and n_classes >= 2
            and self.mean.ndim == 1 and self.scale.shape == self.mean.shape
            and self.support_vectors.ndim == 2 and self.support_vectors.shape[1] == n_features
            and self.n_support.shape == (n_classes,) and int(self.n_support.sum()) == n_sv and bool((self.n_support >= 0).all())
            and self.dual_coef.shape == (n_classes - 1, n_sv)
            and self.intercept.shape == (n_classes * (n_classes - 1) // 2,)
            and math.isfinite(self.gamma) and self.gamma > 0
        )  # fmt: skip
        if not ok:
            raise ParameterError("inconsistent SVM arrays (shapes or types do not match one another)")
        # Computed once, not per call (a stored model's support vectors are float16): float64 copies, squared norms,
        # each class's slice, and which class each pair (i, j), i < j, counts for: i in _first, j in _second.
        sv = np.asarray(self.support_vectors, np.float64)  # a copy only when stored narrower
        first, second = np.triu_indices(n_classes, k=1)
        cached = {"_sv": sv, "_sv_squared": (sv * sv).sum(axis=1), "_dual": np.asarray(self.dual_coef, np.float64),
                  "_start": np.concatenate([[0], np.cumsum(self.n_support)]), "_pairs": (first, second),
                  "_first": np.eye(n_classes)[first], "_second": np.eye(n_classes)[second]}  # fmt: skip
        for name, value in cached.items():
            object.__setattr__(self, name, value)

    @property
    def features(self) -> int:
        """How many clip statistics the SVM reads."""
        return int(self.mean.shape[0])

    def pair_decisions(self, x: np.ndarray) -> np.ndarray:
        """(clips, pairs) libsvm's one-vs-one decision values for (clips, features) raw clip statistics.

        Pairs run (0, 1), (0, 2) ... (1, 2) ...; a positive value votes for the first class of the pair.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ParameterError(f"expected (clips, {self.features}) features, got shape {x.shape}")
        n = len(self.classes)
        out = np.zeros((x.shape[0], n * (n - 1) // 2), dtype=np.float64)
        sv, start, (first, second) = self._sv, self._start, self._pairs
        for lo in range(0, x.shape[0], _ROWS_PER_CHUNK):
            z = (x[lo : lo + _ROWS_PER_CHUNK] - self.mean) / self.scale  # as StandardScaler.transform
            # |z - sv|^2 expanded: one matrix product instead of a (rows, n_sv, features) difference; float64 keeps it
            # within 1e-12 of libsvm's direct sum.
            d2 = np.maximum((z * z).sum(axis=1)[:, None] + self._sv_squared[None, :] - 2.0 * (z @ sv.T), 0.0)
            k = np.exp(-self.gamma * d2)  # (rows, n_sv)
            # part[c][:, m]: class c's support vectors weighted by their m-th dual coefficient, summed; pair (i, j) reads
            # its j-1-th for class i and its i-th for class j. One product per class instead of two per pair.
            part = np.stack([k[:, start[c] : start[c + 1]] @ self._dual[:, start[c] : start[c + 1]].T for c in range(n)])
            out[lo : lo + len(z)] = part[first, :, second - 1].T + part[second, :, first].T + self.intercept
        return out

    def votes(self, x: np.ndarray) -> np.ndarray:
        """(clips, classes) one-vs-one votes for (clips, features) raw clip statistics."""
        return self._votes(self.pair_decisions(x))

    def _votes(self, dec: np.ndarray) -> np.ndarray:
        wins = dec > 0  # libsvm: a positive value votes for the pair's first class, else for its second
        return (wins @ self._first + ~wins @ self._second).astype(np.int64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(clips,) label indices: the most voted class, the first of them on a tie (as libsvm)."""
        return self.classes[self.votes(x).argmax(axis=1)]

    def decision_values(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's ``SVC.decision_function`` for (clips, features): what calibration reads.

        Two classes: (clips,), positive for the second class. More: (clips,
        classes), each class's votes plus its summed pairwise confidence
        squashed into (-1/3, 1/3), so the votes decide and the confidences
        break ties (scikit-learn's one-vs-rest shape).
        """
        dec = self.pair_decisions(x)
        n = len(self.classes)
        if n == 2:
            return -dec[:, 0]
        votes = self._votes(dec).astype(np.float64)
        confidence = dec @ (self._first - self._second)  # each pair's value added to its first class, taken from its second
        return votes + confidence / (3 * (np.abs(confidence) + 1))


@dataclass(frozen=True)
class CalibratedSvm:
    """An :class:`RbfSvm` whose decision values become probabilities over every label.

    ``slope`` and ``offset``: one sigmoid per SVM class (one in all for two
    classes), ``p = 1 / (1 + exp(slope * f + offset))`` of the decision
    value ``f``, normalised over the classes as scikit-learn's
    ``CalibratedClassifierCV`` does. ``n_labels``: the labels of the model
    it is fused with; a label the SVM never saw gets a floor probability.
    """

    svm: RbfSvm
    slope: np.ndarray  # (calibrated classes,) float
    offset: np.ndarray  # (calibrated classes,) float
    n_labels: int

    def __post_init__(self) -> None:
        n = len(self.svm.classes)
        expected = (1,) if n == 2 else (n,)
        ok = (
            isinstance(self.slope, np.ndarray) and isinstance(self.offset, np.ndarray)
            and self.slope.shape == expected and self.offset.shape == expected
            and bool(np.isfinite(self.slope).all() and np.isfinite(self.offset).all())
            and self.n_labels >= 2 and int(self.svm.classes.min()) >= 0 and int(self.svm.classes.max()) < self.n_labels
        )  # fmt: skip
        if not ok:
            raise ParameterError(f"inconsistent SVM calibration (slope {np.shape(self.slope)}, offset {np.shape(self.offset)}, "
                                 f"{len(self.svm.classes)} SVM classes, {self.n_labels} labels)")  # fmt: skip

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(clips, n_labels) calibrated probabilities for (clips, features) raw clip statistics; rows sum to 1."""
        f = self.svm.decision_values(x)
        n = len(self.svm.classes)
        if n == 2:
            second = 1.0 / (1.0 + np.exp(self.slope[0] * f + self.offset[0]))
            p = np.stack([1.0 - second, second], axis=1)
        else:
            p = 1.0 / (1.0 + np.exp(self.slope * f + self.offset))
            total = p.sum(axis=1, keepdims=True)
            p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / n)  # all zero: uniform, as scikit-learn
        out = np.full((p.shape[0], self.n_labels), _FLOOR)
        out[:, self.svm.classes] = np.maximum(p, _FLOOR)
        return out / out.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class SvmFusion:
    """A bundle's ``svm`` section, loaded: the calibrated SVM and how much its answer weighs.

    ``clip_seconds``: the length of the clips its statistics were fitted on
    (``listen`` takes the statistics of that much recent audio).
    """

    model: CalibratedSvm
    weight: float
    file: str
    clip_seconds: float

    def clip_frames(self, sample_rate: int, hop_length: int) -> int:
        """The frames of one ``clip_seconds`` clip at these features' frame rate (at least 1)."""
        return max(1, int(round(self.clip_seconds * sample_rate / hop_length)))

    def file_probabilities(self, segments: SegmentStatistics) -> np.ndarray:
        """(labels,) the mean of the calibrated probabilities of a file's clip-long segments."""
        return self.model.probabilities(segments.vectors()).mean(axis=0)


def fuse_probabilities(cnn: np.ndarray, svm: np.ndarray, weight: float) -> np.ndarray:
    """(clips, labels) ``softmax((1 - weight) log cnn + weight log svm)`` of two (clips, labels) probabilities.

    ``weight`` 0 gives the CNN's answer back, 1 the SVM's.
    """
    if not 0.0 <= weight <= 1.0:
        raise ParameterError(f"the SVM's weight must be between 0 and 1, got {weight}")
    cnn, svm = np.asarray(cnn, np.float64), np.asarray(svm, np.float64)
    if cnn.shape != svm.shape:
        raise ParameterError(f"cannot fuse probabilities of shapes {cnn.shape} and {svm.shape}")
    scores = (1.0 - weight) * np.log(np.maximum(cnn, _FLOOR)) + weight * np.log(np.maximum(svm, _FLOOR))
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    return p / p.sum(axis=-1, keepdims=True)


def calibrated_arrays(model: CalibratedSvm) -> dict[str, np.ndarray]:
    """Everything a :class:`CalibratedSvm` holds, as named arrays for ``np.savez`` (support vectors as float16)."""
    arrays = {name: getattr(model.svm, name) for name in SVM_ARRAYS}
    # Standardised values (|z| of a few units) in float16: a quarter of the bytes, probabilities within about 1e-5
    # on the soundtracks folds; the kernel is still computed in float64.
    arrays["support_vectors"] = arrays["support_vectors"].astype(np.float16)
    arrays["dual_coef"] = arrays["dual_coef"].astype(np.float32)
    arrays.update(slope=model.slope, offset=model.offset, gamma=np.float64(model.svm.gamma), C=np.float64(model.svm.C),
                  n_labels=np.int64(model.n_labels))  # fmt: skip
    return arrays


def read_arrays(path, names: Sequence[str], what: str) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` file, read without pickles; ``what`` names the file's kind in errors.

    Raises
    ------
    ParameterError
        Missing, truncated, corrupt, lacking a name, or holding pickled objects: one line naming ``path``.
    """
    import zipfile

    try:
        # Our own file object: np.load leaks the one it opens when the zip is corrupt.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            return {name: np.asarray(z[name]) for name in names}
    except ValueError as err:
        if "allow_pickle" in str(err):  # object arrays: a crafted file, not one harmonies wrote
            raise ParameterError(f"{path}: refused: it holds pickled objects, and unpickling one could run code") from None
        raise ParameterError(f"{path}: not a usable {what} ({' '.join(str(err).split())})") from None
    except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise ParameterError(f"{path}: not a readable {what} (missing, truncated or corrupt: {type(err).__name__})") from None


def read_calibrated(path) -> CalibratedSvm:
    """The :class:`CalibratedSvm` that ``np.savez(path, **calibrated_arrays(model))`` wrote; never unpickles.

    Raises
    ------
    ParameterError
        Unreadable, truncated, holding pickled objects, or inconsistent: one line naming ``path``.
    """
    values = read_arrays(path, SVM_ARRAYS + CALIBRATION_ARRAYS + ("gamma", "C", "n_labels"), "calibrated SVM")
    try:
        svm = RbfSvm(**{name: values[name] for name in SVM_ARRAYS}, gamma=float(values["gamma"]), C=float(values["C"]))
        return CalibratedSvm(svm, slope=values["slope"].astype(np.float64), offset=values["offset"].astype(np.float64),
                             n_labels=int(values["n_labels"]))  # fmt: skip
    except (ValueError, TypeError) as err:  # ParameterError included: inconsistent arrays
        raise ParameterError(f"{path}: not a usable calibrated SVM ({' '.join(str(err).split())})") from None
