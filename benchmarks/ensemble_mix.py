"""Averaging unlike members: does a triple gain when some members were trained another way?

    .venv/bin/python benchmarks/ensemble_mix.py BASE... --with OTHER... [--k 3] [--out mix.json]

BASE runs are one recipe trained with different seeds (the default's members);
OTHER runs are members trained another way (another augmentation, say), all on
the same folds. For j = 0 .. k, an ensemble of k members takes j of them from
OTHER and k - j from BASE; its score on a fold is the mean clip accuracy over
every such choice, averaged as ``ensemble_folds.py`` averages (the softmax of
the members' mean log-probability per window, a clip's windows pooled by their
mean probability). Each mix is paired by fold with j = 0, the expected score of
k BASE members: what the unlike members add, beyond which seeds happen to be
lucky. Nothing is retrained; the test clips choose nothing.
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

from ensemble_folds import average_logits, clip_accuracy, fold_test_keys  # noqa: E402

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402


def mixes(base: list[str], other: list[str], k: int, j: int) -> list[tuple[str, ...]]:
    """Every ensemble of ``j`` runs from ``other`` and ``k - j`` from ``base``, as tuples of run names."""
    return [a + b for a in itertools.combinations(other, j) for b in itertools.combinations(base, k - j)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, nargs="+", help="--folds runs of one recipe, different seeds")
    parser.add_argument("--with", dest="other", type=Path, nargs="+", required=True,
                        help="--folds runs trained another way, on the same folds")  # fmt: skip
    parser.add_argument("--k", type=int, default=3, help="members per ensemble (default 3, the default CNN's)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    args = parser.parse_args()
    if args.k < 2 or len(args.base) < args.k:
        parser.error(f"--k must be at least 2 and at most the number of BASE runs ({len(args.base)})")

    runs = args.base + args.other
    base, other = [str(r) for r in args.base], [str(r) for r in args.other]
    js = list(range(0, min(args.k, len(other)) + 1))
    data = json.loads((runs[0] / "config.json").read_text())["data"]
    folds = sorted(p.name for p in runs[0].glob("fold-*"))
    singles: dict[str, list[float]] = {str(r): [] for r in runs}
    scores: dict[int, list[float]] = {j: [] for j in js}
    for fold in folds:
        keys = fold_test_keys(runs[0] / fold)
        probs, scored = {}, None
        for run in runs:
            if fold_test_keys(run / fold) != keys:
                sys.exit(f"{run / fold}: other test clips than {runs[0] / fold}: the runs do not share their folds")
            scored = window_probabilities(run / fold, data, split="test", progress=False)
            probs[str(run)] = scored.probs
            singles[str(run)].append(clip_accuracy(scored.probs, scored))
        for j in js:
            accs = [clip_accuracy(average_logits([probs[r] for r in m]), scored) for m in mixes(base, other, args.k, j)]
            scores[j].append(float(np.mean(accs)))
        print(f"{fold}: " + ", ".join(f"{j} other {100 * scores[j][-1]:.1f}" for j in js), flush=True)

    print("\n| run | clip accuracy alone |\n|---|---:|")
    for r, v in singles.items():
        s = interval(v)
        print(f"| {Path(r).name} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} |")
    print(f"\n| members of {args.k} from OTHER | ensembles | clip accuracy | against 0, paired by fold |\n|---:|---:|---:|---:|")
    rows = []
    for j in js:
        e, d = interval(scores[j]), paired_difference(scores[j], scores[0])
        rows.append({"other": j, "ensembles": len(mixes(base, other, args.k, j)), "accuracy": e, "against_base": d,
                     "per_fold": scores[j]})  # fmt: skip
        print(f"| {j} | {rows[-1]['ensembles']} | {100 * e['mean']:.1f} ± {100 * e['std']:.1f} | "
              f"{100 * d['mean']:+.2f} ± {100 * d['std']:.2f} (95% CI {100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f}) |")
    gain = averaging_gain(scores, singles, base, other, args.k)
    if gain:
        print(f"\naveraging gain over its own members, per fold: {args.k} BASE "
              + " / ".join(f"{100 * g:.1f}" for g in gain["base"]["values"]) + f", {args.k} OTHER "
              + " / ".join(f"{100 * g:.1f}" for g in gain["other"]["values"])
              + f"; OTHER - BASE {100 * gain['difference']['mean']:+.2f} ± {100 * gain['difference']['std']:.2f} "
              f"(95% CI {100 * gain['difference']['ci95'][0]:+.1f} to {100 * gain['difference']['ci95'][1]:+.1f})")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"base": base, "other": other, "k": args.k, "folds": folds, "single": singles,
                                        "rows": rows, "averaging_gain": gain}, indent=2) + "\n")  # fmt: skip


def averaging_gain(scores: dict[int, list[float]], singles: dict[str, list[float]], base: list[str], other: list[str],
                   k: int) -> dict | None:
    """What averaging adds over the members alone, per fold: k BASE members and k OTHER members, paired by fold.

    An ensemble's gain is its score minus its members' mean score; over every
    ensemble of one pool that is the mean ensemble score minus the pool's mean
    member score. None when OTHER holds fewer than ``k`` runs.
    """
    if k not in scores:
        return None
    pool_mean = lambda runs: np.mean([singles[r] for r in runs], axis=0)  # noqa: E731
    ours = np.asarray(scores[k]) - pool_mean(other)
    theirs = np.asarray(scores[0]) - pool_mean(base)
    return {"base": interval(theirs.tolist()), "other": interval(ours.tolist()),
            "difference": paired_difference(ours.tolist(), theirs.tolist())}  # fmt: skip


if __name__ == "__main__":
    main()
