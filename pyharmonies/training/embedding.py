"""Embeddings from a CNN backbone, and the k-nearest-neighbour score that tracks them during pretraining.

An embedding is the backbone's pooled feature vector (the input of the
classifier head): one per window, and one per clip as the mean of its
windows' vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pyharmonies.data.cache import FeatureCache
from pyharmonies.data.sources import Clip, open_dataset
from pyharmonies.features import FeatureConfig
from pyharmonies.models.cnn import MobileNetV2
from pyharmonies.training.dataset import Normalizer
from pyharmonies.windows import silence_values, take_window, window_starts

__all__ = ["ClipEmbeddings", "KnnProbe", "embed_features", "knn_accuracy"]


@dataclass
class ClipEmbeddings:
    """Per-clip and per-window embeddings.

    ``clips`` is ``(n_clips, D)``; ``windows`` is ``(n_windows, D)``;
    ``window_clip[i]`` is the clip of window ``i`` and ``window_start[i]``
    its first frame.
    """

    clips: np.ndarray
    windows: np.ndarray
    window_clip: np.ndarray
    window_start: np.ndarray


@torch.no_grad()
def embed_features(
    net: MobileNetV2,
    features: Sequence[np.ndarray],
    frames: int,
    normalizer: Normalizer,
    config: FeatureConfig,
    *,
    hop: int | None = None,
    batch: int = 64,
) -> ClipEmbeddings:
    """Embed every window of every clip's log-mel features.

    Parameters
    ----------
    net : MobileNetV2
        Only ``net.backbone`` runs (eval mode; the mode is restored).
    features : sequence of np.ndarray, each (n_mels, frames_i)
        Un-normalised log-mel of each clip.
    frames : int
        Window length in frames; a clip shorter than it is padded with silence.
    normalizer : Normalizer
        The backbone's input normalisation.
    config : FeatureConfig
        What the features were computed with (for the padding value).
    hop : int, optional
        Frames between windows; default ``frames`` (no overlap).
    batch : int
        Windows per forward pass.
    """
    hop = hop or frames
    pad = silence_values(config)["log_mel"]
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    owner, starts, vectors, pending = [], [], [], []

    def flush() -> None:
        x = torch.from_numpy(np.stack(pending)).to(device)
        vectors.append(net.backbone(x).float().cpu().numpy())
        pending.clear()

    for c, feats in enumerate(features):
        for start in window_starts(feats.shape[1], frames, hop):
            pending.append(normalizer(take_window(feats, start, frames, pad)).astype(np.float32)[None])
            owner.append(c)
            starts.append(start)
            if len(pending) == batch:
                flush()
    if pending:
        flush()
    net.train(was_training)
    windows = np.concatenate(vectors) if vectors else np.zeros((0, net.feature_dim), np.float32)
    owner_arr = np.asarray(owner, dtype=np.int64)
    clips = np.stack([windows[owner_arr == c].mean(axis=0) for c in range(len(features))])
    return ClipEmbeddings(clips, windows, owner_arr, np.asarray(starts, dtype=np.int64))


def knn_accuracy(embeddings: np.ndarray, labels: Sequence[str], groups: Sequence[str], k: int = 5) -> float:
    """Leave-one-group-out k-NN accuracy by cosine similarity.

    Each item is classified by the majority label (ties: the nearer
    neighbours' similarity sum) of its ``k`` most similar items of *other*
    groups (tracks), so that a clip is never recognised by its own recording.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, D)
    labels, groups : sequence of str, length n
    k : int
    """
    z = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    labels_arr, groups_arr = np.asarray(labels), np.asarray(groups)
    sim = z @ z.T
    sim[groups_arr[:, None] == groups_arr[None, :]] = -np.inf
    names = sorted(set(labels_arr))
    code = np.asarray([names.index(x) for x in labels_arr])
    correct = 0
    for i in range(len(z)):
        nearest = np.argsort(-sim[i])[:k]
        nearest = nearest[np.isfinite(sim[i, nearest])]
        if nearest.size == 0:
            continue
        votes = np.zeros(len(names))
        np.add.at(votes, code[nearest], 1.0 + 1e-3 * sim[i, nearest])
        correct += int(votes.argmax() == code[i])
    return correct / len(z)


class KnnProbe:
    """The k-NN accuracy (by track) of a labelled dataset's clip embeddings, for pretraining's curve."""

    def __init__(self, data: str, cache: FeatureCache, config: FeatureConfig, frames: int, normalizer: Normalizer,
                 k: int = 5) -> None:  # fmt: skip
        index = open_dataset(data, min_clips_per_class=0)
        bad = {p.path for p in cache.ensure(sorted({c.path for c in index.clips}), progress=False)}
        self.clips: list[Clip] = [c for c in index.clips if c.path not in bad]
        self.cache, self.config, self.frames, self.normalizer, self.k = cache, config, frames, normalizer, k

    def __call__(self, net: MobileNetV2) -> float:
        feats = [self.cache.clip_features(c, "log_mel") for c in self.clips]
        emb = embed_features(net, feats, self.frames, self.normalizer, self.config).clips
        return knn_accuracy(emb, [c.label for c in self.clips], [c.track for c in self.clips], self.k)
