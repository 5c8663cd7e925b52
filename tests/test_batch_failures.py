"""One bad file never stops a batch (issue 10): whatever one file raises (an AudioError, a
ValueError from the feature core, a MemoryError, a decoder's error), `features`,
`classify`, `evaluate` (bundle and run) and the feature cache report it for that file,
go on with the others, and end with "K of N files failed" and a non-zero exit status.
A truncated WAV is used, with a warning that says how much of it was read.

The folder of bad files: a corrupt WAV, a zero-byte one, one whose float samples are
1e12 (decodes fine; the feature core refuses it with a ValueError), a truncated one
(used), one that turns NaN after 1.5 s (fails half-way: nothing of it may be written).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.audio import AudioWarning, load
from pyharmonies.cli import cli
from pyharmonies.features import FeatureConfig, extract

SR = 22050


def invoke(*args) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def _tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}.wav" for name in ("corrupt", "empty", "huge", "truncated", "late_nan")}
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" + bytes(range(256)))
    files["empty"].write_bytes(b"")
    huge = _tone(2.0)
    huge[100] = 1e12  # finite, so it decodes; the feature core takes at most 2**30
    sf.write(files["huge"], huge, SR, subtype="FLOAT")
    sf.write(files["truncated"], _tone(2.0, 660), SR, subtype="PCM_16")
    raw = files["truncated"].read_bytes()
    files["truncated"].write_bytes(raw[: 44 + (len(raw) - 44) // 2])  # the header still claims 2 s
    late = _tone(3.0, 880)
    late[int(1.5 * SR)] = np.nan
    sf.write(files["late_nan"], late, SR, subtype="FLOAT")
    return files


@pytest.fixture
def batch(tmp_path) -> tuple[list[Path], dict[str, Path]]:
    """Two good files and the bad ones, in an order that puts good ones after bad ones."""
    bad = write_bad_files(tmp_path / "bad")
    good = [tmp_path / "good_a.wav", tmp_path / "good_b.flac"]
    sf.write(good[0], _tone(1.5, 330), SR)
    sf.write(good[1], np.stack([_tone(1.0, 550, 44100), _tone(1.0, 770, 44100)], axis=1), 44100)
    return [bad["corrupt"], good[0], bad["empty"], bad["huge"], bad["truncated"], bad["late_nan"], good[1]], bad


FAILING = ("corrupt", "empty", "huge", "late_nan")


def _assert_reported(stderr: str, bad: dict[str, Path], total: int) -> None:
    assert f"error: {bad['corrupt']}: cannot decode audio" in stderr
    assert f"error: {bad['empty']}: cannot decode audio" in stderr
    assert f"error: {bad['huge']}: ValueError: sample 100 is 1e+12" in stderr  # not one of ours: its type is named
    assert f"error: {bad['late_nan']}: decoded samples contain NaN or Inf (first at 1.500 s)" in stderr
    assert f"warning: {bad['truncated']}: truncated: read 1.00 s of the 2.00 s its header claims" in stderr
    assert stderr.rstrip().splitlines()[-1] == f"{len(FAILING)} of {total} files failed"


# ------------------------------------------------------------------ features


def test_features_goes_on_after_any_failure(batch):
    paths, bad = batch
    code, out, err = invoke("features", *paths, "--features", "rms")
    assert code == 1
    _assert_reported(err, bad, len(paths))
    for path in (paths[1], bad["truncated"], paths[-1]):
        assert f"{path}: " in out  # the good ones, and the truncated one, are described
    assert f"{bad['truncated']}: 1.00 s at 22050 Hz" in out


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_features_writes_the_good_files_and_nothing_of_a_file_that_failed_half_way(batch, tmp_path, suffix):
    paths, bad = batch
    out = tmp_path / f"feats{suffix}"
    code, stdout, err = invoke("features", *paths, "--features", "rms,zcr", "--out", out)
    assert code == 1 and f"wrote {out} (3 files, 2 features)" in stdout
    _assert_reported(err, bad, len(paths))
    config = FeatureConfig()
    expected = {p: extract(load(p, SR), config, features=["rms", "zcr"]) for p in (paths[1], paths[-1])}
    with pytest.warns(AudioWarning):
        expected[bad["truncated"]] = extract(load(bad["truncated"], SR), config, features=["rms", "zcr"])
    if suffix == ".npz":
        with np.load(out) as z:
            sources = json.loads(str(z["sources"]))
            assert sorted(sources.values()) == sorted(map(str, expected))  # late_nan wrote 1.5 s of frames, then was dropped
            for key, path in sources.items():
                for name in ("rms", "zcr"):
                    np.testing.assert_array_equal(z[f"{key}/{name}"], expected[Path(path)][name])  # streamed == whole file
    else:
        rows = out.read_text().splitlines()[1:]
        assert {row.split(",")[0] for row in rows} == set(map(str, expected))  # no row of late_nan's first 1.5 s
        assert len(rows) == sum(f["rms"].shape[1] for f in expected.values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".feats") or p.name.endswith(".part")]  # no leftovers


def test_features_a_memory_error_is_one_files_failure(batch, monkeypatch):
    from pyharmonies import audio

    paths, _ = batch
    real = audio.iter_blocks

    def blocks(path, *a, **kw):
        if Path(path).name == "good_a.wav":
            raise MemoryError
        return real(path, *a, **kw)

    monkeypatch.setattr(audio, "iter_blocks", blocks)
    code, out, err = invoke("features", paths[1], paths[-1], "--features", "rms")
    assert code == 1 and f"error: {paths[1]}: MemoryError" in err and f"{paths[-1]}: 1.00 s" in out
    assert err.rstrip().endswith("1 of 2 files failed")


def test_ctrl_c_still_stops_a_batch(batch, monkeypatch):
    from pyharmonies import audio

    paths, _ = batch
    monkeypatch.setattr(audio, "iter_blocks", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(cli, ["features", str(paths[1]), str(paths[-1])])
    assert isinstance(result.exception, KeyboardInterrupt) or result.exit_code == 1 and "Aborted" in result.output


# ------------------------------------------------------------------ classify


def test_classify_goes_on_after_any_failure(small_bundle, batch, monkeypatch):
    from pyharmonies.runtime import files

    paths, bad = batch
    real = files.classify_file
    monkeypatch.setattr(files, "classify_file",
                        lambda clf, path, **kw: (_ for _ in ()).throw(MemoryError()) if Path(path).name == "good_b.flac" else real(clf, path, **kw))  # fmt: skip
    code, out, err = invoke("classify", small_bundle.bundle, *paths, "--json", "--backend", "onnx")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in paths]  # one line per file, in order
    by_name = {Path(r["path"]).stem: r for r in records}
    for name in FAILING:
        assert "error" in by_name[name]
    assert by_name["huge"]["error"].startswith(f"{bad['huge']}: ValueError")
    assert by_name["good_b"]["error"] == f"{paths[-1]}: MemoryError"
    assert by_name["good_a"]["label"] and by_name["truncated"]["duration_s"] == 1.0
    assert err.rstrip().splitlines()[-1] == f"{len(FAILING) + 1} of {len(paths)} files failed"
    assert f"warning: {bad['truncated']}: truncated" in err


# ------------------------------------------------------------------ evaluate


def label_of(data: Path) -> str:
    """The class folder that holds the bad files."""
    return sorted(p.name for p in data.iterdir() if p.is_dir())[0]


@pytest.fixture
def dataset_with_bad_files(small_bundle, tmp_path) -> tuple[Path, int]:
    """The bundle's corpus with bad files in one class folder; its file count."""
    data = Path(shutil.copytree(small_bundle.corpus, tmp_path / "data", ignore=shutil.ignore_patterns("*.csv")))
    write_bad_files(data / label_of(data))
    return data, len(list(data.rglob("*.wav")))


