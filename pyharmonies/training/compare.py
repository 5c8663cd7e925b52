"""Runs side by side: the table and the figure of ``harmonies compare``.

A run is a folder with a ``metrics.json``: a cross-validation (what
:func:`~pyharmonies.training.loop.train_folds` writes, the summary of
:func:`~pyharmonies.training.crossval.summarize_folds`) or a single run (a
CNN, an LSTM or the SVM). Each becomes an :class:`Entry` holding its test
figures at one level as :func:`~pyharmonies.training.crossval.interval`
dicts: over the folds for a cross-validation, a single value for one split.
The SVM baseline that a run carries (fitted on the same folds, or the same
split) becomes an entry of its own; several runs on the same folds carry the
same baseline, which is shown once.

Two cross-validations on the same folds (the same test clips in each fold)
are compared fold by fold: the paired difference usually has a far
narrower interval than the two means' own, since much of the fold-to-fold
spread (which clips are hard) is common to both.

Only JSON is read: nothing is unpickled, no model is loaded.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyharmonies._atomic import write_atomic
from pyharmonies.training.crossval import interval, paired_difference
from pyharmonies.training.errors import RunError

#: The levels a run's figures are given at: per clip (its windows' mean probability) or per window.
LEVELS = ("clip", "window")
#: The headline metrics compared.
HEADLINE = ("accuracy", "macro_f1")


@dataclass
class Entry:
    """One row of the comparison: a run, or the SVM baseline fitted on a run's folds (or split)."""

    name: str  # the folder's name, --names', or "svm (baseline of X)"
    model: str  # cnn, lstm, transformer, svm
    level: str  # the level of its figures: the one asked for, or clip for the SVM (it has no windows)
    folds: int  # 0 for a single run (one test split)
    labels: list[str]
    figures: dict[str, dict[str, Any]]  # accuracy, macro_f1 -> crossval.interval dict (n = 1 for a single run)
    per_class_f1: dict[str, dict[str, Any] | None]  # label -> interval over the folds holding it; None: never tested
    confusion: list[list[int]]  # pooled over the folds' test sets
    data: str | None = None  # the dataset, from config.json, when there is one
    test_clips: list[int] = field(default_factory=list)  # per fold
    test_keys: list[frozenset[str]] | None = None  # per fold, from fold-K/splits.json when every fold has one
    seed: int | None = None
    group_by: str | None = None
    baseline_of: list[str] = field(default_factory=list)  # for a baseline row: the runs that carry it
    baseline: Entry | None = None  # the SVM baseline this run carries
    fused: Entry | None = None  # its answer fused with the SVM's (train --fuse-svm), clip level

    def identity(self) -> tuple:
        """What makes two baselines the same: the same model and figures on the same clips."""
        return (self.model, self.level, tuple(self.labels), tuple(self.figures["accuracy"]["values"]),
                tuple(self.figures["macro_f1"]["values"]), json.dumps(self.confusion), tuple(self.test_clips))  # fmt: skip


@dataclass
class Comparison:
    """Entries in table order, and what a reader must know about them."""

    level: str
    entries: list[Entry]
    labels: list[str]  # every run's labels, in the order first met
    reference: Entry | None  # the first cross-validation: the paired differences are to it
    paired: dict[str, dict[str, dict[str, Any]]]  # entry name -> accuracy/macro_f1 -> interval of differences
    notes: list[str]


# ------------------------------------------------------------------ reading runs


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: cannot read ({err})") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err})") from None


def _get(obj: Any, keys: Sequence[str | int], where: Path, kind: type | tuple[type, ...] | None = None) -> Any:
    """``obj[k0][k1]...``, or a :class:`RunError` naming the file and the missing field."""
    for depth, key in enumerate(keys):
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            dotted = ".".join(str(k) for k in keys[: depth + 1])
            raise RunError(f"{where}: malformed: no {dotted}") from None
    if kind is not None and (isinstance(obj, bool) or not isinstance(obj, kind)):  # JSON true is no count
        dotted = ".".join(str(k) for k in keys)
        raise RunError(f"{where}: malformed: {dotted} is {type(obj).__name__}") from None
    return obj


