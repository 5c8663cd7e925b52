"""pyharmonies.crossarch: the comparison of two machines' outputs that ``make test-arm64`` runs
between x86-64 and arm64. Oracles: a machine against itself (everything bit-identical), and
outputs changed by known amounts (each beyond, or within, its tolerance)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from pyharmonies.crossarch import (
    TOLERANCES,
    CrossArchError,
    compare,
    compare_outputs,
    main,
    markdown_table,
    read_reference,
    write_reference,
)

INT8_FILES = ("model.int8.onnx", "model.int8.tflite")


@pytest.fixture(scope="module")
def clips(small_bundle, tmp_path_factory) -> list[Path]:
    """Two of the bundle's corpus clips (22050 Hz) and one of them at 44.1 kHz."""
    out = tmp_path_factory.mktemp("crossarch-clips")
    wavs = sorted(small_bundle.corpus.rglob("*.wav"))[:2]
    clips = []
    for i, wav in enumerate(wavs):
        y, sr = sf.read(wav, dtype="float32")
        clips.append(out / f"clip{i}.wav")
        sf.write(clips[-1], y, sr, subtype="FLOAT")
    sf.write(out / "high.wav", soxr.resample(y, sr, 44100), 44100, subtype="FLOAT")
    return [*clips, out / "high.wav"]


@pytest.fixture(scope="module")
def reference(small_bundle, clips, tmp_path_factory) -> Path:
    return write_reference(tmp_path_factory.mktemp("crossarch") / "reference.npz", small_bundle.bundle, clips)


def _by_quantity(rows) -> dict:
    return {r.quantity: r for r in rows}


def test_a_machine_against_itself_is_bit_identical_everywhere(small_bundle, clips, reference):
    rows = _by_quantity(compare(reference, small_bundle.bundle, clips))
    expected = {"frames", "audio", "features", "resampled audio", "resampled features"}
    for name in INT8_FILES:
        expected |= {f"{name} logits", f"{name} probabilities", f"{name} top-1"}
    assert set(rows) == expected
    assert all(r.identical and r.ok and r.max_abs_diff == 0 for r in rows.values())
    assert rows["frames"].values == 3
    windows = rows["model.int8.tflite top-1"].values
    assert windows > 0 and rows["model.int8.tflite probabilities"].values == 3 * windows  # 3 labels


def _shifted(arrays: dict, suffix: str, amount: float, clip: str = "clip0.wav") -> dict:
    out = dict(arrays)
    key = f"{clip}/{suffix}"
    out[key] = arrays[key] + np.float32(amount)
    return out


def test_a_feature_off_by_one_step_is_reported(reference):
    _, arrays = read_reference(reference)
    changed = dict(arrays)
    rms = arrays["clip0.wav/feature/rms"].copy()
    rms[0, 5] = np.nextafter(rms[0, 5], np.float32(np.inf))  # one float32 step, one value
    changed["clip0.wav/feature/rms"] = rms
    rows = _by_quantity(compare_outputs(arrays, changed, resampled=["high.wav"]))
    assert not rows["features"].identical and not rows["features"].ok  # bit-identical is required
    assert rows["features"].max_abs_diff == float(np.spacing(arrays["clip0.wav/feature/rms"][0, 5]))
    assert rows["resampled features"].ok and rows["audio"].ok


def test_resampled_features_are_judged_relative_to_their_scale(reference):
    _, arrays = read_reference(reference)
    key = "feature/spectral_centroid"
    scale = float(np.abs(arrays[f"high.wav/{key}"]).max())
    within = compare_outputs(arrays, _shifted(arrays, key, 0.5 * TOLERANCES["resampled features"] * scale, "high.wav"), ["high.wav"])
    beyond = compare_outputs(arrays, _shifted(arrays, key, 2 * TOLERANCES["resampled features"] * scale, "high.wav"), ["high.wav"])
    assert _by_quantity(within)["resampled features"].ok and not _by_quantity(within)["resampled features"].identical
    assert not _by_quantity(beyond)["resampled features"].ok


def test_probabilities_beyond_tolerance_and_a_changed_top1_are_reported(reference):
    _, arrays = read_reference(reference)
    key = "model.int8.onnx/probabilities"
    changed = dict(arrays)
    probs = arrays[f"clip1.wav/{key}"].copy()
    probs[0] = probs[0][::-1]  # window 0 ranks the labels the other way round
    changed[f"clip1.wav/{key}"] = probs
    rows = _by_quantity(compare_outputs(arrays, changed))
    assert not rows["model.int8.onnx probabilities"].ok
    top1 = rows["model.int8.onnx top-1"]
    assert np.argmax(probs[0]) != np.argmax(arrays[f"clip1.wav/{key}"][0])
    assert top1.max_abs_diff == 1 and not top1.ok
    assert rows["model.int8.tflite top-1"].ok


def test_another_frame_count_is_reported_not_lined_up(reference):
    _, arrays = read_reference(reference)
    shorter = {k: (v[..., :-1] if k.startswith("clip0.wav/feature/") else v) for k, v in arrays.items()}
    rows = _by_quantity(compare_outputs(arrays, shorter))
    assert rows["frames"].max_abs_diff == 1 and not rows["frames"].ok
    assert rows["features"].max_abs_diff == float("inf")


def test_outputs_of_other_clips_are_refused(reference):
    _, arrays = read_reference(reference)
    fewer = {k: v for k, v in arrays.items() if not k.startswith("clip1.wav/")}
    with pytest.raises(CrossArchError, match="different clips"):
        compare_outputs(arrays, fewer)


def test_a_reference_of_other_clips_is_refused(small_bundle, clips, reference):
    with pytest.raises(CrossArchError, match="its clips differs"):
        compare(reference, small_bundle.bundle, clips[:2])


def test_a_reference_holding_pickled_data_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, **{"meta.json": np.array(json.dumps({"keys": ["x"]})), "x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CrossArchError, match="not a reference written by pyharmonies.crossarch"):
        read_reference(path)


def test_a_file_that_is_not_a_reference_is_refused(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip")
    with pytest.raises(CrossArchError, match="not a reference"):
        read_reference(path)
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(CrossArchError, match="not a reference"):
        read_reference(tmp_path / "empty.npz")


def test_the_command_line_writes_compares_and_fails_on_a_difference(small_bundle, clips, tmp_path, capsys):
    ref = tmp_path / "ref.npz"
    assert main(["write", str(small_bundle.bundle), *map(str, clips), "--out", str(ref)]) == 0
    table = tmp_path / "table.md"
    assert main(["compare", str(ref), str(small_bundle.bundle), *map(str, clips), "--table", str(table)]) == 0
    assert "| features | " in table.read_text() and "NO" not in table.read_text()
    meta, arrays = read_reference(ref)
    arrays["clip0.wav/feature/rms"] = arrays["clip0.wav/feature/rms"] + np.float32(1e-3)
    np.savez(ref, **arrays, **{"meta.json": np.array(json.dumps(meta))})
    assert main(["compare", str(ref), str(small_bundle.bundle), *map(str, clips)]) == 1
    assert "| features | " in capsys.readouterr().out


def test_the_table_counts_differences_for_frames_and_top1():
    from pyharmonies.crossarch import Comparison

    text = markdown_table([Comparison("frames", 4, False, 1.0, 0.0), Comparison("audio", 10, True, 0.0, 0.0)])
    assert "| frames | 4 | no | 1 differ | 0 differ | NO |" in text
    assert "| audio | 10 | yes | 0 | 0 | yes |" in text
