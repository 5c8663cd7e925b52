"""``harmonies listen`` and ``harmonies devices``: live classification (device side, no torch)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from pyharmonies.commands.classify import _bar, backend_options

#: Exit statuses beyond click's 1 (error) and 2 (usage).
EXIT_DEVICE_LOST = 3
EXIT_AUDIO_LOST = 4
DEFAULT_MODEL = Path("export/demo")


class _Exit(click.ClickException):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


def _default_model(model: Path | None) -> Path:
    if model is not None:
        return model
    env = os.environ.get("HARMONIES_MODEL")
    if env:
        return Path(env)
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    raise click.UsageError(f"no model: give --model BUNDLE (or set HARMONIES_MODEL); `make demo` writes {DEFAULT_MODEL}/")


@click.command(short_help="Classify the microphone (or a file) live, a window every hop.")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help=f"BUNDLE written by `harmonies export` [default: $HARMONIES_MODEL, else ./{DEFAULT_MODEL}].")  # fmt: skip
@click.option("--device", default=None, metavar="ID|NAME", help="Input device: its index or (part of) its name, as `harmonies devices` lists them [default: the default input].")
@click.option("--source", type=click.Path(path_type=Path), default=None, help="Replay this audio FILE instead of a microphone (real time, through the same path).")
@click.option("--fast", is_flag=True, help="With --source: as fast as possible, nothing dropped (gives offline classification's windows).")
@click.option("--window", "window_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds of audio each result covers [default: the model's window]; longer averages the model's windows inside it.")  # fmt: skip
@click.option("--hop", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds between results [default: the bundle's hop].")
@click.option("--smoothing", type=click.Choice(["ema", "vote", "none"]), default="ema", show_default=True,
              help="Over successive results: exponential moving average (alpha 0.5), majority of the last 5, or none.")  # fmt: skip
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help='Below this confidence print "uncertain". How long to listen before the top label can be trusted, and '
                   'how accurate it then is: `harmonies evaluate BUNDLE DATA --latency-curve` (its "time to a trustworthy '
                   'answer", with these windows, hop and smoothing; figures in docs/EXPERIMENTS.md: one window was enough '
                   'on the soundtracks and instrument sets, for every model).')  # fmt: skip
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=1, show_default=True, help="Labels per line.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: time, top, probs, latency_ms, dropped, overflows; then {\"summary\": ...}.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after S seconds of audio.")
@click.option("--reconnect", is_flag=True, help="If the device vanishes, wait for it to come back instead of exiting.")
@click.option("--windowed", is_flag=True,
              help="LSTM bundles with a step model: re-run the window model over a whole window every hop instead of streaming the state.")  # fmt: skip
@click.option("--selftest", is_flag=True, help="Health check for a new device: run --minutes, report overflows, dropped windows, time per hop, CPU%, RSS.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="With --selftest: how long.")
@backend_options
def listen(model: Path | None, device: str | None, source: Path | None, fast: bool, window_s: float | None, hop: float | None,
           smoothing: str, threshold: float, top_k: int, as_json: bool, duration: float | None, reconnect: bool,
           windowed: bool, selftest: bool, minutes: float, backend: str, precision: str, threads: int) -> None:  # fmt: skip
    """Classify audio live with the model in BUNDLE.

    The microphone is captured at its native rate by PortAudio's callback
    (which only copies into a ring buffer), resampled to the model's rate by
    soxr's streaming resampler, turned into features by the native streaming
    extractor (each sample once), and a window is classified every hop; the
    probabilities are smoothed and printed as a line (label, confidence bar,
    latency from the window's last sample to the line) or as JSON. Torch is
    never imported.

    When inference falls behind, the oldest waiting windows are dropped and
    counted; PortAudio input overflows are counted; both are in every JSON
    line and in the summary printed at the end (Ctrl-C, --duration, or the
    end of --source): windows classified, dropped, overflows, mean and p95
    latency, CPU% and memory.

    Window alignment: frames are numbered from 0; a window of W frames ends
    at each frame W-1 + k*hop, as `harmonies classify` cuts a whole file.

    A CNN bundle trained with --fuse-svm also computes the frame vector in
    the same extractor pass, and each result fuses the model's probabilities
    with the SVM's answer on the statistics of the last 10 s heard (the
    clip length it was fitted on; less at the start), before smoothing.

    LSTM bundles exported with a step model stream statefully (unless
    --windowed): each frame is fed to the LSTM once, a step per `segment`
    frames, its state carried from step to step; a result still comes at
    each frame W-1 + k*hop, the head of the mean of the last window's worth
    of step outputs (the first one is the window model's first window).
    A bundle's hop model runs a hop's k whole steps in one call; with a
    --hop of n steps, n // k calls of it and n % k of the one-step model
    give each result (the chain line says how many calls per result; at a
    hop shorter than k steps every step is its own call, and --windowed may
    then be the cheaper path: see docs/DESIGN.md, Streaming).
    --reconnect starts a new stream when the device comes back (zero state,
    frames from 0 again); silence does not reset the state.

    \b
    Exit status: 0 done; 1 error; 2 bad usage; 3 the device vanished
    (without --reconnect); 4 --selftest lost audio.

    \b
    Examples:
      harmonies listen --model export/demo
      harmonies listen --model export/demo --device "USB" --threshold 0.6 --top-k 3
      harmonies listen --model export/demo --selftest --minutes 5
      harmonies listen --model export/demo --source song.wav
      harmonies listen --model export/demo --source song.wav --fast --json --smoothing none
      harmonies listen --model export/lstm --hop 0.1        (a stateful LSTM: one step per result)
    """
    from pyharmonies.errors import DeviceLost, HarmoniesError
    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.classifier import top_labels
    from pyharmonies.stream import FileSource, LiveSession, MicrophoneSource, SlidingClassifier

    if fast and source is None:
        raise click.UsageError("--fast replays a --source FILE; a microphone runs in real time")
    if selftest and source is not None:
        raise click.UsageError("--selftest checks a microphone; it does not take --source")
    model = _default_model(model)
    try:
        loaded = load_bundle(model)
        cfg = loaded.feature_config
        frame_s = cfg.hop_length / cfg.sample_rate
        hop_frames = loaded.hop_frames if hop is None else max(1, int(round(hop / frame_s)))
        span = _span(window_s, loaded.window_frames, hop_frames, frame_s)
        if loaded.streaming is not None and not windowed:
            from pyharmonies.runtime.streaming import open_streamer
            from pyharmonies.stream.stateful import StatefulClassifier

            streamer = open_streamer(loaded, backend, precision, threads=threads, hop_frames=hop_frames)
            slider = StatefulClassifier(streamer, cfg, hop_frames, smoothing, span=span)
            model_text = f"{streamer.describe()}, state {streamer.state_bytes:,} bytes carried"
        else:
            clf = WindowClassifier(loaded, make_backend(loaded, backend, precision, threads=threads))
            slider = SlidingClassifier(clf, cfg, loaded.kind, loaded.window_frames, hop_frames, smoothing,
                                       max_pending=0 if fast else 2, span=span, svm=loaded.svm)  # fmt: skip
            model_text = clf.backend.describe()
            if loaded.svm is not None:
                model_text += f", fused with the SVM (weight {loaded.svm.weight:g}, statistics of the last {loaded.svm.clip_seconds:g} s)"
        if source is not None:
            src = FileSource(source, cfg.sample_rate, block=1024, realtime=not fast,
                             on_warning=lambda line: click.echo(f"warning: {line}", err=True))  # fmt: skip
        else:
            src = MicrophoneSource(device)
        if selftest:
            duration = 60.0 * minutes
        session = LiveSession(slider, src, duration=duration, reconnect=reconnect, finish=source is not None,
                              on_status=lambda line: click.echo(line, err=True))  # fmt: skip
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None

    chain = " -> ".join([
        src.describe(),
        session.resampler.describe(),
        f"{loaded.kind.replace('_', '-')} {slider.rows} x {loaded.window_frames} frames",
        model_text,
    ])  # fmt: skip
    timing = (f"window {loaded.window_frames * frame_s:.2f} s, result every {slider.hop_seconds:.2f} s"
              + (f", each averaging {span} windows" if span > 1 else ""))  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: session.stop())  # a systemd stop ends as cleanly as Ctrl-C

    if selftest:
        _run_selftest(session, chain, timing, as_json)
        return
    if not as_json:
        click.echo(f"{loaded.name}: {len(loaded.labels)} labels; {timing}")
        click.echo(f"chain: {chain}")

    def started() -> None:
        # On stderr in JSON mode, so stdout stays JSON lines; scripts may wait for this line.
        click.echo("listening; Ctrl-C to stop" if source is None else "replaying", err=as_json)
    width = max(len(label) for label in (*loaded.labels, "uncertain"))

    def show(r, latency_ms: float, stats) -> None:
        uncertain = r.confidence < threshold
        if as_json:
            click.echo(json.dumps({
                "time": round(r.time, 4),
                "top": "uncertain" if uncertain else r.label,
                "probs": {name: float(p) for name, p in zip(loaded.labels, r.probs)},
                "latency_ms": round(latency_ms, 3),
                "dropped": slider.dropped,
                "overflows": src.overflows,
            }))  # fmt: skip
        else:
            label = "uncertain" if uncertain else r.label
            rest = "" if uncertain else "  ".join(f"{n} {100 * p:.0f}%" for n, p in top_labels(loaded.labels, r.probs, top_k)[1:])
            click.echo(f"{r.time:8.2f}s  {label:<{width}}  {_bar(r.confidence)}  {100 * r.confidence:5.1f}%  {latency_ms:6.1f} ms  {rest}".rstrip())
        sys.stdout.flush()

    try:
        stats = session.run(show, on_start=started)
    except DeviceLost as err:
        raise _Exit(f"{err}. Check the device (`harmonies devices`), or run with --reconnect to wait for it.", EXIT_DEVICE_LOST) from None
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    summary = stats.summary()
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    else:
        click.echo(_summary_line(summary))


def _span(window_s: float | None, window_frames: int, hop_frames: int, frame_s: float) -> int:
    """Model windows a result averages so that it covers ``window_s`` seconds."""
    if window_s is None:
        return 1
    model_s = window_frames * frame_s
    if window_s < model_s - frame_s / 2:
        raise click.UsageError(f"--window {window_s:g} is shorter than the model's window ({model_s:.2f} s); it can only be longer")
    return 1 + int(round((window_s - model_s) / (hop_frames * frame_s)))


def _summary_line(s: dict) -> str:
    return (f"{s['windows']} windows classified, {s['dropped']} dropped, {s['overflows']} overflows"
            + (f", {s['lost_samples']} samples lost" if s["lost_samples"] else "")
            + (f", {s['reconnects']} reconnects" if s["reconnects"] else "")
            + f"; latency mean {s['mean_latency_ms']:.1f} ms, p95 {s['p95_latency_ms']:.1f} ms; "
            f"CPU {s['cpu_percent']:.1f}%, RSS {s['rss_mb']:.0f} MB")  # fmt: skip


def _run_selftest(session, chain: str, timing: str, as_json: bool) -> None:
    """``--selftest``: run quietly for the duration, print progress every 10 s, then the verdict."""
    import time

    echo = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    echo(f"selftest: {session.duration / 60:g} min on {chain}")
    echo(f"          {timing}; time budget per result {1000 * session.slider.hop_seconds:.0f} ms")
    t0 = time.monotonic()
    next_report = [10.0]

    def progress(r, latency_ms: float, stats) -> None:
        elapsed = time.monotonic() - t0
        if elapsed >= next_report[0]:
            next_report[0] += 10.0
            worst = stats.hop_work_ms.max if stats.hop_work_ms.count else 0.0
            echo(f"  {int(elapsed) // 60}:{int(elapsed) % 60:02d}  windows {stats.windows}  dropped {session.slider.dropped}  "
                 f"overflows {session.source.overflows}  worst hop {worst:.1f} ms")  # fmt: skip

    from pyharmonies.errors import DeviceLost

    try:
        stats = session.run(progress)
    except DeviceLost as err:
        raise _Exit(f"selftest FAILED: {err}", EXIT_DEVICE_LOST) from None
    s = stats.summary()
    budget = s["hop_budget_ms"]
    verdict = "FAILED: audio was lost" if stats.audio_lost else "PASSED: no audio lost"
    if as_json:
        click.echo(json.dumps({"selftest": {**s, "chain": chain, "passed": not stats.audio_lost}}))
    else:
        echo(f"overflows {s['overflows']}, samples lost {s['lost_samples']}, windows dropped {s['dropped']} of {s['windows'] + s['dropped']}")
        echo(f"work per result: p50 {s['p50_hop_ms']:.2f} ms, p99 {s['p99_hop_ms']:.2f} ms, worst {s['max_hop_ms']:.2f} ms "
             f"of a {budget:.0f} ms budget ({100 * s['p99_hop_ms'] / budget:.1f}% at p99)")  # fmt: skip
        echo(f"latency, last sample -> result: p50 {s['p50_latency_ms']:.1f} ms, p99 {s['p99_latency_ms']:.1f} ms")
        echo(f"CPU {s['cpu_percent']:.1f}% of one core; RSS {s['rss_mb']:.0f} MB (peak {s['peak_rss_mb']:.0f} MB)")
        echo(f"selftest {verdict}")
    if stats.audio_lost:
        sys.exit(EXIT_AUDIO_LOST)


@click.command(short_help="List audio input devices.")
def devices() -> None:
    """List audio input devices (via sounddevice / PortAudio) with their
    default (native) sample rates; the default input is marked with *.
    `harmonies listen --device` takes the index or part of the name."""
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.stream.microphone import list_input_devices

    try:
        inputs = list_input_devices()
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    if not inputs:
        raise click.ClickException("no audio input devices found (is a microphone connected, PulseAudio/ALSA running?)")
    for d in inputs:
        mark = "*" if d["default"] else " "
        click.echo(f"{mark} {d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:.0f} Hz)")
