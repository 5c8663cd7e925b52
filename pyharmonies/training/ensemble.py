"""``harmonies ensemble``: several trained CNN runs averaged into one run, which exports as one model.

The members must be interchangeable on the device: the same labels,
features, window and input normalisation, and, so that the ensemble's test
figures mean what a single run's mean, the same test clips (every fold of
a cross-validation included). Runs of one recipe with other random streams
(another ``--seed`` with the same ``--split-seed``, or another option on
the same ``--folds``) qualify; so do runs that held out other validation
tracks from the same non-test tracks (``--val-seed`` with
``--normalize-over train+val``, as ``train --member-val own`` trains them),
and then every non-test track trained some member: the ensemble has no
validation split of its own and reports the test split. Anything else is
refused with the reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyharmonies._atomic import write_atomic
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig

#: What the members' checkpoints must share, beside their splits.
SHARED_META = ("labels", "input_kind", "input_shape", "window_frames", "window_seconds", "feature_config", "model_config")


def _splits(run: Path) -> dict[str, list[str]]:
    try:
        return {k: sorted(v) for k, v in json.loads((run / "splits.json").read_text(encoding="utf-8"))["splits"].items()}
    except FileNotFoundError:
        raise ParameterError(f"{run}: no splits.json (not a training run directory?)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ParameterError(f"{run / 'splits.json'}: not a readable split file ({type(err).__name__})") from None


def _non_test(splits: dict[str, list[str]]) -> list[str]:
    return sorted(splits.get("train", []) + splits.get("val", []))


def _merged_splits(run: Path) -> dict[str, Any]:
    """``run``'s splits.json with its validation clips and groups moved into train (members held out others)."""
    saved = json.loads((run / "splits.json").read_text(encoding="utf-8"))
    for key in ("splits", "groups"):
        if key in saved:
            part = saved[key]
            saved[key] = {**part, "train": sorted(part.get("train", []) + part.get("val", [])), "val": []}
    return saved


def _member_checkpoint(run: Path) -> dict[str, Any]:
    ck = checkpoint.load(run / checkpoint.BEST)
    if ck["meta"]["model_name"] != "cnn":
        raise ParameterError(f"{run} is a {ck['meta']['model_name']} run; an ensemble averages cnn runs")
    return ck


