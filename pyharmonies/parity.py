"""Conformance of the C features with their reference implementations.

Every feature of :mod:`pyharmonies.features` follows a reference: librosa
for most, pyAudioAnalysis's ``ShortTermFeatures`` for ``energy_entropy``,
``spectral_entropy`` and ``spectral_flux``. :func:`compare` computes our
features (float32, the C core) and the references (float64, on the same
samples) and judges each feature with its :data:`TOLERANCES` entry. The test
suite (``tests/parity/``) and the ``harmonies parity AUDIO...`` command both
use it, so a file that passes the command passes the suite's criteria.

librosa (and pyAudioAnalysis, when installed) are imported only when a
reference is computed: this module imports with the device-side
dependencies alone. Install the references with ``pip install harmonies[test]``.

Examples
--------
>>> import numpy as np
>>> from pyharmonies.parity import compare
>>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
>>> all(r.passed for r in compare(y))   # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pyharmonies.features import (
    FEATURE_NAMES,
    PYAUDIOANALYSIS_FEATURES,
    FeatureConfig,
    _check_names,
    extract,
)

__all__ = [
    "LIBROSA_FEATURES",
    "NUMPY_PYAA_REFERENCE",
    "TOLERANCES",
    "ParityResult",
    "Tolerance",
    "compare",
    "reference",
]

#: Features whose reference is librosa (the rest follow pyAudioAnalysis).
LIBROSA_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in PYAUDIOANALYSIS_FEATURES)

#: The ``reference`` label of results computed without pyAudioAnalysis.
NUMPY_PYAA_REFERENCE = "numpy reference of pyAudioAnalysis formulas"

#: log_mel values are compared only within this many dB of the clip's peak.
DB_RANGE = 80.0

#: librosa's ``spectral_rolloff`` default, and ours.
ROLL_PERCENT = 0.85

#: pyAudioAnalysis's ``n_short_blocks`` (energy and spectral entropy).
ENTROPY_BLOCKS = 10

#: pyAudioAnalysis's ``eps``: ``sys.float_info.epsilon``.
PYAA_EPS = float(np.finfo(np.float64).eps)

_INSTALL_HINT = "pip install 'harmonies[test]'"


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How closely one feature must follow its reference, and why.

    Attributes
    ----------
    kind : str
        ``"linear"``: ``|ours - ref| <= atol + rtol * |ref|`` elementwise.
        ``"db"``: ``|ours - ref| <= atol`` on the values with
        ``ref >= max(ref) - 80 dB`` (the clip's peak); lower values are
        not compared.
        ``"absolute"``: ``|ours - ref| <= atol``.
        ``"rolloff"``: the same FFT bin, except at a tie: every bin from the
        lower of the two up to (not including) the higher has a reference
        cumulative magnitude within ``rtol`` (relative) of the threshold.
    rtol, atol : float
        The bounds above (``atol`` in dB for ``"db"``).
    note : str
        The reason for the bound.
    """

    kind: str
    rtol: float
    atol: float
    note: str


_LINEAR_NOTE = (
    "float32 C (float32 FFT, float32 or float64 sums) against float64 {ref}: about 1e-6 "
    "relative error is expected, 1e-3 leaves room for sums over thousands of bins; "
    "1e-6 absolute covers values near zero, where relative error is meaningless "
    "(partly silent frames, bands far from the signal)"
)

