"""The bundle's ``manifest.json``: what a device reads, and the checksums it trusts.

The format is documented for users in ``export/README.md``; the device side
(:mod:`pyharmonies.runtime`) reads it without torch. Version 1 holds:
``format``, ``format_version``, ``name``, ``created``, ``harmonies_version``,
``model``, ``labels``, ``input``, ``feature_config``, ``files`` (per file:
sha256, bytes, runtime, precision, quantization, input and output tensors),
``verification``, ``calibration`` (int8 bundles), ``source_run`` and
``reference`` (the golden self-check, :mod:`pyharmonies.export.reference`)
and, for a CNN, ``embedding`` (:mod:`pyharmonies.export.embedding`), for a
unidirectional LSTM, ``streaming`` (:mod:`pyharmonies.export.streaming`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pyharmonies._atomic import write_atomic
from pyharmonies.export.errors import ExportError

FORMAT = "harmonies-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REPORT = "report.md"

#: Every model file a bundle may hold: name -> (runtime, precision).
MODEL_FILES: dict[str, tuple[str, str]] = {
    "model.fp32.onnx": ("onnx", "fp32"),
    "model.int8.onnx": ("onnx", "int8"),
    "model.fp32.tflite": ("tflite", "fp32"),
    "model.int8.tflite": ("tflite", "int8"),
}

#: How each model kind's input is laid out, batch included.
LAYOUTS = {"cnn": "NCHW [batch, 1, rows, frames]", "cnn_ensemble": "NCHW [batch, 1, rows, frames]", "lstm": "NCT [batch, rows, frames]", "transformer": "NCT [batch, rows, frames]"}


def model_file(runtime: str, precision: str) -> str:
    """``model.<precision>.<ext>``: the file name of a runtime and precision."""
    return f"model.{precision}.{runtime}"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_entry(path: Path, *, quantization: str, input: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    """The manifest's entry for one model file (runtime and precision follow from its name)."""
    runtime, precision = MODEL_FILES[path.name]
    return {
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "runtime": runtime,
        "precision": precision,
        "quantization": quantization,
        "input": input,
        "output": output,
    }


def build_manifest(
    *,
    name: str,
    meta: dict[str, Any],
    model_info: dict[str, Any],
    files: dict[str, dict[str, Any]],
    verification: dict[str, Any],
    source_run: str,
    hop_frames: int,
    calibration: dict[str, Any] | None = None,
    created: datetime.datetime | None = None,
) -> dict[str, Any]:
    """The manifest of a bundle.

    Parameters
    ----------
    name : str
        The bundle's name (its folder's).
    meta : dict
        The checkpoint's meta (labels, input kind and shape, window, FeatureConfig, normaliser).
    model_info : dict
        ``{"name", "config", "parameters", "macs_per_window"}``.
    files : dict
        File name -> :func:`file_entry`.
    verification : dict
        ``{"split", "windows", "rows", "int8_drop_points"}``.
    source_run : str
        The run directory exported.
    hop_frames : int
        Frames between the windows training cut (the device cuts files the same way).
    calibration : dict, optional
        ``{"split": "train", "windows": N}`` when int8 files were calibrated.
    created : datetime, optional
        Default: now (UTC).
    """
    from pyharmonies import __version__

    created = created or datetime.datetime.now(datetime.timezone.utc)
    model_name = meta["model_name"]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": created.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "harmonies_version": __version__,
        "model": model_info,
        "labels": list(meta["labels"]),
        "input": {
            "kind": meta["input_kind"],
            "shape": [int(v) for v in meta["input_shape"]],
            "layout": LAYOUTS[model_name],
            "window_frames": int(meta["window_frames"]),
            "window_seconds": float(meta["window_seconds"]),
            "hop_frames": int(hop_frames),
            "normalization": {"mean": list(meta["normalizer"]["mean"]), "std": list(meta["normalizer"]["std"])},
        },
        "feature_config": dict(meta["feature_config"]),
        "files": files,
        "verification": verification,
    }
    if calibration is not None:
        manifest["calibration"] = calibration
    manifest["source_run"] = source_run
    return manifest


def write_manifest(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``out_dir/manifest.json`` atomically (a reader never sees half of it); returns its path.

    The checksums in ``manifest["files"]`` (and of the reference audio) are
    checked against the files in ``out_dir`` first: a manifest is never
    written over files it does not describe.
    """
    out_dir = Path(out_dir)
    listed = dict(manifest["files"])
    if "reference" in manifest:
        listed[manifest["reference"]["file"]] = manifest["reference"]
    listed.update(manifest.get("embedding", {}).get("files", {}))
    listed.update(manifest.get("streaming", {}).get("files", {}))
    for name, entry in listed.items():
        digest = sha256_file(out_dir / name)
        if digest != entry["sha256"]:
            raise ExportError(f"{out_dir / name}: sha256 {digest} differs from the manifest's {entry['sha256']}")
    text = json.dumps(manifest, indent=2) + "\n"
    write_atomic(out_dir / MANIFEST, text)  # the umask's mode: a device may run listen as another user
    return out_dir / MANIFEST
