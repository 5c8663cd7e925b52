"""``export_run``: a trained run in, a verified bundle out.

Steps: read the run (best weights, validation and calibration windows), fold
BatchNorm, write the fp32 files and (``int8``) the int8 ones, run the
validation windows through every file and PyTorch, and when the checks pass,
store the golden self-check (``reference.wav`` and every file's
log-probabilities for it, :mod:`pyharmonies.export.reference`), write
``report.md``, then ``manifest.json``, and load the bundle as a device would. Files are built in a staging
folder beside the output and moved in at the end; the old manifest goes
first, so a bundle folder never shows a manifest that describes other files.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyharmonies.errors import ParameterError
from pyharmonies.export import bundle
from pyharmonies.export.errors import AccuracyDropError, ExportError, VerificationError
from pyharmonies.export.report import FP32_TOLERANCE, verification_table, write_report

#: The runtimes a bundle can carry, in the order files are written and verified.
RUNTIMES: tuple[str, ...] = ("onnx", "tflite")

#: The int8 method per model and runtime (see onnx_export.METHODS and tflite_export.METHODS):
#: the CNN quantizes fully; the LSTM's gates are not covered by either static quantizer, so
#: both runtimes use dynamic-range int8 (int8 weights) — stated in the manifest and report; the
#: transformer's dense layers are int8 with dynamic ranges too (export/README.md says why).
INT8_METHODS: dict[str, dict[str, str]] = {
    "cnn": {"onnx": "static", "tflite": "full"},
    "cnn_ensemble": {"onnx": "static", "tflite": "full"},
    "lstm": {"onnx": "dynamic", "tflite": "dynamic"},
    "transformer": {"onnx": "dynamic-dense", "tflite": "dynamic-dense"},
}


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"onnx,tflite"`` (or a sequence) -> the runtimes in :data:`RUNTIMES` order; unknown names are an error."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    unknown = sorted(set(names) - set(RUNTIMES))
    if unknown:
        raise ParameterError(f"unknown format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(RUNTIMES)}")
    if not names:
        raise ParameterError(f"no format given; choose from {', '.join(RUNTIMES)}")
    return tuple(r for r in RUNTIMES if r in names)


def default_out(run_dir: str | Path) -> Path:
    """``export/<run directory name>``."""
    return Path("export") / Path(run_dir).resolve().name


def export_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    int8: bool = False,
    formats: str | Sequence[str] = RUNTIMES,
    calibration: int = 200,
    max_drop: float = 2.0,
    allow_drop: bool = False,
    progress: bool = True,
    data: str | Path | None = None,
    latency_runs: int = 100,
) -> Path:
    """Export a trained run as a bundle and verify every file against PyTorch.

    Parameters
    ----------
    run_dir : path
        A cnn, lstm or transformer run written by ``harmonies train`` (``best.pt`` is exported).
    out_dir : path, optional
        The bundle folder; default ``export/<run directory name>``.
    int8 : bool
        Also write ``model.int8.onnx`` / ``model.int8.tflite``.
    formats : str or sequence of str
        Runtimes: ``"onnx"``, ``"tflite"`` or both (``"onnx,tflite"``).
    calibration : int
        Training windows that calibrate the static int8 ranges (>= 1).
    max_drop : float
        Largest int8 accuracy drop, in percentage points below the same
        runtime's fp32 file, before the export fails.
    allow_drop : bool
        Finalise the bundle even when an int8 file drops more than ``max_drop``
        (the report says so).
    progress : bool
        One line per step on stdout.
    data : path, optional
        The dataset, if it moved since training (see :func:`~pyharmonies.export.source.load_run`).
    latency_runs : int
        Timed calls per file for the latency column.

    Returns
    -------
    Path
        The bundle folder, with ``manifest.json``.

    Raises
    ------
    ParameterError
        A bad argument, or a run that cannot be exported (no ``best.pt``...).
    VerificationError
        An fp32 file's logits differ from PyTorch's by more than 1e-4; the
        files and ``report.md`` are in ``out_dir``, ``manifest.json`` is not.
    AccuracyDropError
        An int8 file is more than ``max_drop`` points below its fp32 file and
        ``allow_drop`` is False; likewise no manifest.
    """
    from pyharmonies.export import onnx_export, tflite_export
    from pyharmonies.export.fold import fold_batchnorm
    from pyharmonies.export.source import load_run
    from pyharmonies.export.verify import OnnxRunner, PyTorchRunner, TFLiteRunner, verify
    from pyharmonies.models.complexity import count_macs, count_parameters

    runtimes = parse_formats(formats)
    if isinstance(calibration, bool) or not isinstance(calibration, int) or calibration < 1:
        raise ParameterError(f"calibration must be a number of windows >= 1, got {calibration!r}")
    if not math.isfinite(max_drop):
        raise ParameterError(f"max_drop must be a finite number of points, got {max_drop!r}")
    if latency_runs < 1:
        raise ParameterError(f"latency_runs must be >= 1, got {latency_runs!r}")
    out = Path(out_dir) if out_dir is not None else default_out(run_dir)
    clock = _Steps(progress)

    clock.say(f"reading {run_dir}")
    src = load_run(run_dir, calibration=calibration, data=data, progress=progress)
    name = src.meta["model_name"]
    clock.say(f"{name}: {len(src.labels)} labels, {src.x.shape[0]} {src.split} windows to verify on"
              + (f", {src.calibration.shape[0]} training windows to calibrate on" if int8 else ""))  # fmt: skip
    folded = fold_batchnorm(src.model)
    example = folded.example_input(1)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        entries: dict[str, dict[str, Any]] = {}
        for runtime in runtimes:
            fp32 = staging / bundle.model_file(runtime, "fp32")
            clock.say(f"{fp32.name}: converting")
            if runtime == "onnx":
                onnx_export.export_fp32(folded, example, fp32)
                entries[fp32.name] = bundle.file_entry(fp32, quantization="none", **_io(onnx_export.io_details(fp32)))
            else:
                fp32.write_bytes(tflite_export.export_fp32(folded, example))
                entries[fp32.name] = bundle.file_entry(fp32, quantization="none", **_io(tflite_export.io_details(fp32.read_bytes())))
            clock.done(fp32)
            if not int8:
                continue
            q8 = staging / bundle.model_file(runtime, "int8")
            method = INT8_METHODS[name][runtime]
            clock.say(f"{q8.name}: quantizing ({method})")
            if runtime == "onnx":
                text = onnx_export.quantize_int8(fp32, q8, method, src.calibration)
                entries[q8.name] = bundle.file_entry(q8, quantization=text, **_io(onnx_export.io_details(q8)))
            else:
                # A probe's head holds its folded standardisation in a large bias (tflite_export._head_bias_as_add).
                buf, text = tflite_export.export_int8(folded, example, method, src.calibration, head_bias_as_add="probe" in src.meta)
                q8.write_bytes(buf)
                entries[q8.name] = bundle.file_entry(q8, quantization=text, **_io(tflite_export.io_details(buf)))
            clock.done(q8)

        clock.say(f"verifying on {src.x.shape[0]} {src.split} windows (latency: median of {latency_runs} calls, 1 thread)")
        runners: dict[str, Any] = {"pytorch": PyTorchRunner(src.model)}
        for file_name, entry in entries.items():
            runners[file_name] = (OnnxRunner if entry["runtime"] == "onnx" else TFLiteRunner)(staging / file_name)
        sizes = {file_name: entry["bytes"] for file_name, entry in entries.items()}
        rows = verify(runners, src.x, src.y, sizes=sizes, latency_runs=latency_runs)
        by_file = {row["file"]: row for row in rows}
        failures: list[str] = []
        for file_name, entry in entries.items():
            diff = by_file[file_name]["max_abs_logit_diff"]
            if entry["precision"] == "fp32" and not diff <= FP32_TOLERANCE:
                failures.append(f"{file_name}: logits differ from PyTorch's by up to {diff:.3g} (more than {FP32_TOLERANCE:g})")
        drops: dict[str, float] = {}
        allowed: list[str] = []
        drop_failures: list[str] = []
        for runtime in runtimes if int8 else ():
            before = by_file[bundle.model_file(runtime, "fp32")]["accuracy"]
            after = by_file[bundle.model_file(runtime, "int8")]["accuracy"]
            drops[runtime] = round(100.0 * (before - after), 6)
            if drops[runtime] > max_drop:
                text = (f"{bundle.model_file(runtime, 'int8')}: accuracy {100 * after:.2f}% is {drops[runtime]:.2f} points "
                        f"below {bundle.model_file(runtime, 'fp32')}'s {100 * before:.2f}% (--max-drop {max_drop:g})")  # fmt: skip
                (allowed if allow_drop else drop_failures).append(text)

        model_info = {
            "name": name,
            "config": dict(src.meta["model_config"]),
            "parameters": count_parameters(src.model),
            "macs_per_window": count_macs(src.model, tuple(example.shape)),
        }
        verification = {"split": src.split, "windows": int(src.x.shape[0]), "rows": rows, "int8_drop_points": drops}
        manifest = bundle.build_manifest(
            name=out.name, meta=src.meta, model_info=model_info, files=entries, verification=verification,
            source_run=str(Path(run_dir).resolve()), hop_frames=src.hop_frames,
            calibration={"split": "train", "windows": int(src.calibration.shape[0])} if int8 else None,
        )  # fmt: skip
        names = list(entries) + [bundle.REPORT]
        from pyharmonies.export.svm import export_svm

        fused = export_svm(run_dir, staging, labels=list(manifest["labels"]), feature_config=manifest["feature_config"])
        if fused is not None:
            manifest["svm"] = fused
            names.append(fused["file"])
        if name in ("cnn", "cnn_ensemble"):  # the device can embed too: the network without its head (export/embedding.py)
            from pyharmonies.export.embedding import export_embedding

            section, embedding_failures = export_embedding(folded, src.model, staging, runtimes=runtimes, int8=int8, x=src.x,
                                                           calibration=src.calibration, say=clock.say)  # fmt: skip
            failures += embedding_failures
            manifest["embedding"] = section
            names += list(section["files"])
        if name == "lstm" and not src.model.config.bidirectional:  # the device can stream: export/streaming.py
            from pyharmonies.export.streaming import export_streaming

            section, step_failures, step_drops = export_streaming(
                src.model, staging, runtimes=runtimes, int8=int8, x=src.x, y=src.y, calibration=src.calibration,
                say=clock.say, max_drop=max_drop, hop_frames=src.hop_frames, latency_runs=latency_runs, done=clock.done)  # fmt: skip
            failures += step_failures
            (allowed if allow_drop else drop_failures).extend(step_drops)
            manifest["streaming"] = section
            names += list(section["files"])
        if not failures and not drop_failures:
            manifest["reference"] = _reference(staging, manifest, src, clock)
            names.append(manifest["reference"]["file"])
            if "embedding" in manifest:
                from pyharmonies.export.embedding import embedding_reference

                manifest["embedding"]["reference"] = embedding_reference(staging, manifest)
            if "streaming" in manifest:
                from pyharmonies.export.streaming import streaming_reference

                manifest["streaming"]["reference"] = streaming_reference(staging, manifest)
            if "svm" in manifest:
                from pyharmonies.export.svm import svm_reference

                manifest["svm"]["reference"] = svm_reference(staging, manifest)
        write_report(staging / bundle.REPORT, manifest, max_drop=max_drop, failures=failures + drop_failures, allowed=allowed,
                     latency_runs=latency_runs)  # fmt: skip
        if "embedding" in manifest:
            from pyharmonies.export.embedding import report_lines

            with open(staging / bundle.REPORT, "a", encoding="utf-8") as f:
                f.write("\n" + "\n".join(report_lines(manifest["embedding"])) + "\n")
        if "svm" in manifest:
            from pyharmonies.export.svm import report_lines as svm_lines

            with open(staging / bundle.REPORT, "a", encoding="utf-8") as f:
                f.write("\n" + "\n".join(svm_lines(manifest["svm"])) + "\n")
        if "streaming" in manifest:
            from pyharmonies.export.streaming import report_lines as streaming_lines

            with open(staging / bundle.REPORT, "a", encoding="utf-8") as f:
                f.write("\n" + "\n".join(streaming_lines(manifest["streaming"])) + "\n")
        _move_into(staging, out, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    if progress:
        print("\n".join(verification_table(manifest)), flush=True)
    if failures:
        raise VerificationError(
            "fp32 verification failed: " + "; ".join(failures) + f". The files and report.md are in {out}; "
            "manifest.json was not written, so no runtime will load the bundle.", out)  # fmt: skip
    if drop_failures:
        raise AccuracyDropError(
            "int8 accuracy fell too far: " + "; ".join(drop_failures) + f". The files and report.md are in {out}; "
            "manifest.json was not written, so no runtime will load the bundle. Calibrate on more windows "
            "(--calibration), raise --max-drop, or keep the bundle as it is with --allow-drop.", out)  # fmt: skip
    bundle.write_manifest(out, manifest)
    clock.say(f"wrote {out / bundle.MANIFEST}")
    _load_as_the_device(out)
    return out


def _reference(staging: Path, manifest: dict[str, Any], src: Any, clock: _Steps) -> dict[str, Any]:
    """The ``reference`` entry, its WAV written into ``staging`` (the device runtime computes its values)."""
    from pyharmonies.export.reference import build_reference, candidate_segments

    fc = manifest["feature_config"]
    window = manifest["input"]["window_frames"]
    clock.say(f"self-check reference: choosing windows of the {src.split} split that tell every pair of labels apart")
    segments = candidate_segments(src.x_sources, fc["sample_rate"], fc["hop_length"], window)
    bundle.write_manifest(staging, manifest)  # provisional, so the device runtime can load the staged files
    entry, notes = build_reference(staging, segments)
    if notes:
        entry["notes"] = notes
        for note in notes:
            clock.say(f"note: {note}")
    return entry


def _load_as_the_device(out: Path) -> None:
    """Load the written bundle with the device runtime's every check, self-check included."""
    from pyharmonies.errors import BundleError
    from pyharmonies.runtime.bundle import load_bundle

    try:
        load_bundle(out)
    except BundleError as err:  # a bug of the exporter: its own bundle must load
        raise ExportError(f"the exported bundle fails the device's checks: {err}") from None


def _io(details: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {"input": details[0], "output": details[1]}


def _move_into(staging: Path, out: Path, names: list[str]) -> None:
    """Replace the bundle files in ``out`` with those in ``staging``: the old manifest first, stale model files too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / bundle.MANIFEST).unlink(missing_ok=True)
    from pyharmonies.export.embedding import EMBEDDING_FILES
    from pyharmonies.export.streaming import STEP_FILES
    from pyharmonies.export.svm import SVM_FILE

    for stale in (*bundle.MODEL_FILES, *EMBEDDING_FILES, *STEP_FILES, SVM_FILE):
        if stale not in names:
            (out / stale).unlink(missing_ok=True)
    for file_name in names:
        (staging / file_name).replace(out / file_name)


class _Steps:
    """Progress lines with the seconds each step took."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        self.start = time.perf_counter()
        if self.enabled:
            print(f"export: {text}", flush=True)

    def done(self, path: Path) -> None:
        if self.enabled:
            print(f"export:   {path.name}: {path.stat().st_size:,} bytes, {time.perf_counter() - self.start:.1f} s", flush=True)