def check_members(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """The members' best checkpoints (``model``, ``meta``), after checking that they can be averaged.

    Raises
    ------
    ParameterError
        Fewer than two runs, a run that is not a CNN run, or one whose labels,
        features, window, network shape, normaliser or splits differ from the
        first run's (named, with what differs).
    """
    if len(runs) < 2:
        raise ParameterError(f"an ensemble needs at least two runs, got {len(runs)}")
    checkpoints = [_member_checkpoint(run) for run in runs]
    metas = [ck["meta"] for ck in checkpoints]
    first, first_splits = metas[0], _splits(runs[0])
    for run, meta in zip(runs[1:], metas[1:]):
        theirs = _splits(run)
        if theirs.get("test") != first_splits.get("test") or _non_test(theirs) != _non_test(first_splits):
            raise ParameterError(f"{run}: its train/val/test splits differ from {runs[0]}'s; average runs trained on the "
                                 "same splits (same data, --split-seed or --seed, and --folds; --val-seed may differ), "
                                 "or the test figures would hear training tracks")  # fmt: skip
        for key in SHARED_META:
            if meta[key] != first[key]:
                raise ParameterError(f"{run}: its {key} differs from {runs[0]}'s; the members of an ensemble must share it")
        for stat in ("mean", "std"):
            if not np.allclose(meta["normalizer"][stat], first["normalizer"][stat], rtol=1e-5, atol=1e-6):
                other_val = theirs != first_splits
                hint = (" (runs holding out other validation tracks share one with --normalize-over train+val)" if other_val
                        else " (trained on other clips?)")  # fmt: skip
                raise ParameterError(f"{run}: its input normalisation differs from {runs[0]}'s{hint}")
    return checkpoints


def own_validation(runs: Sequence[Path]) -> bool:
    """Whether the members of ``runs`` (checked by :func:`check_members`) held out different validation tracks."""
    first = _splits(runs[0])
    return any(_splits(run) != first for run in runs[1:])


def ensemble_run(runs: Sequence[str | Path], out: str | Path, *, progress: bool = False) -> Path:
    """Average the best models of ``runs`` (CNN runs that :func:`check_members` accepts) into the run ``out``.

    ``out`` gets ``best.pt`` (a ``cnn_ensemble`` model: the members' weights,
    logits averaged), the first member's ``config.json`` and ``splits.json``
    (with its validation clips counted as training clips when the members
    held out different ones: then the ensemble is scored on test only),
    ``ensemble.json`` (the members and their checkpoints' sha256),
    ``metrics.json`` (the ensemble on every split beside each member and the
    SVM baseline) and ``report.md``. ``harmonies export`` and ``evaluate``
    take it like any run.

    Returns
    -------
    Path
        ``out``.
    """
    from pyharmonies.training.evaluate import window_probabilities
    from pyharmonies.training.loop import evaluate_windows

    runs = [Path(r) for r in runs]
    out = Path(out)
    checkpoints = check_members(runs)
    if (out / checkpoint.BEST).exists():
        raise ParameterError(f"{out} already holds a run; choose another --out")
    first = checkpoints[0]["meta"]
    meta = {**first, "model_name": "cnn_ensemble", "model_config": {"members": len(runs), "member": dict(first["model_config"])},
            "ensemble": [str(r) for r in runs]}  # fmt: skip
    state: dict[str, torch.Tensor] = {}
    for i, ck in enumerate(checkpoints):
        for key, value in ck["model"].items():
            state[f"members.{i}.{key}"] = value
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save_atomic({"model": state, "meta": meta, "epoch": 0}, out / checkpoint.BEST)
    cfg = TrainConfig.load(runs[0] / "config.json")
    cfg.out = str(out)
    cfg.save(out / "config.json")
    own_val = own_validation(runs)
    if own_val:  # every non-test track trained some member: no clip is held out from all of them but the test clips
        write_atomic(out / "splits.json", json.dumps(_merged_splits(runs[0]), indent=2) + "\n")
    else:
        shutil.copyfile(runs[0] / "splits.json", out / "splits.json")
    write_atomic(out / "ensemble.json", json.dumps({"members": [
        {"run": str(r), "best_sha256": hashlib.sha256((r / checkpoint.BEST).read_bytes()).hexdigest()} for r in runs
    ]}, indent=2) + "\n")  # fmt: skip

    saved = _splits(out)
    splits = [s for s in ("val", "test") if saved.get(s)]
    results: dict[str, Any] = {}
    members: dict[str, dict[str, float]] = {str(r): {} for r in runs}
    for split in splits:
        scored = window_probabilities(out, cfg.data, split=split, progress=progress)
        results[split] = evaluate_windows(scored.probs, scored.y, scored.windows, scored.labels)
        for r in runs:
            one = window_probabilities(r, cfg.data, split=split, progress=False)
            members[str(r)][split] = evaluate_windows(one.probs, one.y, one.windows, one.labels)["clip"]["accuracy"]
    member_metrics = json.loads((runs[0] / "metrics.json").read_text(encoding="utf-8"))
    metrics = {"splits": results, "labels": list(first["labels"]), "model": {"name": "cnn_ensemble", "members": len(runs)},
               "members": members, "baseline": member_metrics.get("baseline")}  # fmt: skip
    if own_val:
        metrics["own_validation"] = True
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_report(out, cfg, metrics)
    return out


def _write_report(out: Path, cfg: TrainConfig, metrics: dict[str, Any]) -> None:
    from pyharmonies.training.report import baseline_lines, metrics_table

    lines = [f"# Ensemble `{out.name}`: {metrics['model']['members']} CNN runs averaged, on `{cfg.data}`", "",
             "Each window's logits are the mean of the members'; a clip's answer is the mean of its windows' probabilities.",
             *(["", "Each member held out its own validation tracks, so every non-test track trained some member: the "
                    "ensemble is scored on the test tracks only."] if metrics.get("own_validation") else []),
             "", "| run | " + " | ".join(f"{s} clip accuracy" for s in metrics["splits"]) + " |",
             "|---|" + "---:|" * len(metrics["splits"])]  # fmt: skip
    for run, accs in metrics["members"].items():
        lines.append(f"| `{run}` | " + " | ".join(f"{100 * accs[s]:.1f}%" for s in metrics["splits"]) + " |")
    lines.append("| **the ensemble** | " + " | ".join(f"**{100 * r['clip']['accuracy']:.1f}%**" for r in metrics["splits"].values()) + " |")
    lines += baseline_lines(metrics, "test")
    if "test" in metrics["splits"]:
        lines += ["", "## Test split, per clip", ""] + metrics_table(metrics["splits"]["test"]["clip"])
    write_atomic(out / "report.md", "\n".join(lines) + "\n")


def ensemble_folds(runs: Sequence[str | Path], out: str | Path, *, progress: bool = False) -> Path:
    """:func:`ensemble_run` on each fold of ``--folds`` runs (same folds), and the folds' summary in ``out``."""
    from pyharmonies.training.crossval import summarize_folds
    from pyharmonies.training.report import write_folds_report

    runs = [Path(r) for r in runs]
    out = Path(out)
    folds = sorted((p.name for p in runs[0].glob("fold-*")), key=lambda n: int(n.split("-")[1]))
    for run in runs[1:]:
        theirs = sorted((p.name for p in run.glob("fold-*")), key=lambda n: int(n.split("-")[1]))
        if theirs != folds:
            raise ParameterError(f"{run}: folds {theirs} differ from {runs[0]}'s {folds}")
    for fold in folds:
        check_members([run / fold for run in runs])  # every fold checked before anything is written
    fold_runs = []
    for fold in folds:
        target = out / fold
        if not (target / "metrics.json").exists():
            shutil.rmtree(target, ignore_errors=True)  # a fold left half-written by a kill
            ensemble_run([run / fold for run in runs], target, progress=progress)
        fold_runs.append(json.loads((target / "metrics.json").read_text(encoding="utf-8")))
    cfg = TrainConfig.load(runs[0] / "config.json")
    cfg.out = str(out)
    cfg.save(out / "config.json")
    summary = summarize_folds(fold_runs)
    summary.update(model="cnn_ensemble", members=[str(r) for r in runs], group_by=cfg.group_by, seed=cfg.seed)
    write_atomic(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    write_folds_report(out, cfg, summary, name=f"an ensemble of {len(runs)} cnn runs")
    return out


def is_folds_run(run: str | Path) -> bool:
    """Whether ``run`` is a ``--folds`` run folder (``fold-0``... under it) rather than one run."""
    return (Path(run) / "fold-0").is_dir() and not (Path(run) / checkpoint.BEST).exists()
