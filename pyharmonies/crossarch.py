"""One machine's outputs for a bundle and some clips, written there and compared on another machine.

The workstation (x86-64) and the device (a Raspberry Pi's arm64 CPU) must agree: the same clips give
the same decoded samples, the same number of frames, the same features, the same top-1 label for
every window and nearly the same probabilities. ``make test-arm64`` writes a reference on x86-64
with :func:`write_reference` and checks it under emulation with :func:`compare` (the
``python -m pyharmonies.crossarch`` commands below do both). Device side: numpy, the feature core
and the runtimes only.

Each quantity has its own tolerance (:data:`TOLERANCES`), and the report says, per quantity,
whether every value was bit-identical.

Command line::

    python -m pyharmonies.crossarch write BUNDLE CLIP... --out reference.npz
    python -m pyharmonies.crossarch compare reference.npz BUNDLE CLIP... [--table table.md]

``compare`` exits with status 1 when a quantity is beyond its tolerance or a top-1 label differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyharmonies.audio import load, probe
from pyharmonies.errors import HarmoniesError
from pyharmonies.features import FEATURE_NAMES, extract
from pyharmonies.runtime.backends import make_backend
from pyharmonies.runtime.bundle import Bundle, load_bundle
from pyharmonies.runtime.classifier import WindowClassifier, input_features, softmax
from pyharmonies.runtime.files import feature_windows

#: The model files compared: the int8 files a device runs (LiteRT and ONNX Runtime).
MODEL_FILES = (("tflite", "int8"), ("onnx", "int8"))

#: The largest difference allowed per quantity (0: bit-identical required). Measured values and the
#: reasons are in firmware_notes/arm64.md.
TOLERANCES: dict[str, float] = {
    # Clips at the bundle's rate: libsndfile decodes them exactly, and the C core is ISO C99 (no
    # fused multiply-add contraction) over the same glibc libm (2.36) on both machines.
    "audio": 0.0,
    "features": 0.0,
    # A clip at another rate goes through soxr, whose float kernels are SSE/AVX on one machine and
    # NEON on the other: its samples may differ in the last bit (absolute, audio in [-1, 1])...
    "resampled audio": 1e-6,
    # ...and so its features, by up to this fraction of the feature's largest magnitude in the clip
    # (logs and ratios of quiet frames magnify a last-bit difference; measured: 5e-5, spectral_flatness).
    "resampled features": 1e-3,
    # The int8 files' outputs: integer kernels (XNNPACK, MLAS) give the same integers on both
    # instruction sets; what is left is float rounding in dequantization and numpy's softmax.
    "logits": 1e-5,
    "probabilities": 1e-6,
}

_META = "meta.json"


class CrossArchError(HarmoniesError):
    """A reference file that cannot be read, or that does not match the clips or bundle given."""


@dataclass(frozen=True)
class Comparison:
    """One quantity compared over every clip (and model file).

    Attributes
    ----------
    quantity : str
        ``"frames"``, ``"audio"``, ``"features"``, ``"<file> logits"``, ``"<file> probabilities"``
        or ``"<file> top-1"``.
    values : int
        How many values were compared.
    identical : bool
        Every value equal, bit for bit.
    max_abs_diff : float
        The largest absolute difference; for ``resampled features``, relative to each feature's
        largest magnitude in the clip; for top-1 and frames, how many differ.
    tolerance : float
        The allowed ``max_abs_diff``.
    """

    quantity: str
    values: int
    identical: bool
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        """Within tolerance."""
        return self.max_abs_diff <= self.tolerance


def clip_outputs(bundle: Bundle, clip: str | Path, classifiers: Mapping[str, WindowClassifier]) -> dict[str, np.ndarray]:
    """What one machine computes for one clip: samples, every named feature, each file's window outputs.

    Parameters
    ----------
    bundle : Bundle
    clip : path-like
        An audio file, decoded and resampled to the bundle's rate.
    classifiers : mapping of model file name to WindowClassifier

    Returns
    -------
    dict of str to np.ndarray
        ``audio``, ``feature/<name>`` (``(n, frames)``), ``<file>/logits`` and ``<file>/probabilities``
        (``(windows, labels)``).
    """
    config = bundle.feature_config
    y = load(clip, config.sample_rate)
    out = {"audio": y}
    for name, values in extract(y, config).items():
        out[f"feature/{name}"] = np.ascontiguousarray(values)
    raw = input_features(y, config, bundle.kind)
    for file_name, clf in classifiers.items():
        windows, _ = feature_windows(clf, raw)
        logits = clf.logits_batch(windows)
        out[f"{file_name}/logits"] = logits
        out[f"{file_name}/probabilities"] = softmax(logits)
    return out


def machine_outputs(bundle_path: str | Path, clips: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """:func:`clip_outputs` of every clip with the bundle's int8 files, keyed ``<clip name>/...``."""
    bundle = load_bundle(bundle_path)
    classifiers = {}
    for runtime, precision in MODEL_FILES:
        clf = WindowClassifier(bundle, make_backend(bundle, runtime, precision, threads=1))
        classifiers[clf.backend.file.name] = clf
    names = [Path(c).name for c in clips]
    if len(set(names)) != len(names):
        raise CrossArchError(f"clips must have distinct file names, got {names}")
    out = {}
    for clip, name in zip(clips, names):
        for key, values in clip_outputs(bundle, clip, classifiers).items():
            out[f"{name}/{key}"] = values
    return out


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _identity(bundle_path: str | Path, clips: Sequence[str | Path]) -> dict[str, object]:
    """What must be the same on both machines: the clips' and the manifest's checksums; and the rates."""
    return {
        "manifest_sha256": _sha256(Path(bundle_path) / "manifest.json"),
        "clips": {Path(c).name: _sha256(c) for c in clips},
        "clip_rates": {Path(c).name: probe(c).sample_rate for c in clips},
        "sample_rate": load_bundle(bundle_path, selfcheck=False).feature_config.sample_rate,
    }


