"""Averaging models: does the mean of several independently trained runs beat its members?

    .venv/bin/python benchmarks/ensemble_folds.py RUNS/a RUNS/b RUNS/c ... [--out ensemble.json]

Every RUN is a ``--folds`` run on the same folds (same data, same seed, same K:
checked through each fold's ``splits.json``). For each fold, each run's best
model classifies the fold's test clips; an ensemble of k runs averages its
members' logits per window (the softmax of the mean log-probability: what one
exported model file holding the k networks computes), and a clip's answer is
the mean of its windows' probabilities, as ``evaluate`` does. For every k it prints the clip accuracy of the
ensembles (mean over all k-subsets of the runs) against the mean of their
members, paired by fold: what averaging k models gains, independent of which
runs happen to be better. Nothing is retrained; the test clips choose nothing.
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

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402
from pyharmonies.training.loop import evaluate_windows  # noqa: E402


def clip_accuracy(probs: np.ndarray, scored) -> float:
    """Clip accuracy of window ``probs`` (n, classes) cut as ``scored``'s windows, pooled as ``evaluate`` pools them."""
    return evaluate_windows(probs, scored.y, scored.windows, scored.labels)["clip"]["accuracy"]


def average_logits(probs: list[np.ndarray]) -> np.ndarray:
    """Softmax of the members' mean log-probabilities, (n, classes): the ensemble of mean logits."""
    mean_log = np.mean([np.log(np.clip(p, 1e-12, None)) for p in probs], axis=0)
    mean_log -= mean_log.max(axis=1, keepdims=True)
    e = np.exp(mean_log)
    return e / e.sum(axis=1, keepdims=True)


def fold_test_keys(fold: Path) -> list[str]:
    """The test clip keys a fold saved, to check that runs share their folds."""
    return sorted(json.loads((fold / "splits.json").read_text(encoding="utf-8"))["splits"]["test"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds run folders trained on the same folds")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give at least two runs to average")

    data = json.loads((args.runs[0] / "config.json").read_text())["data"]
    folds = sorted(p.name for p in args.runs[0].glob("fold-*"))
    singles: dict[str, list[float]] = {str(r): [] for r in args.runs}
    ensembles: dict[int, list[float]] = {}
    members_mean: dict[int, list[float]] = {}
    for fold in folds:
        keys = fold_test_keys(args.runs[0] / fold)
        probs = {}
        for run in args.runs:
            if fold_test_keys(run / fold) != keys:
                sys.exit(f"{run / fold}: other test clips than {args.runs[0] / fold}: the runs do not share their folds")
            s = window_probabilities(run / fold, data, split="test", progress=False)
            probs[str(run)] = s.probs
            singles[str(run)].append(clip_accuracy(s.probs, s))
        for k in range(2, len(args.runs) + 1):
            subsets = list(itertools.combinations(probs, k))
            ensembles.setdefault(k, []).append(float(np.mean([clip_accuracy(average_logits([probs[r] for r in c]), s) for c in subsets])))
            members_mean.setdefault(k, []).append(float(np.mean([np.mean([singles[r][-1] for r in c]) for c in subsets])))
        print(f"{fold}: " + ", ".join(f"{Path(r).name} {100 * v[-1]:.1f}" for r, v in singles.items())
              + ", " + ", ".join(f"average of {k} {100 * v[-1]:.1f}" for k, v in ensembles.items()), flush=True)  # fmt: skip

    print("\n| models averaged | clip accuracy | their members alone | gain, paired by fold |\n|---:|---:|---:|---:|")
    rows = []
    for k in ensembles:
        e, m, d = interval(ensembles[k]), interval(members_mean[k]), paired_difference(ensembles[k], members_mean[k])
        rows.append({"k": k, "ensemble": e, "members": m, "gain": d})
        print(f"| {k} | {100 * e['mean']:.1f} ± {100 * e['std']:.1f} | {100 * m['mean']:.1f} ± {100 * m['std']:.1f} | "
              f"{100 * d['mean']:+.2f} ± {100 * d['std']:.2f} (95% CI {100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f}) |")
    if args.out:
        args.out.write_text(json.dumps({"runs": [str(r) for r in args.runs], "folds": folds, "single": singles,
                                        "rows": rows}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
