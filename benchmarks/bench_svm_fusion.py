"""What the fused SVM (``train --fuse-svm``) costs ``listen`` per result, against the same bundle's CNN alone.

    .venv/bin/python benchmarks/bench_svm_fusion.py BUNDLE [--audio FILE] [--seconds 60] [--repeat 3] [--json]

BUNDLE must carry an SVM (its manifest's ``svm`` section). One core: the
runtimes run one thread, and the BLAS libraries are held to one thread before
numpy loads. Over ``--seconds`` of audio (``--audio``, looped; by default
noise), pushed one hop at a time through ``SlidingClassifier`` as ``listen``
runs it (features, model, fusion, smoothing), the median time per hop with a
result, the least of ``--repeat`` passes, both ways: with the bundle's SVM and
without it. Also: the SVM's probabilities of one clip alone, and the bytes of
the model file and of the SVM's file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def per_hop_us(bundle, classifier, y: np.ndarray, svm, repeat: int) -> float:
    """Median microseconds per push of one hop that gives a result, the least over ``repeat`` passes."""
    from pyharmonies.stream import SlidingClassifier

    hop = bundle.hop_frames * bundle.feature_config.hop_length
    best = float("inf")
    for _ in range(repeat):
        slider = SlidingClassifier(classifier, bundle.feature_config, bundle.kind, bundle.window_frames, bundle.hop_frames,
                                   max_pending=0, svm=svm)  # fmt: skip
        times = []
        for lo in range(0, len(y) - hop + 1, hop):
            t = time.perf_counter()
            results = slider.push(y[lo : lo + hop])
            if results:
                times.append(time.perf_counter() - t)
        best = min(best, float(np.median(times)) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--audio", type=Path, default=None, help="audio to push (looped); default: noise")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pyharmonies.audio import load
    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier

    bundle = load_bundle(args.bundle)
    if bundle.svm is None:
        sys.exit(f"{args.bundle}: no fused SVM in this bundle (train with --fuse-svm, then export)")
    sr = bundle.feature_config.sample_rate
    n = int(args.seconds * sr)
    if args.audio is not None:
        y = load(args.audio, sr)
        y = np.resize(y, n).astype(np.float32)
    else:
        y = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    classifier = WindowClassifier(bundle, make_backend(bundle, threads=1))
    alone = per_hop_us(bundle, classifier, y, None, args.repeat)
    fused = per_hop_us(bundle, classifier, y, bundle.svm, args.repeat)
    x = bundle.svm.model.svm.mean[None]
    svm_us = min(_timed_us(lambda: bundle.svm.model.probabilities(x), 200) for _ in range(args.repeat))
    out = {"bundle": str(args.bundle), "model_file": classifier.backend.file.name,
           "model_bytes": classifier.backend.file.bytes, "svm_bytes": (bundle.path / bundle.svm.file).stat().st_size,
           "support_vectors": int(len(bundle.svm.model.svm.support_vectors)), "hop_s": bundle.hop_frames *
           bundle.feature_config.hop_length / sr, "per_result_us": {"cnn": round(alone, 1), "cnn + svm": round(fused, 1)},
           "svm_probabilities_us": round(svm_us, 1)}  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{args.bundle}: {out['model_file']} ({out['model_bytes']:,} B), svm {out['svm_bytes']:,} B "
          f"({out['support_vectors']:,} support vectors); a result every {out['hop_s']:.2f} s, one core")  # fmt: skip
    print(f"per result (features, model, smoothing): CNN alone {alone:.0f} us, with the SVM fused {fused:.0f} us "
          f"({fused / alone:.2f} x); the SVM's probabilities alone {svm_us:.0f} us")  # fmt: skip


def _timed_us(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


if __name__ == "__main__":
    main()
