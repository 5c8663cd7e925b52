"""Inference backends: LiteRT / TFLite and ONNX Runtime behind one ``run``.

A backend runs one model file of a bundle. It takes normalised float32
features shaped as the model reads them (``(batch, 1, rows, frames)`` or
``(batch, rows, frames)``) and returns float32 logits ``(batch, n_labels)``;
int8 inputs are quantized and int8 outputs dequantized with the scale and
zero point the manifest records, after checking that the model file reports
the same ones.

``backend="auto"`` takes the first runtime installed, in this order:
ai-edge-litert, tflite-runtime (both read ``.tflite`` files), onnxruntime,
among those the bundle has a file for. ``precision="auto"`` takes an int8
file when the bundle holds one that an installed runtime runs (the int8
model is the one made for the device), else an fp32 file.

Device side: numpy and one runtime, imported when a backend is made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from pyharmonies.errors import BundleError, ParameterError
from pyharmonies.runtime.bundle import PRECISIONS, RUNTIMES, Bundle, ModelFile, TensorSpec

#: ``backend=`` choices.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *RUNTIMES)

#: ``precision=`` choices.
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)

# TFLite interpreters, most preferred first: (distribution, module).
_TFLITE_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
)

# The scale a model file reports and the manifest's may differ by float32 rounding only.
_SCALE_RTOL = 1e-5


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def tflite_provider() -> str | None:
    """The TFLite interpreter that ``backend="tflite"`` uses: ``"ai-edge-litert"``,
    ``"tflite-runtime"``, or None when neither is installed."""
    for dist, module in _TFLITE_PROVIDERS:
        if _installed(module):
            return dist
    return None


def available_backends() -> dict[str, str]:
    """The runtimes installed here, in ``auto``'s order of preference.

    Returns
    -------
    dict of str to str
        ``backend name -> the package that provides it``, e.g.
        ``{"tflite": "ai-edge-litert", "onnx": "onnxruntime"}``. Nothing is
        imported: the packages are only found.
    """
    out: dict[str, str] = {}
    provider = tflite_provider()
    if provider is not None:
        out["tflite"] = provider
    if _installed("onnxruntime"):
        out["onnx"] = "onnxruntime"
    return out


def choose(bundle: Bundle, backend: str = "auto", precision: str = "auto") -> ModelFile:
    """The model file that :func:`make_backend` would run, without loading it.

    Raises
    ------
    ParameterError
        An unknown ``backend`` or ``precision``.
    BundleError
        No runtime installed for the files the bundle holds, or the bundle
        has no file of the asked runtime and precision; the message lists
        what it holds and what is installed.
    """
    if backend not in BACKEND_CHOICES:
        raise ParameterError(f"backend must be one of {', '.join(BACKEND_CHOICES)}, got {backend!r}")
    if precision not in PRECISION_CHOICES:
        raise ParameterError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    installed = available_backends()
    runtimes = RUNTIMES if backend == "auto" else (backend,)
    precisions = PRECISIONS if precision == "auto" else (precision,)
    if backend != "auto" and backend not in installed:
        raise BundleError(f"backend {backend!r} is not installed here: {_install_hint(backend)}")
    if not installed:
        raise BundleError(f"no inference runtime is installed: {_install_hint('tflite')} (or {_install_hint('onnx')})")
    # Precision first: the int8 model is the one meant for the device, in whichever runtime has it.
    for p in precisions:
        for runtime in runtimes:
            found = bundle.find_file(runtime, p) if runtime in installed else None
            if found is not None:
                return found
    asked = " ".join(x for x in (precision, backend) if x != "auto")
    have = ", ".join(f"{k} ({v})" for k, v in installed.items())
    raise BundleError(
        f"{bundle.path}: no {asked + ' ' if asked else ''}model file that an installed runtime can run; "
        f"the bundle holds {bundle.describe_files()}; runtimes installed here: {have}"
    )


def _install_hint(backend: str) -> str:
    return "pip install ai-edge-litert (or tflite-runtime)" if backend == "tflite" else "pip install onnxruntime"


def make_backend(bundle: Bundle, backend: str = "auto", precision: str = "auto", *, threads: int = 1) -> Backend:
    """Load one model file of ``bundle`` into an inference runtime.

    Parameters
    ----------
    bundle : Bundle
        From :func:`~pyharmonies.runtime.bundle.load_bundle`.
    backend : {"auto", "tflite", "onnx"}
        ``auto``: ai-edge-litert, else tflite-runtime, else onnxruntime,
        among the runtimes the bundle has files for.
    precision : {"auto", "int8", "fp32"}
        ``auto``: an int8 file when there is one for an allowed runtime
        (int8 in ONNX Runtime is preferred to fp32 in LiteRT), else fp32.
    threads : int
        Intra-op threads of the runtime (1: one core, the device's budget).

    Returns
    -------
    Backend

    Raises
    ------
    BundleError
        No suitable file or runtime (see :func:`choose`), or the model file
        disagrees with the manifest (input shape, dtype, quantization).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParameterError(f"threads must be an integer >= 1, got {threads!r}")
    mf = choose(bundle, backend, precision)
    cls = TFLiteBackend if mf.runtime == "tflite" else OnnxBackend
    return cls(bundle, mf, threads=threads)


# ------------------------------------------------------------ quantization


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float to int8: ``clip(round(x / scale) + zero_point, -128, 127)``.

    Rounds half to even (numpy's ``rint``); values beyond the int8 range
    saturate.
    """
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + np.float32(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Int8 to float32: ``(q - zero_point) * scale``."""
    return ((np.asarray(q, dtype=np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)).astype(np.float32)


class Backend:
    """One model file in a runtime; call :meth:`run`.

    Attributes
    ----------
    name : str
        ``"tflite"`` or ``"onnx"``.
    provider : str
        The package running it (``"ai-edge-litert"``, ``"tflite-runtime"``, ``"onnxruntime"``).
    file : ModelFile
        The file, with its manifest entry.
    precision : str
        ``"fp32"`` or ``"int8"``.
    threads : int
    """

    name = ""

    def __init__(self, bundle: Bundle, file: ModelFile, *, threads: int = 1, n_outputs: int | None = None):
        self.bundle = bundle
        self.file = file
        self.precision = file.precision
        self.threads = threads
        self.input_shape = bundle.model_input_shape  # one window, without the batch axis
        self.n_outputs = len(bundle.labels) if n_outputs is None else n_outputs  # an embedding file: its width
        self.provider = ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.file.name} via {self.provider}, {self.threads} thread(s)>"

    def describe(self) -> str:
        """``int8 tflite (ai-edge-litert, model.int8.tflite)``."""
        return f"{self.precision} {self.name} ({self.provider}, {self.file.name})"

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits of a batch of normalised windows.

        Parameters
        ----------
        x : np.ndarray, shape (batch, *model_input_shape), float32
            Normalised features, ``(batch, 1, rows, frames)`` for an NCHW
            model, ``(batch, rows, frames)`` for an NCT one.

        Returns
        -------
        np.ndarray, shape (batch, n_labels), float32
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ParameterError(
                f"the model takes (batch, {', '.join(map(str, self.input_shape))}) input, got shape {x.shape}"
            )
        spec_in, spec_out = self.file.input, self.file.output
        feed = quantize(x, spec_in.scale, spec_in.zero_point) if spec_in.quantized else np.ascontiguousarray(x)
        out = self._run(feed)
        if spec_out.quantized:
            out = dequantize(out, spec_out.scale, spec_out.zero_point)
        out = np.asarray(out, dtype=np.float32).reshape(x.shape[0], -1)
        if out.shape[1] != self.n_outputs:
            raise BundleError(f"{self.file.name} returned {out.shape[1]} logits; the bundle has {self.n_outputs} labels")
        return out

    def _run(self, feed: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # Shared checks of what the model file itself reports.

    def _mismatch(self, what: str, manifest: Any, model: Any) -> BundleError:
        return BundleError(
            f"{self.bundle.path}: {self.file.name}: the manifest says {what} {manifest}, "
            f"the model file says {model}; the bundle is inconsistent (re-export it)"
        )

    def _check_outputs(self, shape: tuple[Any, ...]) -> None:
        """Refuse at load a model whose output count differs from the label count (not at the first window)."""
        last = shape[-1] if shape else None
        if isinstance(last, (int, np.integer)) and int(last) != self.n_outputs:
            raise BundleError(
                f"{self.bundle.path}: {self.file.name} has {int(last)} outputs but the manifest lists {self.n_outputs} labels "
                f"({', '.join(self.bundle.labels)}); the labels do not belong to this model"
            )

    def _check_quantization(self, role: str, spec: TensorSpec, scale: float, zero_point: int) -> None:
        """Cross-check the manifest's quantization of one tensor with the model file's."""
        if not spec.quantized:
            return
        if not (scale > 0 and abs(scale - spec.scale) <= _SCALE_RTOL * spec.scale and zero_point == spec.zero_point):
            raise self._mismatch(
                f"int8 {role} scale/zero point", f"{spec.scale:.9g}/{spec.zero_point}", f"{scale:.9g}/{zero_point}"
            )


class TFLiteBackend(Backend):
    """A ``.tflite`` file in ai-edge-litert's (or tflite-runtime's) interpreter.

    The exported files have a fixed batch of 1, so a batch is run one
    window at a time (the device classifies one window per hop anyway).
    """

    name = "tflite"

    def __init__(self, bundle: Bundle, file: ModelFile, *, threads: int = 1, n_outputs: int | None = None):
        super().__init__(bundle, file, threads=threads, n_outputs=n_outputs)
        interpreter_cls, self.provider = _tflite_interpreter()
        try:
            self._interp = interpreter_cls(model_path=str(file.path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise BundleError(f"{bundle.path}: {file.name}: {self.provider} cannot load it ({err})") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise self._mismatch("inputs/outputs", "1/1", f"{len(inputs)}/{len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        shape = tuple(int(v) for v in self._in["shape"])
        if shape[1:] != self.input_shape:
            raise self._mismatch("input shape", (None, *self.input_shape), shape)
        self._batch = shape[0]
        self._check_outputs(tuple(int(v) for v in self._out["shape"]))
        for role, spec, detail in (("input", file.input, self._in), ("output", file.output, self._out)):
            dtype = np.dtype(detail["dtype"]).name
            if dtype != spec.dtype:
                raise self._mismatch(f"{role} dtype", spec.dtype, dtype)
            scale, zero_point = detail["quantization"]
            self._check_quantization(role, spec, float(scale), int(zero_point))
        self._in_index, self._out_index = self._in["index"], self._out["index"]

    def _run(self, feed: np.ndarray) -> np.ndarray:
        n, b = feed.shape[0], self._batch
        outs = []
        for start in range(0, n, b):
            part = feed[start : start + b]
            if part.shape[0] < b:  # a fixed batch larger than what is left: pad, then drop
                pad = np.zeros((b - part.shape[0], *part.shape[1:]), dtype=part.dtype)
                part = np.concatenate([part, pad])
            self._interp.set_tensor(self._in_index, np.ascontiguousarray(part))
            self._interp.invoke()
            outs.append(self._interp.get_tensor(self._out_index).reshape(b, -1)[: min(b, n - start)].copy())
        return np.concatenate(outs)


def _tflite_interpreter() -> tuple[Callable[..., Any], str]:
    for dist, module in _TFLITE_PROVIDERS:
        if _installed(module):
            return importlib.import_module(module).Interpreter, dist
    raise BundleError(f"no TFLite interpreter is installed: {_install_hint('tflite')}")


class OnnxBackend(Backend):
    """An ``.onnx`` file in an ONNX Runtime CPU session (dynamic batch)."""

    name = "onnx"

    def __init__(self, bundle: Bundle, file: ModelFile, *, threads: int = 1, n_outputs: int | None = None):
        super().__init__(bundle, file, threads=threads, n_outputs=n_outputs)
        import onnxruntime as ort

        self.provider = "onnxruntime"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no optimizer chatter on the device's console
        try:
            self._session = ort.InferenceSession(str(file.path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for a bad model
            raise BundleError(f"{bundle.path}: {file.name}: onnxruntime cannot load it ({err})") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise self._mismatch("inputs/outputs", "1/1", f"{len(inputs)}/{len(outputs)}")
        shape = tuple(inputs[0].shape)
        fixed = tuple(v for v in shape[1:])
        if len(shape) != len(self.input_shape) + 1 or any(
            isinstance(v, int) and v != want for v, want in zip(fixed, self.input_shape)
        ):
            raise self._mismatch("input shape", (None, *self.input_shape), shape)
        self._check_outputs(tuple(outputs[0].shape))
        # ONNX Runtime reports element types only; the scale and zero point of an
        # int8 input live in the graph's QuantizeLinear nodes (not read here).
        for role, spec, arg in (("input", file.input, inputs[0]), ("output", file.output, outputs[0])):
            dtype = {"tensor(float)": "float32", "tensor(int8)": "int8"}.get(arg.type, arg.type)
            if dtype != spec.dtype:
                raise self._mismatch(f"{role} dtype", spec.dtype, dtype)
        self._input_name, self._output_name = inputs[0].name, outputs[0].name

    def _run(self, feed: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: feed})[0]
