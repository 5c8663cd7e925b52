"""The LSTM streamed with its state carried: samples in, a result every hop, each frame through the model once.

:class:`StatefulClassifier` has the interface of
:class:`~pyharmonies.stream.sliding.SlidingClassifier` (what
:class:`~pyharmonies.stream.live.LiveSession` and ``harmonies listen`` drive)
but, instead of classifying a whole window every hop, feeds the frames the
native extractor completes to an :class:`~pyharmonies.runtime.streaming.LSTMStreamer`,
which runs each step of ``step_frames`` frames through the bundle's step model once
(a hop's whole steps in one call of its hop model).
Results come at the windowed path's frames (``t = W - 1 + k * hop``), so
``--hop``, ``--window`` (the decision window) and the smoothing mean what they
mean there; each result's ``raw_probs`` is the softmax of the streamed logits
(see :mod:`pyharmonies.runtime.streaming` for their definition).

Nothing is dropped: a step cannot be skipped without corrupting the state, so
if inference falls behind, samples wait in the source's ring (and what it
cannot hold is counted as lost samples). Lost samples are spliced, as in the
windowed path.

Reset: after a device loss that ``--reconnect`` rides out, the stream starts
again (:attr:`resets_on_reconnect`): the extractor's buffered samples, the
step model's state, the steps waiting for the hop model, the partial step, the
smoothing and the decision window
are cleared and frames are numbered from 0, so the first result after the
device comes back is a fresh stream's first result. Silence does not reset
the state: digital silence has features the model was trained on (windows
are padded with them), the output pools only the last window's worth of
steps, and a level threshold would be a parameter the bundle does not carry.
"""

from __future__ import annotations

import numpy as np

from pyharmonies.features import FeatureConfig
from pyharmonies.runtime.classifier import softmax
from pyharmonies.stream.sliding import SlidingClassifier, StreamResult
from pyharmonies.stream.smoothing import Smoother


class StatefulClassifier(SlidingClassifier):
    """Samples in, the LSTM's streamed output every ``hop_frames`` frames out.

    Parameters
    ----------
    streamer : LSTMStreamer
        The bundle's step model; its ``hop_frames`` must be ``hop_frames``.
    extractor_config : FeatureConfig
        The bundle's.
    hop_frames : int
    smoothing : Smoother or str
    span : int
        The decision window, in results (as for :class:`SlidingClassifier`).

    Attributes
    ----------
    streamer : LSTMStreamer
    dropped : int
        Always 0 (nothing is dropped).
    """

    #: A device loss ridden out by ``--reconnect`` starts a new stream (see the module docstring).
    resets_on_reconnect = True

    def __init__(self, streamer, extractor_config: FeatureConfig, hop_frames: int, smoothing: Smoother | str = "none", span: int = 1):
        if int(hop_frames) != streamer.hop_frames:
            raise ValueError(f"the streamer emits every {streamer.hop_frames} frames, not every {hop_frames}")
        super().__init__(streamer, extractor_config, "frame_vector", streamer.window_frames, hop_frames, smoothing,
                         max_pending=0, span=span)  # fmt: skip
        self.streamer = streamer
        self._first_sample = 0  # samples pushed before the current stream began (its last reset)
        self._results: list[StreamResult] = []

    def _add_frames(self, rows: np.ndarray) -> None:
        W = self.window_frames
        for t, logits in self.streamer.push(rows[:, self._cols].T):
            self._results.append(self._result(t - W + 1, softmax(logits), first_sample=self._first_sample))
        self.frames_seen = self.streamer.frames_seen

    def _drain(self) -> list[StreamResult]:
        out, self._results = self._results, []
        return out

    @property
    def next_window_end(self) -> int:
        """Samples of stream the next result needs (its last sample is this minus one)."""
        return self._first_sample + super().next_window_end

    def finish(self) -> list[StreamResult]:
        """End of stream: the extractor's last frames, a stream shorter than a window padded to one; then a new stream."""
        out = super().finish()
        W = self.window_frames
        out += [self._result(t - W + 1, softmax(z), first_sample=self._first_sample) for t, z in self.streamer.finish()]
        self._first_sample = self.samples_pushed
        self.frames_seen = 0
        return out

    def reset(self) -> None:
        """Start a new stream at the next sample: extractor, state, partial step, smoothing, decision window."""
        self.extractor.reset()
        self.streamer.reset()
        self.smoother.reset()
        self._span_seen = 0
        self._results = []
        self._first_sample = self.samples_pushed
        self.frames_seen = 0
