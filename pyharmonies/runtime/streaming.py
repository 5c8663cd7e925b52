"""A stateful stream through an LSTM bundle's step model: each frame fed once, the state carried.

:class:`LSTMStreamer` takes raw frame vectors as the native streaming
extractor gives them, normalises them with the bundle's statistics, averages
each run of ``step_frames`` frames into a step (frames numbered from 0 at the
start of the stream or its last :meth:`~LSTMStreamer.reset`), runs the step
model once per step with the state it returned the step before, and hands
out the logits at the *emission frames*: the frames where the windowed path
would end a window, ``t = window_frames - 1 + k * hop_frames``. The logits
emitted at ``t`` are those after step ``(t + 1) // step_frames``: the mean of
the last ``steps_pooled`` step outputs (see :mod:`pyharmonies.models.lstm_step`
for the definition and the full-sequence model it equals). The first emission
of a fresh stream is therefore the window model's output for its first window.

End of a stream (:meth:`~LSTMStreamer.finish`): a stream shorter than a
window is padded with the features of silence up to one window, as the
windowed path pads its one window, so it too gives one emission; then the
streamer resets.

Reset (:meth:`~LSTMStreamer.reset`): a zero state, no partial step, frames
numbered from 0 again. After a reset the stream gives exactly what a fresh
streamer gives for the same frames. ``classify --streaming`` resets for each
file; ``listen`` resets after ``--reconnect`` brings a lost device back.

Memory: the state (``streaming.state.bytes`` in the manifest) and one step's
frames; nothing grows with the stream's length.

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
from pyharmonies.runtime.stepmodel import StepBackend, choose_step_file
from pyharmonies.windows import InputFeatureStream, silence_values

__all__ = ["LSTMStreamer", "classify_blocks_streaming", "classify_file_streaming", "stream_logits"]


class LSTMStreamer:
    """Raw frame vectors in, the streamed logits out at the emission frames.

    Parameters
    ----------
    bundle : Bundle
        An LSTM bundle with a ``streaming`` section.
    backend : StepBackend, optional
        Default: the int8 step file of the first installed runtime
        (:func:`~pyharmonies.runtime.stepmodel.choose_step_file`).
    hop_frames : int, optional
        Frames between emissions; default the bundle's hop.

    Attributes
    ----------
    labels : tuple of str
    rows, window_frames, hop_frames, step_frames : int
    frames_seen : int
        Frames pushed since the last reset.
    steps : int
        Steps run since the last reset.
    """

    def __init__(self, bundle, backend: StepBackend | None = None, *, hop_frames: int | None = None):
        spec = bundle.streaming
        if spec is None:
            raise BundleError(f"{bundle.path}: this bundle has no step model; it streams the windowed way")
        if bundle.kind != "frame_vector":
            raise BundleError(f"{bundle.path}: a step model reads frame vectors; this bundle reads {bundle.kind}")
        self.bundle = bundle
        self.backend = backend if backend is not None else StepBackend(bundle, choose_step_file(bundle))
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
        self._step_buf = np.zeros((1, self.rows, self.step_frames), dtype=np.float32)
        self._state = np.zeros((1, spec.state_size), dtype=np.float32)
        self._logits = np.zeros((1, len(self.labels)), dtype=np.float32)
        self.reset()

    def __repr__(self) -> str:
        return f"<LSTMStreamer {self.bundle.name!r}: {self.backend.describe()}, state {4 * self._state.size} B>"

    @property
    def state_bytes(self) -> int:
        """Bytes of the carried state (float32)."""
        return int(self._state.nbytes)

    def reset(self) -> None:
        """Start a new stream: zero state, no partial step, frames numbered from 0."""
        self._state = np.zeros_like(self._state)
        self._fill = 0
        self.frames_seen = 0
        self.steps = 0
        self._next_emit = self.window_frames - 1

    def _step(self) -> None:
        self._logits, self._state = self.backend.run(self._step_buf, self._state)  # new arrays: the state is not copied
        self.steps += 1

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
        while i < k:
            t = self.frames_seen
            # Take frames up to the next event: the end of this step, an emission, or the end of the block.
            n = min(S - self._fill, self._next_emit - t + 1, k - i)
            self._step_buf[0, :, self._fill : self._fill + n] = x[:, i : i + n]
            self._fill += n
            i += n
            self.frames_seen = t + n
            if self._fill == S:
                self._step()
                self._fill = 0
            if self.frames_seen - 1 == self._next_emit:
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
