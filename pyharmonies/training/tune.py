"""Hyper-parameter search (``harmonies tune``): an Optuna study over training options.

Each trial draws training options from :data:`SEARCH_SPACES` and trains one
model per fold of a grouped K-fold split of the dataset, the same folds for
every trial. Its score is the mean over folds of the *validation* clip
accuracy (a clip's prediction is the mean of its windows' probabilities);
the running mean is reported to Optuna after each fold, and a
:class:`optuna.pruners.MedianPruner` stops trials that trail the others.
Trial 0 is the base configuration's own values, so the report can state
what the search gained over it.

Honesty about the numbers: choosing the best of many trials by their
validation score makes that score optimistic for the chosen one (it was
picked because it was high). Each fold's test groups take no part in the
choice; their clip accuracy is kept beside each trial, but even that figure
is read after the fact for a configuration picked among many, so a claim
about the final model belongs to data that the search never saw.

The study lives in ``OUT/study.db`` (SQLite): running the same command again
after a kill resumes it and runs only the trials still missing; a trial the
kill interrupted is marked failed and does not count. One process per study
folder (a lock file refuses a second).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyharmonies.errors import ParameterError
from pyharmonies.training import locks
from pyharmonies.training.config import TrainConfig

__all__ = ["SEARCH_SPACES", "Param", "TuneResult", "best_trial", "config_with", "default_values", "search_space", "suggest",
           "tune"]

#: The one study a study folder holds.
STUDY_NAME = "harmonies-tune"

#: Trial states that count towards ``--trials``: a pruned trial was judged, a failed one was not.
DONE_STATES = ("COMPLETE", "PRUNED")

#: The figures kept per fold, and their means, as trial user attributes (``fold_val_clip_accuracy``...).
_FIGURES = tuple((split, metric) for split in ("val", "test") for metric in ("accuracy", "macro_f1"))

#: Base-configuration fields that may differ when a study is resumed: where features are cached
#: and how they are loaded, the torch device. The others shape every trial's score.
RESUME_MAY_CHANGE = ("data", "out", "cache", "use_cache", "device", "workers", "folds")


@dataclass(frozen=True)
class Param:
    """One searched training option.

    ``name`` is a :class:`TrainConfig` field, or ``model_options.<field>`` /
    ``augment_options.<field>`` for a field of the model's or the
    augmentation's config. ``kind`` is ``"log"`` or ``"uniform"`` (a float in
    ``domain = (low, high)``), ``"int"`` (``domain = (low, high, step)``) or
    ``"choice"`` (``domain`` lists the values).
    """

    name: str
    kind: str
    domain: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value this parameter can take."""
        if self.kind == "choice":
            return value in self.domain
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low, high = self.domain[0], self.domain[1]
        if self.kind == "int":
            return low <= value <= high and (value - low) % self.domain[2] == 0
        return low <= value <= high

    def describe(self) -> str:
        """The domain in words, e.g. ``log-uniform in [0.0003, 0.01]``."""
        if self.kind == "choice":
            return "one of " + ", ".join(str(v) for v in self.domain)
        if self.kind == "int":
            return f"integer in [{self.domain[0]}, {self.domain[1]}] step {self.domain[2]}"
        return f"{'log-uniform' if self.kind == 'log' else 'uniform'} in [{self.domain[0]:g}, {self.domain[1]:g}]"


# Shared by the neural models.
_OPTIMISER = (
    Param("lr", "log", (3e-4, 1e-2)),  # AdamW peak rate
    Param("weight_decay", "log", (1e-4, 1e-1)),
    Param("mixup", "uniform", (0.0, 1.0)),  # mixup alpha; 0 turns it off
    Param("label_smoothing", "uniform", (0.0, 0.2)),
    Param("average_weights", "choice", (0.0, 0.99, 0.998)),  # keep the raw weights, or their average over ~100 / ~500 steps
    # Seconds per window. A 10 s clip gives 9, 5 and 3 windows at the default hop (half a window):
    # longer windows would leave too few windows per clip to average into a clip's prediction.
    Param("window", "choice", (2.0, 3.0, 5.0)),
)
_CHOICES = (
    Param("balance", "choice", ("weights", "sampler")),
    Param("select_by", "choice", ("window_macro_f1", "clip_accuracy", "last")),  # what picks the weights kept
)

