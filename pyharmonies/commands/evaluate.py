"""``harmonies evaluate``: a trained run's, or an exported bundle's, figures on any dataset with its labels."""

from __future__ import annotations

import re
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
                   "RUN/eval/<data>-<split>; for a bundle nothing is written unless --out is given (with "
                   "--latency-curve a bundle needs it).")
@backend_options
@click.option("--streaming/--windowed", "streaming", default=None,
              help="Bundles: --streaming runs an LSTM bundle's step model as `listen` does, statefully, each clip a "
                   "fresh stream with a result where each window ends (the clip votes by the mean of its results); "
                   "--windowed runs the window model over each window. Default: windowed for the metrics, and for "
                   "--latency-curve the path `listen` takes by default (stateful for an LSTM bundle with a step model).")  # fmt: skip
@click.option("--latency-curve", is_flag=True,
              help="Instead of the metrics: accuracy against the seconds heard, as `listen` answers "
                   "(latency.png, latency.md, latency.json in --out; see below).")  # fmt: skip
@click.option("--smoothing", type=click.Choice(["ema", "vote", "none", "mean"]), default="ema", show_default=True,
              help="With --latency-curve: listen's smoothing (its --smoothing and default), or mean: the running "
                   "mean of the windows heard, evaluation's clip vote.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="With --latency-curve: of the random starting points.")
@click.option("--per", type=click.Choice(["clip", "track"]), default="clip", show_default=True,
              help="With --latency-curve: hear each clip on its own, or each track's test clips joined into one "
                   "stream (minutes of a recording, for datasets cut from long tracks).")  # fmt: skip
@click.option("--with", "others", type=click.Path(exists=True, path_type=Path), multiple=True, metavar="PATH",
              help="With --latency-curve, repeatable: another run, bundle or cross-validation measured on DATA the "
                   "same way, or the latency.json of an earlier --latency-curve; all curves on one figure.")  # fmt: skip
@click.option("--names", default=None, metavar="A,B,...", help="With --latency-curve: the curves' names, in order (default: folder names).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@audio_warnings()  # a truncated file's warning is a "warning:" line
def evaluate(run: Path, data: Path, split: str, out: Path | None, backend: str, precision: str, threads: int,
             streaming: bool | None, latency_curve: bool, smoothing: str, seed: int, per: str, others: tuple[Path, ...],
             names: str | None, quiet: bool) -> None:  # fmt: skip
    """Evaluate RUN on DATA (folder or CSV manifest): per-window and per-clip accuracy,
    macro/weighted F1, per-class figures and a confusion matrix, the same report as
    training writes. Clips of labels the model does not know are reported and left out.

    RUN is a training run (its best PyTorch model is evaluated) or a bundle written by
    `harmonies export` (a folder with manifest.json): the bundle's model file is then run
    by the device runtime, LiteRT/TFLite or ONNX Runtime, without torch, with windows cut
    as in training. --backend, --precision and --threads choose that file and runtime
    (bundles only). A run (or its bundle) trained with --fuse-svm also reports the fused
    answer per clip, which is its answer, and the SVM's alone.

    --streaming (an LSTM bundle with a step model): the bundle as `listen`
    runs it, each clip a fresh stateful stream through the step model (each
    frame once, the state carried, a hop's steps in one call), a result where
    each window would end; "result" accuracy is over those results, clip
    accuracy the vote of their mean probabilities.

    RUN may also be a cross-validation (a folder with fold-0 .. fold-K-1, runs
    or bundles) with --latency-curve: each fold's model is measured on its own
    test clips and the clips pooled.

    --latency-curve: the accuracy, over the clips, of the answer `harmonies
    listen` shows after each number of seconds heard, with listen's windows,
    hop and smoothing (fresh for each clip), the top label whatever its
    confidence. One curve from each clip's start; one from a random window of
    it (uniform, seeded by --seed and the clip, wrapping around to the start so
    every clip counts at every point). There is no answer before the first
    full window: the curves start there. The "time to a trustworthy answer" is
    the first point from which the accuracy stays at or above 90% of its final
    value (every clip heard whole). Each window is classified once. A
    bundle is run the way `listen` runs it (stateful for an LSTM bundle with
    a step model, unless --windowed); a stateful stream heard from a random
    point is a fresh stream started there, wrapping around to the clip's start.

    \b
    Examples:
      harmonies evaluate runs/cnn data/synth                 # reproduces the test figures
      harmonies evaluate runs/cnn data/other --split all
      harmonies evaluate export/cnn data/synth               # the int8 model, on the device runtime
      harmonies evaluate export/cnn data/synth --backend onnx --precision fp32
      harmonies evaluate export/lstm data/synth --streaming  # as listen runs it: stateful
      harmonies evaluate runs/cnn data/synth --latency-curve       # RUN/eval/synth-test/latency.png
      harmonies evaluate runs/cnn data/synth --latency-curve --with runs/lstm --with export/tr/latency.json
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.runtime.bundle import MANIFEST

    if latency_curve:
        _latency(run, data, split, out, backend, precision, threads, streaming, smoothing, seed, per, others, names, quiet)
        return
    if others or names is not None or (smoothing, seed, per) != ("ema", 0, "clip"):
        raise click.UsageError("--smoothing, --seed, --per, --with and --names go with --latency-curve")

    # A folder with a manifest is a bundle; a broken one is then refused by the bundle loader, clearly.
    bundle = (run / MANIFEST).is_file()
    if not bundle and (backend, precision, threads) != ("auto", "auto", 1):
        raise click.UsageError(f"{run} is a training run (no {MANIFEST}); --backend, --precision and --threads apply to bundles")
    if not bundle and streaming:
        raise click.UsageError(f"{run} is a training run (no {MANIFEST}); --streaming runs a bundle's step model: "
                               "export the run (harmonies export) and evaluate the bundle")  # fmt: skip
    try:
        if bundle:
            from pyharmonies.training.bundle_eval import evaluate_bundle

            results = evaluate_bundle(run, data, split=split, backend=backend, precision=precision, threads=threads,
                                      progress=not quiet, out=out, streaming=bool(streaming))  # fmt: skip
            b = results["backend"]
            if streaming:
                click.echo(f"{run}: {b['describe']}; stateful, a fresh stream per clip, a result every {b['hop_frames']} frames")
            else:
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
            shown = "result" if streaming and level == "window" else level
            click.echo(f"{shown:6s} accuracy {100 * m['accuracy']:.1f}%  macro F1 {m['macro_f1']:.3f}  weighted F1 {m['weighted_f1']:.3f}  (n = {m['n']})")
    if "fused" in results:  # a run or bundle trained with --fuse-svm: its answer is the fusion
        m, svm = results["fused"]["clip"], results["fused"]["svm_clip"]
        click.echo(f"fused with the SVM (weight {results['fused']['weight']:g}): clip accuracy {100 * m['accuracy']:.1f}%  "
                   f"macro F1 {m['macro_f1']:.3f}  (the SVM alone {100 * svm['accuracy']:.1f}%)")  # fmt: skip
    files = results.get("files", {})
    if files.get("failed"):  # files that could not be read were left out: the figures are of the others
        click.echo(f"{files['failed']} of {files['total']} files failed", err=True)
        click.get_current_context().exit(1)


def _latency(run: Path, data: Path, split: str, out: Path | None, backend: str, precision: str, threads: int,
             streaming: bool | None, smoothing: str, seed: int, per: str, others: tuple[Path, ...], names: str | None,
             quiet: bool) -> None:  # fmt: skip
    """``--latency-curve``: measure RUN and every --with, write the files, print the headline figures."""
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.latency import is_bundle_like, measure
    from pyharmonies.training.latency_report import read_curves, write_latency

    models = [run, *(p for p in others if p.is_dir())]
    runtime_options = (backend, precision, threads) != ("auto", "auto", 1)
    if runtime_options and not any(is_bundle_like(p) for p in models):
        raise click.UsageError("--backend, --precision and --threads apply to bundles; no bundle is measured")
    if streaming is not None and not any(is_bundle_like(p) for p in models):
        raise click.UsageError("--streaming and --windowed choose a bundle's path; no bundle is measured (runs are windowed)")
    if out is None:
        if is_bundle_like(run):
            raise click.UsageError(f"{run} is a bundle: give --out DIR for the latency files (a bundle is never written into)")
        out = run / "eval" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', data.name)}-{split}"
    curves = []
    try:
        saved = {path: read_curves(path) for path in others if path.is_file()}  # read first: a bad file fails before any work
        for path in [run, *others]:
            if path in saved:
                curves += saved[path]
                continue
            options = dict(backend=backend, precision=precision, threads=threads, streaming=streaming) if is_bundle_like(path) else {}
            curves.append(measure(path, data, split=split, smoothing=smoothing, seed=seed, per=per, progress=not quiet, **options))
        if names is not None:
            given = [n.strip() for n in names.split(",")]
            if len(given) != len(curves):
                raise click.UsageError(f"--names gives {len(given)} names for {len(curves)} curves")
            for curve, name in zip(curves, given):
                curve["name"] = name
        files = write_latency(out, curves, data=str(data), split=split)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    for c in curves:
        for problem in c.get("problems", []):
            click.echo(f"left out ({c['name']}): {problem['path']}: {problem['reason']}", err=True)
    for c in curves:
        folds = f", {c['folds']} folds" if c.get("folds") else ""
        path = ", stateful" if c.get("path") == "stateful" else ""
        click.echo(f"{c['name']} ({c['model']}{folds}{path}): {c['clips']} {c.get('per', 'clip')}s; window {c['window_seconds']:.2f} s, "
                   f"an answer every {c['hop_seconds']:.2f} s; smoothing {c['smoothing']}")  # fmt: skip
        for order, what in (("from_start", "from the start"), ("random_start", "from a random point")):
            f = c[order]
            click.echo(f"  {what:20s} final accuracy {100 * f['final']:5.1f}%; trustworthy (>= {100 * c['fraction']:g}% of it) "
                       f"after {f['seconds']:.2f} s (first reached at {f['first_seconds']:.2f} s)")  # fmt: skip
        what = "result" if c.get("path") == "stateful" else "window"
        click.echo(f"  {'vote':20s} {100 * c['clip_accuracy']:5.1f}% (the mean of every {what} of each {c.get('per', 'clip')}, as evaluate votes)")
    click.echo(f"wrote {files['png']}, {files['markdown'].name}, {files['json'].name}")
