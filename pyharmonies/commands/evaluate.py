"""``harmonies evaluate``: a trained run's figures on any dataset with its labels."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Evaluate a trained run on a dataset with the same labels.")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--split", type=click.Choice(["test", "all"]), default="test", show_default=True,
              help="test: the run's saved test split (DATA is the dataset it was trained on); all: every readable clip of DATA.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Where to write metrics.json, report.md, confusion.png (default RUN/eval/<data>-<split>).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(run: Path, data: Path, split: str, out: Path | None, quiet: bool) -> None:
    """Evaluate the best model of RUN on DATA (folder or CSV manifest): per-window and
    per-clip accuracy, macro/weighted F1, per-class figures and a confusion matrix, the
    same report as training writes. Clips of labels the model does not know are reported
    and left out.

    \b
    Examples:
      harmonies evaluate runs/cnn data/synth                 # reproduces the test figures
      harmonies evaluate runs/cnn data/other --split all
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.evaluate import evaluate_run

    try:
        results = evaluate_run(run, data, split=split, progress=not quiet, out=out)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    for level in ("window", "clip"):
        if level in results:
            m = results[level]
            click.echo(f"{level:6s} accuracy {100 * m['accuracy']:.1f}%  macro F1 {m['macro_f1']:.3f}  weighted F1 {m['weighted_f1']:.3f}  (n = {m['n']})")
