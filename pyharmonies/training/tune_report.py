"""What a tuning study writes beside ``study.db``: ``report.md``, ``trials.csv``,
``best.json`` and ``importance.png``, rewritten after every trial so that a
killed study still has them."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyharmonies._atomic import atomic_open, write_atomic
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.tune import SEARCH_SPACES, Param, best_trial, config_with

#: Columns of ``trials.csv`` before the parameters (one column each, named as in the search space).
CSV_COLUMNS = ("number", "state", "value", "val_clip_macro_f1", "test_clip_accuracy", "test_clip_macro_f1",
               "folds_done", "seconds", "defaults")  # fmt: skip


def trial_rows(study: Any, space: Sequence[Param]) -> list[dict[str, Any]]:
    """One dict per trial of ``study``, in trial order: :data:`CSV_COLUMNS` and each parameter.

    ``value`` is the mean validation clip accuracy (for a pruned trial, over
    the folds it ran); ``seconds`` is ``None`` for a trial that a kill
    interrupted (its end is when the resume found it).
    """
    rows = []
    for t in study.get_trials(deepcopy=False):
        interrupted = t.user_attrs.get("interrupted", False)
        row = {
            "number": t.number,
            "state": t.state.name + (" (interrupted)" if interrupted else ""),
            "value": t.value,
            "val_clip_macro_f1": t.user_attrs.get("val_clip_macro_f1"),
            "test_clip_accuracy": t.user_attrs.get("test_clip_accuracy"),
            "test_clip_macro_f1": t.user_attrs.get("test_clip_macro_f1"),
            "folds_done": len(t.user_attrs.get("fold_val_clip_accuracy", [])),
            "seconds": t.duration.total_seconds() if t.duration is not None and not interrupted else None,
            "defaults": bool(t.user_attrs.get("defaults", False)),
        }
        row.update({p.name: t.params.get(p.name) for p in space})
        rows.append(row)
    return rows


def write_csv(rows: Sequence[dict[str, Any]], space: Sequence[Param], path: Path) -> None:
    """``trials.csv``: a row per trial, empty cells where a figure is missing."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(CSV_COLUMNS) + [p.name for p in space]
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    write_atomic(path, buffer.getvalue())


def best_config(best: Any, base: TrainConfig) -> TrainConfig:
    """The best trial's configuration as one run: ``folds`` 0 and ``out`` ``runs/<model>-<dataset>-tuned``."""
    data = Path(base.data)
    name = data.stem if data.is_file() else data.name
    return config_with(base, dict(best.params), out=str(Path("runs") / f"{base.model}-{name}-tuned"), folds=0)


