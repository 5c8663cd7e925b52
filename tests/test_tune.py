"""``harmonies tune``: the search space, the study's files, resume after a kill, refusals.

One small study (a tiny CNN, 3 classes x 4 synthetic clips of 3 s, 1 s windows, 2 folds,
1 epoch, 2 trials) is run once per module; tests that change a study copy it first. It
checks plumbing, not tuning: one epoch on twelve clips learns little.
"""

from __future__ import annotations

import csv
import fcntl
import shutil
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.models.registry import model_config
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.tune import SEARCH_SPACES, STUDY_NAME, Param, config_with, default_values, search_space, suggest, tune
from pyharmonies.training.tune_report import importances, write_all

#: A tiny MobileNetV2 (as conftest's SMALL_CNN): one trial of 2 folds x 1 epoch takes about a second.
SMALL_CNN = {"blocks": ((1, 8, 1, 1), (2, 16, 1, 2)), "last_channels": 32}


def invoke(*args) -> tuple[int, str]:
    # One thread: a CPU model's weights depend on how many threads split its reductions.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(cli, [str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from pyharmonies.data.synth import synth_corpus

    root = tmp_path_factory.mktemp("tune-corpus") / "synth"
    synth_corpus(root, classes=3, clips_per_class=4, seconds=3.0, seed=5, progress=False, jobs=1)
    return root


@pytest.fixture(scope="module")
def base_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tune-base") / "base.json"
    TrainConfig(data="unused", window=1.0, features={"n_mels": 32}, batch_size=8, patience=2, model_options=SMALL_CNN,
                backbone="none", members=1).save(path)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tune-cache")


def tune_args(corpus: Path, base_json: Path, cache: Path, out: Path, *extra) -> list:
    # --keep window: the searched windows (2, 3, 5 s) are as long as these 3 s clips or longer.
    return ["tune", corpus, "--model", "cnn", "--trials", 2, "--folds", 2, "--epochs", 1, "--seed", 0, "--cache", cache,
            "--base-config", base_json, "--keep", "window", "--out", out, "--quiet", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def study(corpus, base_json, cache, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("tune-runs") / "study"
    code, output = invoke(*tune_args(corpus, base_json, cache, out))
    assert code == 0, output
    return out, output


def load(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}")


def states(out: Path) -> list[str]:
    return [t.state.name for t in load(out).trials]


# ---------------------------------------------------------------- the search space


@pytest.mark.parametrize("model", sorted(SEARCH_SPACES))
def test_the_defaults_are_trial_zero_exactly(model):
    # Every range holds train's defaults, and applying them gives back the base unchanged.
    base = TrainConfig(data="d", model=model, members=1)  # tune trains one network per trial
    values = default_values(base, search_space(base))
    assert set(values) == {p.name for p in SEARCH_SPACES[model]}
    again = config_with(base, values)
    assert model_config(model, again.model_options) == model_config(model, base.model_options)
    assert {k: v for k, v in again.to_dict().items() if k not in ("model_options", "augment_options")} == \
           {k: v for k, v in base.to_dict().items() if k not in ("model_options", "augment_options")}  # fmt: skip


@pytest.mark.parametrize("model", sorted(SEARCH_SPACES))
def test_every_draw_is_a_valid_training_configuration(model):
    base = TrainConfig(data="d", model=model, members=1, model_options={"last_channels": 64} if model == "cnn" else {})
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(25):
        params = suggest(draws.ask(), search_space(base))
        cfg = config_with(base, params)  # TrainConfig refuses bad fields and augmentation options
        model_config(model, cfg.model_options)  # and the model's config its own
        if model == "cnn":
            assert cfg.model_options["last_channels"] == 64  # merged into the base's options, not replacing them


def test_keep_holds_an_option_and_names_the_unknown():
    base = TrainConfig(data="d", window=1.0, members=1)
    with pytest.raises(ParameterError, match="--keep"):
        default_values(base, search_space(base))  # 1 s is not a searched window
    assert "window" not in {p.name for p in search_space(base, ["window"])}
    with pytest.raises(ParameterError, match="hidden"):
        search_space(base, ["model_options.hidden"])  # an LSTM option, not searched for the CNN
    assert not any(p.name.startswith("augment_options.") for p in search_space(TrainConfig(data="d", augment=False, members=1)))
    with pytest.raises(ParameterError, match="svm"):
        search_space(TrainConfig(data="d", model="svm"))


def test_a_base_of_several_members_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ParameterError, match="one network's training options.*members must be 1, not 3"):
        tune(TrainConfig(data=str(tmp_path), members=3), tmp_path / "study", trials=1)
    assert not (tmp_path / "study").exists()


def _study_with(values: list[float]) -> optuna.Study:
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
            "balance": optuna.distributions.CategoricalDistribution(["weights", "sampler"])}  # fmt: skip
    made = optuna.create_study(direction="maximize")
    for i, value in enumerate(values):
        made.add_trial(optuna.trial.create_trial(params={"lr": 1e-4 * (i + 1), "balance": ["weights", "sampler"][i % 2]},
                                                 distributions=dist, value=value))  # fmt: skip
    return made


