"""The fused SVM on whole recordings: statistics over the whole file, or over clip-long segments?

    .venv/bin/python benchmarks/svm_long_files.py SVM_RUN [--out long_files.json]

``SVM_RUN`` is a ``--folds`` run (``harmonies train DATA --model svm --folds 5``)
whose folds give the splits. On each fold the calibrated SVM of ``train
--fuse-svm`` is fitted on the training clips (C chosen on validation, the
sigmoids on grouped cross-validation), exactly as :func:`fuse_run` fits it.
Each test *recording* (a music file of the set: its clips are back-to-back
cuts, so their frames side by side are the recording less the skipped
ends and any silent clip left out) is then classified by the SVM alone in
three ways:

- ``whole``: the statistics of all its frames at once (the SVM read a file
  this way in ``classify`` until this benchmark);
- ``segments``: the mean of the probabilities of its clip-long pieces, each
  read as the SVM was fitted (what ``classify`` does now);
- ``clip`` accuracy of the same SVM on the test clips, for scale.

Recording accuracy is the share of test recordings whose label wins.
Nothing here trains a network; the test recordings choose nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.runtime.svm import FrameStatistics  # noqa: E402
from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.fusion import frame_statistics, run_split_keys  # noqa: E402
from pyharmonies.training.svm import fit_calibrated_svm  # noqa: E402

CLIP_SUFFIX = re.compile(r"_\d+$")


def recording_of(key: str) -> str:
    """The music file a clip was cut from: its path without the clip number (``flare/theme_004.wav`` -> ``flare/theme``)."""
    return CLIP_SUFFIX.sub("", str(Path(key).with_suffix("")))


def fold_scores(fold: Path, prep, stats: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Accuracy of one fold's calibrated SVM on its test clips and test recordings, read whole or by segments."""
    keys = run_split_keys(fold)
    index = {c.key: i for i, c in enumerate(prep.clips)}
    label_index = {label: i for i, label in enumerate(labels)}
    y = np.asarray([label_index[c.label] for c in prep.clips])
    rows = {s: np.asarray([index[k] for k in keys.get(s, []) if k in index], dtype=np.int64) for s in ("train", "val", "test")}
    train, val, test = rows["train"], rows["val"], rows["test"]
    groups = [prep.clips[i].group("track") for i in train]
    svm = fit_calibrated_svm(stats[train], y[train], groups, stats[val], y[val], labels, 0)
    clip_probs = svm.probabilities(stats[test])
    recordings: dict[str, list[int]] = defaultdict(list)
    for position, i in enumerate(test):
        recordings[recording_of(prep.clips[i].key)].append(position)
    whole, segments, truth = [], [], []
    for name, positions in sorted(recordings.items()):
        positions.sort(key=lambda p: prep.clips[test[p]].key)  # clip numbers: the recording's order
        running = None
        for p in positions:
            frames = prep.cache.clip_features(prep.clips[test[p]], "frame_vector")
            running = running or FrameStatistics(frames.shape[0])
            running.push(frames)
        whole.append(svm.probabilities(running.vector()[None])[0])
        segments.append(clip_probs[positions].mean(axis=0))
        truth.append(y[test[positions[0]]])
    truth = np.asarray(truth)
    return {
        "clip": float((clip_probs.argmax(1) == y[test]).mean() * 100),
        "whole": float((np.argmax(whole, 1) == truth).mean() * 100),
        "segments": float((np.argmax(segments, 1) == truth).mean() * 100),
        "recordings": len(truth),
        "mean_clips_per_recording": float(np.mean([len(p) for p in recordings.values()])),
    }


def main(argv: list[str] | None = None) -> int:
    """Print each fold's accuracies and the paired difference segments - whole; optionally write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --folds run (the SVM baseline's) whose folds give the splits")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    folds = sorted(p for p in args.run.glob("fold-*") if (p / "splits.json").is_file())
    if not folds:
        parser.error(f"{args.run}: no fold-*/splits.json")
    cfg = json.loads((folds[0] / "config.json").read_text(encoding="utf-8"))
    meta = json.loads((folds[0] / "model.json").read_text(encoding="utf-8"))
    labels = list(meta["labels"])
    prep, stats = frame_statistics(cfg["data"], meta["feature_config"], cfg.get("cache", ".cache/features"), labels)
    per_fold = [fold_scores(f, prep, stats, labels) for f in folds]
    print("fold  recordings  clips/rec  clip acc  recording: whole  segments")
    for f, s in zip(folds, per_fold):
        print(f"{f.name:6} {s['recordings']:9d} {s['mean_clips_per_recording']:10.1f} {s['clip']:9.1f}"
              f" {s['whole']:16.1f} {s['segments']:9.1f}")  # fmt: skip
    summary = {name: interval([s[name] for s in per_fold]) for name in ("clip", "whole", "segments")}
    summary["segments_minus_whole"] = paired_difference([s["segments"] for s in per_fold], [s["whole"] for s in per_fold])
    for name, v in summary.items():
        print(f"{name:20} {v['mean']:+6.1f} ± {v['std']:.1f} (95% CI {v['ci95'][0]:+.1f} to {v['ci95'][1]:+.1f})")
    if args.out:
        args.out.write_text(json.dumps({"per_fold": per_fold, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
