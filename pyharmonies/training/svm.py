"""The classical baseline: an RBF support-vector machine on clip statistics.

Each clip becomes the mean and standard deviation over its frames of the
28-value frame vector (56 numbers); the SVM classifies clips. It shows how
far a dataset goes without deep learning, so a model's figures have a
floor to be compared with.

scikit-learn fits it (a standardiser, then ``SVC``); the fitted model is
kept as arrays only, :class:`SvmModel`, and predicts with numpy exactly as
``SVC.predict`` does (libsvm's one-vs-one vote). A run stores it as
``model.npz`` (read with ``allow_pickle=False``) and ``model.json``: nothing
in a run folder is unpickled, since unpickling a crafted file runs code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import atomic_open, write_atomic
from pyharmonies.errors import ParameterError
from pyharmonies.runtime.svm import SVM_ARRAYS, CalibratedSvm, RbfSvm, clip_statistics, read_arrays
from pyharmonies.training.errors import CheckpointError
from pyharmonies.training.metrics import classification_metrics

C_GRID = (1.0, 10.0, 100.0)  # chosen on the validation split by macro-F1

MODEL_ARRAYS = "model.npz"  # the standardiser and the support vectors, as arrays
MODEL_JSON = "model.json"  # format, kernel, gamma, C, labels, feature config
LEGACY_PICKLE = "model.joblib"  # what older versions wrote; never loaded
SVM_FORMAT = 1


class SvmModel(RbfSvm):
    """:class:`~pyharmonies.runtime.svm.RbfSvm` made from scikit-learn, and stored in a run folder."""

    @classmethod
    def from_sklearn(cls, scaler: Any, svc: Any) -> SvmModel:
        """The arrays of a fitted ``StandardScaler`` and RBF ``SVC`` (trained on the scaler's output)."""
        if svc.kernel != "rbf":
            raise ParameterError(f"only an RBF SVC is stored as arrays, got kernel={svc.kernel!r}")
        if getattr(svc, "break_ties", False):
            raise ParameterError("an SVC with break_ties=True predicts from decision values, not votes")
        gamma = float(svc.gamma) if not isinstance(svc.gamma, str) else float(svc._gamma)  # "scale"/"auto": as resolved by fit
        dual, intercept = np.asarray(svc.dual_coef_, np.float64), np.asarray(svc.intercept_, np.float64)
        if len(svc.classes_) == 2:
            # scikit-learn flips the sign of the public attributes of a binary SVC; libsvm's are what vote.
            dual, intercept = -dual, -intercept
        scale = np.ones_like(scaler.mean_) if scaler.scale_ is None else scaler.scale_
        return cls(
            mean=np.asarray(scaler.mean_, np.float64), scale=np.asarray(scale, np.float64),
            support_vectors=np.asarray(svc.support_vectors_, np.float64), n_support=np.asarray(svc.n_support_, np.int64),
            dual_coef=dual, intercept=intercept, classes=np.asarray(svc.classes_, np.int64), gamma=gamma, C=float(svc.C),
        )  # fmt: skip

    # -- files ----------------------------------------------------------

    def save(self, run_dir: Path, *, labels: Sequence[str], feature_config: dict[str, Any]) -> None:
        """``model.npz`` (the arrays) and ``model.json`` (everything else), atomically."""
        run_dir = Path(run_dir)
        with atomic_open(run_dir / MODEL_ARRAYS, "wb") as f:
            np.savez(f, **{name: getattr(self, name) for name in SVM_ARRAYS})
        info = {
            "format": SVM_FORMAT,
            "kind": "standardised RBF SVC, one-vs-one vote (libsvm's)",
            "gamma": self.gamma,
            "C": self.C,
            "labels": list(labels),
            "feature_config": feature_config,
            "features": "mean and std of the 28-value frame vector over each clip",
        }
        write_atomic(run_dir / MODEL_JSON, json.dumps(info, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> tuple[SvmModel, dict[str, Any]]:
        """The model and its ``model.json``; never unpickles anything.

        Raises
        ------
        CheckpointError
            The files are missing (an older run with only ``model.joblib``
            is told to retrain), unreadable, or not consistent. One line,
            naming the file.
        """
        run_dir = Path(run_dir)
        arrays, info_path = run_dir / MODEL_ARRAYS, run_dir / MODEL_JSON
        if not arrays.exists() and (run_dir / LEGACY_PICKLE).exists():
            raise CheckpointError(
                f"{run_dir / LEGACY_PICKLE}: an SVM run from an older harmonies, stored as a pickle, which is never "
                f"loaded (unpickling a file can run code); retrain it: harmonies train DATA --model svm --out {run_dir}"
            )
        for path in (arrays, info_path):
            if not path.exists():
                raise CheckpointError(f"{path}: no such file (was the SVM run trained to the end?)")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{info_path}: cannot read ({' '.join(str(err).split())})") from None
        if not isinstance(info, dict) or info.get("format") != SVM_FORMAT:
            raise CheckpointError(f"{info_path}: not an SVM model of format {SVM_FORMAT} (retrain with this version)")
        try:
            model = cls(**read_arrays(arrays, SVM_ARRAYS, "SVM model"), gamma=float(info["gamma"]), C=float(info["C"]))
        except (ValueError, KeyError, TypeError) as err:  # ParameterError included: read_arrays' one line
            text = str(err) if str(err).startswith(str(arrays)) else f"{arrays}: not a usable SVM model ({' '.join(str(err).split())})"
            raise CheckpointError(f"{text}; retrain") from None
        labels = info.get("labels")
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels) or not (
            model.classes.min() >= 0 and model.classes.max() < len(labels)
        ):
            raise CheckpointError(f"{info_path}: its labels do not match {arrays}")
        return model, info


def fit_svm(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None, labels: Sequence[str], seed: int,
            grid: Sequence[float] | None = None) -> tuple[SvmModel, float]:  # fmt: skip
    """A standardised RBF SVC; C picked on the validation data when there is any.

    gamma is scikit-learn's ``"scale"``, ``1 / (features * var)`` of the
    standardised training data, computed here so that it is stored as a number.
    ``grid``: the C values to try (default :data:`C_GRID` with validation
    data, its middle value without); without validation data the first is kept.
    """
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    scaler = StandardScaler().fit(x_train)
    z_train = scaler.transform(x_train)
    var = z_train.var()
    gamma = 1.0 / (z_train.shape[1] * var) if var != 0 else 1.0  # as SVC(gamma="scale")
    has_val = x_val is not None and len(x_val) > 0
    best, best_score, best_c = None, -1.0, C_GRID[0]
    for c in grid or (C_GRID if has_val else C_GRID[1:2]):
        svc = SVC(C=c, kernel="rbf", gamma=gamma, class_weight="balanced", random_state=seed).fit(z_train, y_train)
        model = SvmModel.from_sklearn(scaler, svc)
        score = classification_metrics(y_val, model.predict(x_val), labels)["macro_f1"] if has_val else 0.0
        if score > best_score:
            best, best_score, best_c = model, score, c
    return best, best_c


def fit_calibrated_svm(x_train: np.ndarray, y_train: np.ndarray, groups: Sequence[str], x_val: np.ndarray | None,
                       y_val: np.ndarray | None, labels: Sequence[str], seed: int, *, folds: int = 5) -> CalibratedSvm:  # fmt: skip
    """The baseline's SVM (C chosen on validation by :func:`fit_svm`) with calibrated probabilities.

    One SVM is fitted on all the training clips; the sigmoid of each class
    is fitted on decision values of clips whose tracks the SVM did not
    train on, from a ``folds``-fold cross-validation grouped by ``groups``
    (the clips' tracks): scikit-learn's ``CalibratedClassifierCV(method="sigmoid",
    ensemble=False)``, kept as arrays.

    Parameters
    ----------
    x_train : (clips, features) raw clip statistics; y_train : (clips,) label indices
    groups : (clips,) each training clip's group (track)
    x_val, y_val : the validation clips, for C (as the baseline), or None
    labels : every label of the model it will be fused with

    Raises
    ------
    ParameterError
        Fewer than two classes or two groups, or a grouped fold that holds a
        single class (too few tracks per class to calibrate).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold
    from sklearn.svm import SVC

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if len(np.unique(y_train)) < 2 or n_groups < 2:
        raise ParameterError(f"calibrating the SVM needs two classes and two tracks in the training split "
                             f"(it holds {len(np.unique(y_train))} and {n_groups})")  # fmt: skip
    model, c = fit_svm(x_train, y_train, x_val, y_val, labels, seed)
    z = (np.asarray(x_train, np.float64) - model.mean) / model.scale
    split = list(GroupKFold(n_splits=min(folds, n_groups)).split(z, y_train, groups))
    svc = SVC(C=c, kernel="rbf", gamma=model.gamma, class_weight="balanced", random_state=seed)
    try:
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=split, ensemble=False).fit(z, y_train)
    except ValueError as err:
        raise ParameterError(f"cannot calibrate the SVM on these tracks ({' '.join(str(err).split())[:200]})") from None
    inner = calibrated.calibrated_classifiers_[0]
    scaler = _Standardiser(model.mean, model.scale)
    svm = SvmModel.from_sklearn(scaler, inner.estimator)
    slope = np.asarray([cal.a_ for cal in inner.calibrators], np.float64)
    offset = np.asarray([cal.b_ for cal in inner.calibrators], np.float64)
    return CalibratedSvm(svm, slope=slope, offset=offset, n_labels=len(labels))


@dataclass(frozen=True)
class _Standardiser:
    """A fitted ``StandardScaler``'s two attributes, as :meth:`SvmModel.from_sklearn` reads them."""

    mean_: np.ndarray
    scale_: np.ndarray


def fit_on_splits(prep, seed: int) -> tuple[SvmModel, float, dict[str, dict[str, Any]]]:
    """Fit the baseline on ``prep``'s train split (C chosen on val) and evaluate it on every split.

    Parameters
    ----------
    prep : PreparedData
        Readable clips, their cached features and ``splits`` (clip indices
        per split), as ``training.loop.prepare_data`` makes them (any input
        kind: the frame vectors come from the same cache).
    seed : int

    Returns
    -------
    model, C, results
        ``results``: split -> ``{"clip": classification_metrics}``.

    Raises
    ------
    ParameterError
        The training split holds fewer than two classes.
    """
    li = prep.label_index
    feats = clip_statistics([prep.cache.clip_features(c, "frame_vector") for c in prep.clips])
    y = np.asarray([li[c.label] for c in prep.clips])
    part = {s: np.asarray(m, dtype=np.int64) for s, m in prep.splits.items()}
    val = part.get("val", np.zeros(0, np.int64))
    if len(np.unique(y[part["train"]])) < 2:
        raise ParameterError("the training split holds one class only; an SVM needs at least two")
    model, c = fit_svm(feats[part["train"]], y[part["train"]], feats[val], y[val], prep.labels, seed)
    results = {s: {"clip": classification_metrics(y[idx], model.predict(feats[idx]), prep.labels)} for s, idx in part.items() if len(idx)}
    return model, c, results


def baseline_on_splits(prep, seed: int) -> dict[str, Any]:
    """The SVM baseline trained and tested on the same split as a neural run, for its report.

    Returns
    -------
    dict
        ``model`` ("svm"), ``C``, ``splits`` (split -> ``{"clip": metrics}``);
        or ``model`` and ``skipped`` (the reason) when it cannot be fitted.
    """
    try:
        _, c, results = fit_on_splits(prep, seed)
    except ParameterError as err:
        return {"model": "svm", "skipped": str(err)}
    return {"model": "svm", "C": c, "splits": results}


def train_svm_run(cfg, *, progress: bool = True, split_keys: dict[str, set[str]] | None = None,
                  warn: Callable[[str], None] | None = None) -> Path:  # fmt: skip
    """Train and evaluate the baseline into ``cfg.out`` (model.npz, model.json, metrics.json, report).

    ``split_keys`` (clip keys per split, as cross-validation passes each
    fold's) replaces the seeded split. ``warn`` receives each warning about
    the data (a class with few clips, an empty folder) as it is found; they
    are also in ``metrics.json`` and ``report.md``.
    """
    from pyharmonies.data.splits import run_splits, save_splits
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.checkpoint import BEST, LAST
    from pyharmonies.training.loop import prepare_data
    from pyharmonies.training.report import confusion_text, metrics_table, plot_confusion

    run_dir = Path(cfg.out)
    if (run_dir / LAST).exists() or (run_dir / BEST).exists():
        raise ParameterError(f"{run_dir} already holds a neural run ({BEST}, {LAST}); choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    prep = prepare_data(cfg.data, FeatureConfig(**cfg.features), "frame_vector", cfg.cache, progress=progress, warn=warn)
    prep.splits = run_splits(prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed, val=cfg.val, test=cfg.test,
                             train_fraction=cfg.train_fraction, keys=split_keys, val_seed=cfg.val_seed)  # fmt: skip
    try:
        model, c, results = fit_on_splits(prep, cfg.seed)
    except ParameterError as err:
        raise ParameterError(f"{cfg.data}: {err}") from None
    cfg.save(run_dir / "config.json")
    save_splits(run_dir / "splits.json", prep.splits, prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed)
    (run_dir / LEGACY_PICKLE).unlink(missing_ok=True)  # an older run's pickle must not sit beside the new model
    model.save(run_dir, labels=prep.labels, feature_config=prep.feature_config.to_dict())
    metrics = {
        "splits": results,
        "model": {"name": "svm", "C": c, "gamma": model.gamma, "support_vectors": int(len(model.support_vectors)),
                  "features": "mean and std of the 28-value frame vector over each clip"},  # fmt: skip
        "clips": {s: len(m) for s, m in prep.splits.items()},
        "labels": prep.labels,
        "feature_config": prep.feature_config.to_dict(),
        "problems": [{"path": str(p.path), "reason": p.reason} for p in prep.problems],
        "warnings": list(prep.index.warnings),
    }
    write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    shown = "test" if "test" in results else "train"
    lines = [f"# Run `{run_dir.name}`: SVM baseline on `{cfg.data}`", "",
             f"RBF SVC (C = {c:g}, chosen on validation macro-F1) on clip means and standard deviations of the frame vector.", "",
             "| split | clips | accuracy | macro F1 |", "|---|---:|---:|---:|"]  # fmt: skip
    for s, r in results.items():
        lines.append(f"| {s} | {r['clip']['n']} | {100 * r['clip']['accuracy']:.1f}% | {r['clip']['macro_f1']:.3f} |")
    lines += ["", f"## {shown.capitalize()} split", ""] + metrics_table(results[shown]["clip"])
    lines += ["", "![confusion](confusion.png)", ""] + confusion_text(results[shown]["clip"]["confusion"], prep.labels)
    if metrics["problems"]:
        lines += ["", "## Files skipped", ""] + [f"- `{p['path']}`: {p['reason']}" for p in metrics["problems"]]
    if metrics["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in metrics["warnings"]]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
    plot_confusion(results[shown]["clip"]["confusion"], prep.labels, run_dir / "confusion.png", f"svm, {shown} clips")
    return run_dir
