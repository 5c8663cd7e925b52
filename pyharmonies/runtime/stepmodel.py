"""The LSTM's step models on the device: the manifest's ``streaming`` section, and a step model in a runtime.

A bundle of a unidirectional LSTM carries, beside its window model, a step
model (``step.<precision>.<runtime>``): one step's frame vectors and the
state in, the logits and the new state out; and, when the bundle's hop holds
``k >= 2`` whole steps, a *hop model* (``hop.<precision>.<runtime>``): the
same for ``k`` steps in one call (the frames of ``k`` steps in, the logits
after the last), so that a stream answering every hop makes one runtime call
per hop instead of ``k``. What the streamed output is, and
the full-sequence model it equals, are defined in
:mod:`pyharmonies.models.lstm_step` (workstation side) and restated in
``docs/DESIGN.md`` ("Streaming"); :mod:`pyharmonies.runtime.streaming` feeds
it. A bundle without the section (an older export, or a bidirectional LSTM,
which cannot stream) loads as before and streams the windowed way.

Manifest section (optional)::

    "streaming": {
      "step_frames": int,       frames averaged into one step (the LSTM's segment)
      "steps_pooled": int,      K: outputs the state's ring keeps (the window's steps); 0 with "last" pooling
      "pooling": "mean" | "last",
      "state": {"size": int, "dtype": "float32", "bytes": int,
                "layout": [{"name": "h" | "c" | "ring", "offset": int, "shape": [rows, hidden]}, ...]},
      "files": {"step.int8.tflite": {...a model file's entry: sha256, bytes, runtime, precision, quantization,
                                     "input": the frames tensor, "output": the logits tensor...,
                                     "state_input": tensor, "state_output": tensor,
                                     "steps": int (steps per call; 1 when absent)}, ...},
      "verification": {...}, "tolerance_logits": {...},
      "reference": {"emit_frames": [int, ...], "tolerance_nats": {...}, "expected": {file: {label: [...]}}}}

Inputs: frames ``(1, rows, steps * step_frames)`` normalised like the window
model's input, state ``(1, size)`` float32. Outputs: logits ``(1, n_labels)``
after the last step and the new state ``(1, size)``. Tensors are found by the
names the manifest records. Every file of more than one step has a one-step
sibling of its runtime and precision (a stream runs the steps left over when
a hop is not a multiple of ``steps`` through it).

Device side: numpy and one runtime, imported when a backend is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pyharmonies.errors import BundleError, ParameterError

if TYPE_CHECKING:  # runtime.bundle imports this module while it parses a manifest
    from pyharmonies.runtime.bundle import Bundle, ModelFile, TensorSpec

__all__ = ["STEP_POOLINGS", "StepBackend", "StepFile", "StreamingSpec", "choose_step_file", "hop_file_for", "parse_streaming"]

#: How a stream pools its step outputs (the LSTM's own ``pooling``).
STEP_POOLINGS: tuple[str, ...] = ("mean", "last")

#: Largest state a step model may carry, in float32 values (a real one is a few thousand).
MAX_STATE_SIZE = 1_000_000

#: Most steps one call of a step model may take (a hop model's are a hop's: tens).
MAX_STEPS = 4096


@dataclass(frozen=True)
class StepFile:
    """A step model file: its :class:`~pyharmonies.runtime.bundle.ModelFile` (``input`` is the frames tensor,
    ``output`` the logits), its state tensors and the steps it takes per call (1: the step model; more: a hop model)."""

    file: ModelFile
    state_input: TensorSpec
    state_output: TensorSpec
    steps: int = 1

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def runtime(self) -> str:
        return self.file.runtime

    @property
    def precision(self) -> str:
        return self.file.precision


@dataclass(frozen=True, eq=False)
class StreamingSpec:
    """The manifest's ``streaming`` section, parsed and checked.

    Attributes
    ----------
    step_frames : int
        Frames per step.
    steps_pooled : int
        Outputs the ring holds (mean pooling), 0 for last-output pooling.
    pooling : str
    state_size : int
        Float32 values of the state.
    layout : tuple of dict
        ``{"name", "offset", "shape"}`` per part of the state.
    files : dict of str to StepFile
        The step files (``steps == 1``) and the hop files (``steps > 1``).
    reference : dict or None
        The self-check's stored values (None in a provisional manifest).
    section : dict
        The section as read.
    """

    step_frames: int
    steps_pooled: int
    pooling: str
    state_size: int
    layout: tuple[dict[str, Any], ...]
    files: dict[str, StepFile] = field(repr=False)
    reference: dict[str, Any] | None = field(default=None, repr=False)
    section: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def state_bytes(self) -> int:
        """Bytes of the state (float32): what a stream keeps between steps, besides one step's frames."""
        return 4 * self.state_size


