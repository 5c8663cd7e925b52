"""``harmonies train --members N``: N CNNs trained on one split and averaged into one model.

On the soundtracks set, one run of a recipe moves by about ±4 points per
fold from its random stream alone, and the mean of several runs' logits
beats the mean of its members on every fold (docs/EXPERIMENTS.md). This
makes that a training option instead of a sequence of commands: member i
is an ordinary run in ``OUT/member-i``, trained with ``seed + i`` on the
split drawn by the run's own split seed (with ``--member-val own``, each
holding out its own validation tracks), and the members are then averaged
by :func:`pyharmonies.training.ensemble.ensemble_run` into ``OUT`` (one
``cnn_ensemble`` model, exported as one file). It is the CNN's default: three
members of width 0.4 (``DEFAULT_MEMBERS``, ``MEMBER_WIDTH`` in
:mod:`pyharmonies.training.config`) hold fewer parameters than one full-width
CNN and stay under 250 kB as int8.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig


def member_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One configuration per member of ``cfg`` (``cfg.members`` > 1).

    Member ``i`` trains into ``cfg.out/member-i`` with ``seed + i`` and the
    split seed pinned to ``cfg.splits_seed``, so every member tests on the
    same clips. With ``member_val`` "shared" they also train and validate on
    the same clips and only the random draw differs; with "own", member
    ``i`` holds out its own validation tracks (val seed ``val_seed + i``,
    or ``seed + i`` without one) and every member standardises its inputs
    by the statistics of all the non-test clips, which they share.
    """
    own = cfg.member_val == "own"
    # The members are plain networks: the SVM is fused with their average, not with each (fuse_svm).
    base = {**cfg.to_dict(), "members": 1, "member_val": "shared", "split_seed": cfg.splits_seed, "fuse_svm": None}
    if own:
        base["normalize_over"] = "train+val"
    first_val = cfg.seed if cfg.val_seed is None else cfg.val_seed
    return [TrainConfig.from_dict({**base, "seed": cfg.seed + i, "out": str(Path(cfg.out) / f"member-{i}"),
                                   **({"val_seed": first_val + i} if own else {})})
            for i in range(cfg.members)]  # fmt: skip


def train_members(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    split_keys: dict[str, set[str]] | None = None,
    resume: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Train ``cfg.members`` CNNs (:func:`member_configs`) and average them into the run ``cfg.out``.

    ``resume`` keeps the members that finished, continues the one that was
    running from its ``last.pt`` and redoes the averaging if it was cut
    short. The arguments are :func:`pyharmonies.training.loop.train_run`'s.

    Returns
    -------
    Path
        ``cfg.out``: ``best.pt`` (the ``cnn_ensemble``), ``config.json``
        (this configuration), ``splits.json``, ``ensemble.json``,
        ``metrics.json`` (the ensemble beside each member and the SVM
        baseline) and ``report.md``; the members in ``member-i``.
    """
    from pyharmonies.training.ensemble import ensemble_run
    from pyharmonies.training.loop import check_resumable, train_run

    out = Path(cfg.out)
    if resume:
        check_resumable(cfg, out)
        if (out / "metrics.json").exists():
            return out
    elif (out / "member-0").exists() or (out / checkpoint.BEST).exists():
        raise ParameterError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")  # first, so that --resume can check its options
    runs = []
    for i, sub in enumerate(member_configs(cfg)):
        run = Path(sub.out)
        if not (resume and (run / "metrics.json").exists()):
            if progress:
                print(f"member {i + 1}/{cfg.members} (seed {sub.seed}): {run}", flush=True)
            train_run(sub, progress=progress, split_keys=split_keys, resume=resume and (run / checkpoint.LAST).exists(),
                      warn=warn if i == 0 else None)  # fmt: skip
        runs.append(run)
    if int(os.environ.get("RANK", "0")) == 0:
        for name in (checkpoint.BEST, "ensemble.json", "splits.json"):  # an averaging cut short by a kill
            (out / name).unlink(missing_ok=True)
        ensemble_run(runs, out, progress=progress)
        cfg.save(out / "config.json")  # ensemble_run wrote member 0's
    return out
