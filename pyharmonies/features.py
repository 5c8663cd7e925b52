"""Audio features computed by the harmonies C core.

The same C code runs at training time and on the device, in batch
(:func:`extract`) and in streaming (:class:`StreamingExtractor`); for the same
samples both give the same frames, bit for bit, whatever the block sizes.
Every feature follows librosa's definition (or pyAudioAnalysis's, for
``energy_entropy``, ``spectral_entropy`` and ``spectral_flux``) and is shaped
``(n, frames)`` like librosa's.

Threads: :func:`extract` and :func:`frame_vector` may be called from any
number of threads at once (e.g. a ``concurrent.futures.ThreadPoolExecutor``
over files); each call uses its own native extractor and computes without
the GIL, so threads run in parallel and give the single-threaded result bit
for bit. A :class:`StreamingExtractor` is one stream: give each thread its
own (sharing one is safe, but its blocks then arrive in whatever order the
threads make).

Examples
--------
>>> import numpy as np
>>> from pyharmonies.features import FeatureConfig, extract
>>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
>>> feats = extract(y, FeatureConfig(), features=["log_mel", "mfcc"])
>>> feats["log_mel"].shape, feats["mfcc"].shape
((64, 44), (20, 44))
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pyharmonies import _native
from pyharmonies.errors import ParameterError, refuse_unknown_fields

#: Every feature name, in the order of the values in a native output row.
FEATURE_NAMES: tuple[str, ...] = tuple(_native.feature_names())

#: The features of the per-frame vector used by sequence models, in order:
#: ``n_mfcc`` MFCCs then zcr, rms, centroid, bandwidth, rolloff, flatness,
#: flux and spectral entropy (28 values with the default 20 MFCCs).
FRAME_VECTOR_FEATURES: tuple[str, ...] = FEATURE_NAMES[:9]

#: Features defined by pyAudioAnalysis's ShortTermFeatures rather than librosa.
PYAUDIOANALYSIS_FEATURES: tuple[str, ...] = ("energy_entropy", "spectral_entropy", "spectral_flux")

_WINDOWS = ("hann",)

# hm_status codes (native/include/harmonies/harmonies.h) -> the fields at fault.
_STATUS_FIELDS = {
    2: ("sample_rate",),
    3: ("n_fft",),
    4: ("win_length",),
    5: ("hop_length",),
    6: ("fmin",),
    7: ("fmax",),
    8: ("n_mels",),
    9: ("n_mels", "n_fft", "fmin", "fmax"),
    10: ("n_mfcc",),
    11: ("amin", "ref"),
}


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes features; the contract between training and device.

    Frozen and JSON-serialisable: a bundle stores it, and the device refuses
    audio features computed any other way. Defaults are librosa's at 22050 Hz.

    Parameters
    ----------
    sample_rate : int
        Sampling rate in Hz that audio is resampled to before analysis.
    n_fft : int
        FFT size; a power of two in [256, 4096].
    win_length : int or None
        Hann window length, centred in ``n_fft``; ``None`` means ``n_fft``.
    hop_length : int
        Samples between successive frames, in [1, n_fft].
    window : str
        Only ``"hann"`` (periodic, as librosa's ``get_window``).
    center : bool
        Centre frame ``t`` on sample ``t * hop_length``, zero-padding
        ``n_fft // 2`` samples at both ends (librosa ``center=True``).
    n_mels : int
        Mel bands.
    fmin, fmax : float
        Frequency range of the mel bands in Hz; ``fmax=None`` means
        ``sample_rate / 2``.
    htk : bool
        HTK mel scale instead of Slaney's (area normalisation is Slaney's
        either way, as librosa's default).
    n_mfcc : int
        MFCCs per frame (DCT-II, orthonormal, of ``log_mel``).
    ref, amin : float
        dB conversion: ``10 log10(max(amin, S)) - 10 log10(max(amin, ref))``.
        There is no ``top_db`` clipping: it depends on the whole clip, which
        a stream never sees.

    Raises
    ------
    ParameterError
        If any value is invalid, naming the field and the reason.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int | None = None
    hop_length: int = 512
    window: str = "hann"
    center: bool = True
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    n_mfcc: int = 20
    ref: float = 1.0
    amin: float = 1e-10

    def __post_init__(self) -> None:
        # numpy scalars (np.int64 from an array, np.float32 ...) become plain
        # Python values: to_json must work and equal configs must hash alike.
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            _require_int(name, getattr(self, name))
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.win_length is None:
            object.__setattr__(self, "win_length", self.n_fft)
        _require_int("win_length", self.win_length)
        object.__setattr__(self, "win_length", int(self.win_length))
        if self.fmax is None:
            object.__setattr__(self, "fmax", self.sample_rate / 2.0)
        for name in ("fmin", "fmax", "ref", "amin"):
            _require_real(name, getattr(self, name))
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("center", "htk"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if not isinstance(self.window, str) or self.window not in _WINDOWS:
            raise ParameterError(
                f"window={self.window!r} is not supported; the core implements {', '.join(_WINDOWS)}"
            )
        object.__setattr__(self, "window", str(self.window))
        status, message = _native.validate(**self._native_kwargs(_mask(FEATURE_NAMES)))
        if status != 0:
            fields = _STATUS_FIELDS.get(status, ())
            values = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
            raise ParameterError(f"invalid FeatureConfig ({values}): {message}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (every value resolved, no ``None``)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`, keys sorted, stable across runs."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """Build from a dict; unknown keys are refused by name."""
        refuse_unknown_fields(cls, data, "FeatureConfig field(s)")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ParameterError(f"FeatureConfig JSON is malformed: {err}") from None
        if not isinstance(data, dict):
            raise ParameterError("FeatureConfig JSON must be an object of fields")
        return cls.from_dict(data)

    def frames(self, n_samples: int) -> int:
        """Frames a signal of ``n_samples`` gives (librosa's count)."""
        return int(_native.frame_count(self.n_fft, self.hop_length, self.center, int(n_samples)))

    def feature_size(self, name: str) -> int:
        """Rows of feature ``name`` per frame (e.g. ``n_mels`` for ``log_mel``)."""
        _check_names([name])
        return {"mfcc": self.n_mfcc, "mel": self.n_mels, "log_mel": self.n_mels, "chroma": 12}.get(name, 1)

    def workspace_bytes(self, features: Iterable[str] | None = None) -> int:
        """Memory in bytes the C extractor needs for these features (all by default)."""
        names = FEATURE_NAMES if features is None else _check_names(features)
        return int(_native.workspace_size(**self._native_kwargs(_mask(names))))

    def _native_kwargs(self, mask: int) -> dict[str, Any]:
        return dict(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            center=self.center,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            n_mfcc=self.n_mfcc,
            amin=self.amin,
            ref=self.ref,
            features=mask,
        )


def _require_int(name: str, value: Any) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {value!r}")


def _require_real(name: str, value: Any) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r}")