def parse_streaming(f: Any, directory: Path, section: Any, *, window_frames: int, rows: int, verify: bool) -> StreamingSpec | None:
    """The optional ``streaming`` section of a manifest, its files checked like the window model's.

    Parameters
    ----------
    f : bundle._Fields
        Typed field access that names the bundle in errors.
    directory : Path
    section : object
        ``manifest.get("streaming")``.
    window_frames, rows : int
        The window model's, which the section must agree with.
    verify : bool
        Check the files' sizes and SHA-256.

    Returns
    -------
    StreamingSpec or None
        None when the manifest has no such section.

    Raises
    ------
    BundleError
        A malformed section (naming the field), or a file missing or modified.
    """
    from pyharmonies.runtime.bundle import _check_file, _model_file, _tensor

    if section is None:
        return None
    if not isinstance(section, dict):
        raise f.fail("'streaming' must be an object")
    step = f.get(section, "step_frames", int, "streaming.step_frames")
    pooled = f.get(section, "steps_pooled", int, "streaming.steps_pooled")
    pooling = f.get(section, "pooling", str, "streaming.pooling")
    if not 1 <= step <= window_frames:
        raise f.fail(f"'streaming.step_frames' must be in [1, {window_frames}] (the window's frames), got {step}")
    if pooling not in STEP_POOLINGS:
        raise f.fail(f"'streaming.pooling' must be one of {', '.join(STEP_POOLINGS)}, got {pooling!r}")
    want = window_frames // step if pooling == "mean" else 0
    if pooled != want:
        raise f.fail(f"'streaming.steps_pooled' is {pooled}; {pooling} pooling over windows of {window_frames} frames "
                     f"in steps of {step} keeps {want}")  # fmt: skip
    state = f.get(section, "state", dict, "streaming.state")
    size = f.get(state, "size", int, "streaming.state.size")
    if not 1 <= size <= MAX_STATE_SIZE:
        raise f.fail(f"'streaming.state.size' must be in [1, {MAX_STATE_SIZE}], got {size}")
    if f.get(state, "dtype", str, "streaming.state.dtype") != "float32":
        raise f.fail("'streaming.state.dtype' must be 'float32'")
    layout = _layout(f, f.get(state, "layout", list, "streaming.state.layout"), size, pooled)

    listed = f.get(section, "files", dict, "streaming.files")
    if not listed:
        raise f.fail("'streaming.files' lists no step model file")
    files: dict[str, StepFile] = {}
    seen: dict[tuple[str, str, bool], str] = {}
    for name, entry in listed.items():
        mf = _model_file(f, directory, name, entry)
        label = f"streaming.files[{name!r}]"
        steps = entry.get("steps", 1)  # older exports wrote one-step files only, without the field
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise f.fail(f"'{label}.steps' must be an integer in [1, {MAX_STEPS}], got {steps!r:.40}")
        files[name] = StepFile(mf, _tensor(f, entry, f"{label}.state_input"), _tensor(f, entry, f"{label}.state_output"), steps)
        key = (mf.runtime, mf.precision, steps > 1)
        if key in seen:
            kind = "hop" if steps > 1 else "step"
            raise f.fail(f"two {mf.runtime} {mf.precision} {kind} files: {seen[key]} and {name}")
        seen[key] = name
        _check_file(str(directory), mf, verify=verify)
    for (runtime, precision, multi), name in seen.items():
        if multi and (runtime, precision, False) not in seen:
            raise f.fail(f"{name} takes {files[name].steps} steps per call but the bundle has no {runtime} {precision} "
                         "one-step file to run the steps a hop leaves over")  # fmt: skip
    reference = section.get("reference")
    if reference is not None and not isinstance(reference, dict):
        raise f.fail("'streaming.reference' must be an object")
    return StreamingSpec(step, pooled, pooling, size, layout, files, reference, section)


