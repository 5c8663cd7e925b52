"""A stateful stream through an LSTM bundle's step model: each frame fed once, the state carried.

:class:`LSTMStreamer` takes raw frame vectors as the native streaming
extractor gives them, normalises them with the bundle's statistics, averages
each run of ``step_frames`` frames into a step (frames numbered from 0 at the
start of the stream or its last :meth:`~LSTMStreamer.reset`), runs the steps
through the step model with the state carried, and hands out the logits at
the *emission frames*: the frames where the windowed path
would end a window, ``t = window_frames - 1 + k * hop_frames``. The logits
emitted at ``t`` are those after step ``(t + 1) // step_frames``: the mean of
the last ``steps_pooled`` step outputs (see :mod:`pyharmonies.models.lstm_step`
for the definition and the full-sequence model it equals). The first emission
of a fresh stream is therefore the window model's output for its first window.

Calls: with a hop model of ``k`` steps (``hop.*``, see
:mod:`pyharmonies.runtime.stepmodel`), the steps since the last emission are
run ``k`` at a time, one call as soon as ``k`` are whole, and the ``n mod k``
left when an emission is due one at a time through the one-step model. An
emission after ``n`` whole steps therefore costs ``n // k + n % k`` calls:
1.25 on average at the default LSTM's hop of 65 frames (16 or 17 steps of 4
frames, ``k = 16``), against 16.25 without a hop model. The calls depend only
on the frame numbers, never on how frames arrive, and their outputs equal
the one-step model's (each file is checked against the same PyTorch
network), so the results do not depend on the hop model either, beyond
float rounding.

End of a stream (:meth:`~LSTMStreamer.finish`): a stream shorter than a
window is padded with the features of silence up to one window, as the
windowed path pads its one window, so it too gives one emission; then the
streamer resets.

Reset (:meth:`~LSTMStreamer.reset`): a zero state, no partial step, frames
numbered from 0 again. After a reset the stream gives exactly what a fresh
streamer gives for the same frames. ``classify --streaming`` resets for each
file; ``listen`` resets after ``--reconnect`` brings a lost device back.

Memory: the state (``streaming.state.bytes`` in the manifest) and ``k``
steps' frames; nothing grows with the stream's length.

Device side: numpy, soundfile, soxr, the feature core and one runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pyharmonies.audio import iter_blocks
from pyharmonies.errors import AudioError, BundleError, ParameterError
from pyharmonies.runtime.classifier import softmax, top_labels
from pyharmonies.runtime.files import FileResult, WindowPrediction
from pyharmonies.runtime.stepmodel import StepBackend, choose_step_file, hop_file_for
from pyharmonies.windows import InputFeatureStream, silence_values

__all__ = ["LSTMStreamer", "calls_per_result", "classify_blocks_streaming", "classify_file_streaming", "open_streamer",
           "stream_logits", "streamer_for_file"]


def calls_per_result(window_frames: int, hop_frames: int, step_frames: int, hop_steps: int) -> float:
    """Runtime calls per result once a stream runs, on average: ``n // k + n % k`` for the ``n`` steps of each hop.

    Parameters
    ----------
    window_frames, hop_frames, step_frames : int
    hop_steps : int
        ``k``: the steps of the hop model (1: the one-step model alone).

    Returns
    -------
    float
        The mean over a period of the hop pattern (``step_frames`` results).
    """
    ends = [(window_frames + e * hop_frames) // step_frames for e in range(step_frames + 1)]  # steps whole at each result
    n = np.diff(ends)
    return float(np.mean(n // hop_steps + n % hop_steps))


class LSTMStreamer:
    """Raw frame vectors in, the streamed logits out at the emission frames.

    Parameters
    ----------
    bundle : Bundle
        An LSTM bundle with a ``streaming`` section.
    backend : StepBackend, optional
        The one-step model. Default: the int8 step file of the first installed runtime
        (:func:`~pyharmonies.runtime.stepmodel.choose_step_file`) and its hop model, if any.
    hop_frames : int, optional
        Frames between emissions; default the bundle's hop.
    hop_backend : StepBackend, optional
        A hop model (``steps > 1`` per call) of the same bundle; with ``backend`` given, none unless given.

    Attributes
    ----------
    labels : tuple of str
    rows, window_frames, hop_frames, step_frames : int
    frames_seen : int
        Frames pushed since the last reset.
    steps : int
        Steps run since the last reset.
    hop_steps : int
        Steps per call of the hop model (1 without one).
    """

    def __init__(self, bundle, backend: StepBackend | None = None, *, hop_frames: int | None = None,
                 hop_backend: StepBackend | None = None):  # fmt: skip
        spec = bundle.streaming
        if spec is None:
            raise BundleError(f"{bundle.path}: this bundle has no step model; it streams the windowed way")
        if bundle.kind != "frame_vector":
            raise BundleError(f"{bundle.path}: a step model reads frame vectors; this bundle reads {bundle.kind}")
        self.bundle = bundle
        if backend is None:
            step_file = choose_step_file(bundle)
            backend = StepBackend(bundle, step_file)
            hop_file = hop_file_for(bundle, step_file)
            hop_backend = hop_backend if hop_file is None else StepBackend(bundle, hop_file)
        if backend.steps != 1:
            raise ParameterError(f"backend must be a one-step model; {backend.file.name} takes {backend.steps} steps per call")
        self.backend = backend
        self.hop_backend = hop_backend if hop_backend is not None and hop_backend.steps > 1 else None
        self.hop_steps = self.hop_backend.steps if self.hop_backend is not None else 1
        self.labels = bundle.labels
        self.rows, self.window_frames = bundle.rows, bundle.window_frames
        self.hop_frames = int(bundle.hop_frames if hop_frames is None else hop_frames)
        if self.hop_frames < 1:
            raise ParameterError(f"hop_frames must be >= 1, got {hop_frames}")
        self.step_frames = spec.step_frames
        self.feature_config = bundle.feature_config
        # (x - mean) / std as x * inv + shift, as WindowClassifier normalises.
        self._inv = (1.0 / bundle.std.astype(np.float64)).astype(np.float32)[:, None]
        self._shift = (-bundle.mean.astype(np.float64) / bundle.std.astype(np.float64)).astype(np.float32)[:, None]
        self._pad = silence_values(bundle.feature_config)["frame_vector"]
        # The frames of the steps not run yet (at most hop_steps whole ones) and of the partial step after them.
        self._buf = np.zeros((1, self.rows, self.hop_steps * self.step_frames), dtype=np.float32)
        self._single = np.zeros((1, self.rows, self.step_frames), dtype=np.float32)
        self._state = np.zeros((1, spec.state_size), dtype=np.float32)
        self._logits = np.zeros((1, len(self.labels)), dtype=np.float32)
        self.reset()

    def __repr__(self) -> str:
        return f"<LSTMStreamer {self.bundle.name!r}: {self.describe()}, state {4 * self._state.size} B>"

    def describe(self) -> str:
        """What runs: the step model, or the hop model and the step model, and the calls per result."""
        if self.hop_backend is None:
            return f"{self.backend.describe()}, {self.calls_per_result():g} calls per result"
        h, b = self.hop_backend, self.backend
        return (f"{h.precision} {h.runtime} hop model of {h.steps} steps + step model ({h.provider}, {h.file.name} + "
                f"{b.file.name}), {self.calls_per_result():g} calls per result")  # fmt: skip

    def calls_per_result(self) -> float:
        """Runtime calls per result at this hop, on average (see :func:`calls_per_result`)."""
        return calls_per_result(self.window_frames, self.hop_frames, self.step_frames, self.hop_steps)

    @property
    def state_bytes(self) -> int:
        """Bytes of the carried state (float32)."""
        return int(self._state.nbytes)

    def reset(self) -> None:
        """Start a new stream: zero state, no step waiting, no partial step, frames numbered from 0."""
        self._state = np.zeros_like(self._state)
        self._pending = 0  # whole steps in _buf not run yet
        self._fill = 0  # frames of the partial step after them
        self.frames_seen = 0
        self.steps = 0
        self._next_emit = self.window_frames - 1

    def _run(self, backend: StepBackend, frames: np.ndarray) -> None:
        self._logits, self._state = backend.run(frames, self._state)  # new arrays: the state is not copied
        self.steps += backend.steps

    def _run_pending(self) -> None:
        """An emission is due: the whole steps still waiting, one at a time; the partial step moves to the front."""
        S, n = self.step_frames, self._pending
        for j in range(n):
            self._single[...] = self._buf[:, :, j * S : (j + 1) * S]
            self._run(self.backend, self._single)
        if n and self._fill:
            self._buf[:, :, : self._fill] = self._buf[:, :, n * S : n * S + self._fill].copy()
        self._pending = 0

    def _emission(self) -> np.ndarray:
        logits = np.array(self._logits, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(logits)):
            raise BundleError(f"{self.backend.file.name} returned NaN or Inf logits for finite features")
        return logits

    def push(self, frames: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Feed raw frame vectors; return the emissions they complete.

        Parameters
        ----------
        frames : np.ndarray, shape (rows, k)
            Raw (not normalised) frame vectors, the next ``k >= 0`` frames of the stream.

        Returns
        -------
        list of (int, np.ndarray of shape (n_labels,))
            ``(t, logits)`` per emission frame ``t`` among these frames (``t`` counted from the last reset).
        """
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.rows:
            raise ParameterError(f"frames must be (rows, k) = ({self.rows}, k) raw frame vectors, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ParameterError("frames hold NaN or Inf; the feature core never produces them (check the input)")
        x = x * self._inv + self._shift
        out: list[tuple[int, np.ndarray]] = []
        i, k, S = 0, x.shape[1], self.step_frames
        room = self._buf.shape[2]
        while i < k:
            t = self.frames_seen
            # Take frames up to the next event: a full buffer (hop_steps whole steps), an emission, or the end of the block.
            at = self._pending * S + self._fill
            n = min(room - at, self._next_emit - t + 1, k - i)
            self._buf[0, :, at : at + n] = x[:, i : i + n]
            self._pending, self._fill = divmod(at + n, S)
            i += n
            self.frames_seen = t + n
            if self._pending == self.hop_steps:
                self._run(self.hop_backend or self.backend, self._buf)
                self._pending = 0
            if self.frames_seen - 1 == self._next_emit:
                self._run_pending()
                out.append((self._next_emit, self._emission()))
                self._next_emit += self.hop_frames
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """End of the stream: a stream of fewer frames than a window is padded with silence to one window
        (one emission, as the windowed path pads its one window); then :meth:`reset`.

        Returns
        -------
        list of (int, np.ndarray)
            The padded stream's emission, or nothing (a stream of no frame, or one that already emitted).
        """
        out: list[tuple[int, np.ndarray]] = []
        if 0 < self.frames_seen < self.window_frames:
            out = self.push(np.repeat(self._pad[:, None], self.window_frames - self.frames_seen, axis=1))
        self.reset()
        return out


def open_streamer(bundle, backend: str = "auto", precision: str = "auto", *, threads: int = 1, hop_frames: int | None = None,
                  hop_model: bool = True) -> LSTMStreamer:  # fmt: skip
    """The streamer ``listen`` runs: the bundle's one-step file in the runtime and precision asked, and its hop model.

    Parameters
    ----------
    bundle : Bundle
        With a ``streaming`` section.
    backend, precision : str
        As :func:`~pyharmonies.runtime.stepmodel.choose_step_file`.
    threads : int
    hop_frames : int, optional
        Frames between results; default the bundle's hop.
    hop_model : bool
        Run the hop model when the bundle has one (False: one call per step, the one-step model only).

    Raises
    ------
    BundleError
        No step model, or none for the runtime and precision asked.
    """
    step_file = choose_step_file(bundle, backend, precision)
    hop_file = hop_file_for(bundle, step_file) if hop_model else None
    return LSTMStreamer(bundle, StepBackend(bundle, step_file, threads=threads), hop_frames=hop_frames,
                        hop_backend=None if hop_file is None else StepBackend(bundle, hop_file, threads=threads))  # fmt: skip


def streamer_for_file(bundle, name: str, *, hop_frames: int | None = None) -> LSTMStreamer:
    """A streamer that runs the bundle's step file ``name``: a one-step file alone, a hop file with its one-step sibling.

    What the self-check and the exporter stream the reference through, file by file.
    """
    sf = bundle.streaming.files[name]
    if sf.steps == 1:
        return LSTMStreamer(bundle, StepBackend(bundle, sf), hop_frames=hop_frames)
    single = next(f for f in bundle.streaming.files.values() if f.steps == 1 and (f.runtime, f.precision) == (sf.runtime, sf.precision))
    return LSTMStreamer(bundle, StepBackend(bundle, single), hop_frames=hop_frames, hop_backend=StepBackend(bundle, sf))


def stream_logits(streamer: LSTMStreamer, features: np.ndarray) -> tuple[list[int], np.ndarray]:
    """A whole clip's raw frame vectors through a fresh stream: the emission frames and their logits.

    Parameters
    ----------
    streamer : LSTMStreamer
        Reset first, and reset again at the end.
    features : np.ndarray, shape (rows, frames)

    Returns
    -------
    frames : list of int
    logits : np.ndarray, shape (len(frames), n_labels), float32
    """
    streamer.reset()
    emitted = streamer.push(features) + streamer.finish()
    if not emitted:
        return [], np.zeros((0, len(streamer.labels)), dtype=np.float32)
    return [t for t, _ in emitted], np.stack([z for _, z in emitted])


def classify_blocks_streaming(streamer: LSTMStreamer, blocks: Iterable[np.ndarray], *, top_k: int = 3,
                              path: str | os.PathLike[str] | None = None) -> FileResult:  # fmt: skip
    """Classify a mono signal arriving in blocks with the stateful stream: one emission every hop, and their vote.

    The stream starts from a reset state and is reset at the end (each file is a new stream). A
    result's window ``i`` is the emission at frame ``t = window_frames - 1 + i * hop_frames``,
    listed as the window of frames ``t - window_frames + 1 .. t``, as the windowed path lists its
    windows; the vote is the mean of the emissions' probabilities.

    Parameters
    ----------
    streamer : LSTMStreamer
    blocks : iterable of np.ndarray, each shape (m,)
        Consecutive pieces of the signal (any sizes), mono float32 at the bundle's sample rate.
    top_k : int
    path : path-like, optional

    Returns
    -------
    FileResult
        The same whatever the block sizes.

    Raises
    ------
    AudioError
        The signal gives no frame.
    """
    config = streamer.feature_config
    stream = InputFeatureStream(config, ["frame_vector"])
    streamer.reset()
    emitted: list[tuple[int, np.ndarray]] = []
    n_samples = 0
    for block in blocks:
        n_samples += len(block)
        emitted += streamer.push(stream.push(block)["frame_vector"])
    emitted += streamer.push(stream.flush()["frame_vector"])
    frames = streamer.frames_seen
    emitted += streamer.finish()
    if not emitted:
        where = f"{path}: " if path is not None else ""
        raise AudioError(f"{where}too short to classify ({n_samples} samples give no frame of {config.n_fft})")
    probs = softmax(np.stack([z for _, z in emitted]))
    frame_s = config.hop_length / config.sample_rate
    W = streamer.window_frames
    windows = []
    for (t, _), p in zip(emitted, probs):
        best = int(np.argmax(p))
        start = t - W + 1
        windows.append(WindowPrediction(start * frame_s, (start + W) * frame_s, p, streamer.labels[best], float(p[best])))
    vote = probs.mean(axis=0).astype(np.float32)
    return FileResult(
        path=None if path is None else Path(path),
        labels=streamer.labels,
        probs=vote,
        top=top_labels(streamer.labels, vote, top_k),
        windows=windows,
        duration_s=n_samples / config.sample_rate,
        padded=frames < W,
    )


def classify_file_streaming(streamer: LSTMStreamer, path: str | os.PathLike[str], *, top_k: int = 3) -> FileResult:
    """Classify an audio file with the stateful stream (see :func:`classify_blocks_streaming`).

    Raises
    ------
    AudioError
        Missing, undecodable, refused header, or no frame.
    """
    return classify_blocks_streaming(streamer, iter_blocks(path, streamer.feature_config.sample_rate), top_k=top_k, path=path)
