"""``harmonies listen`` and ``harmonies devices``: live classification (device side, no torch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pyharmonies.commands.classify import _bar, backend_options

NO_MIC = "microphone capture is not implemented yet (issue 5 in progress); use --source FILE"


@click.command(short_help="Classify a stream live, a window every hop.")
@click.option("--model", "model", required=True, type=click.Path(path_type=Path), help="BUNDLE written by `harmonies export`.")
@click.option("--source", type=click.Path(path_type=Path), default=None, help="Replay this audio FILE instead of a microphone.")
@click.option("--fast", is_flag=True, help="With --source: as fast as possible instead of in real time (nothing dropped).")
@click.option("--hop", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds between windows [default: the bundle's hop].")
@click.option("--smoothing", type=click.Choice(["ema", "vote", "none"]), default="ema", show_default=True, help="Probability smoothing over windows.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.0, show_default=True, help='Below this confidence print "uncertain".')
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=1, show_default=True, help="Labels per line.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: time, top, probs, latency_ms, dropped, overflows; then a summary object.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after S seconds of audio.")
@backend_options
def listen(model: Path, source: Path | None, fast: bool, hop: float | None, smoothing: str, threshold: float, top_k: int,
           as_json: bool, duration: float | None, backend: str, precision: str, threads: int) -> None:  # fmt: skip
    """Classify audio live with the model in BUNDLE: features from the
    native streaming extractor, a window every hop, smoothed probabilities.

    Window alignment: frames are numbered from 0; a window of W frames ends
    at each frame W-1 + k*hop, as `harmonies classify` cuts a whole file.
    Ends with a summary: windows classified, dropped, overflows, mean and
    p95 latency. Torch is never imported.

    \b
    Examples:
      harmonies listen --model export/demo --source song.wav
      harmonies listen --model export/demo --source song.wav --fast --json --smoothing none
    """
    if source is None:
        raise click.ClickException(NO_MIC)
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.stream import FileSource, SlidingClassifier

    try:
        loaded = load_bundle(model)
        clf = WindowClassifier(loaded, make_backend(loaded, backend, precision, threads=threads))
        cfg = loaded.feature_config
        hop_frames = loaded.hop_frames if hop is None else max(1, int(round(hop * cfg.sample_rate / cfg.hop_length)))
        slider = SlidingClassifier(clf, cfg, loaded.kind, loaded.window_frames, hop_frames, smoothing,
                                   max_pending=0 if fast else 4)  # fmt: skip
        src = FileSource(source, cfg.sample_rate, block=1024, realtime=not fast, duration=duration)
        if not as_json:
            click.echo(f"{loaded.name}: {len(loaded.labels)} labels, {clf.backend.describe()}; "
                       f"window {loaded.window_frames} frames, hop {hop_frames} frames ({slider.hop_seconds:.2f} s)")  # fmt: skip
        width = max(len(label) for label in loaded.labels)

        def show(results) -> None:
            for r in results:
                top = clf.top(r.probs, top_k)
                if as_json:
                    click.echo(json.dumps({
                        "time": round(r.time, 4),
                        "top": r.label if r.confidence >= threshold else "uncertain",
                        "probs": {name: float(p) for name, p in zip(loaded.labels, r.probs)},
                        "latency_ms": round(r.latency_ms, 3),
                        "dropped": slider.dropped,
                        "overflows": src.overflows,
                    }))  # fmt: skip
                    continue
                if r.confidence < threshold:
                    click.echo(f"{r.time:8.2f}s  {'uncertain':<{width}}  {_bar(r.confidence)}  {100 * r.confidence:5.1f}%  {r.latency_ms:6.1f} ms")
                    continue
                rest = "  ".join(f"{n} {100 * p:.0f}%" for n, p in top[1:])
                click.echo(f"{r.time:8.2f}s  {r.label:<{width}}  {_bar(r.confidence)}  {100 * r.confidence:5.1f}%  {r.latency_ms:6.1f} ms  {rest}".rstrip())
                sys.stdout.flush()

        try:
            for block in src:
                show(slider.push(block))
            show(slider.finish())
        except KeyboardInterrupt:
            pass
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    summary = {**slider.summary(), "overflows": src.overflows}
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    else:
        click.echo(f"{summary['windows']} windows classified, {summary['dropped']} dropped, {summary['overflows']} overflows; "
                   f"latency mean {summary['mean_latency_ms']:.1f} ms, p95 {summary['p95_latency_ms']:.1f} ms")  # fmt: skip


@click.command(short_help="List audio input devices.")
def devices() -> None:
    """List audio input devices (via sounddevice / PortAudio) with their
    default sample rates; the default input is marked with *."""
    try:
        import sounddevice as sd

        found = sd.query_devices()
        default_in = sd.default.device[0] if sd.default.device else -1
    except (OSError, ImportError) as err:
        raise click.ClickException(f"cannot query audio devices (PortAudio): {err}") from None
    except Exception as err:  # sounddevice.PortAudioError
        raise click.ClickException(f"cannot query audio devices (PortAudio): {err}") from None
    inputs = [d for d in found if d.get("max_input_channels", 0) > 0]
    if not inputs:
        raise click.ClickException("no audio input devices found (is a microphone connected, PulseAudio/ALSA running?)")
    for d in inputs:
        mark = "*" if d["index"] == default_in else " "
        click.echo(f"{mark} {d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate']:.0f} Hz)")
