"""Microphone capture: a PortAudio callback that only copies into a ring.

The callback (PortAudio's thread) does three things and nothing else: it
counts PortAudio's input-overflow flag, copies the block into a
preallocated :class:`~pyharmonies.stream.ring.RingBuffer`, and stamps the
time the block's last sample was captured (PortAudio's ADC time, which
ALSA reports; the callback's own time where a host API gives none) in a
preallocated :class:`ArrivalLog`. Latency measured from that stamp
includes the audio stack's buffering (ALSA's pulse plugin delivers blocks
in pairs), not only ours. It takes no
lock and never waits, so however slow the consumer is, capture goes on; a
full ring drops the newest samples and counts them.

The consumer (:meth:`MicrophoneSource.read_into`) sleeps in ``select()`` on
a pipe the callback writes a byte to after each block (a non-blocking
write: the callback shares no lock with the consumer), copies what is
there, and watches for a device that has vanished: PortAudio ending the
stream, or no block for ``stall_seconds``.
"""

from __future__ import annotations

import math
import os
import select
import time

import numpy as np

from pyharmonies.errors import DeviceError, DeviceLost
from pyharmonies.stream.ring import RingBuffer


def _sounddevice():
    try:
        import sounddevice as sd
    except OSError as err:  # the PortAudio library itself is missing
        raise DeviceError(f"PortAudio is not available ({err}); install it: apt-get install libportaudio2") from None
    return sd


def list_input_devices() -> list[dict]:
    """Input devices as PortAudio sees them now.

    Returns
    -------
    list of dict
        ``index``, ``name``, ``channels``, ``default_samplerate`` (Hz),
        ``default`` (True for the default input), in PortAudio's order.
    """
    sd = _sounddevice()
    try:
        found = sd.query_devices()
        default_in = sd.default.device[0]
    except Exception as err:  # sounddevice.PortAudioError
        raise DeviceError(f"cannot query audio devices (PortAudio): {err}") from None
    if default_in is None or default_in < 0:
        try:
            default_in = sd.query_devices(kind="input")["index"]
        except Exception:  # no default input
            default_in = -1
    return [
        {"index": d["index"], "name": d["name"], "channels": d["max_input_channels"],
         "default_samplerate": float(d["default_samplerate"]), "default": d["index"] == default_in}  # fmt: skip
        for d in found
        if d.get("max_input_channels", 0) > 0
    ]


def resolve_input_device(spec: str | int | None) -> dict:
    """The input device ``spec`` names.

    Parameters
    ----------
    spec : str, int or None
        ``None``: the default input. An int (or a string of digits): the
        PortAudio index. Otherwise a name: an exact name, else the one input
        whose name contains ``spec`` (case-insensitive).

    Returns
    -------
    dict
        As :func:`list_input_devices` gives it.

    Raises
    ------
    DeviceError
        No input devices, no match, or several matches (the message lists them).
    """
    inputs = list_input_devices()
    if not inputs:
        raise DeviceError("no audio input devices found (is a microphone connected, PulseAudio/ALSA running?)")
    listing = "; ".join(f"{d['index']}: {d['name']}" for d in inputs)
    if spec is None:
        chosen = [d for d in inputs if d["default"]] or inputs[:1]
        return chosen[0]
    text = str(spec).strip()
    if text.isdigit():
        hits = [d for d in inputs if d["index"] == int(text)]
        if not hits:
            raise DeviceError(f"no input device with index {text}; inputs are {listing}")
        return hits[0]
    hits = [d for d in inputs if d["name"] == text] or [d for d in inputs if text.lower() in d["name"].lower()]
    if not hits:
        raise DeviceError(f"no input device named like {text!r}; inputs are {listing}")
    if len(hits) > 1:
        names = "; ".join(f"{d['index']}: {d['name']}" for d in hits)
        raise DeviceError(f"{text!r} names {len(hits)} input devices ({names}); give the index or a longer name")
    return hits[0]