def _check_names(features: Iterable[str]) -> tuple[str, ...]:
    if isinstance(features, str):
        features = [features]
    names = tuple(features)
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown:
        raise ParameterError(
            f"unknown feature(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FEATURE_NAMES)}"
        )
    if not names:
        raise ParameterError("features is empty; choose at least one of " + ", ".join(FEATURE_NAMES))
    return names


def _mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << FEATURE_NAMES.index(name)
    return mask


# Building an extractor builds its tables (window, FFT, mel, DCT, chroma):
# cheap, but not free, so batch calls reuse idle ones, kept for the few most
# recent (config, mask) keys. A call borrows an extractor for its duration
# and gives it back: threads never share one, so N threads run N extractors
# in parallel (the GIL is released while computing) and a thread pool over
# files scales with cores. At most _IDLE_PER_KEY idle ones are kept per key.
_CACHE_SIZE = 8
_IDLE_PER_KEY = max(4, os.cpu_count() or 1)
# (config, mask) -> (layout, idle extractors)
_cache: OrderedDict[tuple[FeatureConfig, int], tuple[dict[str, tuple[int, int]], list[Any]]] = OrderedDict()
_cache_lock = threading.Lock()


def _process(y: np.ndarray, config: FeatureConfig, mask: int) -> tuple[np.ndarray, Mapping[str, tuple[int, int]]]:
    """``Extractor.process(y)`` on an extractor no other thread is using, and its layout."""
    key = (config, mask)
    ex = None
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
            if entry[1]:
                ex = entry[1].pop()
    if ex is None:
        ex = _native.Extractor(**config._native_kwargs(mask))
    try:
        rows = ex.process(y)
    finally:
        # process() resets first, so an extractor is reusable even after an error.
        with _cache_lock:
            entry = _cache.get(key)
            if entry is None:
                entry = _cache[key] = (ex.layout, [])
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
            if len(entry[1]) < _IDLE_PER_KEY:
                entry[1].append(ex)
    return rows, entry[0]


def _split(rows: np.ndarray, layout: Mapping[str, tuple[int, int]], names: Iterable[str]) -> dict[str, np.ndarray]:
    # Views into one (frames, row) buffer, transposed to librosa's (n, frames).
    return {name: rows[:, layout[name][0] : layout[name][0] + layout[name][1]].T for name in names}


