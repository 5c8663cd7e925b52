"""Per-hop cost of an LSTM bundle streamed with its state (hop and step models) against its window model re-run every hop.

    .venv/bin/python benchmarks/bench_streaming.py [--model BUNDLE] [--seconds 60] [--repeat 3] [--json]

One core: the process pins itself to one CPU and runs every runtime with one
thread (OMP/OPENBLAS/MKL_NUM_THREADS=1 are set before numpy loads, by
re-executing itself). Without ``--model`` it makes, once, under
``.cache/bench-streaming/``, a bundle of the default LSTM (hidden 64,
projection 32, 3 s windows of 129 frames, 32 steps of 4 frames) trained for
two epochs on a synthetic corpus: the weights do not change the timings.

For each hop (the bundle's own, the hop model's whole steps, a quarter window,
one step), each runtime and precision, over a synthetic clip of ``--seconds``,
the time per hop of:

- *features*: the native streaming extractor fed one hop of samples (the same
  for both paths);
- *windowed model*: normalising one window and one call of the window model
  (what ``listen --windowed`` runs every hop);
- *step model*: normalising the hop's frames and one call of the one-step
  model per completed step, the state carried (what ``listen`` ran before the
  bundle had a hop model);
- *hop model*: the same with the bundle's hop model (``k`` steps per call; the
  steps a hop leaves over through the step model): what ``listen`` runs;
- *calls*: runtime calls per hop of the hop-model path;
- *end to end*: ``SlidingClassifier`` against ``StatefulClassifier`` (hop
  model), samples pushed one hop at a time (features, model, softmax,
  smoothing);
- *model in situ*: the time spent inside the runtimes' calls during those
  end-to-end hops, both ways: the model's share of what ``listen`` does,
  with the caches as the rest of the hop leaves them (the *model* columns
  above call the model back to back).

Each figure is the median over the clip's hops (from the first result on), the
least of ``--repeat`` passes: another process on the core only adds time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-streaming"
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def make_default_bundle(root: Path) -> Path:
    """A bundle of the default LSTM, two epochs on a synthetic corpus (made once, kept under ``root``)."""
    bundle = root / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    import torch

    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    torch.set_num_threads(1)
    corpus = root / "synth"
    if not corpus.is_dir():
        synth_corpus(corpus, classes=4, clips_per_class=6, seconds=8.0, seed=5, progress=False, jobs=1)
    cfg = TrainConfig(data=str(corpus), out=str(root / "run"), cache=str(root / "cache"), model="lstm", epochs=2, patience=2,
                      seed=0, backbone="none")  # fmt: skip
    run = train_run(cfg, progress=False)
    return export_run(run, bundle, int8=True, allow_drop=True, progress=False, latency_runs=10)


def _timed(fn, arg) -> float:
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


class _RunClock:
    """Adds up the time spent inside the ``run`` calls of the given backends (an instance attribute shadows
    the method while the clock is on; :meth:`close` removes it)."""

    def __init__(self, *backends):
        self.spent = 0.0
        self.backends = [b for b in backends if b is not None]
        for backend in self.backends:
            backend.run = self._timed(type(backend).run.__get__(backend))

    def _timed(self, run):
        def timed(*args):
            t = time.perf_counter()
            try:
                return run(*args)
            finally:
                self.spent += time.perf_counter() - t

        return timed

    def close(self) -> None:
        for backend in self.backends:
            del backend.run


def _per_push(push, items, clock: _RunClock) -> list[tuple[float, float]]:
    """``(seconds, seconds in the runtimes)`` of each ``push(item)``."""
    out = []
    for item in items:
        before = clock.spent
        t = time.perf_counter()
        push(item)
        out.append((time.perf_counter() - t, clock.spent - before))
    return out


def _median_us(passes: int, run) -> float:
    """The median time per hop of a pass, in microseconds, the least over ``passes`` passes (another
    process on the core only ever adds time)."""
    import numpy as np

    return 1e6 * min(float(np.median(run())) for _ in range(passes))


def measure(bundle_dir: Path, seconds: float, repeat: int) -> dict:
    """Every figure of the module docstring, in microseconds per hop."""
    import numpy as np

    from pyharmonies.bench import synthetic_clip
    from pyharmonies.runtime.backends import available_backends, make_backend
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import WindowClassifier
    from pyharmonies.runtime.stepmodel import StepBackend, hop_file_for
    from pyharmonies.runtime.streaming import LSTMStreamer
    from pyharmonies.stream import SlidingClassifier
    from pyharmonies.stream.stateful import StatefulClassifier
    from pyharmonies.windows import InputFeatureStream, input_features, window_starts

    bundle = load_bundle(bundle_dir)
    if bundle.streaming is None:
        raise SystemExit(f"{bundle_dir}: no step model in this bundle (an LSTM bundle exported by this harmonies has one)")
    cfg = bundle.feature_config
    W, S = bundle.window_frames, bundle.streaming.step_frames
    y = synthetic_clip(seconds, cfg.sample_rate)
    features = input_features(y, cfg, "frame_vector")
    k_hop = max([f.steps for f in bundle.streaming.files.values()])
    hops = sorted({bundle.hop_frames, k_hop * S, max(S, W // 4), S}, reverse=True)
    installed = available_backends()
    out = {"bundle": str(bundle_dir), "window_frames": W, "step_frames": S, "steps_pooled": bundle.streaming.steps_pooled,
           "state_bytes": bundle.streaming.state_bytes, "hop_model_steps": k_hop, "clip_seconds": seconds, "frame_ms": 1000 * cfg.hop_length / cfg.sample_rate,
           "files": {name: f.bytes for name, f in {**bundle.files, **{k: v.file for k, v in bundle.streaming.files.items()}}.items()},
           "rows": []}  # fmt: skip

    for hop in hops:
        block = hop * cfg.hop_length
        blocks = [y[i : i + block] for i in range(0, len(y), block)]
        chunks = [features[:, i : i + hop] for i in range(0, features.shape[1], hop)]
        starts = window_starts(features.shape[1], W, hop)

        def features_pass() -> list[float]:
            stream = InputFeatureStream(cfg, ["frame_vector"])
            return [_timed(stream.push, b) for b in blocks]

        feat_us = _median_us(repeat, features_pass)
        for runtime in ("tflite", "onnx"):
            for precision in ("int8", "fp32"):
                if runtime not in installed or bundle.find_file(runtime, precision) is None:
                    continue
                clf = WindowClassifier(bundle, make_backend(bundle, runtime, precision))
                step_file = bundle.streaming.files[f"step.{precision}.{runtime}"]
                step = StepBackend(bundle, step_file)
                hop_file = hop_file_for(bundle, step_file)
                hop_model = None if hop_file is None else StepBackend(bundle, hop_file)

                def windowed_pass() -> list[float]:
                    # Each window copied out of the features first, as the sliding window hands it over.
                    return [_timed(clf.logits_batch, np.ascontiguousarray(features[None, :, s : s + W])) for s in starts]

                def streamed_pass(hop_backend=None) -> list[float]:
                    streamer = LSTMStreamer(bundle, step, hop_frames=hop, hop_backend=hop_backend)
                    return [_timed(streamer.push, c) for c in chunks][(W - 1) // hop :]  # from the first result on

                streamer = LSTMStreamer(bundle, step, hop_frames=hop, hop_backend=hop_model)

                def sliding_pass() -> list[tuple[float, float]]:
                    slider = SlidingClassifier(clf, cfg, "frame_vector", W, hop, "ema", max_pending=0)
                    clock = _RunClock(clf.backend)
                    try:
                        return _per_push(slider.push, blocks, clock)[(W - 1) // hop :]
                    finally:
                        clock.close()

                def stateful_pass() -> list[tuple[float, float]]:
                    slider = StatefulClassifier(LSTMStreamer(bundle, step, hop_frames=hop, hop_backend=hop_model), cfg, hop, "ema")
                    clock = _RunClock(step, hop_model)
                    try:
                        return _per_push(slider.push, blocks, clock)[(W - 1) // hop :]
                    finally:
                        clock.close()

                sliding = [sliding_pass() for _ in range(repeat)]
                stateful = [stateful_pass() for _ in range(repeat)]

                row = {"hop_frames": hop, "hop_ms": hop * out["frame_ms"], "steps_per_hop": hop / S, "runtime": runtime,
                       "precision": precision, "features_us": feat_us, "windowed_model_us": _median_us(repeat, windowed_pass),
                       "step_model_us": _median_us(repeat, streamed_pass),
                       "hop_model_us": _median_us(repeat, lambda: streamed_pass(hop_model)),
                       "calls_per_hop": streamer.calls_per_result(),
                       "windowed_end_to_end_us": _least_median_us(sliding, 0),
                       "streamed_end_to_end_us": _least_median_us(stateful, 0),
                       "windowed_in_situ_us": _least_median_us(sliding, 1),
                       "hop_in_situ_us": _least_median_us(stateful, 1)}  # fmt: skip
                out["rows"].append(row)
    return out


def _least_median_us(passes: list[list[tuple[float, float]]], column: int) -> float:
    """The least over passes of the median of one column of :func:`_per_push`'s pairs, in microseconds."""
    import numpy as np

    return 1e6 * min(float(np.median([pair[column] for pair in p])) for p in passes)


def report(r: dict) -> str:
    lines = [f"LSTM bundle {r['bundle']}: window {r['window_frames']} frames ({r['window_frames'] * r['frame_ms'] / 1000:.2f} s), "
             f"steps of {r['step_frames']} frames, ring of {r['steps_pooled']} outputs, hop model of {r['hop_model_steps']} "
             f"steps; state {r['state_bytes']:,} bytes",
             "files: " + ", ".join(f"{k} {v:,} B" for k, v in r["files"].items()),
             f"one core, one thread; microseconds per hop, median over a {r['clip_seconds']:g} s synthetic clip (least of passes)", "",
             "| hop | steps/hop | runtime | precision | features | windowed model | step model | hop model (calls) | "
             "hop / windowed | windowed end to end | stateful end to end | end-to-end ratio | model in situ: windowed / stateful |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in r["rows"]:
        lines.append(f"| {row['hop_frames']} frames ({row['hop_ms']:.0f} ms) | {row['steps_per_hop']:.2f} | {row['runtime']} | "
                     f"{row['precision']} | {row['features_us']:.0f} | {row['windowed_model_us']:.0f} | {row['step_model_us']:.0f} | "
                     f"{row['hop_model_us']:.0f} ({row['calls_per_hop']:g}) | {row['hop_model_us'] / row['windowed_model_us']:.2f} | "
                     f"{row['windowed_end_to_end_us']:.0f} | {row['streamed_end_to_end_us']:.0f} | "
                     f"{row['streamed_end_to_end_us'] / row['windowed_end_to_end_us']:.2f} | "
                     f"{row['windowed_in_situ_us']:.0f} / {row['hop_in_situ_us']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="an LSTM bundle with a step model [default: make one]")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic clip")
    parser.add_argument("--repeat", type=int, default=3, help="passes per figure; the best is kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if any(os.environ.get(k) != v for k, v in SINGLE_THREAD.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **SINGLE_THREAD})
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bundle = args.model or make_default_bundle(CACHE)
    result = measure(bundle, args.seconds, args.repeat)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
