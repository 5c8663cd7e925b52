"""A tiny CNN trained for one epoch, and its backbone as a file: what the embed and probe tests start from."""

from __future__ import annotations

from pathlib import Path

#: A tiny MobileNetV2 (conftest's SMALL_CNN): trains in seconds on one core.
SMALL_CNN = {"blocks": ((1, 8, 1, 1), (2, 16, 1, 2)), "last_channels": 32}


def train_tiny_backbone(base: Path, corpus: Path) -> tuple[Path, Path]:
    """Train the tiny CNN on ``corpus`` (32 mels, 1 s windows, one epoch) into ``base/run``.

    Returns the run folder and ``base/bb.npz``, its backbone saved as a backbone file.
    """
    from pyharmonies.training import checkpoint
    from pyharmonies.training.backbone import save_backbone
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import model_from_meta, train_run

    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="cnn", window=1.0, seed=0,
                      features={"n_mels": 32}, batch_size=8, epochs=1, patience=1, augment=False, mixup=0.0,
                      model_options=SMALL_CNN, members=1)  # fmt: skip
    run = train_run(cfg, progress=False)
    ck = checkpoint.load(run / checkpoint.BEST)
    net = model_from_meta(ck["meta"])
    net.load_state_dict(ck["model"])
    keys = ("model_config", "feature_config", "window_frames", "input_shape", "normalizer", "window_seconds")
    return run, save_backbone(base / "bb.npz", net, {k: ck["meta"][k] for k in keys})