def describe_machine() -> str:
    """This machine and the versions that decide the outputs, e.g. ``aarch64: numpy 2.4.6, ...``."""
    found = []
    for dist in ("numpy", "soxr", "soundfile", "ai-edge-litert", "onnxruntime"):
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} absent")
    return f"{platform.machine()}: " + ", ".join(found)


def write_reference(path: str | Path, bundle_path: str | Path, clips: Sequence[str | Path]) -> Path:
    """Compute :func:`machine_outputs` here and save them, with what identifies the inputs, as ``.npz``.

    Returns the path written.
    """
    arrays = machine_outputs(bundle_path, clips)
    meta = dict(_identity(bundle_path, clips), machine=describe_machine(), keys=sorted(arrays))
    path = Path(path)
    np.savez(path, **arrays, **{_META: np.array(json.dumps(meta))})
    return path


def read_reference(path: str | Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """Read a reference written by :func:`write_reference`: ``(meta, arrays)``. Never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop(_META)))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise CrossArchError(f"{path}: not a reference written by pyharmonies.crossarch ({e})") from None
    if not isinstance(meta, dict) or sorted(arrays) != meta.get("keys"):
        raise CrossArchError(f"{path}: its arrays do not match the list in its {_META}")
    return meta, arrays


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    got: Mapping[str, np.ndarray],
    resampled: Collection[str] = (),
    tolerances: Mapping[str, float] = TOLERANCES,
) -> list[Comparison]:
    """Compare two machines' :func:`machine_outputs`, one :class:`Comparison` per quantity.

    Parameters
    ----------
    reference, got : mapping
        :func:`machine_outputs` of the same clips and bundle on two machines.
    resampled : collection of str
        Names of the clips not at the bundle's rate: their audio and features are compared with
        the ``resampled ...`` tolerances.
    tolerances : mapping
        As :data:`TOLERANCES`.

    Raises
    ------
    CrossArchError
        The two hold different clips, features or model files.
    """
    if sorted(reference) != sorted(got):
        differ = sorted(set(reference) ^ set(got))
        raise CrossArchError(f"the outputs hold different clips, features or model files: {differ[:6]}")
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    frames = [0, 0]  # clips compared, clips whose frame count differs
    for key in sorted(reference):
        a, b = reference[key], got[key]
        clip, _, what = key.partition("/")
        quantity = "features" if what.startswith("feature/") else what.replace("/", " ")
        if quantity in ("audio", "features") and clip in resampled:
            quantity = f"resampled {quantity}"
        if what == f"feature/{FEATURE_NAMES[0]}":
            frames[0] += 1
            frames[1] += a.shape[-1] != b.shape[-1]
        groups.setdefault(quantity, []).append((a, b))
    rows = [Comparison("frames", frames[0], frames[1] == 0, float(frames[1]), 0.0)]
    for quantity, pairs in groups.items():
        tolerance = tolerances[quantity if "resampled" in quantity else quantity.rsplit(" ", 1)[-1]]
        rows.append(_compare_values(quantity, pairs, tolerance, relative=quantity == "resampled features"))
        if quantity.endswith(" probabilities"):
            rows.append(_compare_top1(quantity.replace("probabilities", "top-1"), pairs))
    return rows


def _compare_values(quantity: str, pairs: list[tuple[np.ndarray, np.ndarray]], tolerance: float, *, relative: bool) -> Comparison:
    """Largest absolute difference, or (``relative``) the largest per array over that array's largest magnitude."""
    n, identical, worst = 0, True, 0.0
    for a, b in pairs:
        n += a.size
        identical &= bool(np.array_equal(a, b))
        if a.shape != b.shape:  # another number of frames or windows: nothing to line up
            worst = float("inf")
        elif a.size:
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            scale = float(np.max(np.abs(a))) if relative else 1.0
            worst = max(worst, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))
    return Comparison(quantity, n, identical, worst, tolerance)


