"""Start-up and memory figures of the device side, on whatever machine runs this script.

``make test-arm64`` runs it under emulation in the arm64 root (the figures are qemu's, not a Pi's)
and writes them to build/arm64/figures.md::

    python arm64/figures.py BUNDLE CLIP [--runs 3] [--out figures.md]

- import: a fresh interpreter importing the device side (features, runtime, stream, cli), and then
  both inference runtimes;
- bundle load: ``load_bundle`` (checksums and the golden self-check, which runs every model file
  once) and making the int8 LiteRT and ONNX Runtime backends;
- peak RSS of ``harmonies classify BUNDLE CLIP`` per backend, from the kernel's accounting of the
  child process (under qemu-user that process is the emulator, its translated code included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Run in a fresh interpreter: prints the seconds of each step as JSON.
_STEPS = """
import json, sys, time
t = {}
t0 = time.perf_counter()
import pyharmonies.features, pyharmonies.runtime, pyharmonies.stream, pyharmonies.cli
t["import device side"] = time.perf_counter() - t0
t0 = time.perf_counter()
import ai_edge_litert.interpreter, onnxruntime
t["import both runtimes"] = time.perf_counter() - t0
from pyharmonies.runtime import load_bundle, make_backend
t0 = time.perf_counter()
bundle = load_bundle(sys.argv[1])
t["load_bundle (checksums, self-check)"] = time.perf_counter() - t0
for runtime in ("tflite", "onnx"):
    t0 = time.perf_counter()
    make_backend(bundle, runtime, "int8")
    t[f"make_backend {runtime} int8"] = time.perf_counter() - t0
print(json.dumps(t))
"""


def timed_steps(bundle: str, runs: int) -> dict[str, float]:
    """Median seconds of each step of :data:`_STEPS` over ``runs`` fresh interpreters."""
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _STEPS, bundle], capture_output=True, text=True, check=True)
        for step, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
            samples.setdefault(step, []).append(seconds)
    return {step: statistics.median(values) for step, values in samples.items()}


def classify_peak_rss(bundle: str, clip: str, backend: str) -> tuple[float, float]:
    """``harmonies classify`` of ``clip`` as a child process: (peak RSS in MiB, wall seconds)."""
    harmonies = Path(sys.executable).parent / "harmonies"
    # A file, not a pipe, for stderr: wait4 (which gives the child's rusage) must not wait on a full pipe.
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        child = subprocess.Popen([str(harmonies), "classify", bundle, clip, "--backend", backend, "--json"],
                                 stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"harmonies classify failed ({child.returncode}): {err.read().decode().strip()}")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    """Measure and print (and with --out, write) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("clip")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    emulated = os.environ.get("QEMU_CPU")
    where = f"{platform.machine()}" + (f", emulated by qemu-user (QEMU_CPU={emulated})" if emulated else "")
    lines = [f"Figures on {where}, median of {args.runs} runs:", "", "| figure | value |", "|---|---:|"]
    for step, seconds in timed_steps(args.bundle, args.runs).items():
        lines.append(f"| {step} | {seconds:.2f} s |")
    for backend in ("tflite", "onnx"):
        rss, wall = classify_peak_rss(args.bundle, args.clip, backend)
        lines.append(f"| `harmonies classify` {Path(args.clip).name}, {backend} int8: peak RSS / wall time | {rss:.0f} MiB / {wall:.1f} s |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
