"""Cross-validation summaries (:mod:`pyharmonies.training.crossval`), against hand computation,
and `harmonies train --folds` end to end with the SVM (seconds on a tiny corpus).

The fold figures are built from confusion matrices with ``metrics_from_confusion``, so every
expected value below is arithmetic on counts: no model is trained except in the last test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import t

from pyharmonies.training.crossval import interval, paired_difference, summarize_folds, summarize_level
from pyharmonies.training.metrics import metrics_from_confusion

LABELS = ["blues", "jazz", "rock"]

# Sums and square roots of a few numbers: any difference beyond rounding is a bug.
RTOL = 1e-12


def confusions(rng: np.random.Generator, folds: int, per_class: int = 5) -> list[np.ndarray]:
    """One 3 x 3 confusion per fold, ``per_class`` test clips of each class, predictions at random."""
    out = []
    for _ in range(folds):
        rows = [rng.multinomial(per_class, [0.7 if j == i else 0.15 for j in range(3)]) for i in range(3)]
        out.append(np.asarray(rows, dtype=np.int64))
    return out


def fold_run(clip: np.ndarray, window: np.ndarray | None = None, baseline: np.ndarray | None = None) -> dict:
    """A fold's metrics.json as train_run writes it (the fields summarize_folds reads)."""
    test = {"clip": metrics_from_confusion(clip, LABELS)}
    if window is not None:
        test["window"] = metrics_from_confusion(window, LABELS)
    run = {"splits": {"test": test}, "labels": LABELS}
    if baseline is not None:
        run["baseline"] = {"model": "svm", "C": 1.0, "splits": {"test": {"clip": metrics_from_confusion(baseline, LABELS)}}}
    return run


def assert_same_interval(got: dict, expected: dict) -> None:
    assert got["n"] == expected["n"]
    for key in ("mean", "std", "ci95", "values"):
        assert got[key] == pytest.approx(expected[key], rel=RTOL, abs=1e-15), key  # abs: a std of 0


# ------------------------------------------------------------------ interval


def test_interval_matches_hand_computation():
    values = [0.8, 0.9, 0.75, 0.85, 0.7]
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))  # sample std: ddof 1
    half = t.ppf(0.975, n - 1) * std / math.sqrt(n)
    got = interval(values)
    assert got["n"] == n and got["values"] == values
    assert got["mean"] == pytest.approx(mean, rel=RTOL)
    assert got["std"] == pytest.approx(std, rel=RTOL)
    assert got["ci95"] == pytest.approx([mean - half, mean + half], rel=RTOL)
    # The quantile itself, from tables: 2.776 for 4 degrees of freedom (not the normal's 1.96).
    assert t.ppf(0.975, 4) == pytest.approx(2.7764451051977987, rel=RTOL)


def test_interval_of_one_value_has_zero_width():
    got = interval([0.625])
    assert got == {"mean": 0.625, "std": 0.0, "ci95": [0.625, 0.625], "n": 1, "values": [0.625]}


def test_interval_of_nothing_is_refused():
    with pytest.raises(ValueError, match="no values"):
        interval([])


def test_paired_difference_is_the_interval_of_per_fold_differences():
    model, baseline = [0.9, 0.8, 0.85], [0.7, 0.75, 0.6]
    assert paired_difference(model, baseline) == interval([0.9 - 0.7, 0.8 - 0.75, 0.85 - 0.6])


def test_paired_difference_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="3 and 2 folds"):
        paired_difference([0.9, 0.8, 0.85], [0.7, 0.75])


# ------------------------------------------------------------------ summarize_level


