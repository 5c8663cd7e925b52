"""What a run folder holds, and what reading one may do: nothing but read.

The SVM baseline is stored as arrays (``model.npz`` + ``model.json``) and
predicts with numpy exactly as scikit-learn does; a crafted pickle in a run
folder is never executed; a truncated, garbage or refused ``.pt`` is a
one-line error naming the file, through every command that reads one; a
failed ``--resume`` leaves ``config.json`` as it was; run files are readable
like any other file; ``train`` prints the data's warnings on the terminal
and refuses options it would ignore.

The runs are module fixtures on a tiny corpus (3 classes x 8 clips x 3 s,
plus a class of one clip and an empty class folder), trained through the
command line.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.data.synth import synth_corpus
from pyharmonies.training import checkpoint
from pyharmonies.training.errors import CheckpointError
from pyharmonies.training.svm import SvmModel, fit_svm

REPO = Path(__file__).resolve().parents[1]

#: The umask the fixtures train under: files must come out 0o666 & ~UMASK (0o660), which
#: neither mkstemp's 0600 nor a fixed chmod 0o644 gives.
UMASK = 0o007


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=3, clips_per_class=8, seconds=3.0, seed=5, progress=False)
    (root / "manifest.csv").unlink()  # read as class folders: the folders below are classes
    (root / "solo").mkdir()  # a label with one clip
    shutil.copy(next((root / "strings").glob("*.wav")), root / "solo" / "only.wav")
    (root / "empty").mkdir()  # a label folder with no audio
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _train_cli(corpus: Path, cache: Path, out: Path, model: str, *extra) -> tuple[int, str, str]:
    old = os.umask(UMASK)
    try:
        return invoke("train", corpus, "--model", model, "--cache", cache, "--out", out, "--quiet", *extra)
    finally:
        os.umask(old)


LSTM_ARGS = ("--epochs", "1", "--window", "1", "--batch-size", "16")


@pytest.fixture(scope="module")
def lstm(corpus, cache, tmp_path_factory) -> tuple[Path, str]:
    """A one-epoch LSTM run, and what `harmonies train` printed on stderr."""
    out = tmp_path_factory.mktemp("runs") / "lstm"
    code, _, err = _train_cli(corpus, cache, out, "lstm", *LSTM_ARGS)
    assert code == 0, err
    return out, err


@pytest.fixture(scope="module")
def svm(corpus, cache, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "svm"
    code, _, err = _train_cli(corpus, cache, out, "svm")
    assert code == 0, err
    return out, err


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / run.name
    shutil.copytree(run, dest)
    return dest


class _Opens:
    """Unpickling this calls ``open(marker, "w")``: it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(marker: Path) -> bytes:
    return pickle.dumps({"model": _Opens(marker)})


def test_the_payload_runs_code_when_unpickled(tmp_path):
    # The oracle for the tests below: this file is live, so "no marker" means "not unpickled".
    probe = tmp_path / "probe"
    pickle.loads(_payload(probe))["model"].close()  # the file object open() returned
    assert probe.exists()


def _one_line_error(code: int, out: str, err: str, path: Path) -> str:
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"Error: {path}"), err
    assert "Traceback" not in err and "weights_only=False" not in err and "`weights_only` set to `False`" not in err
    return lines[0]


# ------------------------------------------------------------------ the SVM as arrays


