"""Train short, test long: does the default CNN answer better when its test windows are longer than its training ones?

    .venv/bin/python benchmarks/test_window_length.py RUN... [--seconds 2 4 6 10] [--k 3] [--out windows.json]

Every RUN is a ``--folds`` CNN run on the same folds (the default's members,
different seeds). The network is convolutional up to its global average
pooling, so a model trained on 2 s windows takes a window of any length.
For each fold, each run's model classifies the fold's test clips with windows
of each length (every second), every k-subset of the runs is averaged as
``ensemble_folds.py`` averages, and a clip's answer is the mean of its
windows' probabilities. Lengths are compared, paired by fold, with the first
one. Nothing is retrained; the test clips choose nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ensemble_folds import average_logits, fold_test_keys  # noqa: E402

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402

HOP_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds CNN runs of one recipe, different seeds, same folds")
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 4.0, 6.0, 10.0],
                        help="test window lengths; the first is the reference (default: 2 4 6 10)")  # fmt: skip
    parser.add_argument("--k", type=int, default=3, help="members per average (default 3, the default CNN's)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    args = parser.parse_args()
    if not 1 <= args.k <= len(args.runs):
        parser.error(f"--k must be between 1 and the number of runs ({len(args.runs)})")

    data = json.loads((args.runs[0] / "config.json").read_text())["data"]
    folds = sorted(p.name for p in args.runs[0].glob("fold-*"))
    scores: dict[float, list[float]] = {s: [] for s in args.seconds}
    for fold in folds:
        for seconds in args.seconds:
            per_run = []
            for run in args.runs:
                if fold_test_keys(run / fold) != fold_test_keys(args.runs[0] / fold):
                    sys.exit(f"{run / fold}: other test clips than {args.runs[0] / fold}: the runs do not share their folds")
                per_run.append(window_probabilities(run / fold, data, split="test", progress=False, window_seconds=seconds,
                                                    hop_seconds=HOP_SECONDS))  # fmt: skip
            y, ids = per_run[0].y, np.asarray([w.clip for w in per_run[0].windows])
            order = np.unique(ids)
            truth = np.asarray([y[ids == c][0] for c in order])
            accs = []
            for subset in itertools.combinations(range(len(args.runs)), args.k):
                p = average_logits([per_run[i].probs for i in subset])
                accs.append(float((np.stack([p[ids == c].mean(axis=0) for c in order]).argmax(axis=1) == truth).mean()))
            scores[seconds].append(float(np.mean(accs)))
        print(f"{fold}: " + ", ".join(f"{s:g} s {100 * v[-1]:.1f}" for s, v in scores.items()), flush=True)

    ref = args.seconds[0]
    print(f"\n| test window | folds | mean ± std | against {ref:g} s, paired by fold | folds better |")
    print("|---:|---|---:|---:|---:|")
    rows = []
    for seconds, v in scores.items():
        s, d = interval(v), paired_difference(v, scores[ref])
        better = sum(a > b for a, b in zip(v, scores[ref]))
        rows.append({"seconds": seconds, "score": s, "against_reference": d, "folds_better": better})
        per_fold = " / ".join(f"{100 * x:.1f}" for x in v)
        print(f"| {seconds:g} s | {per_fold} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} | "
              f"{100 * d['mean']:+.1f} ± {100 * d['std']:.1f} | {better} of {len(v)} |")
    if args.out:
        out = {"runs": [str(r) for r in args.runs], "k": args.k, "folds": folds, "rows": rows}
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
