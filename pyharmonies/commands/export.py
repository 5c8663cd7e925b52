"""``harmonies export``: a trained run becomes a verified bundle for the device."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Export a trained run as an ONNX/TFLite bundle, int8 optional, verified.")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--int8", is_flag=True, help="Also write int8 files: static int8 for the CNN (full integer TFLite with int8 input "
              "and output; QDQ ONNX), dynamic-range int8 for the LSTM (int8 weights).")  # fmt: skip
@click.option("--format", "formats", default="onnx,tflite", show_default=True, metavar="LIST",
              help="Comma-separated runtimes to write files for: onnx, tflite.")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The bundle folder (default export/<run directory name>).")  # fmt: skip
@click.option("--calibration", type=click.IntRange(min=1), default=200, show_default=True,
              help="Training windows that calibrate the int8 ranges.")  # fmt: skip
@click.option("--max-drop", type=float, default=2.0, show_default=True,
              help="Fail when an int8 file's accuracy is more than this many points below its runtime's fp32 file.")  # fmt: skip
@click.option("--allow-drop", is_flag=True, help="Finalise the bundle even when int8 drops more than --max-drop (the report says so).")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="The run's dataset, if it moved since training (default: the path in RUN/config.json).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def export(run: Path, int8: bool, formats: str, out: Path | None, calibration: int, max_drop: float, allow_drop: bool,
           data: Path | None, quiet: bool) -> None:  # fmt: skip
    """Export the best model of RUN (a cnn, lstm or transformer run of `harmonies train`) as a bundle:
    model.fp32.onnx and model.fp32.tflite, with --int8 also model.int8.onnx and
    model.int8.tflite, plus manifest.json (labels, FeatureConfig, input window and
    normalisation, sha256 per file) and report.md.

    Every export is verified on the run's validation windows: accuracy of PyTorch and of
    each file, top-1 agreement with PyTorch, the largest logit difference (fp32 files
    must stay within 1e-4), sizes and single-thread latency. If a check fails, the files
    and report.md are left in the folder but manifest.json is not written (no runtime
    loads the bundle) and the command exits with status 1. The format is documented in
    export/README.md.

    \b
    Examples:
      harmonies export runs/cnn --int8                    # -> export/cnn
      harmonies export runs/lstm --int8 --format tflite --out export/lstm-pi
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.export import export_run

    try:
        bundle = export_run(run, out, int8=int8, formats=formats, calibration=calibration, max_drop=max_drop,
                            allow_drop=allow_drop, progress=not quiet, data=data)  # fmt: skip
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"bundle: {bundle}  (report: {bundle / 'report.md'})")
