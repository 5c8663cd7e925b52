"""``harmonies compare``: training runs side by side, as a Markdown table and a figure."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command(short_help="Compare training runs side by side: a Markdown table and a figure.")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table to this Markdown file (it is always printed).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the figure (PNG). Default: beside --out, as <its stem>.png; without --out, "
                   "no figure unless --plot is given.")
@click.option("--no-plot", is_flag=True, help="No figure, even with --out.")
@click.option("--level", type=click.Choice(["clip", "window"]), default="clip", show_default=True,
              help="Compare per-clip figures (a clip's windows vote by their mean probability) or per-window ones. "
                   "The SVM classifies whole clips: its clip figures are shown, and marked, at either level.")
@click.option("--names", default=None, metavar="A,B,...", help="Names for the runs, in order (default: their folders' names).")
def compare(runs: tuple[Path, ...], out: Path | None, plot: Path | None, no_plot: bool, level: str, names: str | None) -> None:
    """Compare RUN... (folders written by `harmonies train`): cross-validations
    (--folds K) and single runs of the CNN, LSTM or SVM.

    \b
    The table has a row per run, with test accuracy and macro-F1:
      cross-validation   mean ± std over the folds and the 95% confidence interval
      single run         the value on its one test split
    then a row per distinct SVM baseline carried by the runs (fitted on the
    same folds or split, marked "baseline of RUN"), and per-class F1. When
    cross-validations were run on the same folds (same test clips in every
    fold), "Δ vs first (paired)" gives each one's per-fold difference to the
    first: mean ± std and 95% CI. Notes warn of runs on different labels,
    numbers of folds or datasets. Only JSON is read.

    \b
    The figure: accuracy and macro-F1 per run (bars: mean; error bars: std
    over folds; dots: each fold), and per-class F1 per run.

    \b
    Examples:
      harmonies compare runs/cnn-5f runs/lstm-5f runs/svm-5f
      harmonies compare runs/cnn-5f runs/lstm-5f --out table.md          # and table.png
      harmonies compare runs/a runs/b --names cnn,lstm --level window --plot ab.png
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.compare import compare_runs, markdown, plot_comparison

    if no_plot and plot is not None:
        raise click.UsageError("--plot and --no-plot: choose one")
    if plot is None and out is not None and not no_plot:
        plot = out.with_suffix(".png")
    try:
        comparison = compare_runs(runs, level=level, names=names.split(",") if names is not None else None)
        if plot is not None:
            plot_comparison(comparison, plot)
        text = markdown(comparison)
        if out is not None:
            from pyharmonies._atomic import write_atomic

            link = os.path.relpath(plot.resolve(), out.resolve().parent).replace(os.sep, "/") if plot is not None else None
            write_atomic(out, markdown(comparison, plot=link))
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    except OSError as err:  # the table or the figure could not be written
        raise click.ClickException(f"cannot write: {err}") from None
    click.echo(text)
    for path in (out, plot):
        if path is not None:
            click.echo(f"wrote {path}", err=True)