class ArrivalLog:
    """When each block arrived: (samples stored after it, perf_counter time).

    A fixed ring of stamps written by the audio callback (no allocation,
    no lock: one writer, and the reader only looks at stamps older than
    the last published count).

    Parameters
    ----------
    capacity : int
        Stamps kept (> 0); older ones are forgotten.
    """

    def __init__(self, capacity: int = 4096):
        self.capacity = int(capacity)
        self._ends = np.zeros(self.capacity, dtype=np.int64)
        self._times = np.zeros(self.capacity, dtype=np.float64)
        self._count = 0

    def stamp(self, end: int, when: float) -> None:
        """Record that samples ``[.., end)`` had arrived at ``when``."""
        i = self._count % self.capacity
        self._ends[i] = end
        self._times[i] = when
        self._count += 1  # publish after the writes

    def time_of(self, index: int) -> float | None:
        """When sample ``index`` arrived (the stamp of the first block ending after it), or None if unknown."""
        n = min(self._count, self.capacity)
        if n == 0:
            return None
        order = (np.arange(self._count - n, self._count)) % self.capacity
        ends = self._ends[order]
        k = int(np.searchsorted(ends, index, side="right"))
        if k >= n or (k == 0 and self._count > n):  # not arrived yet, or its block's start was forgotten
            return None
        return float(self._times[order[k]])

    @property
    def last_time(self) -> float | None:
        """When the newest block arrived."""
        if self._count == 0:
            return None
        return float(self._times[(self._count - 1) % self.capacity])


