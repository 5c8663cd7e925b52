"""The files of ``harmonies evaluate --latency-curve``: ``latency.json``, ``latency.md``, ``latency.png``.

One or several curves (:func:`~pyharmonies.training.latency.accuracy_curve`'s
dicts) go in each: the model evaluated and those added with ``--with``
(runs and bundles measured on the same data, or the curves of an earlier
``latency.json``), so that a CNN, an LSTM and a transformer share one figure.
Only JSON is read back: nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyharmonies._atomic import write_atomic
from pyharmonies.errors import ParameterError

#: ``latency.json``'s format.
FORMAT = "harmonies-latency/1"
#: Rows of a curve's table in ``latency.md`` beyond which only every few points are shown.
MAX_ROWS = 60
#: The keys a curve read back must have.
_CURVE_KEYS = ("name", "model", "smoothing", "seconds", "from_start", "random_start", "clips", "hop_seconds", "first_answer_seconds")


def read_curves(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The curves of a ``latency.json`` written by :func:`write_latency`.

    Raises
    ------
    ParameterError
        Not readable, not JSON, or not a latency file.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ParameterError(f"{path}: not a readable latency.json ({type(err).__name__}: {err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("curves"), list):
        raise ParameterError(f"{path}: not a latency file (expected format {FORMAT!r}, as `harmonies evaluate --latency-curve` writes)")
    for curve in record["curves"]:
        missing = [k for k in _CURVE_KEYS if not isinstance(curve, dict) or k not in curve]
        if missing:
            raise ParameterError(f"{path}: a curve lacks {', '.join(missing)}")
    return record["curves"]


def write_latency(out: str | os.PathLike[str], curves: Sequence[dict[str, Any]], *, data: str, split: str) -> dict[str, Path]:
    """Write ``latency.json``, ``latency.md`` and ``latency.png`` into ``out``.

    Parameters
    ----------
    out : path-like
        A folder (made if needed).
    curves : sequence of dict
        :func:`~pyharmonies.training.latency.accuracy_curve`'s dicts, the
        first the model evaluated; each is drawn in its own colour.
    data, split : str
        What they were measured on, for the titles.

    Returns
    -------
    dict of str to Path
        ``json``, ``markdown``, ``png``: the files written.
    """
    if not curves:
        raise ParameterError("no curve to write")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "latency.json", "markdown": out / "latency.md", "png": out / "latency.png"}
    record = {"format": FORMAT, "data": str(data), "split": split, "curves": list(curves)}
    write_atomic(files["json"], json.dumps(record, indent=2) + "\n")
    write_atomic(files["markdown"], "\n".join(markdown_lines(curves, data=data, split=split)) + "\n")
    shown = Path(data).name if Path(data).is_dir() else "/".join(Path(data).parts[-2:])  # a manifest: with its folder
    plot_latency(curves, files["png"], title=f"Accuracy against seconds heard ({shown}, {split})")
    return files


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _describe(curve: dict[str, Any]) -> str:
    folds = f", {curve['folds']} folds pooled" if curve.get("folds") else ""
    path = ", stateful" if curve.get("path") == "stateful" else ""
    return f"{curve['name']} ({curve['model']}{folds}{path})"


def markdown_lines(curves: Sequence[dict[str, Any]], *, data: str, split: str) -> list[str]:
    """The lines of ``latency.md``: a summary row per curve, then each curve's points."""
    fraction = curves[0].get("fraction", 0.9)
    units = sorted({c.get("per", "clip") for c in curves})
    joined = (" With *per track*, each track's test clips are joined, in the dataset's order, into one stream "
              "(windows straddling two clips, and clips the dataset dropped, are not heard).") if "track" in units else ""  # fmt: skip
    stateful = (" A *stateful* model (an LSTM bundle's step model, as `listen` runs it) answers from a state carried "
                "over every frame heard since its stream began: each clip is a fresh stream (per track: the track's "
                "clips' frames joined, the state carried across the joins, which it answers across too), and from a "
                "random point it is a fresh stream started there, wrapping around to the start."
                ) if any(c.get("path") == "stateful" for c in curves) else ""  # fmt: skip
    lines = [
        f"# Decision latency on `{data}` ({split})",
        "",
        "Each point is the accuracy, over the test clips, of the answer `harmonies listen` shows after that many "
        "seconds of a clip: its windows and hop, its smoothing (fresh for each clip), the top label whatever its "
        "confidence. *From the start*: heard from the clip's first sample; *from a random point*: from a window drawn "
        "uniformly among the clip's (seeded), wrapping around to its start. There is no answer before the first "
        "full window: the curve starts there. A clip heard whole keeps its last answer." + joined + stateful,
        "",
        f"**Time to a trustworthy answer**: the first point from which the accuracy stays at or above "
        f"{100 * fraction:g}% of its final value (the accuracy once every clip is heard whole) at every later point. "
        "*Clip vote* is `harmonies evaluate`'s clip accuracy on the same clips (the mean of every window's "
        "probabilities); it is the final accuracy when the smoothing is `mean`.",
        "",
        "| model | heard | window, hop | smoothing | from the start: final, trustworthy after | from a random point: final, trustworthy after | vote over all windows |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for c in curves:
        s, r = c["from_start"], c["random_start"]
        lines.append(
            f"| {_describe(c)} | {c['clips']} {c.get('per', 'clip')}s | {c['window_seconds']:.2f} s, {c['hop_seconds']:.2f} s | {c['smoothing']} | "
            f"{_pct(s['final'])}, **{s['seconds']:.2f} s** | {_pct(r['final'])}, **{r['seconds']:.2f} s** | {_pct(c['clip_accuracy'])} |"
        )
    for c in curves:
        ran = "Results streamed by" if c.get("path") == "stateful" else "Windows run by"
        lines += ["", f"## {_describe(c)}", "", f"{ran} {c.get('runtime', '?')}; random starts seeded with {c['seed']}.", ""]
        lines += ["| seconds heard | from the start | from a random point |", "|---:|---:|---:|"]
        marks = {c["from_start"]["index"]: "from the start", c["random_start"]["index"]: "from a random point"}
        for k in _shown_rows(len(c["seconds"]), set(marks)):
            cells = []
            for order in ("from_start", "random_start"):
                cell = _pct(c[order]["accuracy"][k])
                cells.append(f"**{cell}**" if c[order]["index"] == k else cell)
            lines.append(f"| {c['seconds'][k]:.2f} | {cells[0]} | {cells[1]} |")
        lines += ["", f"Bold: the time to a trustworthy answer ({100 * fraction:g}% of the final accuracy: "
                      f"{_pct(c['from_start']['target'])} from the start, {_pct(c['random_start']['target'])} from a random point)."]  # fmt: skip
    return lines


def _shown_rows(n: int, keep: set[int]) -> list[int]:
    """All rows up to :data:`MAX_ROWS`; beyond, every few, the last and those in ``keep``."""
    if n <= MAX_ROWS:
        return list(range(n))
    step = math.ceil(n / MAX_ROWS)
    return sorted({k for k in range(0, n, step)} | {n - 1} | keep)


def plot_latency(curves: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> None:
    """Accuracy against seconds heard: per curve, from the start (solid) and from a random point (dashed).

    Each curve's final accuracy (from the start) and 90% of it (its ``fraction``) are drawn as
    thin lines of its colour, its time to a trustworthy answer as a dot and
    a vertical line; the span before the first window (no answer) is shaded,
    and chance (one over the labels) drawn when all curves share it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.8))
    end = max(c["seconds"][-1] + c["hop_seconds"] for c in curves)  # the last answer holds for a hop at least
    first = min(c["first_answer_seconds"] for c in curves)
    ax.axvspan(0, first, color="0.9", label="no answer before one window")
    for i, c in enumerate(curves):
        colour = f"C{i}"
        x = [*c["seconds"], end]
        s, r = c["from_start"], c["random_start"]
        ax.step(x, [*s["accuracy"], s["accuracy"][-1]], where="post", color=colour, linewidth=2,
                label=f"{_describe(c)}, from the start")  # fmt: skip
        ax.step(x, [*r["accuracy"], r["accuracy"][-1]], where="post", color=colour, linewidth=1.4, linestyle="--",
                label=f"{_describe(c)}, from a random point")  # fmt: skip
        ax.axhline(s["final"], color=colour, linewidth=0.8, linestyle=":")
        ax.axhline(s["target"], color=colour, linewidth=0.8, linestyle="-.")
        ax.axvline(s["seconds"], color=colour, linewidth=0.8, alpha=0.6)
        share = f"{100 * c.get('fraction', 0.9):g}%"
        ax.plot([s["seconds"]], [s["accuracy"][s["index"]]], "o", color=colour,
                label=f"final {_pct(s['final'])} (dotted), {share} of it (dash-dot): trustworthy after {s['seconds']:.2f} s")  # fmt: skip
    chance = sorted({1.0 / len(c["labels"]) for c in curves if c.get("labels")})
    if len(chance) == 1:  # the same labels (or as many): one chance level
        ax.axhline(chance[0], color="0.5", linewidth=0.8, linestyle=(0, (1, 3)), label=f"chance ({_pct(chance[0])})")
    ax.set_xlim(0, end)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("seconds heard")
    ax.set_ylabel(" and ".join(sorted({f"{c.get('per', 'clip')} accuracy" for c in curves})))
    smoothing = sorted({c["smoothing"] for c in curves})
    ax.set_title(f"{title}; smoothing {', '.join(smoothing)}" if title else f"smoothing {', '.join(smoothing)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14))  # below the axes: never over a curve
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
