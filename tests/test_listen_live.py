"""The live path of `harmonies listen` without a sound card: the audio callback, device lookup,
the streaming resampler, the live loop's batching, dropping and device-loss handling."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from pyharmonies.errors import DeviceError, DeviceLost
from pyharmonies.features import FeatureConfig
from pyharmonies.stream import ArrivalLog, FileSource, LiveSession, SlidingClassifier, StreamResampler
from pyharmonies.stream import microphone as mic

FAKE_INPUTS = [
    {"index": 0, "name": "pulse", "channels": 32, "default_samplerate": 44100.0, "default": False},
    {"index": 3, "name": "USB Audio Device: Mic (hw:1,0)", "channels": 1, "default_samplerate": 48000.0, "default": True},
    {"index": 4, "name": "USB Audio Device: Line (hw:1,1)", "channels": 2, "default_samplerate": 48000.0, "default": False},
]


@pytest.fixture
def fake_devices(monkeypatch):
    monkeypatch.setattr(mic, "list_input_devices", lambda: [dict(d) for d in FAKE_INPUTS])


# ------------------------------------------------------------------ device lookup


@pytest.mark.parametrize(
    ("spec", "index"),
    [(None, 3), (0, 0), ("4", 4), ("pulse", 0), ("mic", 3), ("USB Audio Device: Line (hw:1,1)", 4)],
)
def test_resolve_input_device(fake_devices, spec, index):
    assert mic.resolve_input_device(spec)["index"] == index


@pytest.mark.parametrize(
    ("spec", "message"),
    [("7", "no input device with index 7; inputs are 0: pulse"), ("webcam", "no input device named like 'webcam'"),
     ("usb", "'usb' names 2 input devices")],  # fmt: skip
)
def test_resolve_input_device_errors_list_the_inputs(fake_devices, spec, message):
    with pytest.raises(DeviceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mic.resolve_input_device(spec)


def test_no_inputs_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(mic, "list_input_devices", lambda: [])
    with pytest.raises(DeviceError, match="no audio input devices found"):
        mic.resolve_input_device(None)


# ------------------------------------------------------------------ the callback


def _status(overflow=False):
    return SimpleNamespace(input_overflow=overflow)


def test_callback_copies_counts_and_stamps(fake_devices):
    src = mic.MicrophoneSource("mic", ring_seconds=0.05)  # 2400 samples at 48 kHz
    assert src.sample_rate == 48000 and src.block == 256  # native rate; 6 ms -> 256 samples
    block = np.arange(256, dtype=np.float32)[:, None] / 256
    t = SimpleNamespace(currentTime=10.0, inputBufferAdcTime=10.0 - 0.010)  # captured 10 ms ago
    before = time.perf_counter()
    src._callback(block, 256, t, _status())
    src._callback(block, 256, t, _status(overflow=True))
    assert src.overflows == 1 and src.callbacks == 2 and src.lost_samples == 0
    out = np.empty(1000, dtype=np.float32)
    assert src.read_into(out) == 512
    np.testing.assert_array_equal(out[:256], block[:, 0])
    # The block's last sample was captured 10 ms - 256/48000 s before the callback ran.
    stamp = src.arrivals.time_of(511)
    assert before - 0.0047 - 0.001 <= stamp <= time.perf_counter() - 0.0047 + 0.001
    assert src.arrivals.time_of(512) is None  # not arrived yet
    src.close()


def test_callback_never_waits_when_the_ring_is_full(fake_devices):
    src = mic.MicrophoneSource("mic", ring_seconds=0.01)  # 480 samples
    block = np.ones((256, 1), dtype=np.float32)
    t = SimpleNamespace(currentTime=0.0, inputBufferAdcTime=0.0)  # no ADC clock: the callback's own time
    worst = 0.0
    for _ in range(200):  # nobody reads: the ring stays full
        t0 = time.perf_counter()
        src._callback(block, 256, t, _status())
        worst = max(worst, time.perf_counter() - t0)
    assert src.ring.available == 480
    assert src.lost_samples == 200 * 256 - 480
    assert worst < 0.05  # it returns at once; 50 ms only guards against a badly loaded machine
    src.close()


def test_arrival_log_maps_samples_to_their_block():
    log = ArrivalLog(capacity=4)
    for k in range(1, 7):  # blocks of 100 samples arriving at t = k
        log.stamp(100 * k, float(k))
    assert log.time_of(150) is None and log.time_of(250) is None  # only the last 4 stamps are kept
    assert log.time_of(300) == 4.0 and log.time_of(399) == 4.0 and log.time_of(400) == 5.0
    assert log.time_of(599) == 6.0 and log.time_of(600) is None
    assert log.last_time == 6.0


# ------------------------------------------------------------------ resampler


def test_resampler_passthrough_and_description():
    r = StreamResampler(22050, 22050)
    x = np.arange(10, dtype=np.float32)
    assert r.passthrough and r.process(x) is not None and np.array_equal(r.process(x), x)
    assert r.describe() == "22050 Hz (no resampling)" and r.delay == 0.0
    assert StreamResampler(48000, 22050).describe() == "48000 Hz -> 22050 Hz (soxr HQ, variable-rate engine)"
    with pytest.raises(ValueError, match="sampling rates must be > 0"):
        StreamResampler(0, 22050)


def _stream(resampler, x, block=256):
    parts = [resampler.process(x[i : i + block]) for i in range(0, len(x), block)]
    return np.concatenate([*parts, resampler.process(np.zeros(0, np.float32), last=True)])


def _tone_db(y, sr, f):
    w = np.hanning(len(y))
    spec = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    return 20 * np.log10(spec[int(round(f * len(y) / sr))] + 1e-20)


@pytest.mark.parametrize("in_rate", [44100, 48000, 16000])
def test_streaming_resampler_keeps_the_band_and_rejects_aliases(in_rate):
    # The variable-rate engine's output is shifted by a fraction of a sample against the one-shot
    # resampler (about 0.1 ms), so the comparison is on what features see: tone levels and aliases.
    t = np.arange(in_rate * 2) / in_rate
    x = (0.5 * np.sin(2 * np.pi * 441 * t) + 0.25 * np.sin(2 * np.pi * 2940 * t)).astype(np.float32)
    y = _stream(StreamResampler(in_rate, 22050), x)
    assert abs(len(y) - 2 * 22050) <= 2
    core = y[2205 : 2205 + 22050]  # 1 s: the tones fall on exact bins
    assert _tone_db(core, 22050, 441) == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert _tone_db(core, 22050, 2940) == pytest.approx(20 * np.log10(0.25), abs=0.05)
    if in_rate > 22050:  # a tone above the new Nyquist frequency must not fold back
        high = (0.5 * np.sin(2 * np.pi * 15000 * t)).astype(np.float32)
        z = _stream(StreamResampler(in_rate, 22050), high)[2205:-2205]
        assert 20 * np.log10(np.sqrt(np.mean(z**2)) + 1e-20) < -100


def test_streaming_resampler_delay_is_compensated():
    x = np.zeros(44100, np.float32)
    x[22050] = 1.0  # an impulse at 0.5 s
    y = _stream(StreamResampler(44100, 22050), x)
    assert abs(int(np.argmax(np.abs(y))) - 11025) <= 3  # within 0.15 ms of where it belongs


# ------------------------------------------------------------------ the live loop


class Recorder:
    """A classifier that records windows and may be slow."""

    def __init__(self, labels=("a", "b"), delay=0.0):
        self.labels = labels
        self.delay = delay
        self.calls = 0

    def predict(self, window):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        p = np.full(len(self.labels), 0.1, dtype=np.float32)
        p[self.calls % len(self.labels)] = 1.0
        return p / p.sum()


CONFIG = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, n_mfcc=13)


def test_next_window_end_is_exact():
    slider = SlidingClassifier(Recorder(), CONFIG, "log_mel", window_frames=5, hop_frames=3, max_pending=0)
    rng = np.random.default_rng(0)
    for _ in range(4):
        need = slider.next_window_end
        assert slider.push(rng.standard_normal(need - slider.samples_pushed - 1).astype(np.float32)) == []
        results = slider.push(rng.standard_normal(1).astype(np.float32))
        assert len(results) == 1 and results[0].end_sample == need


def test_span_averages_the_last_windows():
    slider = SlidingClassifier(Recorder(), CONFIG, "log_mel", window_frames=4, hop_frames=2, max_pending=0, span=2)
    results = slider.push(np.random.default_rng(1).standard_normal(8000).astype(np.float32))
    raw = [r.raw_probs for r in results]
    np.testing.assert_allclose(results[0].probs, raw[0], rtol=1e-6)
    for k in range(1, len(results)):
        np.testing.assert_allclose(results[k].probs, (raw[k - 1] + raw[k]) / 2, rtol=1e-5)


def _wav(tmp_path, seconds, sr=8000):
    import soundfile as sf

    y = (0.3 * np.random.default_rng(2).standard_normal(int(seconds * sr))).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, y, sr)
    return path


def test_slow_inference_drops_the_oldest_windows_and_loses_no_audio(tmp_path):
    # Windows every 2 frames = 32 ms of audio; inference takes 60 ms: the loop must fall behind.
    slider = SlidingClassifier(Recorder(delay=0.06), CONFIG, "log_mel", window_frames=4, hop_frames=2, max_pending=2)
    source = FileSource(_wav(tmp_path, 2.0), 8000, block=256, realtime=True)
    times = []
    stats = LiveSession(slider, source, finish=False).run(lambda r, latency, st: times.append(r.time))
    assert stats.dropped > 0 and stats.windows == len(times)
    assert stats.windows + stats.dropped == (int(2.0 * 8000) - 128) // 128 // 2 - 1  # every window either way
    assert times == sorted(times) and stats.lost_samples == 0 and stats.overflows == 0
    summary = stats.summary()
    assert summary["dropped"] == stats.dropped and summary["p50_hop_ms"] >= 60.0


def test_duration_cuts_exactly(tmp_path):
    slider = SlidingClassifier(Recorder(), CONFIG, "log_mel", window_frames=4, hop_frames=2, max_pending=0)
    stats = LiveSession(slider, FileSource(_wav(tmp_path, 3.0), 8000, realtime=False), duration=1.25).run(lambda *a: None)
    assert stats.audio_seconds == 1.25


class VanishingMic:
    """A source whose device vanishes after a few blocks, and comes back on the second reopen."""

    sample_rate = 8000
    ended = False
    overflows = lost_samples = 0

    def __init__(self):
        self.arrivals = ArrivalLog()
        self.blocks = 0
        self.reconnects = 0
        self.reopen_calls = 0
        self._avail = 0
        self.total = 0

    def start(self):
        return self

    def stop(self):
        pass

    def describe(self):
        return "fake mic"

    @property
    def available(self):
        return self._avail

    def wait(self, timeout=0.25):
        if self.blocks == 5 and self.reconnects == 0:
            raise DeviceLost("input device 'fake mic' stopped delivering audio")
        self.blocks += 1
        self._avail += 512
        self.total += 512
        self.arrivals.stamp(self.total, time.perf_counter())

    def read_into(self, out):
        n = min(self._avail, len(out))
        self._avail -= n
        out[:n] = 0.01
        return n

    def reopen(self):
        self.reopen_calls += 1
        if self.reopen_calls < 2:
            raise DeviceError("not back yet")
        self.reconnects += 1


def test_device_loss_raises_without_reconnect():
    slider = SlidingClassifier(Recorder(), CONFIG, "log_mel", window_frames=4, hop_frames=2)
    with pytest.raises(DeviceLost, match="stopped delivering audio"):
        LiveSession(slider, VanishingMic(), duration=2.0, finish=False).run(lambda *a: None)


def test_device_loss_with_reconnect_waits_and_goes_on():
    slider = SlidingClassifier(Recorder(), CONFIG, "log_mel", window_frames=4, hop_frames=2)
    lines = []
    source = VanishingMic()
    session = LiveSession(slider, source, duration=1.0, reconnect=True, finish=False, on_status=lines.append, retry_seconds=0.01)
    stats = session.run(lambda *a: None)
    assert source.reopen_calls == 2 and stats.reconnects == 1 and stats.audio_seconds == 1.0
    assert "waiting for it to come back" in lines[0] and lines[1] == "reconnected to fake mic"
