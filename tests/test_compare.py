"""``harmonies compare`` (:mod:`pyharmonies.training.compare`): runs side by side.

Run folders are written by hand: a cross-validation's ``metrics.json`` is
:func:`summarize_folds` of fold figures built from confusion matrices, a
single run's is :func:`metrics_from_confusion`'s dicts under ``splits``, so
every expected figure is arithmetic on counts. One real `train --model svm
--folds 2` (seconds) checks that compare reads what training writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.training.compare import compare_runs, load_run, markdown
from pyharmonies.training.crossval import summarize_folds
from pyharmonies.training.errors import RunError
from pyharmonies.training.metrics import metrics_from_confusion

LABELS = ["blues", "jazz", "rock"]
PNG = b"\x89PNG\r\n\x1a\n"

# Three folds of 4 test clips per class (12 a fold); the runs below differ in their predictions only.
CNN = [[[4, 0, 0], [1, 3, 0], [0, 0, 4]], [[3, 1, 0], [0, 4, 0], [0, 1, 3]], [[4, 0, 0], [0, 4, 0], [1, 0, 3]]]
LSTM = [[[3, 1, 0], [1, 3, 0], [0, 1, 3]], [[3, 0, 1], [0, 3, 1], [0, 1, 3]], [[4, 0, 0], [1, 2, 1], [0, 0, 4]]]
SVM = [[[2, 1, 1], [1, 3, 0], [0, 1, 3]], [[3, 1, 0], [1, 2, 1], [1, 1, 2]], [[2, 2, 0], [0, 3, 1], [0, 1, 3]]]


def m(cm, labels=LABELS) -> dict:
    return metrics_from_confusion(np.asarray(cm), labels)


def folds_run(path: Path, confusions, *, model: str, baseline=None, data: str = "data/gtzan", seed: int = 0,
              labels=LABELS, test_keys=None) -> Path:  # fmt: skip
    """A cross-validation folder as train_folds writes it: config.json, metrics.json (and fold-K/splits.json)."""
    runs = []
    for k, cm in enumerate(confusions):
        run = {"splits": {"test": {"clip": m(cm, labels)}}, "labels": labels}
        if model != "svm":
            run["splits"]["test"]["window"] = m(4 * np.asarray(cm), labels)  # four windows a clip
        if baseline is not None:
            run["baseline"] = {"model": "svm", "C": 1.0, "splits": {"test": {"clip": m(baseline[k], labels)}}}
        runs.append(run)
    summary = summarize_folds(runs) | {"model": model, "group_by": "track", "seed": seed}
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(summary))
    (path / "config.json").write_text(json.dumps({"data": data, "model": model, "folds": len(confusions), "seed": seed}))
    for k, keys in enumerate(test_keys or []):
        (path / f"fold-{k}").mkdir()
        (path / f"fold-{k}" / "splits.json").write_text(json.dumps({"splits": {"test": keys}}))
    return path


def single_run(path: Path, cm, *, model: str, baseline=None, data: str = "data/gtzan") -> Path:
    """A single run's folder as train_run (or, with model svm, train_svm_run) writes it."""
    test = {"clip": m(cm)} if model == "svm" else {"clip": m(cm), "window": m(4 * np.asarray(cm))}
    metrics = {"splits": {"train": test, "val": test, "test": test}, "model": {"name": model}, "labels": LABELS}
    if baseline is not None:
        metrics["baseline"] = {"model": "svm", "C": 1.0, "splits": {"test": {"clip": m(baseline)}}}
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "config.json").write_text(json.dumps({"data": data, "model": model}))
    return path


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["compare", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.output


def row(table: str, name: str) -> list[str]:
    """The cells of the first table's row named ``name``."""
    rows = [line for line in table.splitlines() if line.startswith(f"| {name} |")]
    assert rows, f"no row {name!r} in\n{table}"
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def accuracies(confusions) -> np.ndarray:
    return np.array([np.trace(cm) / np.sum(cm) for cm in map(np.asarray, confusions)])


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    """A CNN and an LSTM cross-validated on the same folds (the same SVM baseline), and a single CNN run."""
    return [folds_run(tmp_path / "a", CNN, model="cnn", baseline=SVM),
            folds_run(tmp_path / "b", LSTM, model="lstm", baseline=SVM),
            single_run(tmp_path / "c", CNN[0], model="cnn", baseline=SVM[0])]  # fmt: skip


# ------------------------------------------------------------------ the table and the figure


def test_compare_writes_the_table_and_the_figure(three, tmp_path: Path):
    out = tmp_path / "tables" / "table.md"
    code, output = invoke(*three, "--out", out)
    assert code == 0, output
    table = out.read_text()
    assert table.startswith("# 3 runs compared: test clip figures, with 2 SVM baselines\n") and "![runs compared](table.png)" in table
    assert table.replace("![runs compared](table.png)\n\n", "") in output  # printed as well, without the link
    assert (tmp_path / "tables" / "table.png").read_bytes()[:8] == PNG  # default: beside --out
    assert not list(out.parent.glob(".*.part"))  # written atomically, nothing left behind

    acc_a, acc_b = accuracies(CNN), accuracies(LSTM)
    a, b, c = row(table, "a"), row(table, "b"), row(table, "c")
    assert a[:4] == ["a", "cnn", "3", f"{100 * acc_a.mean():.1f} ± {100 * acc_a.std(ddof=1):.1f}%"]
    assert b[:3] == ["b", "lstm", "3"] and c[:4] == ["c", "cnn", "1 split", f"{100 * acc_a[0]:.1f}%"]
    assert c[4] == "—"  # no interval from one split

    # The paired column: the LSTM's per-fold difference to the first run, the CNN.
    header = row(table, "run")
    assert header[7:] == ["Δ accuracy vs first (paired)", "Δ macro F1 vs first (paired)"]
    diff = acc_b - acc_a
    assert a[7] == "reference" and c[7] == "—"
    assert b[7].startswith(f"{100 * diff.mean():+.1f} ± {100 * diff.std(ddof=1):.1f} [")

    # One row for the SVM both cross-validations carry (identical: the same folds), one for c's.
    base = row(table, "svm (baseline of a, b)")
    assert table.count("(baseline of a, b)") == 2  # its row and its per-class column
    acc_svm = accuracies(SVM)
    assert base[1:4] == ["svm", "3", f"{100 * acc_svm.mean():.1f} ± {100 * acc_svm.std(ddof=1):.1f}%"]
    assert base[7].startswith(f"{100 * (acc_svm - acc_a).mean():+.1f} ± ")
    assert row(table, "svm (baseline of c)")[1:3] == ["svm", "1 split"]

    # Per class: the F1 of each run, mean ± std over the folds.
    f1 = np.array([m(cm)["per_class"]["jazz"]["f1"] for cm in LSTM])
    jazz = row(table, "jazz")
    assert jazz[2] == f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f}"
    assert jazz[3] == f"{m(CNN[0])['per_class']['jazz']['f1']:.3f}"