def _interval(obj: Any, keys: Sequence[str | int], where: Path) -> dict[str, Any]:
    """An interval dict of ``metrics.json`` (mean, std, ci95, values), checked."""
    stat = _get(obj, keys, where, dict)
    for name in ("mean", "std"):
        _get(stat, [name], where, (int, float))
    values = _get(stat, ["values"], where, list)
    ci = _get(stat, ["ci95"], where, list)
    if not values or len(ci) != 2 or not all(isinstance(v, (int, float)) for v in [*values, *ci]):
        raise RunError(f"{where}: malformed: {'.'.join(str(k) for k in keys)} has no values or no 95% interval")
    return stat


def _level(test: dict[str, Any], level: str, where: Path) -> str:
    """``level`` when the run has it, else clip (the SVM has no windows)."""
    if level in test:
        return level
    if "clip" in test:
        return "clip"
    raise RunError(f"{where}: malformed: the test split has neither {level} nor clip figures")


def _labels(metrics: dict[str, Any], where: Path) -> list[str]:
    labels = _get(metrics, ["labels"], where, list)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise RunError(f"{where}: malformed: labels must be a non-empty list of names")
    return labels


def _fold_keys(run: Path, folds: int) -> list[frozenset[str]] | None:
    """Each fold's test clip keys, from ``fold-K/splits.json``; None unless every fold has a readable one."""
    keys = []
    for k in range(folds):
        path = run / f"fold-{k}" / "splits.json"
        try:
            test = json.loads(path.read_text(encoding="utf-8"))["splits"]["test"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            return None
        if not isinstance(test, list):
            return None
        keys.append(frozenset(map(str, test)))
    return keys


def _folds_entry(run: Path, metrics: dict[str, Any], level: str, name: str, where: Path) -> Entry:
    folds = _get(metrics, ["folds"], where, int)
    if "test" not in metrics:
        raise RunError(f"{where}: a {folds}-fold run without per-fold figures (test); written by an older harmonies? "
                       "Train it again to compare it")  # fmt: skip
    labels = _labels(metrics, where)
    test = _get(metrics, ["test"], where, dict)
    lvl = _level(test, level, where)
    per_fold = _get(metrics, ["per_fold"], where, list)
    counts = [_get(f, ["test_clips"], where, int) for f in per_fold]
    if len(counts) != folds:
        raise RunError(f"{where}: malformed: {folds} folds but {len(counts)} in per_fold")
    entry = _summary_entry(test[lvl], ["test", lvl], name=name, model=str(metrics.get("model") or "?"), level=lvl,
                           folds=folds, labels=labels, where=where)  # fmt: skip
    entry.test_clips = counts
    entry.test_keys = _fold_keys(run, folds)
    entry.seed = metrics.get("split_seed", metrics.get("seed"))  # the seed that drew the folds
    entry.group_by = metrics.get("group_by")
    if "baseline" in metrics:
        base = _get(metrics, ["baseline"], where, dict)
        entry.baseline = _summary_entry(_get(base, ["clip"], where, dict), ["baseline", "clip"], name="",
                                        model=str(base.get("model", "svm")), level="clip", folds=folds, labels=labels,
                                        where=where)  # fmt: skip
        entry.baseline.test_clips, entry.baseline.test_keys = counts, entry.test_keys
        entry.baseline.seed, entry.baseline.group_by = entry.seed, entry.group_by
    if "fused" in metrics:
        fused = _get(metrics, ["fused"], where, dict)
        entry.fused = _summary_entry(_get(fused, ["clip"], where, dict), ["fused", "clip"], name=f"{name} + svm (fused)",
                                     model=entry.model, level="clip", folds=folds, labels=labels, where=where)  # fmt: skip
        entry.fused.test_clips, entry.fused.test_keys = counts, entry.test_keys
        entry.fused.seed, entry.fused.group_by = entry.seed, entry.group_by
    return entry


def _summary_entry(stats: dict[str, Any], keys: list[str], *, name: str, model: str, level: str, folds: int,
                   labels: list[str], where: Path) -> Entry:  # fmt: skip
    """An entry from one level of a cross-validation summary (:func:`crossval.summarize_level`'s dict)."""
    figures = {metric: _interval(stats, [metric], where) for metric in HEADLINE}
    classes = _get(stats, ["per_class"], where, dict)
    per_class = {}
    for label in labels:
        c = _get(classes, [label], where, dict)
        per_class[label] = None if c.get("f1") is None else _interval(c, ["f1"], where)
    confusion = _get(stats, ["confusion"], where, list)
    return Entry(name=name, model=model, level=level, folds=folds, labels=labels, figures=figures,
                 per_class_f1=per_class, confusion=confusion)  # fmt: skip


def _single_entry(metrics: dict[str, Any], level: str, name: str, where: Path) -> Entry:
    labels = _labels(metrics, where)
    splits = _get(metrics, ["splits"], where, dict)
    if "test" not in splits:
        raise RunError(f"{where}: no test split (splits: {', '.join(splits) or 'none'}); a run trained with "
                       "--test 0 has no figures to compare")  # fmt: skip
    test = _get(splits, ["test"], where, dict)
    lvl = _level(test, level, where)
    entry = _metrics_entry(test[lvl], name=name, model=str(_get(metrics, ["model", "name"], where, str)), level=lvl,
                           labels=labels, where=where)  # fmt: skip
    base = metrics.get("baseline")
    if isinstance(base, dict) and "test" in base.get("splits", {}):  # a skipped baseline has no splits
        entry.baseline = _metrics_entry(_get(base, ["splits", "test", "clip"], where, dict), name="",
                                        model=str(base.get("model", "svm")), level="clip", labels=labels, where=where)  # fmt: skip
    fusion = metrics.get("fusion")
    if isinstance(fusion, dict) and "test" in fusion.get("splits", {}):
        entry.fused = _metrics_entry(_get(fusion, ["splits", "test", "clip"], where, dict), name=f"{name} + svm (fused)",
                                     model=entry.model, level="clip", labels=labels, where=where)  # fmt: skip
    return entry


def _metrics_entry(m: dict[str, Any], *, name: str, model: str, level: str, labels: list[str], where: Path) -> Entry:
    """An entry from one split's figures (:func:`~pyharmonies.training.metrics.classification_metrics`'s dict)."""
    figures = {metric: interval([_get(m, [metric], where, (int, float))]) for metric in HEADLINE}
    classes = _get(m, ["per_class"], where, dict)
    per_class = {}
    for label in labels:
        support = _get(classes, [label, "support"], where, int)
        per_class[label] = interval([_get(classes, [label, "f1"], where, (int, float))]) if support > 0 else None
    n = _get(m, ["n"], where, int)
    return Entry(name=name, model=model, level=level, folds=0, labels=labels, figures=figures, per_class_f1=per_class,
                 confusion=_get(m, ["confusion"], where, list), test_clips=[n])  # fmt: skip


def load_run(run: str | os.PathLike[str], *, level: str = "clip", name: str | None = None) -> Entry:
    """One run folder as an :class:`Entry` (with its SVM baseline in ``baseline``, when it carries one).

    Parameters
    ----------
    run : path-like
        A folder holding ``metrics.json``: a cross-validation (``folds``) or a single run.
    level : {"clip", "window"}
        The figures to read; a run without windows (the SVM) gives its clip figures.
    name : str, optional
        The entry's name; the folder's name if omitted.

    Raises
    ------
    RunError
        No such folder, no ``metrics.json``, not JSON, no test split, a field missing.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: no such folder" if not run.exists() else f"{run}: not a folder (give the run's folder)")
    where = run / "metrics.json"
    if not where.is_file():
        raise RunError(f"{run}: no metrics.json (not a training run, or one that has not finished)")
    metrics = _read_json(where)
    if not isinstance(metrics, dict):
        raise RunError(f"{where}: malformed: a JSON {type(metrics).__name__}, not an object")
    name = name or run.resolve().name
    if "folds" in metrics:
        entry = _folds_entry(run, metrics, level, name, where)
    elif "splits" in metrics:
        entry = _single_entry(metrics, level, name, where)
    else:
        raise RunError(f"{where}: neither a cross-validation (folds) nor a training run (splits); "
                       "evaluate's and tune's folders are not runs")  # fmt: skip
    config = run / "config.json"
    if config.is_file():
        data = _read_json(config)
        if isinstance(data, dict):
            entry.data = data.get("data")
            if entry.model == "?":  # a summary written before train_folds recorded the model
                entry.model = str(data.get("model") or "?")
    for carried in (entry.baseline, entry.fused):
        if carried is not None:
            carried.data = entry.data
    return entry


# ------------------------------------------------------------------ comparing


def fold_mismatch(a: Entry, b: Entry) -> str | None:
    """Why ``a`` and ``b`` cannot be paired by fold, or None when they were tested on the same folds.

    The same folds: the same labels and number of folds and, per fold, the
    same test clips (``fold-K/splits.json``) or, where a run lacks those
    files, the same number of test clips and the same seed and grouping.
    """
    if not a.folds or not b.folds:
        return "a single run has no folds"
    if a.folds != b.folds:
        return f"{a.folds} and {b.folds} folds"
    if a.labels != b.labels:
        return "different labels"
    if a.test_clips != b.test_clips:
        return "different numbers of test clips per fold"
    if a.test_keys is not None and b.test_keys is not None:
        differ = [k for k, (x, y) in enumerate(zip(a.test_keys, b.test_keys)) if x != y]
        return f"different test clips in fold {differ[0]}" if differ else None
    for what in ("seed", "group_by"):
        x, y = getattr(a, what), getattr(b, what)
        if x is not None and y is not None and x != y:
            return f"different {what.replace('_', '-')} ({x} and {y}): other folds"
    return None


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """Folder names, or the paths as given where two folders share a name."""
    names = [p.resolve().name for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names)]


def compare_runs(runs: Sequence[str | os.PathLike[str]], *, level: str = "clip", names: Sequence[str] | None = None) -> Comparison:
    """Read ``runs`` and line them up: entries, paired differences, notes.

    Parameters
    ----------
    runs : sequence of path-like
        Run folders (at least one).
    level : {"clip", "window"}
        The figures compared; the SVM's are per clip whatever the level (it has no windows).
    names : sequence of str, optional
        One name per run (default: the folders' names).

    Returns
    -------
    Comparison
        The runs in the order given (a run trained with ``--fuse-svm`` followed
        by its fused answer, at clip level), then their SVM baselines (one entry per
        distinct baseline, named after the runs that carry it). ``paired``:
        each cross-validation tested on the same folds as the first one
        (``reference``), with the per-fold differences of accuracy and
        macro-F1 to it. ``notes``: runs on different labels, numbers of
        folds or datasets, figures at another level, pairs refused and why.
    """
    paths = [Path(r) for r in runs]
    if not paths:
        raise RunError("no run to compare: give at least one run folder")
    if names is not None:
        names = [n.strip() for n in names]
        if len(names) != len(paths):
            raise RunError(f"{len(names)} names for {len(paths)} runs")
        if len(set(names)) != len(names) or not all(names):
            raise RunError(f"names must be distinct and non-empty: {', '.join(names)}")
    loaded = [load_run(p, level=level, name=n) for p, n in zip(paths, names or _unique_names(paths))]
    # A run trained with --fuse-svm is followed by its fused answer (clip level: the fusion is per clip).
    entries = [row for e in loaded for row in ([e, e.fused] if e.fused is not None and level == "clip" else [e])]
    notes: list[str] = []

    baselines: list[Entry] = []
    for entry in entries:
        base = entry.baseline
        if base is None:
            continue
        same = next((b for b in baselines if b.identity() == base.identity()), None)
        if same is not None:
            same.baseline_of.append(entry.name)
            continue
        given = next((e for e in entries if e.identity() == base.identity()), None)
        if given is not None:
            notes.append(f"The SVM baseline of {entry.name} has the same figures as {given.name}: shown once.")
            continue
        base.baseline_of.append(entry.name)
        baselines.append(base)
    for base in baselines:
        base.name = f"{base.model} (baseline of {', '.join(base.baseline_of)})"

    rows = entries + baselines
    reference = next((e for e in rows if e.folds), None)
    paired: dict[str, dict[str, dict[str, Any]]] = {}
    if reference is not None:
        for entry in rows:
            if entry is reference or not entry.folds:
                continue
            why = fold_mismatch(reference, entry)
            if why is None:
                paired[entry.name] = {
                    m: paired_difference(entry.figures[m]["values"], reference.figures[m]["values"]) for m in HEADLINE
                }
            else:
                notes.append(f"{entry.name} is not paired with {reference.name}: {why}.")

    notes[:0] = _differences(entries, rows, level)
    if paired:
        notes.insert(0, f"Δ vs first: each run's figure minus {reference.name}'s (the first cross-validation), fold by "
                        "fold on the same test clips: mean ± std of the per-fold differences and their 95% t-interval; "
                        "accuracy in points.")  # fmt: skip
    labels = list(dict.fromkeys(label for e in rows for label in e.labels))
    return Comparison(level=level, entries=rows, labels=labels, reference=reference if paired else None, paired=paired, notes=notes)


def _differences(entries: Sequence[Entry], rows: Sequence[Entry], level: str) -> list[str]:
    """Notes on what makes the runs (``entries``; ``rows``: with the baselines) less comparable than their table looks."""
    notes = []
    other = [e.name for e in rows if e.level != level]
    if other:
        notes.append(f"No {level} figures for {', '.join(other)} (the SVM classifies whole clips): their clip figures are shown.")
    if len({tuple(e.labels) for e in entries}) > 1:
        notes.append("The runs have different labels: " + "; ".join(f"{e.name}: {', '.join(e.labels)}" for e in entries) + ".")
    folds = {e.name: e.folds for e in entries if e.folds}
    if len(set(folds.values())) > 1:
        notes.append("Different numbers of folds: " + ", ".join(f"{n} {k}" for n, k in folds.items()) + ".")
    singles = [e.name for e in entries if not e.folds]
    if singles and folds:
        notes.append(f"{', '.join(singles)}: one test split, one value, no spread to show; on a few hundred clips "
                     "a single split moves by several points from seed to seed.")  # fmt: skip
    datasets = {e.name: e.data for e in entries}
    known = {d for d in datasets.values() if d is not None}
    if len(known) > 1 or (known and None in datasets.values()):
        notes.append("Different datasets: " + ", ".join(f"{n} `{d}`" if d else f"{n} (no config.json)" for n, d in datasets.items()) + ".")
    return notes


# ------------------------------------------------------------------ writing


def _pct(stat: dict[str, Any]) -> str:
    return f"{100 * stat['mean']:.1f}%" if stat["n"] < 2 else f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}%"


def _f1(stat: dict[str, Any] | None) -> str:
    if stat is None:
        return "—"
    return f"{stat['mean']:.3f}" if stat["n"] < 2 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _ci(stat: dict[str, Any], scale: float, digits: int) -> str:
    if stat["n"] < 2:
        return "—"
    lo, hi = stat["ci95"]
    return f"[{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def _delta(stat: dict[str, Any], percent: bool) -> str:
    scale, digits = (100, 1) if percent else (1, 3)
    return f"{scale * stat['mean']:+.{digits}f} ± {scale * stat['std']:.{digits}f} {_ci(stat, scale, digits)}"


def markdown(comp: Comparison, *, plot: str | None = None) -> str:
    """The comparison as Markdown: the runs' table, the per-class F1 table, the notes.

    ``plot``: the figure's path relative to the table, linked under the title.
    """
    level = comp.level
    runs = sum(1 for e in comp.entries if not e.baseline_of)
    title = f"# {runs} run{'s' if runs != 1 else ''} compared: test {level} figures"
    if runs < len(comp.entries):
        title += f", with {len(comp.entries) - runs} SVM baseline{'s' if len(comp.entries) - runs > 1 else ''}"
    lines = [title, ""]
    if plot:
        lines += [f"![runs compared]({plot})", ""]
    header = ["run", "model", "folds", "accuracy", "95% CI", "macro F1", "95% CI"]
    align = ["---", "---", "---:", "---:", "---:", "---:", "---:"]
    if comp.paired:
        header += ["Δ accuracy vs first (paired)", "Δ macro F1 vs first (paired)"]
        align += ["---:", "---:"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for e in comp.entries:
        acc, f1 = e.figures["accuracy"], e.figures["macro_f1"]
        model = e.model if e.level == level else f"{e.model} ({e.level})"
        cells = [e.name, model, str(e.folds) if e.folds else "1 split", _pct(acc), _ci(acc, 100, 1), _f1(f1), _ci(f1, 1, 3)]
        if comp.paired:
            if e is comp.reference:
                cells += ["reference", "reference"]
            elif e.name in comp.paired:
                cells += [_delta(comp.paired[e.name]["accuracy"], True), _delta(comp.paired[e.name]["macro_f1"], False)]
            else:
                cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cross-validations: mean ± standard deviation over the folds, 95% confidence interval for the mean "
                  "(Student's t); single runs: the value on their test split.", ""]  # fmt: skip
    lines += [f"## Per-class F1 (test {level}s)", ""]
    lines += ["| class | " + " | ".join(e.name for e in comp.entries) + " |", "|---|" + "---:|" * len(comp.entries)]
    for label in comp.labels:
        lines.append(f"| {label} | " + " | ".join(_f1(e.per_class_f1.get(label)) for e in comp.entries) + " |")
    lines += ["", "Over the folds whose test set holds the class; — where a run never tested it.", ""]
    if comp.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in comp.notes] + [""]
    return "\n".join(lines)


def _level_text(comp: Comparison) -> str:
    """What the figures are of: "test clips", "test windows", or "test windows (svm: clips)"."""
    other = sorted({e.model for e in comp.entries if e.level != comp.level})
    return f"test {comp.level}s" + (f" ({', '.join(other)}: clips)" if other else "")


def _spread(stat: dict[str, Any] | None) -> float:
    """The error bar: std over folds; none (NaN) for a single value or a class never tested."""
    return stat["std"] if stat is not None and stat["n"] > 1 else float("nan")


def plot_comparison(comp: Comparison, path: str | os.PathLike[str]) -> None:
    """PNG, written atomically: accuracy and macro-F1 per run (bars: mean, error bars: std over
    the folds, dots: each fold), and per-class F1 per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    entries, labels = comp.entries, comp.labels
    n = len(entries)
    width = min(30.0, max(7.0, 1.3 * n + 2, 0.3 * n * len(labels) + 2))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 8.5))
    x = np.arange(n)
    rng = np.random.default_rng(0)  # the dots' jitter only; a fixed seed draws the same figure every time
    for offset, metric, colour in ((-0.2, "accuracy", "tab:blue"), (0.2, "macro_f1", "tab:orange")):
        stats = [e.figures[metric] for e in entries]
        top.bar(x + offset, [s["mean"] for s in stats], 0.38, yerr=[_spread(s) for s in stats], capsize=3, color=colour,
                alpha=0.75, label=metric.replace("_", "-"))  # fmt: skip
        for i, s in enumerate(stats):
            if s["n"] > 1:
                top.scatter(i + offset + rng.uniform(-0.08, 0.08, s["n"]), s["values"], s=10, color="black", zorder=3)
    top.set_xticks(x, [e.name for e in entries], rotation=15 if n > 3 else 0, ha="right" if n > 3 else "center")
    top.set_ylim(0, 1.2)  # room above 1 for the legend
    top.set_yticks(np.linspace(0, 1, 6))
    top.set_ylabel(_level_text(comp))
    top.set_title("Accuracy and macro-F1 (bars: mean; error bars: std over folds; dots: folds)")
    top.legend(loc="upper right", ncol=2)
    top.grid(axis="y", alpha=0.3)
    xc = np.arange(len(labels))
    bar = 0.8 / n
    for i, e in enumerate(entries):
        stats = [e.per_class_f1.get(label) for label in labels]
        bottom.bar(xc - 0.4 + (i + 0.5) * bar, [s["mean"] if s else 0.0 for s in stats], bar,
                   yerr=[_spread(s) for s in stats], capsize=2, label=e.name)  # fmt: skip
    bottom.set_xticks(xc, labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    bottom.set_ylim(0, 1.2)
    bottom.set_yticks(np.linspace(0, 1, 6))
    bottom.set_ylabel("F1")
    bottom.set_title(f"Per-class F1, {_level_text(comp)} (error bars: std over folds)")
    bottom.legend(fontsize=8, ncol=min(n, 4), loc="upper right")
    bottom.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
