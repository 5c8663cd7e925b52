"""Speed of the C feature core against librosa, single-threaded.

:func:`run` times, on one deterministic synthetic clip (:func:`synthetic_clip`)
and with one :class:`~pyharmonies.features.FeatureConfig`:

* **log-mel**: ``extract(y, features=["log_mel"])`` against librosa's
  ``power_to_db(melspectrogram(y=y), top_db=None)``;
* **the full named feature set** (every name in ``FEATURE_NAMES``): one
  ``extract`` call against librosa used two ways,

  - *per feature*, the way a user calls it: ``melspectrogram``,
    ``power_to_db`` of that, ``mfcc(y=...)``, ``zero_crossing_rate``, ``rms``,
    ``spectral_centroid/bandwidth/rolloff/flatness(y=...)``,
    ``chroma_stft(y=..., tuning=0)``, each call computing its own STFT;
  - *shared STFT*, the expert way: one ``librosa.stft`` whose magnitude and
    power feed ``melspectrogram(S=)``, ``mfcc(S=)``, ``chroma_stft(S=)`` and
    ``spectral_*(S=)``; zcr and rms from the waveform;

  librosa has no energy entropy, spectral entropy or spectral flux, so both
  forms add :func:`pyaudioanalysis_features`, a vectorised numpy version of
  pyAudioAnalysis's definitions (from an STFT and the framed waveform);
* **streaming cost per hop** of the frame vector (28 values by default):
  the C core's, as ``extract(features=FRAME_VECTOR_FEATURES)`` time / frames
  (the code path ``push`` runs), and the Python-level
  ``StreamingExtractor.push`` of one hop-sized block, binding included.

Each figure is the best of ``repeat`` runs after one untimed warm-up call
(first calls build filter banks and caches on both sides).

Threads: every figure is single-threaded. :func:`run` limits the BLAS and
OpenMP pools of the libraries already loaded with
``threadpoolctl.threadpool_limits(1)``; the ``harmonies bench`` command also
re-executes itself in a child process whose environment sets
:data:`SINGLE_THREAD_ENV` (``OMP_NUM_THREADS=1`` ...) before numpy, numba or
librosa load. The C core itself never starts threads.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pyharmonies import __version__
from pyharmonies.parity import librosa_stft_kwargs
from pyharmonies.features import (
    FEATURE_NAMES,
    FRAME_VECTOR_FEATURES,
    FeatureConfig,
    StreamingExtractor,
    extract,
)

#: Environment of a single-threaded benchmark process.
SINGLE_THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}

#: The targets: speed-ups (reference time / ours) at least, per-hop cost at most.
TARGETS: dict[str, tuple[str, float, str]] = {
    # key: (comparison, bound, unit)
    "full_set_vs_librosa_per_feature": (">=", 10.0, "x"),
    "full_set_vs_librosa_shared_stft": (">=", 5.0, "x"),
    "log_mel_vs_librosa": (">=", 1.5, "x"),
    "c_core_per_hop": ("<=", 10.0, "us"),
}

# pyAudioAnalysis's guard against division by zero and log(0).
_PYAA_EPS = sys.float_info.epsilon
_PYAA_BLOCKS = 10


def synthetic_clip(seconds: float = 30.0, sample_rate: int = 22050, *, seed: int = 0) -> np.ndarray:
    """A deterministic, music-like test signal.

    A four-chord progression (Am F C G, two seconds each) of harmonic tones
    with plucked envelopes, a bass note on every beat at 120 bpm, short
    high-passed noise bursts between beats (a hi-hat) and a low noise floor.

    Parameters
    ----------
    seconds : float
        Duration; > 0.
    sample_rate : int
        Rate in Hz.
    seed : int
        Seed of the noise (the tones are fixed).

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32
        Peak-normalised to 0.8.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError(f"seconds and sample_rate must be positive, got {seconds}, {sample_rate}")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    y = np.zeros(n, dtype=np.float64)
    progression = ((57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62))  # MIDI notes
    chord_s, beat_s = 2.0, 0.5

    def hz(midi: int) -> float:
        return 440.0 * 2.0 ** ((midi - 69) / 12.0)

    def add_note(start: int, stop: int, f0: float, amp: float, decay_s: float, harmonics: int) -> None:
        stop = min(stop, n)
        if start >= stop:
            return
        t = np.arange(stop - start) / sample_rate
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / decay_s)
        tone = np.zeros_like(t)
        for h in range(1, harmonics + 1):
            if h * f0 < sample_rate / 2:
                tone += np.sin(2 * np.pi * h * f0 * t + 0.7 * h) / h**1.5
        y[start:stop] += amp * env * tone

    chord_len = int(round(chord_s * sample_rate))
    beat_len = int(round(beat_s * sample_rate))
    for k, start in enumerate(range(0, n, chord_len)):
        notes = progression[k % len(progression)]
        for m in notes:
            add_note(start, start + chord_len, hz(m), 0.25, 1.2, 5)
        for b in range(0, chord_len, beat_len):
            add_note(start + b, start + b + beat_len, hz(notes[0] - 24), 0.35, 0.25, 3)
    burst = int(0.04 * sample_rate)
    for start in range(beat_len // 2, n, beat_len):
        stop = min(start + burst, n)
        noise = np.diff(rng.standard_normal(stop - start + 1))  # first difference: a high-pass
        y[start:stop] += 0.15 * noise * np.exp(-np.arange(stop - start) / (0.01 * sample_rate))
    y += 0.005 * rng.standard_normal(n)
    peak = np.max(np.abs(y))
    return (0.8 * y / peak if peak > 0 else y).astype(np.float32)


def pyaudioanalysis_features(
    y: np.ndarray, config: FeatureConfig, magnitude: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """pyAudioAnalysis's energy entropy, spectral entropy and spectral flux in numpy.

    librosa has no such functions; this is how a librosa user would add
    them: vectorised over frames, following ``ShortTermFeatures`` (10
    sub-blocks; magnitudes ``|X[k]| / (n_fft/2)`` for ``k < n_fft/2``; flux
    of the sum-normalised magnitudes, 0 for the first frame).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    config : FeatureConfig
    magnitude : np.ndarray, shape (1 + n_fft/2, frames), optional
        ``|librosa.stft(y)|``; computed if omitted.

    Returns
    -------
    dict of str to np.ndarray, each shaped (1, frames)
    """
    import librosa

    n_fft, hop = config.n_fft, config.hop_length
    if magnitude is None:
        magnitude = np.abs(_stft(librosa, y, config))
    half = n_fft // 2
    # pyAudioAnalysis scales |X| by 1/half; every ratio below is scale-free, so
    # the scale moves into the eps terms instead of touching every bin.
    mag = magnitude[:half]
    # Spectral entropy: of the energies of 10 contiguous blocks of bins.
    spectral_entropy = _block_entropy(np.square(mag), eps_scale=float(half) ** 2)
    # Spectral flux: squared change of the sum-normalised magnitude (0 for the first frame).
    norm = mag / (mag.sum(axis=0) + half * half * _PYAA_EPS)
    flux = np.zeros(mag.shape[1], dtype=norm.dtype)
    step = np.diff(norm, axis=1)
    flux[1:] = np.einsum("ij,ij->j", step, step)
    # Energy entropy: of the energies of 10 contiguous blocks of each raw frame.
    padded = np.pad(y, n_fft // 2) if config.center else y
    frames = librosa.util.frame(padded, frame_length=n_fft, hop_length=hop)
    energy_entropy = _block_entropy(np.square(frames), eps_scale=1.0)
    return {
        "energy_entropy": energy_entropy[None, :],
        "spectral_entropy": spectral_entropy[None, :],
        "spectral_flux": flux[None, :],
    }


def _block_entropy(values: np.ndarray, eps_scale: float) -> np.ndarray:
    """Entropy (bits) of the shares of 10 contiguous blocks in each column's total.

    The rows past the last whole block count in the total only, as
    pyAudioAnalysis's truncation; ``eps_scale`` is the factor by which
    ``values`` exceed pyAudioAnalysis's (its eps guards the unscaled total).
    """
    n = values.shape[0]
    length = n // _PYAA_BLOCKS
    # One pass: rows [0, L), [L, 2L) ... [9L, 10L), then the tail [10L, n) if any.
    starts = list(range(0, _PYAA_BLOCKS * length, length))
    if n > _PYAA_BLOCKS * length:
        starts.append(_PYAA_BLOCKS * length)
    sums = np.add.reduceat(values, starts, axis=0, dtype=np.float64)
    total = sums.sum(axis=0)
    s = sums[:_PYAA_BLOCKS] / (total + eps_scale * _PYAA_EPS)
    return -np.sum(s * np.log2(s + _PYAA_EPS), axis=0)


def _stft(librosa: Any, y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    return librosa.stft(y, **librosa_stft_kwargs(config))


def _mel_kwargs(config: FeatureConfig) -> dict[str, Any]:
    return dict(n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, htk=config.htk)


def librosa_log_mel(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``power_to_db(melspectrogram(y=y), top_db=None)`` with the config's parameters."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=config.sample_rate, **librosa_stft_kwargs(config), **_mel_kwargs(config))
    return librosa.power_to_db(mel, ref=config.ref, amin=config.amin, top_db=None)


def librosa_per_feature(y: np.ndarray, config: FeatureConfig) -> dict[str, Callable[[], np.ndarray]]:
    """The full feature set as a librosa user computes it: one call per feature.

    Returns the calls, in order, so that each can be timed; ``log_mel``
    converts the ``mel`` computed just before it (a user keeps that), and
    ``mfcc(y=...)`` computes its own mel spectrogram (and clips at librosa's
    default ``top_db=80``, which changes values, not cost). The three
    pyAudioAnalysis features share one STFT of their own.
    """
    import librosa

    sr, stft, mel_kw = config.sample_rate, librosa_stft_kwargs(config), _mel_kwargs(config)
    frame_kw = dict(frame_length=config.n_fft, hop_length=config.hop_length, center=config.center)
    kept: dict[str, Any] = {}

    def mel() -> np.ndarray:
        kept["mel"] = librosa.feature.melspectrogram(y=y, sr=sr, **stft, **mel_kw)
        return kept["mel"]

    def log_mel() -> np.ndarray:
        mel_power = kept["mel"] if "mel" in kept else mel()
        return librosa.power_to_db(mel_power, ref=config.ref, amin=config.amin, top_db=None)

    def pyaa() -> dict[str, np.ndarray]:
        kept["pyaa"] = pyaudioanalysis_features(y, config)
        return kept["pyaa"]

    calls: dict[str, Callable[[], Any]] = {
        "mel": mel,
        "log_mel": log_mel,
        "mfcc": lambda: librosa.feature.mfcc(y=y, sr=sr, n_mfcc=config.n_mfcc, **stft, **mel_kw),
        "zcr": lambda: librosa.feature.zero_crossing_rate(y, **frame_kw),
        "rms": lambda: librosa.feature.rms(y=y, **frame_kw, pad_mode="constant"),
        "spectral_centroid": lambda: librosa.feature.spectral_centroid(y=y, sr=sr, **stft),
        "spectral_bandwidth": lambda: librosa.feature.spectral_bandwidth(y=y, sr=sr, **stft),
        "spectral_rolloff": lambda: librosa.feature.spectral_rolloff(y=y, sr=sr, roll_percent=0.85, **stft),
        "spectral_flatness": lambda: librosa.feature.spectral_flatness(y=y, amin=config.amin, power=2.0, **stft),
        "chroma": lambda: librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0, **stft),
        # numpy, from an STFT of their own (see pyaudioanalysis_features)
        "spectral_flux": lambda: pyaa()["spectral_flux"],
        "spectral_entropy": lambda: kept["pyaa"]["spectral_entropy"] if "pyaa" in kept else pyaa()["spectral_entropy"],
        "energy_entropy": lambda: kept["pyaa"]["energy_entropy"] if "pyaa" in kept else pyaa()["energy_entropy"],
    }
    return calls


def librosa_shared_stft(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """The full feature set the expert way: one STFT, reused by every spectral feature."""
    import librosa

    sr, n_fft = config.sample_rate, config.n_fft
    frame_kw = dict(frame_length=n_fft, hop_length=config.hop_length, center=config.center)
    S = np.abs(_stft(librosa, y, config))
    P = S**2
    mel = librosa.feature.melspectrogram(S=P, sr=sr, n_fft=n_fft, **_mel_kwargs(config))
    log_mel = librosa.power_to_db(mel, ref=config.ref, amin=config.amin, top_db=None)
    out = {
        "mfcc": librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc),
        "zcr": librosa.feature.zero_crossing_rate(y, **frame_kw),
        "rms": librosa.feature.rms(y=y, **frame_kw, pad_mode="constant"),
        "spectral_centroid": librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft, roll_percent=0.85),
        "spectral_flatness": librosa.feature.spectral_flatness(S=S, amin=config.amin, power=2.0),
        "mel": mel,
        "log_mel": log_mel,
        "chroma": librosa.feature.chroma_stft(S=P, sr=sr, n_fft=n_fft, tuning=0.0),
    }
    out.update(pyaudioanalysis_features(y, config, magnitude=S))
    return {name: out[name] for name in FEATURE_NAMES}


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time in seconds of ``repeat`` calls, after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(
    seconds: float = 30.0,
    repeat: int = 5,
    *,
    config: FeatureConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the C core against librosa; return every figure as a JSON-ready dict.

    Parameters
    ----------
    seconds : float
        Length of the synthetic clip; > 0.
    repeat : int
        Timed runs per figure (the best is kept); >= 1.
    config : FeatureConfig, optional
        The defaults if omitted.
    progress : callable, optional
        Called with a short message before each measurement.

    Returns
    -------
    dict
        ``machine``, ``threads``, ``clip``, ``config``, ``log_mel``,
        ``full_set``, ``streaming``, ``shapes``, ``targets`` and ``notes``;
        times in seconds (``*_s``) or microseconds (``*_us``). Figures that
        need librosa are ``None`` when it is not installed.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    config = config if config is not None else FeatureConfig()
    say = progress or (lambda message: None)
    y = synthetic_clip(seconds, config.sample_rate)
    frames = config.frames(y.size)
    try:
        import librosa
    except ImportError:
        librosa = None

    with _single_threaded() as threads:
        say("log_mel")
        ours_log_mel = best_of(lambda: extract(y, config, features=["log_mel"]), repeat)
        ref_log_mel = best_of(lambda: librosa_log_mel(y, config), repeat) if librosa else None

        say("full feature set")
        ours_full = best_of(lambda: extract(y, config), repeat)
        per_feature_s = shared_s = None
        breakdown: dict[str, float] = {}
        shapes: dict[str, dict[str, list[int]]] = {}
        agreement: dict[str, float] = {}
        if librosa:
            calls = librosa_per_feature(y, config)
            per_feature_s = best_of(lambda: [call() for call in calls.values()], repeat)
            say("librosa per-feature breakdown")
            # Per call: log_mel converts the mel already computed, the entropies reuse the
            # pyAudioAnalysis pass that spectral_flux times.
            breakdown = {name: best_of(call, repeat) for name, call in calls.items()}
            say("full feature set, shared STFT")
            shared_s = best_of(lambda: librosa_shared_stft(y, config), repeat)
            ours = extract(y, config)
            per_feature = {name: np.asarray(call()) for name, call in librosa_per_feature(y, config).items()}
            shared = librosa_shared_stft(y, config)
            shapes = {
                name: {
                    "harmonies": list(ours[name].shape),
                    "librosa_per_feature": list(per_feature[name].shape),
                    "librosa_shared_stft": list(shared[name].shape),
                }
                for name in FEATURE_NAMES
            }
            # Same definitions, same values: the largest difference relative to the feature's range.
            agreement = {
                name: float(np.max(np.abs(ours[name] - shared[name])) / max(float(np.max(np.abs(shared[name]))), 1e-30))
                for name in FEATURE_NAMES
            }

        say("streaming")
        fv_names = FRAME_VECTOR_FEATURES
        c_core_s = best_of(lambda: extract(y, config, features=fv_names), repeat)
        hop = config.hop_length
        blocks = [y[i : i + hop] for i in range(0, y.size - hop + 1, hop)]
        stream = StreamingExtractor(config, features=fv_names)

        def push_all() -> None:
            stream.reset()
            for block in blocks:
                stream.push(block)

        def push_rows_all() -> None:
            stream.reset()
            for block in blocks:
                stream.push_rows(block)

        push_s = best_of(push_all, repeat)
        push_rows_s = best_of(push_rows_all, repeat)

    def ratio(ref: float | None, ours: float) -> float | None:
        return None if ref is None else ref / ours

    figures = {
        "full_set_vs_librosa_per_feature": ratio(per_feature_s, ours_full),
        "full_set_vs_librosa_shared_stft": ratio(shared_s, ours_full),
        "log_mel_vs_librosa": ratio(ref_log_mel, ours_log_mel),
        "c_core_per_hop": c_core_s / frames * 1e6,
    }
    targets = []
    for key, (op, bound, unit) in TARGETS.items():
        value = figures[key]
        passed = None if value is None else (value >= bound if op == ">=" else value <= bound)
        targets.append({"name": key, "value": value, "target": f"{op} {bound:g} {unit}".replace(" x", "x"),
                        "unit": unit, "passed": passed})

    return {
        "harmonies_version": __version__,
        "machine": machine_info(),
        "threads": threads,
        "clip": {
            "signal": "synthetic_clip: Am-F-C-G harmonic tones, bass on each beat, noise bursts, noise floor",
            "seconds": y.size / config.sample_rate,
            "sample_rate": config.sample_rate,
            "samples": int(y.size),
            "frames": frames,
        },
        "config": config.to_dict(),
        "repeat": repeat,
        "timing": "best of `repeat` runs after one untimed warm-up, time.perf_counter, single-threaded",
        "log_mel": {
            "harmonies_s": ours_log_mel,
            "librosa_s": ref_log_mel,
            "speedup": figures["log_mel_vs_librosa"],
        },
        "full_set": {
            "features": list(FEATURE_NAMES),
            "harmonies_s": ours_full,
            "librosa_per_feature_s": per_feature_s,
            "librosa_shared_stft_s": shared_s,
            "speedup_vs_per_feature": figures["full_set_vs_librosa_per_feature"],
            "speedup_vs_shared_stft": figures["full_set_vs_librosa_shared_stft"],
            "librosa_per_feature_breakdown_s": breakdown,
        },
        "streaming": {
            "frame_vector_features": list(fv_names),
            "frame_vector_size": sum(config.feature_size(n) for n in fv_names),
            "hop_length": hop,
            "c_core_per_hop_us": figures["c_core_per_hop"],
            "push_per_block_us": push_s / len(blocks) * 1e6,
            "push_rows_per_block_us": push_rows_s / len(blocks) * 1e6,
            "blocks": len(blocks),
            "realtime_budget_per_hop_us": hop / config.sample_rate * 1e6,
        },
        "shapes": shapes,
        "max_rel_diff_vs_librosa_shared_stft": agreement,
        "shapes_match": None if not shapes else all(len({tuple(v) for v in s.values()}) == 1 for s in shapes.values()),
        "targets": targets,
        "notes": [
            "librosa has no energy_entropy, spectral_entropy or spectral_flux: both librosa forms add "
            "pyharmonies.bench.pyaudioanalysis_features, a vectorised numpy version of pyAudioAnalysis's "
            "definitions computed from an STFT (and the framed waveform for energy_entropy).",
            "librosa per feature: each call computes its own STFT from y; log_mel is power_to_db of the mel "
            "just computed; mfcc(y=...) applies librosa's default top_db=80 (same cost, other values).",
            "librosa shared STFT: one librosa.stft, S=|D| and S**2 reused by melspectrogram, mfcc(S=log_mel), "
            "chroma_stft, spectral_*; zcr and rms from y.",
            "c_core_per_hop_us: extract(features=FRAME_VECTOR_FEATURES) time / frames, the C code push runs. "
            "push_per_block_us: StreamingExtractor.push of one hop-sized block from Python (binding, "
            "argument checks and the dict of views included); push_rows skips the dict.",
            "Values agree with librosa within stated tolerances: see `harmonies parity`.",
        ],
    }


class _single_threaded:
    """Limit the thread pools of loaded libraries to one; report the settings."""

    def __enter__(self) -> dict[str, Any]:
        self._limits = None
        info: dict[str, Any] = {
            "env": {name: os.environ.get(name) for name in SINGLE_THREAD_ENV},
            "method": "",
            "pools": [],
        }
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:
            info["method"] = "environment only (threadpoolctl not installed)"
            return info
        self._limits = threadpool_limits(limits=1)
        info["method"] = "threadpoolctl.threadpool_limits(1)" + (
            " in a process started with " + ", ".join(f"{k}=1" for k in SINGLE_THREAD_ENV)
            if all(os.environ.get(k) == "1" for k in SINGLE_THREAD_ENV)
            else ""
        )
        info["pools"] = [
            {"api": p.get("internal_api"), "num_threads": p.get("num_threads"), "version": p.get("version")}
            for p in threadpool_info()
        ]
        return info

    def __exit__(self, *exc: object) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()


def machine_info() -> dict[str, Any]:
    """CPU model, cores, OS and the versions of the libraries compared."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("librosa", "scipy", "soxr", "soundfile"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            info[name] = None
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def format_report(result: Mapping[str, Any]) -> str:
    """The figures of :func:`run` as a readable table."""

    def ms(s: float | None) -> str:
        return "-" if s is None else f"{s * 1e3:.2f} ms"

    def x(r: float | None) -> str:
        return "-" if r is None else f"{r:.2f}x"

    def status(key: str) -> str:
        t = next(t for t in result["targets"] if t["name"] == key)
        return f"{t['target']:>8}  " + ("n/a (no librosa)" if t["passed"] is None else "PASS" if t["passed"] else "MISS")

    m, clip, full, lm, st = result["machine"], result["clip"], result["full_set"], result["log_mel"], result["streaming"]
    n_feat = len(full["features"])
    rows = [
        ("log_mel", ms(lm["harmonies_s"]), "librosa", ms(lm["librosa_s"]), x(lm["speedup"]), status("log_mel_vs_librosa")),
        (f"all {n_feat} features", ms(full["harmonies_s"]), "librosa, per feature",
         ms(full["librosa_per_feature_s"]), x(full["speedup_vs_per_feature"]),
         status("full_set_vs_librosa_per_feature")),
        (f"all {n_feat} features", ms(full["harmonies_s"]), "librosa, shared STFT",
         ms(full["librosa_shared_stft_s"]), x(full["speedup_vs_shared_stft"]),
         status("full_set_vs_librosa_shared_stft")),
    ]
    header = ("measure", "harmonies", "reference", "time", "speed-up", "target    result")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        aligns = "<><>><"
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)).rstrip()

    lines = [
        f"harmonies {result['harmonies_version']} bench: {clip['seconds']:.1f} s synthetic clip at "
        f"{clip['sample_rate']} Hz, {clip['frames']} frames, best of {result['repeat']}, single-threaded",
        f"CPU: {m['cpu']} ({m['logical_cpus']} logical); Python {m['python']}, numpy {m['numpy']}, "
        f"librosa {m['librosa'] or 'not installed'}",
        f"threads: {result['threads']['method']}",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
        "",
        f"streaming, frame vector ({st['frame_vector_size']} values) per {st['hop_length']}-sample hop "
        f"(real-time budget {st['realtime_budget_per_hop_us']:.0f} us):",
        f"  C core (extract time / frames)         {st['c_core_per_hop_us']:8.2f} us   {status('c_core_per_hop')}",
        f"  StreamingExtractor.push from Python    {st['push_per_block_us']:8.2f} us   (binding included; info)",
        f"  StreamingExtractor.push_rows           {st['push_rows_per_block_us']:8.2f} us   (no dict of views; info)",
    ]
    if full["librosa_per_feature_breakdown_s"]:
        parts = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in full["librosa_per_feature_breakdown_s"].items())
        lines += ["", f"librosa per-feature calls (ms): {parts}"]
    if result["shapes_match"] is not None:
        lines.append(
            "shapes: " + ("every feature matches librosa's (n, frames)" if result["shapes_match"]
                          else "MISMATCH with librosa, see --json 'shapes'")
        )
        agreement = result["max_rel_diff_vs_librosa_shared_stft"]
        worst = max(agreement, key=agreement.get)
        lines.append(f"values: largest difference from the shared-STFT form {agreement[worst]:.1e} of the "
                     f"feature's range ({worst}); `harmonies parity` checks each tolerance")
    return "\n".join(lines)
