"""spectral_centroid, _bandwidth, _rolloff and _flatness against librosa.feature.

Tolerances: pyharmonies.parity.TOLERANCES (centroid, bandwidth, flatness: 1e-3
relative, 1e-6 absolute; rolloff: the same bin, except a one-bin flip where the
reference's cumulative magnitude is within 1e-5 of the 85 % threshold).
"""

from __future__ import annotations

import _parity_grid as grid
import pytest

GROUP = ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness")


@pytest.mark.parametrize("feature", GROUP)
@pytest.mark.parametrize("case", grid.STFT_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_librosa(parity, case, feature):
    result = parity.result(case, feature, GROUP)
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)
