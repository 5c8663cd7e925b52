"""``train --fuse-svm W``: the SVM baseline's calibrated answer fused with a neural run's.

On the soundtracks set the SVM on clip statistics knows some of what the
CNN misses: their answers fused in the log domain,
``softmax((1 - W) log p_model + W log p_svm)`` with ``W`` = 0.3, scored
+2.5 ± 1.7 points over the default's triples alone (``docs/EXPERIMENTS.md``,
"The SVM as one more member"). This module makes it part of a run: after the
network is trained, :func:`fuse_run` fits the SVM on the run's training
split (C chosen on validation, as the baseline's), calibrates its
probabilities on decision values of training tracks it did not fit
(:func:`pyharmonies.training.svm.fit_calibrated_svm`), stores it beside the
model as ``svm-fusion.npz`` + ``svm-fusion.json``, and scores the fused
answer on every split into ``metrics.json`` (``fusion``) and ``report.md``.
``harmonies export`` then carries it into the bundle, and ``classify``,
``evaluate`` and ``listen`` answer with the fusion.

The network is not changed: ``splits`` in ``metrics.json`` stays the
network's own answer, and the fused one sits beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import atomic_open, write_atomic
from pyharmonies.errors import ParameterError
from pyharmonies.runtime.svm import CalibratedSvm, calibrated_arrays, clip_statistics, fuse_probabilities, read_calibrated
from pyharmonies.training.metrics import classification_metrics, clip_probabilities

FUSION_ARRAYS = "svm-fusion.npz"  # the calibrated SVM (runtime.svm.calibrated_arrays)
FUSION_JSON = "svm-fusion.json"  # its weight, labels, features and feature config
FUSION_FORMAT = 1
REPORT_HEADING = "## Fused with the SVM"
#: What the SVM reads: the baseline's clip statistics.
FEATURES = "mean and std of the 28-value frame vector over the clip"


def frame_statistics(data: str | Path, feature_config: dict[str, Any], cache: str, labels: list[str], *,
                     progress: bool = False) -> tuple[Any, np.ndarray]:
    """``(prep, (clips, 56) statistics)``: the SVM's clip statistics of every readable clip of ``data`` with ``labels``."""
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.loop import prepare_data

    prep = prepare_data(data, FeatureConfig(**feature_config), "frame_vector", cache, progress=progress, labels=labels)
    return prep, clip_statistics([prep.cache.clip_features(c, "frame_vector") for c in prep.clips])


def score_fusion(scored, svm: CalibratedSvm, weight: float, statistics: dict[str, np.ndarray]) -> dict[str, Any]:
    """``{"clip": the fused answer's metrics, "svm_clip": the SVM's alone}`` on the clips of ``scored``.

    ``scored``: the network's :class:`~pyharmonies.training.evaluate.WindowScores`;
    ``statistics``: clip key -> the clip's (56,) statistics.
    """
    ids = np.asarray([w.clip for w in scored.windows])
    order, cnn = clip_probabilities(scored.probs, ids)
    truth = np.asarray([scored.y[ids == c][0] for c in order])
    p_svm = svm.probabilities(np.stack([statistics[scored.prep.clips[c].key] for c in order]))
    fused = fuse_probabilities(cnn, p_svm, weight)
    return {"clip": classification_metrics(truth, fused.argmax(axis=1), scored.labels),
            "svm_clip": classification_metrics(truth, p_svm.argmax(axis=1), scored.labels)}  # fmt: skip


