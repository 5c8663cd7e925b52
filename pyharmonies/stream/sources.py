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
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from pyharmonies.stream.microphone import ArrivalLog


class FileSource:
    """A file replayed block by block, decoded as it is replayed.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads; decoded a second at a time, mixed to
        mono and resampled (soxr's fixed-rate streaming engine, whose output
        equals offline classification's one-shot resampling exactly) to
        ``sample_rate`` by :func:`pyharmonies.audio.iter_blocks`. Only the
        samples decoded and not yet read are held, so memory does not grow
        with the file.
    sample_rate : int
    block : int
        Samples per block (the last one may be shorter).
    realtime : bool
        Blocks come at the file's pace, as from a microphone (each block
        when its last sample would have been captured); ``False``: as fast
        as they are read.
    on_warning : callable, optional
        Called with the text of a warning about the file (it is truncated:
        what it holds is replayed); by default the warning is issued with
        :func:`warnings.warn`.
    """

    overflows = 0
    lost_samples = 0
    reconnects = 0

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, block: int = 1024, realtime: bool = True,
                 on_warning: Callable[[str], None] | None = None):  # fmt: skip
        if int(block) <= 0:
            raise ValueError(f"block must be > 0, got {block}")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.block = int(block)
        self.realtime = bool(realtime)
        self.on_warning = on_warning
        self.arrivals = ArrivalLog()
        self._blocks: Iterator[np.ndarray] | None = None
        self._buf = np.zeros(0, dtype=np.float32)  # decoded, not read: samples _pos .. _decoded - 1
        self._decoded = 0  # samples out of the decoder so far
        self._exhausted = False  # the decoder has given its last sample
        self._pos = 0  # samples read
        self._due = 0  # samples arrived (by the real-time clock)
        self._t0 = 0.0

    def describe(self) -> str:
        pace = "in real time" if self.realtime else "as fast as possible"
        return f"{self.path} at {self.sample_rate} Hz, {pace}"

    def samples(self) -> np.ndarray:
        """The whole file at once, mono float32 at ``sample_rate`` (its length in memory)."""
        from pyharmonies.audio import load

        return np.ascontiguousarray(load(self.path, self.sample_rate), dtype=np.float32)

    def start(self) -> FileSource:
        """Check the file's header (an unusable file raises :class:`~pyharmonies.errors.AudioError` here) and start the clock."""
        from pyharmonies.audio import iter_blocks

        self.stop()
        self._blocks = iter_blocks(self.path, self.sample_rate)
        self._buf = np.zeros(0, dtype=np.float32)
        self._decoded = self._pos = self._due = 0
        self._exhausted = False
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> None:
        if self._blocks is not None:
            self._blocks.close()  # closes the file
        self._blocks = None

    def _pull(self) -> bool:
        """Decode the next block into the buffer; False once the file has no more."""
        if self._exhausted or self._blocks is None:
            return False
        with warnings.catch_warnings(record=True) as caught:
            if self.on_warning is not None:
                warnings.simplefilter("always")
            try:
                y = next(self._blocks)
            except StopIteration:
                self._exhausted = True
                y = None
        for w in caught:
            if self.on_warning is not None:
                self.on_warning(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if y is None:
            return False
        self._buf = np.concatenate([self._buf, y]) if self._buf.size else y
        self._decoded += y.shape[0]
        return True

    @property
    def ended(self) -> bool:
        """No more samples will arrive (some may still be available to read)."""
        return self._blocks is None or (self._exhausted and self._due >= self._decoded)

    @property
    def available(self) -> int:
        """Samples that have "arrived" and were not read yet."""
        return 0 if self._blocks is None else self._due - self._pos

    def wait(self, timeout: float = 0.25) -> None:
        """Make the next samples available: as fast as possible, the next decoded block; in real
        time, every block due by now, sleeping for the next one if none is.

        Like a microphone, blocks keep arriving while the reader is busy.
        """
        if self._blocks is None:
            raise RuntimeError("start() the source first")
        if not self.realtime:
            # One more block per call: the reader may want more before it reads (a window not
            # complete yet), and it reads what is there each time, so the buffer stays near a block.
            if self._pull():
                self._due = self._decoded
            return
        if self._exhausted and self._due >= self._decoded:
            return
        clock = int((time.perf_counter() - self._t0) * self.sample_rate)  # samples "captured" by now
        target = clock // self.block * self.block
        while self._decoded < max(target, self._due + self.block) and self._pull():
            pass
        end = self._decoded  # the file's length once exhausted
        due = end if self._exhausted and clock >= end else min(target, end)
        if due <= self._due:  # nothing new: sleep until the next block's last sample
            due = min(self._due + self.block, end)
            delay = self._t0 + due / self.sample_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        for stamp in [*range(self._due + self.block, due, self.block), due]:
            self.arrivals.stamp(stamp, self._t0 + stamp / self.sample_rate)
        self._due = due

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` available samples into ``out``; return how many."""
        n = min(out.shape[0], self.available)
        if n <= 0:
            return 0
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self._pos += n
        if not self.realtime:
            self.arrivals.stamp(self._pos, time.perf_counter())
        return n