def _layout(f: Any, parts: list[Any], size: int, pooled: int) -> tuple[dict[str, Any], ...]:
    """The state layout, checked: h, c (and the ring with mean pooling), contiguous, filling ``size`` values."""
    names = [p.get("name") if isinstance(p, dict) else None for p in parts]
    want = ["h", "c", "ring"] if pooled else ["h", "c"]
    if names != want:
        raise f.fail(f"'streaming.state.layout' must list {', '.join(want)} in that order, got {names!r:.80}")
    offset = 0
    out = []
    for part in parts:
        shape = part.get("shape")
        if (part.get("offset") != offset or not isinstance(shape, list) or len(shape) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):  # fmt: skip
            raise f.fail(f"'streaming.state.layout' part {part.get('name')!r} must start at {offset} with a shape [rows, width]")
        offset += math.prod(shape)
        out.append({"name": part["name"], "offset": int(part["offset"]), "shape": [int(v) for v in shape]})
    if offset != size:
        raise f.fail(f"'streaming.state.layout' covers {offset} values; 'streaming.state.size' is {size}")
    if pooled and out[2]["shape"][0] != pooled:
        raise f.fail(f"the state's ring holds {out[2]['shape'][0]} outputs; 'streaming.steps_pooled' is {pooled}")
    return tuple(out)


def choose_step_file(bundle: Bundle, backend: str = "auto", precision: str = "auto") -> StepFile:
    """The one-step file to run, int8 first (the device's model) in an installed runtime, as for the window model.

    Its hop model, if the bundle has one, is :func:`hop_file_for` it.

    Raises
    ------
    BundleError
        The bundle has no step model (an older export, a bidirectional LSTM, or not an LSTM), or none that an
        installed runtime runs in the asked precision.
    """
    from pyharmonies.runtime.backends import BACKEND_CHOICES, PRECISION_CHOICES, available_backends
    from pyharmonies.runtime.bundle import PRECISIONS, RUNTIMES

    if backend not in BACKEND_CHOICES or precision not in PRECISION_CHOICES:
        raise ParameterError(f"backend must be one of {', '.join(BACKEND_CHOICES)} and precision one of "
                             f"{', '.join(PRECISION_CHOICES)}, got {backend!r}, {precision!r}")  # fmt: skip
    spec = bundle.streaming
    if spec is None:
        raise BundleError(f"{bundle.path}: this bundle has no step model to stream with (only LSTM bundles exported by "
                          "this harmonies have one, and not a bidirectional LSTM's): it streams the windowed way")  # fmt: skip
    installed = available_backends()
    for p in PRECISIONS if precision == "auto" else (precision,):
        for runtime in RUNTIMES if backend == "auto" else (backend,):
            for sf in spec.files.values():
                if sf.steps == 1 and sf.runtime == runtime and sf.precision == p and runtime in installed:
                    return sf
    raise BundleError(f"{bundle.path}: no {precision} {backend} step file that an installed runtime runs "
                      f"(the bundle holds {', '.join(spec.files)}; installed: {', '.join(installed) or 'none'})")  # fmt: skip


def hop_file_for(bundle: Bundle, step_file: StepFile) -> StepFile | None:
    """The hop model of ``step_file``'s runtime and precision (more than one step per call), or None."""
    spec = bundle.streaming
    for sf in spec.files.values() if spec is not None else ():
        if sf.steps > 1 and sf.runtime == step_file.runtime and sf.precision == step_file.precision:
            return sf
    return None


