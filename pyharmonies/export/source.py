"""What an export reads from a run: the best model, its meta, and windows of its own splits.

The validation windows (verification) and the calibration windows (int8)
are cut exactly as training cut them: the run's ``splits.json``, its window
length and hop, the cached features of its FeatureConfig, normalised with the
statistics in the checkpoint. A window is therefore what the model was
validated on, and what the device will feed the exported file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models.registry import MODELS
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig

#: The splits tried, in order, for verification: the run's validation split, else its test split.
VERIFY_SPLITS = ("val", "test")

#: Seed of the choice of calibration windows (the same run gives the same int8 files).
CALIBRATION_SEED = 0


@dataclass
class RunSource:
    """A trained run made ready for export."""

    run_dir: Path
    config: TrainConfig
    meta: dict[str, Any]  # the checkpoint's meta (loop.build_meta)
    model: nn.Module  # the best weights, eval mode, on the CPU
    split: str  # the split of x/y: "val" (or "test" when the run has no validation split)
    x: np.ndarray  # (N, 1, rows, frames) for the CNN, (N, rows, frames) for the LSTM and transformer; normalised float32
    y: np.ndarray  # (N,) label indices
    calibration: np.ndarray  # (K, ...) like x: training windows for int8 calibration
    hop_frames: int = 0  # frames between training windows (the run's window_hop, as frames)
    # Where each window of x comes from: (audio file, its clip's start in seconds, first frame in the clip).
    x_sources: list[tuple[Path, float, int]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])


def load_run(
    run_dir: str | Path, *, calibration: int = 200, data: str | Path | None = None, progress: bool = True
) -> RunSource:
    """Read a run directory written by ``harmonies train``.

    Parameters
    ----------
    run_dir : path
        Holds ``config.json``, ``splits.json`` and ``best.pt``.
    calibration : int
        Training windows to draw (seeded, without replacement; all of them if
        the split has fewer).
    data : path, optional
        The dataset, when it is no longer where ``config.json`` says (another
        machine): it must hold the same files (clips are matched by key).
    progress : bool
        A progress bar while features are computed (only files not cached).

    Raises
    ------
    ParameterError
        Not a run directory, no ``best.pt``, an SVM run, the dataset missing,
        or splits without windows.
    """
    from pyharmonies.data.splits import load_splits
    from pyharmonies.data.windows import window_frames
    from pyharmonies.features import FeatureConfig
    from pyharmonies.training.dataset import FeatureSource, Normalizer, WindowDataset
    from pyharmonies.training.loop import make_split_windows, model_from_meta, prepare_data

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ParameterError(f"{run_dir}: no such run directory")
    if not (run_dir / "config.json").is_file():
        raise ParameterError(f"{run_dir}: not a run directory (no config.json; `harmonies train --out DIR` writes one)")
    cfg = TrainConfig.load(run_dir / "config.json")
    if cfg.model not in (*MODELS, "probe"):  # a probe run's best.pt is a CNN (training/probe.py)
        raise ParameterError(f"{run_dir} is a {cfg.model} run; only neural runs ({', '.join((*MODELS, 'probe'))}) export to a bundle")
    if not (run_dir / checkpoint.BEST).is_file():
        raise ParameterError(
            f"{run_dir}: no {checkpoint.BEST} (the run was killed before its first epoch ended, or is still training); "
            f"finish it with `harmonies train ... --out {run_dir} --resume`"
        )
    ck = checkpoint.load(run_dir / checkpoint.BEST)
    meta = ck["meta"]
    model = model_from_meta(meta)
    model.load_state_dict(ck["model"])
    model.eval()

    data_path = Path(data) if data is not None else Path(cfg.data)
    if not data_path.exists():
        raise ParameterError(
            f"the run's dataset {data_path} is not there: export verifies on the run's validation windows and "
            "calibrates int8 on its training windows, so it needs the data (pass --data if it moved)"
        )
    fcfg = FeatureConfig(**meta["feature_config"])
    kind = meta["input_kind"]
    prep = prepare_data(data_path, fcfg, kind, cfg.cache, progress=progress, labels=meta["labels"])
    prep.splits = load_splits(run_dir / "splits.json", prep.clips)
    window = int(meta["window_frames"])
    hop = max(1, window_frames(cfg.hop_seconds, fcfg))
    windows = make_split_windows(prep, window, hop)
    source = FeatureSource(prep.cache, fcfg, kind)
    normalizer = Normalizer.from_dict(meta["normalizer"])

    def stack(wins) -> tuple[np.ndarray, np.ndarray]:
        ds = WindowDataset(prep.clips, prep.label_index, wins, source, normalizer, window)
        xs = [ds[i][0].numpy() for i in range(len(ds))]
        return np.stack(xs).astype(np.float32, copy=False), ds.labels.copy()

    split = next((s for s in VERIFY_SPLITS if windows.get(s)), None)
    if split is None:
        raise ParameterError(f"{run_dir}: neither the validation nor the test split has windows to verify on")
    x, y = stack(windows[split])
    sources = [(Path(prep.clips[w.clip].path), float(prep.clips[w.clip].start_s), int(w.start)) for w in windows[split]]
    train = windows.get("train") or []
    if not train:
        raise ParameterError(f"{run_dir}: the training split has no windows to calibrate int8 on")
    rng = np.random.default_rng(CALIBRATION_SEED)
    pick = np.sort(rng.choice(len(train), size=min(int(calibration), len(train)), replace=False))
    calib, _ = stack([train[i] for i in pick])
    return RunSource(run_dir, cfg, meta, model, split, x, y, calib, hop_frames=hop, x_sources=sources)
