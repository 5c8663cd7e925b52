"""Run reports: ``report.md``, ``confusion.png`` and ``curves.png``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.training.config import TrainConfig


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def metrics_table(m: dict[str, Any]) -> list[str]:
    """Markdown lines: headline figures and the per-class table of one metrics dict."""
    lines = [
        f"accuracy **{_pct(m['accuracy'])}**, macro F1 **{m['macro_f1']:.3f}**, weighted F1 {m['weighted_f1']:.3f} (n = {m['n']})",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, c in m["per_class"].items():
        lines.append(f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
    return lines


def confusion_text(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> list[str]:
    """The confusion matrix as a Markdown table (rows: true class; columns: predicted)."""
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for label, row in zip(labels, confusion):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(history: Sequence[dict[str, Any]], path: Path, best_epoch: int | None = None) -> None:
    """Training and validation loss, validation accuracy and macro-F1 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if any(h.get("val_loss") is not None for h in history):
        ax1.plot(epochs, [h["val_loss"] for h in history], label="validation loss")
        ax2.plot(epochs, [h["val_accuracy"] for h in history], label="validation accuracy")
        ax2.plot(epochs, [h["val_macro_f1"] for h in history], label="validation macro-F1")
    for ax in (ax1, ax2):
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    ax1.set_ylabel("loss")
    ax2.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_run_report(run_dir: Path, cfg: TrainConfig, metrics: dict[str, Any]) -> None:
    """``report.md``, ``confusion.png`` (test split) and ``curves.png`` for one run."""
    labels = metrics["labels"]
    splits = metrics["splits"]
    shown = "test" if "test" in splits else next(iter(splits))
    lines = [
        f"# Run `{run_dir.name}`: {cfg.model} on `{cfg.data}`",
        "",
        f"Model: {metrics['model']['name']}, {metrics['model']['parameters']:,} parameters, "
        f"{metrics['model']['macs_per_window']:,} multiply-accumulates per {cfg.window:g} s window. "
        f"Device: {metrics['device']} (processes: {metrics['world_size']}). "
        f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run (budget {cfg.epochs}).",
        "",
        "| split | clips | windows | window accuracy | window macro F1 | clip accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split, res in splits.items():
        lines.append(
            f"| {split} | {metrics['clips'].get(split, 0)} | {metrics['windows'].get(split, 0)} | "
            f"{_pct(res['window']['accuracy'])} | {res['window']['macro_f1']:.3f} | {_pct(res['clip']['accuracy'])} |"
        )
    lines += ["", f"## {shown.capitalize()} split, per window", ""] + metrics_table(splits[shown]["window"])
    lines += ["", f"## {shown.capitalize()} split, per clip (mean of its windows' probabilities)", ""]
    lines += metrics_table(splits[shown]["clip"])
    lines += ["", "## Confusion matrix (windows)", "", "![confusion](confusion.png)", ""]
    lines += confusion_text(splits[shown]["window"]["confusion"], labels)
    lines += ["", "## Training curves", "", "![curves](curves.png)", ""]
    if metrics["problems"]:
        lines += ["## Files skipped", ""] + [f"- `{p['path']}`: {p['reason']}" for p in metrics["problems"]] + [""]
    if metrics["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in metrics["warnings"]] + [""]
    lines += ["## Configuration", "", "```json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True), "```", ""]
    (run_dir / "report.md").write_text("\n".join(lines))
    plot_confusion(splits[shown]["window"]["confusion"], labels, run_dir / "confusion.png", f"{cfg.model}, {shown} windows")
    plot_curves(metrics["history"], run_dir / "curves.png", metrics["best_epoch"])


def write_folds_report(out: Path, cfg: TrainConfig, fold_metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of each fold's test figures; returns the summary written to metrics.json."""
    def figures(split_key: str, level: str, name: str) -> list[float]:
        return [m["splits"][split_key][level][name] for m in fold_metrics if split_key in m["splits"]]

    summary: dict[str, Any] = {"folds": len(fold_metrics), "per_fold": []}
    for level in ("window", "clip"):
        for name in ("accuracy", "macro_f1"):
            values = figures("test", level, name)
            summary[f"test_{level}_{name}_mean"] = float(np.mean(values))
            summary[f"test_{level}_{name}_std"] = float(np.std(values))
    for k, m in enumerate(fold_metrics):
        summary["per_fold"].append({"fold": k, "test_window_accuracy": m["splits"]["test"]["window"]["accuracy"],
                                    "test_clip_accuracy": m["splits"]["test"]["clip"]["accuracy"]})  # fmt: skip
    lines = [
        f"# {len(fold_metrics)}-fold cross-validation: {cfg.model} on `{cfg.data}`",
        "",
        f"Grouped by `{cfg.group_by}`: a group's clips are all in one fold.",
        "",
        f"- test window accuracy: {_pct(summary['test_window_accuracy_mean'])} ± {_pct(summary['test_window_accuracy_std'])}",
        f"- test window macro F1: {summary['test_window_macro_f1_mean']:.3f} ± {summary['test_window_macro_f1_std']:.3f}",
        f"- test clip accuracy: {_pct(summary['test_clip_accuracy_mean'])} ± {_pct(summary['test_clip_accuracy_std'])}",
        "",
        "| fold | test window accuracy | test clip accuracy | report |",
        "|---:|---:|---:|---|",
    ]
    for f in summary["per_fold"]:
        lines.append(f"| {f['fold']} | {_pct(f['test_window_accuracy'])} | {_pct(f['test_clip_accuracy'])} | [fold-{f['fold']}](fold-{f['fold']}/report.md) |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return summary