def test_importance_is_plotted_or_explained(tmp_path):
    found, note = importances(_study_with([0.5, 0.7, 0.6, 0.9]))
    assert found is not None and set(found) == {"lr", "balance"} and abs(sum(found.values()) - 1) < 1e-9
    base = TrainConfig(data=str(tmp_path), model="cnn", members=1)
    write_all(_study_with([0.5, 0.7, 0.6, 0.9]), tmp_path, base, search_space(base), trials=4, folds=2)
    assert (tmp_path / "importance.png").stat().st_size > 0
    for values, why in (([0.5], "1 complete trial"), ([0.6, 0.6], "all scored 0.600")):
        found, note = importances(_study_with(values))
        assert found is None and why in note
        write_all(_study_with(values), tmp_path, base, search_space(base), trials=4, folds=2)
        assert not (tmp_path / "importance.png").exists()  # no stale figure beside the note
        assert why in (tmp_path / "report.md").read_text()


# ---------------------------------------------------------------- a study end to end


def test_a_study_writes_its_files(study, base_json):
    out, output = study
    assert "trial 0:" in output and "trial 1:" in output and "best: trial" in output
    made = load(out)
    assert [t.state.name for t in made.trials] == ["COMPLETE", "COMPLETE"]
    assert made.user_attrs["model"] == "cnn" and made.user_attrs["folds"] == 2
    base = TrainConfig.load(base_json)
    zero = made.trials[0]
    assert zero.user_attrs["defaults"] and zero.params["lr"] == base.lr and zero.params["model_options.width"] == 1.0
    for t in made.trials:
        assert len(t.user_attrs["fold_val_clip_accuracy"]) == 2 and len(t.user_attrs["fold_test_clip_accuracy"]) == 2
        assert t.value == pytest.approx(sum(t.user_attrs["fold_val_clip_accuracy"]) / 2)  # validation, not test
        assert 0 <= t.user_attrs["test_clip_accuracy"] <= 1
    # Every fold's metrics stay; its checkpoints go.
    assert len(list((out / "trials").glob("trial-*/fold-*/metrics.json"))) == 4
    assert not list((out / "trials").rglob("*.pt"))
    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["number"] for r in rows] == ["0", "1"] and "model_options.width" in rows[0] and rows[0]["defaults"] == "True"
    report = (out / "report.md").read_text()
    assert "optimistic" in report and "test clip acc." in report and "Held at the base configuration's value: `window`" in report
    assert "Gain over the base configuration" in report or "is still the best" in report
    # The figure exists exactly when there is something to estimate (see test_importance_is_plotted_or_explained).
    differ = len({t.value for t in made.trials}) == 2
    assert (out / "importance.png").exists() == differ
    assert ("importance.png" in report) == differ


def test_best_json_trains_with_harmonies_train(study, corpus, cache, tmp_path):
    out, _ = study
    best = TrainConfig.load(out / "best.json")
    made = load(out)
    winner = max(made.trials, key=lambda t: (t.value, -t.number))
    assert best.folds == 0 and best.window == 1.0 and best.lr == winner.params["lr"]
    assert best.model_options["width"] == winner.params["model_options.width"] and best.model_options["last_channels"] == 32
    code, output = invoke("train", corpus, "--config", out / "best.json", "--out", tmp_path / "run", "--cache", cache, "--quiet")
    assert code == 0, output
    assert TrainConfig.load(tmp_path / "run" / "config.json").lr == best.lr


