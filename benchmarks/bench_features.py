"""Time the harmonies C feature core against librosa; the figures of `harmonies bench`.

Usage (with harmonies installed, e.g. `make install`, or PYTHONPATH=. from the repository root):

    python benchmarks/bench_features.py                       # the table, 30 s clip, best of 5
    python benchmarks/bench_features.py --json --out bench.json --seconds 60 --repeat 10

Single-threaded: the thread variables below are set before numpy, numba or
librosa are imported (they are read when those load), and
pyharmonies.bench.run also applies threadpoolctl.threadpool_limits(1).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# Mirrors pyharmonies.bench.SINGLE_THREAD_ENV (checked in main): it cannot be
# imported from there before numpy, which that module imports.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the synthetic clip (default 30)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure, best kept (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--out", type=Path, help="also write the JSON figures to this file")
    args = parser.parse_args(argv)

    os.environ.update(SINGLE_THREAD_ENV)
    from pyharmonies import bench

    assert bench.SINGLE_THREAD_ENV == SINGLE_THREAD_ENV, "update SINGLE_THREAD_ENV here"
    result = bench.run(args.seconds, args.repeat)
    print(json.dumps(result, indent=2) if args.json else bench.format_report(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