def _compare_top1(quantity: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Comparison:
    n, differ = 0, 0
    for a, b in pairs:
        n += a.shape[0]
        if a.shape != b.shape:
            differ += max(a.shape[0], b.shape[0])
        else:
            differ += int(np.count_nonzero(np.argmax(a, axis=1) != np.argmax(b, axis=1)))
    return Comparison(quantity, n, differ == 0, float(differ), 0.0)


def compare(reference_path: str | Path, bundle_path: str | Path, clips: Sequence[str | Path]) -> list[Comparison]:
    """Compute :func:`machine_outputs` here and compare them with the reference file.

    Raises
    ------
    CrossArchError
        The reference is unreadable, or was written for other clips or another bundle.
    """
    meta, reference = read_reference(reference_path)
    here = _identity(bundle_path, clips)
    for field in ("manifest_sha256", "clips"):
        if meta.get(field) != here[field]:
            raise CrossArchError(f"{reference_path} was written for other inputs: its {field} differs")
    resampled = [name for name, rate in here["clip_rates"].items() if rate != here["sample_rate"]]
    return compare_outputs(reference, machine_outputs(bundle_path, clips), resampled)


def markdown_table(rows: Sequence[Comparison]) -> str:
    """The comparison as a Markdown table (one line per quantity)."""
    lines = ["| quantity | values | bit-identical | max diff | tolerance | within |", "|---|---:|---|---:|---:|---|"]
    for r in rows:
        counts = r.quantity == "frames" or r.quantity.endswith("top-1")
        diff = f"{int(r.max_abs_diff)} differ" if counts else f"{r.max_abs_diff:.3g}"
        tol = f"{int(r.tolerance)} differ" if counts else f"{r.tolerance:g}"
        lines.append(f"| {r.quantity} | {r.values} | {'yes' if r.identical else 'no'} | {diff} | {tol} | {'yes' if r.ok else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pyharmonies.crossarch write|compare ...`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m pyharmonies.crossarch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write this machine's outputs as a reference")
    w.add_argument("bundle")
    w.add_argument("clips", nargs="+")
    w.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="compare this machine's outputs with a reference")
    c.add_argument("reference")
    c.add_argument("bundle")
    c.add_argument("clips", nargs="+")
    c.add_argument("--table", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            print(f"wrote {write_reference(args.out, args.bundle, args.clips)} on {platform.machine()}")
            return 0
        rows = compare(args.reference, args.bundle, args.clips)
    except HarmoniesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = markdown_table(rows)
    print(f"reference  {read_reference(args.reference)[0].get('machine')}\nhere       {describe_machine()}\n{table}", end="")
    if args.table:
        Path(args.table).write_text(table)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
