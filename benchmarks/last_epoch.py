"""Which epoch to keep: the one the validation tracks chose, or the last one of the schedule?

    .venv/bin/python benchmarks/last_epoch.py RUNS/cnn-folds [RUNS/other-folds ...] [--out last-epoch.json]

Each fold of a cross-validated run keeps two sets of weights: ``best.pt``, the
epoch with the best validation score (``select_by``), and ``last.pt``, the last
epoch trained. When a fold ran its whole budget (no early stop), ``last.pt``
is exactly what ``--select-by last`` keeps: the learning rate does not depend
on validation, so the two runs are one trajectory. Both are scored on the
fold's validation and test clips (a clip's windows pooled by their mean
probability, as ``evaluate`` does); the difference is paired within the
trajectory, free of the run-to-run noise between two trainings. A fold that
stopped early is reported too, marked: its last epoch is not the end of the
schedule. Nothing is retrained.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training import checkpoint  # noqa: E402
from pyharmonies.training.crossval import paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402
from pyharmonies.training.loop import evaluate_windows  # noqa: E402


def clip_accuracy(run: Path, data: str, split: str) -> float:
    """Clip accuracy of ``run``'s best.pt on its ``split`` clips (mean probability per clip)."""
    s = window_probabilities(run, data, split=split, progress=False)
    return float(evaluate_windows(s.probs, s.y, s.windows, s.labels)["clip"]["accuracy"])


def last_epoch_figures(fold: Path, data: str) -> dict[str, float]:
    """Validation and test clip accuracy of ``fold``'s last.pt, scored as if it were its best.pt."""
    last = checkpoint.load(fold / checkpoint.LAST, keys=("model", "meta", "epoch"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        for name in ("config.json", "splits.json"):
            shutil.copy(fold / name, copy / name)
        checkpoint.save_atomic({"model": last["model"], "meta": last["meta"], "epoch": last["epoch"] + 1}, copy / checkpoint.BEST)
        return {split: clip_accuracy(copy, data, split) for split in ("val", "test")}


def study(run: Path) -> list[dict]:
    """One row per finished fold of ``run``: the chosen and the last epoch, and their figures."""
    config = json.loads((run / "config.json").read_text())
    rows = []
    for fold in sorted(run.glob("fold-*"), key=lambda p: int(p.name.split("-")[1])):
        if not (fold / "metrics.json").exists():
            continue
        metrics = json.loads((fold / "metrics.json").read_text())
        history, best = metrics["history"], metrics["best_epoch"]
        last = last_epoch_figures(fold, config["data"])
        row = {
            "run": run.name, "fold": fold.name, "epochs_run": len(history), "budget": config["epochs"],
            "best_epoch": best, "best_lr": history[best - 1]["lr"],
            "best_val": history[best - 1]["val_clip_accuracy"], "best_test": metrics["splits"]["test"]["clip"]["accuracy"],
            "last_val": last["val"], "last_test": last["test"],
        }  # fmt: skip
        rows.append(row)
        stopped = "" if row["epochs_run"] == row["budget"] else f" (stopped early at {row['epochs_run']} of {row['budget']})"
        print(f"{run.name} {fold.name}: best epoch {best}{stopped}, test {100 * row['best_test']:.1f}; "
              f"last epoch test {100 * row['last_test']:.1f}", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds run folders (each holding fold-0, fold-1, ...)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: last-epoch.json in the first run)")
    args = parser.parse_args()
    rows = [row for run in args.runs for row in study(run)]
    print("\n| run | fold | epochs run | best epoch (lr) | val: best / last | test: best / last | last − best |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['fold']} | {r['epochs_run']} of {r['budget']} | {r['best_epoch']} ({r['best_lr']:.4f}) | "
              f"{100 * r['best_val']:.1f} / {100 * r['last_val']:.1f} | {100 * r['best_test']:.1f} / {100 * r['last_test']:.1f} | "
              f"{100 * (r['last_test'] - r['best_test']):+.1f} |")  # fmt: skip
    # The paired figures count only folds that ran their whole budget: there, last.pt is --select-by last.
    whole = [r for r in rows if r["epochs_run"] == r["budget"]]
    summary = {}
    for name in sorted({r["run"] for r in whole}) + ["all"]:
        mine = [r for r in whole if name in ("all", r["run"])]
        summary[name] = paired_difference([r["last_test"] for r in mine], [r["best_test"] for r in mine])
        d = summary[name]
        print(f"{name}: last − best, test clip accuracy, {len(mine)} folds run to the end: {100 * d['mean']:+.2f} ± "
              f"{100 * d['std']:.2f} (95% CI {100 * d['ci95'][0]:+.2f} to {100 * d['ci95'][1]:+.2f})")  # fmt: skip
    if len(whole) < len(rows):
        print(f"({len(rows) - len(whole)} folds stopped early: in the table, not in these figures)")
    out = args.out or args.runs[0] / "last-epoch.json"
    out.write_text(json.dumps({"rows": rows, "last_minus_best": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
