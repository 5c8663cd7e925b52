"""``harmonies evaluate``: a trained run's, or an exported bundle's, figures on any dataset with its labels."""

from __future__ import annotations

from pathlib import Path

import click

from pyharmonies.commands._common import audio_warnings
from pyharmonies.commands.classify import backend_options


@click.command(short_help="Evaluate a trained run or an exported bundle on a dataset with the same labels.")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--split", type=click.Choice(["test", "all"]), default="test", show_default=True,
              help="test: the run's saved test split (DATA is the dataset it was trained on; for a bundle, the "
                   "splits.json of the run it was exported from); all: every readable clip of DATA.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write metrics.json, report.md (and confusion.png for a run). Default for a run: "
                   "RUN/eval/<data>-<split>; for a bundle nothing is written unless --out is given.")
@backend_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@audio_warnings()  # a truncated file's warning is a "warning:" line
def evaluate(run: Path, data: Path, split: str, out: Path | None, backend: str, precision: str, threads: int, quiet: bool) -> None:
    """Evaluate RUN on DATA (folder or CSV manifest): per-window and per-clip accuracy,
    macro/weighted F1, per-class figures and a confusion matrix, the same report as
    training writes. Clips of labels the model does not know are reported and left out.

    RUN is a training run (its best PyTorch model is evaluated) or a bundle written by
    `harmonies export` (a folder with manifest.json): the bundle's model file is then run
    by the device runtime, LiteRT/TFLite or ONNX Runtime, without torch, with windows cut
    as in training. --backend, --precision and --threads choose that file and runtime
    (bundles only).

    \b
    Examples:
      harmonies evaluate runs/cnn data/synth                 # reproduces the test figures
      harmonies evaluate runs/cnn data/other --split all
      harmonies evaluate export/cnn data/synth               # the int8 model, on the device runtime
      harmonies evaluate export/cnn data/synth --backend onnx --precision fp32
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.runtime.bundle import MANIFEST

    # A folder with a manifest is a bundle; a broken one is then refused by the bundle loader, clearly.
    bundle = (run / MANIFEST).is_file()
    if not bundle and (backend, precision, threads) != ("auto", "auto", 1):
        raise click.UsageError(f"{run} is a training run (no {MANIFEST}); --backend, --precision and --threads apply to bundles")
    try:
        if bundle:
            from pyharmonies.training.bundle_eval import evaluate_bundle

            results = evaluate_bundle(run, data, split=split, backend=backend, precision=precision, threads=threads,
                                      progress=not quiet, out=out)  # fmt: skip
            b = results["backend"]
            click.echo(f"{run}: {b['precision']} {b['runtime']} ({b['provider']}, {b['file']})")
            for problem in results["problems"]:
                click.echo(f"left out: {problem['path']}: {problem['reason']}", err=True)
        else:
            from pyharmonies.training.evaluate import evaluate_run

            results = evaluate_run(run, data, split=split, progress=not quiet, out=out)
            for problem in results.get("problems", []):
                click.echo(f"left out: {problem['path']}: {problem['reason']}", err=True)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    for level in ("window", "clip"):
        if level in results:
            m = results[level]
            click.echo(f"{level:6s} accuracy {100 * m['accuracy']:.1f}%  macro F1 {m['macro_f1']:.3f}  weighted F1 {m['weighted_f1']:.3f}  (n = {m['n']})")
    files = results.get("files", {})
    if files.get("failed"):  # files that could not be read were left out: the figures are of the others
        click.echo(f"{files['failed']} of {files['total']} files failed", err=True)
        click.get_current_context().exit(1)
