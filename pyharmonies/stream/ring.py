"""A preallocated single-producer / single-consumer float32 ring buffer.

:meth:`RingBuffer.write` copies into storage allocated once and never
allocates (it is what an audio callback may call); when the buffer is full
the samples that do not fit are dropped and counted in :attr:`overflows`,
so audio is never lost silently. :meth:`RingBuffer.read` returns what is
available (up to ``max_samples``).

One writer thread and one reader thread may use it at once: the writer only
moves ``_write`` and the reader only ``_read`` (each a Python int assigned
atomically under the GIL), and each publishes its position after copying.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity float32 ring.

    Parameters
    ----------
    capacity : int
        Samples it holds (> 0).

    Attributes
    ----------
    capacity : int
    overflows : int
        Samples dropped because the buffer was full.
    overflow_events : int
        Writes that dropped at least one sample.
    """

    def __init__(self, capacity: int):
        capacity = int(capacity)
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._write = 0  # total samples written (monotonic)
        self._read = 0  # total samples read (monotonic)
        self.overflows = 0
        self.overflow_events = 0

    @property
    def available(self) -> int:
        """Samples written and not yet read."""
        return self._write - self._read

    @property
    def free(self) -> int:
        return self.capacity - self.available

    def write(self, samples: np.ndarray) -> int:
        """Copy ``samples`` (1-D, any float/int dtype) in; return how many were stored.

        Never allocates for float32 input; the samples beyond the free space
        are dropped (the newest ones) and counted.
        """
        x = samples.reshape(-1) if samples.ndim != 1 else samples
        n = x.shape[0]
        take = min(n, self.capacity - (self._write - self._read))
        if take < n:
            self.overflows += n - take
            self.overflow_events += 1
        if take <= 0:
            return 0
        start = self._write % self.capacity
        first = min(take, self.capacity - start)
        self._buf[start : start + first] = x[:first]
        if take > first:
            self._buf[: take - first] = x[first:take]
        self._write += take  # publish after the copy
        return take

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` available samples into ``out``; return how many."""
        n = min(out.shape[0], self._write - self._read)
        if n <= 0:
            return 0
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        if n > first:
            out[first:n] = self._buf[: n - first]
        self._read += n
        return n

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """The available samples (at most ``max_samples``), oldest first, as a new array."""
        n = self.available if max_samples is None else min(int(max_samples), self.available)
        out = np.empty(max(n, 0), dtype=np.float32)
        self.read_into(out)
        return out

    def clear(self) -> None:
        """Forget unread samples (the counters are kept)."""
        self._read = self._write