def run_split_keys(run_dir: Path) -> dict[str, list[str]]:
    """Split name -> the clip keys of a run's (or fold's) ``splits.json``; a ParameterError if it is unreadable."""
    path = run_dir / "splits.json"
    try:
        return {s: list(k) for s, k in json.loads(path.read_text(encoding="utf-8"))["splits"].items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ParameterError(f"{path}: not a readable split file ({type(err).__name__})") from None


def fuse_run(run: str | Path, weight: float, *, progress: bool = True, seed: int = 0) -> dict[str, Any]:
    """Fit the calibrated SVM on a CNN run's training split, store it, and score the fusion on every split.

    Parameters
    ----------
    run : path
        A finished CNN run (``metrics.json`` written; one fold of a ``--folds`` run).
    weight : float
        The SVM's weight ``W`` in [0, 1].

    Returns
    -------
    dict
        What ``metrics.json`` gets as ``fusion``: ``weight``, ``C``,
        ``support_vectors``, ``bytes``, and ``splits`` (split ->
        ``{"clip": metrics of the fused answer, "svm_clip": the calibrated SVM's alone}``).

    Raises
    ------
    ParameterError
        Not a finished CNN run, a weight outside [0, 1], or an SVM that
        cannot be fitted or calibrated on the training split.
    """
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.evaluate import window_probabilities
    from pyharmonies.training.svm import fit_calibrated_svm

    run_dir = Path(run)
    if not 0.0 <= weight <= 1.0:
        raise ParameterError(f"--fuse-svm: the SVM's weight must be between 0 and 1, got {weight}")
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise ParameterError(f"{run_dir}: not a finished run (no metrics.json)")
    cfg = TrainConfig.load(run_dir / "config.json")
    if cfg.model != "cnn":
        raise ParameterError(f"{run_dir}: --fuse-svm fuses the CNN's answer with the SVM's, not a {cfg.model} run's")
    keys = run_split_keys(run_dir)
    scored = {s: window_probabilities(run_dir, cfg.data, split=s, progress=progress) for s in keys if keys[s] and s != "train"}
    any_scored = next(iter(scored.values()), None)
    if any_scored is None:
        raise ParameterError(f"{run_dir}: no validation or test split to score the fusion on")
    labels = any_scored.labels
    fc = any_scored.meta["feature_config"]
    prep, stats = frame_statistics(cfg.data, fc, cfg.cache, labels, progress=progress)
    index = {c.key: i for i, c in enumerate(prep.clips)}
    label_index = {label: i for i, label in enumerate(labels)}
    y = np.asarray([label_index[c.label] for c in prep.clips])

    def rows(split: str) -> np.ndarray:
        return np.asarray([index[k] for k in keys.get(split, []) if k in index], dtype=np.int64)

    train, val = rows("train"), rows("val")
    groups = [prep.clips[i].group(cfg.group_by) for i in train]
    svm = fit_calibrated_svm(stats[train], y[train], groups, stats[val] if len(val) else None, y[val] if len(val) else None,
                             labels, seed)  # fmt: skip
    with atomic_open(run_dir / FUSION_ARRAYS, "wb") as f:
        np.savez(f, **calibrated_arrays(svm))
    frames = np.median([prep.cache.clip_features(prep.clips[i], "frame_vector").shape[1] for i in train])
    info = {"format": FUSION_FORMAT, "weight": weight, "labels": labels, "features": FEATURES,
            "clip_seconds": round(float(frames) * fc["hop_length"] / fc["sample_rate"], 3),
            "feature_config": fc, "C": svm.svm.C, "gamma": svm.svm.gamma,
            "fused": "softmax((1 - weight) log p_model + weight log p_svm) of a clip's mean window probabilities"}  # fmt: skip
    write_atomic(run_dir / FUSION_JSON, json.dumps(info, indent=2) + "\n")
    stored = read_calibrated(run_dir / FUSION_ARRAYS)  # scored as the bundle will run it (float16 support vectors)
    by_key = {c.key: stats[i] for i, c in enumerate(prep.clips)}
    results = {split: score_fusion(sc, stored, weight, by_key) for split, sc in scored.items()}
    fusion = {"weight": weight, "C": svm.svm.C, "support_vectors": int(len(svm.svm.support_vectors)),
              "bytes": (run_dir / FUSION_ARRAYS).stat().st_size, "splits": results}  # fmt: skip
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    metrics["fusion"] = fusion
    write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    _add_to_report(run_dir / "report.md", metrics)
    return fusion


def ensure_fused(run: str | Path, weight: float | None, *, progress: bool = True, seed: int = 0) -> None:
    """:func:`fuse_run` unless ``weight`` is None or the run's ``metrics.json`` already has this fusion."""
    if weight is None:
        return
    path = Path(run) / "metrics.json"
    fusion = json.loads(path.read_text(encoding="utf-8")).get("fusion") if path.exists() else None
    if fusion is None or fusion.get("weight") != weight or not (Path(run) / FUSION_ARRAYS).exists():
        fuse_run(run, weight, progress=progress, seed=seed)


def fusion_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown: each split's clip figures, the network's, the calibrated SVM's and the fused answer's."""
    fusion = metrics["fusion"]
    name = metrics.get("model", {}).get("name", "model")
    lines = [REPORT_HEADING, "",
             f"`--fuse-svm {fusion['weight']:g}`: softmax((1 − {fusion['weight']:g}) log p_{name} + {fusion['weight']:g} log p_svm) "
             f"of each clip. The SVM (RBF, C = {fusion['C']:g}, {fusion['support_vectors']:,} support vectors, "
             f"{fusion['bytes'] / 1024:.0f} kB) reads the {FEATURES}; its probabilities are calibrated on tracks it did not "
             "train on. The bundle carries it, and `classify`, `evaluate` and `listen` answer with the fusion.", "",
             f"| split | {name} clip accuracy | SVM clip accuracy (calibrated) | fused clip accuracy | fused clip macro F1 |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for split, r in fusion["splits"].items():
        own = metrics["splits"].get(split, {}).get("clip", {}).get("accuracy")
        shown = f"{100 * own:.1f}%" if own is not None else "—"
        lines.append(f"| {split} | {shown} | {100 * r['svm_clip']['accuracy']:.1f}% | {100 * r['clip']['accuracy']:.1f}% "
                     f"| {r['clip']['macro_f1']:.3f} |")  # fmt: skip
    return lines + [""]


def _add_to_report(path: Path, metrics: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if REPORT_HEADING in text:  # fused again: the old section goes
        head, _, tail = text.partition(REPORT_HEADING)
        rest = tail.split("\n## ", 1)
        text = head + ("## " + rest[1] if len(rest) > 1 else "")
    marker = "\n## Configuration"
    section = "\n".join(fusion_lines(metrics)) + "\n"
    if marker in text:
        head, _, tail = text.partition(marker)
        text = head.rstrip("\n") + "\n\n" + section + marker + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    write_atomic(path, text)
