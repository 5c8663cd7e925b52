"""pyharmonies.parity itself: its tolerances, its judgement, its optional imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pyharmonies import parity
from pyharmonies.features import FEATURE_NAMES, FeatureConfig


def test_every_feature_has_a_reasoned_tolerance():
    assert set(parity.TOLERANCES) == set(FEATURE_NAMES)
    for name, tol in parity.TOLERANCES.items():
        assert tol.kind in ("db", "linear", "absolute", "rolloff"), name
        assert len(tol.note) > 40, f"{name}: a tolerance needs its reason"
    assert parity.TOLERANCES["log_mel"] == parity.Tolerance("db", 0.0, 0.05, parity.TOLERANCES["log_mel"].note)
    assert parity.TOLERANCES["mfcc"].atol == 0.05
    assert (parity.TOLERANCES["mel"].rtol, parity.TOLERANCES["mel"].atol) == (1e-3, 1e-6)


def test_compare_passes_our_features_and_names_the_references(rng):
    y = 0.1 * rng.standard_normal(8000)
    results = parity.compare(y, FeatureConfig(sample_rate=16000, n_fft=512, hop_length=128))
    assert [r.feature for r in results] == list(FEATURE_NAMES)
    for r in results:
        assert r.passed, r.detail
        assert r.frames == r.ref_frames == 1 + 8000 // 128
        assert r.compared > 0
        expected = "pyAudioAnalysis 0.3.14" if r.feature in parity.PYAUDIOANALYSIS_FEATURES else "librosa 0.11.0"
        assert r.reference == expected


def _perturbed_extract(name, factor):
    real = parity.extract

    def extract(y, config, *, features):
        out = {k: np.array(v) for k, v in real(y, config, features=features).items()}
        out[name] = out[name] * factor
        return out

    return extract


@pytest.mark.parametrize(
    ("feature", "factor"),
    [("mel", 1.002), ("log_mel", 1.01), ("mfcc", 1.05), ("rms", 0.998), ("spectral_entropy", 1.002)],
)
def test_compare_catches_an_error_just_beyond_tolerance(monkeypatch, rng, feature, factor):
    monkeypatch.setattr(parity, "extract", _perturbed_extract(feature, factor))
    y = 0.1 * rng.standard_normal(8000)
    (result,) = parity.compare(y, FeatureConfig(), features=[feature])
    assert not result.passed
    assert "outside tolerance" in result.detail and "worst at frame" in result.detail


def test_compare_catches_a_rolloff_off_by_one_bin(monkeypatch, rng):
    config = FeatureConfig()
    bin_hz = config.sample_rate / config.n_fft
    real = parity.extract

    def shifted(y, cfg, *, features):
        out = {k: np.array(v) for k, v in real(y, cfg, features=features).items()}
        out["spectral_rolloff"][0, 3] += np.float32(bin_hz)
        return out

    monkeypatch.setattr(parity, "extract", shifted)
    (result,) = parity.compare(0.1 * rng.standard_normal(8000), config, features=["spectral_rolloff"])
    assert not result.passed
    assert "frame 3" in result.detail


def test_compare_fails_a_frame_count_mismatch(monkeypatch, rng):
    real = parity.extract
    monkeypatch.setattr(
        parity, "extract", lambda y, c, *, features: {k: v[:, :-1] for k, v in real(y, c, features=features).items()}
    )
    (result,) = parity.compare(0.1 * rng.standard_normal(8000), FeatureConfig(), features=["rms"])
    assert not result.passed and result.frames == result.ref_frames - 1
    assert "frame counts must be identical" in result.detail


def test_log_mel_compares_only_within_80_db_of_the_peak():
    # A tone and a far quieter one: the quiet one's bands lie beyond 80 dB.
    sr = 22050
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * 440 * t) + 1e-6 * np.sin(2 * np.pi * 5000 * t)
    (result,) = parity.compare(y, FeatureConfig(), features=["log_mel"])
    assert result.passed, result.detail
    ref = parity.reference("log_mel", y.astype(np.float32), FeatureConfig())
    assert result.compared == int((ref >= ref.max() - 80).sum()) < ref.size


def test_short_uncentred_input_has_no_frames_on_either_side():
    config = FeatureConfig(center=False)
    for result in parity.compare(np.full(100, 0.5, dtype=np.float32), config):
        assert result.passed and result.frames == result.ref_frames == 0


def test_int16_input_is_compared_as_the_extractor_scales_it(rng):
    y = (rng.standard_normal(4000) * 3000).astype(np.int16)
    for result in parity.compare(y, FeatureConfig(), features=["rms", "mel"]):
        assert result.passed, result.detail


def test_importable_without_librosa_and_says_how_to_install():
    code = (
        "import sys; sys.modules['librosa'] = None\n"
        "import numpy as np\n"
        "from pyharmonies import parity\n"
        "try:\n"
        "    parity.compare(np.zeros(2048, np.float32), features=['mel'])\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "harmonies[test]" in out.stdout, out.stdout + out.stderr


class _FakeRollOffReference:
    """A one-frame reference whose cumulative magnitude is flat at the 85 % threshold."""

    def __init__(self):
        self.config = FeatureConfig()  # 22050 Hz, n_fft 1024: 513 bins
        mag = np.zeros((513, 1))
        mag[0:85] = 1.0  # cumsum reaches 85 = 0.85 * 100 at bin 84 ...
        mag[100:115] = 1.0  # ... and stays there up to bin 99
        self.mag = mag

    def magnitude(self):
        return self.mag

    def get(self, name):
        bin_hz = self.config.sample_rate / self.config.n_fft
        return np.array([[84 * bin_hz]]), "fake"


@pytest.mark.parametrize(("ours_bin", "passes"), [(84, True), (90, True), (100, True), (101, False), (83, False)])
def test_rolloff_accepts_a_flip_only_across_a_tie(ours_bin, passes):
    # Bins 84..99 all have cumsum exactly at the threshold: any of them (and 100,
    # the first bin after the flat run) is a legitimate answer; 101 needs bin 100
    # (cumsum 86, 1.2 % off) to be a tie, and 83 bin 83 (cumsum 84).
    refs = _FakeRollOffReference()
    bin_hz = refs.config.sample_rate / refs.config.n_fft
    ours = np.array([[ours_bin * bin_hz]], dtype=np.float32)
    result = parity._judge("spectral_rolloff", ours, refs, parity.TOLERANCES["spectral_rolloff"])
    assert result.passed is passes, result.detail
