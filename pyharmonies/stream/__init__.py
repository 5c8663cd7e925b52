"""Streaming classification on the device: sources, ring buffer, sliding window, smoothing. No torch.

Modules
-------
ring
    :class:`RingBuffer`: preallocated float32 ring; writes never allocate,
    a full buffer drops the newest samples and counts them.
smoothing
    :class:`Smoother`: ``ema``, ``vote`` or ``none`` over successive windows.
sliding
    :class:`SlidingClassifier`: samples -> native streaming features ->
    a window every hop -> :class:`~pyharmonies.runtime.WindowClassifier`.
sources
    :class:`FileSource`: a file replayed block by block, in real time or fast.
"""

from __future__ import annotations

from pyharmonies.stream.ring import RingBuffer
from pyharmonies.stream.smoothing import SMOOTHINGS, Smoother
from pyharmonies.stream.sliding import SlidingClassifier, StreamResult
from pyharmonies.stream.sources import FileSource

__all__ = ["SMOOTHINGS", "FileSource", "RingBuffer", "SlidingClassifier", "Smoother", "StreamResult"]
