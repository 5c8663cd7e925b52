"""The live loop: a source, the resampler, the sliding classifier, and the measurements.

:class:`LiveSession` reads whatever the source has (a microphone's ring, or
a file's next block), resamples it to the model's rate, pushes it through
the :class:`~pyharmonies.stream.sliding.SlidingClassifier` and hands each
classified window to a callback. It measures what a person running it on a
Pi wants to know:

- latency of each window: from the moment its last sample arrived (the
  audio callback's stamp of the block holding it, so the resampler's delay
  is included) to the moment its result is handed out;
- processing time per hop: the time the loop spent working (resampling,
  features, inference, printing) between one window and the next, against
  the hop's budget;
- CPU time of the whole process (every thread, PortAudio's too) over wall
  time, and resident memory;
- faults: PortAudio input overflows, samples lost to a full ring, windows
  dropped because inference fell behind, reconnections.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pyharmonies.errors import DeviceError, DeviceLost
from pyharmonies.stream.resample import StreamResampler
from pyharmonies.stream.sliding import SlidingClassifier, StreamResult
from pyharmonies.stream.stats import StreamingStats


def memory_mb() -> tuple[float, float]:
    """Resident memory of this process now and at its peak, in MB (``VmRSS``, ``VmHWM``); (0, 0) off Linux."""
    now = peak = 0.0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    now = int(line.split()[1]) / 1024.0
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return now, peak


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None."""
    try:
        import os

        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class LiveStats:
    """What a session measured; :meth:`summary` is the dict ``listen`` prints.

    Latency and work per hop are :class:`StreamingStats`: fixed memory
    however long the session runs, quantiles within 1 % (relative).
    """

    hop_seconds: float
    latency_ms: StreamingStats = field(default_factory=StreamingStats)
    hop_work_ms: StreamingStats = field(default_factory=StreamingStats)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    first_result_s: float | None = None  # since the process started
    steady_wall_seconds: float = 0.0  # from the first result to the end
    steady_cpu_seconds: float = 0.0
    windows: int = 0
    dropped: int = 0
    overflows: int = 0
    lost_samples: int = 0
    reconnects: int = 0

    @property
    def cpu_percent(self) -> float:
        """CPU time of the process over wall time from the first result to the end, in % of one core.

        From the first result on, so that the audio stack's start-up (ALSA's
        pulse plugin busy-polls for about a second after opening) and the
        first window's filling do not count; :attr:`cpu_percent_total`
        counts everything from opening the source.
        """
        if self.steady_wall_seconds > 1.0:
            return 100.0 * self.steady_cpu_seconds / self.steady_wall_seconds
        return self.cpu_percent_total

    @property
    def cpu_percent_total(self) -> float:
        """CPU time of the process over wall time since the source opened, in % of one core."""
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def audio_lost(self) -> bool:
        return self.overflows > 0 or self.lost_samples > 0 or self.dropped > 0

    def summary(self) -> dict:
        """Counts, latency (mean, p50, p95, p99, max in ms), work per hop, CPU%, RSS.

        Quantiles are over the whole session, within 1 % (see :class:`StreamingStats`).
        """
        rss, peak = memory_mb()
        lat, hop = self.latency_ms, self.hop_work_ms
        return {
            "windows": self.windows,
            "dropped": self.dropped,
            "overflows": self.overflows,
            "lost_samples": self.lost_samples,
            "reconnects": self.reconnects,
            "audio_s": round(self.audio_seconds, 3),
            "mean_latency_ms": round(lat.mean, 3),
            "p50_latency_ms": round(lat.quantile(50), 3),
            "p95_latency_ms": round(lat.quantile(95), 3),
            "p99_latency_ms": round(lat.quantile(99), 3),
            "max_latency_ms": round(lat.max, 3) if lat.count else 0.0,
            "p50_hop_ms": round(hop.quantile(50), 3),
            "p99_hop_ms": round(hop.quantile(99), 3),
            "max_hop_ms": round(hop.max, 3) if hop.count else 0.0,
            "hop_budget_ms": round(1000.0 * self.hop_seconds, 3),
            "cpu_percent": round(self.cpu_percent, 2),
            "cpu_percent_total": round(self.cpu_percent_total, 2),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1),
            "first_result_s": None if self.first_result_s is None else round(self.first_result_s, 3),
        }


