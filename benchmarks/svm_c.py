"""How much does the SVM baseline's choice of C, made on a fold's validation tracks, cost it?

    .venv/bin/python benchmarks/svm_c.py DATA [--folds 5] [--seed 0] [--val 0.15] [--out svm-c.json]

The baseline (``training/svm.py``) fits an RBF SVC for each C in ``C_GRID`` on
the training tracks and keeps the one with the best validation macro-F1; with
no validation split it fits the middle C on every non-test track. On the
folds of ``harmonies train --folds K --seed SEED`` this prints, per fold, the
test clip accuracy of

- the C validation chose (what every report's baseline is),
- each C of the grid fitted on the training tracks alone,
- each C fitted on the training *and* validation tracks (what ``--val 0`` gives
  the baseline for the middle C),
- the C chosen by grouped 3-fold cross-validation over the training tracks
  (every training track votes, not twenty validation ones), refitted on them.

It is a diagnostic of the yardstick, read on test folds: nothing here may
choose a default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.data.splits import group_kfold  # noqa: E402
from pyharmonies.features import FeatureConfig  # noqa: E402
from pyharmonies.training.loop import prepare_data  # noqa: E402
from pyharmonies.training.metrics import classification_metrics  # noqa: E402
from pyharmonies.training.svm import C_GRID, clip_statistics, fit_svm  # noqa: E402


def c_by_grouped_folds(x: np.ndarray, y: np.ndarray, clips: list, labels: list[str], seed: int, k: int = 3) -> float:
    """The C of ``C_GRID`` with the best out-of-fold macro-F1 over ``k`` folds of whole tracks of ``clips``.

    The folds are :func:`group_kfold`'s (each class's tracks dealt to the folds in turn).
    """
    inner = group_kfold(clips, k, group_by="track", seed=seed, val=0.0)
    scores = []
    for c in C_GRID:
        predicted = np.empty_like(y)
        for split in inner:
            fit, held = np.asarray(split["train"]), np.asarray(split["test"])
            predicted[held] = fit_svm(x[fit], y[fit], None, None, labels, seed, grid=(c,))[0].predict(x[held])
        scores.append(classification_metrics(y, predicted, labels)["macro_f1"])
    return C_GRID[int(np.argmax(scores))]


def fold_figures(x: np.ndarray, y: np.ndarray, clips: list, split: dict[str, list[int]], labels: list[str],
                 seed: int) -> dict[str, float]:  # fmt: skip
    """Test clip accuracy (percent) of each way of fitting the baseline on one fold's ``split``."""
    tr, va, te = (np.asarray(split.get(s, []), dtype=np.int64) for s in ("train", "val", "test"))

    def test_accuracy(model) -> float:
        return 100 * classification_metrics(y[te], model.predict(x[te]), labels)["accuracy"]

    model, chosen = fit_svm(x[tr], y[tr], x[va], y[va], labels, seed)
    row = {"chosen_C": chosen, "val_chosen": test_accuracy(model)}
    both = np.concatenate([tr, va])
    for c in C_GRID:
        row[f"train_C{c:g}"] = test_accuracy(fit_svm(x[tr], y[tr], None, None, labels, seed, grid=(c,))[0])
        row[f"train+val_C{c:g}"] = test_accuracy(fit_svm(x[both], y[both], None, None, labels, seed, grid=(c,))[0])
    row["cv_C"] = c_by_grouped_folds(x[tr], y[tr], [clips[i] for i in tr], labels, seed)
    row["train_C_by_cv"] = row[f"train_C{row['cv_C']:g}"]
    return row


def main() -> None:
    """Print the table and write the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the folds' seed (--seed, or --split-seed, of the runs)")
    ap.add_argument("--val", type=float, default=0.15)
    ap.add_argument("--cache", default=".cache/features")
    ap.add_argument("--out", type=Path, default=Path("svm-c.json"))
    args = ap.parse_args()
    prep = prepare_data(args.data, FeatureConfig(), "frame_vector", args.cache, progress=False)
    x = clip_statistics([prep.cache.clip_features(c, "frame_vector") for c in prep.clips])
    y = np.asarray([prep.label_index[c.label] for c in prep.clips])
    folds = group_kfold(prep.clips, args.folds, group_by="track", seed=args.seed, val=args.val)
    rows = [fold_figures(x, y, prep.clips, split, prep.labels, args.seed) for split in folds]
    columns = [k for k in rows[0] if k not in ("chosen_C", "cv_C")]
    print("| fit | " + " | ".join(f"fold {k}" for k in range(len(rows))) + " | mean ± std |")
    print("|---|" + "---:|" * (len(rows) + 1))
    print("| C chosen on validation | " + " | ".join(f"{r['chosen_C']:g}" for r in rows) + " | |")
    print("| C chosen by 3-fold CV over the training tracks | " + " | ".join(f"{r['cv_C']:g}" for r in rows) + " | |")
    for col in columns:
        values = [r[col] for r in rows]
        print(f"| {col} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} |")
    args.out.write_text(json.dumps({"data": args.data, "seed": args.seed, "val": args.val, "folds": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
