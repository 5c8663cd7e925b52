"""Figures over the folds of a cross-validation: mean, spread, 95% interval, pooled confusion.

On a few hundred clips one test split moves by several points from seed
to seed, so a claim rests on K folds: each metric's mean and sample
standard deviation over the folds, a 95% confidence interval for the mean
(Student's t with K - 1 degrees of freedom: the folds are few), and the
confusion matrix pooled over every fold's test set (each clip is tested
exactly once). Comparisons with the baseline are paired: the difference
is taken fold by fold, on the same test tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyharmonies.training.metrics import metrics_from_confusion

#: Headline metrics summarised per level.
METRICS = ("accuracy", "macro_f1", "weighted_f1")
#: Per-class figures summarised.
CLASS_METRICS = ("precision", "recall", "f1")


def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (two-sided 95%)."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std (ddof 1), 95% t-interval for the mean, n and the values themselves.

    One value gives std 0 and an interval of just the mean (there is no spread to estimate).
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if v.size == 0:
        raise ValueError("interval of no values")
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean], "n": 1, "values": v.tolist()}
    std = float(v.std(ddof=1))
    half = t_quantile_975(v.size - 1) * std / np.sqrt(v.size)
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": int(v.size), "values": v.tolist()}


def summarize_level(fold_metrics: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Summary of one level (window or clip) over folds.

    Parameters
    ----------
    fold_metrics : sequence of dict
        Each fold's test metrics at this level (:func:`classification_metrics`'s dict).
    labels : sequence of str

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``weighted_f1``: :func:`interval` dicts;
        ``per_class``: label -> precision/recall/f1 intervals over the folds
        whose test set holds the class (``folds_present``) and the total
        ``support``; ``confusion``: the pooled matrix; ``pooled``: accuracy
        and macro-F1 of the pooled matrix.
    """
    out: dict[str, Any] = {name: interval([m[name] for m in fold_metrics]) for name in METRICS}
    per_class = {}
    for label in labels:
        present = [m["per_class"][label] for m in fold_metrics if m["per_class"].get(label, {}).get("support", 0) > 0]
        entry: dict[str, Any] = {"support": int(sum(c["support"] for c in present)), "folds_present": len(present)}
        for name in CLASS_METRICS:
            entry[name] = interval([c[name] for c in present]) if present else None
        per_class[label] = entry
    out["per_class"] = per_class
    pooled = np.sum([np.asarray(m["confusion"], dtype=np.int64) for m in fold_metrics], axis=0)
    out["confusion"] = pooled.tolist()
    pooled_metrics = metrics_from_confusion(pooled, labels)
    out["pooled"] = {"accuracy": pooled_metrics["accuracy"], "macro_f1": pooled_metrics["macro_f1"], "n": pooled_metrics["n"]}
    return out


def paired_difference(model: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """:func:`interval` of the per-fold differences ``model - baseline`` (same test tracks in each fold)."""
    if len(model) != len(baseline):
        raise ValueError(f"paired difference of {len(model)} and {len(baseline)} folds")
    return interval([a - b for a, b in zip(model, baseline)])


def summarize_folds(fold_runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The cross-validation summary written to the folds' ``metrics.json``.

    Parameters
    ----------
    fold_runs : sequence of dict
        Each fold run's ``metrics.json``: ``splits.test`` with ``clip`` (and
        ``window`` for the neural models), ``labels``, optionally
        ``baseline`` (the SVM on the same split).

    Returns
    -------
    dict
        ``folds``, ``labels``, ``test`` (level -> :func:`summarize_level`),
        ``baseline`` (the same for the SVM, when every fold has one) and
        ``versus_baseline`` (level clip: paired differences of accuracy and
        macro-F1), ``fused`` (when every fold was fused with the SVM:
        ``weight``, ``clip``, ``versus_model``, ``versus_baseline``), ``per_fold`` (each fold's headline figures), and the
        flat ``test_<level>_<metric>_mean/_std`` keys older readers use.
    """
    labels = list(fold_runs[0]["labels"])
    levels = [level for level in ("clip", "window") if all(level in r["splits"]["test"] for r in fold_runs)]
    summary: dict[str, Any] = {"folds": len(fold_runs), "labels": labels, "headline": "clip accuracy", "test": {}}
    for level in levels:
        summary["test"][level] = summarize_level([r["splits"]["test"][level] for r in fold_runs], labels)
        for name in ("accuracy", "macro_f1"):
            summary[f"test_{level}_{name}_mean"] = summary["test"][level][name]["mean"]
            summary[f"test_{level}_{name}_std"] = summary["test"][level][name]["std"]
    if all(r.get("baseline") for r in fold_runs):
        base = [r["baseline"]["splits"]["test"]["clip"] for r in fold_runs]
        summary["baseline"] = {"model": fold_runs[0]["baseline"]["model"], "clip": summarize_level(base, labels)}
        summary["versus_baseline"] = {
            name: paired_difference([r["splits"]["test"]["clip"][name] for r in fold_runs], [b[name] for b in base])
            for name in ("accuracy", "macro_f1")
        }
    if all((r.get("fusion") or {}).get("splits", {}).get("test") for r in fold_runs):
        fused = [r["fusion"]["splits"]["test"]["clip"] for r in fold_runs]
        summary["fused"] = {
            "weight": fold_runs[0]["fusion"]["weight"],
            "clip": summarize_level(fused, labels),
            "versus_model": {name: paired_difference([f[name] for f in fused], [r["splits"]["test"]["clip"][name] for r in fold_runs])
                             for name in ("accuracy", "macro_f1")},
        }  # fmt: skip
        if "baseline" in summary:
            summary["fused"]["versus_baseline"] = {
                name: paired_difference([f[name] for f in fused], [r["baseline"]["splits"]["test"]["clip"][name] for r in fold_runs])
                for name in ("accuracy", "macro_f1")
            }
    summary["per_fold"] = []
    for k, r in enumerate(fold_runs):
        row: dict[str, Any] = {"fold": k, "test_clips": r["splits"]["test"]["clip"]["n"]}
        for level in levels:
            row[f"test_{level}_accuracy"] = r["splits"]["test"][level]["accuracy"]
            row[f"test_{level}_macro_f1"] = r["splits"]["test"][level]["macro_f1"]
        if "baseline" in summary:
            row["baseline_clip_accuracy"] = r["baseline"]["splits"]["test"]["clip"]["accuracy"]
        if "fused" in summary:
            row["fused_clip_accuracy"] = r["fusion"]["splits"]["test"]["clip"]["accuracy"]
        summary["per_fold"].append(row)
    return summary