def test_pooled_confusion_is_the_sum_and_pooled_accuracy_its_trace(rng):
    cms = confusions(rng, 4)
    folds = [metrics_from_confusion(cm, LABELS) for cm in cms]
    level = summarize_level(folds, LABELS)
    pooled = sum(cms)
    assert level["confusion"] == pooled.tolist()
    assert level["pooled"]["n"] == int(pooled.sum()) == 4 * 15
    assert level["pooled"]["accuracy"] == pytest.approx(np.trace(pooled) / pooled.sum(), rel=RTOL)
    # The per-fold figures are each fold's own, and the interval is theirs.
    accuracies = [np.trace(cm) / cm.sum() for cm in cms]
    assert level["accuracy"]["values"] == pytest.approx(accuracies, rel=RTOL)
    assert_same_interval(level["accuracy"], interval(accuracies))
    assert level["macro_f1"]["values"] == pytest.approx([f["macro_f1"] for f in folds], rel=RTOL)
    for label in LABELS:
        assert level["per_class"][label]["support"] == int(pooled[LABELS.index(label)].sum())


def test_per_class_intervals_skip_folds_where_the_class_is_absent():
    # Fold 1 has no jazz clip (an empty row): its jazz F1 of 0 is not a measurement and must not count.
    cms = [np.array([[3, 1, 0], [0, 4, 0], [1, 0, 3]]), np.array([[4, 0, 0], [0, 0, 0], [0, 1, 3]]),
           np.array([[2, 0, 1], [1, 2, 1], [0, 0, 4]])]  # fmt: skip
    folds = [metrics_from_confusion(cm, LABELS) for cm in cms]
    jazz = summarize_level(folds, LABELS)["per_class"]["jazz"]
    assert jazz["folds_present"] == 2 and jazz["support"] == 4 + 4
    expected = [folds[0]["per_class"]["jazz"]["f1"], folds[2]["per_class"]["jazz"]["f1"]]
    assert_same_interval(jazz["f1"], interval(expected))
    assert jazz["recall"]["values"] == pytest.approx([1.0, 0.5], rel=RTOL)
    assert summarize_level(folds, LABELS)["per_class"]["blues"]["folds_present"] == 3


def test_a_class_never_tested_has_no_interval():
    cms = [np.array([[3, 0, 0], [0, 0, 0], [1, 0, 2]]), np.array([[2, 0, 1], [0, 0, 0], [0, 0, 3]])]
    jazz = summarize_level([metrics_from_confusion(cm, LABELS) for cm in cms], LABELS)["per_class"]["jazz"]
    assert jazz == {"support": 0, "folds_present": 0, "precision": None, "recall": None, "f1": None}


# ------------------------------------------------------------------ summarize_folds


def test_summarize_folds_without_baseline(rng):
    cms = confusions(rng, 3)
    windows = [4 * cm for cm in cms]  # four windows a clip
    summary = summarize_folds([fold_run(c, w) for c, w in zip(cms, windows)])
    assert summary["folds"] == 3 and summary["labels"] == LABELS and summary["headline"] == "clip accuracy"
    assert set(summary["test"]) == {"clip", "window"}
    assert "baseline" not in summary and "versus_baseline" not in summary
    assert summary["test"]["window"]["confusion"] == sum(windows).tolist()
    assert summary["test_clip_accuracy_mean"] == summary["test"]["clip"]["accuracy"]["mean"]
    assert summary["test_window_macro_f1_std"] == summary["test"]["window"]["macro_f1"]["std"]
    assert [f["fold"] for f in summary["per_fold"]] == [0, 1, 2]
    assert [f["test_clips"] for f in summary["per_fold"]] == [15, 15, 15]
    assert all("baseline_clip_accuracy" not in f for f in summary["per_fold"])
    assert [f["test_clip_accuracy"] for f in summary["per_fold"]] == summary["test"]["clip"]["accuracy"]["values"]


def test_summarize_folds_keeps_only_levels_every_fold_has(rng):
    cms = confusions(rng, 2)
    summary = summarize_folds([fold_run(cms[0], 4 * cms[0]), fold_run(cms[1])])  # the SVM has no windows
    assert set(summary["test"]) == {"clip"} and "test_window_accuracy" not in summary["per_fold"][0]


