"""How far the thresholds of tests on freshly trained models are from failing, over seeds and threads.

    .venv/bin/python benchmarks/bench_margins.py [--seeds 0 1 2 3 4] [--threads 1 2] [--json]

Runs the selected tests (by default test_runtime's, whose models are trained
in the test) once per training seed and number of training threads, through
the environment variables the tests read (``HARMONIES_TEST_SEED``,
``HARMONIES_TEST_TRAIN_THREADS``), collects the ``margin: NAME VALUE OP
THRESHOLD`` lines they print, and tabulates each quantity: its threshold,
and its worst, median and best value over the runs. A test must pass on every
seed for its threshold to be safe on a machine that trains another model.

CPU-heavy: each run trains and exports the test's models (about 2 minutes on
2 idle cores); run it under ``nice``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = [
    "tests/test_runtime.py::test_tflite_and_onnx_agree_on_top1",
    "tests/test_runtime.py::test_exported_bundle_runs_on_the_device_runtime",
    "tests/test_runtime.py::test_classify_cli_json_with_a_corrupt_file",
]
MARGIN = re.compile(r"^margin: (\S+) (\S+) (>=|<=) (\S+)$", re.MULTILINE)


def run_once(tests: list[str], seed: int, threads: int) -> tuple[dict[str, tuple[float, str, float]], str]:
    """Run ``tests`` with one training seed and thread count; the margins printed, and pytest's last line."""
    env = {**os.environ, "HARMONIES_TEST_SEED": str(seed), "HARMONIES_TEST_TRAIN_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *tests],
                         cwd=REPO, env=env, capture_output=True, text=True)  # fmt: skip
    found = {m[1]: (float(m[2]), m[3], float(m[4])) for m in MARGIN.finditer(out.stdout)}
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-200:]
    return found, tail


def table(runs: dict[tuple[int, int], dict[str, tuple[float, str, float]]]) -> list[dict]:
    """One row per quantity: threshold, worst / median / best over the runs, and the runs that failed it."""
    values: dict[str, list[tuple[float, tuple[int, int]]]] = defaultdict(list)
    bound: dict[str, tuple[str, float]] = {}
    for key, found in runs.items():
        for name, (value, op, threshold) in found.items():
            values[name].append((value, key))
            bound[name] = (op, threshold)
    rows = []
    for name in sorted(values):
        op, threshold = bound[name]
        ordered = sorted(v for v, _ in values[name])
        if op == "<=":
            ordered.reverse()  # worst first: the largest
        failed = [f"seed {s} ({t} thr)" for v, (s, t) in values[name] if (v < threshold if op == ">=" else v > threshold)]
        rows.append({"quantity": name, "bound": f"{op} {threshold:g}", "worst": ordered[0], "median": ordered[len(ordered) // 2],
                     "best": ordered[-1], "runs": len(ordered), "failed": failed})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads while training")
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS)
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args()

    runs = {}
    for seed in args.seeds:
        for threads in args.threads:
            runs[(seed, threads)], tail = run_once(args.tests, seed, threads)
            print(f"seed {seed}, {threads} training thread(s): {tail}", file=sys.stderr, flush=True)
            for name, (value, op, threshold) in runs[(seed, threads)].items():
                print(f"  {name} {value:.4f} {op} {threshold:g}", file=sys.stderr, flush=True)
    rows = table(runs)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| quantity | bound | worst | median | best | runs | failed |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['quantity']} | {r['bound']} | {r['worst']:.4f} | {r['median']:.4f} | {r['best']:.4f} | {r['runs']} | "
              f"{', '.join(r['failed']) or '-'} |")  # fmt: skip


if __name__ == "__main__":
    main()
