"""TFLite (LiteRT) files: fp32 and int8 straight from PyTorch with litert-torch.

int8 goes through PT2E quantization (torch.export, observers calibrated on
training windows, then litert-torch lowers the quantized graph):

- ``full``: full integer, per-channel int8 weights and int8 activations,
  with an int8 input and output whose scale and zero point the manifest
  records (the CNN);
- ``dynamic``: dynamic-range int8, int8 weights with float activations, the
  input and output float (the LSTM: the converter does not annotate the LSTM
  gates' additions and tanh for full int8);
- ``dynamic-dense``: the same quantization, described for the transformer,
  whose dense layers are its only int8 ops: the converter's static int8
  leaves its layer norms, attention products, softmax and residual additions
  in float too, between QUANTIZE/DEQUANTIZE pairs and behind a float input,
  for no gain in speed (export/README.md has the figures).

The converter names every tensor after its module path (tens of KB in a file
of a few hundred); :func:`strip_tensor_names` blanks all names but those of
the input and output.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from pyharmonies.export.errors import ExportError

#: Windows per calibration call through the PT2E observers.
_CALIBRATION_BATCH = 50

#: Upper bound of the batch axis of the graph that is calibrated (the converted file has batch 1).
_MAX_BATCH = 4096

#: Quantization methods: the name used in code -> what the manifest and report say.
METHODS = {
    "full": "full integer int8: per-channel int8 weights, int8 activations, int8 input and output (PT2E, static)",
    "dynamic": (
        "dynamic-range int8 weights, float activations (PT2E); full int8 is not supported by the converter "
        "for LSTM gates"
    ),
    "dynamic-dense": (
        "dynamic-range int8: int8 weights in every dense layer (FULLY_CONNECTED, its input quantized per call), the "
        "attention products, softmax, layer norms and residual additions float (PT2E); the converter's static int8 "
        "leaves these float too"
    ),
}


class _BiasAfter(nn.Module):
    """``linear(x) + bias`` as two ops: a bias-free ``nn.Linear``, then an addition of the bias."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = nn.Linear(linear.in_features, linear.out_features, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(linear.weight)
        self.register_buffer("bias", linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.bias  # (B, in) -> (B, out)


def _head_bias_as_add(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``head`` adds its bias after the matrix product (the linear probe's).

    litert-torch quantizes a fully connected layer's int32 bias at the scale
    of the pooled features as observed at the layer's input, but feeds the
    layer the pooled tensor at the pooling's own (coarser) scale, dropping the
    requantization between them: the bias reaches the logits multiplied by
    the ratio of the two (about 3.9 measured). A CNN trained end to end has
    small biases (int8 within a point of fp32 on every fold); a linear probe's
    head, whose bias holds the folded standardisation (``b - W' @ mean``),
    lost 14-39 points on five folds. Added after the int8 matrix product, in
    float (the converter leaves an addition of a constant unquantized), the
    bias is exact; the file's output is then float32 logits.
    """
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or head.bias is None:
        return model
    import copy

    split = copy.deepcopy(model).eval()
    split.head = _BiasAfter(head)
    return split


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """Silence litert-torch's progress lines and the converter's native log lines.

    Output written to file descriptors 1 and 2 meanwhile (C++ logging cannot be
    turned off from Python) goes to a temporary file, replayed on stderr if the
    block raises, so that a failed conversion still shows what the converter said.
    """
    saved_env = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = tempfile.TemporaryFile()
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with warnings.catch_warnings():
                # torch's pytree deprecates LeafSpec checks that litert-torch (and torch.export's own
                # copy of an exported program) still make; nothing in this package calls them.
                warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
                # nn.LSTM re-assigns its _flat_weights list in forward(); torch.export notes the assignment.
                # The tensors are the module's own parameters, so the exported values are the trained ones.
                warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights", category=UserWarning)
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode("utf-8", "replace"))
        raise
    finally:
        for fd in saved:
            os.close(fd)
        log.close()
        if saved_env is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved_env


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def export_fp32(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...]) -> bytes:
    """The fp32 TFLite flatbuffer of ``model`` (eval mode, BatchNorm already folded), batch 1, names stripped.

    ``example``: the input, or a tuple of inputs (the LSTM's step model takes frames and a state).
    """
    with _quiet_converter():
        import litert_torch

        edge = litert_torch.convert(model.eval(), _as_tuple(example))
        buf = edge.model_content()
    return strip_tensor_names(buf)


def export_int8(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], method: str,
                calibration: np.ndarray | tuple[np.ndarray, ...], *, head_bias_as_add: bool = False) -> tuple[bytes, str]:  # fmt: skip
    """An int8 TFLite flatbuffer of ``model``, batch 1, and the method's description.

    Parameters
    ----------
    model : nn.Module
        Eval mode, BatchNorm already folded.
    example : torch.Tensor or tuple of torch.Tensor
        One window, batch 1 (or one batch-1 tensor per input of a model with several).
    method : {"full", "dynamic", "dynamic-dense"}
        See the module docstring.
    calibration : np.ndarray
        Normalised training windows in the model's layout, batch first, run
        through the observers (``dynamic`` quantizes the LSTM's
        activations at run time, but the ops around it keep static observers);
        a tuple of such arrays, one per input, for a model with several.
    head_bias_as_add : bool
        With ``full``: the classifier's bias added in float after its int8
        matrix product (:func:`_head_bias_as_add`; the linear probe), the
        output float32 logits.
    """
    if method not in METHODS:
        raise ExportError(f"unknown TFLite quantization method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "full" and head_bias_as_add:
        model = _head_bias_as_add(model)
    with _quiet_converter():
        import litert_torch
        from litert_torch.quantize import pt2e_quantizer, quant_config
        from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=method != "full")
        )
        # Exported with a dynamic batch axis (the example has two windows: torch.export specialises a
        # size of 1), so that the observers see a batch of windows per call: the converter's default
        # activation observer is a histogram whose per-call cost dominates one window at a time.
        examples, calibrations = _as_tuple(example), _as_tuple(calibration)
        pairs = tuple(torch.cat([e, e]).contiguous() for e in examples)
        batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
        graph = torch.export.export(model.eval(), pairs, dynamic_shapes=tuple({0: batch} for _ in pairs)).module()
        prepared = move_exported_model_to_eval(quantize_pt2e.prepare_pt2e(graph, quantizer))
        with torch.no_grad():
            for start in range(0, len(calibrations[0]), _CALIBRATION_BATCH):
                chunks = (np.ascontiguousarray(c[start : start + _CALIBRATION_BATCH], dtype=np.float32) for c in calibrations)
                prepared(*(torch.from_numpy(chunk) for chunk in chunks))
        quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        edge = litert_torch.convert(quantized, examples, quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
        buf = edge.model_content()
    text = METHODS[method]
    if method == "full" and head_bias_as_add:
        text = text.replace("int8 input and output", "int8 input; the classifier's bias added in float, float32 output")
    return strip_tensor_names(buf), text


def strip_tensor_names(buf: bytes) -> bytes:
    """The flatbuffer with every tensor name blanked except each subgraph's inputs and outputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    for subgraph in model.subgraphs or []:
        keep = set(subgraph.inputs.tolist() if hasattr(subgraph.inputs, "tolist") else subgraph.inputs or [])
        keep |= set(subgraph.outputs.tolist() if hasattr(subgraph.outputs, "tolist") else subgraph.outputs or [])
        for i, tensor in enumerate(subgraph.tensors or []):
            if i not in keep:
                tensor.name = b""
    builder = flatbuffers.Builder(len(buf))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_names(buf: bytes) -> set[str]:
    """The builtin operator names a TFLite flatbuffer uses (``"CONV_2D"``...)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(buf, 0)
    by_code = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names.add(by_code.get(builtin, f"CODE_{builtin}"))
    return names


def io_details(buf: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``input`` and ``output`` entries of a TFLite file: name, dtype, scale, zero point."""
    inputs, outputs = io_all(buf)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(f"a TFLite model with {len(inputs)} input(s) and {len(outputs)} output(s); expected one of each")
    return inputs[0], outputs[0]


def io_all(buf: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The manifest entries of every input and every output of a TFLite file, in the interpreter's order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buf)

    def entry(detail: dict[str, Any]) -> dict[str, Any]:
        dtype = np.dtype(detail["dtype"]).name
        if dtype not in ("float32", "int8"):
            raise ExportError(f"TFLite tensor {detail['name']} is {dtype}; the bundle format expects float32 or int8")
        scale, zero_point = detail["quantization"]
        quantized = dtype == "int8"
        if quantized and not scale > 0:
            raise ExportError(f"TFLite tensor {detail['name']} is int8 without a quantization scale")
        return {
            "name": detail["name"],
            "dtype": dtype,
            "scale": float(scale) if quantized else None,
            "zero_point": int(zero_point) if quantized else None,
        }

    return [entry(d) for d in interpreter.get_input_details()], [entry(d) for d in interpreter.get_output_details()]
