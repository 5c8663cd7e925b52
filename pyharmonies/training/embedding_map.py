"""The music map (``harmonies map``): a t-SNE of clip embeddings, one point per clip, coloured by label."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyharmonies.errors import ParameterError

__all__ = ["plot_map", "tsne_2d"]

#: Colour of clips without a label.
UNLABELLED = "#a8aeb6"  # a grey with a blue cast: no anti-aliased black text makes it (the tests count its pixels)


def tsne_2d(vectors: np.ndarray, *, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """2-D t-SNE coordinates (n, 2) of (n, D) vectors by cosine distance; the same ``seed`` gives the same map.

    ``perplexity`` defaults to 30, lowered to ``(n - 1) / 3`` for small sets
    (scikit-learn needs it below n). Needs at least 4 vectors.
    """
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 4:
        raise ParameterError(f"a map needs at least 4 clips, the file holds {n}")
    perplexity = perplexity or min(30.0, (n - 1) / 3)
    if not 0 < perplexity < n:
        raise ParameterError(f"perplexity must be in (0, {n}), got {perplexity}")
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # cosine geometry, as `similar`
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="euclidean", n_jobs=1)
    return tsne.fit_transform(x)


def plot_map(xy: np.ndarray, labels: np.ndarray, out: str | Path, *, title: str = "") -> Path:
    """Write a scatter of ``xy`` (n, 2) coloured by ``labels`` (n,) ("" = unlabelled, grey) with a legend, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({str(s) for s in labels if s})
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=110)
    unlabelled = np.asarray([not s for s in labels])
    if unlabelled.any():
        ax.scatter(xy[unlabelled, 0], xy[unlabelled, 1], s=14, c=UNLABELLED, label=f"unlabelled ({int(unlabelled.sum())})", linewidths=0)
    for i, name in enumerate(names):
        m = np.asarray([s == name for s in labels])
        ax.scatter(xy[m, 0], xy[m, 1], s=16, color=cmap(i % cmap.N), label=f"{name} ({int(m.sum())})", linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"t-SNE of {len(xy)} clip embeddings")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False, markerscale=1.5)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})  # no version string: the same map gives the same bytes
    plt.close(fig)
    return out
