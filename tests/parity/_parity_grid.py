"""The parity suite's signals, configurations and result cache.

Each test module parametrises over :data:`MEL_CASES` (mel, log_mel, mfcc:
every signal x sample rate x n_fft x n_mels x mel scale) or
:data:`STFT_CASES` (the rest, which do not depend on the mel bank: every
signal x sample rate x n_fft), plus :data:`EXTRA_CASES` (hop not dividing
n_fft, short windows, no centring, a mel sub-band, other dB settings).
Signals are generated once per session (:class:`SignalBank`), and each
(signal, config, feature group) is compared once (:class:`ParityRuns`):
the tests of one group read the same :class:`~pyharmonies.parity.ParityResult` list.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.parity import ParityResult, compare

SAMPLE_RATES = (16000, 22050, 44100)
N_FFTS = (512, 1024, 2048)
N_MELS = (40, 64, 128)
HTK = (False, True)

#: Seconds of the full-length signals: long enough for dozens of frames at
#: every rate, short enough for the whole grid to run in about a minute.
DURATION = 1.25

#: Full-length signals.
LONG_SIGNALS = ("noise", "chirp", "tones_with_gaps", "mid_waveform")
#: Inputs shorter than n_fft: 1 sample, 100 samples, n_fft // 2 + 3 samples.
SHORT_SIGNALS = ("one_sample", "hundred_samples", "half_fft_plus_3")
SIGNALS = LONG_SIGNALS + SHORT_SIGNALS


class SignalBank:
    """The test signals, each generated once per (name, sample rate[, n_fft])."""

    def __init__(self, seed: int):
        self.seed = seed
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def get(self, name: str, sr: int, n_fft: int) -> np.ndarray:
        # Only the short signal n_fft // 2 + 3 depends on n_fft.
        key = (name, sr, n_fft if name == "half_fft_plus_3" else 0)
        if key not in self._cache:
            self._cache[key] = _make_signal(name, sr, n_fft, self.seed)
        return self._cache[key]


def _make_signal(name: str, sr: int, n_fft: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, sr, SIGNALS.index(name)])
    n = int(round(DURATION * sr))
    t = np.arange(n) / sr
    if name == "noise":
        y = 0.1 * rng.standard_normal(n)
    elif name == "chirp":
        # Linear sweep 30 Hz -> 0.45 sr: crosses every mel band and chroma bin.
        f0, f1 = 30.0, 0.45 * sr
        y = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * DURATION)))
    elif name == "tones_with_gaps":
        # Two harmonic tones (A3, E4, five partials each), switched off to exact zeros
        # for 0.2 s twice: longer than any frame, so some frames are entirely silent.
        y = sum(0.15 / h * np.sin(2 * np.pi * f * h * t + h) for f in (220.0, 329.63) for h in range(1, 6))
        y[(t >= 0.3) & (t < 0.5)] = 0.0
        y[(t >= 0.8) & (t < 1.0)] = 0.0
    elif name == "mid_waveform":
        # Cut from a longer recording: first and last samples far from zero, which
        # tells zero padding (stft, rms) from edge padding (zcr) at both ends.
        y = 0.6 * np.sin(2 * np.pi * 441.3 * t + 1.1) + 0.05 * rng.standard_normal(n)
        y[0], y[-1] = 0.7, -0.65
    elif name == "one_sample":
        y = np.array([0.4])
    elif name == "hundred_samples":
        y = 0.3 * rng.standard_normal(100)
    elif name == "half_fft_plus_3":
        y = 0.3 * rng.standard_normal(n_fft // 2 + 3)
    else:
        raise KeyError(name)
    return np.ascontiguousarray(y, dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Case:
    """One signal under one configuration."""

    signal: str
    config: FeatureConfig
    label: str

    def __str__(self) -> str:
        return f"{self.signal}-{self.label}"


def _label(sr: int, n_fft: int, n_mels: int | None = None, htk: bool | None = None) -> str:
    parts = [f"sr{sr}", f"nfft{n_fft}"]
    if n_mels is not None:
        parts += [f"mels{n_mels}", "htk" if htk else "slaney"]
    return "-".join(parts)


def _grid_config(sr: int, n_fft: int, n_mels: int = 64, htk: bool = False) -> FeatureConfig:
    # hop = n_fft / 4 (librosa's convention): every sample is in four frames.
    return FeatureConfig(sample_rate=sr, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels, htk=htk)


def _mel_grid() -> tuple[list[Case], list[tuple[int, int, int, bool]]]:
    cases, empty = [], []
    for sr, n_fft, n_mels, htk in itertools.product(SAMPLE_RATES, N_FFTS, N_MELS, HTK):
        try:
            config = _grid_config(sr, n_fft, n_mels, htk)
        except ParameterError:
            # Covered by test_empty_mel_filters_are_refused_like_librosa, not skipped.
            empty.append((sr, n_fft, n_mels, htk))
            continue
        cases += [Case(s, config, _label(sr, n_fft, n_mels, htk)) for s in SIGNALS]
    return cases, empty


#: mel, log_mel, mfcc: the full product (configurations with an empty mel band excluded).
MEL_CASES, EMPTY_MEL_CONFIGS = _mel_grid()

#: Every (sr, n_fft, n_mels, htk) of the mel grid, valid or not.
MEL_GRID_PARAMS = list(itertools.product(SAMPLE_RATES, N_FFTS, N_MELS, HTK))

#: Features that do not depend on the mel bank: signals x sample rates x n_fft.
STFT_CASES = [
    Case(s, _grid_config(sr, n_fft), _label(sr, n_fft))
    for sr, n_fft in itertools.product(SAMPLE_RATES, N_FFTS)
    for s in SIGNALS
]

#: Configurations off the main grid, for every feature.
EXTRA_CONFIGS = {
    # hop_length does not divide n_fft: frame starts fall on every phase of the buffer.
    "hop300": FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=300),
    # win_length < n_fft, odd: the window is centred with the extra zero on the right.
    "win777": FeatureConfig(sample_rate=22050, n_fft=1024, win_length=777, hop_length=256),
    "win1000-nfft2048": FeatureConfig(sample_rate=44100, n_fft=2048, win_length=1000, hop_length=441),
    # No centring: frames start at t * hop; inputs shorter than n_fft give no frames.
    "nocenter": FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, center=False),
    "nocenter-hop300": FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=300, center=False),
    # A mel sub-band, both scales.
    "band60-8000": FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=256, n_mels=64, fmin=60.0, fmax=8000.0),
    "band60-8000-htk": FeatureConfig(
        sample_rate=44100, n_fft=2048, hop_length=512, n_mels=128, fmin=60.0, fmax=8000.0, htk=True
    ),
    # Other dB reference, floor and MFCC count.
    "ref0.5-amin1e-8-mfcc13": FeatureConfig(
        sample_rate=22050, n_fft=1024, hop_length=256, ref=0.5, amin=1e-8, n_mfcc=13
    ),
}

EXTRA_CASES = [Case(s, config, label) for label, config in EXTRA_CONFIGS.items() for s in SIGNALS]


class ParityRuns:
    """compare() once per (case, feature group); every result kept for the summary."""

    def __init__(self, signals: SignalBank):
        self.signals = signals
        self._cache: dict[tuple[Case, tuple[str, ...]], dict[str, ParityResult]] = {}
        #: feature -> [(case, result)], for the end-of-session summary.
        self.results: dict[str, list[tuple[Case, ParityResult]]] = defaultdict(list)

    def signal(self, case: Case) -> np.ndarray:
        return self.signals.get(case.signal, case.config.sample_rate, case.config.n_fft)

    def result(self, case: Case, feature: str, group: tuple[str, ...]) -> ParityResult:
        key = (case, group)
        if key not in self._cache:
            results = compare(self.signal(case), case.config, features=group)
            self._cache[key] = {r.feature: r for r in results}
            for r in results:
                self.results[r.feature].append((case, r))
        return self._cache[key][feature]


def explain(case: Case, result: ParityResult) -> str:
    """The assertion message of a failed comparison."""
    tol = result.tolerance
    return (
        f"{result.feature} differs from {result.reference} on {case} ({case.config.to_json()}): "
        f"{result.detail}; frames ours {result.frames} / reference {result.ref_frames}, "
        f"max_abs {result.max_abs:.3g}, max_rel {result.max_rel:.3g}; "
        f"tolerance {tol.kind} rtol={tol.rtol:g} atol={tol.atol:g} ({tol.note})"
    )


#: Filled by the parity tests, printed at the end of the session by conftest.py.
RUNS: ParityRuns | None = None
