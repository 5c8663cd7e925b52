"""``harmonies tune``: search training options with Optuna, grouped k-fold per trial."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Search training options (Optuna, k-fold per trial); best.json for train --config.")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--model", type=click.Choice(["cnn", "lstm", "transformer"]), default=None,
              help="The model whose options are searched. Default: the --base-config's model, else cnn.")
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="Trials the study should hold (complete or pruned); a resumed study runs only the missing ones.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="K of the grouped K-fold split each trial trains on (the same folds for every trial).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study folder (study.db, trials/, best.json, report.md, trials.csv, importance.png). "
                   "Default: runs/tune-<model>-<dataset name>.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epoch budget of each fold's run (early stopping may end sooner). Default: the base config's (without one: 10 for the cnn, 30 for the lstm and transformer).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Start no new trial after this many seconds (the running one finishes).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seeds the sampler, the folds and every training run. Default: the base config's (0).")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Feature cache directory. Default: the base config's (.cache/features).")
@click.option("--base-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A training configuration (a run's config.json, or a best.json) holding every option that "
                   "is not searched; its values are trial 0. Default: train's defaults for one network "
                   "(a trial trains one per fold: a base with --members above 1 is refused).")
@click.option("--keep", multiple=True, metavar="NAME",
              help="Hold a searched option at the base config's value (repeatable), e.g. --keep window "
                   "for clips too short for the searched windows, or --keep model_options.width.")
@click.option("--quiet", "-q", is_flag=True, help="One line per trial: no progress bars, epoch or fold lines.")
def tune(data: Path, model: str | None, trials: int, folds: int, out: Path | None, epochs: int | None,
         timeout: float | None, seed: int | None, cache: Path | None, base_config: Path | None,
         keep: tuple[str, ...], quiet: bool) -> None:  # fmt: skip
    """Search training options for a CNN, LSTM or transformer on DATA (as for `harmonies train`).

    Each trial draws options (learning rate, weight decay, mixup, label
    smoothing, window, the model's size and shape, dropout, augmentation,
    class balance, epoch selection) and trains one model per fold of a grouped
    K-fold split. Its score is the mean validation clip accuracy over the
    folds; once five trials are done, a trial that trails their median after
    two folds is pruned. Trial 0 is the base configuration, so the report
    states the gain over it.

    The best score is optimistic (it was picked for being high): each fold's
    test clip accuracy is recorded beside it, never used to choose, and the
    report says so. Quote figures from data the study never saw.

    \b
    Writes, rewritten after every trial:
      study.db        the Optuna study: the same command resumes it after a kill
      best.json       the best trial as a config: harmonies train DATA --config best.json
      report.md       trials, best trial, gain over the base, parameter importance
      trials.csv      a row per trial; importance.png (fANOVA)

    \b
    Examples:
      harmonies tune data/synth --model cnn --trials 30 --epochs 15
      harmonies tune data/gtzan --model lstm --trials 50 --folds 5 --timeout 36000
      harmonies train data/gtzan --config runs/tune-lstm-gtzan/best.json
    """
    import optuna

    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.config import TrainConfig

    # Optuna logs a paragraph per trial at INFO; our own line per trial says what matters.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        base = TrainConfig.load(base_config).to_dict() if base_config else {}
        base["data"] = str(data)
        overrides = {"model": model, "epochs": epochs, "seed": seed, "cache": str(cache) if cache else None}
        base.update({key: value for key, value in overrides.items() if value is not None})
        base.setdefault("members", 1)  # a trial trains one network per fold, whatever train's default
        cfg = TrainConfig.from_dict(base)
        name = data.stem if data.is_file() else data.name
        out = out or Path("runs") / f"tune-{cfg.model}-{name}"
        from pyharmonies.training.tune import tune as run_study

        result = run_study(cfg, out, trials=trials, folds=folds, timeout=timeout, keep=keep, progress=not quiet, echo=click.echo)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    if result.best is not None:
        test = result.best.user_attrs.get("test_clip_accuracy")
        click.echo(f"best: trial {result.best.number}, validation clip accuracy {100 * result.best.value:.1f}%"
                   + (f" (test {100 * test:.1f}%)" if test is not None else "") + f"; {result.done} of {trials} trials done")
        click.echo(f"train it: harmonies train {data} --config {out / 'best.json'}")
    else:
        click.echo(f"no trial is complete yet ({result.done} of {trials} done)")
    click.echo(f"report: {out / 'report.md'}")
