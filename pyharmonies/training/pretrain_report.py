"""The report of a pretraining run: ``report.md`` and ``pretrain.png`` (loss and k-NN accuracy per epoch)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyharmonies._atomic import write_atomic
from pyharmonies.data.sources import Problem

__all__ = ["plot_pretraining", "write_pretrain_report"]


def plot_pretraining(history: Sequence[dict[str, Any]], path: Path) -> None:
    """Contrastive loss per epoch and, where probed, the k-NN accuracy on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    trained = [h for h in history if h.get("loss") is not None]
    ax.plot([h["epoch"] for h in trained], [h["loss"] for h in trained], color="tab:blue", label="NT-Xent loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("contrastive loss (NT-Xent)", color="tab:blue")
    probed = [h for h in history if h.get("knn_accuracy") is not None]
    if probed:
        ax2 = ax.twinx()
        ax2.plot([h["epoch"] for h in probed], [100 * h["knn_accuracy"] for h in probed], "o-", color="tab:orange",
                 label="k-NN accuracy")  # fmt: skip
        ax2.set_ylabel("k-NN clip accuracy, other tracks (%)", color="tab:orange")
    ax.set_title("Self-supervised pretraining")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_pretrain_report(out: Path, meta: dict[str, Any], history: Sequence[dict[str, Any]],
                          problems: Sequence[Problem]) -> None:  # fmt: skip
    """Write ``out/report.md`` and ``out/pretrain.png`` for a finished (or stopped) pretraining run."""
    info = meta["pretraining"]
    plot_pretraining(history, out / "pretrain.png")
    trained = [h for h in history if h.get("loss") is not None]
    rate = [h["windows_per_second"] for h in trained if h.get("windows_per_second")]
    lines = [
        "# Pretraining report",
        "",
        f"Method: {info['method']}, temperature {info['temperature']}, projection {info['projection_dim']}.",
        "",
        f"- audio: {info['hours']:.2f} h, {info['clips']} clips, {info['recordings']} recordings"
        + (f" ({info['excluded_recordings']} left out by `--exclude {info['exclude']}`)" if info["exclude"] else ""),
        f"- sources: {', '.join(f'`{s}`' for s in info['sources'])}",
        f"- epochs: {info['epochs']} × {info['steps_per_epoch']} steps of {info['batch_recordings']} recordings "
        f"(two crops each) per process, {info['world_size']} process(es)",
        f"- network: {json.dumps(meta['model_config'])} on {meta['input_shape'][0]} × {meta['window_frames']} log-mel "
        f"({meta['window_seconds']} s)",
        f"- wall time: {info['seconds']:.0f} s on {info['device']} (torch {info['torch']})"
        + (f", {sum(rate) / len(rate):.0f} crops/s" if rate else ""),
        f"- final loss: {info['final_loss']:.4f}" if info["final_loss"] is not None else "- no epoch trained",
    ]
    if info.get("final_knn_accuracy") is not None:
        first = next(h["knn_accuracy"] for h in history if "knn_accuracy" in h)
        lines.append(f"- k-NN clip accuracy (5 neighbours from other tracks): {100 * first:.1f}% untrained → "
                     f"{100 * info['final_knn_accuracy']:.1f}%")  # fmt: skip
    lines += ["", "![loss and k-NN accuracy](pretrain.png)", "",
              "`backbone.npz` is the result: `harmonies train DATA --model cnn --backbone " + str(out) + "`."]  # fmt: skip
    if problems:
        lines += ["", f"## Skipped ({len(problems)})", ""] + [f"- `{p.path}`: {p.reason}" for p in problems[:50]]
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
