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
        + (f"Started from {metrics['model']['start']}. " if metrics["model"].get("start") else "") +
        f"Device: {metrics['device']} (processes: {metrics['world_size']}). "
        + (f"Kept the last epoch's weights ({metrics['best_epoch']} of {metrics['epochs_run']} run)."
         if cfg.select_by == "last" else f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run (budget {cfg.epochs})."),
        "",
        "| split | clips | windows | window accuracy | window macro F1 | clip accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split, res in splits.items():
        lines.append(
            f"| {split} | {metrics['clips'].get(split, 0)} | {metrics['windows'].get(split, 0)} | "
            f"{_pct(res['window']['accuracy'])} | {res['window']['macro_f1']:.3f} | {_pct(res['clip']['accuracy'])} |"
        )
    lines += baseline_lines(metrics, shown)
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


def baseline_lines(metrics: dict[str, Any], shown: str) -> list[str]:
    """Markdown: the run's clip figures beside the SVM baseline's on the same split."""
    base = metrics.get("baseline")
    if not base:
        return []
    lines = ["", "## Beside the classical baseline (same clips, same split)", ""]
    if "skipped" in base:
        return lines + [f"The SVM baseline could not be fitted: {base['skipped']}."]
    lines += [
        f"The SVM (RBF, C = {base['C']:g}) on clip statistics of the frame vector, trained on this run's training split.",
        "",
        f"| split | {metrics['model']['name']} clip accuracy | SVM clip accuracy | {metrics['model']['name']} clip macro F1 | SVM clip macro F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for split, res in metrics["splits"].items():
        if split in base["splits"]:
            b = base["splits"][split]["clip"]
            lines.append(f"| {split} | {_pct(res['clip']['accuracy'])} | {_pct(b['accuracy'])} | {res['clip']['macro_f1']:.3f} | {b['macro_f1']:.3f} |")
    return lines


def _pm(stat: dict[str, Any] | None, pct: bool = True) -> str:
    """``mean ± std`` of an interval dict."""
    if stat is None:
        return "—"
    if pct:
        return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _ci(stat: dict[str, Any] | None, pct: bool = True) -> str:
    if stat is None:
        return "—"
    lo, hi = stat["ci95"]
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]" if pct else f"[{lo:.3f}, {hi:.3f}]"


def write_folds_report(out: Path, cfg: TrainConfig, summary: dict[str, Any], *, name: str | None = None) -> None:
    """``report.md``, ``confusion.png`` (pooled test clips) and, with a baseline, ``confusion-svm.png``.

    ``summary`` is :func:`pyharmonies.training.crossval.summarize_folds`'s,
    as written to the folds' ``metrics.json``; ``name`` names the model
    (default: ``cfg.model``).
    """
    k = summary["folds"]
    labels = summary["labels"]
    clip = summary["test"]["clip"]
    base = summary.get("baseline", {}).get("clip")
    name = name or cfg.model
    lines = [
        f"# {k}-fold cross-validation: {name} on `{cfg.data}`",
        "",
        f"Grouped by `{cfg.group_by}` (seed {cfg.splits_seed}): each group's clips are in one fold, and each fold's test "
        "tracks are never heard in its training. Figures are mean ± standard deviation over the folds, with a 95% "
        f"confidence interval for the mean (Student's t, {k - 1} degrees of freedom). The headline is clip accuracy "
        "(a clip's windows vote by their mean probability).",
        "",
        f"**Test clip accuracy: {_pm(clip['accuracy'])}%** (95% CI {_ci(clip['accuracy'])}; pooled over all "
        f"{clip['pooled']['n']} test clips: {_pct(clip['pooled']['accuracy'])})",
    ]
    if base is not None:
        diff = summary["versus_baseline"]["accuracy"]
        lines += [
            "",
            f"SVM baseline on the same folds: {_pm(base['accuracy'])}% (95% CI {_ci(base['accuracy'])}). "
            f"{name} − SVM, paired by fold: **{100 * diff['mean']:+.1f} ± {100 * diff['std']:.1f} points** "
            f"(95% CI {_ci(diff)}).",
        ]
    fused = summary.get("fused")
    if fused is not None:
        gain = fused["versus_model"]["accuracy"]
        versus = fused.get("versus_baseline", {}).get("accuracy")
        lines += [
            "",
            f"Fused with the SVM (`--fuse-svm {fused['weight']:g}`): **{_pm(fused['clip']['accuracy'])}%** (95% CI "
            f"{_ci(fused['clip']['accuracy'])}); {100 * gain['mean']:+.1f} ± {100 * gain['std']:.1f} points over {name} alone"
            + (f", {100 * versus['mean']:+.1f} ± {100 * versus['std']:.1f} over the SVM baseline" if versus else "")
            + ", paired by fold.",
        ]
    lines += ["", "## Metrics", ""]
    if base is not None:
        lines += [f"| metric | {name} | 95% CI | SVM | 95% CI |", "|---|---:|---:|---:|---:|"]
    else:
        lines += [f"| metric | {name} | 95% CI |", "|---|---:|---:|"]
    for level in ("clip", "window"):
        if level not in summary["test"]:
            continue
        stats = summary["test"][level]
        for metric, pct in (("accuracy", True), ("macro_f1", False), ("weighted_f1", False)):
            row = f"| {level} {metric.replace('_', ' ')} | {_pm(stats[metric], pct)} | {_ci(stats[metric], pct)} |"
            if base is not None:
                row += f" {_pm(base[metric], pct) if level == 'clip' else '—'} | {_ci(base[metric], pct) if level == 'clip' else '—'} |"
            lines.append(row)
    lines += ["", "## Per class (test clips)", ""]
    header = f"| class | clips | {name} recall | {name} precision | {name} F1 |"
    rule = "|---|---:|---:|---:|---:|"
    if base is not None:
        header += " SVM recall | SVM F1 |"
        rule += "---:|---:|"
    lines += [header, rule]
    for label in labels:
        c = clip["per_class"][label]
        row = f"| {label} | {c['support']} | {_pm(c['recall'], False)} | {_pm(c['precision'], False)} | {_pm(c['f1'], False)} |"
        if base is not None:
            b = base["per_class"][label]
            row += f" {_pm(b['recall'], False)} | {_pm(b['f1'], False)} |"
        lines.append(row)
    lines += ["", "Per-class figures are over the folds whose test set holds the class.", ""]
    lines += [f"## Confusion matrix, pooled over the {k} folds' test clips", "", "![confusion](confusion.png)", ""]
    lines += confusion_text(clip["confusion"], labels)
    if base is not None:
        lines += ["", "SVM baseline, same clips:", "", "![confusion, SVM](confusion-svm.png)", ""]
        lines += confusion_text(base["confusion"], labels)
    lines += ["", "## Folds", ""]
    has_window = "window" in summary["test"]
    head = ("| fold | test clips | clip accuracy |" + (" window accuracy |" if has_window else "")
            + (" SVM clip accuracy |" if base is not None else "") + (" fused clip accuracy |" if fused is not None else "") + " report |")
    lines += [head, "|---:|---:|---:|" + ("---:|" if has_window else "") + ("---:|" if base is not None else "")
              + ("---:|" if fused is not None else "") + "---|"]  # fmt: skip
    for f in summary["per_fold"]:
        row = f"| {f['fold']} | {f['test_clips']} | {_pct(f['test_clip_accuracy'])} |"
        if has_window:
            row += f" {_pct(f['test_window_accuracy'])} |"
        if base is not None:
            row += f" {_pct(f['baseline_clip_accuracy'])} |"
        if fused is not None:
            row += f" {_pct(f['fused_clip_accuracy'])} |"
        lines.append(row + f" [fold-{f['fold']}](fold-{f['fold']}/report.md) |")
    lines += ["", "## Configuration", "", "```json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True), "```", ""]
    (out / "report.md").write_text("\n".join(lines))
    plot_confusion(clip["confusion"], labels, out / "confusion.png", f"{name}, {k} folds, test clips (pooled)")
    if base is not None:
        plot_confusion(base["confusion"], labels, out / "confusion-svm.png", f"svm, {k} folds, test clips (pooled)")
