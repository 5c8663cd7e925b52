"""The bundle's ``report.md``: the verification table, the quantization of each file, the checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The largest absolute logit difference an fp32 file may show against PyTorch.
FP32_TOLERANCE = 1e-4


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _size(n: int | None) -> str:
    return "—" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"


def _diff(value: float | None) -> str:
    return "—" if value is None else f"{value:.2e}"


def verification_table(manifest: dict[str, Any]) -> list[str]:
    """The verification rows as a Markdown table."""
    files = manifest["files"]
    lines = [
        "| file | runtime | precision | accuracy | agreement with PyTorch | max abs logit diff | size | latency per window (1 thread) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in manifest["verification"]["rows"]:
        entry = files.get(row["file"], {"runtime": "pytorch", "precision": "fp32"})
        lines.append(
            f"| {row['file']} | {entry['runtime']} | {entry['precision']} | {_percent(row['accuracy'])} | "
            f"{_percent(row['agreement'])} | {_diff(row['max_abs_logit_diff'])} | {_size(row['bytes'])} | "
            f"{row['latency_ms']:.3f} ms |"
        )
    return lines


def _tensor(t: dict[str, Any]) -> str:
    if t["scale"] is None:
        return f"`{t['name']}` {t['dtype']}"
    return f"`{t['name']}` {t['dtype']}, scale {t['scale']:.9g}, zero point {t['zero_point']}"


def write_report(
    path: Path, manifest: dict[str, Any], *, max_drop: float, failures: list[str], allowed: list[str], latency_runs: int = 100
) -> None:
    """Write ``report.md`` for a bundle.

    Parameters
    ----------
    path : Path
    manifest : dict
        As :func:`pyharmonies.export.bundle.build_manifest` returns (written or not).
    max_drop : float
        The int8 accuracy drop allowed, in points.
    failures : list of str
        Why the bundle was not finalised (empty when it was).
    allowed : list of str
        Drops beyond ``max_drop`` that ``allow_drop`` let through.
    latency_runs : int
        Timed calls behind each latency figure.
    """
    model, inp, ver = manifest["model"], manifest["input"], manifest["verification"]
    lines = [f"# Bundle `{manifest['name']}`", ""]
    if failures:
        lines += ["**Not finalised: no `manifest.json` was written, so no runtime loads this folder.**", ""]
        lines += [f"- {text}" for text in failures] + [""]
    lines += [
        f"Exported from `{manifest['source_run']}` on {manifest['created']} by harmonies {manifest['harmonies_version']}: "
        f"{model['name']} ({model['parameters']:,} parameters, {model['macs_per_window'] / 1e6:.2f} M multiply-accumulates "
        f"per window), {len(manifest['labels'])} labels: {', '.join(manifest['labels'])}.",
        "",
        f"Input: `{inp['kind']}` windows of {inp['shape'][0]} rows x {inp['window_frames']} frames "
        f"({inp['window_seconds']:g} s), laid out {inp['layout']}, each row normalised as (x - mean) / std "
        "with the statistics in `manifest.json`. Output: logits (softmax is the runtime's).",
        "",
        "## Verification",
        "",
        f"{ver['windows']} windows of the run's `{ver['split']}` split, through PyTorch (the trained model) and each file. "
        "Accuracy and agreement are top-1 per window; agreement and the logit difference are against PyTorch "
        f"(fp32 files must stay within {FP32_TOLERANCE:g}; for int8 files, whose logits are dequantized, it shows the "
        f"quantization error). Latency is the median of {latency_runs} single-window calls after 10 warm-up calls on "
        "one thread (torch.set_num_threads(1), onnxruntime intra_op_num_threads=1, LiteRT Interpreter num_threads=1 "
        "with its default XNNPACK delegate), int8 input quantization included.",
        "",
        *verification_table(manifest),
        "",
    ]
    drops = ver["int8_drop_points"]
    if drops:
        parts = [f"{runtime} {points:+.2f}" for runtime, points in drops.items()]
        lines.append(f"int8 accuracy drop against the same runtime's fp32 file, in points (limit {max_drop:g}): {', '.join(parts)}.")
        if allowed:
            lines.append("Beyond the limit, accepted with --allow-drop: " + "; ".join(allowed) + ".")
        lines.append("")
    lines += ["## Files", "", "| file | quantization | input | output | sha256 |", "|---|---|---|---|---|"]
    for name, entry in manifest["files"].items():
        lines.append(f"| {name} | {entry['quantization']} | {_tensor(entry['input'])} | {_tensor(entry['output'])} | `{entry['sha256']}` |")
    lines += [""]
    notes = ["BatchNorm is folded into the preceding convolution in every file (the ONNX graphs are checked for "
             "BatchNormalization nodes); dropout is off (eval mode)."]  # fmt: skip
    if "calibration" in manifest:
        cal = manifest["calibration"]
        notes.append(f"Static int8 ranges were calibrated on {cal['windows']} windows of the run's `{cal['split']}` split "
                     "(a seeded draw), normalised like the device's input.")  # fmt: skip
    int8_inputs = [n for n, e in manifest["files"].items() if e["input"]["dtype"] == "int8"]
    if int8_inputs:
        notes.append(f"{', '.join(int8_inputs)}: the runtime quantizes the normalised window as "
                     "q = clip(round(x / scale) + zero_point, -128, 127) and dequantizes the logits as "
                     "(q - zero_point) * scale.")  # fmt: skip
    if "reference" in manifest:
        ref = manifest["reference"]
        where = ", ".join(f"{src['file']} at {src['start_s']:g} s" for src in ref["source"])
        notes.append(f"Self-check: `{ref['file']}` holds {len(ref['window_starts'])} window(s) of the `{manifest['verification']['split']}` "
                     f"split ({where}); the device runs it through "
                     "every file at load and refuses the bundle if the log-probabilities differ from the ones stored.")  # fmt: skip
        notes += ref.get("notes", [])
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