#: What ``harmonies tune`` searches, per model. Every range holds the default value, so the
#: defaults can be trial 0. The CNN's width stays at or below 1.0: CNNConfig's defaults are sized to
#: the 250 KB int8 budget, and parameters grow about as width squared. ``augment_options`` apply
#: only when the base augments.
SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "cnn": _OPTIMISER + (
        Param("model_options.width", "choice", (0.5, 0.75, 1.0)),
        Param("model_options.dropout", "uniform", (0.0, 0.5)),
        Param("model_options.pool", "choice", ("global", "time", "meanmax")),  # the bands averaged, kept apart, or mean and max
        Param("augment_options.p_mask", "uniform", (0.0, 1.0)),  # SpecAugment masks
        Param("augment_options.p_eq", "uniform", (0.0, 1.0)),  # a random smooth equaliser
        Param("augment_options.eq_db", "uniform", (3.0, 12.0)),  # its strongest peak, dB
        Param("augment_options.p_bandlimit", "uniform", (0.0, 1.0)),  # a random low-pass
        Param("augment_options.p_pitch", "uniform", (0.0, 1.0)),  # played higher or lower
        Param("augment_options.pitch_semitones", "uniform", (1.0, 4.0)),
        Param("augment_options.p_stretch", "uniform", (0.0, 1.0)),  # played faster or slower
        Param("augment_options.stretch", "uniform", (0.05, 0.3)),
        Param("augment_options.p_mix_class", "uniform", (0.0, 1.0)),  # another track of the class played along
    ) + _CHOICES,
    "lstm": _OPTIMISER + (
        Param("model_options.hidden", "int", (32, 128, 16)),
        Param("model_options.layers", "int", (1, 2, 1)),
        Param("model_options.dropout", "uniform", (0.0, 0.5)),
    ) + _CHOICES,
    # Four heads throughout (every width is a multiple of 4). From 14k parameters (d_model 32, one
    # layer) to 195k (96, three layers, learned positions, class token): within the CNN's 250 KB int8 budget.
    "transformer": _OPTIMISER + (
        Param("model_options.d_model", "choice", (32, 64, 96)),
        Param("model_options.layers", "int", (1, 3, 1)),
        Param("model_options.dropout", "uniform", (0.0, 0.5)),
        Param("model_options.positions", "choice", ("sinusoidal", "learned")),
        Param("model_options.pooling", "choice", ("mean", "cls")),
    ) + _CHOICES,
}  # fmt: skip


def search_space(base: TrainConfig, keep: Sequence[str] = ()) -> tuple[Param, ...]:
    """The parameters searched for ``base.model``, less those in ``keep`` (held at the base's values).

    Augmentation parameters are left out when ``base.augment`` is off (they would change nothing).

    Raises
    ------
    ParameterError
        A model with no search space (svm), or a name in ``keep`` that is not searched.
    """
    if base.model not in SEARCH_SPACES:
        raise ParameterError(f"tune searches {' or '.join(SEARCH_SPACES)} training options, not {base.model!r}")
    space = SEARCH_SPACES[base.model]
    names = [p.name for p in space]
    unknown = sorted(set(keep) - set(names))
    if unknown:
        raise ParameterError(f"cannot keep {', '.join(unknown)}: not searched for {base.model} (searched: {', '.join(names)})")
    return tuple(p for p in space if p.name not in keep and (base.augment or not p.name.startswith("augment_options.")))


def default_values(base: TrainConfig, space: Sequence[Param]) -> dict[str, Any]:
    """The value of each parameter in ``base`` (a field left unset: its config's default).

    Raises
    ------
    ParameterError
        A value outside its parameter's domain (it could not be trial 0); the message
        suggests ``--keep``.
    """
    from pyharmonies.data.augment import AugmentConfig
    from pyharmonies.models.registry import model_config

    groups = {
        "model_options": model_config(base.model, base.model_options),
        "augment_options": AugmentConfig.from_dict(base.augment_options),
    }
    values, outside = {}, []
    for p in space:
        group, _, field = p.name.rpartition(".")
        value = getattr(groups[group] if group else base, field)
        if not p.contains(value):
            outside.append(f"{p.name} {value!r} is not {p.describe()}")
        values[p.name] = value
    if outside:
        raise ParameterError(f"the base configuration is outside the search space ({'; '.join(outside)}): "
                             f"hold it fixed with --keep NAME, or change the base")  # fmt: skip
    return values


def config_with(base: TrainConfig, params: dict[str, Any], **fields: Any) -> TrainConfig:
    """``base`` with the trial's ``params`` applied (model and augmentation options merged
    into the base's), and then ``fields`` (e.g. ``out``)."""
    values = base.to_dict()
    for name, value in params.items():
        group, _, field = name.rpartition(".")
        if group:
            values[group] = {**values[group], field: value}
        else:
            values[field] = value
    return TrainConfig.from_dict({**values, **fields})


