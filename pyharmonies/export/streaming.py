"""The LSTM's step and hop model files: written beside the window model, verified against PyTorch.

A unidirectional LSTM's bundle carries ``step.<precision>.<runtime>``: one
step's frames ``(1, F, segment)`` and the state ``(1, state_size)`` in, the
logits and the new state out (:class:`pyharmonies.models.lstm_step.LSTMStep`;
the definition of the streamed output is in that module). When the bundle's
hop holds ``k = hop_frames // segment >= 2`` whole steps, it also carries
``hop.<precision>.<runtime>``: ``k`` steps per call, the same state in and
out, the logits after the last step (:class:`~pyharmonies.models.lstm_step.LSTMHop`),
so that a stream answering every hop makes one call per hop instead of
``k`` (a runtime call costs more than a step inside it). Both are listed in the
manifest's own ``streaming`` section (each entry with its ``steps``), so the
window model's files stay what they were and a runtime that predates them
loads the bundle unchanged.

Verification, on the run's verification windows, per file:

- *window*: each window's steps fed from a zero state (a hop file: ``k`` at a
  time, then the ``L mod k`` left over through the one-step file of its
  runtime and precision, as the device runs them); the logits after the
  window's last whole step must equal the window model's (PyTorch), the
  first output of a stream being the window model's first window by
  definition;
- *full sequence*: the verification windows' frames end to end, one stream of
  a few hundred to a few thousand steps (a hop file: ``k`` per call), against
  :func:`~pyharmonies.models.lstm_step.full_sequence_logits` of the trained
  model after every call: the state carried over many steps.

fp32 files must stay within ``FP32_TOLERANCE`` (1e-4) of PyTorch in both; an
int8 file's window accuracy may fall at most ``max_drop`` points below the
fp32 file's of the same runtime and kind, as for the window model.

int8: dynamic-range in both runtimes (:data:`QUANTIZATION` says what is
quantized). Full integer (static) quantization of the step was measured on a
trained test LSTM over a 775-step stream: TFLite full int8 put the logits up
to 6.5 off the fp32 full-sequence model's (top-1 agreement 95.5%), ONNX
static QDQ up to 3.1 (98.7%) and ran slower than fp32; dynamic-range stayed
within 0.03 (TFLite) and 0.06 (ONNX) with 100% agreement. The carried state
is what suffers: its values are requantized at every step, and the cell
state ``c`` shares one int8 scale with ``h`` and the ring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyharmonies.export import bundle
from pyharmonies.export.report import FP32_TOLERANCE

#: The kinds of step model file: the one-step model, and the hop model of ``k`` steps per call.
KINDS: tuple[str, ...] = ("step", "hop")

#: Every step or hop file a bundle may hold: name -> (runtime, precision).
STEP_FILES: dict[str, tuple[str, str]] = {f"{kind}.{p}.{r}": (r, p) for kind in KINDS for r in ("onnx", "tflite") for p in ("fp32", "int8")}

#: ONNX tensor names, in the model's argument and return order.
ONNX_INPUTS = ("frames", "state")
ONNX_OUTPUTS = ("logits", "state_out")

#: What the int8 files quantize, per kind and runtime (all dynamic-range, see the module docstring for why).
QUANTIZATION: dict[str, dict[str, str]] = {
    "step": {
        "onnx": (
            "dynamic-range int8 (onnxruntime quantize_dynamic): int8 weights of every MatMul/Gemm (projection, input "
            "gates, hidden gates, head), activations quantized per call at each MatMul's input (DynamicQuantizeLinear, "
            "MatMulInteger); sigmoid, tanh, the cell update, the ring and the state stay float32"
        ),
        "tflite": (
            "dynamic-range int8 (PT2E, litert-torch): int8 weights of every FULLY_CONNECTED (projection, input gates, "
            "hidden gates, head), run by hybrid kernels that quantize their input per call; LOGISTIC, TANH, the cell "
            "update's MUL/ADD, the ring and the state stay float32"
        ),
    },
    "hop": {
        "onnx": (
            "dynamic-range int8 (onnxruntime quantize_dynamic): the LSTM op becomes DynamicQuantizeLSTM (int8 input "
            "and recurrent weights; its input and hidden state quantized to 8 bits as it runs), int8 weights of the "
            "projection and head (MatMulInteger after DynamicQuantizeLinear); the gates' sigmoid and tanh, the cell "
            "state, the ring and the state in and out stay float32"
        ),
        "tflite": (
            "dynamic-range int8 (PT2E, litert-torch): int8 weights of every FULLY_CONNECTED (projection, input gates, "
            "hidden gates, head; one copy of each, shared by the unrolled steps), run by hybrid kernels that quantize "
            "their input per call; LOGISTIC, TANH, the cell update's MUL/ADD, the ring and the state stay float32"
        ),
    },
}

#: Verification windows joined into the full-sequence check (enough steps to carry a state far past one window).
FULL_SEQUENCE_WINDOWS = 64

#: Verification windows run one call at a time through a TFLite file (batch 1) for the window check.
_TFLITE_WINDOWS = 256


def step_file(runtime: str, precision: str, kind: str = "step") -> str:
    """``step.<precision>.<ext>`` (``kind="hop"``: ``hop.<precision>.<ext>``)."""
    return f"{kind}.{precision}.{runtime}"


class _TorchStep:
    """The fp32 step model in PyTorch, batch-first numpy in and out (the calibration's source)."""

    def __init__(self, step: nn.Module):
        self.step = step

    def run(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits, new = self.step(torch.from_numpy(frames), torch.from_numpy(state))
        return logits.numpy(), new.numpy()


class _FileStep:
    """A written step file in its runtime, batch-first numpy in and out, one thread."""

    def __init__(self, path: Path, entry: dict[str, Any]):
        self.runtime = entry["runtime"]
        names = (entry["input"]["name"], entry["state_input"]["name"], entry["output"]["name"], entry["state_output"]["name"])
        if self.runtime == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.names = names
        else:
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(path), num_threads=1)
            self.interpreter.allocate_tensors()
            index = {d["name"]: d["index"] for d in (*self.interpreter.get_input_details(), *self.interpreter.get_output_details())}
            self.index = [index[n] for n in names]

    def run(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.runtime == "onnx":
            logits, new = self.session.run([self.names[2], self.names[3]], {self.names[0]: frames, self.names[1]: state})
            return logits, new
        it, (i_f, i_s, o_l, o_s) = self.interpreter, self.index
        logits, states = [], []
        for b in range(frames.shape[0]):
            it.set_tensor(i_f, np.ascontiguousarray(frames[b : b + 1]))
            it.set_tensor(i_s, np.ascontiguousarray(state[b : b + 1]))
            it.invoke()
            logits.append(it.get_tensor(o_l))
            states.append(it.get_tensor(o_s))
        return np.concatenate(logits), np.concatenate(states)


def run_steps(runner: Any, x: np.ndarray, segment: int, state_size: int, *, steps: int = 1,
              state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Streams of normalised frames through a step (or hop) runner, ``steps`` steps per call.

    Parameters
    ----------
    runner : object
        ``run(frames (B, F, steps * segment), state (B, state_size)) -> (logits, state)``.
    x : np.ndarray, shape (B, F, T)
        ``B`` streams (windows, or one long sequence) of ``T`` frames; the
        frames after the last whole call (``T % (steps * segment)``) are not used.
    segment, state_size : int
    steps : int
        Steps per call.
    state : np.ndarray, shape (B, state_size), optional
        Where the streams start; zeros by default.

    Returns
    -------
    logits : np.ndarray, shape (B, T // (steps * segment), n_classes)
        After each call.
    inputs : np.ndarray, shape (B * (T // (steps * segment)), state_size)
        The state each call started from (the calibration of the observers), call by call.
    state : np.ndarray, shape (B, state_size)
        After the last call.
    """
    B, _, T = x.shape
    width = steps * segment
    state = np.zeros((B, state_size), dtype=np.float32) if state is None else state
    logits, states = [], []
    for n in range(T // width):
        states.append(state)
        z, state = runner.run(np.ascontiguousarray(x[:, :, n * width : (n + 1) * width], dtype=np.float32), state)
        logits.append(z)
    return np.stack(logits, axis=1), np.concatenate(states), state


def _entry(path: Path, runtime: str, precision: str, quantization: str, steps: int) -> dict[str, Any]:
    """The manifest entry of a step or hop file: a model file's, plus its state tensors and its steps per call."""
    from pyharmonies.export import onnx_export, tflite_export

    if runtime == "onnx":
        inputs, outputs = onnx_export.io_all(path)
    else:
        inputs, outputs = tflite_export.io_all(path.read_bytes())
        # litert-torch names the outputs output_0, output_1 in the order forward() returns them.
        outputs = sorted(outputs, key=lambda t: t["name"])
    if len(inputs) != 2 or len(outputs) != 2:
        from pyharmonies.export.errors import ExportError

        raise ExportError(f"{path.name}: {len(inputs)} inputs and {len(outputs)} outputs; a step model has two of each")
    return {"sha256": bundle.sha256_file(path), "bytes": path.stat().st_size, "runtime": runtime, "precision": precision,
            "quantization": quantization, "steps": steps, "input": inputs[0], "output": outputs[0],
            "state_input": inputs[1], "state_output": outputs[1]}  # fmt: skip


def _write_files(module: nn.Module, kind: str, staging: Path, runtimes: Sequence[str], int8: bool,
                 calibration: Callable[[], tuple[np.ndarray, np.ndarray]], say: Callable[[str], None],
                 done: Callable[[Path], None]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Convert one step module (:class:`LSTMStep` or :class:`LSTMHop`) to each runtime, fp32 and (``int8``) int8.

    ``calibration()`` gives the (frames, states) that the TFLite int8 converter's observers see, one row per call;
    ``say`` announces a file, ``done`` reports it written.
    """
    from pyharmonies.export import onnx_export, tflite_export

    steps = getattr(module, "steps", 1)
    example = module.example_inputs(1)
    entries: dict[str, dict[str, Any]] = {}
    for runtime in runtimes:
        path = staging / step_file(runtime, "fp32", kind)
        say(f"{path.name}: converting ({steps} step{'s' if steps > 1 else ''} of {module.segment} frames per call, "
            f"a state of {module.state_size} values)")  # fmt: skip
        if runtime == "onnx":
            onnx_export.export_fp32(module, example, path, input_names=ONNX_INPUTS, output_names=ONNX_OUTPUTS)
        else:
            path.write_bytes(tflite_export.export_fp32(module, example))
        entries[path.name] = _entry(path, runtime, "fp32", "none", steps)
        done(path)
        if not int8:
            continue
        q8 = staging / step_file(runtime, "int8", kind)
        say(f"{q8.name}: quantizing (dynamic-range int8)")
        if runtime == "onnx":
            onnx_export.quantize_int8(path, q8, "dynamic", np.zeros((0,), np.float32))
        else:
            buf, _ = tflite_export.export_int8(module, example, "dynamic", calibration())
            q8.write_bytes(buf)
        entries[q8.name] = _entry(q8, runtime, "int8", QUANTIZATION[kind][runtime], steps)
        done(q8)
    return entries


def export_streaming(model: nn.Module, staging: Path, *, runtimes: Sequence[str], int8: bool, x: np.ndarray, y: np.ndarray,
                     calibration: np.ndarray, say: Callable[[str], None], max_drop: float, hop_frames: int | None = None,
                     latency_runs: int = 100, done: Callable[[Path], None] | None = None) -> tuple[dict[str, Any], list[str], list[str]]:  # fmt: skip
    """Write the step (and hop) files of a unidirectional LSTM into ``staging`` and verify them.

    Parameters
    ----------
    model : SequenceLSTM
        The trained model, eval mode: the oracle, and the weights of the step.
    staging : Path
    runtimes : sequence of str
    int8 : bool
        Also the int8 (dynamic-range) files.
    x : np.ndarray, shape (N, F, W)
        Normalised verification windows; ``y`` (N,) their labels.
    calibration : np.ndarray, shape (K, F, W)
        Normalised training windows: their steps and states run through the TFLite converter's observers.
    say : callable
        Progress lines.
    max_drop : float
        Largest int8 window-accuracy drop, in points, below the fp32 file of the same runtime and kind.
    hop_frames : int, optional
        The bundle's hop: with ``k = hop_frames // segment >= 2`` whole steps, the hop files of ``k`` steps
        per call are written too. None: the step files only.
    latency_runs : int
        Timed calls per file.
    done : callable, optional
        Called with each file's path once it is written (the exporter's progress line of its size and time).

    Returns
    -------
    section, failures, drops
        The manifest's ``streaming`` section (without its ``reference``); one line per fp32 file off
        PyTorch by more than ``FP32_TOLERANCE``; one line per int8 file whose accuracy drops more than
        ``max_drop`` points.
    """
    from pyharmonies.export.verify import _median_ms
    from pyharmonies.models.lstm_step import LSTMHop, LSTMStep, full_sequence_logits, hop_steps

    step = LSTMStep(model)
    S, size = step.segment, step.state_size
    k = hop_steps(hop_frames, S) if hop_frames is not None else 1
    modules: dict[str, nn.Module] = {"step": step}
    if k >= 2:
        modules["hop"] = LSTMHop(model, k)
    cal_states: np.ndarray | None = None

    def states() -> np.ndarray:
        """The state at every step of every calibration window (all windows' step 1, then step 2...)."""
        nonlocal cal_states
        if cal_states is None:
            _, cal_states, _ = run_steps(_TorchStep(step), calibration, S, size)
        return cal_states

    def calls(steps: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def frames_and_states() -> tuple[np.ndarray, np.ndarray]:
            n_win, calls_per_window = calibration.shape[0], calibration.shape[2] // (steps * S)
            at_call = states().reshape(-1, n_win, size)[::steps][:calls_per_window]  # (calls, n_win, size)
            frames = [calibration[:, :, c * steps * S : (c + 1) * steps * S] for c in range(calls_per_window)]
            return np.concatenate(frames), at_call.reshape(-1, size)
        return frames_and_states

    entries: dict[str, dict[str, Any]] = {}
    for kind, module in modules.items():
        entries.update(_write_files(module, kind, staging, runtimes, int8, calls(getattr(module, "steps", 1)), say,
                                    done or (lambda path: None)))  # fmt: skip

    say(f"verifying the step files: {len(x)} windows, and the windows end to end as one stream")
    with torch.no_grad():
        window_ref = np.concatenate([model(torch.from_numpy(x[i : i + 64])).numpy() for i in range(0, len(x), 64)])
    L = x.shape[2] // S
    joined = np.ascontiguousarray(np.concatenate(list(x[:FULL_SEQUENCE_WINDOWS]), axis=1))  # (F, n * W)
    full_ref = full_sequence_logits(model, torch.from_numpy(joined)).numpy()
    runners = {name: _FileStep(staging / name, entry) for name, entry in entries.items()}
    rows, failures = [], []
    for name, entry in entries.items():
        runner, steps = runners[name], entry["steps"]
        xs = x if entry["runtime"] == "onnx" else x[:_TFLITE_WINDOWS]
        z, _, state = run_steps(runner, xs, S, size, steps=steps)
        if L % steps:  # the steps left over, through the one-step file, as the device runs them
            single = runners[step_file(entry["runtime"], entry["precision"])]
            left = xs[:, :, (L // steps) * steps * S : L * S]
            z, _, _ = run_steps(single, left, S, size, state=state)
        last = z[:, -1]  # (N, n_classes): after each window's last whole step
        full = run_steps(runner, joined[None], S, size, steps=steps)[0][0]  # after every call
        want = full_ref[steps - 1 :: steps][: len(full)]
        window_diff = float(np.max(np.abs(last - window_ref[: len(xs)])))
        full_diff = float(np.max(np.abs(full - want)))
        frames, state0 = np.ascontiguousarray(x[:1, :, : steps * S]), np.zeros((1, size), np.float32)
        row = {"file": name, "steps": steps, "windows": int(len(xs)), "accuracy": float(np.mean(last.argmax(1) == y[: len(xs)])),
               "agreement": float(np.mean(last.argmax(1) == window_ref[: len(xs)].argmax(1))),
               "max_abs_logit_diff": window_diff, "full_sequence_steps": int(full.shape[0] * steps),
               "full_sequence_max_abs_logit_diff": full_diff,
               "full_sequence_agreement": float(np.mean(full.argmax(1) == want.argmax(1))),
               "bytes": entry["bytes"], "latency_ms_per_call": _median_ms(lambda: runner.run(frames, state0), latency_runs)}  # fmt: skip
        rows.append(row)
        if entry["precision"] == "fp32" and not max(window_diff, full_diff) <= FP32_TOLERANCE:
            failures.append(f"{name}: logits differ from PyTorch's by up to {max(window_diff, full_diff):.3g} "
                            f"(more than {FP32_TOLERANCE:g})")  # fmt: skip
    drops = []
    by_file = {row["file"]: row for row in rows}
    for kind in modules:
        for runtime in runtimes if int8 else ():
            fp32, q8 = step_file(runtime, "fp32", kind), step_file(runtime, "int8", kind)
            before, after = by_file[fp32]["accuracy"], by_file[q8]["accuracy"]
            if 100.0 * (before - after) > max_drop:
                drops.append(f"{q8}: window accuracy {100 * after:.2f}% is {100 * (before - after):.2f} points "
                             f"below {fp32}'s {100 * before:.2f}% (--max-drop {max_drop:g})")  # fmt: skip
    section = {
        "step_frames": S,
        "steps_pooled": step.steps_pooled,
        "pooling": step.pooling,
        "state": {"size": size, "dtype": "float32", "bytes": 4 * size, "layout": step.state_layout()},
        "output": ("logits after each step of frames numbered from the stream's start: the head of the mean of the "
                   "last steps_pooled step outputs (pooling 'mean', zeros before the first step) or of the last one "
                   "('last'); the LSTM's state is carried from step to step and never reset by the model; a file of "
                   "'steps' > 1 runs that many steps per call and gives the logits after the last"),
        "files": entries,
        "verification": {"windows": int(len(x)), "window_steps": L, "rows": rows,
                         "tolerance_logits": {"fp32": FP32_TOLERANCE}},  # fmt: skip
    }
    return section, failures, drops


def streaming_reference(staging: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``streaming.reference`` entry: what each step file (a hop file with its one-step file) emits for
    ``reference.wav`` streamed whole.

    The reference windows lie end to end, so emissions every ``window_frames`` frames fall at their
    ends; the first is the window model's first window. Computed through the device runtime, as the
    self-check will (:func:`pyharmonies.runtime.selfcheck.check_streaming`). ``staging`` holds the
    files, ``reference.wav`` and a provisional manifest is written there first.
    """
    from pyharmonies.export.reference import _pairs, _round, _separated
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import input_features
    from pyharmonies.runtime.selfcheck import TOLERANCE, log_softmax, read_reference_audio
    from pyharmonies.runtime.streaming import stream_logits, streamer_for_file

    bundle.write_manifest(staging, manifest)
    loaded = load_bundle(staging, selfcheck=False)
    y = read_reference_audio(staging / manifest["reference"]["file"], loaded.feature_config.sample_rate)
    features = input_features(y, loaded.feature_config, "frame_vector")
    hop = loaded.window_frames
    expected, emit_frames, notes = {}, [], []
    pairs = _pairs(len(loaded.labels))
    for name, sf in loaded.streaming.files.items():
        emit_frames, logits = stream_logits(streamer_for_file(loaded, name, hop_frames=hop), features)
        lp = log_softmax(logits)
        expected[name] = {label: [_round(v) for v in lp[:, i]] for i, label in enumerate(loaded.labels)}
        missed = ~_separated(lp, pairs, 2 * TOLERANCE[sf.precision]).any(axis=0)
        if missed.any():
            apart = ", ".join(f"{loaded.labels[i]}/{loaded.labels[j]}" for (i, j), m in zip(pairs, missed) if m)
            notes.append(f"{name}: the reference cannot tell {apart} apart (a swap of them would pass the self-check)")
    entry = {"hop_frames": hop, "emit_frames": emit_frames,
             "tolerance_nats": {name: TOLERANCE[sf.precision] for name, sf in loaded.streaming.files.items()},
             "expected": expected}  # fmt: skip
    if notes:
        entry["notes"] = notes
    return entry


def report_lines(section: dict[str, Any]) -> list[str]:
    """The report's section on the step and hop files: the state, and their agreement with PyTorch."""
    v, state = section["verification"], section["state"]
    pooled = (f"the mean of the last {section['steps_pooled']} step outputs" if section["pooling"] == "mean"
              else "the last step's output")  # fmt: skip
    hop = sorted({e.get("steps", 1) for e in section["files"].values()} - {1})
    calls = (f" The hop files run {hop[0]} steps (the bundle's hop, in whole steps) per call: a stream makes one call per "
             "hop, and runs the steps a hop leaves over through the step file." if hop else "")  # fmt: skip
    lines = ["## Streaming (step model)", "",
             f"`listen` and `classify --streaming` run the LSTM step by step ({section['step_frames']} frames a step) with "
             f"its state carried: {state['size']:,} float32 values ({state['bytes']:,} bytes: "
             + ", ".join(f"{p['name']} {p['shape'][0]} x {p['shape'][1]}" for p in state["layout"])
             + f"); the output after each step is the head of {pooled}.{calls}", "",
             f"Window: {v['windows']} windows of {v['window_steps']} steps, each from a zero state, against the window "
             "model in PyTorch. Full sequence: the windows end to end as one stream against the full-sequence model "
             f"(PyTorch), after every call. fp32 files must stay within {v['tolerance_logits']['fp32']:g}.", "",
             "| file | steps per call | bytes | window accuracy | agreement | max abs logit diff (window) | steps | "
             "max abs logit diff (full sequence) | latency per call (1 thread) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in v["rows"]:
        latency = row.get("latency_ms_per_call", row.get("latency_ms_per_step"))  # the older name, one step per call
        lines.append(f"| {row['file']} | {row.get('steps', 1)} | {row['bytes']:,} | {100 * row['accuracy']:.2f}% | "
                     f"{100 * row['agreement']:.2f}% | {row['max_abs_logit_diff']:.2e} | {row['full_sequence_steps']} | "
                     f"{row['full_sequence_max_abs_logit_diff']:.2e} | {1000 * latency:.1f} us |")  # fmt: skip
    quantized = {name: e["quantization"] for name, e in section["files"].items() if e["precision"] == "int8"}
    if quantized:
        lines += [""] + [f"- {name}: {text}." for name, text in quantized.items()]
    return lines
