"""Streaming classification on the device: sources, ring buffer, resampler, sliding window, smoothing. No torch.

Modules
-------
ring
    :class:`RingBuffer`: preallocated float32 ring; writes never allocate,
    a full buffer drops the newest samples and counts them.
microphone
    :class:`MicrophoneSource`: PortAudio's callback copies into the ring;
    device lookup by index or name; vanished devices detected.
sources
    :class:`FileSource`: a file replayed block by block, in real time or fast.
resample
    :class:`StreamResampler`: soxr's streaming resampler, device rate -> model rate.
smoothing
    :class:`Smoother`: ``ema``, ``vote`` or ``none`` over successive windows.
sliding
    :class:`SlidingClassifier`: samples -> native streaming features ->
    a window every hop -> :class:`~pyharmonies.runtime.WindowClassifier`.
stateful
    :class:`~pyharmonies.stream.stateful.StatefulClassifier`: the same
    interface for an LSTM bundle's step model, the state carried from step
    to step, each frame fed once (imported from its module).
live
    :class:`LiveSession`: the loop tying them together, with its measurements.
stats
    :class:`StreamingStats`: count, mean, max and quantiles in fixed memory
    (a log histogram, 1 % relative error), for sessions that run for months.
"""

from __future__ import annotations

from pyharmonies.stream.live import LiveSession, LiveStats
from pyharmonies.stream.microphone import ArrivalLog, MicrophoneSource, list_input_devices, resolve_input_device
from pyharmonies.stream.resample import StreamResampler
from pyharmonies.stream.ring import RingBuffer
from pyharmonies.stream.sliding import SlidingClassifier, StreamResult
from pyharmonies.stream.smoothing import SMOOTHINGS, Smoother
from pyharmonies.stream.sources import FileSource
from pyharmonies.stream.stats import StreamingStats

__all__ = [
    "SMOOTHINGS",
    "ArrivalLog",
    "FileSource",
    "LiveSession",
    "LiveStats",
    "MicrophoneSource",
    "RingBuffer",
    "SlidingClassifier",
    "Smoother",
    "StreamResampler",
    "StreamResult",
    "StreamingStats",
    "list_input_devices",
    "resolve_input_device",
]
