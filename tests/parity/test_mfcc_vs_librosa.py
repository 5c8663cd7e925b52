"""mfcc against librosa.feature.mfcc(S=power_to_db(mel, top_db=None)).

Not librosa.feature.mfcc(y=...): that applies power_to_db's top_db=80, which
the contract deliberately omits (it depends on the whole clip, which a stream
never sees). Tolerance: pyharmonies.parity.TOLERANCES["mfcc"] (0.05 absolute).
"""

from __future__ import annotations

import _parity_grid as grid
import pytest

GROUP = ("mfcc",)


@pytest.mark.parametrize("case", grid.MEL_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_librosa(parity, case):
    result = parity.result(case, "mfcc", GROUP)
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)
