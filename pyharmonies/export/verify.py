"""Cross-runtime verification: the same windows through PyTorch and every exported file.

Each file is run the way a device runs it: one thread, and for an int8
input the window quantized with the recorded scale and zero point,
``q = clip(round(x / scale) + zero_point, -128, 127)``, the int8 output
dequantized as ``(q - zero_point) * scale``. Per file: window accuracy,
top-1 agreement with PyTorch, the largest absolute logit difference from
PyTorch, the file size, and the median latency of one window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

#: Rows per batch when a runtime takes a batch (PyTorch, ONNX Runtime).
_BATCH = 64

#: Calls before the timed ones (allocation, caches, XNNPACK packing).
_WARMUP = 10


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float to int8 with a tensor's scale and zero point (round half to even, saturating)."""
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 to float32 with a tensor's scale and zero point."""
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class PyTorchRunner:
    """The reference: the trained model (BatchNorm not folded), eval mode, CPU."""

    def __init__(self, model: nn.Module):
        self.model = model.eval()

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([self.model(torch.from_numpy(x[i : i + _BATCH])).numpy() for i in range(0, len(x), _BATCH)])

    def one(self, window: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(window[None])).numpy()

    def timed(self, run: Callable[[], None], runs: int) -> float:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _median_ms(run, runs)
        finally:
            torch.set_num_threads(threads)


class OnnxRunner:
    """An ONNX file in onnxruntime's CPU provider, one intra-op and one inter-op thread."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.session.run(None, {self.input: x[i : i + _BATCH]})[0] for i in range(0, len(x), _BATCH)])

    def one(self, window: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: window[None]})[0]

    def timed(self, run: Callable[[], None], runs: int) -> float:
        return _median_ms(run, runs)


class TFLiteRunner:
    """A TFLite file in the LiteRT interpreter, one thread, batch 1; int8 input and output handled."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.in_q = self.input["quantization"] if self.input["dtype"] == np.int8 else None
        self.out_q = self.output["quantization"] if self.output["dtype"] == np.int8 else None

    def one(self, window: np.ndarray) -> np.ndarray:
        x = window[None]
        x = quantize(x, *self.in_q) if self.in_q else np.ascontiguousarray(x, dtype=np.float32)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        return dequantize(y, *self.out_q) if self.out_q else y.astype(np.float32, copy=True)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.one(w) for w in x])

    def timed(self, run: Callable[[], None], runs: int) -> float:
        return _median_ms(run, runs)


Runner = PyTorchRunner | OnnxRunner | TFLiteRunner


def _median_ms(run: Callable[[], None], runs: int) -> float:
    for _ in range(_WARMUP):
        run()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        run()
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e3)


def verify(
    runners: dict[str, Runner], x: np.ndarray, y: np.ndarray, *, sizes: dict[str, int | None], latency_runs: int = 100
) -> list[dict[str, Any]]:
    """One row per runner: accuracy, agreement and logit difference against ``runners["pytorch"]``, size, latency.

    Parameters
    ----------
    runners : dict
        ``"pytorch"`` first, then file name -> runner.
    x : np.ndarray
        Normalised windows in the model's layout, batch first.
    y : np.ndarray
        Their label indices.
    sizes : dict
        Bytes per file name (None for PyTorch).
    latency_runs : int
        Timed single-window calls per runner (after 10 warm-up calls); the median is reported.

    Returns
    -------
    list of dict
        ``{"file", "accuracy", "agreement", "max_abs_logit_diff", "bytes", "latency_ms"}``;
        ``max_abs_logit_diff`` is None for PyTorch itself.
    """
    reference = runners["pytorch"].logits(x)
    top_ref = reference.argmax(axis=1)
    rows = []
    window = np.ascontiguousarray(x[0])
    for name, runner in runners.items():
        logits = reference if name == "pytorch" else runner.logits(x)
        top = logits.argmax(axis=1)
        rows.append({
            "file": name,
            "accuracy": float(np.mean(top == y)),
            "agreement": float(np.mean(top == top_ref)),
            "max_abs_logit_diff": None if name == "pytorch" else float(np.max(np.abs(logits - reference))),
            "bytes": sizes.get(name),
            "latency_ms": runner.timed(lambda r=runner: r.one(window), latency_runs),
        })  # fmt: skip
    return rows
