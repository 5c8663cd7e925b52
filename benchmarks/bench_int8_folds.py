"""int8 against fp32 on every fold of a cross-validated run: does quantization keep the accuracy?

    .venv/bin/python benchmarks/bench_int8_folds.py RUNS/cnn-folds [--format tflite] [--out DIR] [--cache DIR]

Exports each fold's best model as a bundle with int8 files (``harmonies
export --int8``, the fold's own training windows calibrate it), then runs the
device runtime on the fold's test clips twice, fp32 and int8, and prints the
clip accuracy of both per fold, and the paired difference (int8 - fp32) as
mean ± std with a 95% interval over the folds. The target of issue 11: int8
within 1 point of fp32. Writes ``int8.json`` into the run folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.export import export_run  # noqa: E402
from pyharmonies.training.bundle_eval import evaluate_bundle  # noqa: E402
from pyharmonies.training.crossval import interval, paired_difference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --folds run folder (holding fold-0, fold-1, ...)")
    parser.add_argument("--format", default="tflite", choices=["tflite", "onnx"], help="the runtime to compare in")
    parser.add_argument("--out", type=Path, default=None, help="bundles go here (default RUN/bundles)")
    parser.add_argument("--cache", type=Path, default=None, help="the training feature cache (faster)")
    args = parser.parse_args()

    config = json.loads((args.run / "config.json").read_text())
    data = config["data"]
    out = args.out or args.run / "bundles"
    rows = []
    for fold in sorted(args.run.glob("fold-*"), key=lambda p: int(p.name.split("-")[1])):
        bundle = out / fold.name
        if not (bundle / "manifest.json").exists():
            export_run(fold, bundle, int8=True, formats=args.format, allow_drop=True, progress=False, latency_runs=5)
        accs = {}
        for precision in ("fp32", "int8"):
            m = evaluate_bundle(bundle, data, split="test", backend=args.format, precision=precision, cache=args.cache)
            accs[precision] = m["clip"]["accuracy"]
        rows.append({"fold": fold.name, **accs})
        print(f"{fold.name}: fp32 {100 * accs['fp32']:.1f}%  int8 {100 * accs['int8']:.1f}%  "
              f"({100 * (accs['int8'] - accs['fp32']):+.1f} points)", flush=True)  # fmt: skip
    fp32, int8 = [r["fp32"] for r in rows], [r["int8"] for r in rows]
    summary = {"format": args.format, "folds": rows, "fp32": interval(fp32), "int8": interval(int8),
               "int8_minus_fp32": paired_difference(int8, fp32)}  # fmt: skip
    d = summary["int8_minus_fp32"]
    print(f"fp32 {100 * summary['fp32']['mean']:.1f} ± {100 * summary['fp32']['std']:.1f}%, "
          f"int8 {100 * summary['int8']['mean']:.1f} ± {100 * summary['int8']['std']:.1f}%, "
          f"int8 - fp32 {100 * d['mean']:+.2f} ± {100 * d['std']:.2f} points "
          f"(95% CI {100 * d['ci95'][0]:+.2f} to {100 * d['ci95'][1]:+.2f})")  # fmt: skip
    (args.run / "int8.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
