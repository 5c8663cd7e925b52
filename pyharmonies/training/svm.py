"""The classical baseline: an RBF support-vector machine on clip statistics.

Each clip becomes the mean and standard deviation over its frames of the
28-value frame vector (56 numbers); the SVM classifies clips. It shows how
far a dataset goes without deep learning, so a model's figures have a
floor to be compared with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.training.metrics import classification_metrics

C_GRID = (1.0, 10.0, 100.0)  # chosen on the validation split by macro-F1


def clip_statistics(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(clips, 2 n) mean and std over frames of each (n, frames) array."""
    return np.stack([np.concatenate([a.mean(axis=1), a.std(axis=1)]) for a in arrays]).astype(np.float64)


def fit_svm(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None, labels: Sequence[str], seed: int) -> tuple[Any, float]:
    """A standardised RBF SVC; C picked on the validation data when there is any."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    best, best_score, best_c = None, -1.0, C_GRID[0]
    for c in C_GRID if x_val is not None and len(x_val) else C_GRID[1:2]:
        model = make_pipeline(StandardScaler(), SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced", random_state=seed))
        model.fit(x_train, y_train)
        score = classification_metrics(y_val, model.predict(x_val), labels)["macro_f1"] if x_val is not None and len(x_val) else 0.0
        if score > best_score:
            best, best_score, best_c = model, score, c
    return best, best_c


def train_svm_run(cfg, *, progress: bool = True) -> Path:
    """Train and evaluate the baseline into ``cfg.out`` (model.joblib, metrics.json, report)."""
    import joblib

    from pyharmonies.data.splits import check_splits, save_splits, split_groups
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.loop import prepare_data
    from pyharmonies.training.report import confusion_text, metrics_table, plot_confusion

    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    prep = prepare_data(cfg.data, FeatureConfig(**cfg.features), "frame_vector", cfg.cache, progress=progress)
    prep.splits = split_groups(prep.clips, group_by=cfg.group_by, seed=cfg.seed, val=cfg.val, test=cfg.test)
    check_splits(prep.splits, prep.clips, group_by=cfg.group_by)
    cfg.save(run_dir / "config.json")
    save_splits(run_dir / "splits.json", prep.splits, prep.clips, group_by=cfg.group_by, seed=cfg.seed)
    li = prep.label_index
    feats = clip_statistics([prep.cache.clip_features(c, "frame_vector") for c in prep.clips])
    y = np.asarray([li[c.label] for c in prep.clips])
    part = {s: np.asarray(m, dtype=np.int64) for s, m in prep.splits.items()}
    val = part.get("val", np.zeros(0, np.int64))
    model, c = fit_svm(feats[part["train"]], y[part["train"]], feats[val], y[val], prep.labels, cfg.seed)
    joblib.dump(model, run_dir / "model.joblib")
    results = {s: {"clip": classification_metrics(y[idx], model.predict(feats[idx]), prep.labels)} for s, idx in part.items() if len(idx)}
    metrics = {
        "splits": results,
        "model": {"name": "svm", "C": c, "features": "mean and std of the 28-value frame vector over each clip"},
        "clips": {s: len(m) for s, m in prep.splits.items()},
        "labels": prep.labels,
        "feature_config": prep.feature_config.to_dict(),
        "problems": [{"path": str(p.path), "reason": p.reason} for p in prep.problems],
        "warnings": list(prep.index.warnings),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    shown = "test" if "test" in results else "train"
    lines = [f"# Run `{run_dir.name}`: SVM baseline on `{cfg.data}`", "",
             f"RBF SVC (C = {c:g}, chosen on validation macro-F1) on clip means and standard deviations of the frame vector.", "",
             "| split | clips | accuracy | macro F1 |", "|---|---:|---:|---:|"]  # fmt: skip
    for s, r in results.items():
        lines.append(f"| {s} | {r['clip']['n']} | {100 * r['clip']['accuracy']:.1f}% | {r['clip']['macro_f1']:.3f} |")
    lines += ["", f"## {shown.capitalize()} split", ""] + metrics_table(results[shown]["clip"])
    lines += ["", "![confusion](confusion.png)", ""] + confusion_text(results[shown]["clip"]["confusion"], prep.labels)
    if metrics["problems"]:
        lines += ["", "## Files skipped", ""] + [f"- `{p['path']}`: {p['reason']}" for p in metrics["problems"]]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    plot_confusion(results[shown]["clip"]["confusion"], prep.labels, run_dir / "confusion.png", f"svm, {shown} clips")
    return run_dir
