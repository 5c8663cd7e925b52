"""A tiny LSTM bundle with its step model, for the streaming tests (``stream_lstm`` in conftest.py).

A module of its own (not conftest.py) so that tests/make_prebuilt.py can make it beforehand for
``make test-arm64``, where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The LSTM: the defaults (one layer, mean pooling, segment 4) at a quarter of the width, so that it
#: trains and exports in seconds; 1 s windows are 43 frames, 10 steps.
LSTM_OPTIONS = {"hidden": 16, "projection": 16}


@dataclass(frozen=True)
class StreamLSTM:
    """A trained run, its bundle (onnx and tflite, fp32 and int8, window and step models), its corpus, and a clip."""

    bundle: Path
    run: Path
    corpus: Path
    clip: Path  # one corpus clip of each class end to end and a third of a second more: 9.3 s, 402 frames


def make_stream_lstm(base: Path) -> StreamLSTM:
    """Train and export under ``base`` (3 classes x 4 synthetic clips of 3 s, 12 epochs, one training thread)."""
    import soundfile as sf
    import torch

    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    corpus = base / "synth"
    synth_corpus(corpus, classes=3, clips_per_class=4, seconds=3.0, seed=5, progress=False, jobs=1)
    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="lstm", window=1.0, seed=0,
                      batch_size=8, epochs=12, patience=12, lr=1e-2, augment=False, mixup=0.0, label_smoothing=0.0,
                      model_options=LSTM_OPTIONS, backbone="none")  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights on any machine with these kernels
    try:
        run = train_run(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    # allow_drop: the accuracy gate has its own tests (tests/test_export.py); here the files only need to exist.
    export_run(run, base / "bundle", int8=True, calibration=32, allow_drop=True, progress=False, latency_runs=1, data=str(corpus))
    parts = [sf.read(next(iter(sorted(c.glob("*.wav")))), dtype="float32") for c in sorted(p for p in corpus.iterdir() if p.is_dir())]
    sr = parts[0][1]
    y = np.concatenate([p[0] for p in parts] + [parts[0][0][: sr // 3]])
    sf.write(base / "clip.wav", y, sr, subtype="FLOAT")
    return stream_lstm_in(base)


def stream_lstm_in(base: Path) -> StreamLSTM:
    """The :class:`StreamLSTM` that :func:`make_stream_lstm` made under ``base``."""
    return StreamLSTM(base / "bundle", base / "run", base / "synth", base / "clip.wav")
