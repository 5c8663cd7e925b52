"""The small-data curve of issue 12: clip accuracy against the fraction of labelled training tracks.

    .venv/bin/python benchmarks/small_data_curve.py --out docs/small-data-curve.png \\
        --run SVM 0.1 RUNS/svm-0.1 --run SVM 1 RUNS/svm ... [--baseline SVM] [--table curve.md]

Each ``--run LABEL FRACTION DIR`` is a ``harmonies train --folds K --train-fraction FRACTION``
run (its ``metrics.json``); runs of one label form a series. All runs must share the same folds
(the same ``--seed`` and data), so each fraction's series can be paired fold by fold with the
baseline's: the table gives mean ± std over folds and the paired difference to the baseline.
The PNG draws mean ± std per series against the fraction on a log axis.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training.crossval import paired_difference  # noqa: E402


def fold_accuracies(run: Path) -> list[float]:
    """Per-fold test clip accuracy (in %) of a ``--folds`` run, in fold order."""
    metrics = json.loads((run / "metrics.json").read_text())
    if "per_fold" not in metrics:
        raise SystemExit(f"{run}: not a --folds run (its metrics.json has no per_fold)")
    return [100 * f["test_clip_accuracy"] for f in sorted(metrics["per_fold"], key=lambda f: f["fold"])]


def plot(series: dict[str, dict[float, list[float]]], out: Path, title: str) -> None:
    """Mean ± std of each series against the fraction of labelled tracks (log x axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, points in series.items():
        fractions = sorted(points)
        means = np.array([np.mean(points[f]) for f in fractions])
        stds = np.array([np.std(points[f], ddof=1) if len(points[f]) > 1 else 0.0 for f in fractions])
        line = ax.plot([100 * f for f in fractions], means, marker="o", label=label)[0]
        ax.fill_between([100 * f for f in fractions], means - stds, means + stds, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    ticks = sorted({100 * f for points in series.values() for f in points})
    ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training tracks kept (validation and test unchanged)")
    ax.set_ylabel("test clip accuracy, % (mean ± std over folds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def table(series: dict[str, dict[float, list[float]]], baseline: str | None) -> str:
    """A markdown table: one row per series, one column per fraction, mean ± std (and Δ to the baseline)."""
    fractions = sorted({f for points in series.values() for f in points})
    head = "| run | " + " | ".join(f"{100 * f:g}% of the tracks" for f in fractions) + " |"
    lines = [head, "|---|" + "---:|" * len(fractions)]
    for label, points in series.items():
        cells = []
        for f in fractions:
            if f not in points:
                cells.append("–")
                continue
            values = points[f]
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
            cell = f"{mean:.1f} ± {std:.1f}"
            if baseline and label != baseline and f in series.get(baseline, {}):
                d = paired_difference(values, series[baseline][f])
                cell += f" ({d['mean']:+.1f} ± {d['std']:.1f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if baseline:
        lines.append("")
        lines.append(f"In brackets: the paired difference to {baseline} on the same folds, mean ± std.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=3, action="append", metavar=("LABEL", "FRACTION", "DIR"), required=True,
                        help="one point: a series label, the fraction of labelled tracks (0-1], a --folds run folder")
    parser.add_argument("--baseline", default=None, help="the label the others are paired against (e.g. SVM)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG")
    parser.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    parser.add_argument("--title", default="Fewer labels: clip accuracy, 5 folds by track")
    args = parser.parse_args()

    series: dict[str, dict[float, list[float]]] = defaultdict(dict)
    for label, fraction, run in args.run:
        f = float(fraction)
        if not 0 < f <= 1:
            raise SystemExit(f"fraction must be in (0, 1], got {fraction}")
        series[label][f] = fold_accuracies(Path(run))
    if args.baseline and args.baseline not in series:
        raise SystemExit(f"--baseline {args.baseline!r} names no series; series: {', '.join(series)}")
    plot(series, args.out, args.title)
    text = table(series, args.baseline)
    print(text, end="")
    if args.table:
        args.table.write_text(text)


if __name__ == "__main__":
    main()
