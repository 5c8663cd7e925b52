"""zcr and rms against librosa.feature.zero_crossing_rate and rms, and frame alignment.

Tolerances: pyharmonies.parity.TOLERANCES["zcr"], ["rms"] (1e-3 relative, 1e-6
absolute). librosa pads zcr's frames with edge values and rms's with zeros; the
mid_waveform signal (nonzero first and last samples) tells the two apart.
"""

from __future__ import annotations

import _parity_grid as grid
import librosa
import numpy as np
import pytest

from pyharmonies.features import FeatureConfig, extract

GROUP = ("zcr", "rms")


@pytest.mark.parametrize("feature", GROUP)
@pytest.mark.parametrize("case", grid.STFT_CASES + grid.EXTRA_CASES, ids=str)
def test_matches_librosa(parity, case, feature):
    result = parity.result(case, feature, GROUP)
    assert result.frames == result.ref_frames == case.config.frames(len(parity.signal(case)))
    assert result.passed, grid.explain(case, result)


@pytest.mark.parametrize("center", [True, False], ids=["center", "nocenter"])
@pytest.mark.parametrize("hop", [256, 300])
def test_a_click_lands_in_the_same_frames(center, hop):
    # One nonzero sample in silence: the frames whose span contains it, and only
    # those, have nonzero rms, in ours and in librosa's, and they are the frames
    # the framing rule predicts.
    sr, n_fft = 22050, 1024
    config = FeatureConfig(sample_rate=sr, n_fft=n_fft, hop_length=hop, center=center)
    click = 20 * hop + 37
    y = np.zeros(sr, dtype=np.float32)
    y[click] = 1.0
    # Frame t spans samples [t * hop - pad, t * hop - pad + n_fft).
    pad = n_fft // 2 if center else 0
    n_frames = config.frames(y.size)
    expected = [t for t in range(n_frames) if t * hop - pad <= click < t * hop - pad + n_fft]

    ours = extract(y, config, features=["rms"])["rms"][0]
    ref = librosa.feature.rms(y=y.astype(np.float64), frame_length=n_fft, hop_length=hop, center=center)[0]
    assert ours.shape == ref.shape == (n_frames,)
    assert np.flatnonzero(ours).tolist() == expected
    assert np.flatnonzero(ref).tolist() == expected
    # Each of those frames holds the click alone: rms = 1 / sqrt(n_fft), exactly in float32.
    np.testing.assert_allclose(ours[expected], 1.0 / np.sqrt(n_fft), rtol=1e-6)  # float32 rounding only


@pytest.mark.parametrize("center", [True, False], ids=["center", "nocenter"])
def test_a_click_at_a_frame_centre_peaks_in_that_frame(center):
    # The (Hann-windowed) spectrum is largest in the frame centred on the click.
    sr, n_fft, hop = 22050, 1024, 256
    config = FeatureConfig(sample_rate=sr, n_fft=n_fft, hop_length=hop, center=center)
    frame = 20
    click = frame * hop + (0 if center else n_fft // 2)
    y = np.zeros(sr, dtype=np.float32)
    y[click] = 1.0
    ours = extract(y, config, features=["mel"])["mel"].sum(axis=0)
    ref = librosa.feature.melspectrogram(
        y=y.astype(np.float64), sr=sr, n_fft=n_fft, hop_length=hop, center=center, pad_mode="constant", n_mels=64
    ).sum(axis=0)
    assert ours.shape == ref.shape == (config.frames(y.size),)
    assert int(np.argmax(ours)) == int(np.argmax(ref)) == frame
