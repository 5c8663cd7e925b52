"""Audio sources that yield mono float32 blocks at the model's sample rate."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class FileSource:
    """A file replayed block by block.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads; mixed to mono and resampled (soxr) to
        ``sample_rate``.
    sample_rate : int
    block : int
        Samples per block (the last one may be shorter).
    realtime : bool
        Sleep so that blocks come at the file's pace (as a microphone would);
        ``False`` yields them as fast as they are consumed.
    duration : float, optional
        Stop after this many seconds of audio.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, block: int = 1024, realtime: bool = True,
                 duration: float | None = None):  # fmt: skip
        if int(block) <= 0:
            raise ValueError(f"block must be > 0, got {block}")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.block = int(block)
        self.realtime = bool(realtime)
        self.duration = duration
        self.overflows = 0  # a file never overflows; the field matches live sources

    def samples(self) -> np.ndarray:
        from pyharmonies.audio import load

        y = load(self.path, self.sample_rate)
        if self.duration is not None:
            y = y[: max(0, int(round(self.duration * self.sample_rate)))]
        return np.ascontiguousarray(y, dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        y = self.samples()
        start = time.monotonic()
        for i in range(0, len(y), self.block):
            if self.realtime:
                due = start + min(i + self.block, len(y)) / self.sample_rate  # when its last sample would arrive
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield y[i : i + self.block]
