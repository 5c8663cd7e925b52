"""The embedding files of a CNN bundle: the network without its head, fp32 and int8, verified against PyTorch.

Why second files rather than a second output of the classifier: the
classifier's files stay byte for byte what they were (same graph, same int8
ranges, same verified accuracy), every runtime keeps its one-input,
one-output contract, ``classify`` and ``listen`` pay nothing for a vector
they do not use, and a runtime that predates embeddings still loads the
bundle (they sit in the manifest's own ``embedding`` section). The cost is
the backbone's weights stored twice (the head is a few KB of the model).

The int8 embedding file is calibrated on the same training windows as the
classifier; its quality is measured as the cosine similarity of its vectors
to PyTorch's on the verification windows, recorded in the manifest.
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

#: Every embedding file a bundle may hold: name -> (runtime, precision).
EMBEDDING_FILES: dict[str, tuple[str, str]] = {f"embedding.{p}.{r}": (r, p) for r in ("onnx", "tflite") for p in ("fp32", "int8")}

#: The int8 method per runtime (the CNN's, as the classifier: static / full integer).
INT8_METHODS = {"onnx": "static", "tflite": "full"}

#: Lowest mean cosine similarity of int8 vectors to PyTorch's that the report calls fine (int8 activations
#: put ~1% noise on each of the pooled features; a vector that drifted further would mislead `similar`).
INT8_MIN_COSINE = 0.95


def embedding_file(runtime: str, precision: str) -> str:
    """``embedding.<precision>.<ext>``."""
    return f"embedding.{precision}.{runtime}"


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) cosine similarity of matching rows of two (n, D) arrays (1 where both are zero vectors)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)
    return np.where(both_zero, 1.0, cos)


def export_embedding(folded: nn.Module, reference: nn.Module, staging: Path, *, runtimes: Sequence[str], int8: bool,
                     x: np.ndarray, calibration: np.ndarray, say: Callable[[str], None]) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """Write the embedding files of a CNN into ``staging`` and verify them.

    Parameters
    ----------
    folded : nn.Module
        The CNN with BatchNorm folded; its ``backbone`` is exported (``(B, 1, M, T) -> (B, D)``).
    reference : nn.Module
        The CNN as trained (not folded), eval mode: the oracle.
    staging : Path
    runtimes : sequence of str
        ``"onnx"``, ``"tflite"``.
    int8 : bool
        Also the int8 files, calibrated on ``calibration``.
    x : np.ndarray, shape (N, 1, M, T)
        Normalised verification windows.
    calibration : np.ndarray, shape (K, 1, M, T)
    say : callable
        Progress lines.

    Returns
    -------
    section, failures
        The manifest's ``embedding`` section (``dim``, ``files``, ``verification``), and one line per
        fp32 file whose vectors differ from PyTorch's by more than ``FP32_TOLERANCE`` times their scale.
    """
    from pyharmonies.export import onnx_export, tflite_export
    from pyharmonies.export.verify import OnnxRunner, TFLiteRunner

    net = folded.backbone.eval()
    example = folded.example_input(1)
    with torch.no_grad():
        expected = np.concatenate([reference.backbone(torch.from_numpy(x[i : i + 64])).numpy() for i in range(0, len(x), 64)])
    entries: dict[str, dict[str, Any]] = {}
    for runtime in runtimes:
        for precision in ("fp32", "int8") if int8 else ("fp32",):
            path = staging / embedding_file(runtime, precision)
            say(f"{path.name}: converting")
            if runtime == "onnx" and precision == "fp32":
                onnx_export.export_fp32(net, example, path)
                text, io = "none", onnx_export.io_details(path)
            elif runtime == "onnx":
                text = onnx_export.quantize_int8(staging / embedding_file("onnx", "fp32"), path, INT8_METHODS["onnx"], calibration)
                io = onnx_export.io_details(path)
            elif precision == "fp32":
                path.write_bytes(tflite_export.export_fp32(net, example))
                text, io = "none", tflite_export.io_details(path.read_bytes())
            else:
                buf, text = tflite_export.export_int8(net, example, "full", calibration)
                path.write_bytes(buf)
                io = tflite_export.io_details(buf)
            entry = {"sha256": bundle.sha256_file(path), "bytes": path.stat().st_size, "runtime": runtime,
                     "precision": precision, "quantization": text, "input": io[0], "output": io[1]}  # fmt: skip
            entries[path.name] = entry
    rows, failures = [], []
    scale = max(1.0, float(np.abs(expected).max()))
    for name, entry in entries.items():
        got = (OnnxRunner if entry["runtime"] == "onnx" else TFLiteRunner)(staging / name).logits(x)
        cos = cosine_rows(got, expected)
        diff = float(np.max(np.abs(got - expected)))
        rows.append({"file": name, "max_abs_diff": diff, "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())})
        if entry["precision"] == "fp32" and not diff <= FP32_TOLERANCE * scale:
            failures.append(f"{name}: vectors differ from PyTorch's by up to {diff:.3g} (more than {FP32_TOLERANCE:g} x {scale:.3g})")
    section = {
        "dim": int(expected.shape[1]),
        "output": "the CNN's pooled features, the classifier head's input; a clip's vector is the mean of its windows'",
        "files": entries,
        "verification": {"windows": int(len(x)), "rows": rows, "int8_min_mean_cosine": INT8_MIN_COSINE},
    }
    return section, failures


def embedding_reference(staging: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The embedding part of the golden self-check: the mean vector of the reference windows.

    Computed through the device runtime with the first fp32 embedding file
    (equal to PyTorch's within 1e-4 of the vectors' scale); every embedding
    file is compared with it at load (:func:`pyharmonies.runtime.selfcheck.check_embedding`).
    ``staging`` holds the files, ``reference.wav`` and the provisional manifest.
    """
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.embedding import BundleEmbedder
    from pyharmonies.runtime.selfcheck import read_reference_audio, reference_windows

    bundle.write_manifest(staging, manifest)
    loaded = load_bundle(staging, selfcheck=False)
    y = read_reference_audio(staging / manifest["reference"]["file"], loaded.feature_config.sample_rate)
    _, windows = reference_windows(loaded, y, manifest["reference"]["window_starts"])
    fp32 = next(mf for mf in loaded.embedding_files.values() if mf.precision == "fp32")
    vector = BundleEmbedder(loaded, fp32.runtime, "fp32").embed_windows(windows).astype(np.float64).mean(axis=0)
    return {"file": fp32.name, "windows": int(len(windows)), "vector": [float(f"{v:.7g}") for v in vector]}


def report_lines(section: dict[str, Any]) -> list[str]:
    """The report's section on the embedding files: their agreement with PyTorch's vectors."""
    v = section["verification"]
    lines = ["## Embedding files", "",
             f"The network without its head ({section['dim']} values per window; `harmonies embed BUNDLE`), "
             f"checked on the same {v['windows']} windows against PyTorch.", "",
             "| file | bytes | max abs diff | mean cosine | min cosine |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for row in v["rows"]:
        size = section["files"][row["file"]]["bytes"]
        lines.append(f"| {row['file']} | {size:,} | {row['max_abs_diff']:.3g} | {row['mean_cosine']:.4f} | {row['min_cosine']:.4f} |")
    low = [r["file"] for r in v["rows"] if r["mean_cosine"] < v["int8_min_mean_cosine"]]
    if low:
        lines += ["", f"Note: {', '.join(low)} drift from PyTorch (mean cosine below {v['int8_min_mean_cosine']}); "
                  "prefer the fp32 embedding file (`--precision fp32`) for similarity search."]  # fmt: skip
    return lines
