"""Classification metrics: accuracy, macro and weighted F1, per-class
precision/recall/F1/support and the confusion matrix. NumPy only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def clip_probabilities(probs: np.ndarray, clip_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(clips, (n_clips, labels) mean probability)``: (windows, labels) ``probs`` pooled by their (windows,)
    ``clip_ids``, clips in ascending order: how every clip-level figure pools a clip's windows."""
    clip_ids = np.asarray(clip_ids)
    clips = np.unique(clip_ids)
    return clips, np.stack([probs[clip_ids == c].mean(axis=0) for c in clips])


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs.

    Parameters
    ----------
    y_true, y_pred : np.ndarray, shape (n,)
        Class indices in ``[0, n_classes)``.

    Returns
    -------
    np.ndarray, shape (n_classes, n_classes), int64
        Row = true class, column = predicted class.
    """
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Every figure of a report, as plain JSON-able values.

    Parameters
    ----------
    y_true, y_pred : np.ndarray, shape (n,)
        Class indices into ``labels``.
    labels : sequence of str
        Class names, index order.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``weighted_f1``, ``n``, ``per_class``
        (label -> precision, recall, f1, support) and ``confusion``
        (list of rows, true x predicted). A class never predicted has
        precision 0; one absent from ``y_true`` has recall 0 and support 0
        and is left out of the macro average.
    """
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(labels)), labels)


def metrics_from_confusion(confusion: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, Any]:
    """:func:`classification_metrics` of a confusion matrix (rows true, columns predicted).

    Parameters
    ----------
    confusion : array-like, shape (classes, classes)
        Counts; e.g. the sum of several folds' matrices (pooled metrics).
    labels : sequence of str
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion must be {len(labels)} x {len(labels)}, got {cm.shape}")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    total = float(support.sum())
    return {
        "n": int(total),
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }
