"""``harmonies classify``: whole audio files through a bundle, windows voted.

Device side: the command runs the bundle's model with LiteRT/TFLite or ONNX
Runtime and never imports torch.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click

from pyharmonies.commands._common import FileProgress, audio_arguments, error_message

BAR_WIDTH = 24


def backend_options(func: Any) -> Any:
    """``--backend``, ``--precision`` and ``--threads``, shared with ``evaluate``."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(["auto", "tflite", "onnx"]),
            default="auto",
            show_default=True,
            help="Inference runtime. auto: ai-edge-litert, else tflite-runtime, else onnxruntime "
            "(among the runtimes the bundle has a file for).",
        ),
        click.option(
            "--precision",
            type=click.Choice(["auto", "int8", "fp32"]),
            default="auto",
            show_default=True,
            help="Model file to run. auto: the int8 file when the bundle has one, else fp32.",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Runtime threads (1: one core, as on the device).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _bar(p: float, width: int = BAR_WIDTH) -> str:
    full, empty = "█", "·"
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        (full + empty).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        full, empty = "#", "."
    n = int(round(max(0.0, min(1.0, p)) * width))
    return full * n + empty * (width - n)


@click.command(short_help="Classify audio files with an exported bundle.")
@click.argument("bundle", type=click.Path(path_type=Path))
@audio_arguments
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=3, show_default=True, help="Labels shown per file.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line and file: path, label, top (label, prob), probs (every label), "
    "duration_s, padded, windows (start_s, end_s, label, prob); a failed file gives "
    '{"path", "error"}.',
)
@click.option(
    "--streaming",
    is_flag=True,
    help="LSTM bundles: run the step model over each file as one stream, the state carried from step to step "
    "(each frame through the model once; a hop's steps in one call where the bundle has a hop model), and vote "
    "over its outputs at the windows' ends.",
)
@backend_options
def classify(
    bundle: Path, audio: tuple[Path, ...], top_k: int, as_json: bool, streaming: bool, backend: str, precision: str, threads: int
) -> None:
    """Classify each AUDIO file with the model in BUNDLE (a directory that
    `harmonies export` wrote).

    Each file is decoded, mixed to mono and resampled to the bundle's rate,
    its features are computed by the same C core as in training, and the
    model classifies windows of the bundle's length (half a window apart; a
    file shorter than one window is padded with silence). The file's label
    is the vote: the mean of the windows' probabilities. A bundle trained
    with --fuse-svm fuses the vote with the SVM's answer: the mean over the
    file's clip-long pieces (10 s on the soundtracks set) of its answer on
    each piece's frame-vector statistics (--json then also gives model_probs
    and svm_probs).

    Files are read a block at a time, so memory does not grow with their
    length: an hour-long recording needs no more than a minute's.

    The bundle is checked first (format version, SHA-256 of every file,
    feature config); a bundle that fails is refused. A file that fails, for
    whatever reason, is reported and skipped, the others are still
    classified, the last line on stderr says how many of how many failed,
    and the exit status is then 1. A truncated file is classified, with a
    warning saying how much of it was read. Torch is never imported.

    --streaming (LSTM bundles exported with a step model): each file is one
    stream from a zero state; every frame is fed once, a step of the LSTM per
    `segment` frames, and the output (the head of the mean of the last
    window's worth of step outputs) is taken where each window would end. The
    first output is the window model's first window; the later ones carry
    the state from the start of the file. The vote is their mean.

    \b
    Examples:
      harmonies classify export/demo song.wav
      harmonies classify export/demo clips/*.wav --top-k 1
      harmonies classify export/demo song.flac --json --backend onnx --precision fp32
      harmonies classify export/lstm song.wav --streaming
    """
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.files import classify_file

    try:
        loaded = load_bundle(bundle)
        if streaming:
            from pyharmonies.runtime.streaming import classify_file_streaming, open_streamer

            streamer = open_streamer(loaded, backend, precision, threads=threads)
            describe = f"{streamer.describe()}, streaming (state {streamer.state_bytes:,} bytes)"
            run = functools.partial(classify_file_streaming, streamer, top_k=top_k)
        else:
            clf = WindowClassifier(loaded, make_backend(loaded, backend, precision, threads=threads))
            describe = clf.backend.describe()
            run = functools.partial(classify_file, clf, top_k=top_k)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    if loaded.svm is not None:
        describe += f", fused with the SVM (weight {loaded.svm.weight:g})"
    if not as_json:
        click.echo(f"{loaded.name}: {len(loaded.labels)} labels, {describe}")

    progress = FileProgress(audio, label="classifying")
    with progress.iterate() as paths:
        for path in paths:
            try:
                with progress.warnings():
                    result = run(path)
            except Exception as err:  # this file's failure, whatever it is: reported, the others go on
                progress.fail(path, err)
                if as_json:
                    click.echo(json.dumps({"path": str(path), "error": error_message(path, err)}))
                continue
            if as_json:
                click.echo(json.dumps(result.to_dict()))
                continue
            n = len(result.windows)
            note = ", padded" if result.padded else ""
            click.echo(f"\n{path}  ({result.duration_s:.1f} s, {n} window{'s' if n != 1 else ''}{note})")
            width = max(len(name) for name, _ in result.top)
            for name, p in result.top:
                click.echo(f"  {name:<{width}}  {_bar(p)}  {100 * p:5.1f}%")
    if progress.failed:
        click.echo(progress.summary(), err=True)
        click.get_current_context().exit(1)
