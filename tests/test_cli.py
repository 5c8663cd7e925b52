"""The ``harmonies`` command line: help, features, parity, demo.

Every audio file is generated here (soundfile writes WAV and FLAC) under
tmp_path. What the commands write is compared with the library on the same
decoded audio: the CLI only parses, so it must add nothing and lose nothing.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.audio import load
from pyharmonies.cli import COMMANDS, cli
from pyharmonies.features import FEATURE_NAMES, FRAME_VECTOR_FEATURES, FeatureConfig, extract

REPO = Path(__file__).resolve().parents[1]

#: Options each command's --help must mention.
HELP_MENTIONS = {
    "features": ["AUDIO...", "--config", "--features", "--out", "--sample-rate", "--n-fft", "--hop-length", "--n-mels"],
    "parity": ["AUDIO...", "--config", "--features", "--verbose", "--sample-rate", "harmonies[test]"],
    "bench": ["--json", "--seconds", "--repeat", "OMP_NUM_THREADS"],
    "dataset": ["synth", "info"],
    "train": ["DATA", "--model", "--epochs", "--batch-size", "--lr", "--device", "--out", "--folds", "--balance",
              "--window", "--init", "--freeze-backbone", "--resume", "--group-by", "torchrun", "--backbone", "--from-scratch",
              "transformer", "--average-weights"],
    "pretrain": ["AUDIO...", "--out", "--epochs", "--minutes", "--batch-size", "--exclude", "--probe", "--resume",
                 "--feature-config", "--model-options", "torchrun", "NT-Xent", "backbone.npz"],
    "tune": ["DATA", "--model", "--trials", "--folds", "--out", "--epochs", "--timeout", "--seed", "--base-config",
             "--keep", "--quiet", "best.json", "study.db", "optimistic", "transformer"],
    "evaluate": ["RUN", "DATA", "--split", "--backend", "--precision", "--latency-curve", "--smoothing", "--seed", "--per",
                 "--with", "--names", "trustworthy", "fold-0"],
    "compare": ["RUN...", "--out", "--plot", "--no-plot", "--level", "--names", "baseline of", "Δ vs first (paired)"],
    "ensemble": ["RUN...", "--out", "--quiet", "same splits", "--folds", "export --int8"],
    "classify": ["BUNDLE", "AUDIO...", "--top-k", "--json", "--backend", "--precision", "--threads"],
    "listen": ["--model", "--source", "--fast", "--hop", "--smoothing", "--threshold", "--top-k", "--json", "--duration", "--backend",
               "--latency-curve"],
    "devices": ["input devices"],
    "export": ["RUN", "--int8", "--format", "--out", "--calibration", "--max-drop", "--allow-drop", "transformer"],
    "embed": ["MODEL", "AUDIO...", "--out", "--hop", "--precision", "backbone.npz", "manifest"],
    "map": ["EMBEDDINGS", "--out", "--seed", "t-SNE", "grey"],
    "similar": ["EMBEDDINGS", "QUERY", "--k", "--tracks", "--other-tracks", "--json", "sha256"],
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def music(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Tones and noise: a chord whose root depends on the seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    root = 110.0 * 2 ** (seed % 12 / 12)
    y = sum(0.2 / h * np.sin(2 * np.pi * root * r * h * t) for r in (2, 2.52, 3) for h in (1, 2, 3))
    return (y + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    """A WAV at 44.1 kHz (resampled on load), a FLAC at 22.05 kHz, a stereo WAV at 16 kHz."""
    a, b, c = tmp_path / "a.wav", tmp_path / "b.flac", tmp_path / "c.wav"
    sf.write(a, music(1.5, 44100, 1), 44100, subtype="FLOAT")
    sf.write(b, music(1.0, 22050, 2), 22050, subtype="PCM_16")
    sf.write(c, np.stack([music(0.8, 16000, 3), music(0.8, 16000, 4)], axis=1), 16000, subtype="PCM_24")
    return [a, b, c]


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    return path


# ------------------------------------------------------------------ help


def test_group_help_lists_every_command():
    code, out, _ = invoke("--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out


def test_group_help_starts_a_new_user_from_data_to_the_microphone():
    # The examples lead with the path a newcomer takes, in order; the feature tools follow.
    code, out, _ = invoke("--help")
    assert code == 0
    examples = [line.split()[1] for line in out.splitlines() if line.strip().startswith("harmonies ")]
    firsts = [name for name in examples if name in ("dataset", "train", "export", "classify", "listen")]
    assert firsts == ["dataset", "train", "export", "classify", "listen"], examples
    assert examples.index("listen") < examples.index("features")
    assert list(COMMANDS)[:10] == ["dataset", "pretrain", "train", "tune", "evaluate", "compare", "ensemble", "export", "classify",
                                   "listen"]  # fmt: skip


def test_nothing_a_user_gets_points_outside_the_repository():
    # ../shared/ sits beside the developers' checkout only; a clone has docs/DESIGN.md instead.
    files = [REPO / "README.md", *(REPO / "pyharmonies").rglob("*.py"), *(REPO / "pyharmonies").rglob("*.pyi"),
             *(REPO / "pyharmonies").rglob("*.cpp"), *(REPO / "firmware_notes").glob("*.md"), *(REPO / "docs").glob("*.md"),
             REPO / "export" / "README.md", REPO / "native" / "README.md"]  # fmt: skip
    hits = [f"{path.relative_to(REPO)}:{number}" for path in files
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "../shared" in line]  # fmt: skip
    assert not hits, hits
    assert (REPO / "docs" / "DESIGN.md").is_file() and "docs/DESIGN.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_version():
    from pyharmonies import __version__

    code, out, _ = invoke("--version")
    assert code == 0 and __version__ in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str):
    code, out, _ = invoke(command, "--help")
    assert code == 0
    for mention in HELP_MENTIONS.get(command, []):
        assert mention in out, f"`harmonies {command} --help` does not mention {mention}"


def test_feature_help_names_every_feature():
    # The names are written out in the help text (importing them would load the
    # native extension for --help): this catches drift when a feature is added.
    code, out, _ = invoke("features", "--help")
    flat = " ".join(out.split())
    assert code == 0 and all(name in flat for name in FEATURE_NAMES)


def test_every_command_is_covered_by_a_help_check():
    # A new command in COMMANDS gets its own entry in HELP_MENTIONS.
    assert set(HELP_MENTIONS) == set(COMMANDS)


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in sorted(COMMANDS))])
def test_help_imports_nothing_heavy(args: list[str]):
    # A fresh interpreter: other tests' imports cannot hide a leak. --help must
    # cost nothing but click (on a Pi, torch or librosa take seconds to import).
    code = (
        "import sys\n"
        "from pyharmonies.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "heavy = ('torch', 'librosa', 'numba', 'scipy', 'sklearn', 'numpy', 'pyharmonies._native')\n"
        "print('LOADED:' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded = out.stdout.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"`harmonies {' '.join(args)}` imported {loaded}"


# ------------------------------------------------------------------ features


def decoded(path: Path, config: FeatureConfig) -> np.ndarray:
    return load(path, config.sample_rate)


def test_features_to_npz_equals_extract(tmp_path: Path, clips: list[Path]):
    out = tmp_path / "feats.npz"
    code, stdout, stderr = invoke("features", *clips, "--out", out)
    assert code == 0, stderr
    assert "0 of 3 files failed" in stdout
    config = FeatureConfig()
    with np.load(out) as z:
        assert FeatureConfig.from_json(str(z["config"])) == config
        assert json.loads(str(z["sources"])) == {p.stem: str(p) for p in clips}
        assert set(z.files) == {"config", "sources"} | {f"{p.stem}/{n}" for p in clips for n in FEATURE_NAMES}
        for path in clips:
            expected = extract(decoded(path, config), config)
            for name in FEATURE_NAMES:
                got = z[f"{path.stem}/{name}"]
                assert got.dtype == np.float32
                # Same decoded samples, same C code: identical, not merely close.
                np.testing.assert_array_equal(got, expected[name], err_msg=f"{path.name} {name}")


def test_features_to_csv_equals_extract(tmp_path: Path, clips: list[Path]):
    out = tmp_path / "rows.csv"
    names = ("mfcc", "zcr", "chroma")
    code, _, stderr = invoke("features", *clips[:2], "--features", ",".join(names), "--out", out, "--hop-length", 256)
    assert code == 0, stderr
    config = FeatureConfig(hop_length=256)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header == (
        ["file", "frame", "time_s"] + [f"mfcc_{i}" for i in range(20)] + ["zcr"] + [f"chroma_{i}" for i in range(12)]
    )
    start = 0
    for path in clips[:2]:
        expected = extract(decoded(path, config), config, features=names)
        table = np.concatenate([expected[n] for n in names]).T  # (frames, 33)
        part = body[start : start + table.shape[0]]
        start += table.shape[0]
        assert {r[0] for r in part} == {str(path)}
        assert [int(r[1]) for r in part] == list(range(table.shape[0]))
        np.testing.assert_allclose([float(r[2]) for r in part], np.arange(table.shape[0]) * 256 / 22050, atol=1e-6)
        # 9 significant digits round-trip float32 exactly.
        got = np.array([[np.float32(v) for v in r[3:]] for r in part], dtype=np.float32)
        np.testing.assert_array_equal(got, table)
    assert start == len(body)


def test_feature_keywords_and_order(tmp_path: Path, clips: list[Path]):
    out = tmp_path / "fv.npz"
    code, _, _ = invoke("features", clips[0], "--features", "log_mel, frame_vector,mfcc", "--out", out)
    assert code == 0
    with np.load(out) as z:
        names = [k.split("/")[1] for k in z.files if k.startswith("a/")]
    # In the order asked, expanded in place, each once.
    assert names == ["log_mel", *FRAME_VECTOR_FEATURES]


def test_config_file_and_overrides(tmp_path: Path, clips: list[Path]):
    config_path = tmp_path / "config.json"
    config_path.write_text(FeatureConfig(n_mels=96, n_mfcc=13).to_json())  # fmax resolved to 11025
    out = tmp_path / "o.npz"
    code, _, stderr = invoke(
        "features", clips[1], "--config", config_path, "--sample-rate", 16000, "--n-mels", 40, "--out", out
    )
    assert code == 0, stderr
    with np.load(out) as z:
        config = FeatureConfig.from_json(str(z["config"]))
        # fmax was the old Nyquist frequency, so it follows the new rate.
        assert (config.sample_rate, config.n_mels, config.n_mfcc, config.fmax) == (16000, 40, 13, 8000.0)
        expected = extract(load(clips[1], 16000), config)
        np.testing.assert_array_equal(z["b/log_mel"], expected["log_mel"])
        assert z["b/mfcc"].shape == (13, config.frames(16000))


def test_summary_without_out(clips: list[Path]):
    code, out, _ = invoke("features", clips[0], "--features", "log_mel,zcr")
    assert code == 0
    config = FeatureConfig()
    frames = config.frames(decoded(clips[0], config).size)
    assert f"{clips[0]}: 1.50 s at 22050 Hz, {frames} frames" in out
    assert f"log_mel (64, {frames}), zcr (1, {frames})" in out
    assert "0 of 1 file failed" in out


def test_a_corrupt_file_is_reported_and_skipped(tmp_path: Path, clips: list[Path], corrupt: Path):
    out = tmp_path / "o.npz"
    missing = tmp_path / "missing.flac"
    code, stdout, stderr = invoke("features", clips[0], corrupt, missing, clips[1], "--out", out)
    assert code == 1
    assert f"error: {corrupt}: cannot decode audio" in stderr
    assert f"error: {missing}: no such file" in stderr
    assert stderr.rstrip().splitlines()[-1] == "2 of 4 files failed"
    with np.load(out) as z:  # the good files are still written, after the bad ones
        assert json.loads(str(z["sources"])) == {"a": str(clips[0]), "b": str(clips[1])}
        np.testing.assert_array_equal(z["b/mfcc"], extract(decoded(clips[1], FeatureConfig()))["mfcc"])
    assert not list(tmp_path.glob("*.part"))


def test_nothing_written_when_every_file_fails(tmp_path: Path, corrupt: Path):
    out = tmp_path / "o.csv"
    code, stdout, stderr = invoke("features", corrupt, "--out", out)
    assert code == 1
    assert "not written" in stderr and stderr.rstrip().endswith("1 of 1 file failed")
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_repeated_stems_get_distinct_keys(tmp_path: Path, clips: list[Path]):
    other = tmp_path / "sub"
    other.mkdir()
    twin = other / "a.flac"
    sf.write(twin, music(0.5, 22050, 9), 22050)
    out = tmp_path / "o.npz"
    assert invoke("features", clips[0], twin, "--features", "rms", "--out", out)[0] == 0
    with np.load(out) as z:
        assert json.loads(str(z["sources"])) == {"a": str(clips[0]), "a_2": str(twin)}
        assert z["a_2/rms"].shape == (1, FeatureConfig().frames(11025))


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"n_fft": ', "is malformed"),
        ('["n_fft", 1024]', "must be an object"),
        ('{"nfft": 1024}', "unknown FeatureConfig field(s): nfft"),
        ('{"n_fft": 1000}', "n_fft=1000"),
        ('{"hop_length": "512"}', "hop_length must be an integer"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, clips: list[Path], text: str, message: str):
    config_path = tmp_path / "bad.json"
    config_path.write_text(text)
    result = CliRunner().invoke(cli, ["features", str(clips[0]), "--config", str(config_path)])
    assert result.exit_code == 2
    assert "Invalid value for '--config'" in result.stderr
    assert str(config_path) in result.stderr and message in result.stderr


def test_bad_override_names_the_option_and_field(clips: list[Path]):
    result = CliRunner().invoke(cli, ["features", str(clips[0]), "--n-fft", "1000"])
    assert result.exit_code == 2
    assert "--n-fft" in result.stderr and "n_fft=1000" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--features", "mfcc,nope"], "unknown feature(s) 'nope'"),
        (["--features", ","], "no feature named"),
        (["--out", "feats.txt"], "the format is chosen by the suffix"),
    ],
)
def test_bad_options_are_clear_errors(clips: list[Path], args: list[str], message: str):
    result = CliRunner().invoke(cli, ["features", str(clips[0]), *args])
    assert result.exit_code == 2 and message in result.stderr


def test_audio_is_required():
    result = CliRunner().invoke(cli, ["features"])
    assert result.exit_code == 2 and "AUDIO" in result.stderr


# ------------------------------------------------------------------ parity


def test_parity_passes_on_a_generated_clip(clips: list[Path]):
    pytest.importorskip("librosa", reason="the parity reference: pip install 'harmonies[test]'")
    code, out, stderr = invoke("parity", clips[0], clips[2], "--verbose")
    assert code == 0, out + stderr
    assert "0 of 2 files failed" in out
    for name in FEATURE_NAMES:
        lines = [line for line in out.splitlines() if line.startswith(name + " ")]
        assert len(lines) == 2 and all(" PASS " in line for line in lines), name
    assert "librosa 0.11" in out
    assert "tolerances:" in out  # --verbose prints each tolerance's reason


def _fake_parity(passed_by_feature: dict[str, bool]) -> types.ModuleType:
    """A stand-in for pyharmonies.parity whose comparisons pass or fail on demand."""
    from pyharmonies.parity import ParityResult, Tolerance

    def compare(y, config=None, features=None):
        frames = config.frames(y.size)
        return [
            ParityResult(name, frames, frames, frames, 0.0 if ok else 0.5, 0.0 if ok else 0.1,
                         Tolerance("linear", 1e-3, 1e-6, f"reason for {name}"), ok, "fake 1.0",
                         "fine" if ok else "12 of 40 values outside tolerance")
            for name, ok in passed_by_feature.items()
            if features is None or name in features
        ]  # fmt: skip

    module = types.ModuleType("pyharmonies.parity")
    module.compare = compare
    module.Tolerance, module.ParityResult = Tolerance, ParityResult
    return module


def test_parity_fails_when_a_feature_is_out_of_tolerance(monkeypatch: pytest.MonkeyPatch, clips: list[Path]):
    pytest.importorskip("librosa", reason="the command checks for librosa first: pip install 'harmonies[test]'")
    monkeypatch.setitem(sys.modules, "pyharmonies.parity", _fake_parity({"mfcc": True, "chroma": False}))
    code, out, _ = invoke("parity", clips[1], "--features", "mfcc,chroma", "-v")
    assert code == 1
    assert [line.split()[-3] for line in out.splitlines() if line.startswith(("mfcc ", "chroma "))] == ["PASS", "FAIL"]
    assert "1/2 features within tolerance" in out
    assert "1 feature comparison out of tolerance" in out
    assert "chroma: 12 of 40 values outside tolerance" in out and "chroma: reason for chroma" in out


def test_parity_reports_unreadable_files_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, clips: list[Path], corrupt: Path
):
    pytest.importorskip("librosa", reason="the command checks for librosa first: pip install 'harmonies[test]'")
    monkeypatch.setitem(sys.modules, "pyharmonies.parity", _fake_parity({"rms": True}))
    code, out, err = invoke("parity", corrupt, clips[0], "--features", "rms")
    assert code == 1
    assert f"error: {corrupt}" in err
    assert f"{clips[0]}: 1.50 s" in out and "1 of 2 files failed" in out


def test_parity_without_librosa_says_what_to_install(monkeypatch: pytest.MonkeyPatch, clips: list[Path]):
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes `import librosa` raise ImportError
    result = CliRunner().invoke(cli, ["parity", str(clips[0])])
    assert result.exit_code == 1
    assert "needs librosa" in result.stderr and "pip install 'harmonies[test]'" in result.stderr


# ------------------------------------------------------------------ demo


def test_demo_runs_end_to_end(tmp_path: Path):
    """`make demo` at a small scale: corpus, training, int8 export, evaluation, live replay."""
    from pyharmonies import demo

    args = ["--root", str(tmp_path), "--tunes", "6", "--epochs", "1", "--listen-seconds", "1"]
    result = CliRunner().invoke(demo.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "export" / "demo"
    assert (bundle / "manifest.json").is_file() and (bundle / "model.int8.tflite").is_file()
    assert json.loads((bundle / "manifest.json").read_text())["model"]["name"] == "cnn_ensemble"  # train's default
    assert (tmp_path / "build" / "demo" / "confusion-int8.png").stat().st_size > 1000
    table = (tmp_path / "build" / "demo" / "accuracy.md").read_text()
    for family in ("piano", "guitar", "strings", "brass", "reed", "pipe"):
        assert f"| {family} |" in table
        assert f"a {family} tune the model never heard" in result.stdout
    assert result.stdout.count("windows classified") == 6
    assert "Next, try:" in result.stdout and "harmonies listen --model" in result.stdout
    assert "harmonies dataset soundtracks data/soundtracks" in result.stdout  # the real-music set, after the demo
