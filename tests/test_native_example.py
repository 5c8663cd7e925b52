"""The firmware-style example (native/examples/pcm_features.c) computes the
same frame vectors as the Python API: the C core alone, fed raw PCM from a
pipe in fixed memory, agrees with what training computes."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig, extract

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The example, compiled from source with the system C compiler as a firmware team would."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "a C compiler is part of the build requirements"
    out = tmp_path_factory.mktemp("example") / "pcm_features"
    sources = sorted(str(p) for p in (ROOT / "native" / "src").glob("*.c"))
    subprocess.run(
        [cc, "-std=c99", "-O2", f"-I{ROOT / 'native' / 'include'}", *sources,
         str(ROOT / "native" / "examples" / "pcm_features.c"), "-lm", "-o", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def _pcm(seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t) + 0.05 * rng.standard_normal(t.size)
    return np.round(np.clip(y, -1, 1) * 32767).astype("<i2")


@pytest.mark.parametrize(("features", "names"), [("frame_vector", FRAME_VECTOR_FEATURES), ("log_mel", ("log_mel",))])
def test_example_rows_equal_the_python_features(example: Path, features: str, names: tuple[str, ...]):
    pcm = _pcm(1.7, 22050, seed=7)
    run = subprocess.run([str(example), "--features", features], input=pcm.tobytes(), capture_output=True, check=True)
    table = np.loadtxt(io.StringIO(run.stdout.decode()), delimiter=",", skiprows=1, ndmin=2)
    ours = extract(pcm, FeatureConfig(), features=names)
    expected = np.concatenate([ours[name] for name in names], axis=0).T
    assert table.shape == expected.shape
    # The example prints %.9g: enough digits to read back the exact float32.
    np.testing.assert_array_equal(table.astype(np.float32), expected)
    assert b"bytes" in run.stderr  # it reports its memory footprint


def test_example_refuses_a_bad_option(example: Path):
    run = subprocess.run([str(example), "--n-fft", "1000"], input=b"", capture_output=True)
    assert run.returncode != 0
    assert b"n_fft" in run.stderr
