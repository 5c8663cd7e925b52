"""Does the SVM know what the CNN misses? Late fusion of CNN averages with the SVM's clip probabilities.

    .venv/bin/python benchmarks/svm_fusion.py RUN... [--k 3] [--features frame_vector chroma]
        [--classifier svm|logistic] [--out fusion.json]

Every RUN is a ``--folds`` CNN run on the same folds (the default's members,
trained with different seeds, say; or averaged runs, with ``--k 1``). On each fold, every k-subset of the runs is
averaged as ``ensemble_folds.py`` averages (the softmax of the members' mean
log-probability per window, a clip's windows pooled by their mean
probability). Beside it, an RBF SVM on clip statistics (the baseline's: the
mean and standard deviation of each feature row over the clip's frames), C
chosen on the first run's validation clips as the baseline chooses it, with
its probabilities calibrated (sigmoid) by a 5-fold cross-validation over the
training clips grouped by track. The fused answer is
``argmax((1 - w) log p_cnn + w log p_svm)``, with ``w``:

- fixed at 0.3 (the SVM weighs about as much as one member of a triple);
- chosen per average on the fold's validation clips from 0, 0.1 ... 0.9,
  by clip accuracy (ties to the smaller ``w``), or by the log-loss of the
  fused answer. The CNN members keep their last epoch, so they chose
  nothing on those clips. Members that held out other validation tracks
  (``--member-val own``) trained on one another's: then only the fixed
  weight is scored.

Nothing is retrained; the test clips choose nothing.

``--features`` picks the statistics: ``frame_vector`` (the baseline's 28
rows: 20 MFCC, zcr, rms, spectral shape), ``chroma`` (12 pitch classes,
computed here from the audio by the C extractor), or both side by side.
``--classifier logistic`` puts a linear softmax (balanced classes, C 1) in
the SVM's place.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ensemble_folds import average_logits, fold_test_keys  # noqa: E402

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(10))
FIXED_WEIGHT = 0.3
FEATURES = ("frame_vector", "chroma")


def fold_keys(fold: Path, split: str) -> list[str]:
    """The clip keys of one split of a fold, as its ``splits.json`` saved them."""
    return sorted(json.loads((fold / "splits.json").read_text(encoding="utf-8"))["splits"].get(split, []))


def clip_log_probs(probs: np.ndarray, windows) -> tuple[np.ndarray, np.ndarray]:
    """``(clip indices, (clips, classes) log of the mean window probability)``, clips in order of first window."""
    ids = np.asarray([w.clip for w in windows])
    order = np.asarray(list(dict.fromkeys(ids.tolist())))
    mean = np.stack([probs[ids == c].mean(axis=0) for c in order])
    return order, np.log(np.clip(mean, 1e-12, None))


def clip_statistics_of(prep, names: list[str]) -> np.ndarray:
    """(clips, features) mean and std over frames of each named feature, clip by clip, side by side."""
    from pyharmonies.audio import load
    from pyharmonies.features import extract
    from pyharmonies.training.svm import clip_statistics

    parts = []
    for name in names:
        if name == "frame_vector":
            parts.append(clip_statistics([prep.cache.clip_features(c, "frame_vector") for c in prep.clips]))
        else:
            cfg = prep.feature_config
            rows = [extract(load(c.path, cfg.sample_rate, start_s=c.start_s, end_s=c.end_s), cfg, features=[name])[name]
                    for c in prep.clips]  # fmt: skip
            parts.append(clip_statistics(rows))
    return np.concatenate(parts, axis=1)


def calibrated_svm(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, gamma: float):
    """An RBF SVC (balanced classes) with sigmoid probabilities from 5 folds grouped by ``groups``."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold
    from sklearn.svm import SVC

    svc = SVC(C=c, kernel="rbf", gamma=gamma, class_weight="balanced")
    folds = list(GroupKFold(n_splits=5).split(x, y, groups))
    return CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False).fit(x, y)


