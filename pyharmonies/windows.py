"""What a model reads: the features of each input kind, and fixed-length windows of their frames.

The one definition, on the device side, of two things that training,
export, offline classification and live listening must agree on:

- the *input kinds* (:data:`INPUT_KINDS`) and the features each is made of
  (:func:`kind_features`): ``log_mel`` is the ``n_mels`` rows of the
  log-mel spectrogram (the CNN's image); ``frame_vector`` is the rows of
  :data:`~pyharmonies.features.FRAME_VECTOR_FEATURES` stacked in that
  order, ``n_mfcc + 8`` of them (the LSTM's sequence);
- the *windows*: ``window`` frames every ``hop`` frames from the clip's
  first frame, while a whole window fits (frames after the last whole
  window are not used); a clip shorter than one window gives one window,
  padded at the end with the features of digital silence
  (:func:`silence_values`), which is also what a stream sees before a
  sound. :func:`make_windows` and :func:`take_window` cut a clip whose
  features are all there; :class:`WindowCutter` cuts the same windows from
  frames that arrive in pieces (a file read block by block), keeping only
  the frames a window still needs.

Device side: numpy and the feature core only. ``pyharmonies.data.windows``
re-exports the window functions for the training code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, StreamingExtractor, extract

#: The raw features a model can read, by name (a bundle's ``input.kind``).
INPUT_KINDS: tuple[str, ...] = ("log_mel", "frame_vector")


# ---------------------------------------------------------------- input kinds


def kind_features(kind: str) -> tuple[str, ...]:
    """The feature names whose rows, stacked in this order, make input ``kind``.

    ``("log_mel",)`` for ``"log_mel"``; :data:`~pyharmonies.features.FRAME_VECTOR_FEATURES`
    for ``"frame_vector"``.

    Raises
    ------
    ParameterError
        ``kind`` is not one of :data:`INPUT_KINDS`.
    """
    if kind == "log_mel":
        return ("log_mel",)
    if kind == "frame_vector":
        return FRAME_VECTOR_FEATURES
    raise ParameterError(f"unknown input kind {kind!r}; expected {' or '.join(INPUT_KINDS)}")


def kind_rows(config: FeatureConfig, kind: str) -> int:
    """Rows of input ``kind`` per frame under ``config`` (``n_mels``, or ``n_mfcc + 8``)."""
    return sum(config.feature_size(name) for name in kind_features(kind))


def stack_kind(features: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
    """Stack the features of ``kind`` out of ``{name: (n, frames)}``.

    Returns
    -------
    np.ndarray, shape (rows, frames), float32, C-contiguous
        A new array (``features`` may be views of an extractor's buffer).
    """
    names = kind_features(kind)
    if len(names) == 1:
        return np.array(features[names[0]], dtype=np.float32, order="C")
    return np.ascontiguousarray(np.concatenate([features[name] for name in names], axis=0), dtype=np.float32)


def input_features(y: np.ndarray, config: FeatureConfig, kind: str) -> np.ndarray:
    """The raw features a model of input ``kind`` reads, for a whole signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
    kind : {"log_mel", "frame_vector"}

    Returns
    -------
    np.ndarray, shape (rows, frames), float32, C-contiguous
        What :class:`InputFeatureStream` gives for the same samples, in one piece.
    """
    return stack_kind(extract(y, config, features=kind_features(kind)), kind)


class InputFeatureStream:
    """:func:`input_features` of a signal that arrives block by block, for one or more kinds.

    One native :class:`~pyharmonies.features.StreamingExtractor` computes
    the features of every kind asked for; each :meth:`push` returns the
    frames its samples complete, :meth:`flush` the last ones. Concatenated,
    they equal :func:`input_features` of the whole signal, bit for bit.

    Parameters
    ----------
    config : FeatureConfig
    kinds : iterable of str
        Input kinds, from :data:`INPUT_KINDS`.
    """

    def __init__(self, config: FeatureConfig, kinds: Iterable[str] = ("log_mel",)):
        self.kinds = tuple(dict.fromkeys(kinds))
        if not self.kinds:
            raise ParameterError(f"kinds is empty; choose from {', '.join(INPUT_KINDS)}")
        names = [name for kind in self.kinds for name in kind_features(kind)]
        self.config = config
        self.extractor = StreamingExtractor(config, features=list(dict.fromkeys(names)))

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Samples in; ``{kind: (rows, k)}`` for the ``k >= 0`` frames they complete."""
        feats = self.extractor.push(block)
        return {kind: stack_kind(feats, kind) for kind in self.kinds}

    def flush(self) -> dict[str, np.ndarray]:
        """End of the signal: its last frames (then a new signal may start)."""
        feats = self.extractor.flush()
        return {kind: stack_kind(feats, kind) for kind in self.kinds}


# ---------------------------------------------------------------- windows


def window_frames(seconds: float, config: FeatureConfig) -> int:
    """Frames in a window of ``seconds``.

    Parameters
    ----------
    seconds : float
        Window length, > 0.
    config : FeatureConfig

    Returns
    -------
    int
        ``round(seconds * sample_rate / hop_length)``, at least 1 (e.g. 129
        for 3 s at the defaults).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) or not seconds > 0:
        raise ParameterError(f"window length must be a positive number of seconds, got {seconds!r}")
    return max(1, int(round(float(seconds) * config.sample_rate / config.hop_length)))


@dataclass(frozen=True)
class Window:
    """One window: the index of its clip and its first frame in the clip's features."""

    clip: int
    start: int


def _check_window_hop(window: int, hop: int) -> None:
    for name, value in (("window", window), ("hop", hop)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be an integer >= 1 (frames), got {value!r}")


def make_windows(frame_counts: Sequence[int], window: int, hop: int) -> list[Window]:
    """Cut every clip into windows.

    Parameters
    ----------
    frame_counts : sequence of int
        Frames of each clip (``features.shape[1]``).
    window : int
        Frames per window, >= 1.
    hop : int
        Frames between the starts of successive windows, >= 1.

    Returns
    -------
    list of Window
        Per clip in order, windows starting at 0, hop, 2 hop... while
        ``start + window <= frames`` (frames after the last whole window are
        not used); a clip with ``0 < frames < window`` gets one window at 0,
        to be padded by :func:`take_window`; a clip with no frames, none.
    """
    _check_window_hop(window, hop)
    out: list[Window] = []
    for clip, n in enumerate(frame_counts):
        n = int(n)
        if n <= 0:
            continue
        if n < window:
            out.append(Window(clip, 0))
            continue
        out.extend(Window(clip, start) for start in range(0, n - window + 1, hop))
    return out


def window_starts(frames: int, window: int, hop: int) -> list[int]:
    """First frames of the windows of one clip of ``frames`` frames (see :func:`make_windows`)."""
    return [w.start for w in make_windows([frames], window, hop)]


def take_window(features: np.ndarray, start: int, window: int, pad_value: np.ndarray | float) -> np.ndarray:
    """Copy one window out of a clip's features, padding past its end.

    Parameters
    ----------
    features : np.ndarray, shape (n, frames)
        A clip's features (a memmap is fine: only the window is read).
    start : int
        First frame, ``0 <= start``.
    window : int
        Frames to return.
    pad_value : np.ndarray of shape (n,), or float
        Value of the missing frames, per row (e.g. ``silence_values(config)[kind]``).

    Returns
    -------
    np.ndarray, shape (n, window), float32, C-contiguous
        A new array (writing to it never touches ``features``).
    """
    if features.ndim != 2:
        raise ParameterError(f"features must be (n, frames), got shape {features.shape}")
    if start < 0 or window < 1:
        raise ParameterError(f"need start >= 0 and window >= 1, got start={start}, window={window}")
    n = features.shape[0]
    out = np.empty((n, window), dtype=np.float32)
    part = features[:, start : start + window]
    got = part.shape[1]
    out[:, :got] = part
    if got < window:
        pad = np.asarray(pad_value, dtype=np.float32)
        if pad.ndim == 1 and pad.shape[0] != n:
            raise ParameterError(f"pad_value has {pad.shape[0]} values, the features {n} rows")
        out[:, got:] = pad.reshape(-1, 1) if pad.ndim == 1 else pad
    return out


class WindowCutter:
    """The windows of one clip whose frames arrive in pieces.

    The windows, in order, are exactly :func:`make_windows` ``([frames], window, hop)``
    cut by :func:`take_window`, where ``frames`` is every frame pushed:
    each is handed out by the :meth:`push` that completes it, and the one
    padded window of a clip shorter than a window by :meth:`finish`. Only
    the frames a coming window still needs are kept (fewer than
    ``window`` plus one push's).

    Parameters
    ----------
    rows : int
        Rows of the features (``n_mels``...).
    window, hop : int
        Frames per window and between window starts, >= 1.
    pad_value : np.ndarray of shape (rows,), or float
        The padding of a clip shorter than one window (:func:`silence_values`).

    Attributes
    ----------
    frames : int
        Frames pushed so far.

    Examples
    --------
    >>> cutter = WindowCutter(64, window=129, hop=64, pad_value=silence_values(config)["log_mel"])   # doctest: +SKIP
    >>> for block in blocks:                                                                       # doctest: +SKIP
    ...     windows, starts = cutter.push(stream.push(block)["log_mel"])
    >>> windows, starts = cutter.finish()                                                          # doctest: +SKIP
    """

    def __init__(self, rows: int, window: int, hop: int, pad_value: np.ndarray | float):
        _check_window_hop(window, hop)
        if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
            raise ParameterError(f"rows must be an integer >= 1, got {rows!r}")
        self.rows, self.window, self.hop = int(rows), int(window), int(hop)
        self.pad_value = pad_value
        self.reset()

    def reset(self) -> None:
        """Forget every frame: the next push starts a new clip."""
        self.frames = 0
        self._buf = np.zeros((self.rows, 0), dtype=np.float32)  # frames _buf_start .. frames - 1
        self._buf_start = 0
        self._next = 0  # the next window's first frame

    def _empty(self) -> tuple[np.ndarray, list[int]]:
        return np.zeros((0, self.rows, self.window), dtype=np.float32), []

    def push(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Add the clip's next frames; return the windows they complete.

        Parameters
        ----------
        frames : np.ndarray, shape (rows, k)
            ``k >= 0`` consecutive frames.

        Returns
        -------
        windows : np.ndarray, shape (n, rows, window), float32
        starts : list of int
            Each window's first frame, counted from the clip's first frame.
        """
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.rows:
            raise ParameterError(f"frames must be (rows, k) = ({self.rows}, k), got shape {x.shape}")
        if x.shape[1] == 0:
            return self._empty()
        total = self.frames + x.shape[1]
        buf = np.concatenate([self._buf, x], axis=1) if self._buf.shape[1] else x
        base = self._buf_start
        starts = list(range(self._next, total - self.window + 1, self.hop))
        if starts:
            windows = np.stack([buf[:, s - base : s - base + self.window] for s in starts])
            self._next = starts[-1] + self.hop
        else:
            windows = self._empty()[0]
        keep = min(self._next, total)  # no coming window starts before _next
        self._buf = np.array(buf[:, keep - base :], dtype=np.float32)  # a copy: never hold on to the caller's block
        self._buf_start = keep
        self.frames = total
        return windows, starts

    def finish(self) -> tuple[np.ndarray, list[int]]:
        """End of the clip: the padded window of a clip shorter than one window (else none); then :meth:`reset`."""
        out = self._empty()
        if 0 < self.frames < self.window:
            out = take_window(self._buf, 0, self.window, self.pad_value)[None], [0]
        self.reset()
        return out


def silence_values(config: FeatureConfig) -> dict[str, np.ndarray]:
    """The features of digital silence, per kind: the padding of short clips.

    Parameters
    ----------
    config : FeatureConfig

    Returns
    -------
    dict of str to np.ndarray
        ``"log_mel"``: shape (n_mels,), all ``10 log10(amin / max(amin, ref))``
        (-100 dB at the defaults); ``"frame_vector"``: shape (n_mfcc + 8,),
        the frame vector of zeros (MFCC 0 is ``-100 * sqrt(n_mels)``, the
        others about 0; flatness 1; the rest 0). Computed once per config
        with :func:`~pyharmonies.features.extract`; read-only arrays.
    """
    return dict(_silence(config))


@functools.lru_cache(maxsize=16)
def _silence(config: FeatureConfig) -> tuple[tuple[str, np.ndarray], ...]:
    zeros = np.zeros(4 * config.n_fft + 8 * config.hop_length, dtype=np.float32)
    names = list(dict.fromkeys(name for kind in INPUT_KINDS for name in kind_features(kind)))
    feats = extract(zeros, config, features=names)
    middle = feats["log_mel"].shape[1] // 2  # away from the edges (flux compares with the previous frame)
    out = []
    for kind in INPUT_KINDS:
        values = np.array(stack_kind(feats, kind)[:, middle], dtype=np.float32)
        values.flags.writeable = False
        out.append((kind, values))
    return tuple(out)