def test_summarize_folds_with_baseline_pairs_by_fold(rng):
    cms, base = confusions(rng, 4), confusions(rng, 4)
    summary = summarize_folds([fold_run(c, 4 * c, b) for c, b in zip(cms, base)])
    assert summary["baseline"]["model"] == "svm"
    assert summary["baseline"]["clip"] == summarize_level([metrics_from_confusion(b, LABELS) for b in base], LABELS)
    model_acc = [np.trace(c) / c.sum() for c in cms]
    base_acc = [np.trace(b) / b.sum() for b in base]
    diff = summary["versus_baseline"]["accuracy"]
    assert diff["values"] == pytest.approx([m - b for m, b in zip(model_acc, base_acc)], rel=RTOL)
    assert diff["mean"] == pytest.approx(np.mean(model_acc) - np.mean(base_acc), rel=1e-9, abs=1e-15)  # a mean of differences
    assert set(summary["versus_baseline"]) == {"accuracy", "macro_f1"}
    assert [f["baseline_clip_accuracy"] for f in summary["per_fold"]] == pytest.approx(base_acc, rel=RTOL)


def test_summarize_folds_needs_a_baseline_in_every_fold(rng):
    cms = confusions(rng, 2)
    summary = summarize_folds([fold_run(cms[0], baseline=cms[1]), fold_run(cms[1])])
    assert "baseline" not in summary and "versus_baseline" not in summary


# ------------------------------------------------------------------ end to end


def test_train_svm_folds_writes_the_cross_validation_report(svm_folds):
    out = svm_folds.run
    assert "2 folds: test clip accuracy" in svm_folds.output and "95% CI" in svm_folds.output

    summary = json.loads((out / "metrics.json").read_text())
    assert summary["folds"] == 2 and summary["model"] == "svm" and set(summary["test"]) == {"clip"}
    folds = [json.loads((out / f"fold-{k}" / "metrics.json").read_text()) for k in range(2)]
    pooled = sum(np.asarray(f["splits"]["test"]["clip"]["confusion"]) for f in folds)
    assert summary["test"]["clip"]["confusion"] == pooled.tolist()
    assert pooled.sum() == 18  # every clip tested exactly once
    assert "baseline" not in summary  # the SVM is its own baseline

    report = (out / "report.md").read_text()
    acc = summary["test"]["clip"]["accuracy"]
    lo, hi = acc["ci95"]
    headline = (f"**Test clip accuracy: {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f}%** "
                f"(95% CI [{100 * lo:.1f}, {100 * hi:.1f}]; pooled over all 18 test clips")  # fmt: skip
    assert headline in report
    assert "## Confusion matrix, pooled over the 2 folds' test clips" in report and "![confusion](confusion.png)" in report
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all((out / f"fold-{k}" / "report.md").is_file() for k in range(2))


