"""ONNX files: fp32 from PyTorch, int8 with onnxruntime's quantizer.

fp32: the TorchScript exporter (opset 17, a dynamic batch axis; the
torch.export-based exporter needs onnxscript, which the workstation
environment does not carry). int8: static QDQ quantization (per-channel int8
weights, int8 activations calibrated on training windows) for the CNN, and
dynamic quantization for the LSTM, whose ``LSTM`` op onnxruntime's static
quantizer does not cover, and for the transformer (``dynamic-dense``: static
QDQ converts it too, but was slower than fp32 and larger than dynamic, with
less int8 agreement; export/README.md has the figures).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyharmonies.export.errors import ExportError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17

#: Rows per calibration batch fed to onnxruntime (the batch axis is dynamic).
_CALIBRATION_BATCH = 32

#: Quantization methods: the name used in code -> what the manifest and report say.
METHODS = {
    "static": "static int8, per-channel weights, int8 activations (QDQ)",
    "dynamic": (
        "dynamic-range int8: int8 weights, activations quantized per call at run time (DynamicQuantizeLSTM, "
        "MatMulInteger), float input and output; onnxruntime's static (QDQ) quantization does not cover the LSTM op"
    ),
    # The same onnxruntime call, for a graph of dense layers around float attention and layer norms.
    "dynamic-dense": (
        "dynamic-range int8: int8 weights in every dense layer (MatMulInteger), each layer's input quantized per call "
        "at run time with one scale for the call's whole batch; the attention products, softmax, layer norms and "
        "residual additions stay float; float input and output"
    ),
}


def export_fp32(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], path: Path, *,
                input_names: tuple[str, ...] = (INPUT_NAME,), output_names: tuple[str, ...] = (OUTPUT_NAME,)) -> None:  # fmt: skip
    """Write ``model`` (eval mode, BatchNorm already folded) as an fp32 ONNX file with a dynamic batch axis.

    ``example`` is the input, or a tuple of inputs (the LSTM's step model takes frames and a state);
    ``input_names`` and ``output_names`` name them in order, each with a dynamic axis 0.
    """
    args = example if isinstance(example, tuple) else (example,)
    with warnings.catch_warnings():
        # onnxscript is not installed, so the TorchScript exporter (dynamo=False) is the one that runs;
        # torch deprecates it (and one helper it calls) in favour of the dynamo exporter.
        warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"The feature will be removed", category=DeprecationWarning)
        # nn.LSTM branches on tensor properties while traced; the window shape is fixed per model, so the
        # recorded branch is the one every window takes.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # The LSTM is exported at batch 1 with zero initial states built from the input's batch size;
        # verification runs batches of 64 through the file and compares them with PyTorch.
        warnings.filterwarnings("ignore", message=r"Exporting a model to ONNX with a batch_size other than 1", category=UserWarning)
        torch.onnx.export(
            model.eval(),
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in (*input_names, *output_names)},
            do_constant_folding=True,
        )
    check_no_batchnorm(path)


def quantize_int8(fp32_path: Path, path: Path, method: str, calibration: np.ndarray) -> str:
    """Write an int8 ONNX file from the fp32 one; returns the method's description.

    Parameters
    ----------
    fp32_path, path : Path
    method : {"static", "dynamic", "dynamic-dense"}
        ``static``: QDQ, per-channel int8 weights, int8 activations whose
        ranges (min/max) come from ``calibration``; ``dynamic`` and
        ``dynamic-dense`` (the same quantization, described for another
        graph): int8 weights, activations quantized per call.
    calibration : np.ndarray
        Normalised training windows in the model's layout (static only).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise ExportError(f"unknown ONNX quantization method {method!r}; expected one of {', '.join(METHODS)}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(np.array_split(calibration, max(1, -(-len(calibration) // _CALIBRATION_BATCH))))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(prefix="harmonies-onnx-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Shape inference and graph clean-up, as onnxruntime recommends before quantizing.
        quant_pre_process(str(fp32_path), str(pre))
        # 7-bit weights (reduce_range): on x86-64 CPUs without VNNI, onnxruntime multiplies 8-bit
        # activations by 8-bit weights with an instruction that adds pairs of products into 16 bits,
        # which saturates (255 * 127 * 2 > 32767); with 7-bit weights it cannot. On an AVX2 machine
        # (AMD EPYC, no VNNI) a test CNN's int8 embedding fell to cosine 0.979 against PyTorch with
        # 8-bit weights, below the bundle self-check's 0.98. ARM and VNNI CPUs never saturate here.
        if method == "static":
            quantize_static(
                str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            )  # fmt: skip
        else:
            quantize_dynamic(str(pre), str(path), weight_type=QuantType.QInt8, reduce_range=True)
    check_no_batchnorm(path)
    return METHODS[method]


def op_types(path: Path) -> set[str]:
    """The op types of an ONNX file's main graph."""
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def check_no_batchnorm(path: Path) -> None:
    """Raise ExportError if the graph still holds a ``BatchNormalization`` node."""
    if "BatchNormalization" in op_types(path):
        raise ExportError(f"{path.name}: BatchNormalization left in the graph (it should have been folded into its Conv)")


def io_details(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``input`` and ``output`` entries of an ONNX file (float in, float out)."""
    inputs, outputs = io_all(path)
    return inputs[0], outputs[0]


def io_all(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The manifest entries of every input and every output of an ONNX file, in the graph's order."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def entry(arg) -> dict[str, Any]:
        if arg.type != "tensor(float)":
            raise ExportError(f"{path.name}: {arg.name} is {arg.type}; the bundle format expects float tensors in ONNX files")
        return {"name": arg.name, "dtype": "float32", "scale": None, "zero_point": None}

    return [entry(arg) for arg in session.get_inputs()], [entry(arg) for arg in session.get_outputs()]
