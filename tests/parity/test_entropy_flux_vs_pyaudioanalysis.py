"""energy_entropy, spectral_entropy and spectral_flux against pyAudioAnalysis 0.3.14.

pyAudioAnalysis.ShortTermFeatures on our frames: the zero-padded centred raw
frame for energy_entropy; |rfft(hann * frame)|[:n_fft/2] / (n_fft/2) for the
spectral ones, as its feature_extraction normalises; flux 0 for the first
frame. Tolerances: pyharmonies.parity.TOLERANCES (1e-3 relative, 1e-6 absolute).
"""

from __future__ import annotations

import _parity_grid as grid
import numpy as np
import pytest

from pyharmonies import parity
from pyharmonies.features import PYAUDIOANALYSIS_FEATURES, FeatureConfig

GROUP = PYAUDIOANALYSIS_FEATURES


@pytest.fixture(scope="module")
def pyaa():
    # Required, not skipped: without it the suite would compare with our own
    # transcription only (the fallback test below checks that transcription).
    st = parity._pyaudioanalysis()
    assert st is not None, "pyAudioAnalysis is not installed: pip install 'harmonies[test]'"
    return st


@pytest.mark.parametrize("feature", GROUP)
@pytest.mark.parametrize("case", grid.STFT_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_pyaudioanalysis(pyaa, parity, case, feature):
    result = parity.result(case, feature, GROUP)
    assert result.reference == "pyAudioAnalysis 0.3.14"
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)


@pytest.mark.parametrize("feature", GROUP)
@pytest.mark.parametrize("signal", grid.LONG_SIGNALS)
def test_numpy_fallback_equals_pyaudioanalysis(pyaa, signals, monkeypatch, signal, feature):
    # Where pyAudioAnalysis is missing, parity uses a NumPy transcription of its
    # formulas; it must give pyAudioAnalysis's values (to float64 summation order).
    config = FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=256)
    y = signals.get(signal, config.sample_rate, config.n_fft)
    expected = parity.reference(feature, y, config)
    monkeypatch.setattr(parity, "_pyaudioanalysis", lambda: None)
    fallback = parity.reference(feature, y, config)
    np.testing.assert_allclose(fallback, expected, rtol=1e-12, atol=1e-15)  # float64 rounding only
    (result,) = parity.compare(y, config, features=[feature])
    assert result.reference == parity.NUMPY_PYAA_REFERENCE
    assert result.passed, result.detail


def test_first_flux_is_zero_and_silence_has_no_entropy(pyaa):
    # Documented edge values: flux compares the first frame with itself; an
    # all-zero frame has zero energy everywhere (entropy 0 with pyAudioAnalysis's eps).
    config = FeatureConfig()
    y = np.zeros(4096, dtype=np.float32)
    y[2048:] = np.sin(np.arange(2048) * 0.3)
    for result in parity.compare(y, config, features=GROUP):
        assert result.passed, result.detail
    ref = {name: parity.reference(name, y, config)[0] for name in GROUP}
    assert ref["spectral_flux"][0] == 0.0
    assert ref["energy_entropy"][0] == 0.0 and ref["spectral_entropy"][0] == 0.0
