"""A sliding window of streaming features, classified every hop.

Window alignment (the same as :func:`pyharmonies.runtime.files.window_starts`
for a whole file): frames are numbered from 0 as the native
:class:`~pyharmonies.features.StreamingExtractor` completes them; when frame
``t`` arrives with ``t = W - 1 + k * hop`` (``k = 0, 1, ...``), the window of
frames ``t - W + 1 .. t`` (start ``k * hop``) is classified. After
:meth:`SlidingClassifier.finish` (which flushes the extractor's last frames)
the windows are exactly the offline ones of the same samples, except that a
stream shorter than one window gives no window (offline pads one).

Features are computed once per sample (the extractor keeps its own state);
the last ``W`` frames live in a preallocated frame ring. Windows wait in a
bounded queue of preallocated slots; when more are pending than it holds,
the oldest are dropped and counted in :attr:`SlidingClassifier.dropped`.

With a bundle's SVM fused (``train --fuse-svm``), the same extractor also
computes the frame vector; its last ``clip_seconds`` of frames live in a
second ring, and each window keeps the statistics of that ring as it was
when the window's last frame arrived. The result is then the fusion of the
decision window's probabilities with the SVM's answer on them, smoothed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyharmonies.features import FeatureConfig, StreamingExtractor
from pyharmonies.runtime.svm import SvmFusion, fuse_probabilities
from pyharmonies.stream.smoothing import Smoother
from pyharmonies.windows import INPUT_KINDS, kind_features


@dataclass(frozen=True)
class StreamResult:
    """One classified window."""

    time: float  # seconds of stream at the window's end: (start + W) * hop_length / sample_rate
    start_frame: int  # the window's first frame
    probs: np.ndarray = field(repr=False)  # smoothed, sums to 1
    raw_probs: np.ndarray = field(repr=False)  # the model's own for this window (with an SVM fused: before the fusion)
    label: str = ""  # top label of the smoothed probabilities
    confidence: float = 0.0
    end_sample: int = 0  # samples of stream the window needed: its last sample is end_sample - 1


def _columns(extractor: StreamingExtractor, kind: str) -> np.ndarray:
    names = kind_features(kind)
    layout = extractor._layout
    return np.concatenate([np.arange(layout[n][0], layout[n][0] + layout[n][1]) for n in names])


class SlidingClassifier:
    """Samples in, a classified window every ``hop_frames`` frames out.

    After a device loss that ``listen --reconnect`` rides out, the stream
    goes on: the windows that span the gap mix the audio before and after it
    (:attr:`resets_on_reconnect` is False), and the next whole window is clean.

    Parameters
    ----------
    classifier : WindowClassifier
        Anything with ``predict((rows, window_frames)) -> probs`` and ``labels``.
    extractor_config : FeatureConfig
        The bundle's.
    kind : {"log_mel", "frame_vector"}
    window_frames, hop_frames : int
    smoothing : Smoother or str
        A :class:`Smoother` or its method name (defaults for alpha and n).
    max_pending : int
        Windows that may wait for inference; 0 means unbounded (nothing is
        ever dropped: for replaying files deterministically).
    span : int
        The decision window, in model windows: each result first averages
        the model's probabilities over the last ``span`` windows, then
        smooths them (1: each window on its own).
    svm : SvmFusion, optional
        The bundle's fused SVM: each decision window's probabilities are
        fused with its answer on the frame-vector statistics of the last
        ``svm.clip_seconds`` (fewer at the stream's start), then smoothed.
    """

    def __init__(self, classifier, extractor_config: FeatureConfig, kind: str, window_frames: int, hop_frames: int,
                 smoothing: Smoother | str = "none", max_pending: int = 4, span: int = 1,
                 svm: SvmFusion | None = None):  # fmt: skip
        if kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {kind!r}; expected {' or '.join(INPUT_KINDS)}")
        if int(window_frames) < 1 or int(hop_frames) < 1:
            raise ValueError("window_frames and hop_frames must be >= 1")
        self.classifier = classifier
        self.labels = tuple(classifier.labels)
        self.config = extractor_config
        self.kind = kind
        self.window_frames = W = int(window_frames)
        self.hop_frames = int(hop_frames)
        self.smoother = smoothing if isinstance(smoothing, Smoother) else Smoother(smoothing, len(self.labels))
        if int(span) < 1:
            raise ValueError(f"span must be >= 1, got {span}")
        self.span = int(span)
        self._span_probs = np.zeros((self.span, len(self.labels)), dtype=np.float64)
        self._span_seen = 0  # windows in the decision window's history
        # The samples a window ending at frame t needs: frame t reaches to t * hop + (n_fft/2 centred, else n_fft).
        self._frame_reach = extractor_config.n_fft // 2 if extractor_config.center else extractor_config.n_fft
        self.svm = svm
        names = (*kind_features(kind), *(kind_features("frame_vector") if svm is not None else ()))
        self.extractor = StreamingExtractor(extractor_config, features=list(dict.fromkeys(names)))
        self._cols = _columns(self.extractor, kind)
        self.rows = len(self._cols)
        if svm is not None:
            self._svm_cols = _columns(self.extractor, "frame_vector")
            clip = svm.clip_frames(extractor_config.sample_rate, extractor_config.hop_length)
            self._svm_frames = np.zeros((len(self._svm_cols), clip), dtype=np.float64)
        # Each frame is written twice (at i and i + W) so any window is one slice.
        self._frames = np.zeros((self.rows, 2 * W), dtype=np.float32)
        self.max_pending = int(max_pending)
        slots = self.max_pending if self.max_pending > 0 else 4
        self._slots = np.zeros((slots, self.rows, W), dtype=np.float32)
        self._slot_start = np.zeros(slots, dtype=np.int64)
        self._slot_stats = np.zeros((slots, 2 * len(self._svm_cols) if svm is not None else 0), dtype=np.float64)
        self._head = 0  # index of the oldest pending window (monotonic)
        self._tail = 0  # index after the newest
        self.frames_seen = 0
        self.samples_pushed = 0
        self.windows = 0  # windows classified
        self.dropped = 0  # windows dropped because inference fell behind
        self.hop_seconds = self.hop_frames * extractor_config.hop_length / extractor_config.sample_rate

    #: Whether :class:`~pyharmonies.stream.live.LiveSession` calls ``reset()`` after a reconnection.
    resets_on_reconnect = False

    # ---------------------------------------------------------------- frames -> windows
    def _enqueue(self, start: int) -> None:
        n_slots = self._slots.shape[0]
        if self._tail - self._head >= n_slots:
            if self.max_pending > 0:
                self._head += 1
                self.dropped += 1
            else:  # unbounded: grow (only when replaying without a bound)
                pending = [(self._slots[i % n_slots].copy(), self._slot_start[i % n_slots], self._slot_stats[i % n_slots].copy())
                           for i in range(self._head, self._tail)]  # fmt: skip
                n_slots *= 2
                self._slots = np.zeros((n_slots, self.rows, self.window_frames), dtype=np.float32)
                self._slot_start = np.zeros(n_slots, dtype=np.int64)
                self._slot_stats = np.zeros((n_slots, self._slot_stats.shape[1]), dtype=np.float64)
                self._head, self._tail = 0, len(pending)
                for i, (w, s, st) in enumerate(pending):
                    self._slots[i], self._slot_start[i], self._slot_stats[i] = w, s, st
        i = self._tail % n_slots
        pos = (self.frames_seen + 1) % self.window_frames  # the oldest frame of the window, in the ring
        self._slots[i] = self._frames[:, pos : pos + self.window_frames]
        self._slot_start[i] = start
        if self.svm is not None:  # the statistics of the last clip_seconds as they are when this window ends
            held = self._svm_frames[:, : min(self.frames_seen + 1, self._svm_frames.shape[1])]
            self._slot_stats[i] = np.concatenate([held.mean(axis=1), held.std(axis=1)])
        self._tail += 1

    def _add_frames(self, rows: np.ndarray) -> None:
        W, hop = self.window_frames, self.hop_frames
        for r in range(rows.shape[0]):
            t = self.frames_seen
            j = t % W
            frame = rows[r, self._cols]
            self._frames[:, j] = frame
            self._frames[:, j + W] = frame
            if self.svm is not None:
                self._svm_frames[:, t % self._svm_frames.shape[1]] = rows[r, self._svm_cols]
            if t >= W - 1 and (t - (W - 1)) % hop == 0:
                self._enqueue(t - W + 1)
            self.frames_seen = t + 1

    @property
    def pending(self) -> int:
        return self._tail - self._head

    @property
    def next_window_end(self) -> int:
        """Samples of stream the next window needs (its last sample is this minus one)."""
        W, hop, t = self.window_frames, self.hop_frames, self.frames_seen
        last = W - 1 if t <= W - 1 else W - 1 + -(-(t - (W - 1)) // hop) * hop  # first window end >= t
        return last * self.config.hop_length + self._frame_reach

    # ---------------------------------------------------------------- inference
    def _drain(self) -> list[StreamResult]:
        out = []
        while self._tail > self._head:
            i = self._head % self._slots.shape[0]
            start = int(self._slot_start[i])
            raw = np.asarray(self.classifier.predict(self._slots[i]), dtype=np.float32)
            stats = self._slot_stats[i].copy() if self.svm is not None else None
            self._head += 1
            out.append(self._result(start, raw, statistics=stats))
        return out

    def _result(self, start: int, raw: np.ndarray, *, first_sample: int = 0, statistics: np.ndarray | None = None) -> StreamResult:
        """The result of the window that starts at frame ``start``, whose own probabilities are ``raw``:
        averaged over the decision window, fused with the SVM's answer on ``statistics`` (when both are there),
        smoothed. ``first_sample``: where frame 0's stream began."""
        sr, hl, W = self.config.sample_rate, self.config.hop_length, self.window_frames
        decided = self._decision_window(raw)
        if self.svm is not None and statistics is not None:
            decided = fuse_probabilities(decided, self.svm.model.probabilities(statistics[None])[0], self.svm.weight)
        probs = self.smoother(decided)
        best = int(np.argmax(probs))
        self.windows += 1
        end_sample = first_sample + (start + W - 1) * hl + self._frame_reach
        time = (first_sample + (start + W) * hl) / sr
        return StreamResult(time, start, probs, raw, self.labels[best], float(probs[best]), end_sample)

    def _decision_window(self, raw: np.ndarray) -> np.ndarray:
        if self.span == 1:
            return raw
        self._span_probs[self._span_seen % self.span] = np.where(np.isfinite(raw), raw, 0.0)
        self._span_seen += 1
        return self._span_probs[: min(self._span_seen, self.span)].mean(axis=0)

    def push(self, samples: np.ndarray) -> list[StreamResult]:
        """Feed samples (mono, the bundle's rate); return the windows they complete, classified."""
        x = np.ascontiguousarray(samples, dtype=np.float32)
        self.samples_pushed += x.shape[0]
        self._add_frames(self.extractor.push_rows(x))
        return self._drain()

    def finish(self) -> list[StreamResult]:
        """End of stream: flush the extractor's last frames, classify their windows, reset the extractor."""
        self._add_frames(np.ascontiguousarray(self.extractor.flush_rows(), dtype=np.float32))
        return self._drain()