def _require_config(config: Any) -> FeatureConfig:
    if not isinstance(config, FeatureConfig):
        raise ParameterError(f"config must be a FeatureConfig, got {type(config).__name__}")
    return config


def extract(
    y: np.ndarray, config: FeatureConfig | None = None, *, features: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Compute features of a whole mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``: float32, float64 (converted to
        float32) or int16 PCM (scaled by 1/32768 to [-1, 1)).
    config : FeatureConfig, optional
        Analysis parameters; the defaults if omitted.
    features : iterable of str, optional
        Names from :data:`FEATURE_NAMES`; all of them if omitted. Only the
        requested features (and what they depend on) are computed.

    Returns
    -------
    dict of str to np.ndarray
        ``name -> float32 array (n, frames)``, ``frames = config.frames(len(y))``.
        The arrays are views of one buffer (not C-contiguous); use
        ``np.ascontiguousarray`` where that matters.

    Raises
    ------
    ParameterError
        Unknown feature names.
    ValueError
        Empty input, NaN or Inf or a magnitude beyond 2**30 (with the first
        bad index; audio is expected in [-1, 1]), or 2-D input.
    TypeError
        A dtype other than float32, float64 or int16.
    """
    config = _require_config(config if config is not None else FeatureConfig())
    names = FEATURE_NAMES if features is None else _check_names(features)
    rows, layout = _process(y, config, _mask(names))
    return _split(rows, layout, names)


def frame_vector(y: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """The per-frame vector of the sequence models.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, as for :func:`extract`.
    config : FeatureConfig, optional

    Returns
    -------
    np.ndarray, shape (n_mfcc + 8, frames)
        Rows: ``n_mfcc`` MFCCs, zcr, rms, spectral centroid, bandwidth,
        rolloff, flatness, flux and spectral entropy (28 rows by default).
    """
    config = _require_config(config if config is not None else FeatureConfig())
    rows, _ = _process(y, config, _mask(FRAME_VECTOR_FEATURES))
    return rows.T


class StreamingExtractor:
    """Features of a signal that arrives block by block.

    Each :meth:`push` returns the frames its samples complete; :meth:`flush`
    returns the last frames (those that reach into the end padding) and
    starts a new stream. Concatenating the frames of every push and the
    flush gives exactly what :func:`extract` gives for the same samples,
    whatever the block sizes: both run the same C code on the same frames.

    One object is one stream: give each thread its own (they then run in
    parallel). Calls on a shared one are safe but take turns, in whatever
    order the threads make.

    Parameters
    ----------
    config : FeatureConfig, optional
    features : iterable of str, optional
        As for :func:`extract`; all features if omitted.

    Examples
    --------
    >>> stream = StreamingExtractor(FeatureConfig(), features=["log_mel"])
    >>> parts = [stream.push(block)["log_mel"] for block in blocks]   # doctest: +SKIP
    >>> parts.append(stream.flush()["log_mel"])                      # doctest: +SKIP
    >>> log_mel = np.concatenate(parts, axis=1)                      # doctest: +SKIP
    """

    def __init__(self, config: FeatureConfig | None = None, *, features: Iterable[str] | None = None):
        self.config = _require_config(config if config is not None else FeatureConfig())
        self.features = FEATURE_NAMES if features is None else _check_names(features)
        # A private native object: its frame buffer is this stream's state.
        self._ex = _native.Extractor(**self.config._native_kwargs(_mask(self.features)))
        self._layout = self._ex.layout

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Add samples; return the frames they complete.

        Parameters
        ----------
        block : np.ndarray, shape (n,)
            Any number of samples, including none; dtypes as :func:`extract`.

        Returns
        -------
        dict of str to np.ndarray
            ``name -> (size, k)`` for the ``k >= 0`` frames completed.
        """
        return _split(self._ex.push(block), self._layout, self.features)

    def push_rows(self, block: np.ndarray) -> np.ndarray:
        """Like :meth:`push`, but the raw rows ``(k, row_size)`` in feature order."""
        return self._ex.push(block)

    def flush(self) -> dict[str, np.ndarray]:
        """End the stream: return its last frames and reset for a new one."""
        return _split(self._ex.flush(), self._layout, self.features)

    def flush_rows(self) -> np.ndarray:
        """Like :meth:`flush`, but the raw rows ``(k, row_size)`` in feature order (as :meth:`push_rows`)."""
        return self._ex.flush()

    def reset(self) -> None:
        """Drop buffered samples; the next push starts a new stream."""
        self._ex.reset()