def test_evaluate_bundle_goes_on_after_any_failure(small_bundle, dataset_with_bad_files):
    data, total = dataset_with_bad_files
    code, out, err = invoke("evaluate", small_bundle.bundle, data, "--split", "all", "--quiet", "--backend", "onnx")
    assert code == 1
    assert "window accuracy" in out and out.splitlines()[-1].endswith(f"(n = {total - len(FAILING)})")  # clips: the good and the truncated
    for name in FAILING:
        assert f"left out: {data / label_of(data)}/{name}.wav: " in err
    assert f"warning: {data / label_of(data)}/truncated.wav: truncated: read 1.00 s of the 2.00 s" in err
    assert "huge.wav: ValueError: sample 100 is 1e+12" in err
    assert err.rstrip().splitlines()[-1] == f"{len(FAILING)} of {total} files failed"


def test_evaluate_bundle_results_say_which_files_failed(small_bundle, dataset_with_bad_files):
    from pyharmonies.training.bundle_eval import evaluate_bundle

    data, total = dataset_with_bad_files
    with pytest.warns(AudioWarning, match="truncated.wav: truncated"):
        results = evaluate_bundle(small_bundle.bundle, data, backend="onnx", precision="fp32")
    failed = {Path(p["path"]).stem for p in results["problems"] if p["kind"] == "file"}
    assert failed == set(FAILING) and results["files"] == {"total": total, "failed": len(FAILING)}
    assert results["clip"]["n"] == total - len(FAILING)  # 12 good clips and the truncated one