class _Blobs:
    """56 features (as many as the clip statistics), one Gaussian cloud per class, near enough to overlap."""

    def __init__(self, rng: np.random.Generator, classes: int):
        self.rng = rng
        self.centers = rng.standard_normal((classes, 56)) * 0.35

    def __call__(self, n: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        y = self.rng.integers(0, len(self.centers), n)
        return self.centers[y] + self.rng.standard_normal((n, 56)) * spread, y


@pytest.mark.parametrize("classes", [2, 5])
def test_svm_arrays_predict_exactly_as_scikit_learn(rng, classes):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    blobs = _Blobs(rng, classes)
    labels = [f"c{i}" for i in range(classes)]
    x, y = blobs(300)
    xv, yv = blobs(60)
    model, c = fit_svm(x, y, xv, yv, labels, seed=0)
    # The estimator the baseline always was: gamma="scale", a pipeline, the chosen C.
    reference = make_pipeline(StandardScaler(), SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced", random_state=0))
    reference.fit(x, y)
    # Wider test clouds: many points fall between classes, where one-vs-one votes tie and the tie rule matters.
    xt, _ = blobs(2000, spread=1.3)
    expected = reference.predict(xt)
    np.testing.assert_array_equal(model.predict(xt), expected)
    assert np.bincount(expected, minlength=classes).min() > 100  # every class predicted often: each pair is exercised
    if classes > 2:
        top2 = np.sort(model.votes(xt), axis=1)[:, -2:]
        assert (top2[:, 0] == top2[:, 1]).sum() >= 5  # ties were met, and broken as libsvm breaks them


def test_svm_c_comes_from_the_grid_given(rng):
    blobs = _Blobs(rng, 3)
    x, y = blobs(120)
    xv, yv = blobs(30)
    assert fit_svm(x, y, None, None, ["a", "b", "c"], seed=0)[1] == 10.0  # no validation data: the default grid's middle C
    assert fit_svm(x, y, None, None, ["a", "b", "c"], seed=0, grid=(100.0,))[1] == 100.0
    assert fit_svm(x, y, xv, yv, ["a", "b", "c"], seed=0, grid=(0.5, 5.0))[1] in (0.5, 5.0)  # chosen on validation, within it


def test_svm_arrays_survive_the_round_trip(rng, tmp_path):
    blobs = _Blobs(rng, 3)
    x, y = blobs(200)
    model, _ = fit_svm(x, y, None, None, ["a", "b", "c"], seed=0)
    model.save(tmp_path, labels=["a", "b", "c"], feature_config={"sample_rate": 22050})
    again, info = SvmModel.load(tmp_path)
    assert info["labels"] == ["a", "b", "c"] and again.gamma == model.gamma
    xt, _ = blobs(500, spread=1.3)
    np.testing.assert_array_equal(again.votes(xt), model.votes(xt))
    with np.load(tmp_path / "model.npz", allow_pickle=False) as z:  # plain numeric arrays only
        assert all(z[name].dtype.kind in "if" for name in z.files)


def test_the_svm_run_holds_arrays_and_json_and_evaluates_the_same(svm, corpus):
    run, _ = svm
    assert (run / "model.npz").is_file() and (run / "model.json").is_file()
    assert not (run / "model.joblib").exists()
    saved = json.loads((run / "metrics.json").read_text())["splits"]["test"]["clip"]
    code, out, err = invoke("evaluate", run, corpus)
    assert code == 0, err
    assert f"clip   accuracy {100 * saved['accuracy']:.1f}%" in out


def test_a_crafted_joblib_in_an_old_svm_run_is_never_unpickled(svm, corpus, tmp_path):
    old = _copy(svm[0], tmp_path)
    (old / "model.npz").unlink()
    (old / "model.json").unlink()
    marker = tmp_path / "executed"
    (old / "model.joblib").write_bytes(_payload(marker))
    line = _one_line_error(*invoke("evaluate", old, corpus), old / "model.joblib")
    assert "retrain" in line and "--model svm" in line
    assert not marker.exists()


def test_a_crafted_joblib_beside_a_new_model_is_ignored(svm, corpus, tmp_path):
    run = _copy(svm[0], tmp_path)
    marker = tmp_path / "executed"
    (run / "model.joblib").write_bytes(_payload(marker))
    code, _, err = invoke("evaluate", run, corpus)
    assert code == 0, err
    assert not marker.exists()


def test_pickled_arrays_in_model_npz_are_refused(svm, corpus, tmp_path):
    run = _copy(svm[0], tmp_path)
    marker = tmp_path / "executed"
    with np.load(run / "model.npz") as z:
        arrays = {name: z[name] for name in z.files}
    arrays["mean"] = np.array([_Opens(marker)], dtype=object)
    np.savez(run / "model.npz", **arrays)  # numpy pickles object arrays on save
    line = _one_line_error(*invoke("evaluate", run, corpus), run / "model.npz")
    assert "refused" in line
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "inconsistent"])
def test_a_damaged_model_npz_is_a_one_line_error(svm, corpus, tmp_path, damage):
    run = _copy(svm[0], tmp_path)
    path = run / "model.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 50)
    else:
        with np.load(path) as z:
            arrays = {name: z[name] for name in z.files}
        arrays["intercept"] = arrays["intercept"][:-1]
        np.savez(path, **arrays)
    _one_line_error(*invoke("evaluate", run, corpus), path)