def importances(study: Any, *, seed: int = 0) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance of each parameter over the complete trials, or ``None`` and why not.

    Returns
    -------
    dict of str to float, or None
        Importance per parameter (they sum to 1), largest first.
    str
        What the figures are, or why there are none.
    """
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return None, f"not estimated: {len(complete)} complete trial(s), fANOVA needs at least 2"
    if len({t.value for t in complete}) < 2:
        return None, f"not estimated: the {len(complete)} complete trials all scored {complete[0].value:.3f}"
    try:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    except ImportError as err:  # fANOVA's random forest is scikit-learn's
        return None, f"not estimated: {err} (pip install 'harmonies[train]')"
    except (ValueError, RuntimeError) as err:
        return None, f"not estimated: {err}"
    return dict(found), (f"fANOVA over the {len(complete)} complete trials (pruned ones left out): the share of the "
                         "score's variance that each parameter explains; with few trials it is a rough guide")  # fmt: skip


def plot_importance(found: dict[str, float], path: Path, title: str) -> None:
    """A horizontal bar per parameter, the most important on top, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(found)[::-1]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(names)))
    ax.barh(range(len(names)), [found[n] for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("importance (fANOVA, share of the score's variance)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _params_text(params: dict[str, Any]) -> str:
    # model_options.width -> width: names stay unique within one model's space.
    return ", ".join(f"{name.rpartition('.')[2]}={_value(v)}" for name, v in params.items() if v is not None)


def write_all(study: Any, out: Path, base: TrainConfig, space: Sequence[Param], *, trials: int, folds: int) -> None:
    """Rewrite ``trials.csv``, ``best.json`` (once a trial is complete), ``importance.png`` and ``report.md``."""
    rows = trial_rows(study, space)
    write_csv(rows, space, out / "trials.csv")
    best = best_trial(study)
    if best is not None:
        best_config(best, base).save(out / "best.json")
    found, note = importances(study, seed=base.seed)
    if found is not None:
        complete = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
        title = f"What mattered: {base.model} on {Path(base.data).name}, {complete} complete trials"
        plot_importance(found, out / "importance.png", title)
    else:
        (out / "importance.png").unlink(missing_ok=True)  # an older figure would contradict the note
    lines = _report_lines(study, out, base, space, rows, best, (found, note), trials=trials, folds=folds)
    write_atomic(out / "report.md", "\n".join(lines) + "\n")


def _report_lines(study: Any, out: Path, base: TrainConfig, space: Sequence[Param], rows: Sequence[dict[str, Any]],
                  best: Any | None, importance: tuple[dict[str, float] | None, str], *,
                  trials: int, folds: int) -> list[str]:  # fmt: skip
    found, note = importance
    done = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    all_trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in all_trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in all_trials if t.datetime_complete is not None and not t.user_attrs.get("interrupted")]
    busy = sum(r["seconds"] or 0.0 for r in rows)
    held = [p.name for p in SEARCH_SPACES[base.model] if p not in space]
    lines = [
        f"# Tuning {base.model} on `{base.data}`",
        "",
        f"{len(done)} of {trials} trials done ({', '.join(f'{n} {s.lower()}' for s, n in sorted(states.items()))}). "
        f"Each trial trains {folds} models, one per fold of a grouped {folds}-fold split (by `{base.group_by}`, "
        f"seed {base.seed}; the same folds for every trial), for at most {base.epochs} epoch(s) each.",
        "",
        f"Searched: {', '.join(f'`{p.name}` ({p.describe()})' for p in space)}. "
        + (f"Held at the base configuration's value: {', '.join(f'`{name}`' for name in held)}. " if held else "")
        + "Every other option is the base configuration's (see `best.json`).",
        "",
        f"Time: {busy:.0f} s of trials"
        + (f"; {(max(ends) - min(starts)).total_seconds():.0f} s from the first trial's start to the last one's end "
           "(pauses between sessions included)" if starts and ends else "") + ".",  # fmt: skip
        "",
        "**Score** (`value`): the mean over folds of the *validation* clip accuracy (a clip's prediction is "
        "the mean of its windows' probabilities); a pruned trial's value is over the folds it ran. "
        "**This is optimistic for the best trial**: it was chosen because its validation score was high. "
        "The test groups of each fold take no part in the choice; their clip accuracy is shown beside it, "
        "but it too was read for a configuration picked among many. For a figure to quote, train `best.json` "
        "and evaluate it on data this study never saw.",
        "",
        "## Best trial",
        "",
    ]
    if best is None:
        lines += ["No trial is complete yet.", ""]
    else:
        lines += [
            f"Trial {best.number}: validation clip accuracy **{_num(best.value)}**, test clip accuracy "
            f"{_num(best.user_attrs.get('test_clip_accuracy'))} (macro F1 {_num(best.user_attrs.get('test_clip_macro_f1'))}).",
            "",
            "| parameter | value |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {_value(value)} |" for name, value in best.params.items()]
        lines += ["", f"Train it: `harmonies train {base.data} --config {out / 'best.json'}` (options given on that "
                  "command line, e.g. `--epochs`, override the file's).", ""]  # fmt: skip
        defaults = next((t for t in all_trials if t.user_attrs.get("defaults") and t.state.name == "COMPLETE"), None)
        if defaults is None:
            lines += ["The base configuration's own trial is not complete: no gain to state.", ""]
        elif defaults.number == best.number:
            lines += [f"The base configuration (trial {defaults.number}) is still the best.", ""]
        else:
            gain = best.value - defaults.value
            tests = best.user_attrs.get("test_clip_accuracy"), defaults.user_attrs.get("test_clip_accuracy")
            test_gain = f"; test clip accuracy {100 * (tests[0] - tests[1]):+.1f} points" if None not in tests else ""
            lines += [f"Gain over the base configuration (trial {defaults.number}, {_num(defaults.value)}): "
                      f"validation clip accuracy {100 * gain:+.1f} points{test_gain}.", ""]  # fmt: skip
    lines += ["## Parameter importance", ""]
    if found is not None:
        lines += [note + ".", "", "![importance](importance.png)", "", "| parameter | importance |", "|---|---:|"]
        lines += [f"| `{name}` | {value:.3f} |" for name, value in found.items()]
    else:
        lines += [f"Importance {note}."]
    lines += [
        "",
        "## Trials",
        "",
        "| trial | state | folds | validation clip acc. | test clip acc. | seconds | parameters |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        params = _params_text({p.name: r[p.name] for p in space})
        tag = " (base)" if r["defaults"] else ""
        lines.append(f"| {r['number']}{tag} | {r['state'].lower()} | {r['folds_done']} | {_num(r['value'])} | "
                     f"{_num(r['test_clip_accuracy'])} | {_num(r['seconds'], 0)} | {params} |")  # fmt: skip
    lines += [
        "",
        "## Files",
        "",
        "- `study.db`: the Optuna study (SQLite); the same command resumes it after a kill",
        "- `best.json`: the best trial as a training configuration (`harmonies train DATA --config best.json`)",
        "- `trials.csv`: this table, with each parameter in its own column",
        "- `trials/trial-NNNN/fold-K/`: each fold's run (metrics.json, report.md; checkpoints deleted)",
    ]
    return lines
