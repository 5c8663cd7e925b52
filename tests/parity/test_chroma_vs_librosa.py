"""chroma against librosa.feature.chroma_stft(tuning=0, norm=inf).

Tolerance: pyharmonies.parity.TOLERANCES["chroma"] (1e-3 relative, 1e-6 absolute).
"""

from __future__ import annotations

import _parity_grid as grid
import pytest

GROUP = ("chroma",)


@pytest.mark.parametrize("case", grid.STFT_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_librosa(parity, case):
    result = parity.result(case, "chroma", GROUP)
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)