def test_no_code_reads_a_pickle_from_disk():
    # The rule, checked at its source: joblib/pickle loads, pickled numpy arrays, torch.load without weights_only=True.
    offenders = []
    for path in (REPO / "pyharmonies").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(s in code for s in ("joblib.load", "pickle.load", "allow_pickle=True", "weights_only=False")) or (
                "torch.load(" in code and "weights_only=True" not in code
            ):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# ------------------------------------------------------------------ checkpoints


def _damage(path: Path, how: str, marker: Path) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(64) + b"not a checkpoint" * 20)
    elif how == "empty":
        path.write_bytes(b"")
    else:  # "code": a pickle that would run code, the way torch.save writes one
        import torch

        torch.save({"model": _Opens(marker), "meta": {}}, path)


DAMAGES = ["truncated", "garbage", "empty", "code"]


@pytest.mark.parametrize("how", DAMAGES)
def test_checkpoint_load_refuses_in_one_line(lstm, tmp_path, how):
    run = _copy(lstm[0], tmp_path)
    marker = tmp_path / "executed"
    _damage(run / checkpoint.BEST, how, marker)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(run / checkpoint.BEST)
    message = str(err.value)
    assert message.startswith(str(run / checkpoint.BEST)) and "\n" not in message
    if how == "code":
        assert "refused" in message and "open" in message  # names the object it would have called
    assert not marker.exists()


def test_a_checkpoint_without_its_meta_is_refused(tmp_path):
    import torch

    path = tmp_path / "best.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=r"best\.pt: not a harmonies checkpoint \(it has no meta\)"):
        checkpoint.load(path)


@pytest.mark.parametrize("how", DAMAGES)
def test_evaluate_with_a_bad_best_pt(lstm, corpus, tmp_path, how):
    run = _copy(lstm[0], tmp_path)
    marker = tmp_path / "executed"
    _damage(run / checkpoint.BEST, how, marker)
    _one_line_error(*invoke("evaluate", run, corpus), run / checkpoint.BEST)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["truncated", "code"])
def test_export_with_a_bad_best_pt(lstm, tmp_path, how):
    run = _copy(lstm[0], tmp_path)
    marker = tmp_path / "executed"
    _damage(run / checkpoint.BEST, how, marker)
    _one_line_error(*invoke("export", run, "--out", tmp_path / "bundle", "--quiet"), run / checkpoint.BEST)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["truncated", "code"])
def test_train_init_from_a_bad_best_pt(lstm, corpus, cache, tmp_path, how):
    run = _copy(lstm[0], tmp_path)
    marker = tmp_path / "executed"
    _damage(run / checkpoint.BEST, how, marker)
    out = tmp_path / "fine-tuned"
    code, stdout, err = _train_cli(corpus, cache, out, "lstm", *LSTM_ARGS, "--init", run)
    _one_line_error(code, stdout, err.replace(_warnings_of(err), ""), run / checkpoint.BEST)
    assert not marker.exists()
    assert not (out / "config.json").exists()  # nothing written for a run that never started


def _warnings_of(err: str) -> str:
    return "".join(line + "\n" for line in err.splitlines() if line.startswith("warning: "))


@pytest.mark.parametrize("how", DAMAGES)
def test_a_failed_resume_leaves_config_json_untouched(lstm, corpus, cache, tmp_path, how):
    run = _copy(lstm[0], tmp_path)
    marker = tmp_path / "executed"
    _damage(run / checkpoint.LAST, how, marker)
    before = {name: (run / name).read_bytes() for name in ("config.json", "splits.json", "metrics.json")}
    code, out, err = _train_cli(corpus, cache, run, "lstm", *LSTM_ARGS, "--resume")
    _one_line_error(code, out, err.replace(_warnings_of(err), ""), run / checkpoint.LAST)
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not marker.exists()