def test_evaluate_run_goes_on_after_any_failure(small_bundle, dataset_with_bad_files, tmp_path):
    data, total = dataset_with_bad_files
    code, out, err = invoke("evaluate", small_bundle.run, data, "--split", "all", "--quiet", "--out", tmp_path / "eval")
    assert code == 1
    assert "window accuracy" in out
    assert "huge.wav: ValueError: sample 100 is 1e+12" in err and "late_nan.wav: decoded samples contain NaN" in err
    assert "truncated.wav: truncated: read 1.00 s" in err
    assert err.rstrip().splitlines()[-1] == f"{len(FAILING)} of {total} files failed"
    record = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert record["files"] == {"total": total, "failed": len(FAILING)}


# ------------------------------------------------------------------ the cache builder


def test_the_cache_reports_any_failure_per_file(batch, tmp_path, monkeypatch):
    from pyharmonies.data import cache as cache_module
    from pyharmonies.data.cache import FeatureCache

    paths, bad = batch
    real = cache_module.iter_blocks

    def blocks(path, *a, **kw):
        if Path(path).name == "good_b.flac":
            raise MemoryError
        return real(path, *a, **kw)

    monkeypatch.setattr(cache_module, "iter_blocks", blocks)
    cache = FeatureCache(tmp_path / "cache", FeatureConfig(n_mels=32))
    with pytest.warns(AudioWarning, match="truncated.wav: truncated: read 1.00 s of the 2.00 s"):
        problems = cache.ensure(paths, jobs=1, progress=False)
    reasons = {p.path.stem: p.reason for p in problems}
    assert set(reasons) == {*FAILING, "good_b"}
    assert reasons["good_b"] == "MemoryError" and reasons["huge"].startswith("ValueError: sample 100")
    assert all(p.kind == "file" for p in problems)
    np.testing.assert_array_equal(cache.load(paths[1], "log_mel"), extract(load(paths[1], SR), FeatureConfig(n_mels=32))["log_mel"])
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # late_nan failed half-way: no torn array left
    monkeypatch.setattr(cache_module, "iter_blocks", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is not a file's failure
        FeatureCache(tmp_path / "other", FeatureConfig()).ensure([paths[1]], jobs=1, progress=False)
