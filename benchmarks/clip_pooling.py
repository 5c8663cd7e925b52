"""How a clip's windows become one answer: mean probability, mean log-probability, or a majority vote.

    .venv/bin/python benchmarks/clip_pooling.py RUNS/cnn-folds [RUNS/other-folds ...] [--out clip-pooling.json]

Every fold's kept model (``best.pt``) classifies the windows of its test clips
once; the three rules then pool the same window probabilities, so their
differences are paired within a model, free of run-to-run noise. ``evaluate``
and every report use the mean probability. Nothing is retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training.crossval import paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402

RULES = ("mean", "log_mean", "vote")


def pooled_answers(probs: np.ndarray, clips: np.ndarray) -> dict[str, np.ndarray]:
    """Each rule's class per clip, in ``np.unique(clips)`` order.

    ``probs`` is ``(windows, classes)``, ``clips`` the clip of each window, ``(windows,)``.
    """
    answers: dict[str, list[int]] = {rule: [] for rule in RULES}
    for clip in np.unique(clips):
        p = probs[clips == clip]
        answers["mean"].append(int(p.mean(axis=0).argmax()))
        answers["log_mean"].append(int(np.log(np.maximum(p, 1e-9)).mean(axis=0).argmax()))
        answers["vote"].append(int(np.bincount(p.argmax(axis=1), minlength=p.shape[1]).argmax()))  # ties: lowest class
    return {rule: np.asarray(a) for rule, a in answers.items()}


def fold_figures(fold: Path, data: str) -> dict[str, float]:
    """Test clip accuracy of ``fold``'s kept model under each rule."""
    scores = window_probabilities(fold, data, split="test", progress=False)
    clips = np.asarray([w.clip for w in scores.windows])
    truth = np.asarray([scores.y[clips == clip][0] for clip in np.unique(clips)])
    return {rule: float((answer == truth).mean()) for rule, answer in pooled_answers(scores.probs, clips).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds run folders (each holding fold-0, fold-1, ...)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: clip-pooling.json in the first run)")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        data = json.loads((run / "config.json").read_text())["data"]
        for fold in sorted(run.glob("fold-*"), key=lambda p: int(p.name.split("-")[1])):
            if (fold / "metrics.json").exists():
                rows.append({"run": run.name, "fold": fold.name, **fold_figures(fold, data)})
                print(" ".join([f"{run.name} {fold.name}:"] + [f"{rule} {100 * rows[-1][rule]:.1f}" for rule in RULES]), flush=True)
    summary = {rule: paired_difference([100 * r[rule] for r in rows], [100 * r["mean"] for r in rows]) for rule in RULES[1:]}
    for rule, diff in summary.items():
        print(f"{rule} - mean, paired over {len(rows)} folds: {diff['mean']:+.2f} ± {diff['std']:.2f} points "
              f"(95% CI {diff['ci95'][0]:+.2f} to {diff['ci95'][1]:+.2f})")
    out = args.out or args.runs[0] / "clip-pooling.json"
    out.write_text(json.dumps({"folds": rows, "difference_from_mean": summary}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