def test_resume_with_other_options_is_refused_and_changes_nothing(lstm, corpus, cache, tmp_path):
    run = _copy(lstm[0], tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, out, err = _train_cli(corpus, cache, run, "lstm", "--epochs", "3", "--window", "1", "--batch-size", "16", "--resume")
    assert code == 1, out + err
    assert "--resume:" in err and "epochs 1 -> 3" in err and "config.json" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_resume_with_the_same_options_continues(lstm, corpus, cache, tmp_path):
    # The other side of the refusal above: the run's own options, a new cache folder, one more epoch to go.
    run = _copy(lstm[0], tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["epochs"] = 2  # as if the first run had been killed after its first of two epochs
    (run / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    before = (run / "config.json").read_bytes()
    code, out, err = _train_cli(corpus, tmp_path / "other-cache", run, "lstm", "--epochs", "2", "--window", "1",
                                "--batch-size", "16", "--resume")  # fmt: skip
    assert code == 0, err
    assert [h["epoch"] for h in json.loads((run / "metrics.json").read_text())["history"]] == [1, 2]
    assert (run / "config.json").read_bytes() == before


# ------------------------------------------------------------------ file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_files_are_readable_like_any_other_file(lstm, svm):
    expected = 0o666 & ~UMASK
    for run, names in ((lstm[0], ("config.json", "splits.json", "metrics.json", "report.md", "best.pt", "last.pt")),
                       (svm[0], ("config.json", "splits.json", "metrics.json", "report.md", "model.npz", "model.json"))):  # fmt: skip
        modes = {name: oct(_mode(run / name)) for name in names}
        assert modes == {name: oct(expected) for name in names}, run
        assert not [p.name for p in run.iterdir() if p.name.endswith(".part")]


def test_atomic_writes_follow_the_umask(tmp_path):
    from pyharmonies._atomic import write_atomic

    for mask in (0o022, 0o077):
        old = os.umask(mask)
        try:
            write_atomic(tmp_path / f"f{mask:o}.json", "{}\n")
        finally:
            os.umask(old)
        assert _mode(tmp_path / f"f{mask:o}.json") == 0o666 & ~mask


# ------------------------------------------------------------------ what train says and refuses


@pytest.mark.parametrize("fixture", ["lstm", "svm"])
def test_train_prints_the_class_warnings_on_the_terminal(request, fixture):
    run, err = request.getfixturevalue(fixture)
    assert "warning: class 'solo' has only 1 clip" in err
    assert "warning: folder 'empty' holds no audio files; ignored" in err
    report = (run / "report.md").read_text()
    assert "class 'solo' has only 1 clip" in report and "folder 'empty'" in report  # and still in the report


@pytest.mark.parametrize("extra, named", [
    (("--init", "RUN"), "--init"),
    (("--init", "RUN", "--freeze-backbone"), "--init, --freeze-backbone"),
    (("--resume",), "--resume"),
    (("--epochs", "5"), "--epochs"),
])  # fmt: skip
def test_svm_refuses_options_it_would_ignore(lstm, corpus, tmp_path, extra, named):
    args = [str(lstm[0]) if a == "RUN" else a for a in extra]
    out = tmp_path / "svm"
    result = CliRunner().invoke(cli, ["train", str(corpus), "--model", "svm", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert f"{named}: not used by --model svm" in result.stderr
    assert not out.exists()


def test_init_from_an_svm_run_is_refused(svm, corpus, cache, tmp_path):
    code, out, err = _train_cli(corpus, cache, tmp_path / "ft", "lstm", *LSTM_ARGS, "--init", svm[0])
    assert code == 1 and f"--init {svm[0]} is an svm run" in err


def test_train_fraction_keeps_the_test_split_and_cuts_training_tracks(corpus, cache, tmp_path):
    runs = {}
    for name, extra in (("full", ()), ("half", ("--train-fraction", "0.5"))):
        code, _, err = _train_cli(corpus, cache, tmp_path / name, "svm", *extra)
        assert code == 0, err
        runs[name] = json.loads((tmp_path / name / "splits.json").read_text())["splits"]
    assert runs["half"]["test"] == runs["full"]["test"] and runs["half"]["val"] == runs["full"]["val"]
    assert set(runs["half"]["train"]) < set(runs["full"]["train"])