class MicrophoneSource:
    """An input device captured through PortAudio's callback API.

    Parameters
    ----------
    device : str, int or None
        As :func:`resolve_input_device` takes it; ``None`` is the default input.
    samplerate : int, optional
        Capture rate [default: the device's default (native) rate].
    block_seconds : float
        Target length of a PortAudio block; the block is the nearest power
        of two of samples (256 at 44.1 or 48 kHz for the default 6 ms).
    ring_seconds : float
        Capacity of the ring between the callback and the consumer.
    stall_seconds : float
        No block for this long (once the stream has started) means the
        device is gone.

    Attributes
    ----------
    overflows : int
        Blocks PortAudio flagged ``input_overflow`` (audio lost before us).
    lost_samples : int
        Samples dropped because the ring was full (the consumer fell behind).
    """

    START_SECONDS = 5.0  # the first block may take a while (ALSA's pulse plugin: about 1 s)

    def __init__(self, device: str | int | None = None, *, samplerate: int | None = None, block_seconds: float = 0.006,
                 ring_seconds: float = 10.0, stall_seconds: float = 2.0):  # fmt: skip
        self.spec = device
        self.info = resolve_input_device(device)
        self.sample_rate = int(round(samplerate or self.info["default_samplerate"]))
        if self.sample_rate <= 0:
            raise DeviceError(f"input device {self.info['name']!r} reports no usable sampling rate")
        self.block = 1 << max(4, round(math.log2(max(16.0, self.sample_rate * block_seconds))))
        self.block_seconds = self.block / self.sample_rate
        self.ring = RingBuffer(int(ring_seconds * self.sample_rate))
        self.arrivals = ArrivalLog()
        self.stall_seconds = float(stall_seconds)
        self.overflows = 0
        self.callbacks = 0
        self.reconnects = 0
        self._stream = None
        self._opened_at = 0.0
        self._last_delivery = 0.0
        self._stored = 0  # samples stored in the ring (the consumer's sample index)
        # Self-pipe: the callback writes a byte after each block, the consumer sleeps in select() on it.
        # No lock is shared with the callback, so it can never wait for the consumer.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def lost_samples(self) -> int:
        return self.ring.overflows

    def describe(self) -> str:
        """``"3: USB mic, 48000 Hz, blocks of 256 (5.3 ms)"``."""
        return (f"{self.info['index']}: {self.name}, {self.sample_rate} Hz, "
                f"blocks of {self.block} ({1000 * self.block_seconds:.1f} ms)")  # fmt: skip

    # ---------------------------------------------------------------- PortAudio's thread
    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        stored = self.ring.write(indata[:, 0])
        self._stored += stored
        now = time.perf_counter()
        # When the block's last sample was captured, by PortAudio's ADC clock (host APIs without one give 0).
        ago = time_info.currentTime - time_info.inputBufferAdcTime - frames / self.sample_rate
        self.arrivals.stamp(self._stored, now - ago if 0.0 < ago < 1.0 else now)
        self.callbacks += 1
        self._last_delivery = now
        try:
            os.write(self._wake_w, b"\0")  # non-blocking: a full pipe already holds a wake-up
        except OSError:
            pass

    # ---------------------------------------------------------------- the consumer's thread
    def start(self) -> MicrophoneSource:
        """Open the device and start capturing."""
        sd = _sounddevice()
        try:
            stream = sd.InputStream(device=self.info["index"], samplerate=self.sample_rate, channels=1, dtype="float32",
                                    blocksize=self.block, latency=max(0.03, 4 * self.block_seconds),
                                    callback=self._callback)  # fmt: skip
            stream.start()
        except Exception as err:  # sounddevice.PortAudioError, ValueError for unsupported settings
            raise DeviceError(f"cannot open input device {self.name!r} at {self.sample_rate} Hz: {err}") from None
        self._stream = stream
        self._opened_at = time.perf_counter()
        self._last_delivery = 0.0
        return self

    def stop(self) -> None:
        """Stop capturing and close the device (safe to call twice, or after the device vanished)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
            stream.close()
        except Exception:  # a vanished device may fail to close; there is nothing left to release
            pass

    def close(self) -> None:
        """Stop, and release the wake-up pipe (the source cannot start again)."""
        self.stop()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __del__(self) -> None:
        if getattr(self, "_wake_r", -1) >= 0:
            self.close()

    def __enter__(self) -> MicrophoneSource:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def check_alive(self, now: float | None = None) -> None:
        """Raise :class:`DeviceLost` if PortAudio ended the stream or blocks stopped coming."""
        if self._stream is None:
            raise DeviceLost(f"input device {self.name!r} is not open")
        now = time.perf_counter() if now is None else now
        if not self._stream.active:
            raise DeviceLost(f"input device {self.name!r} stopped delivering audio (unplugged, or its sound server stopped)")
        last = self._last_delivery or None
        if last is None:
            if now - self._opened_at > self.START_SECONDS:
                raise DeviceLost(f"input device {self.name!r} delivered no audio in {self.START_SECONDS:.0f} s after opening")
        elif now - last > self.stall_seconds:
            raise DeviceLost(f"input device {self.name!r} delivered no audio for {now - last:.1f} s (unplugged, or its sound server stopped)")

    @property
    def available(self) -> int:
        """Captured samples not read yet."""
        return self.ring.available

    ended = False  # a microphone never runs out by itself

    def wait(self, timeout: float = 0.25) -> None:
        """Sleep until the callback delivers a block (or ``timeout`` passes).

        Raises :class:`DeviceLost` when the device has vanished.
        """
        self.check_alive()
        ready, _, _ = select.select([self._wake_r], [], [], timeout)
        if ready:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` captured samples into ``out`` (float32, 1-D); return how many (0 if none)."""
        return self.ring.read_into(out)

    def reopen(self, *, refresh: bool = True) -> None:
        """Close, find the device again by its original spec (PortAudio re-scanned), and start again.

        Raises :class:`DeviceError` if it is not back yet.
        """
        self.stop()
        if refresh:
            sd = _sounddevice()
            # PortAudio lists devices once per initialisation; a re-plugged device needs a new one.
            sd._terminate()
            sd._initialize()
        self.info = resolve_input_device(self.spec)
        self.start()
        self.reconnects += 1