class LiveSession:
    """Run a source through a :class:`SlidingClassifier`, live.

    Parameters
    ----------
    slider : SlidingClassifier
        Its extractor's sample rate is the model's.
    source : MicrophoneSource or FileSource
        Started and stopped by :meth:`run`.
    duration : float, optional
        Stop after this many seconds of audio.
    reconnect : bool
        When the device vanishes, wait for it to come back (retrying every
        ``retry_seconds``) instead of raising :class:`DeviceLost`.
    finish : bool
        At the end of a file, flush the last frames (as offline
        classification does); a microphone is cut where it stops.
    on_status : callable, optional
        Called with a line of text for events a person should see
        (device lost, reconnected).
    retry_seconds : float
        Pause between attempts to reopen a vanished device.
    max_batch_seconds : float
        Samples wait in the source at most this long before they are
        processed (see :meth:`_ready`).
    """

    def __init__(self, slider: SlidingClassifier, source, *, duration: float | None = None, reconnect: bool = False,
                 finish: bool = True, on_status: Callable[[str], None] | None = None, retry_seconds: float = 1.0,
                 max_batch_seconds: float = 0.1):  # fmt: skip
        self.slider = slider
        self.source = source
        self.model_rate = slider.config.sample_rate
        self.resampler = StreamResampler(source.sample_rate, self.model_rate)
        self.duration = duration
        self.reconnect = reconnect
        self.finish = finish
        self.on_status = on_status or (lambda line: None)
        self.retry_seconds = float(retry_seconds)
        self.max_batch_seconds = float(max_batch_seconds)
        self._steady_from: tuple[float, float] | None = None
        self._max_batch = 1
        self.stats = LiveStats(hop_seconds=slider.hop_seconds)
        self._stop = False
        self._work = 0.0  # seconds worked since the last window

    def stop(self) -> None:
        """Ask :meth:`run` to end after the current block (from a signal handler, say)."""
        self._stop = True

    def _arrival(self, result: StreamResult, pushed_at: float) -> float:
        ratio = self.source.sample_rate / self.model_rate
        index = max(0, math.ceil(result.end_sample * ratio) - 1)
        arrived = self.source.arrivals.time_of(index)
        return pushed_at if arrived is None else min(arrived, pushed_at)

    def _emit(self, results: list[StreamResult], pushed_at: float, emit) -> None:
        t_work = pushed_at  # the work on these samples started when they were pushed
        for r in results:
            now = time.perf_counter()
            latency = 1000.0 * (now - self._arrival(r, pushed_at))
            self.stats.latency_ms.add(latency)
            self.stats.windows += 1
            self.stats.dropped = self.slider.dropped
            if self.stats.first_result_s is None:
                self.stats.first_result_s = process_age()
                self._steady_from = (now, time.process_time())
            emit(r, latency, self.stats)
            done = time.perf_counter()
            self.stats.hop_work_ms.add(1000.0 * (self._work + done - t_work))
            self._work, t_work = 0.0, done
        self._work += time.perf_counter() - t_work

    def _recover(self, err: DeviceLost) -> None:
        if not self.reconnect:
            raise err
        self.on_status(f"{err}; waiting for it to come back (--reconnect)")
        while not self._stop:
            time.sleep(self.retry_seconds)
            try:
                self.source.reopen()
            except DeviceError:
                continue
            self.resampler.reset()
            if self.slider.resets_on_reconnect:  # a stateful stream starts again: its state holds the audio before the gap
                self.slider.reset()
            self.on_status(f"reconnected to {self.source.describe()}")
            return

    def _ready(self, available: int) -> bool:
        """Worth processing now: the next window may be complete, or a batch is due.

        Waking the whole pipeline for every 5 ms block costs more than the
        work itself; the samples wait in the ring until they may complete the
        next window (allowing for the resampler's delay) or ``max_batch``
        accumulate, so latency is not affected.
        """
        if available >= self._max_batch or self.source.ended:
            return True
        ratio = self.source.sample_rate / self.model_rate
        missing = self.slider.next_window_end - self.slider.samples_pushed + self.resampler.delay
        return available >= missing * ratio

    def run(self, emit: Callable[[StreamResult, float, LiveStats], None], on_start: Callable[[], None] | None = None) -> LiveStats:
        """Classify until the source ends, ``duration`` is reached, :meth:`stop` or Ctrl-C.

        ``emit(result, latency_ms, stats)`` is called for every classified
        window, as soon as it is ready; ``on_start()`` once the source is
        open and capturing. Returns the statistics (also when
        interrupted). Raises :class:`DeviceLost` if the device vanishes and
        ``reconnect`` is off.
        """
        src = self.source
        limit = None if self.duration is None else int(round(self.duration * src.sample_rate))
        buf = np.empty(max(src.sample_rate, 4096), dtype=np.float32)
        self._max_batch = int(self.max_batch_seconds * src.sample_rate)
        consumed = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        src.start()
        if on_start is not None:
            on_start()
        try:
            def process(available: int) -> int:
                t0 = time.perf_counter()
                n = src.read_into(buf[: available if limit is None else min(available, limit - consumed)])
                last = self.finish and ((src.ended and src.available == 0) or (limit is not None and consumed + n >= limit))
                results = self.slider.push(self.resampler.process(buf[:n], last=last))
                self._emit(results, t0, emit)
                return n

            while not self._stop and (limit is None or consumed < limit):
                try:
                    src.wait()
                except DeviceLost as err:
                    # What arrived before the loss belongs to the stream before the gap: process it first.
                    while self.reconnect and src.available and (limit is None or consumed < limit):
                        consumed += process(src.available)
                    self._recover(err)
                    continue
                available = src.available
                if available == 0 and src.ended:
                    break
                at_limit = limit is not None and available >= limit - consumed
                if available == 0 or not (at_limit or self._ready(available)):
                    continue
                consumed += process(available)
            if self.finish:
                t0 = time.perf_counter()
                self._emit(self.slider.finish(), t0, emit)
        except KeyboardInterrupt:
            pass
        finally:
            src.stop()
            st = self.stats
            wall1, cpu1 = time.perf_counter(), time.process_time()
            st.wall_seconds, st.cpu_seconds = wall1 - wall0, cpu1 - cpu0
            if self._steady_from is not None:
                st.steady_wall_seconds = wall1 - self._steady_from[0]
                st.steady_cpu_seconds = cpu1 - self._steady_from[1]
            st.audio_seconds = consumed / src.sample_rate
            st.dropped = self.slider.dropped
            st.overflows, st.lost_samples, st.reconnects = src.overflows, src.lost_samples, src.reconnects
        return st
