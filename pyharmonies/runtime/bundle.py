"""Reading a model bundle: ``manifest.json`` and the model files it lists.

A bundle is the contract between the workstation and the device
(``docs/DESIGN.md``): the model files plus a manifest holding the exact
:class:`~pyharmonies.features.FeatureConfig`, the labels, the input kind and
window, the normalisation statistics and a SHA-256 per file. The device reads
nothing else, so :func:`load_bundle` checks everything before a model runs:
an unknown format version, a missing or modified file, or a feature
configuration this runtime cannot compute is refused with a
:class:`~pyharmonies.errors.BundleError` that says which, and what to do.

Device side: numpy, the feature core and the standard library only.

Manifest (``format_version`` 1)::

    {"format": "harmonies-bundle", "format_version": 1, "name": str, "created": str,
     "harmonies_version": str,
     "model": {"name": "cnn" | "lstm" | "transformer", "config": {...}, "parameters": int, "macs_per_window": int},
     "labels": [str, ...],
     "input": {"kind": "log_mel" | "frame_vector", "shape": [rows, frames],
               "layout": "NCHW [batch, 1, rows, frames]" | "NCT [batch, rows, frames]",
               "window_frames": int, "window_seconds": float, "hop_frames": int,
               "normalization": {"mean": [rows floats], "std": [rows floats]}},
     "feature_config": FeatureConfig.to_dict(),
     "files": {"model.int8.tflite": {"sha256": hex, "bytes": int, "runtime": "onnx" | "tflite",
                                     "precision": "fp32" | "int8", "quantization": str,
                                     "input": {"name", "dtype", "scale", "zero_point"},
                                     "output": {"name", "dtype", "scale", "zero_point"}}, ...},
     "verification": {...}, "source_run": str,
     "reference": {...},   (the golden self-check: see pyharmonies.runtime.selfcheck)
     "embedding": {"dim": int, "files": {"embedding.int8.tflite": {...as in files...}, ...},
                   "verification": {...}},   (optional, CNN bundles: see pyharmonies.runtime.embedding)
     "streaming": {"step_frames": int, "steps_pooled": int, "pooling": str, "state": {...},
                   "files": {"step.int8.tflite": {...}, "hop.int8.tflite": {..., "steps": int}, ...},
                   "verification": {...}, "reference": {...}}}
                   (optional, unidirectional LSTM bundles: see pyharmonies.runtime.stepmodel)
     "svm": {"file": "svm.npz", "sha256": hex, "bytes": int, "weight": float, "clip_seconds": float,
             "features": str, "C": float, "support_vectors": int}
                   (optional, `train --fuse-svm`: see pyharmonies.runtime.svm)

The ``embedding`` section lists second model files that map the same
normalised window to the network's pooled features (``(batch, dim)``, the
classifier head's input). They are kept apart from ``files`` so that a
runtime that predates them loads the bundle unchanged, and so that the
classifier's files are exactly what they would be without them.

The ``svm`` section names the SVM baseline's arrays (``np.savez``, read
without pickles) and the weight its calibrated answer has against the
model's: ``classify``, ``evaluate`` and ``listen`` then answer with
``softmax((1 - weight) log p_model + weight log p_svm)``, the SVM reading
the mean and standard deviation of the frame vector over the clip (each
``clip_seconds`` piece of a file, their probabilities averaged; the last
``clip_seconds`` when listening). A runtime that predates
it ignores it and answers with the model alone.

The ``streaming`` section likewise lists an LSTM's step model files (one
step's frames and the state in, the logits and the new state out) and its
hop model files (the same for a hop's ``steps`` whole steps per call), which
``listen`` and ``classify --streaming`` run with the state carried from step
to step; a bundle without it streams the windowed way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pyharmonies.errors import BundleError, ParameterError
from pyharmonies.features import FRAME_VECTOR_FEATURES, FeatureConfig

if TYPE_CHECKING:  # stepmodel imports this module's parsing helpers
    from pyharmonies.runtime.stepmodel import StreamingSpec
    from pyharmonies.runtime.svm import SvmFusion

#: The ``format`` field of every bundle manifest.
BUNDLE_FORMAT = "harmonies-bundle"

#: The manifest format version this runtime reads.
FORMAT_VERSION = 1

#: The manifest's file name inside a bundle directory.
MANIFEST = "manifest.json"

#: Input kinds: the features the model reads, one window at a time.
INPUT_KINDS: tuple[str, ...] = ("log_mel", "frame_vector")

#: Layout keyword (the first word of ``input.layout``) -> rank of the model input.
LAYOUTS: dict[str, int] = {"NCHW": 4, "NCT": 3}

RUNTIMES: tuple[str, ...] = ("tflite", "onnx")
PRECISIONS: tuple[str, ...] = ("int8", "fp32")
DTYPES: tuple[str, ...] = ("float32", "int8")

_HEX64 = re.compile(r"[0-9a-f]{64}")

#: Largest manifest read, in bytes: a real one is a few KB (the reference's values included).
MAX_MANIFEST_BYTES = 1_000_000

#: Deepest nesting of JSON arrays and objects in a manifest (a real one nests 5 deep).
MAX_MANIFEST_DEPTH = 32

# A JSON string, escapes included: removed before brackets are counted.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


class BundleWarning(UserWarning):
    """A bundle loads, but without a check it should have (an older export): re-export it."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the manifest describes it.

    ``scale`` and ``zero_point`` are set for int8 tensors only: the real
    value of ``q`` is ``(q - zero_point) * scale``.
    """

    name: str
    dtype: str  # "float32" | "int8"
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.dtype == "int8"


@dataclass(frozen=True)
class ModelFile:
    """A model file of the bundle, checked against its SHA-256."""

    name: str  # file name inside the bundle directory
    path: Path
    runtime: str  # "tflite" | "onnx"
    precision: str  # "fp32" | "int8"
    quantization: str  # how it was quantized, as the exporter states it ("none" for fp32)
    sha256: str
    bytes: int
    input: TensorSpec
    output: TensorSpec


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Bundle:
    """A loaded, verified bundle (see :func:`load_bundle`).

    Attributes
    ----------
    path : Path
        The bundle directory.
    name : str
    labels : tuple of str
        Class names in the model's output order.
    kind : str
        ``"log_mel"`` or ``"frame_vector"``.
    rows, window_frames : int
        One window of raw features is ``(rows, window_frames)``.
    hop_frames : int
        Frames between successive windows when a file is cut into windows:
        ``input.hop_frames``, the hop training cut its windows with. A
        manifest from an older export has none: then half a window, as
        training's default computes it (``round(window_seconds / 2 *
        sample_rate / hop_length)``: 65 frames for 3 s at the defaults),
        with a :class:`BundleWarning`.
    window_seconds : float
    layout : str
        ``"NCHW"`` (model input ``(batch, 1, rows, frames)``) or ``"NCT"``
        (``(batch, rows, frames)``).
    mean, std : np.ndarray, shape (rows,), float32
        Normalisation: the model reads ``(x - mean) / std`` per row.
    feature_config : FeatureConfig
    files : dict of str to ModelFile
    model : dict
        The manifest's ``model`` entry (name, config, parameters, MACs).
    source_run : str or None
        The training run the bundle was exported from, as the manifest names it.
    manifest : dict
        The whole manifest, as read.
    """

    path: Path
    name: str
    labels: tuple[str, ...]
    kind: str
    rows: int
    window_frames: int
    hop_frames: int
    window_seconds: float
    layout: str
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)
    feature_config: FeatureConfig = field(repr=False)
    files: dict[str, ModelFile] = field(repr=False)
    model: dict[str, Any] = field(repr=False)
    source_run: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    embedding_files: dict[str, ModelFile] = field(default_factory=dict, repr=False)  # the optional embedding models
    embedding_dim: int | None = None  # their output width; None when the bundle has none
    embedding_reference: np.ndarray | None = field(default=None, repr=False)  # (dim,) for the self-check, if exported
    streaming: StreamingSpec | None = field(default=None, repr=False)  # the LSTM's step model; None: stream windowed
    svm: SvmFusion | None = field(default=None, repr=False)  # the SVM fused with the model's answer; None: the model alone

    @property
    def model_input_shape(self) -> tuple[int, ...]:
        """The model's input shape for one window, without the batch axis."""
        return (1, self.rows, self.window_frames) if self.layout == "NCHW" else (self.rows, self.window_frames)

    def find_file(self, runtime: str, precision: str) -> ModelFile | None:
        """The model file for ``runtime`` and ``precision``, or None if the bundle has none."""
        for f in self.files.values():
            if f.runtime == runtime and f.precision == precision:
                return f
        return None

    def describe_files(self) -> str:
        """``model.fp32.onnx (onnx fp32), ...``: what the bundle holds, for messages."""
        return ", ".join(f"{f.name} ({f.runtime} {f.precision})" for f in self.files.values()) or "no model files"


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory whose ``manifest.json`` declares a harmonies bundle.

    Cheap and silent (it reads the manifest only and verifies nothing): used
    to tell a bundle from a training run. :func:`load_bundle` does the checks.
    """
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        data = _read_manifest(manifest)
    except BundleError:
        return False
    return data.get("format") == BUNDLE_FORMAT


def load_bundle(path: str | os.PathLike[str], *, verify: bool = True, selfcheck: bool = True) -> Bundle:
    """Read and check a bundle.

    Parameters
    ----------
    path : path-like
        The bundle directory (or its ``manifest.json``).
    verify : bool
        Check every listed file's size and SHA-256 (the default; a few
        milliseconds for a 250 KB model). ``False`` only checks that the
        files exist and are regular files inside the bundle folder.
    selfcheck : bool
        Run the bundle's reference audio through the whole device pipeline
        (features, normalisation, every model file an installed runtime
        runs, labels) and compare with what the exporter got
        (:func:`~pyharmonies.runtime.selfcheck.self_check`; the default,
        tens of milliseconds, see ``export/README.md``). A bundle without a
        reference (an older export) loads with a :class:`BundleWarning`.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        Not a bundle, a malformed, oversized or over-deep manifest, a format
        version this runtime does not read, a listed file missing, not a
        regular file inside the bundle or not matching its checksum, a
        feature configuration this runtime cannot compute, labels and
        normalisation statistics of the wrong shape, a label count other
        than the model's outputs, or a failed self-check. The message names
        the bundle, the field or file at fault and the reason.
    """
    path = Path(path)
    directory = path.parent if path.name == MANIFEST and path.is_file() else path
    where = str(directory)
    if not directory.exists():
        raise BundleError(f"{where}: no such bundle directory")
    if not directory.is_dir():
        raise BundleError(f"{where}: a bundle is a directory holding {MANIFEST} and the model files")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{where}: not a harmonies bundle (no {MANIFEST}); `harmonies export RUN` writes one")
    manifest = _read_manifest(manifest_path)
    bundle = _parse(directory, manifest, verify=verify)
    if selfcheck:
        from pyharmonies.runtime.selfcheck import self_check

        if self_check(bundle) is None:
            warnings.warn(
                f"{where}: this bundle has no self-check reference (exported by an older harmonies), so it loads "
                "unchecked; re-export it with `harmonies export` to get one",
                BundleWarning,
                stacklevel=2,
            )
    return bundle


def _read_manifest(manifest_path: Path) -> dict[str, Any]:
    """The manifest as a dict, refusing one over :data:`MAX_MANIFEST_BYTES` or nested deeper than :data:`MAX_MANIFEST_DEPTH`."""
    try:
        with open(manifest_path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as err:
        raise BundleError(f"{manifest_path}: cannot read ({err.strerror or err})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"{manifest_path}: the manifest is over {MAX_MANIFEST_BYTES:,} bytes (a real one is a few KB); not a bundle this runtime reads"
        )
    depth = _json_depth(raw)
    if depth > MAX_MANIFEST_DEPTH:
        raise BundleError(
            f"{manifest_path}: malformed manifest: nested {depth} levels deep, more than the {MAX_MANIFEST_DEPTH} a manifest may have"
        )
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise BundleError(f"{manifest_path}: cannot read ({err})") from None
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path}: malformed manifest, not valid JSON ({err})") from None
    except RecursionError:  # the depth count above should make this unreachable
        raise BundleError(f"{manifest_path}: malformed manifest: nested too deep") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: malformed manifest: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, strings left out (an upper bound for invalid JSON)."""
    codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{")))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max()) if steps.size else 0


# ----------------------------------------------------------------- parsing


class _Fields:
    """Typed access to a manifest's fields with error messages that name the field."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, message: str) -> BundleError:
        return BundleError(f"{self.where}: malformed manifest: {message}")

    def get(self, obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], label: str) -> Any:
        if key not in obj:
            raise self.fail(f"missing field {label!r}")
        value = obj[key]
        if kind is int or kind is float or kind == (int, float):
            ok = isinstance(value, kind) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"field {label!r} must be {_article(names)}, got {value!r:.80}")
        return value


def _article(name: str) -> str:
    return {"dict": "an object", "list": "a list", "str": "a string", "int": "an integer"}.get(name, f"a {name}")


def _parse(directory: Path, manifest: dict[str, Any], *, verify: bool) -> Bundle:
    where = str(directory)
    f = _Fields(where)

    fmt = manifest.get("format")
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"{where}: {MANIFEST} is not a harmonies bundle manifest (format {fmt!r}, expected {BUNDLE_FORMAT!r})")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise f.fail(f"field 'format_version' must be an integer, got {version!r:.80}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format version {version} is newer than this harmonies (supports {FORMAT_VERSION}); upgrade harmonies"
        )
    if version < 1:
        raise BundleError(f"{where}: bundle format version {version} is not a valid version (this harmonies reads {FORMAT_VERSION})")

    name = f.get(manifest, "name", str, "name")

    labels = f.get(manifest, "labels", list, "labels")
    if not labels:
        raise f.fail("'labels' is empty; a model needs at least one class")
    if not all(isinstance(x, str) and x for x in labels):
        raise f.fail("every entry of 'labels' must be a non-empty string")
    if len(set(labels)) != len(labels):
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        raise f.fail(f"'labels' repeats {', '.join(map(repr, dupes))}")

    model = f.get(manifest, "model", dict, "model")
    f.get(model, "name", str, "model.name")

    fc = f.get(manifest, "feature_config", dict, "feature_config")
    try:
        config = FeatureConfig.from_dict(fc)
    except ParameterError as err:
        raise BundleError(
            f"{where}: this runtime cannot honour the bundle's feature config: {err} "
            "(a bundle from a newer harmonies? upgrade harmonies, or re-export the model)"
        ) from None
    except TypeError as err:  # e.g. a required field given as an unexpected type
        raise BundleError(f"{where}: this runtime cannot honour the bundle's feature config: {err}") from None

    inp = f.get(manifest, "input", dict, "input")
    kind = f.get(inp, "kind", str, "input.kind")
    if kind not in INPUT_KINDS:
        raise BundleError(f"{where}: input kind {kind!r} is not one this runtime computes ({', '.join(INPUT_KINDS)})")
    shape = f.get(inp, "shape", list, "input.shape")
    if len(shape) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise f.fail(f"'input.shape' must be [rows, frames] of positive integers, got {shape!r:.80}")
    rows, frames = shape
    expected_rows = _rows_of(kind, config)
    if rows != expected_rows:
        raise f.fail(
            f"'input.shape' has {rows} rows but {kind} features of this feature config have {expected_rows}"
        )
    window = f.get(inp, "window_frames", int, "input.window_frames")
    if window != frames:
        raise f.fail(f"'input.window_frames' ({window}) differs from the frames of 'input.shape' ({frames})")
    window_seconds = float(f.get(inp, "window_seconds", (int, float), "input.window_seconds"))
    hop = inp.get("hop_frames", None)
    if hop is None:
        # Training's default hop (TrainConfig.window_hop=None): half the window, in seconds, as frames.
        hop = max(1, int(round(window_seconds / 2 * config.sample_rate / config.hop_length)))
        warnings.warn(
            f"{where}: the manifest has no 'input.hop_frames' (an older export); cutting files every {hop} frames, "
            "half a window, training's default hop; re-export the bundle to record the hop it was trained with",
            BundleWarning,
            stacklevel=3,
        )
    elif isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise f.fail(f"'input.hop_frames' must be a positive integer, got {hop!r:.80}")
    layout_text = f.get(inp, "layout", str, "input.layout")
    layout = layout_text.split()[0] if layout_text.split() else ""
    if layout not in LAYOUTS:
        raise BundleError(f"{where}: input layout {layout_text!r} is not one this runtime feeds ({', '.join(LAYOUTS)})")

    norm = f.get(inp, "normalization", dict, "input.normalization")
    mean = _vector(f, norm, "mean", rows)
    std = _vector(f, norm, "std", rows)
    if not np.all(std > 0):
        raise f.fail(f"'input.normalization.std' must be positive, found {float(std.min())!r}")

    listed = f.get(manifest, "files", dict, "files")
    if not listed:
        raise f.fail("'files' lists no model file")
    files: dict[str, ModelFile] = {}
    for file_name, entry in listed.items():
        files[file_name] = _model_file(f, directory, file_name, entry)
    seen: dict[tuple[str, str], str] = {}
    for mf in files.values():
        key = (mf.runtime, mf.precision)
        if key in seen:
            raise f.fail(f"two {mf.runtime} {mf.precision} files: {seen[key]} and {mf.name}")
        seen[key] = mf.name
    for mf in files.values():
        _check_file(where, mf, verify=verify)

    embedding_files, embedding_dim, embedding_reference = _embedding(f, directory, manifest.get("embedding"), verify=verify)
    from pyharmonies.runtime.stepmodel import parse_streaming

    streaming = parse_streaming(f, directory, manifest.get("streaming"), window_frames=window, rows=rows, verify=verify)
    svm = _svm_fusion(f, directory, manifest.get("svm"), n_labels=len(labels), rows=_rows_of("frame_vector", config),
                      verify=verify)  # fmt: skip
    source = manifest.get("source_run")
    return Bundle(
        path=directory,
        name=name,
        labels=tuple(labels),
        kind=kind,
        rows=rows,
        window_frames=window,
        hop_frames=int(hop),
        window_seconds=window_seconds,
        layout=layout,
        mean=mean,
        std=std,
        feature_config=config,
        files=files,
        model=dict(model),
        source_run=source if isinstance(source, str) and source else None,
        manifest=manifest,
        embedding_files=embedding_files,
        embedding_dim=embedding_dim,
        embedding_reference=embedding_reference,
        streaming=streaming,
        svm=svm,
    )


def _embedding(f: _Fields, directory: Path, section: Any, *, verify: bool) -> tuple[dict[str, ModelFile], int | None, np.ndarray | None]:
    """The optional ``embedding`` section: its model files, checked like the classifier's, their width and the
    self-check's reference vector (None when the section, or its ``reference``, is absent)."""
    if section is None:
        return {}, None, None
    if not isinstance(section, dict):
        raise f.fail("'embedding' must be an object")
    dim = f.get(section, "dim", int, "embedding.dim")
    if dim < 1:
        raise f.fail(f"'embedding.dim' must be positive, got {dim}")
    listed = f.get(section, "files", dict, "embedding.files")
    files = {name: _model_file(f, directory, name, entry) for name, entry in listed.items()}
    seen: dict[tuple[str, str], str] = {}
    for mf in files.values():
        if (mf.runtime, mf.precision) in seen:
            raise f.fail(f"two {mf.runtime} {mf.precision} embedding files: {seen[mf.runtime, mf.precision]} and {mf.name}")
        seen[mf.runtime, mf.precision] = mf.name
        _check_file(str(directory), mf, verify=verify)
    reference = section.get("reference")
    if reference is None:
        return files, dim, None
    vector = f.get(f.get(section, "reference", dict, "embedding.reference"), "vector", list, "embedding.reference.vector")
    if len(vector) != dim or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector):
        raise f.fail(f"'embedding.reference.vector' must hold {dim} numbers")
    array = np.asarray(vector, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise f.fail("'embedding.reference.vector' holds NaN or Inf")
    return files, dim, array


def _svm_fusion(f: _Fields, directory: Path, section: Any, *, n_labels: int, rows: int, verify: bool) -> SvmFusion | None:
    """The optional ``svm`` section (``train --fuse-svm``): its arrays file, checked, read and matched to the labels."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise f.fail("'svm' must be an object")
    name = f.get(section, "file", str, "svm.file")
    if not name or name in (".", "..") or "/" in name or "\\" in name or name == MANIFEST:
        raise f.fail("'svm.file': a plain file name inside the bundle")
    sha = f.get(section, "sha256", str, "svm.sha256").lower()
    if not _HEX64.fullmatch(sha):
        raise f.fail("'svm.sha256' must be 64 hex digits")
    weight = f.get(section, "weight", (int, float), "svm.weight")
    if not 0 <= weight <= 1:
        raise f.fail(f"'svm.weight' must be in [0, 1], got {weight}")
    clip_seconds = f.get(section, "clip_seconds", (int, float), "svm.clip_seconds")
    if not (math.isfinite(clip_seconds) and clip_seconds > 0):
        raise f.fail(f"'svm.clip_seconds' must be a positive number of seconds, got {clip_seconds}")
    check_listed_file(str(directory), directory, name, sha256=sha, size=f.get(section, "bytes", int, "svm.bytes"), verify=verify)
    from pyharmonies.runtime.svm import SvmFusion, read_calibrated

    try:
        model = read_calibrated(directory / name)
    except ParameterError as err:
        raise BundleError(str(err)) from None
    if model.n_labels != n_labels or model.svm.features != 2 * rows:
        raise BundleError(f"{directory}: {name}: an SVM for {model.n_labels} labels and {model.svm.features} statistics; "
                          f"the bundle has {n_labels} labels and a {rows}-row frame vector (mean and std: {2 * rows})")  # fmt: skip
    return SvmFusion(model=model, weight=float(weight), file=name, clip_seconds=float(clip_seconds))


def _rows_of(kind: str, config: FeatureConfig) -> int:
    if kind == "log_mel":
        return config.n_mels
    return sum(config.feature_size(name) for name in FRAME_VECTOR_FEATURES)


def _vector(f: _Fields, norm: Mapping[str, Any], key: str, rows: int) -> np.ndarray:
    values = f.get(norm, key, list, f"input.normalization.{key}")
    if len(values) != rows:
        raise f.fail(f"'input.normalization.{key}' has {len(values)} values, the input {rows} rows")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise f.fail(f"'input.normalization.{key}' must hold numbers only")
    array = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise f.fail(f"'input.normalization.{key}' holds NaN or Inf (or a value beyond float32)")
    array.flags.writeable = False
    return array


def _tensor(f: _Fields, entry: Mapping[str, Any], label: str) -> TensorSpec:
    spec = f.get(entry, label.rsplit(".", 1)[-1], dict, label)
    name = spec.get("name", "")
    if not isinstance(name, str):
        raise f.fail(f"'{label}.name' must be a string")
    dtype = f.get(spec, "dtype", str, f"{label}.dtype")
    if dtype not in DTYPES:
        raise f.fail(f"'{label}.dtype' is {dtype!r}; this runtime feeds {' or '.join(DTYPES)}")
    scale, zero_point = spec.get("scale"), spec.get("zero_point")
    if dtype == "float32":
        return TensorSpec(name, dtype)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise f.fail(f"'{label}.scale' of an int8 tensor must be a positive number, got {scale!r}")
    if isinstance(zero_point, bool) or not isinstance(zero_point, int) or not -128 <= zero_point <= 127:
        raise f.fail(f"'{label}.zero_point' of an int8 tensor must be an integer in [-128, 127], got {zero_point!r}")
    return TensorSpec(name, dtype, float(scale), int(zero_point))


def _model_file(f: _Fields, directory: Path, file_name: str, entry: Any) -> ModelFile:
    label = f"files[{file_name!r}]"
    if not file_name or file_name in (".", "..") or "/" in file_name or "\\" in file_name or file_name == MANIFEST:
        raise f.fail(f"{label}: a model file is named by a plain file name inside the bundle")
    if not isinstance(entry, dict):
        raise f.fail(f"{label} must be an object")
    sha = f.get(entry, "sha256", str, f"{label}.sha256").lower()
    if not _HEX64.fullmatch(sha):
        raise f.fail(f"{label}.sha256 must be 64 hex digits")
    size = f.get(entry, "bytes", int, f"{label}.bytes")
    runtime = f.get(entry, "runtime", str, f"{label}.runtime")
    if runtime not in RUNTIMES:
        raise BundleError(f"{directory}: {file_name} is for runtime {runtime!r}; this harmonies runs {', '.join(RUNTIMES)}")
    precision = f.get(entry, "precision", str, f"{label}.precision")
    if precision not in PRECISIONS:
        raise f.fail(f"{label}.precision is {precision!r}; expected one of {', '.join(PRECISIONS)}")
    quantization = entry.get("quantization", "none")
    if not isinstance(quantization, str):
        raise f.fail(f"{label}.quantization must be a string")
    return ModelFile(
        name=file_name,
        path=directory / file_name,
        runtime=runtime,
        precision=precision,
        quantization=quantization,
        sha256=sha,
        bytes=size,
        input=_tensor(f, entry, f"{label}.input"),
        output=_tensor(f, entry, f"{label}.output"),
    )


def regular_file_inside(directory: Path, name: str) -> Path:
    """``directory / name``, refusing a file that is missing, a symbolic link, not a regular file
    (a device, a folder, a pipe) or outside ``directory``; ``name`` is a plain file name."""
    where = str(directory)
    path = directory / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BundleError(f"{where}: {name} is missing: the manifest lists it; copy the whole bundle directory") from None
    except OSError as err:
        raise BundleError(f"{where}: {name}: cannot read ({err.strerror or err})") from None
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{where}: {name} is a symbolic link; a bundle's files must be regular files inside its folder")
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{where}: {name} is not a regular file; a bundle's files must be regular files inside its folder")
    if path.resolve().parent != directory.resolve():
        raise BundleError(f"{where}: {name} resolves outside the bundle folder")
    return path


def _check_file(where: str, mf: ModelFile, *, verify: bool) -> None:
    check_listed_file(where, mf.path.parent, mf.name, sha256=mf.sha256, size=mf.bytes, verify=verify)


def check_listed_file(where: str, directory: Path, name: str, *, sha256: str, size: int, verify: bool) -> None:
    """Refuse a file the manifest lists that is not a regular file inside the bundle, or (``verify``) whose size or
    SHA-256 differ from the manifest's."""
    path = regular_file_inside(directory, name)
    if not verify:
        return
    actual = path.stat().st_size
    if actual != size:
        raise BundleError(
            f"{where}: {name}: checksum mismatch: the file is corrupt or was modified "
            f"({actual} bytes, the manifest says {size})"
        )
    try:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as err:
        raise BundleError(f"{where}: {name}: cannot read ({err.strerror or err})") from None
    if digest != sha256:
        raise BundleError(
            f"{where}: {name}: checksum mismatch: the file is corrupt or was modified "
            f"(sha256 {digest[:12]}..., the manifest says {sha256[:12]}...)"
        )
