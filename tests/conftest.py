"""Shared fixtures: one seed for every random signal in the suite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _lstm_bundle import StreamLSTM, make_stream_lstm, stream_lstm_in
from _prebuilt import prebuilt  # noqa: F401  (re-exported for the fixtures below)

#: The suite's seed: a failure reproduces with the same signals.
SEED = 20240611


@pytest.fixture(scope="session")
def seed() -> int:
    """The suite's seed, for fixtures that build their own generators."""
    return SEED


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A fresh generator, seeded, for each test."""
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def three_class_corpus(tmp_path_factory) -> Path:
    """A synthetic corpus of 3 classes x 10 clips of 4 s (seed 11): what the small CNN runs train on."""
    from pyharmonies.data.synth import synth_corpus

    root = tmp_path_factory.mktemp("three-class") / "synth"
    synth_corpus(root, classes=3, clips_per_class=10, seconds=4.0, seed=11, progress=False)
    return root


@dataclass(frozen=True)
class SmallBundle:
    """A trained run, its bundle and its corpus (see :func:`small_bundle`)."""

    bundle: Path
    run: Path
    corpus: Path
    cache: Path


#: A tiny MobileNetV2: two stages, 32 last channels; trains in seconds on one core.
SMALL_CNN = {"blocks": ((1, 8, 1, 1), (2, 16, 1, 2)), "last_channels": 32}


def make_small_bundle(base: Path) -> SmallBundle:
    """Train and export the bundle of :func:`small_bundle` under ``base``."""
    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    corpus = base / "synth"
    synth_corpus(corpus, classes=3, clips_per_class=4, seconds=3.0, seed=5, progress=False, jobs=1)
    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="cnn", window=1.0, seed=0,
                      features={"n_mels": 32}, batch_size=8, epochs=2, patience=2, augment=False, mixup=0.0,
                      model_options=SMALL_CNN, backbone="none", members=1)  # fmt: skip
    run = train_run(cfg, progress=False)
    export_run(run, base / "bundle", int8=True, allow_drop=True, progress=False, latency_runs=1, data=str(corpus))
    return small_bundle_in(base)


def small_bundle_in(base: Path) -> SmallBundle:
    """The :class:`SmallBundle` that :func:`make_small_bundle` made under ``base``."""
    return SmallBundle(base / "bundle", base / "run", base / "synth", base / "cache")


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory) -> SmallBundle:
    """A bundle as ``harmonies export --int8`` writes it (onnx and tflite, fp32 and int8),
    of a tiny CNN trained for 2 epochs on 3 classes x 4 synthetic clips of 3 s (1 s windows,
    32 mels): what a device runs, end to end. It need not classify well: the tests that use
    it check plumbing, memory and imports, not accuracy. Made beforehand where
    ``HARMONIES_PREBUILT`` is set (see :func:`prebuilt`)."""
    made = prebuilt("small-bundle")
    if made is not None:
        return small_bundle_in(made)
    return make_small_bundle(tmp_path_factory.mktemp("small-bundle"))


@pytest.fixture(scope="session")
def stream_lstm(tmp_path_factory) -> StreamLSTM:
    """A tiny LSTM's bundle as ``harmonies export --int8`` writes it, step model included (onnx and tflite,
    fp32 and int8), and a 9.3 s clip crossing its 3 classes (tests/_lstm_bundle.py). Made beforehand where
    ``HARMONIES_PREBUILT`` is set. Shared, so read it only: copy it to change it."""
    made = prebuilt("stream-lstm")
    if made is not None:
        return stream_lstm_in(made)
    return make_stream_lstm(tmp_path_factory.mktemp("stream-lstm"))


@dataclass(frozen=True)
class SvmFolds:
    """A 2-fold SVM cross-validation made by the command line, and what it printed."""

    data: Path  # 3 classes x 6 clips of 2 s
    run: Path
    output: str


@pytest.fixture(scope="session")
def svm_folds(tmp_path_factory) -> SvmFolds:
    """``harmonies train DATA --model svm --folds 2``: a real cross-validation in about a second per fold.

    Shared, so read it only: copy it to change it."""
    from click.testing import CliRunner

    from pyharmonies.cli import cli
    from pyharmonies.data.synth import synth_corpus

    root = tmp_path_factory.mktemp("svm-folds")
    data = root / "data"
    synth_corpus(data, classes=3, clips_per_class=6, seconds=2.0, seed=3, progress=False, jobs=1)
    run = root / "svm-2f"
    result = CliRunner().invoke(cli, ["train", str(data), "--model", "svm", "--folds", "2", "--out", str(run),
                                      "--cache", str(root / "cache"), "--quiet"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return SvmFolds(data, run, result.output)