def test_rerunning_resumes_and_runs_only_the_missing_trials(study, corpus, base_json, cache, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(study[0], out)
    code, output = invoke(*tune_args(corpus, base_json, cache, out))
    assert code == 0 and "nothing to run" in output
    assert states(out) == ["COMPLETE", "COMPLETE"]
    # A kill leaves the trial it interrupted RUNNING in the database, and its checkpoints on disk.
    load(out).ask()
    (out / "trials" / "trial-0002" / "fold-0").mkdir(parents=True)
    (out / "trials" / "trial-0002" / "fold-0" / "last.pt").write_bytes(b"weights")
    code, output = invoke(*tune_args(corpus, base_json, cache, out, "--trials", 3))
    assert code == 0, output
    assert "trial 2 was interrupted" in output
    made = load(out)
    assert [t.state.name for t in made.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert made.trials[2].user_attrs["interrupted"] and not list((out / "trials").rglob("*.pt"))
    assert made.trials[3].params != made.trials[1].params  # the resumed sampler does not repeat its earlier draws
    assert "fail (interrupted)" in (out / "report.md").read_text()
    with open(out / "trials.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4


def test_a_study_of_another_model_dataset_or_setup_is_refused(study, corpus, base_json, cache, tmp_path):
    out = study[0]
    args = tune_args(corpus, base_json, cache, out)
    code, output = invoke(*args[:3], "lstm", *args[4:])
    assert code == 1 and "is a study of cnn" in output and "choose another --out" in output
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    code, output = invoke(*tune_args(other, base_json, cache, out))
    assert code == 1 and "is a study of cnn on" in output
    code, output = invoke(*tune_args(corpus, base_json, cache, out, "--folds", 3, "--epochs", 2))
    assert code == 1 and "folds 2 -> 3" in output and "epochs 1 -> 2" in output
    assert states(out) == ["COMPLETE", "COMPLETE"]  # nothing ran, nothing changed


def test_a_study_drawn_from_other_choices_is_refused_before_anything_runs(study, corpus, base_json, cache, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    # As if the study had been made by a version of harmonies without one of today's choices.
    out = tmp_path / "study"
    shutil.copytree(study[0], out)
    space = tuple(Param(p.name, p.kind, (*p.domain, "none")) if p.name == "balance" else p for p in SEARCH_SPACES["cnn"])
    monkeypatch.setitem(SEARCH_SPACES, "cnn", space)
    code, output = invoke(*tune_args(corpus, base_json, cache, out, "--trials", 3))
    assert code == 1 and "another search space" in output and "choose another --out" in output
    assert "balance: the study drew from one of weights, sampler, this version searches one of weights, sampler, none" in output
    assert states(out) == ["COMPLETE", "COMPLETE"]  # nothing ran, nothing changed


def test_a_second_process_on_one_study_is_refused(study, corpus, base_json, cache):
    out = study[0]
    with open(out / ".tune.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # another `harmonies tune`, as far as the lock knows
        code, output = invoke(*tune_args(corpus, base_json, cache, out))
    assert code == 1 and "another `harmonies tune` is running" in output


@pytest.mark.parametrize("args, message", [
    (["--trials", 0], "--trials"),
    (["--folds", 1], "--folds"),
    (["--keep", "hidden"], "cannot keep hidden"),
])  # fmt: skip
def test_bad_options_are_clear_errors(corpus, base_json, cache, tmp_path, args, message):
    code, output = invoke(*tune_args(corpus, base_json, cache, tmp_path / "study", *args))
    assert code in (1, 2) and message in output
    assert not (tmp_path / "study" / "study.db").exists() and not (tmp_path / "study" / "trials").exists()


def test_a_base_outside_the_space_names_the_option(corpus, base_json, cache, tmp_path):
    args = [a for a in tune_args(corpus, base_json, cache, tmp_path / "study") if a not in ("--keep", "window")]
    code, output = invoke(*args)
    assert code == 1 and "window 1.0" in output and "--keep" in output
    assert "Traceback" not in output


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_pruned_trials_count_and_are_reported(corpus, base_json, cache, tmp_path, monkeypatch):
    # Median pruning needs five finished trials first; a pruner that always prunes shows the path in two.
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: _AlwaysPrune())
    out = tmp_path / "study"
    code, output = invoke(*tune_args(corpus, base_json, cache, out))
    assert code == 0, output
    assert "trial 0: pruned after 1 fold(s)" in output and "no trial is complete yet (2 of 2 done)" in output
    made = load(out)
    assert [t.state.name for t in made.trials] == ["PRUNED", "PRUNED"]  # counted: nothing more was run
    for t in made.trials:
        assert len(t.user_attrs["fold_val_clip_accuracy"]) == 1 and t.value == t.user_attrs["val_clip_accuracy"]
    assert not (out / "best.json").exists() and not list((out / "trials").rglob("*.pt"))
    assert "No trial is complete yet" in (out / "report.md").read_text()