def test_split_seed_keeps_the_folds_while_seed_changes(svm_folds, tmp_path):
    from click.testing import CliRunner

    from pyharmonies.cli import cli
    from pyharmonies.training.config import TrainConfig

    def fold_tests(run):
        return [json.loads((run / f"fold-{k}" / "splits.json").read_text())["splits"]["test"] for k in range(2)]

    def folds(*options):
        run = tmp_path / "-".join(options)
        result = CliRunner().invoke(cli, ["train", str(svm_folds.data), "--model", "svm", "--folds", "2", "--out", str(run),
                                          "--cache", str(tmp_path / "cache"), "--quiet", *options], catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
        return run

    same, other = folds("--seed", "5", "--split-seed", "0"), folds("--seed", "5")
    assert fold_tests(same) == fold_tests(svm_folds.run)  # the default --seed 0 drew these folds
    assert fold_tests(other) != fold_tests(svm_folds.run)
    summary = json.loads((same / "metrics.json").read_text())
    assert (summary["seed"], summary["split_seed"]) == (5, 0)
    assert TrainConfig(data="d", seed=5).splits_seed == 5 and TrainConfig(data="d", seed=5, split_seed=2).splits_seed == 2
    with pytest.raises(Exception, match="split_seed"):
        TrainConfig(data="d", split_seed="0")

    redrawn = folds("--val-seed", "1")
    for k in range(2):
        ours, theirs = (json.loads((run / f"fold-{k}" / "splits.json").read_text())["splits"] for run in (redrawn, svm_folds.run))
        assert ours["test"] == theirs["test"] and sorted(ours["train"] + ours["val"]) == sorted(theirs["train"] + theirs["val"])
        assert len(ours["val"]) == len(theirs["val"]) and ours["val"] != theirs["val"]  # other validation tracks, as many
    with pytest.raises(Exception, match="val_seed"):
        TrainConfig(data="d", val_seed=1.5)


def test_folds_trained_by_separate_processes_give_the_same_summary(svm_folds, tmp_path):
    """`--fold K` trains one fold into a shared --out; the last one writes the summary of the whole."""
    from click.testing import CliRunner

    from pyharmonies.cli import cli

    run = tmp_path / "parts"

    def train(*options):
        return CliRunner().invoke(cli, ["train", str(svm_folds.data), "--model", "svm", "--folds", "2", "--out", str(run),
                                        "--cache", str(tmp_path / "cache"), "--quiet", *options])  # fmt: skip

    first = train("--fold", "1")
    assert first.exit_code == 0, first.output
    assert "still to train: 0" in first.output
    assert (run / "fold-1" / "metrics.json").is_file() and not (run / "fold-0").exists()
    assert not (run / "metrics.json").exists()  # no summary of half the folds

    other_options = train("--fold", "0", "--seed", "4")
    assert other_options.exit_code != 0 and "other options" in other_options.output
    out_of_range = train("--fold", "2")
    assert out_of_range.exit_code != 0 and "numbered 0 to 1" in out_of_range.output

    last = train("--fold", "0")
    assert last.exit_code == 0, last.output
    assert "2 folds: test clip accuracy" in last.output
    whole, parts = (json.loads((r / "metrics.json").read_text()) for r in (svm_folds.run, run))
    assert parts["test"] == whole["test"]  # the same folds, models and pooled figures as one process's run

    again = train("--fold", "0")  # a finished fold is kept, not retrained
    assert again.exit_code == 0, again.output
    assert json.loads((run / "metrics.json").read_text())["test"] == whole["test"]


def test_a_fold_started_elsewhere_is_refused_without_resume(svm_folds, tmp_path):
    from click.testing import CliRunner

    from pyharmonies.cli import cli

    run = tmp_path / "parts"
    (run / "fold-0").mkdir(parents=True)
    (run / "fold-0" / "last.pt").write_bytes(b"")  # another process's checkpoint: never read here
    args = ["train", str(svm_folds.data), "--folds", "2", "--out", str(run), "--quiet", "--fold", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "no longer training it" in result.output and "--resume" in result.output
    no_folds = CliRunner().invoke(cli, ["train", str(svm_folds.data), "--out", str(tmp_path / "x"), "--fold", "0"])
    assert no_folds.exit_code != 0 and "give --folds" in no_folds.output


def test_a_fold_another_process_is_training_is_refused_even_with_resume(svm_folds, tmp_path):
    import fcntl

    from click.testing import CliRunner

    from pyharmonies.cli import cli

    run = tmp_path / "parts"
    (run / "fold-0").mkdir(parents=True)
    (run / "fold-0" / "last.pt").write_bytes(b"")  # its checkpoint: never read here
    base = ["train", str(svm_folds.data), "--model", "cnn", "--folds", "2", "--out", str(run), "--quiet",
            "--cache", str(tmp_path / "cache")]  # fmt: skip
    with open(run / "fold-0" / ".train.lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live `train --fold 0` holds it
        for extra in (["--fold", "0"], ["--fold", "0", "--resume"], ["--resume"]):
            result = CliRunner().invoke(cli, base + extra)
            assert result.exit_code != 0, extra
            assert "being trained by another process now" in result.output and ".train.lock" in result.output, extra
    # Released (its process ended): the fold is a killed process's, for --resume to continue.
    result = CliRunner().invoke(cli, base + ["--fold", "0"])
    assert result.exit_code != 0 and "no longer training it" in result.output and "--resume" in result.output
    assert (run / "fold-0" / "last.pt").read_bytes() == b""  # untouched throughout
