"""Class priors put back after balanced training: does clip accuracy gain, and what does macro-F1 lose?

    .venv/bin/python benchmarks/prior_correction.py RUNS/cnn-folds [RUNS/other-folds ...] [--out priors.json]

A network trained with a class-balanced sampler (today's default) learns as
if every class were equally common, so on a test set as imbalanced as the
training set it under-predicts the common classes. The accuracy-optimal
answer under that shift adds ``tau * log(prior)`` to each clip's log mean
probability, ``prior`` being the training split's share of clips per class
(Menon et al., "Long-tail learning via logit adjustment", 2021, as a
post-hoc correction). ``tau = 0`` is the run's own answer; ``tau = 1`` the
full correction. Two places to add it are scored: to the clip's pooled score
("clip"), or to every window's logits before the softmax ("window"), which
is what folding ``tau * log(prior)`` into the head's bias at export would do,
leaving the device path as it is.

For every fold of each cross-validated run, the fold's best model scores its
*validation* and *test* clips once; ``tau`` is chosen on the validation clips
alone (mean clip accuracy over the folds of that run), and the test clips say
what it gains, paired by fold against ``tau = 0``, in clip accuracy and clip
macro-F1. Nothing is retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402
from pyharmonies.training.evaluate import window_probabilities  # noqa: E402
from pyharmonies.training.metrics import classification_metrics  # noqa: E402

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)


def clip_scores(probs: np.ndarray, y: np.ndarray, clip_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's log mean window probability, (clips, classes), and its label, (clips,)."""
    clips = np.unique(clip_ids)
    scores = np.stack([np.log(np.clip(probs[clip_ids == c].mean(axis=0), 1e-12, None)) for c in clips])
    return scores, np.asarray([y[clip_ids == c][0] for c in clips])


def shifted_windows(probs: np.ndarray, log_prior: np.ndarray, tau: float) -> np.ndarray:
    """Window probabilities (n, classes) after adding ``tau * log_prior`` to their logits."""
    logits = np.log(np.clip(probs, 1e-12, None)) + tau * log_prior
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def training_prior(fold: Path, labels: list[str]) -> np.ndarray:
    """The training split's share of clips per class, in the model's label order, (classes,)."""
    keys = json.loads((fold / "splits.json").read_text())["splits"]["train"]
    counts = np.asarray([sum(1 for k in keys if k.split("/", 1)[0] == label) for label in labels], dtype=np.float64)
    return counts / counts.sum()


def figures(scores: np.ndarray, y: np.ndarray, log_prior: np.ndarray, tau: float, labels: list[str]) -> tuple[float, float]:
    """Clip accuracy and clip macro-F1 after adding ``tau * log_prior``."""
    pred = (scores + tau * log_prior).argmax(axis=1)
    m = classification_metrics(y, pred, labels)
    return float(m["accuracy"]), float(m["macro_f1"])


def study(run: Path) -> dict:
    """The validation and test figures of every tau, per fold, for one cross-validated run."""
    config = json.loads((run / "config.json").read_text())
    folds = sorted(run.glob("fold-*"), key=lambda p: int(p.name.split("-")[1]))
    settings = [(where, tau) for where in ("clip", "window") for tau in TAUS if where == "clip" or tau > 0]
    per = {split: {st: {"accuracy": [], "macro_f1": []} for st in settings} for split in ("val", "test")}
    for fold in folds:
        for split in ("val", "test"):
            s = window_probabilities(fold, config["data"], split=split, progress=False)
            clip_ids = np.asarray([w.clip for w in s.windows])
            log_prior = np.log(training_prior(fold, s.labels))
            for where, tau in settings:
                if where == "clip":
                    scores, y = clip_scores(s.probs, s.y, clip_ids)
                    acc, f1 = figures(scores, y, log_prior, tau, s.labels)
                else:
                    scores, y = clip_scores(shifted_windows(s.probs, log_prior, tau), s.y, clip_ids)
                    acc, f1 = figures(scores, y, log_prior, 0.0, s.labels)
                per[split][(where, tau)]["accuracy"].append(acc)
                per[split][(where, tau)]["macro_f1"].append(f1)
        print(f"{run.name} {fold.name} test clip accuracy: "
              + ", ".join(f"{w} {t:g} {100 * per['test'][(w, t)]['accuracy'][-1]:.1f}" for w, t in settings), flush=True)  # fmt: skip
    own = ("clip", 0.0)
    chosen = max(settings, key=lambda st: (np.mean(per["val"][st]["accuracy"]), st == own, -st[1]))
    rows = []
    for where, tau in settings:
        got = per["test"][(where, tau)]
        rows.append({
            "where": where,
            "tau": tau,
            "val_accuracy": interval(per["val"][(where, tau)]["accuracy"]),
            "test_accuracy": interval(got["accuracy"]),
            "test_accuracy_gain": paired_difference(got["accuracy"], per["test"][own]["accuracy"]),
            "test_macro_f1": interval(got["macro_f1"]),
            "test_macro_f1_gain": paired_difference(got["macro_f1"], per["test"][own]["macro_f1"]),
        })  # fmt: skip
    return {"run": str(run), "chosen_on_validation": {"where": chosen[0], "tau": chosen[1]}, "rows": rows,
            "per_fold": {split: {f"{w} {t:g}": v for (w, t), v in d.items()} for split, d in per.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="--folds run folders (each holding fold-0, fold-1, ...)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: prior-correction.json in the first run)")
    args = parser.parse_args()
    results = [study(run) for run in args.runs]
    print("\n| run | added to | tau | validation clip acc. | test clip acc. | test acc. − tau 0, paired | test macro-F1 − tau 0 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for row in r["rows"]:
            mark = " (chosen)" if (row["where"], row["tau"]) == tuple(r["chosen_on_validation"].values()) else ""
            g, f = row["test_accuracy_gain"], row["test_macro_f1_gain"]
            print(f"| {Path(r['run']).name} | {row['where']} | {row['tau']:g}{mark} | {100 * row['val_accuracy']['mean']:.1f} | "
                  f"{100 * row['test_accuracy']['mean']:.1f} ± {100 * row['test_accuracy']['std']:.1f} | "
                  f"{100 * g['mean']:+.2f} ± {100 * g['std']:.2f} | {f['mean']:+.3f} ± {f['std']:.3f} |")  # fmt: skip
    out = args.out or args.runs[0] / "prior-correction.json"
    out.write_text(json.dumps({"taus": list(TAUS), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