def test_paired_differences_are_per_fold(three):
    comp = compare_runs(three)
    assert comp.reference is comp.entries[0]
    assert set(comp.paired) == {"b", "svm (baseline of a, b)"}
    got = comp.paired["b"]["accuracy"]["values"]
    assert got == pytest.approx(list(accuracies(LSTM) - accuracies(CNN)), rel=1e-12)  # subtraction only
    assert comp.notes[0].startswith("Δ vs first: each run's figure minus a's")


def test_without_out_nothing_is_written(three, tmp_path: Path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, output = invoke(*three)
    assert code == 0 and "| a | cnn | 3 |" in output
    assert list(work.iterdir()) == []
    code, _ = invoke(*three, "--out", work / "t.md", "--no-plot")
    assert code == 0 and sorted(p.name for p in work.iterdir()) == ["t.md"]
    code, _ = invoke(*three, "--plot", work / "fig.png", "--names", "x,y,z")
    assert code == 0 and (work / "fig.png").read_bytes()[:8] == PNG


def test_names_replace_the_folders_names(three):
    code, output = invoke(*three, "--names", "cnn-5f,lstm-5f,one")
    assert code == 0
    assert row(output, "lstm-5f")[1] == "lstm" and "svm (baseline of cnn-5f, lstm-5f)" in output


def test_window_level_marks_the_svm_at_clip_level(tmp_path: Path):
    runs = [folds_run(tmp_path / "a", CNN, model="cnn"), single_run(tmp_path / "s", SVM[0], model="svm")]
    code, output = invoke(*runs, "--level", "window")
    assert code == 0
    assert row(output, "s")[1] == "svm (clip)" and row(output, "a")[1] == "cnn"
    assert "No window figures for s (the SVM classifies whole clips)" in output
    # The CNN's window figures: four windows a clip, the same fractions as its clips.
    assert row(output, "a")[3] == f"{100 * accuracies(CNN).mean():.1f} ± {100 * accuracies(CNN).std(ddof=1):.1f}%"


def test_compare_reads_json_without_torch(three):
    # A fresh interpreter: comparing runs needs numpy and matplotlib, never torch (seconds to import).
    code = ("import sys\nfrom pyharmonies.training.compare import compare_runs, markdown\n"
            f"markdown(compare_runs({[str(p) for p in three]!r}))\nprint('torch' in sys.modules)\n")  # fmt: skip
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ pairing and notes


def test_runs_on_other_folds_are_not_paired(tmp_path: Path):
    other = [np.asarray(cm) for cm in LSTM]
    other[1] = other[1] + np.eye(3, dtype=int)  # fold 1 has 15 test clips, not 12
    comp = compare_runs([folds_run(tmp_path / "a", CNN, model="cnn"), folds_run(tmp_path / "b", other, model="lstm")])
    assert comp.paired == {} and comp.reference is None
    assert "b is not paired with a: different numbers of test clips per fold." in comp.notes
    assert "vs first (paired)" not in markdown(comp)


def test_pairing_compares_the_test_clips_when_splits_are_saved(tmp_path: Path):
    keys = [[f"f{k}-{i}.wav" for i in range(12)] for k in range(3)]
    moved = [list(k) for k in keys]
    moved[1][0], moved[2][0] = moved[2][0], moved[1][0]  # the same counts, one clip in another fold
    a = folds_run(tmp_path / "a", CNN, model="cnn", test_keys=keys)
    same = folds_run(tmp_path / "same", LSTM, model="lstm", test_keys=keys, seed=7)  # seed differs, clips do not
    other = folds_run(tmp_path / "other", LSTM, model="lstm", test_keys=moved)
    comp = compare_runs([a, same, other])
    assert set(comp.paired) == {"same"}
    assert "other is not paired with a: different test clips in fold 1." in comp.notes


def test_without_splits_a_different_seed_means_other_folds(tmp_path: Path):
    comp = compare_runs([folds_run(tmp_path / "a", CNN, model="cnn"), folds_run(tmp_path / "b", LSTM, model="lstm", seed=1)])
    assert comp.paired == {} and "b is not paired with a: different seed (0 and 1): other folds." in comp.notes


def test_notes_warn_of_other_labels_folds_and_datasets(tmp_path: Path):
    four = ["blues", "jazz", "rock", "pop"]
    wide = [np.pad(np.asarray(cm), ((0, 1), (0, 1))) + np.diag([0, 0, 0, 4]) for cm in CNN[:2]]
    runs = [folds_run(tmp_path / "a", CNN, model="cnn"),
            folds_run(tmp_path / "b", wide, model="lstm", labels=four, data="data/other")]  # fmt: skip
    code, output = invoke(*runs)
    assert code == 0
    assert "The runs have different labels: a: blues, jazz, rock; b: blues, jazz, rock, pop." in output
    assert "Different numbers of folds: a 3, b 2." in output
    assert "Different datasets: a `data/gtzan`, b `data/other`." in output
    assert "b is not paired with a: 3 and 2 folds." in output
    assert row(output, "pop")[1:] == ["—", f"{1.0:.3f} ± {0.0:.3f}"]  # a never saw pop


def test_a_baseline_equal_to_a_given_run_is_shown_once(tmp_path: Path):
    runs = [single_run(tmp_path / "svm", SVM[0], model="svm"), single_run(tmp_path / "cnn", CNN[0], model="cnn", baseline=SVM[0])]
    comp = compare_runs(runs)
    assert [e.name for e in comp.entries] == ["svm", "cnn"]
    assert "The SVM baseline of cnn has the same figures as svm: shown once." in comp.notes


def test_one_run_alone(tmp_path: Path):
    comp = compare_runs([single_run(tmp_path / "svm", SVM[0], model="svm")])
    assert [e.name for e in comp.entries] == ["svm"] and comp.notes == [] and comp.paired == {}


# ------------------------------------------------------------------ refusals


def _no_test(path: Path) -> None:
    metrics = json.loads((path / "metrics.json").read_text())
    del metrics["splits"]["test"]
    (path / "metrics.json").write_text(json.dumps(metrics))


def _no_accuracy(path: Path) -> None:
    metrics = json.loads((path / "metrics.json").read_text())
    del metrics["test"]["clip"]["accuracy"]
    (path / "metrics.json").write_text(json.dumps(metrics))


def _old_folds(path: Path) -> None:
    (path / "metrics.json").write_text(json.dumps({"folds": 3, "test_clip_accuracy_mean": 0.8}))


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "bad: no metrics.json (not a training run"),
    (lambda p: None, "bad: no such folder"),
    (lambda p: p.write_text("{}"), "bad: not a folder"),
    (lambda p: (p.mkdir(), (p / "metrics.json").write_text('{"splits": ')), "metrics.json: not valid JSON"),
    (lambda p: (p.mkdir(), (p / "metrics.json").write_text("[1, 2]")), "metrics.json: malformed: a JSON list, not an object"),
    (lambda p: (p.mkdir(), (p / "metrics.json").write_text('{"window": {}}')), "neither a cross-validation (folds) nor a training run"),
    (lambda p: (single_run(p, CNN[0], model="cnn"), _no_test(p)), "metrics.json: no test split (splits: train, val)"),
    (lambda p: (folds_run(p, CNN, model="cnn"), _no_accuracy(p)), "metrics.json: malformed: no accuracy"),
    (lambda p: (folds_run(p, CNN, model="cnn"), _old_folds(p)), "a 3-fold run without per-fold figures"),
])  # fmt: skip
def test_a_bad_folder_is_refused_clearly(three, tmp_path: Path, make, message: str):
    bad = tmp_path / "bad"
    make(bad)
    code, output = invoke(three[0], bad)
    assert code == 1 and output.startswith("Error: ") and message in output, output
    assert "Traceback" not in output and "| a |" not in output  # nothing printed before the error
    with pytest.raises(RunError, match="bad"):
        load_run(bad)