#: The tolerance of every feature in :data:`FEATURE_NAMES`, with its reason.
TOLERANCES: dict[str, Tolerance] = {
    "mel": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "log_mel": Tolerance(
        "db",
        0.0,
        0.05,
        "within 0.05 dB, compared only where the reference is within 80 dB of the clip's "
        "peak: the float32 FFT's rounding floor lies about 130 dB below a frame's peak, so "
        "values far below the peak are not meaningful at float32 (0.05 dB is a 1.2 % power "
        "error, far above float32 rounding where the values are meaningful)",
    ),
    "mfcc": Tolerance(
        "absolute",
        0.0,
        0.05,
        "within 0.05 absolute: a DCT (orthonormal) of log_mel, so an error of e dB in every "
        "band moves a coefficient by at most about e * sqrt(n_mels); the reference is mfcc "
        "of power_to_db(mel, top_db=None) because librosa.feature.mfcc(y=...) clips at "
        "top_db=80, which our contract omits (it depends on the whole clip)",
    ),
    "zcr": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "rms": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "spectral_centroid": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "spectral_bandwidth": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "spectral_rolloff": Tolerance(
        "rolloff",
        1e-5,
        0.0,
        "the same bin as librosa, except a one-bin flip at a tie: where the reference's "
        "cumulative magnitude at the boundary bins is within 1e-5 (relative) of the 85 % "
        "threshold, float32 rounding of the spectrum can legitimately put the first bin "
        "that reaches it on either side; verified on the reference's own cumsum",
    ),
    "spectral_flatness": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "chroma": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="librosa")),
    "energy_entropy": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="pyAudioAnalysis")),
    "spectral_entropy": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="pyAudioAnalysis")),
    "spectral_flux": Tolerance("linear", 1e-3, 1e-6, _LINEAR_NOTE.format(ref="pyAudioAnalysis")),
}


@dataclasses.dataclass
class ParityResult:
    """One feature of one signal, ours against the reference.

    Attributes
    ----------
    feature : str
    frames, ref_frames : int
        Frame counts, ours and the reference's; they must be equal.
    compared : int
        Values compared (for ``log_mel``, only those within 80 dB of the peak).
    max_abs : float
        Largest ``|ours - ref|`` over the compared values (Hz for rolloff, tie
        flips included; ``inf`` if the shapes differ, ``nan`` if nothing was compared).
    max_rel : float
        Largest ``|ours - ref| / |ref|`` over the compared values where it
        means something: ``|ref| >= atol / rtol`` (where the relative bound
        governs) for linear features, ``|ref| >= 1`` for log_mel (dB) and
        mfcc, ``ref != 0`` for rolloff (Hz). Informative: ``passed`` applies
        the tolerance itself.
    tolerance : Tolerance
    passed : bool
    reference : str
        ``"librosa 0.11.0"``, ``"pyAudioAnalysis 0.3.14"`` or
        :data:`NUMPY_PYAA_REFERENCE`.
    detail : str
        Why it failed (worst frame and row, counts), or the worst value when it passed.
    """

    feature: str
    frames: int
    ref_frames: int
    compared: int
    max_abs: float
    max_rel: float
    tolerance: Tolerance
    passed: bool
    reference: str
    detail: str


# --------------------------------------------------------------------------
# The references


def _librosa() -> Any:
    try:
        import librosa
    except ImportError as err:
        raise ImportError(f"the parity references need librosa: {_INSTALL_HINT}") from err
    return librosa


def _pyaudioanalysis() -> Any | None:
    """pyAudioAnalysis's ShortTermFeatures, or None where it is not installed."""
    try:
        with warnings.catch_warnings():
            # Its own import of scipy.fftpack.realtransforms (deprecated in SciPy 1.x);
            # nothing that we call depends on it.
            warnings.filterwarnings(
                "ignore",
                message=r"Please import `dct` from the `scipy\.fftpack` namespace",
                category=DeprecationWarning,
            )
            from pyAudioAnalysis import ShortTermFeatures
    except ImportError:
        return None
    return ShortTermFeatures


def _distribution_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown version"


@contextlib.contextmanager
def _expected_librosa_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        # Inputs shorter than n_fft (centred): librosa warns, then zero-pads them as the
        # contract says, so the frames it computes are the ones to compare with ours.
        warnings.filterwarnings(
            "ignore", message=r"n_fft=\d+ is too large for input signal of length=\d+", category=UserWarning
        )
        # "Empty filters detected in mel frequency basis" is deliberately NOT ignored:
        # FeatureConfig refuses exactly the configurations librosa warns about (the same
        # test: a band with no nonzero weight whose lower edge is not 0 Hz), so for a
        # valid config the warning would reveal a disagreement, not an expected case.
        yield


