"""Windows of cached features as a torch Dataset.

Each item is one fixed-length window of one clip: the frames the device
would see in that stretch of audio, cut from the clip's cached features
(or recomputed from audio when the cache is off), augmented in the feature
domain when training, normalised with the training set's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pyharmonies.data.augment import (
    AugmentConfig,
    augment_window,
    mix_in,
    stretch_source_frames,
    time_stretch,
    white_noise_profile,
)
from pyharmonies.data.cache import FeatureCache
from pyharmonies.data.sources import Clip
from pyharmonies.features import FeatureConfig
from pyharmonies.windows import Window, input_features, silence_values, take_window


class FeatureSource:
    """Features of clips: from the cache, or recomputed from audio each time."""

    def __init__(self, cache: FeatureCache, config: FeatureConfig, kind: str, *, use_cache: bool = True):
        self.cache = cache
        self.config = config
        self.kind = kind
        self.use_cache = use_cache

    def __call__(self, clip: Clip) -> np.ndarray:
        """(n, frames) features of the clip's time range."""
        if self.use_cache:
            return self.cache.clip_features(clip, self.kind)
        from pyharmonies.audio import load

        y = load(clip.path, self.config.sample_rate, start_s=clip.start_s, end_s=clip.end_s)
        return input_features(y, self.config, self.kind)


@dataclass
class Normalizer:
    """Per-row standardisation: (x - mean) / std, statistics from training data."""

    mean: np.ndarray  # (n,)
    std: np.ndarray  # (n,)

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray], *, pooled: bool = False) -> Normalizer:
        """Mean and std of every row over all frames of ``arrays`` (each (n, frames)).

        ``pooled``: one mean and std over every row and frame, repeated for each
        row, so the standardised rows keep their relative levels (a log-mel's
        spectral tilt); the result has the same (n,) shape either way.
        """
        n = arrays[0].shape[0]
        total = np.zeros(n)
        total_sq = np.zeros(n)
        count = 0
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            total += a.sum(axis=1)
            total_sq += (a * a).sum(axis=1)
            count += a.shape[1]
        if pooled:
            total, total_sq, count = np.full(n, total.sum()), np.full(n, total_sq.sum()), count * n
        mean = total / max(count, 1)
        var = np.maximum(total_sq / max(count, 1) - mean * mean, 0.0)
        # A constant row (e.g. a band always at the floor) must not blow up.
        std = np.sqrt(var)
        std[std < 1e-6] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean[:, None]) / self.std[:, None]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))


class WindowDataset(Dataset):
    """``(x, label)`` for each window.

    x is ``(1, n_mels, window)`` for log-mel inputs (the CNN's image) and
    ``(28, window)`` for frame vectors (the LSTM's sequence), float32.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        label_index: dict[str, int],
        windows: Sequence[Window],
        source: FeatureSource,
        normalizer: Normalizer,
        window: int,
        *,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        self.clips = clips
        self.labels = np.asarray([label_index[clips[w.clip].label] for w in windows], dtype=np.int64)
        self.windows = list(windows)
        self.source = source
        self.normalizer = normalizer
        self.window = window
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.pad = silence_values(source.config)[source.kind]
        self.noise_profile = white_noise_profile(source.config) if augment is not None else None
        # Frame vectors cannot be mixed (see mix_in): no partner is looked up or read for them.
        mixing = augment is not None and augment.p_mix_class and source.kind == "log_mel"
        self.partners = class_partners(clips, windows) if mixing else None

    def set_epoch(self, epoch: int) -> None:
        """Augmentation randomness is a function of (seed, epoch, index): resumable."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def raw(self, i: int, jitter: float = 0.0, rate: float = 1.0) -> np.ndarray:
        """Window i before augmentation and normalisation, (n, window).

        ``jitter`` in [-1, 1] moves its start by that fraction of
        ``augment.crop_jitter`` windows, kept inside the clip. ``rate`` other
        than 1 reads the frames from that start as music played ``rate``
        times as fast (:func:`time_stretch`; past the clip's end, silence).
        """
        w = self.windows[i]
        features = self.source(self.clips[w.clip])
        start = w.start
        if jitter and self.augment is not None and self.augment.crop_jitter > 0:
            last = max(0, features.shape[1] - self.window)
            start = min(max(0, start + round(jitter * self.augment.crop_jitter * self.window)), max(last, w.start))
        if rate == 1.0:
            return take_window(features, start, self.window, self.pad)
        source = take_window(features, start, stretch_source_frames(rate, self.window), self.pad)
        return time_stretch(source, rate, self.window)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            # The crop's draw comes first and only when cropping is on: runs without it draw as before.
            jitter = float(rng.uniform(-1.0, 1.0)) if self.augment.crop_jitter > 0 else 0.0
            rate = self.augment.stretch_rate(rng)
            x = self.raw(i, jitter, rate)
            if self.partners is not None and self.partners[i].size and rng.random() < self.augment.p_mix_class:
                other = self.raw(int(self.partners[i][rng.integers(self.partners[i].size)]))
                x = mix_in(x, other, self.source.kind, float(rng.uniform(*self.augment.mix_class_db)), self.source.config)
            x = augment_window(x, self.source.kind, rng, self.augment, self.source.config, self.noise_profile)
        else:
            x = self.raw(i)
        x = self.normalizer(x).astype(np.float32, copy=False)
        if self.source.kind == "log_mel":
            x = x[None]
        return torch.from_numpy(np.ascontiguousarray(x)), int(self.labels[i])


def class_partners(clips: Sequence[Clip], windows: Sequence[Window]) -> list[np.ndarray]:
    """For each window, the windows of its class that come from other tracks.

    Parameters
    ----------
    clips : sequence of Clip
    windows : sequence of Window
        Windows of ``clips`` (their ``clip`` indexes it).

    Returns
    -------
    list of np.ndarray
        One int64 array of window indices per window, ascending; empty where
        the class has no other track. Windows of one track share one array.
    """
    by_class: dict[str, dict[str, list[int]]] = {}
    for i, w in enumerate(windows):
        clip = clips[w.clip]
        by_class.setdefault(clip.label, {}).setdefault(clip.track, []).append(i)
    shared: dict[tuple[str, str], np.ndarray] = {}
    for label, tracks in by_class.items():
        for track in tracks:
            others = sorted(j for t, idx in tracks.items() if t != track for j in idx)
            shared[label, track] = np.asarray(others, dtype=np.int64)
    return [shared[clips[w.clip].label, clips[w.clip].track] for w in windows]
