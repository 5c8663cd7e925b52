"""A file as an audio source, with the microphone's interface.

Every source :class:`~pyharmonies.stream.live.LiveSession` reads has
``sample_rate``, ``start()``/``stop()``, ``wait()`` (until a block
arrives), ``available``, ``read_into(out) -> n``, ``ended``, an :class:`~pyharmonies.stream.microphone.ArrivalLog`
``arrivals`` (when each sample became available), and the fault counters
``overflows``, ``lost_samples``, ``reconnects`` (always 0 for a file).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from pyharmonies.stream.microphone import ArrivalLog


class FileSource:
    """A file replayed block by block.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads; mixed to mono and resampled (soxr, one
        shot, as offline classification does) to ``sample_rate``.
    sample_rate : int
    block : int
        Samples per block (the last one may be shorter).
    realtime : bool
        Blocks come at the file's pace, as from a microphone (each block
        when its last sample would have been captured); ``False``: as fast
        as they are read.
    """

    overflows = 0
    lost_samples = 0
    reconnects = 0

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, block: int = 1024, realtime: bool = True):
        if int(block) <= 0:
            raise ValueError(f"block must be > 0, got {block}")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.block = int(block)
        self.realtime = bool(realtime)
        self.arrivals = ArrivalLog()
        self._y: np.ndarray | None = None
        self._pos = 0  # samples read
        self._due = 0  # samples arrived (by the real-time clock)
        self._t0 = 0.0

    def describe(self) -> str:
        pace = "in real time" if self.realtime else "as fast as possible"
        return f"{self.path} at {self.sample_rate} Hz, {pace}"

    def samples(self) -> np.ndarray:
        """The whole file, mono float32 at ``sample_rate``."""
        from pyharmonies.audio import load

        return np.ascontiguousarray(load(self.path, self.sample_rate), dtype=np.float32)

    def start(self) -> FileSource:
        """Decode the file and start the clock."""
        self._y = self.samples()
        self._pos = 0
        self._due = 0 if self.realtime else len(self._y)
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> None:
        self._y = None

    @property
    def ended(self) -> bool:
        """No more samples will arrive (some may still be available to read)."""
        return self._y is None or self._due >= len(self._y)

    @property
    def available(self) -> int:
        """Samples that have "arrived" and were not read yet."""
        return 0 if self._y is None else self._due - self._pos

    def wait(self, timeout: float = 0.25) -> None:
        """In real time: make every block due by now available, sleeping for the next one if none is.

        Like a microphone, blocks keep arriving while the reader is busy.
        """
        if self._y is None:
            raise RuntimeError("start() the source first")
        if not self.realtime or self._due >= len(self._y):
            return
        total = len(self._y)
        clock = int((time.perf_counter() - self._t0) * self.sample_rate)  # samples "captured" by now
        due = total if clock >= total else clock // self.block * self.block
        if due <= self._due:  # nothing new: sleep until the next block's last sample
            due = min(self._due + self.block, total)
            delay = self._t0 + due / self.sample_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        for end in [*range(self._due + self.block, due, self.block), due]:
            self.arrivals.stamp(end, self._t0 + end / self.sample_rate)
        self._due = due

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` available samples into ``out``; return how many."""
        n = min(out.shape[0], self.available)
        if n <= 0:
            return 0
        end = self._pos + n
        out[:n] = self._y[self._pos : end]
        self._pos = end
        if not self.realtime:
            self.arrivals.stamp(end, time.perf_counter())
        return n
