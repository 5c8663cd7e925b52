"""Test-time crops: does a clip's answer improve with denser windows, or another way of pooling them?

    .venv/bin/python benchmarks/test_time_crops.py RUNS/cnn-folds [--hops 1.5 0.75 0.375] [--out crops.json]

For every fold of a cross-validated run, the fold's best model classifies the
fold's *validation* and *test* clips with windows every HOP seconds (the
run's own hop is the first), and each clip's answer is pooled three ways: the
mean of its windows' probabilities (what ``evaluate`` and ``select_by``
report), the mean of their log-probabilities (a geometric mean), and a
majority vote. The choice is made on the validation clips only (mean clip
accuracy over the folds); the test clips, scored the same way, say what the
choice gains, paired by fold against the run's own pooling. Nothing is
retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402

POOLINGS = ("mean", "log_mean", "vote")


def clip_accuracy(probs: np.ndarray, y: np.ndarray, clip_ids: np.ndarray, pooling: str) -> float:
    """Clip accuracy of windows ``probs`` (n, classes) pooled per clip by ``pooling``."""
    hits = []
    for c in np.unique(clip_ids):
        rows = probs[clip_ids == c]
        if pooling == "mean":
            score = rows.mean(axis=0)
        elif pooling == "log_mean":
            score = np.log(np.clip(rows, 1e-12, None)).mean(axis=0)
        else:
            score = np.bincount(rows.argmax(axis=1), minlength=rows.shape[1]) + 1e-6 * rows.mean(axis=0)  # ties: mean
        hits.append(int(score.argmax() == y[clip_ids == c][0]))
    return float(np.mean(hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --folds run folder (holding fold-0, fold-1, ...)")
    parser.add_argument("--hops", type=float, nargs="+", default=None, help="seconds between windows (default: the run's hop, 1/2, 1/4 of it)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default RUN/test-time-crops.json)")
    args = parser.parse_args()

    config = json.loads((args.run / "config.json").read_text())
    own_hop = config["window_hop"] or config["window"] / 2
    hops = args.hops or [own_hop, own_hop / 2, own_hop / 4]
    folds = sorted(args.run.glob("fold-*"), key=lambda p: int(p.name.split("-")[1]))
    scores: dict[str, dict[str, list[float]]] = {"val": {}, "test": {}}
    for fold in folds:
        for split in ("val", "test"):
            for hop in hops:
                s = window_probabilities(fold, config["data"], split=split, progress=False, hop_seconds=hop)
                clip_ids = np.asarray([w.clip for w in s.windows])
                for pooling in POOLINGS:
                    key = f"hop {hop:g} s, {pooling}"
                    scores[split].setdefault(key, []).append(clip_accuracy(s.probs, s.y, clip_ids, pooling))
        line = ", ".join(f"{k}: {100 * v[-1]:.1f}" for k, v in scores["test"].items())
        print(f"{fold.name} test: {line}", flush=True)

    own = f"hop {own_hop:g} s, mean"
    chosen = max(scores["val"], key=lambda k: (np.mean(scores["val"][k]), k == own))
    rows = []
    for key in scores["val"]:
        rows.append({"setting": key, "val": interval(scores["val"][key]), "test": interval(scores["test"][key]),
                     "test_minus_own": paired_difference(scores["test"][key], scores["test"][own])})  # fmt: skip
    print("\n| setting | validation clip acc. | test clip acc. | test − run's own, paired |\n|---|---:|---:|---:|")
    for r in rows:
        mark = " (chosen on validation)" if r["setting"] == chosen else ""
        d = r["test_minus_own"]
        print(f"| {r['setting']}{mark} | {100 * r['val']['mean']:.1f} ± {100 * r['val']['std']:.1f} | "
              f"{100 * r['test']['mean']:.1f} ± {100 * r['test']['std']:.1f} | {100 * d['mean']:+.2f} ± {100 * d['std']:.2f} |")
    out = args.out or args.run / "test-time-crops.json"
    out.write_text(json.dumps({"run": str(args.run), "hops": hops, "chosen_on_validation": chosen, "rows": rows,
                               "per_fold": scores}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