def test_usage_errors(three):
    code, output = invoke()
    assert code == 2 and "Missing argument 'RUN...'" in output
    code, output = invoke(*three, "--names", "x,y")
    assert code == 1 and "2 names for 3 runs" in output
    code, output = invoke(*three, "--names", "x,x,y")
    assert code == 1 and "names must be distinct" in output
    code, output = invoke(*three, "--plot", "f.png", "--no-plot")
    assert code == 2 and "--plot and --no-plot" in output
    with pytest.raises(RunError, match="at least one run"):
        compare_runs([])


# ------------------------------------------------------------------ what training writes


def test_compare_reads_what_train_writes(svm_folds, tmp_path: Path):
    run = svm_folds.run
    again = tmp_path / "again"
    shutil.copytree(run, again)  # the same folds, the same clips: a paired difference of exactly 0
    comp = compare_runs([run, again, run / "fold-0"])
    assert [e.model for e in comp.entries] == ["svm", "svm", "svm"] and [e.folds for e in comp.entries] == [2, 2, 0]
    assert comp.entries[0].test_keys is not None  # read from fold-K/splits.json
    assert comp.paired["again"]["accuracy"]["values"] == [0.0, 0.0]
    summary = json.loads((run / "metrics.json").read_text())
    assert comp.entries[0].figures["accuracy"] == summary["test"]["clip"]["accuracy"]
    code, output = invoke(run, again, run / "fold-0", "--out", tmp_path / "t.md")
    assert code == 0 and row(output, "fold-0")[2] == "1 split" and (tmp_path / "t.png").read_bytes()[:8] == PNG
