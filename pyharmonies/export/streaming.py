"""The LSTM's single-step model files: written beside the window model, verified against PyTorch.

A unidirectional LSTM's bundle carries ``step.<precision>.<runtime>``: one
step's frames ``(1, F, segment)`` and the state ``(1, state_size)`` in, the
logits and the new state out (:class:`pyharmonies.models.lstm_step.LSTMStep`;
the definition of the streamed output is in that module). They are listed in
the manifest's own ``streaming`` section, so the window model's files stay
what they were and a runtime that predates them loads the bundle unchanged.

Verification, on the run's verification windows, per file:

- *window*: each window's steps fed from a zero state; the logits after its
  last whole step must equal the window model's (PyTorch), the first output
  of a stream being the window model's first window by definition;
- *full sequence*: the verification windows' frames end to end, one stream of
  a few hundred to a few thousand steps, against
  :func:`~pyharmonies.models.lstm_step.full_sequence_logits` of the trained
  model: the state carried over many steps.

fp32 files must stay within ``FP32_TOLERANCE`` (1e-4) of PyTorch in both; an
int8 file's window accuracy may fall at most ``max_drop`` points below the
fp32 step file's, as for the window model.

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

#: Every step file a bundle may hold: name -> (runtime, precision).
STEP_FILES: dict[str, tuple[str, str]] = {f"step.{p}.{r}": (r, p) for r in ("onnx", "tflite") for p in ("fp32", "int8")}

#: ONNX tensor names, in the model's argument and return order.
ONNX_INPUTS = ("frames", "state")
ONNX_OUTPUTS = ("logits", "state_out")

#: What the int8 step files quantize, per runtime (both: dynamic-range, see the module docstring for why).
QUANTIZATION: dict[str, str] = {
    "onnx": (
        "dynamic-range int8 (onnxruntime quantize_dynamic): int8 weights of every MatMul/Gemm (projection, input gates, "
        "hidden gates, head), activations quantized per call at each MatMul's input (DynamicQuantizeLinear, "
        "MatMulInteger); sigmoid, tanh, the cell update, the ring and the state stay float32"
    ),
    "tflite": (
        "dynamic-range int8 (PT2E, litert-torch): int8 weights of every FULLY_CONNECTED (projection, input gates, "
        "hidden gates, head), run by hybrid kernels that quantize their input per call; LOGISTIC, TANH, the cell "
        "update's MUL/ADD, the ring and the state stay float32"
    ),
}

#: Verification windows joined into the full-sequence check (enough steps to carry a state far past one window).
FULL_SEQUENCE_WINDOWS = 64

#: Verification windows run one step at a time through a TFLite file (batch 1) for the window check.
_TFLITE_WINDOWS = 256


def step_file(runtime: str, precision: str) -> str:
    """``step.<precision>.<ext>``."""
    return f"step.{precision}.{runtime}"


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


def run_steps(runner: Any, x: np.ndarray, segment: int, state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Streams of normalised frames through a step runner from a zero state.

    Parameters
    ----------
    runner : object
        ``run(frames (B, F, segment), state (B, state_size)) -> (logits, state)``.
    x : np.ndarray, shape (B, F, T)
        ``B`` streams (windows, or one long sequence) of ``T`` frames; the
        ``T % segment`` last frames are not used.
    segment, state_size : int

    Returns
    -------
    logits : np.ndarray, shape (B, T // segment, n_classes)
        After each step.
    inputs : np.ndarray, shape (B * (T // segment), state_size)
        The state each step started from (the calibration of the observers).
    """
    B, _, T = x.shape
    state = np.zeros((B, state_size), dtype=np.float32)
    logits, states = [], []
    for n in range(T // segment):
        states.append(state)
        z, state = runner.run(np.ascontiguousarray(x[:, :, n * segment : (n + 1) * segment], dtype=np.float32), state)
        logits.append(z)
    return np.stack(logits, axis=1), np.concatenate(states)


def _entry(path: Path, runtime: str, precision: str, quantization: str) -> dict[str, Any]:
    """The manifest entry of a step file: a model file's, plus its state tensors."""
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
            "quantization": quantization, "input": inputs[0], "output": outputs[0],
            "state_input": inputs[1], "state_output": outputs[1]}  # fmt: skip


