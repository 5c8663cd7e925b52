"""Training-side figures: feature cache vs recomputation, loader throughput,
model sizes, and the accuracy of cnn, lstm, transformer and svm on the synthetic corpus.

    .venv/bin/python benchmarks/bench_training.py [--out build/bench-training] [--json]

Everything runs in one process on this machine, so the ratios compare like
with like. Timings are wall-clock seconds of the whole step (no warm-up
epoch is counted: the second epoch of each run is reported).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def loader_throughput(prep, cfg, use_cache: bool, limit: int = 400) -> float:
    """Training windows per second through the DataLoader alone (no model)."""
    from torch.utils.data import DataLoader

    from pyharmonies.data.augment import AugmentConfig
    from pyharmonies.data.windows import window_frames
    from pyharmonies.training.dataset import FeatureSource, Normalizer, WindowDataset
    from pyharmonies.training.loop import make_split_windows

    window = window_frames(cfg.window, prep.feature_config)
    hop = window_frames(cfg.hop_seconds, prep.feature_config)
    windows = make_split_windows(prep, window, hop)["train"][:limit]
    source = FeatureSource(prep.cache, prep.feature_config, prep.kind, use_cache=use_cache)
    norm = Normalizer.fit([prep.cache.clip_features(prep.clips[i], prep.kind) for i in prep.splits["train"]])
    ds = WindowDataset(prep.clips, prep.label_index, windows, source, norm, window, augment=AugmentConfig(), seed=0)
    loader = DataLoader(ds, batch_size=32, shuffle=True)
    t0 = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/bench-training"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.data.splits import split_groups
    from pyharmonies.features import FeatureConfig
    from pyharmonies.models.complexity import count_macs, count_parameters
    from pyharmonies.models.registry import build_model
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import prepare_data, train_run
    from pyharmonies.training.svm import train_svm_run

    out = args.out
    data = out / "synth"
    if not (data / "manifest.csv").exists():
        synth_corpus(data, classes=5, clips_per_class=40, seconds=6.0, seed=3, progress=False)
    cache = out / "cache"
    figures: dict = {"corpus": "5 classes x 40 clips x 6 s (harmonies dataset synth, seed 3)"}

    # Cache build: cold, then warm.
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    prep = prepare_data(data, FeatureConfig(), "log_mel", cache, progress=False)
    figures["cache_build_cold_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prep = prepare_data(data, FeatureConfig(), "log_mel", cache, progress=False)
    figures["cache_open_warm_s"] = time.perf_counter() - t0
    prep.splits = split_groups(prep.clips, seed=0)
    base = TrainConfig(data=str(data), cache=str(cache), window_hop=1.0, members=1)  # one network's throughput
    figures["loader_windows_per_s_cached"] = loader_throughput(prep, base, True)
    figures["loader_windows_per_s_recomputed"] = loader_throughput(prep, base, False)

    # One epoch with and without the cache (the second epoch of a 2-epoch run),
    # for the compute-heavy CNN and the light LSTM.
    for model in ("cnn", "lstm"):
        for use_cache in (True, False):
            run = out / f"epoch-{model}-cache-{use_cache}"
            shutil.rmtree(run, ignore_errors=True)
            cfg = TrainConfig(**{**base.to_dict(), "out": str(run), "model": model, "epochs": 2, "patience": 100, "use_cache": use_cache})
            train_run(cfg, progress=False)
            history = json.loads((run / "metrics.json").read_text())["history"]
            figures[f"{model}_epoch_s_{'cached' if use_cache else 'recomputed'}"] = history[1]["seconds"]
        figures[f"{model}_epoch_speedup_cache"] = figures[f"{model}_epoch_s_recomputed"] / figures[f"{model}_epoch_s_cached"]
    figures["loader_speedup_cache"] = figures["loader_windows_per_s_cached"] / figures["loader_windows_per_s_recomputed"]

    # Model sizes at the defaults.
    for name, shape in (("cnn", (64, 129)), ("lstm", (28, 129)), ("transformer", (28, 129))):
        model = build_model(name, 10, shape)
        batch_shape = (1, 1, *shape) if name == "cnn" else (1, *shape)
        figures[f"{name}_parameters"] = count_parameters(model)
        figures[f"{name}_macs_per_window"] = count_macs(model, batch_shape)

    # Accuracy of each model on the test split, and its training time.
    for model, extra in (("cnn", {"epochs": 30, "patience": 10}), ("lstm", {"epochs": 60, "patience": 15}),
                         ("transformer", {"epochs": 40, "patience": 15}), ("svm", {})):
        run = out / f"accuracy-{model}"
        shutil.rmtree(run, ignore_errors=True)
        cfg = TrainConfig(**{**base.to_dict(), "out": str(run), "model": model, **extra})
        t0 = time.perf_counter()
        (train_svm_run if model == "svm" else train_run)(cfg, progress=False)
        seconds = time.perf_counter() - t0
        test = json.loads((run / "metrics.json").read_text())["splits"]["test"]
        level = "clip" if model == "svm" else "window"
        figures[f"{model}_test_accuracy"] = test[level]["accuracy"]
        figures[f"{model}_test_level"] = level
        figures[f"{model}_train_s"] = seconds
        if model != "svm":
            figures[f"{model}_test_clip_accuracy"] = test["clip"]["accuracy"]

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:34s} {value:.4g}" if isinstance(value, float) else f"{key:34s} {value}")


if __name__ == "__main__":
    main()