def softmax_regression(x: np.ndarray, y: np.ndarray):
    """A multinomial logistic regression (balanced classes, C 1): probabilities of its own, no calibration."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds CNN runs of one recipe, different seeds, same folds")
    parser.add_argument("--k", type=int, default=3, help="members per average (default 3, the default CNN's)")
    parser.add_argument("--features", nargs="+", choices=FEATURES, default=["frame_vector"],
                        help="clip statistics the SVM sees (default: the baseline's frame_vector)")  # fmt: skip
    parser.add_argument("--classifier", choices=("svm", "logistic"), default="svm",
                        help="svm: the baseline's RBF SVM, calibrated (default); "
                             "logistic: a linear softmax on the same statistics")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    args = parser.parse_args()
    if not 1 <= args.k <= len(args.runs):
        parser.error(f"--k must be between 1 and the number of runs ({len(args.runs)})")

    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.loop import prepare_data
    from pyharmonies.training.svm import fit_svm

    cfg = json.loads((args.runs[0] / "config.json").read_text())
    folds = sorted(p.name for p in args.runs[0].glob("fold-*"))
    subsets = list(itertools.combinations([str(r) for r in args.runs], args.k))
    names = ("cnn", args.classifier, "w by val accuracy", "w by val log-loss", f"w={FIXED_WEIGHT}")
    scores: dict[str, list[float]] = {name: [] for name in names}
    chosen: dict[str, list[float]] = {"accuracy": [], "log-loss": []}
    stats = prep = None  # the clip statistics of every clip, computed once
    for fold in folds:
        keys = fold_test_keys(args.runs[0] / fold)
        # Members that held out other validation tracks (--member-val own) trained on one another's:
        # no clips are clean for choosing the weight, so only the fixed weight is scored.
        same_val = len({tuple(fold_keys(run / fold, "val")) for run in args.runs}) == 1
        per_split = {}
        for split in ("val", "test") if same_val else ("test",):
            probs = {}
            for run in args.runs:
                if fold_test_keys(run / fold) != keys:
                    sys.exit(f"{run / fold}: other test clips than {args.runs[0] / fold}: the runs do not share their folds")
                scored = window_probabilities(run / fold, cfg["data"], split=split, progress=False)
                probs[str(run)] = scored.probs
            per_split[split] = (scored, probs)
        test_scored = per_split["test"][0]
        if stats is None:
            fcfg = FeatureConfig(**test_scored.meta["feature_config"])
            prep = prepare_data(cfg["data"], fcfg, "frame_vector", cfg["cache"], progress=False, labels=test_scored.labels)
            stats = clip_statistics_of(prep, args.features)
        index = {c.key: i for i, c in enumerate(prep.clips)}
        label_index = {label: i for i, label in enumerate(test_scored.labels)}
        y = np.asarray([label_index[c.label] for c in prep.clips])
        train = np.asarray([index[k] for k in fold_keys(args.runs[0] / fold, "train")])
        rows = {"val": np.asarray([index[k] for k in fold_keys(args.runs[0] / fold, "val")], dtype=np.int64)}
        for split, (scored, _) in per_split.items():  # clips in the order the CNN's windows pool them
            order, _ = clip_log_probs(scored.probs, scored.windows)
            rows[split] = np.asarray([index[scored.prep.clips[c].key] for c in order])
        mean, std = stats[train].mean(axis=0), stats[train].std(axis=0)
        z = (stats - mean) / np.where(std > 0, std, 1.0)  # as StandardScaler
        if args.classifier == "svm":
            # On the first run's training clips, C chosen on its validation clips, as its baseline was.
            _, c = fit_svm(stats[train], y[train], stats[rows["val"]], y[rows["val"]], list(label_index), seed=0)
            gamma = 1.0 / (z.shape[1] * z[train].var())  # as fit_svm's (scikit-learn's "scale")
            groups = np.asarray([prep.clips[i].group(cfg["group_by"]) for i in train])
            clf = calibrated_svm(z[train], y[train], groups, c, gamma)
            chose = f" (C {c:g})"
        else:
            clf, chose = softmax_regression(z[train], y[train]), ""
        svm_log = {s: np.log(np.clip(clf.predict_proba(z[r]), 1e-12, None)) for s, r in rows.items()}

        def fused(split: str, cnn_log: np.ndarray, w: float) -> np.ndarray:
            return (1 - w) * cnn_log + w * svm_log[split]

        def accuracy(split: str, cnn_log: np.ndarray, w: float) -> float:
            return float((fused(split, cnn_log, w).argmax(axis=1) == y[rows[split]]).mean())

        def log_loss(split: str, cnn_log: np.ndarray, w: float) -> float:
            fused_scores = fused(split, cnn_log, w)
            fused_scores = fused_scores - fused_scores.max(axis=1, keepdims=True)
            log_p = fused_scores - np.log(np.exp(fused_scores).sum(axis=1, keepdims=True))  # the fused answer, renormalised
            return float(-log_p[np.arange(len(log_p)), y[rows[split]]].mean())

        fold_scores: dict[str, list[float]] = {k: [] for k in scores if k != args.classifier}
        for subset in subsets:
            cnn = {s: clip_log_probs(average_logits([p[r] for r in subset]), sc.windows)[1]
                   for s, (sc, p) in per_split.items()}  # fmt: skip
            fold_scores["cnn"].append(accuracy("test", cnn["test"], 0.0))
            fold_scores[f"w={FIXED_WEIGHT}"].append(accuracy("test", cnn["test"], FIXED_WEIGHT))
            if same_val:
                w = max(WEIGHTS, key=lambda v: (accuracy("val", cnn["val"], v), -v))
                chosen["accuracy"].append(w)
                fold_scores["w by val accuracy"].append(accuracy("test", cnn["test"], w))
                w = min(WEIGHTS, key=lambda v: log_loss("val", cnn["val"], v))
                chosen["log-loss"].append(w)
                fold_scores["w by val log-loss"].append(accuracy("test", cnn["test"], w))
        for k, v in fold_scores.items():
            if v:
                scores[k].append(float(np.mean(v)))
        scores[args.classifier].append(float((svm_log["test"].argmax(axis=1) == y[rows["test"]]).mean()))
        print(f"{fold}{chose}: " + ", ".join(f"{k} {100 * v[-1]:.1f}" for k, v in scores.items() if v), flush=True)
    scores = {k: v for k, v in scores.items() if len(v) == len(folds)}  # no chosen weight where validation differed

    print(f"\n| {args.k} of {len(args.runs)} CNN runs, SVM on {' + '.join(args.features)} | folds | mean ± std | "
          "against the CNN average, paired by fold | folds better |\n|---|---|---:|---:|---:|")  # fmt: skip
    rows_out = []
    for k, v in scores.items():
        s, d = interval(v), paired_difference(v, scores["cnn"])
        better = sum(a > b for a, b in zip(v, scores["cnn"]))
        rows_out.append({"name": k, "score": s, "against_cnn": d, "folds_better": better})
        print(f"| {k} | {' / '.join(f'{100 * x:.1f}' for x in v)} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} | "
              f"{100 * d['mean']:+.1f} ± {100 * d['std']:.1f} | {better} of {len(v)} |")
    for by, ws in chosen.items():
        if ws:
            zero = np.mean(np.asarray(ws) == 0)
            print(f"weight chosen by validation {by}: mean {np.mean(ws):.2f}, 0 in {zero:.0%} of the averages")
    if args.out:
        out = {"runs": [str(r) for r in args.runs], "k": args.k, "features": args.features, "classifier": args.classifier,
               "folds": folds, "rows": rows_out, "chosen_weights": chosen}  # fmt: skip
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
