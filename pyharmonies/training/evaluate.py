"""Evaluate a trained run on a dataset with the same labels."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import write_atomic
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig


def _clips_of_split(run_dir: Path, prep, split: str) -> list[int]:
    if split == "all":
        return list(range(len(prep.clips)))
    path = run_dir / "splits.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        keys = set(saved["splits"].get(split, []))
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such file; use --split all") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ParameterError(f"{path}: not a readable split file ({type(err).__name__}); use --split all") from None
    members = [i for i, c in enumerate(prep.clips) if c.key in keys]
    if not members:
        raise ParameterError(
            f"none of this dataset's clips are in the run's {split!r} split (another dataset?); use --split all"
        )
    return members


def evaluate_run(run: str | Path, data: str | Path, *, split: str = "test", progress: bool = True, out: Path | None = None) -> dict[str, Any]:
    """Metrics of a run's best model on ``data``.

    Parameters
    ----------
    run : path
        A run directory written by ``harmonies train``.
    data : path
        A dataset (folder or CSV manifest) whose labels the model knows.
    split : {"test", "all"}
        ``test``: the clips of the run's saved test split (the dataset it was
        trained on); ``all``: every readable clip.
    out : path, optional
        Where to write metrics.json, report.md and confusion.png; by default
        ``RUN/eval/<dataset>-<split>``.

    Returns
    -------
    dict
        ``{"window": metrics, "clip": metrics}`` for neural models, ``{"clip": ...}`` for the SVM.
    """
    run_dir = Path(run)
    if split not in ("test", "all"):
        raise ParameterError(f"split must be 'test' or 'all', got {split!r}")
    cfg = TrainConfig.load(run_dir / "config.json")
    if cfg.model == "svm":
        results, labels = _evaluate_svm(run_dir, cfg, data, split, progress)
    else:
        from pyharmonies.training.loop import evaluate_windows

        scored = window_probabilities(run_dir, data, split=split, progress=progress)
        labels = scored.labels
        results = evaluate_windows(scored.probs, scored.y, scored.windows, labels)
        results.update(_left_out(scored.prep))
        results.update(_fused(run_dir, cfg, data, scored, progress))
    out = out or run_dir / "eval" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(data).name)}-{split}"
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "metrics.json", json.dumps({"run": str(run_dir), "data": str(data), "split": split, **results}, indent=2) + "\n")
    _write_eval_report(out, run_dir, data, split, results, labels)
    return results


def _fused(run_dir: Path, cfg: TrainConfig, data, scored: WindowScores, progress: bool) -> dict[str, Any]:
    """``{"fused": ...}`` for a run trained with ``--fuse-svm`` (its answer is the fusion), else nothing."""
    from pyharmonies.training.fusion import FUSION_ARRAYS, FUSION_JSON, frame_statistics, score_fusion

    if not (run_dir / FUSION_ARRAYS).exists():
        return {}
    from pyharmonies.runtime.svm import read_calibrated

    try:
        weight = float(json.loads((run_dir / FUSION_JSON).read_text(encoding="utf-8"))["weight"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ParameterError(f"{run_dir / FUSION_JSON}: not a readable SVM fusion ({type(err).__name__})") from None
    prep, stats = frame_statistics(data, scored.meta["feature_config"], cfg.cache, scored.labels, progress=progress)
    by_key = {c.key: stats[i] for i, c in enumerate(prep.clips)}
    return {"fused": {"weight": weight, **score_fusion(scored, read_calibrated(run_dir / FUSION_ARRAYS), weight, by_key)}}


@dataclass
class WindowScores:
    """Every window of a run's model on a dataset's clips, and what cut them."""

    labels: list[str]  # the model's output order
    prep: Any  # training.loop.PreparedData: the clips, their features and what was left out
    windows: list  # data.windows.Window per row of probs: clip index into prep.clips, first frame; clip by clip, in order
    probs: np.ndarray  # (n_windows, n_labels) softmax probabilities
    y: np.ndarray  # (n_windows,) the label index of each window's clip
    window_frames: int
    hop_frames: int  # the hop the windows were cut with: the run's (its bundle's, listen's) unless hop_seconds was given
    meta: dict[str, Any]  # the checkpoint's meta (model name, input kind, feature config...)


def window_probabilities(run: str | Path, data: str | Path, *, split: str = "test", progress: bool = True,
                         hop_seconds: float | None = None, window_seconds: float | None = None) -> WindowScores:
    """The probabilities of every window of a neural run's best model on ``data``.

    Windows are cut as training cut them (the run's window and hop, every
    clip from its first frame; see :func:`~pyharmonies.data.windows.make_windows`)
    unless ``window_seconds`` or ``hop_seconds`` say otherwise, and
    classified once, in clip order.

    Parameters
    ----------
    run : path
        A run directory of a neural model (not the SVM: it has no windows).
    data : path
        A dataset whose labels the model knows.
    split : str
        As :func:`evaluate_run`, or any other split the run saved (``val``, ``train``).
    progress : bool
        Progress bars while features are computed.
    hop_seconds : float, optional
        Seconds between windows; by default the run's (training) hop.
    window_seconds : float, optional
        Seconds per window; by default the run's (training) window. The CNN
        is convolutional up to its global pooling, so it takes any length;
        a model with a fixed input length raises on another.

    Returns
    -------
    WindowScores
    """
    import torch
    from torch.utils.data import DataLoader

    from pyharmonies.data.windows import make_windows, window_frames
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.dataset import FeatureSource, Normalizer, WindowDataset
    from pyharmonies.training.loop import model_from_meta, predict, prepare_data

    run_dir = Path(run)
    cfg = TrainConfig.load(run_dir / "config.json")
    if cfg.model == "svm":
        raise ParameterError(f"{run_dir} is an SVM run: it classifies whole clips, it has no windows")
    ck = checkpoint.load(run_dir / checkpoint.BEST)
    meta = ck["meta"]
    labels = list(meta["labels"])
    fcfg = FeatureConfig(**meta["feature_config"])
    prep = prepare_data(data, fcfg, meta["input_kind"], cfg.cache, progress=progress, labels=labels)
    members = _clips_of_split(run_dir, prep, split)
    window = int(meta["window_frames"]) if window_seconds is None else window_frames(window_seconds, fcfg)
    hop = max(1, window_frames(cfg.hop_seconds if hop_seconds is None else hop_seconds, fcfg))
    counts = [prep.frame_counts[i] for i in members]
    windows = [type(w)(members[w.clip], w.start) for w in make_windows(counts, window, hop)]
    source = FeatureSource(prep.cache, fcfg, meta["input_kind"])
    ds = WindowDataset(prep.clips, prep.label_index, windows, source, Normalizer.from_dict(meta["normalizer"]), window)
    model = model_from_meta(meta)
    checkpoint.load_weights(model, ck["model"], run_dir / checkpoint.BEST)
    probs, y = predict(model, DataLoader(ds, batch_size=64, shuffle=False), torch.device("cpu"))
    return WindowScores(labels, prep, windows, probs, y, window, hop, meta)


def _evaluate_svm(run_dir: Path, cfg: TrainConfig, data, split: str, progress: bool) -> tuple[dict[str, Any], list[str]]:
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.loop import prepare_data
    from pyharmonies.training.metrics import classification_metrics
    from pyharmonies.training.svm import SvmModel, clip_statistics

    model, info = SvmModel.load(run_dir)  # arrays and JSON: nothing in the run folder is unpickled
    labels = list(info["labels"])
    prep = prepare_data(data, FeatureConfig(**info["feature_config"]), "frame_vector", cfg.cache, progress=progress, labels=labels)
    members = _clips_of_split(run_dir, prep, split)
    feats = clip_statistics([prep.cache.clip_features(prep.clips[i], "frame_vector") for i in members])
    y = np.asarray([prep.label_index[prep.clips[i].label] for i in members])
    return {"clip": classification_metrics(y, model.predict(feats), labels), **_left_out(prep)}, labels


def _left_out(prep) -> dict[str, Any]:
    """``problems`` (files and clips left out, why) and ``files`` (``total``, ``failed``: could not be read)."""
    files = {c.path for c in prep.index.clips} | {p.path for p in prep.index.problems}
    return {
        "problems": [{"path": str(p.path), "reason": p.reason, "kind": p.kind} for p in prep.problems],
        "files": {"total": len(files), "failed": len({p.path for p in prep.problems if p.kind == "file"})},
    }


def _write_eval_report(out: Path, run_dir: Path, data, split: str, results: dict[str, Any], labels) -> None:
    from pyharmonies.training.report import confusion_text, metrics_table, plot_confusion

    level = "window" if "window" in results else "clip"
    lines = [f"# Evaluation of `{run_dir}` on `{data}` ({split})", ""]
    for lv in ("window", "clip"):
        if lv in results:
            lines += [f"## Per {lv}", ""] + metrics_table(results[lv]) + [""]
    lines += ["![confusion](confusion.png)", ""] + confusion_text(results[level]["confusion"], labels)
    if "fused" in results:
        fused = results["fused"]
        lines += ["", f"## Per clip, fused with the SVM (weight {fused['weight']:g}): the run's answer", "",
                  f"The calibrated SVM alone: clip accuracy {100 * fused['svm_clip']['accuracy']:.1f}%.", ""]  # fmt: skip
        lines += metrics_table(fused["clip"]) + [""] + confusion_text(fused["clip"]["confusion"], labels)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot_confusion(results[level]["confusion"], labels, out / "confusion.png", f"{split} {level}s")