def export_streaming(model: nn.Module, staging: Path, *, runtimes: Sequence[str], int8: bool, x: np.ndarray, y: np.ndarray,
                     calibration: np.ndarray, say: Callable[[str], None], max_drop: float,
                     latency_runs: int = 100) -> tuple[dict[str, Any], list[str], list[str]]:  # fmt: skip
    """Write the step files of a unidirectional LSTM into ``staging`` and verify them.

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
        Largest int8 window-accuracy drop, in points, below the fp32 step file of the same runtime.
    latency_runs : int
        Timed single-step calls per file.

    Returns
    -------
    section, failures, drops
        The manifest's ``streaming`` section (without its ``reference``); one line per fp32 file off
        PyTorch by more than ``FP32_TOLERANCE``; one line per int8 file whose accuracy drops more than
        ``max_drop`` points.
    """
    from pyharmonies.export import onnx_export, tflite_export
    from pyharmonies.export.verify import _median_ms
    from pyharmonies.models.lstm_step import LSTMStep, full_sequence_logits

    step = LSTMStep(model)
    S, size = step.segment, step.state_size
    example = step.example_inputs(1)
    entries: dict[str, dict[str, Any]] = {}
    cal_frames = cal_states = None
    for runtime in runtimes:
        path = staging / step_file(runtime, "fp32")
        say(f"{path.name}: converting (one step: {S} frames and a state of {size} values)")
        if runtime == "onnx":
            onnx_export.export_fp32(step, example, path, input_names=ONNX_INPUTS, output_names=ONNX_OUTPUTS)
        else:
            path.write_bytes(tflite_export.export_fp32(step, example))
        entries[path.name] = _entry(path, runtime, "fp32", "none")
        if not int8:
            continue
        q8 = staging / step_file(runtime, "int8")
        say(f"{q8.name}: quantizing (dynamic-range int8)")
        if runtime == "onnx":
            onnx_export.quantize_int8(path, q8, "dynamic", np.zeros((0,), np.float32))
        else:
            if cal_frames is None:
                # Every step of every calibration window with the state it starts from, step by step
                # (all windows' step 1, then step 2...), as run_steps lists the states.
                _, cal_states = run_steps(_TorchStep(step), calibration, S, size)
                cal_frames = np.concatenate([calibration[:, :, n * S : (n + 1) * S] for n in range(calibration.shape[2] // S)])
            buf, _ = tflite_export.export_int8(step, example, "dynamic", (cal_frames, cal_states))
            q8.write_bytes(buf)
        entries[q8.name] = _entry(q8, runtime, "int8", QUANTIZATION[runtime])

    say(f"verifying the step files: {len(x)} windows, and the windows end to end as one stream")
    with torch.no_grad():
        window_ref = np.concatenate([model(torch.from_numpy(x[i : i + 64])).numpy() for i in range(0, len(x), 64)])
    L = x.shape[2] // S
    joined = np.ascontiguousarray(np.concatenate(list(x[:FULL_SEQUENCE_WINDOWS]), axis=1))  # (F, n * W)
    full_ref = full_sequence_logits(model, torch.from_numpy(joined)).numpy()
    rows, failures = [], []
    for name, entry in entries.items():
        runner = _FileStep(staging / name, entry)
        xs = x if entry["runtime"] == "onnx" else x[:_TFLITE_WINDOWS]
        last = run_steps(runner, xs, S, size)[0][:, L - 1]  # (N, n_classes): after each window's last whole step
        full = run_steps(runner, joined[None], S, size)[0][0]
        window_diff = float(np.max(np.abs(last - window_ref[: len(xs)])))
        full_diff = float(np.max(np.abs(full - full_ref)))
        frames, state = np.ascontiguousarray(x[:1, :, :S]), np.zeros((1, size), np.float32)
        row = {"file": name, "windows": int(len(xs)), "accuracy": float(np.mean(last.argmax(1) == y[: len(xs)])),
               "agreement": float(np.mean(last.argmax(1) == window_ref[: len(xs)].argmax(1))),
               "max_abs_logit_diff": window_diff, "full_sequence_steps": int(full.shape[0]),
               "full_sequence_max_abs_logit_diff": full_diff,
               "full_sequence_agreement": float(np.mean(full.argmax(1) == full_ref.argmax(1))),
               "bytes": entry["bytes"], "latency_ms_per_step": _median_ms(lambda: runner.run(frames, state), latency_runs)}  # fmt: skip
        rows.append(row)
        if entry["precision"] == "fp32" and not max(window_diff, full_diff) <= FP32_TOLERANCE:
            failures.append(f"{name}: logits differ from PyTorch's by up to {max(window_diff, full_diff):.3g} "
                            f"(more than {FP32_TOLERANCE:g})")  # fmt: skip
    drops = []
    by_file = {row["file"]: row for row in rows}
    for runtime in runtimes if int8 else ():
        before, after = by_file[step_file(runtime, "fp32")]["accuracy"], by_file[step_file(runtime, "int8")]["accuracy"]
        if 100.0 * (before - after) > max_drop:
            drops.append(f"{step_file(runtime, 'int8')}: window accuracy {100 * after:.2f}% is {100 * (before - after):.2f} points "
                         f"below {step_file(runtime, 'fp32')}'s {100 * before:.2f}% (--max-drop {max_drop:g})")  # fmt: skip
    section = {
        "step_frames": S,
        "steps_pooled": step.steps_pooled,
        "pooling": step.pooling,
        "state": {"size": size, "dtype": "float32", "bytes": 4 * size, "layout": step.state_layout()},
        "output": ("logits after each step of frames numbered from the stream's start: the head of the mean of the "
                   "last steps_pooled step outputs (pooling 'mean', zeros before the first step) or of the last one "
                   "('last'); the LSTM's state is carried from step to step and never reset by the model"),
        "files": entries,
        "verification": {"windows": int(len(x)), "window_steps": L, "rows": rows,
                         "tolerance_logits": {"fp32": FP32_TOLERANCE}},  # fmt: skip
    }
    return section, failures, drops


def streaming_reference(staging: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``streaming.reference`` entry: what each step file emits for ``reference.wav`` streamed whole.

    The reference windows lie end to end, so emissions every ``window_frames`` frames fall at their
    ends; the first is the window model's first window. Computed through the device runtime, as the
    self-check will (:func:`pyharmonies.runtime.selfcheck.check_streaming`). ``staging`` holds the
    files, ``reference.wav`` and a provisional manifest is written there first.
    """
    from pyharmonies.export.reference import _pairs, _round, _separated
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.classifier import input_features
    from pyharmonies.runtime.selfcheck import TOLERANCE, log_softmax, read_reference_audio
    from pyharmonies.runtime.stepmodel import StepBackend
    from pyharmonies.runtime.streaming import LSTMStreamer, stream_logits

    bundle.write_manifest(staging, manifest)
    loaded = load_bundle(staging, selfcheck=False)
    y = read_reference_audio(staging / manifest["reference"]["file"], loaded.feature_config.sample_rate)
    features = input_features(y, loaded.feature_config, "frame_vector")
    hop = loaded.window_frames
    expected, emit_frames, notes = {}, [], []
    pairs = _pairs(len(loaded.labels))
    for name, sf in loaded.streaming.files.items():
        emit_frames, logits = stream_logits(LSTMStreamer(loaded, StepBackend(loaded, sf), hop_frames=hop), features)
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
    """The report's section on the step files: the state, and their agreement with PyTorch."""
    v, state = section["verification"], section["state"]
    pooled = (f"the mean of the last {section['steps_pooled']} step outputs" if section["pooling"] == "mean"
              else "the last step's output")  # fmt: skip
    lines = ["## Streaming (step model)", "",
             f"`listen` and `classify --streaming` run the LSTM one step ({section['step_frames']} frames) at a time with "
             f"its state carried: {state['size']:,} float32 values ({state['bytes']:,} bytes: "
             + ", ".join(f"{p['name']} {p['shape'][0]} x {p['shape'][1]}" for p in state["layout"])
             + f"); the output after each step is the head of {pooled}.", "",
             f"Window: {v['windows']} windows of {v['window_steps']} steps, each from a zero state, against the window "
             "model in PyTorch. Full sequence: the windows end to end as one stream against the full-sequence model "
             f"(PyTorch). fp32 files must stay within {v['tolerance_logits']['fp32']:g}.", "",
             "| file | bytes | window accuracy | agreement | max abs logit diff (window) | steps | max abs logit diff "
             "(full sequence) | latency per step (1 thread) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in v["rows"]:
        lines.append(f"| {row['file']} | {row['bytes']:,} | {100 * row['accuracy']:.2f}% | {100 * row['agreement']:.2f}% | "
                     f"{row['max_abs_logit_diff']:.2e} | {row['full_sequence_steps']} | "
                     f"{row['full_sequence_max_abs_logit_diff']:.2e} | {1000 * row['latency_ms_per_step']:.1f} us |")  # fmt: skip
    quantized = {name: e["quantization"] for name, e in section["files"].items() if e["precision"] == "int8"}
    if quantized:
        lines += [""] + [f"- {name}: {text}." for name, text in quantized.items()]
    return lines
