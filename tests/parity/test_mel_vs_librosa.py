"""mel (power) and log_mel (dB) against librosa.feature.melspectrogram and power_to_db.

Tolerances: pyharmonies.parity.TOLERANCES["mel"] (1e-3 relative, 1e-6 absolute:
float32 against float64) and ["log_mel"] (0.05 dB within 80 dB of the clip's
peak: the float32 FFT's rounding floor lies ~130 dB below a frame's peak).
"""

from __future__ import annotations

import warnings

import _parity_grid as grid
import librosa
import pytest

from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig

GROUP = ("mel", "log_mel")


@pytest.mark.parametrize("feature", GROUP)
@pytest.mark.parametrize("case", grid.MEL_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_librosa(parity, case, feature):
    result = parity.result(case, feature, GROUP)
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "htk"),
    grid.MEL_GRID_PARAMS,
    ids=[grid._label(*p) for p in grid.MEL_GRID_PARAMS],
)
def test_empty_mel_filters_are_refused_like_librosa(sr, n_fft, n_mels, htk):
    # The grid's configurations with an empty band are not silently skipped: for
    # every one of them, ours refuses the configuration and librosa warns, and for
    # every other one neither happens (the same emptiness test on both sides).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=htk)
    librosa_warns = any("Empty filters" in str(w.message) for w in caught)
    assert [str(w.message) for w in caught if "Empty filters" not in str(w.message)] == []
    if (sr, n_fft, n_mels, htk) in grid.EMPTY_MEL_CONFIGS:
        assert librosa_warns, "librosa accepts a mel bank that FeatureConfig refuses"
        with pytest.raises(ParameterError, match="empty mel filter"):
            FeatureConfig(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, htk=htk)
    else:
        assert not librosa_warns, "librosa finds an empty mel band in a configuration FeatureConfig accepts"
        FeatureConfig(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, htk=htk)


def test_the_grid_has_empty_mel_configurations():
    # The refusal test above must exercise both outcomes.
    assert grid.EMPTY_MEL_CONFIGS, "no configuration of the grid has an empty mel band any more"
    assert (44100, 512, 128, False) in grid.EMPTY_MEL_CONFIGS
