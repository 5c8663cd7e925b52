"""``harmonies bench``: time the C core against librosa (pyharmonies.bench)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click


@click.command(short_help="Time the C core against librosa, single-threaded.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON (machine info included).")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.5, max=3600),
    default=30.0,
    show_default=True,
    help="Length of the synthetic clip.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1, max=1000),
    default=5,
    show_default=True,
    help="Timed runs per figure; the best is reported.",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Do not re-execute in a child process with OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS=1; "
    "rely on threadpoolctl alone.",
)
def bench(as_json: bool, seconds: float, repeat: int, in_process: bool) -> None:
    """Time feature extraction on a synthetic music clip against librosa.

    In one run: log-mel alone; the full named feature set against librosa
    called once per feature and against one shared librosa STFT; and the
    streaming cost per hop of the frame vector (C core, and
    StreamingExtractor.push from Python). Prints times, speed-ups and
    PASS/MISS against the targets (full set >= 10x per-feature librosa and
    >= 5x shared STFT, log-mel >= 1.5x, <= 10 us per hop).

    Single-threaded: the command re-executes itself in a child process whose
    environment sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS
    and NUMBA_NUM_THREADS to 1 before numpy or librosa load, and the
    benchmark also applies threadpoolctl.threadpool_limits(1).
    """
    from pyharmonies.bench import SINGLE_THREAD_ENV

    env_ready = all(os.environ.get(k) == v for k, v in SINGLE_THREAD_ENV.items())
    if not env_ready and not in_process and sys.executable:
        code = _reexecute(SINGLE_THREAD_ENV, as_json=as_json, seconds=seconds, repeat=repeat)
        click.get_current_context().exit(code)

    from pyharmonies import bench as benchmark

    # Progress on stderr, and only on a terminal: stdout carries the table or the JSON.
    show = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    result = benchmark.run(
        seconds, repeat, progress=(lambda m: click.echo(f"timing {m}...", err=True)) if show else None
    )
    click.echo(json.dumps(result, indent=2) if as_json else benchmark.format_report(result))


def _reexecute(env_vars: dict[str, str], *, as_json: bool, seconds: float, repeat: int) -> int:
    """Run ``harmonies bench`` again in a child with ``env_vars``; relay its stdout."""
    import pyharmonies

    env = dict(os.environ, **env_vars)
    # The child must import this same pyharmonies, however this process found it.
    root = str(Path(pyharmonies.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    args = ["bench", "--seconds", repr(seconds), "--repeat", str(repeat), "--in-process"]
    if as_json:
        args.append("--json")
    child = subprocess.run(
        [sys.executable, "-m", "pyharmonies.cli", *args], env=env, stdout=subprocess.PIPE, text=True
    )
    click.echo(child.stdout, nl=False)
    return child.returncode
