"""The linear probe: logistic regression on a pretrained backbone's clip embeddings.

The fastest classifier for a few labelled clips: the backbone (the shipped
one by default, or ``--backbone PATH``) is not trained; each clip becomes
the mean of its windows' embeddings, standardised, and a multinomial
logistic regression (scikit-learn, ``class_weight="balanced"``) is fitted to
the training clips — or to every training window, labelled by its clip: the
validation split chooses between the two, and C, by clip macro-F1.

It is deployed like the CNN, because it *is* one: the standardisation and
the coefficients fold into the network's ``nn.Linear`` head
(``W' = W / scale``, ``b' = b - W' @ mean``), so the run's ``best.pt`` holds a
plain MobileNetV2 and ``harmonies export RUN --int8`` makes a CNN bundle of
it. A clip is predicted as every model here is evaluated and as the device
classifies a file: the mean over its windows of the softmax of the head's
logits. The run also keeps ``probe.npz`` (coefficients, intercepts, mean,
scale, as arrays: nothing is pickled).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import atomic_open, write_atomic
from pyharmonies.errors import ParameterError

__all__ = ["C_GRID", "LinearProbe", "clip_probs", "fit_probe", "train_probe_run"]

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength, chosen on the validation split by clip macro-F1
PROBE_ARRAYS = "probe.npz"
FIT_ON = {"clips": "standardised clip embeddings (the mean of each clip's windows)",
          "windows": "standardised window embeddings, each labelled by its clip"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    """A fitted standardiser + logistic regression, as arrays; :meth:`logits` on raw embeddings.

    ``weight`` and ``bias`` are already in label order, one row per label
    (a binary regression's one row becomes ``[0, w]``: the same softmax).
    """

    mean: np.ndarray  # (D,) the standardiser's mean
    scale: np.ndarray  # (D,) its standard deviation (1 for a constant feature)
    weight: np.ndarray  # (K, D) on standardised embeddings
    bias: np.ndarray  # (K,)
    C: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n, K) logits of (n, D) raw embeddings."""
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.weight.T + self.bias

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """The head on raw embeddings: ``(W / scale, b - (W / scale) @ mean)``, shapes (K, D) and (K,)."""
        w = self.weight / self.scale
        return w, self.bias - w @ self.mean

    def save(self, path: Path) -> None:
        with atomic_open(path, "wb") as f:
            np.savez(f, mean=self.mean, scale=self.scale, weight=self.weight, bias=self.bias, C=np.float64(self.C))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def clip_probs(probe: LinearProbe, windows: np.ndarray, window_clip: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """(len(clips), K): the mean over each clip's windows of the softmax of the probe's logits (as the device votes)."""
    p = _softmax(probe.logits(windows))
    return np.stack([p[window_clip == c].mean(axis=0) for c in clips])


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, n_labels: int, *, seed: int,
              select: Callable[[LinearProbe], float] | None = None) -> LinearProbe:  # fmt: skip
    """Fit the standardised logistic regression on (n, D) clip embeddings and label indices (n,).

    ``select`` scores a candidate (higher is better) to choose C from
    :data:`C_GRID`; without it C = 1.

    Raises
    ------
    ParameterError
        A label has no training clip (its row of the head could not be learnt).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    missing = sorted(set(range(n_labels)) - set(np.unique(y_train).tolist()))
    if missing:
        raise ParameterError(f"the training split has no clip of label(s) {missing}; every label needs one for the probe")
    scaler = StandardScaler().fit(x_train)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    z = (x_train - scaler.mean_) / scale
    best, best_score = None, -np.inf
    for c in C_GRID if select is not None else (1.0,):
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed).fit(z, y_train)
        w, b = np.asarray(lr.coef_, np.float64), np.asarray(lr.intercept_, np.float64)
        if n_labels == 2:  # one row for class 1: softmax([0, w.x + b]) is its sigmoid
            w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        probe = LinearProbe(scaler.mean_.astype(np.float64), scale.astype(np.float64), w, b, float(c))
        score = select(probe) if select is not None else 0.0
        if score > best_score:
            best, best_score = probe, score
    return best


def train_probe_run(cfg, *, progress: bool = True, split_keys: dict[str, set[str]] | None = None,
                    warn: Callable[[str], None] | None = None) -> Path:  # fmt: skip
    """Fit and evaluate the probe into ``cfg.out``: ``best.pt`` (the folded CNN), ``probe.npz``, metrics, report.

    Parameters
    ----------
    cfg : TrainConfig
        ``model="probe"``; ``backbone`` names the backbone (``"shipped"`` or a
        path); its feature config and window are the run's (``cfg.features``,
        if given, must match). ``window_hop`` sets the windows whose mean is a clip.
    progress : bool
    split_keys : dict, optional
        Clip keys per split (cross-validation passes each fold's).
    warn : callable, optional
        Receives the dataset's warnings.

    Returns
    -------
    Path
        The run directory, whose ``metrics.json`` has the splits (window and
        clip metrics), ``baseline`` (the SVM on the same split) and the probe's C.
    """
    import torch

    from pyharmonies.data.splits import run_splits, save_splits
    from pyharmonies.data.windows import Window, window_frames
    from pyharmonies.features import FeatureConfig
    from pyharmonies.models.registry import config_to_dict, model_config
    from pyharmonies.training import checkpoint
    from pyharmonies.training.backbone import load_backbone, resolve_backbone, shipped_backbone_path
    from pyharmonies.training.embedding import embed_features
    from pyharmonies.training.loop import build_meta, evaluate_windows, prepare_data, resolve_device
    from pyharmonies.training.metrics import classification_metrics
    from pyharmonies.training.svm import baseline_on_splits

    run_dir = Path(cfg.out)
    if (run_dir / checkpoint.LAST).exists() or (run_dir / "model.npz").exists():
        raise ParameterError(f"{run_dir} already holds another run (last.pt or model.npz); choose another --out")
    path = resolve_backbone(cfg.backbone)
    if path is None:
        raise ParameterError("the probe is a linear head on a pretrained backbone: give --backbone (not --from-scratch)")
    if cfg.backbone == "shipped" and not path.is_file():
        raise ParameterError(f"this installation has no shipped backbone ({shipped_backbone_path()}); pass --backbone PATH "
                             "(a `harmonies pretrain` folder or its backbone.npz)")  # fmt: skip
    bb = load_backbone(path)
    fcfg = bb.feature_config
    if cfg.features and FeatureConfig(**cfg.features) != fcfg:
        raise ParameterError(f"--feature-config differs from the backbone's ({bb.path}); the probe uses the backbone's features: "
                             "leave --feature-config out")  # fmt: skip
    # The run records the backbone's features and window, so export reads it as the CNN it is.
    cfg = dataclasses.replace(cfg, features=fcfg.to_dict(), window=float(bb.meta.get("window_seconds", cfg.window)))
    window = bb.window_frames
    hop = max(1, window_frames(cfg.hop_seconds, fcfg))

    run_dir.mkdir(parents=True, exist_ok=True)
    prep = prepare_data(cfg.data, fcfg, "log_mel", cfg.cache, progress=progress, warn=warn)
    prep.splits = run_splits(prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed, val=cfg.val, test=cfg.test,
                             train_fraction=cfg.train_fraction, keys=split_keys, val_seed=cfg.val_seed)  # fmt: skip

    net = bb.model(len(prep.labels)).to(resolve_device(cfg.device))
    feats = [prep.cache.clip_features(c, "log_mel") for c in prep.clips]
    emb = embed_features(net, feats, window, bb.normalizer, fcfg, hop=hop)  # clips (n, D), windows (m, D)
    net = net.cpu()
    y = np.asarray([prep.label_index[c.label] for c in prep.clips])
    part = {s: np.asarray(m, dtype=np.int64) for s, m in prep.splits.items()}

    def clip_metrics(probe: LinearProbe, idx: np.ndarray) -> dict[str, Any]:
        p = clip_probs(probe, emb.windows, emb.window_clip, idx)
        return classification_metrics(y[idx], p.argmax(axis=1), prep.labels)

    val = part.get("val", np.zeros(0, np.int64))
    select = (lambda p: clip_metrics(p, val)["macro_f1"]) if len(val) else None
    # Two ways to fit, chosen with C on the validation clips: on clip means (one point per clip),
    # or on every window labelled by its clip (what the vote then averages: no train/test mismatch).
    train_windows = np.isin(emb.window_clip, part["train"])
    candidates = {"clips": (emb.clips[part["train"]], y[part["train"]]),
                  "windows": (emb.windows[train_windows], y[emb.window_clip[train_windows]])}  # fmt: skip
    fitted: dict[str, tuple[LinearProbe, float]] = {}
    for fit_on, (x_fit, y_fit) in candidates.items() if select is not None else list(candidates.items())[:1]:
        try:
            candidate = fit_probe(x_fit, y_fit, len(prep.labels), seed=cfg.seed, select=select)
        except ParameterError as err:
            raise ParameterError(f"{cfg.data}: {err}") from None
        fitted[fit_on] = (candidate, select(candidate) if select is not None else 0.0)
    fit_on = max(fitted, key=lambda k: fitted[k][1])  # ties keep "clips", the first
    probe = fitted[fit_on][0]

    results = {}
    for split, idx in part.items():
        if not len(idx):
            continue
        in_split = np.isin(emb.window_clip, idx)
        probs = _softmax(probe.logits(emb.windows[in_split]))
        wins = [Window(int(c), int(s)) for c, s in zip(emb.window_clip[in_split], emb.window_start[in_split])]
        results[split] = evaluate_windows(probs, y[emb.window_clip[in_split]], wins, prep.labels)

    w, b = probe.folded()
    with torch.no_grad():
        net.head.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        net.head.bias.copy_(torch.from_numpy(b.astype(np.float32)))
    options = config_to_dict(model_config("cnn", dict(bb.meta["model_config"])))
    meta = build_meta(cfg, prep, bb.normalizer, "cnn", options, window)
    backbone_info = {"path": str(bb.path), "sha256": bb.sha256, "shipped": cfg.backbone == "shipped",
                     "pretraining": bb.meta.get("pretraining", {})}  # fmt: skip
    meta["backbone"] = backbone_info
    meta["probe"] = {"C": probe.C, "fit_on": FIT_ON[fit_on],
                     "validation_macro_f1": {k: v[1] for k, v in fitted.items()} if select is not None else None}
    cfg.save(run_dir / "config.json")
    save_splits(run_dir / "splits.json", prep.splits, prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed)
    probe.save(run_dir / PROBE_ARRAYS)
    checkpoint.save_atomic({"model": net.state_dict(), "meta": meta, "epoch": 0}, run_dir / checkpoint.BEST)

    from pyharmonies.models.complexity import count_macs, count_parameters
    from pyharmonies.training.loop import start_description

    metrics = {
        "splits": results,
        "model": {"name": "probe", "C": probe.C, "embedding_dim": int(emb.clips.shape[1]), "exported_as": "cnn",
                  "config": options, "parameters": count_parameters(net), "trained_parameters": int(w.size + b.size),
                  "macs_per_window": count_macs(net, (1, 1, *meta["input_shape"])), "start": start_description(cfg, backbone_info),
                  "fit_on": fit_on, "validation_macro_f1": meta["probe"]["validation_macro_f1"],
                  "predicts": "a clip: the mean over its windows of softmax(head(embedding)), as the device votes"},  # fmt: skip
        "windows": {s: int(np.isin(emb.window_clip, idx).sum()) for s, idx in part.items()},
        "clips": {s: len(m) for s, m in prep.splits.items()},
        "labels": prep.labels,
        "feature_config": fcfg.to_dict(),
        "problems": [{"path": str(p.path), "reason": p.reason} for p in prep.problems],
        "warnings": list(prep.index.warnings),
        "baseline": baseline_on_splits(prep, cfg.seed),
    }
    write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_report(run_dir, cfg, metrics)
    return run_dir


def _scores(validation: dict[str, float] | None) -> str:
    if not validation:
        return "no validation split: C = 1, fitted on clips"
    return ", ".join(f"{fit_on} {score:.3f}" for fit_on, score in validation.items())


def _write_report(run_dir: Path, cfg, metrics: dict[str, Any]) -> None:
    from pyharmonies.training.report import confusion_text, metrics_table, plot_confusion

    results, labels, model = metrics["splits"], metrics["labels"], metrics["model"]
    shown = "test" if "test" in results else "train"
    lines = [f"# Run `{run_dir.name}`: linear probe on `{cfg.data}`", "",
             f"Logistic regression (C = {model['C']:g}, balanced class weights) on the standardised "
             f"{model['embedding_dim']}-d {model['fit_on'][:-1]} embeddings of {model['start']}; C and clips-or-windows "
             f"chosen on validation clip macro-F1 ({_scores(model['validation_macro_f1'])}). The backbone is not trained; "
             f"the head ({model['trained_parameters']:,} numbers) is folded into the CNN's, so `harmonies export {run_dir}` "
             "makes a CNN bundle.", "",
             "| split | clips | window accuracy | clip accuracy | clip macro F1 | SVM clip accuracy |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    base = metrics["baseline"].get("splits", {})
    for s, r in results.items():
        svm = f"{100 * base[s]['clip']['accuracy']:.1f}%" if s in base else "—"
        lines.append(f"| {s} | {r['clip']['n']} | {100 * r['window']['accuracy']:.1f}% | {100 * r['clip']['accuracy']:.1f}% | "
                     f"{r['clip']['macro_f1']:.3f} | {svm} |")  # fmt: skip
    lines += ["", f"## {shown.capitalize()} clips", ""] + metrics_table(results[shown]["clip"])
    lines += ["", "![confusion](confusion.png)", ""] + confusion_text(results[shown]["clip"]["confusion"], labels)
    if metrics["problems"]:
        lines += ["", "## Files skipped", ""] + [f"- `{p['path']}`: {p['reason']}" for p in metrics["problems"]]
    if metrics["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in metrics["warnings"]]
    write_atomic(run_dir / "report.md", "\n".join(lines) + "\n")
    plot_confusion(results[shown]["clip"]["confusion"], labels, run_dir / "confusion.png", f"probe, {shown} clips")
