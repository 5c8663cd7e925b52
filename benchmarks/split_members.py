"""The members of averaged CNN runs as runs of their own, to score each member alone.

    .venv/bin/python benchmarks/split_members.py RUN OUT

RUN is a ``--folds`` run whose folds hold a ``cnn_ensemble`` (a ``--members``
or ``--mutual`` run). For member i, ``OUT/member-i/fold-k`` gets that
member's weights as an ordinary ``cnn`` checkpoint, with the fold's
``config.json`` and ``splits.json``, so that ``benchmarks/ensemble_folds.py
OUT/member-*`` scores each member on the fold's test clips and their average
(which must match RUN's own figures). Nothing is retrained.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyharmonies.training import checkpoint  # noqa: E402


def split_fold(fold: Path, out: Path) -> int:
    """Write each member of ``fold``'s ``cnn_ensemble`` to ``out/member-i/<fold name>``; returns the member count."""
    ck = checkpoint.load(fold / checkpoint.BEST)
    meta = ck["meta"]
    if meta["model_name"] != "cnn_ensemble":
        sys.exit(f"{fold}: a {meta['model_name']} run, not an average of CNNs")
    n = int(meta["model_config"]["members"])
    for i in range(n):
        prefix = f"members.{i}."
        weights = {name[len(prefix):]: value for name, value in ck["model"].items() if name.startswith(prefix)}
        member_meta = {**meta, "model_name": "cnn", "model_config": dict(meta["model_config"]["member"])}
        dest = out / f"member-{i}" / fold.name
        dest.mkdir(parents=True, exist_ok=True)
        checkpoint.save_atomic({**ck, "model": weights, "meta": member_meta}, dest / checkpoint.BEST)
        for name in ("config.json", "splits.json"):
            shutil.copyfile(fold / name, dest / name)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --folds run of cnn_ensemble folds")
    parser.add_argument("out", type=Path, help="where the members' runs go (OUT/member-i)")
    args = parser.parse_args()
    folds = sorted(args.run.glob("fold-*"))
    if not folds:
        sys.exit(f"{args.run}: no fold-K folders; give a --folds run")
    for fold in folds:
        n = split_fold(fold, args.out)
    for i in range(n):
        shutil.copyfile(args.run / "fold-0" / "config.json", args.out / f"member-{i}" / "config.json")
    print(f"{n} members of {len(folds)} folds in {args.out}/member-*")


if __name__ == "__main__":
    main()
