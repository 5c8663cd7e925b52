"""Make on x86-64 what the device-side tests need and cannot make under emulation on arm64.

``make test-arm64`` runs this with the workstation's venv, then the device-side tests on arm64
with ``HARMONIES_PREBUILT`` pointing at OUT (see ``prebuilt`` in tests/conftest.py)::

    python tests/make_prebuilt.py OUT

OUT/small-bundle  conftest.py's ``small_bundle`` (int8 TFLite and ONNX, its corpus)
OUT/stream        test_stream.py's ``tiny`` (bundle, clip.wav)
OUT/stream-lstm   conftest.py's ``stream_lstm`` (an LSTM bundle with its step model, clip.wav)
OUT/crossarch     clips for the cross-architecture check and this machine's reference of them,
                  reference.npz (pyharmonies.crossarch), and clip30.wav for the memory figure
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from _lstm_bundle import make_stream_lstm
from conftest import make_small_bundle
from pyharmonies.crossarch import write_reference
from test_stream import make_tiny

#: Seconds of the long clip: the figures of firmware_notes/arm64.md are of classify on 30 s.
LONG_S = 30


def crossarch_clips(corpus: Path, out: Path) -> list[Path]:
    """One clip per class as the corpus has it (22050 Hz), one resampled to 44.1 kHz (soxr on the
    device brings it back), and 30 s of the corpus end to end; written under ``out``."""
    out.mkdir(parents=True)
    classes = sorted(p for p in corpus.iterdir() if p.is_dir())
    clips = [Path(shutil.copy(next(iter(sorted(c.glob("*.wav")))), out / f"{c.name}.wav")) for c in classes]
    y, sr = sf.read(clips[0], dtype="float32")
    high = out / "resampled-44100.wav"
    sf.write(high, soxr.resample(y, sr, 44100), 44100, subtype="FLOAT")
    parts = [sf.read(p, dtype="float32")[0] for p in sorted(corpus.rglob("*.wav"))]
    long = np.concatenate(parts * (1 + LONG_S * sr // sum(map(len, parts))))[: LONG_S * sr]
    sf.write(out / "clip30.wav", long, sr, subtype="PCM_16")
    return [*clips, high, out / "clip30.wav"]


def main(out: Path) -> None:
    """Make every fixture under ``out`` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    small = make_small_bundle(out / "small-bundle")
    make_tiny(out / "stream")
    make_stream_lstm(out / "stream-lstm")
    clips = crossarch_clips(small.corpus, out / "crossarch")
    write_reference(out / "crossarch" / "reference.npz", small.bundle, clips)
    print(f"prebuilt fixtures in {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/make_prebuilt.py OUT")
    main(Path(sys.argv[1]))
