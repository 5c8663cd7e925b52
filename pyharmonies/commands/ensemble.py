"""``harmonies ensemble``: several trained CNN runs averaged into one run, which exports as one model."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Average several trained CNN runs into one run (one exported model).")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The ensemble's run folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def ensemble(runs: tuple[Path, ...], out: Path, quiet: bool) -> None:
    """Average RUN... (two or more CNN runs trained on the same splits) into
    the run OUT: one network whose logits are the mean of the members'.

    On a few hundred real clips, two runs of one recipe differ by several
    points, and averaging them cancels part of that noise (the figures:
    docs/EXPERIMENTS.md). OUT is a run like the others: `harmonies evaluate`,
    `export --int8` (one model file holding every member, at the members'
    summed cost per window) and `classify` take it. Its report puts the
    ensemble beside each member and the SVM baseline on the same split.

    The members must share labels, features, window, network shape, input
    normalisation and splits (so the ensemble's test clips were heard by no
    member): runs of the same data and --seed with another random stream,
    e.g. other --mixup or --average-weights. Runs that held out other
    validation tracks (--val-seed) from the same non-test tracks qualify
    when they share one normaliser (--normalize-over train+val); every
    non-test track then trained some member, and OUT is scored on its test
    tracks only. --folds runs are averaged fold by fold, and OUT gets the
    cross-validation summary.

    \b
    Examples:
      harmonies train data/st --folds 5 --out runs/a
      harmonies train data/st --folds 5 --out runs/b --average-weights 0.998
      harmonies ensemble runs/a runs/b --out runs/ab
      harmonies export runs/ab/fold-0 --int8
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.ensemble import ensemble_folds, ensemble_run, is_folds_run

    try:
        folds = [is_folds_run(r) for r in runs]
        if any(folds) and not all(folds):
            raise click.UsageError("give only --folds runs or only single runs, not both")
        done = (ensemble_folds if all(folds) else ensemble_run)(runs, out, progress=not quiet)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {done / 'report.md'}")