class _References:
    """The references of one signal and config; shares intermediate results."""

    def __init__(self, y: np.ndarray, config: FeatureConfig):
        self.y = y
        self.config = config
        self._cache: dict[str, np.ndarray] = {}

    # ---- framing shared by the pyAudioAnalysis references (librosa's framing) ----

    def too_short(self) -> bool:
        """True where librosa refuses the input: no centring and fewer than n_fft samples."""
        return not self.config.center and self.y.shape[0] < self.config.n_fft

    def frames(self) -> np.ndarray:
        """(frames, n_fft) raw frames, zero-padded by n_fft // 2 each side if centred."""
        c = self.config
        y = np.pad(self.y, c.n_fft // 2) if c.center else self.y
        if y.shape[0] < c.n_fft:
            return np.zeros((0, c.n_fft))
        return np.lib.stride_tricks.sliding_window_view(y, c.n_fft)[:: c.hop_length]

    def window(self) -> np.ndarray:
        """Periodic Hann of win_length, centred in n_fft: librosa's own window."""
        librosa = _librosa()
        c = self.config
        return librosa.util.pad_center(librosa.filters.get_window("hann", c.win_length, fftbins=True), size=c.n_fft)

    def pyaa_magnitude(self) -> np.ndarray:
        """(frames, n_fft/2): |rfft(window * frame)|[:n_fft/2] / (n_fft/2), as pyAudioAnalysis."""
        if "pyaa_mag" not in self._cache:
            half = self.config.n_fft // 2
            spectrum = np.fft.rfft(self.frames() * self.window(), axis=1)
            self._cache["pyaa_mag"] = np.abs(spectrum)[:, :half] / half
        return self._cache["pyaa_mag"]

    # ---- librosa ----

    def stft_kwargs(self) -> dict[str, Any]:
        return librosa_stft_kwargs(self.config)

    def magnitude(self) -> np.ndarray:
        """|STFT| (bins, frames) as librosa's spectral features compute it."""
        if "magnitude" not in self._cache:
            librosa = _librosa()
            with _expected_librosa_warnings():
                self._cache["magnitude"] = np.abs(librosa.stft(self.y, **self.stft_kwargs()))
        return self._cache["magnitude"]

    def librosa_feature(self, name: str) -> np.ndarray:
        if name in self._cache:
            return self._cache[name]
        c = self.config
        if self.too_short():
            # librosa raises ParameterError here (it cannot frame the input); the count
            # it defines, 1 + (n - n_fft) // hop, is negative: no frames.
            return np.zeros((c.feature_size(name), 0))
        librosa = _librosa()
        stft = self.stft_kwargs()
        with _expected_librosa_warnings():
            if name == "mel":
                out = librosa.feature.melspectrogram(
                    y=self.y,
                    sr=c.sample_rate,
                    power=2.0,
                    n_mels=c.n_mels,
                    fmin=c.fmin,
                    fmax=c.fmax,
                    htk=c.htk,
                    norm="slaney",
                    **stft,
                )
            elif name == "log_mel":
                # top_db=None: the contract has no top_db clipping (a stream never sees the
                # whole clip's maximum).
                out = librosa.power_to_db(self.librosa_feature("mel"), ref=c.ref, amin=c.amin, top_db=None)
            elif name == "mfcc":
                # From S: librosa.feature.mfcc(y=...) would apply power_to_db's default
                # top_db=80, which the contract deliberately omits.
                out = librosa.feature.mfcc(
                    S=self.librosa_feature("log_mel"), n_mfcc=c.n_mfcc, dct_type=2, norm="ortho", lifter=0
                )
            elif name == "zcr":
                # librosa pads zcr's frames with edge values (no pad_mode argument).
                out = librosa.feature.zero_crossing_rate(
                    self.y, frame_length=c.n_fft, hop_length=c.hop_length, center=c.center
                )
            elif name == "rms":
                out = librosa.feature.rms(
                    y=self.y, frame_length=c.n_fft, hop_length=c.hop_length, center=c.center, pad_mode="constant"
                )
            elif name == "spectral_centroid":
                out = librosa.feature.spectral_centroid(y=self.y, sr=c.sample_rate, **stft)
            elif name == "spectral_bandwidth":
                out = librosa.feature.spectral_bandwidth(y=self.y, sr=c.sample_rate, **stft)
            elif name == "spectral_rolloff":
                out = librosa.feature.spectral_rolloff(
                    y=self.y, sr=c.sample_rate, roll_percent=ROLL_PERCENT, **stft
                )
            elif name == "spectral_flatness":
                out = librosa.feature.spectral_flatness(y=self.y, amin=c.amin, power=2.0, **stft)
            elif name == "chroma":
                out = librosa.feature.chroma_stft(
                    y=self.y, sr=c.sample_rate, tuning=0.0, norm=np.inf, n_chroma=12, **stft
                )
            else:  # pragma: no cover - guarded by the callers
                raise KeyError(name)
        self._cache[name] = np.asarray(out, dtype=np.float64)
        return self._cache[name]

    # ---- pyAudioAnalysis ----

    def pyaa_feature(self, name: str) -> tuple[np.ndarray, str]:
        st = _pyaudioanalysis()
        if st is None:
            energy_entropy, spectral_entropy, spectral_flux = (
                _np_energy_entropy,
                _np_spectral_entropy,
                _np_spectral_flux,
            )
            label = NUMPY_PYAA_REFERENCE
        else:
            energy_entropy, spectral_entropy, spectral_flux = (
                st.energy_entropy,
                st.spectral_entropy,
                st.spectral_flux,
            )
            label = f"pyAudioAnalysis {_distribution_version('pyAudioAnalysis')}"
        if name == "energy_entropy":
            values = [energy_entropy(frame, ENTROPY_BLOCKS) for frame in self.frames()]
        elif name == "spectral_entropy":
            values = [spectral_entropy(mag, ENTROPY_BLOCKS) for mag in self.pyaa_magnitude()]
        elif name == "spectral_flux":
            mags = self.pyaa_magnitude()
            # The first frame is compared with itself: flux 0, as ours.
            values = [spectral_flux(mag, mags[t - 1] if t > 0 else mag) for t, mag in enumerate(mags)]
        else:  # pragma: no cover - guarded by the callers
            raise KeyError(name)
        return np.asarray(values, dtype=np.float64).reshape(1, -1), label

    def get(self, name: str) -> tuple[np.ndarray, str]:
        """(reference (n, frames), label of the implementation used)."""
        if name in PYAUDIOANALYSIS_FEATURES:
            return self.pyaa_feature(name)
        return self.librosa_feature(name), f"librosa {_librosa().__version__}"


# The pyAudioAnalysis 0.3.14 formulas, for when it is not installed. Same
# operations, same eps, same truncation of the tail to whole blocks (the total
# energy still counts the whole frame).


def _np_energy_entropy(frame: np.ndarray, n_short_blocks: int = ENTROPY_BLOCKS) -> float:
    frame_energy = np.sum(frame**2)
    sub_win_len = frame.shape[0] // n_short_blocks
    blocks = frame[: sub_win_len * n_short_blocks].reshape(n_short_blocks, sub_win_len)
    s = np.sum(blocks**2, axis=1) / (frame_energy + PYAA_EPS)
    return float(-np.sum(s * np.log2(s + PYAA_EPS)))


def _np_spectral_entropy(mag: np.ndarray, n_short_blocks: int = ENTROPY_BLOCKS) -> float:
    # pyAudioAnalysis's spectral entropy is the same computation on |X|.
    return _np_energy_entropy(mag, n_short_blocks)


def _np_spectral_flux(mag: np.ndarray, prev: np.ndarray) -> float:
    fft_sum = np.sum(mag + PYAA_EPS)
    prev_sum = np.sum(prev + PYAA_EPS)
    return float(np.sum((mag / fft_sum - prev / prev_sum) ** 2))


def librosa_stft_kwargs(config: FeatureConfig) -> dict[str, Any]:
    """The keyword arguments of librosa's STFT-based functions for this config."""
    return dict(
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window="hann",
        center=config.center,
        pad_mode="constant",
    )


def _as_float32(y: Any) -> np.ndarray:
    """The samples our extractor sees: float32 (int16 PCM scaled by 1/32768, as extract)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D mono signal, got shape {y.shape}")
    if y.dtype == np.int16:
        return y.astype(np.float32) * np.float32(1.0 / 32768.0)
    if y.dtype not in (np.float32, np.float64):
        raise TypeError(f"y must be float32, float64 or int16 PCM, got dtype {y.dtype}")
    return y.astype(np.float32)


def reference(name: str, y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The reference of one feature, shaped ``(n, frames)`` like ours.

    Parameters
    ----------
    name : str
        A name from :data:`FEATURE_NAMES`.
    y : np.ndarray, shape (n_samples,)
        Mono samples; computed in float64.
    config : FeatureConfig
        Every field that applies is passed on (sample rate, FFT and window
        sizes, hop, centring with zero padding, mel bank, dB ``ref``/``amin``).

    Returns
    -------
    np.ndarray, float64, shape (n, frames)
        librosa's feature, or pyAudioAnalysis's (its NumPy transcription if
        pyAudioAnalysis is not installed) on our frames. Without centring, an
        input shorter than ``n_fft`` (which librosa refuses) gives no frames.

    Raises
    ------
    ImportError
        librosa is not installed (``pip install harmonies[test]``).
    """
    (name,) = _check_names([name])
    y64 = np.asarray(y, dtype=np.float64)
    if y64.ndim != 1:
        raise ValueError(f"y must be a 1-D mono signal, got shape {y64.shape}")
    return _References(y64, config).get(name)[0]


# --------------------------------------------------------------------------
# The judgement


def _where(index: tuple[int, int]) -> str:
    return f"frame {index[1]}, row {index[0]}"


def _judge(name: str, ours: np.ndarray, refs: _References, tol: Tolerance) -> ParityResult:
    ref, label = refs.get(name)
    a = np.asarray(ours, dtype=np.float64)
    frames, ref_frames = a.shape[1], ref.shape[1]
    base = dict(feature=name, frames=frames, ref_frames=ref_frames, tolerance=tol, reference=label)
    if a.shape != ref.shape:
        detail = f"shape differs: ours {a.shape}, reference {ref.shape} (frame counts must be identical)"
        return ParityResult(**base, compared=0, max_abs=math.inf, max_rel=math.inf, passed=False, detail=detail)
    if a.size == 0:
        detail = "no frames in either (equal counts)"
        return ParityResult(**base, compared=0, max_abs=math.nan, max_rel=math.nan, passed=True, detail=detail)

    diff = np.abs(a - ref)
    mask = np.ones(a.shape, dtype=bool)
    # max_rel is informative only; dB values and MFCCs cross zero, so for them it is
    # taken over values of magnitude >= 1 (dB, coefficient units).
    rel_floor = 1.0
    if tol.kind == "linear":
        allowed = tol.atol + tol.rtol * np.abs(ref)
        rel_floor = tol.atol / tol.rtol
    elif tol.kind == "db":
        peak = float(ref.max())
        mask = ref >= peak - DB_RANGE
        allowed = np.full(a.shape, tol.atol)
    elif tol.kind == "absolute":
        allowed = np.full(a.shape, tol.atol)
    elif tol.kind == "rolloff":
        return _judge_rolloff(a, ref, refs, tol, base, diff)
    else:  # pragma: no cover - TOLERANCES is fixed
        raise ValueError(f"unknown tolerance kind {tol.kind!r}")

    # NaN compares false: a NaN on either side fails.
    bad = mask & ~(diff <= allowed)
    compared = int(mask.sum())
    d = np.where(mask, diff, -np.inf)
    d = np.where(np.isnan(d), np.inf, d)
    worst = np.unravel_index(int(np.argmax(d)), a.shape)
    rel_ok = mask & (np.abs(ref) >= rel_floor) & (ref != 0)
    max_abs = float(np.max(diff[mask])) if compared else math.nan
    max_rel = float(np.max(diff[rel_ok] / np.abs(ref[rel_ok]))) if rel_ok.any() else 0.0
    if np.isnan(diff[mask]).any():
        max_abs = max_rel = math.nan
    where = (
        f"worst at {_where(worst)}: ours {a[worst]:.9g}, reference {ref[worst]:.9g}, "
        f"|diff| {diff[worst]:.3g}, allowed {allowed[worst]:.3g}"
    )
    if tol.kind == "db":
        peak_db = float(ref.max())
        where += f"; compared {compared} of {a.size} values (reference >= peak {peak_db:.2f} dB - {DB_RANGE:g})"
    n_bad = int(bad.sum())
    detail = (f"{n_bad} of {compared} values outside tolerance; " if n_bad else "") + where
    return ParityResult(**base, compared=compared, max_abs=max_abs, max_rel=max_rel, passed=n_bad == 0, detail=detail)


def _judge_rolloff(
    a: np.ndarray, ref: np.ndarray, refs: _References, tol: Tolerance, base: dict[str, Any], diff: np.ndarray
) -> ParityResult:
    c = refs.config
    bin_hz = c.sample_rate / c.n_fft
    k_ours = np.rint(a[0] / bin_hz).astype(np.int64)
    k_ref = np.rint(ref[0] / bin_hz).astype(np.int64)
    # Ours must be a bin frequency exactly (to float32 rounding).
    off_grid = np.abs(a[0] - k_ours * bin_hz) > 1e-3 * bin_hz
    flips = np.flatnonzero(k_ours != k_ref)
    failures: list[str] = []
    ties = 0
    if flips.size:
        mag = refs.magnitude()
        for t in flips:
            cum = np.cumsum(mag[:, t])
            threshold = ROLL_PERCENT * cum[-1]
            lo, hi = sorted((int(k_ours[t]), int(k_ref[t])))
            if threshold > 0:
                distance = np.abs(cum[lo:hi] - threshold) / threshold
                if np.all(distance <= tol.rtol):
                    ties += 1
                    continue
                dist_text = f"{float(distance.max()):.3g}"
            else:
                dist_text = "inf (silent frame)"
            failures.append(
                f"frame {t}: ours bin {k_ours[t]}, reference bin {k_ref[t]}, cumsum distance "
                f"from the threshold up to {dist_text} (> {tol.rtol:g})"
            )
    for t in np.flatnonzero(off_grid):
        failures.append(f"frame {t}: ours {a[0, t]:.9g} Hz is not a bin frequency")
    nonzero = ref != 0
    max_rel = float(np.max(diff[nonzero] / np.abs(ref[nonzero]))) if nonzero.any() else 0.0
    detail = f"{flips.size} of {a.shape[1]} frames on another bin, {ties} of them ties within {tol.rtol:g}"
    if failures:
        shown = "; ".join(failures[:5]) + (f"; ... {len(failures) - 5} more" if len(failures) > 5 else "")
        detail = f"{len(failures)} frames outside tolerance: {shown}; " + detail
    max_abs = float(np.max(diff))
    passed = not failures
    return ParityResult(**base, compared=int(a.size), max_abs=max_abs, max_rel=max_rel, passed=passed, detail=detail)


def compare(
    y: np.ndarray, config: FeatureConfig | None = None, features: Iterable[str] | None = None
) -> list[ParityResult]:
    """Compare our features of ``y`` with the references.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``: float32, float64 or int16 PCM.
        Ours run on it as float32; the references on the same float32
        samples converted to float64, so the input's own precision does not count.
    config : FeatureConfig, optional
        The defaults if omitted.
    features : iterable of str, optional
        Names from :data:`FEATURE_NAMES`; all of them if omitted.

    Returns
    -------
    list of ParityResult
        One per feature, in the order asked; ``passed`` applies
        :data:`TOLERANCES` and requires identical frame counts.

    Raises
    ------
    ImportError
        librosa is not installed (``pip install harmonies[test]``).
    ValueError, TypeError
        As :func:`pyharmonies.features.extract` for unusable samples.
    """
    config = config if config is not None else FeatureConfig()
    names = FEATURE_NAMES if features is None else _check_names(features)
    y32 = _as_float32(y)
    ours = extract(y32, config, features=names)
    refs = _References(y32.astype(np.float64), config)
    return [_judge(name, ours[name], refs, TOLERANCES[name]) for name in names]