class StepBackend:
    """One step (or hop) model file in a runtime: :meth:`run` maps (frames, state) to (logits, new state).

    Parameters
    ----------
    bundle : Bundle
        With a ``streaming`` section.
    step_file : StepFile
    threads : int
        Intra-op threads (1: one core).

    The file's inputs and outputs are found by the names the manifest
    records, and their shapes checked against the bundle at load.

    Attributes
    ----------
    steps : int
        Steps per call (the file's): each call takes ``steps * step_frames`` frames.
    calls : int
        Calls run so far (a benchmark's and a test's count).
    """

    def __init__(self, bundle: Bundle, step_file: StepFile, *, threads: int = 1):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ParameterError(f"threads must be an integer >= 1, got {threads!r}")
        spec = bundle.streaming
        self.bundle = bundle
        self.file = step_file
        self.runtime = step_file.runtime
        self.precision = step_file.precision
        self.threads = threads
        self.steps = step_file.steps
        self.calls = 0
        self.n_labels = len(bundle.labels)
        self.frames_shape = (bundle.rows, self.steps * spec.step_frames)
        self.state_size = spec.state_size
        names = {"frames": step_file.file.input.name, "state": step_file.state_input.name,
                 "logits": step_file.file.output.name, "state_out": step_file.state_output.name}  # fmt: skip
        for spec_t in (step_file.file.input, step_file.state_input, step_file.file.output, step_file.state_output):
            if spec_t.dtype != "float32":
                raise self._mismatch(f"tensor {spec_t.name!r} is {spec_t.dtype}; step models take and give float32")
        if self.runtime == "tflite":
            self._load_tflite(names, threads)
        else:
            self._load_onnx(names, threads)

    def _mismatch(self, text: str) -> BundleError:
        return BundleError(f"{self.bundle.path}: {self.file.name}: {text}; the bundle is inconsistent (re-export it)")

    def _check_shapes(self, shapes: dict[str, tuple[Any, ...]]) -> None:
        want = {"frames": self.frames_shape, "state": (self.state_size,), "logits": (self.n_labels,), "state_out": (self.state_size,)}
        for role, shape in shapes.items():
            if tuple(shape[1:]) != want[role] and not any(not isinstance(v, (int, np.integer)) for v in shape[1:]):
                raise self._mismatch(f"its {role} tensor is shaped {tuple(shape)}, the manifest implies (batch, "
                                     f"{', '.join(map(str, want[role]))})")  # fmt: skip

    def _load_tflite(self, names: dict[str, str], threads: int) -> None:
        from pyharmonies.runtime.backends import _tflite_interpreter

        interpreter_cls, self.provider = _tflite_interpreter()
        try:
            self._interp = interpreter_cls(model_path=str(self.file.file.path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise BundleError(f"{self.bundle.path}: {self.file.name}: {self.provider} cannot load it ({err})") from None
        details = {d["name"]: d for d in (*self._interp.get_input_details(), *self._interp.get_output_details())}
        missing = [n for n in names.values() if n not in details]
        if missing:
            raise self._mismatch(f"the file has no tensor named {', '.join(map(repr, missing))}")
        self._index = {role: details[name]["index"] for role, name in names.items()}
        self._check_shapes({role: tuple(int(v) for v in details[name]["shape"]) for role, name in names.items()})
        if int(details[names["frames"]]["shape"][0]) != 1:
            raise self._mismatch("its batch is not 1")

    def _load_onnx(self, names: dict[str, str], threads: int) -> None:
        import onnxruntime as ort

        self.provider = "onnxruntime"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.file.file.path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for a bad model
            raise BundleError(f"{self.bundle.path}: {self.file.name}: onnxruntime cannot load it ({err})") from None
        args = {a.name: a for a in (*self._session.get_inputs(), *self._session.get_outputs())}
        missing = [n for n in names.values() if n not in args]
        if missing:
            raise self._mismatch(f"the file has no tensor named {', '.join(map(repr, missing))}")
        self._names = names
        self._check_shapes({role: tuple(args[name].shape) for role, name in names.items()})

    def describe(self) -> str:
        """``int8 tflite step model (ai-edge-litert, step.int8.tflite)``, or ``... hop model of 16 steps (...)``."""
        what = "step model" if self.steps == 1 else f"hop model of {self.steps} steps"
        return f"{self.precision} {self.runtime} {what} ({self.provider}, {self.file.name})"

    def run(self, frames: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One call: ``steps`` steps of a batch of streams.

        Parameters
        ----------
        frames : np.ndarray, shape (batch, rows, steps * step_frames), float32
            Normalised frame vectors of the steps.
        state : np.ndarray, shape (batch, state_size), float32

        Returns
        -------
        logits : np.ndarray, shape (batch, n_labels), float32
        state : np.ndarray, shape (batch, state_size), float32
            A new array (the runtime's buffers are copied).
        """
        self.calls += 1
        if self.runtime == "onnx":
            logits, new = self._session.run([self._names["logits"], self._names["state_out"]],
                                            {self._names["frames"]: frames, self._names["state"]: state})  # fmt: skip
            return logits, new
        outs_l, outs_s = [], []
        interp, index = self._interp, self._index
        for b in range(frames.shape[0]):
            interp.set_tensor(index["frames"], frames[b : b + 1])
            interp.set_tensor(index["state"], state[b : b + 1])
            interp.invoke()
            outs_l.append(interp.get_tensor(index["logits"]))
            outs_s.append(interp.get_tensor(index["state_out"]))
        if len(outs_l) == 1:
            return outs_l[0], outs_s[0]
        return np.concatenate(outs_l), np.concatenate(outs_s)