def suggest(trial: Any, space: Sequence[Param]) -> dict[str, Any]:
    """Draw each parameter of ``space`` from an ``optuna.Trial``."""
    params = {}
    for p in space:
        if p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.domain))
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, p.domain[0], p.domain[1], step=p.domain[2])
        else:
            params[p.name] = trial.suggest_float(p.name, p.domain[0], p.domain[1], log=p.kind == "log")
    return params


@dataclass
class TuneResult:
    """What :func:`tune` leaves behind."""

    out: Path  # the study folder
    done: int  # trials that count (complete or pruned), this session's included
    interrupted: list[int]  # trials a kill had left running, marked failed on this resume
    best: Any | None  # the best complete optuna FrozenTrial, or None


def tune(
    base: TrainConfig,
    out: str | Path,
    *,
    trials: int,
    folds: int = 5,
    timeout: float | None = None,
    keep: Sequence[str] = (),
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search training options for ``base.model`` on ``base.data``; see the module docstring.

    Parameters
    ----------
    base : TrainConfig
        The fixed part of every trial (and trial 0's values). Its ``seed``
        seeds the sampler, the folds and every training run; ``folds`` and
        ``out`` are ignored.
    out : path-like
        The study folder: ``study.db``, ``trials/trial-NNNN/fold-K`` (one run
        per fold, checkpoints deleted when the trial ends), ``best.json``,
        ``report.md``, ``trials.csv``, ``importance.png``.
    trials : int
        Trials the study should hold, complete or pruned; a resumed study
        runs only the missing ones.
    folds : int
        K of the grouped K-fold split (>= 2).
    timeout : float, optional
        Seconds after which no new trial starts (the running one finishes).
    keep : sequence of str
        Parameters of the search space held at the base's values.
    progress : bool
        Progress bars and per-epoch lines from training, and a line per fold.
    echo : callable, optional
        Receives the progress lines (one per trial, and per fold with ``progress``).

    Returns
    -------
    TuneResult

    Raises
    ------
    ParameterError
        Bad arguments, a study folder made for another model, dataset or
        options, another process on the same study, or a fold with no
        validation clips.
    """
    import optuna

    from pyharmonies.training import tune_report

    say = echo or (lambda line: None)
    if trials < 1:
        raise ParameterError(f"trials must be at least 1, got {trials}")
    if folds < 2:
        raise ParameterError(f"folds must be at least 2, got {folds}")
    if timeout is not None and not timeout > 0:
        raise ParameterError(f"timeout must be positive, got {timeout}")
    if base.members != 1:
        raise ParameterError(f"tune searches one network's training options: the base configuration's members must be 1, "
                             f"not {base.members}; train the best config with --members N afterwards")  # fmt: skip
    if not base.val > 0:
        raise ParameterError("tune scores trials on validation clips: the base configuration's val must be above 0")
    base = TrainConfig.from_dict({**base.to_dict(), "folds": 0})
    setup = _setup(base, folds, keep)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _study_lock(out):
        db = out / "study.db"
        storage = _storage(db) if db.exists() else None
        study = _existing_study(storage) if storage is not None else None
        if study is not None:  # another model's or dataset's study is the first thing to say
            _check_claim(study, out, setup)
        space = search_space(base, keep)
        if study is not None:
            _check_space(study, out, space)
        defaults = default_values(base, space)
        if study is None:  # made only now, so that bad options leave no database behind
            storage = storage or _storage(db)
            study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize")
        if not study.user_attrs:
            for key, value in setup.items():
                study.set_user_attr(key, value)
        interrupted = _fail_interrupted(study, storage)
        for number in interrupted:
            _drop_checkpoints(_trial_dir(out, number))
            say(f"trial {number} was interrupted: marked failed, it does not count")
        # A fresh sampler forgets the draws of an earlier session: seeding it by the number of trials
        # already in the study keeps a resumed study from drawing the same options again.
        study.sampler = optuna.samplers.TPESampler(seed=_sampler_seed(base.seed, len(study.trials)))
        # One fold's validation set is small: compare the mean of two folds or more before pruning.
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        missing = trials - _count_done(study)
        if missing > 0 and not _has_defaults(study):
            study.enqueue_trial(defaults, user_attrs={"defaults": True})
        fold_keys = _fold_keys(base, folds)

        stale = True  # whether the report files lag behind the study

        def objective(trial: optuna.Trial) -> float:
            nonlocal stale
            stale = True
            return _run_trial(trial, base, space, fold_keys, out, progress=progress, say=say)

        def after(study: optuna.Study, frozen: Any) -> None:
            nonlocal stale
            tune_report.write_all(study, out, base, space, trials=trials, folds=folds)
            stale = False
            say(_trial_line(study, frozen))

        try:
            if missing > 0:
                study.optimize(objective, n_trials=missing, timeout=timeout, callbacks=[after])
            else:
                say(f"{out}: the study already holds {_count_done(study)} of {trials} trials; nothing to run")
        finally:
            if stale:  # a trial failed (no callback), or nothing ran
                tune_report.write_all(study, out, base, space, trials=trials, folds=folds)
        return TuneResult(out=out, done=_count_done(study), interrupted=interrupted, best=best_trial(study))


def _run_trial(trial: Any, base: TrainConfig, space: Sequence[Param], fold_keys: list[dict[str, set[str]]], out: Path,
               *, progress: bool, say: Callable[[str], None]) -> float:  # fmt: skip
    """Train the trial's options on every fold; the mean validation clip accuracy."""
    import optuna

    from pyharmonies.training.loop import train_run

    params = suggest(trial, space)
    trial_dir = _trial_dir(out, trial.number)
    if trial_dir.exists():  # left by a study whose database was removed: not this trial's
        shutil.rmtree(trial_dir)
    seen: dict[str, list[float]] = {f"{split}_clip_{metric}": [] for split, metric in _FIGURES}
    try:
        for k, keys in enumerate(fold_keys):
            t0 = time.perf_counter()
            run = train_run(config_with(base, params, out=str(trial_dir / f"fold-{k}")), progress=progress, split_keys=keys)
            splits = json.loads((run / "metrics.json").read_text())["splits"]
            for split in ("val", "test"):
                if split not in splits:
                    raise ParameterError(f"fold {k} has no {split} clips: each class needs more {base.group_by} groups "
                                         "(or readable files) for this many folds")  # fmt: skip
            for split, metric in _FIGURES:
                seen[f"{split}_clip_{metric}"].append(float(splits[split]["clip"][metric]))
                trial.set_user_attr(f"fold_{split}_clip_{metric}", seen[f"{split}_clip_{metric}"])
            running = _mean(seen["val_clip_accuracy"])
            if progress:
                say(f"trial {trial.number} fold {k + 1}/{len(fold_keys)}: validation clip accuracy "
                    f"{seen['val_clip_accuracy'][-1]:.3f} (test {seen['test_clip_accuracy'][-1]:.3f}), "
                    f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
            trial.report(running, step=k)
            # After the last fold the trial is complete: pruning it then would only hide its score.
            if k < len(fold_keys) - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"mean validation clip accuracy {running:.3f} after {k + 1} folds")
    finally:
        for name, values in seen.items():
            if values:
                trial.set_user_attr(name, _mean(values))
        _drop_checkpoints(trial_dir)
    return _mean(seen["val_clip_accuracy"])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _fold_keys(base: TrainConfig, folds: int) -> list[dict[str, set[str]]]:
    """Clip keys per split of each fold: grouped, stratified, seeded by ``base.seed``, as ``train --folds``."""
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.data.splits import group_kfold

    index = open_dataset(base.data)
    made = group_kfold(index.clips, folds, group_by=base.group_by, seed=base.splits_seed, val=base.val)
    return [{split: {index.clips[i].key for i in members} for split, members in fold.items()} for fold in made]


def _trial_dir(out: Path, number: int) -> Path:
    return out / "trials" / f"trial-{number:04d}"


def _drop_checkpoints(trial_dir: Path) -> None:
    """Delete a finished trial's weights (a trial is judged by its metrics; disk is not free)."""
    if trial_dir.exists():
        for path in trial_dir.rglob("*.pt"):
            path.unlink(missing_ok=True)


def _setup(base: TrainConfig, folds: int, keep: Sequence[str]) -> dict[str, Any]:
    """What makes two trials comparable: a resumed study must have the same (JSON values)."""
    fixed = {k: v for k, v in base.to_dict().items() if k not in RESUME_MAY_CHANGE}
    setup = {"model": base.model, "data": str(Path(base.data).resolve()), "folds": folds, "keep": sorted(keep), "base": fixed}
    return json.loads(json.dumps(setup))  # tuples become lists, as the study database keeps them


def _storage(db: Path) -> Any:
    """The SQLite database of a study (made if absent)."""
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{db.resolve()}")


def _existing_study(storage: Any) -> Any | None:
    """The study in ``storage``, or ``None`` when it holds none yet."""
    import optuna

    try:
        return optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except KeyError:
        return None


def _check_claim(study: Any, out: Path, setup: dict[str, Any]) -> None:
    """Refuse a study made for another model, dataset or options (an empty one is anyone's)."""
    attrs = study.user_attrs
    if not attrs and not study.trials:
        return
    where = out / "study.db"
    if attrs.get("model") != setup["model"] or attrs.get("data") != setup["data"]:
        raise ParameterError(f"{where} is a study of {attrs.get('model')} on {attrs.get('data')}, not {setup['model']} "
                             f"on {setup['data']}: choose another --out")  # fmt: skip
    diffs = [f"{key} {attrs.get(key)!r} -> {setup[key]!r}" for key in ("folds", "keep") if attrs.get(key) != setup[key]]
    saved = attrs.get("base", {})
    diffs += [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in sorted(setup["base"].items()) if saved.get(key) != value]
    if diffs:
        raise ParameterError(f"{where} was made with other options ({'; '.join(diffs)}): resume it with its own "
                             f"options, or choose another --out")  # fmt: skip


def _check_space(study: Any, out: Path, space: Sequence[Param]) -> None:
    """Refuse to resume a study whose trials drew a parameter's choices from another list.

    Optuna cannot add or drop a categorical value in a running study (it fails
    every later trial); a study made by an earlier version of the search
    space is refused up front instead, naming each such parameter. Changed
    numeric ranges are allowed, as Optuna allows them.
    """
    import optuna

    now = {p.name: p for p in space}
    changed: dict[str, str] = {}
    for trial in study.trials:
        for name, drawn in trial.distributions.items():
            if name in now and name not in changed:
                try:
                    optuna.distributions.check_distribution_compatibility(drawn, _distribution(now[name]))
                except ValueError:
                    changed[name] = f"{name}: the study drew from {_describe(drawn)}, this version searches {now[name].describe()}"
    if changed:
        raise ParameterError(f"{out / 'study.db'} was made with another search space ({'; '.join(changed.values())}): "
                             "resume it with the version of harmonies that made it, or choose another --out")  # fmt: skip


def _distribution(p: Param) -> Any:
    """The Optuna distribution :func:`suggest` draws ``p`` from."""
    import optuna

    if p.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(p.domain))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(p.domain[0], p.domain[1], step=p.domain[2])
    return optuna.distributions.FloatDistribution(p.domain[0], p.domain[1], log=p.kind == "log")


def _describe(distribution: Any) -> str:
    """An Optuna distribution in the words of :meth:`Param.describe`."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return "one of " + ", ".join(str(v) for v in choices)
    return f"[{distribution.low:g}, {distribution.high:g}]"


def _fail_interrupted(study: Any, storage: Any) -> list[int]:
    """Mark trials left RUNNING (by a kill: the lock rules out a live process) as failed."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        numbers.append(t.number)
    return numbers


def _count_done(study: Any) -> int:
    return sum(t.state.name in DONE_STATES for t in study.get_trials(deepcopy=False))


def _has_defaults(study: Any) -> bool:
    """Whether the base's values were, or will be, a trial (a failed one will be again)."""
    trials = study.get_trials(deepcopy=False)
    return any(t.user_attrs.get("defaults") and t.state.name in DONE_STATES + ("WAITING",) for t in trials)


def best_trial(study: Any) -> Any | None:
    """The complete trial with the highest score (the earliest of equals), or ``None``."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def _sampler_seed(seed: int, trials_so_far: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([seed % 2**32, trials_so_far]).generate_state(1)[0])


def _trial_line(study: Any, trial: Any) -> str:
    """One line per trial: its state and scores, and the best so far."""
    test = trial.user_attrs.get("test_clip_accuracy")
    test_text = f" (test {test:.3f})" if test is not None else ""
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    if trial.state.name == "COMPLETE":
        text = f"trial {trial.number}: validation clip accuracy {trial.value:.3f}{test_text}, {seconds:.0f} s"
    elif trial.state.name == "PRUNED":
        folds = len(trial.user_attrs.get("fold_val_clip_accuracy", []))
        text = f"trial {trial.number}: pruned after {folds} fold(s) at {trial.value:.3f}, {seconds:.0f} s"
    else:
        text = f"trial {trial.number}: {trial.state.name.lower()}"
    best = best_trial(study)
    if best is not None:
        text += f"; best so far: trial {best.number}, {best.value:.3f}"
    return text


def _study_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``OUT/.tune.lock`` for the study's lifetime: a second process on the folder is refused."""
    path = out / ".tune.lock"
    return locks.hold(path, f"{out}: another `harmonies tune` is running on this study (it holds {path})")

