"""Nearest clips or tracks to a query vector by cosine similarity (``harmonies similar``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyharmonies.errors import ParameterError

__all__ = ["Match", "cosine_to", "nearest"]

TRACK_SCORES = ("best", "mean")


@dataclass(frozen=True)
class Match:
    """One result: a clip (``index`` into the set) or a track (its best clip's ``index``), and its similarity."""

    rank: int
    similarity: float
    index: int
    track: str
    clips: int = 1  # clips of the track that were scored (1 for a clip result)


def cosine_to(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(n,) cosine similarity of each row of ``vectors`` (n, D) to ``query`` (D,); a zero vector scores 0."""
    v = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1) * np.linalg.norm(q)
    return np.where(norms > 0, v @ q / np.maximum(norms, 1e-300), 0.0)


def nearest(vectors: np.ndarray, tracks: np.ndarray, query: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None,
            by_track: bool = False, track_score: str = "best") -> list[Match]:  # fmt: skip
    """The ``k`` clips (or tracks) most similar to ``query``.

    Parameters
    ----------
    vectors : np.ndarray, shape (n, D)
        Clip embeddings.
    tracks : np.ndarray, shape (n,)
        Each clip's track.
    query : np.ndarray, shape (D,)
    k : int
        Results wanted (fewer when fewer remain).
    exclude : np.ndarray of bool, shape (n,), optional
        Clips left out (e.g. the query's own track).
    by_track : bool
        Rank tracks: each by its best clip (``track_score="best"``) or by the mean over its clips.
    track_score : {"best", "mean"}

    Returns
    -------
    list of Match
        Most similar first; ties broken by clip order, so the result is deterministic.
    """
    if k < 1:
        raise ParameterError(f"k must be at least 1, got {k}")
    if track_score not in TRACK_SCORES:
        raise ParameterError(f"track score must be one of {', '.join(TRACK_SCORES)}, got {track_score!r}")
    sim = cosine_to(vectors, query)
    keep = np.ones(len(sim), bool) if exclude is None else ~np.asarray(exclude, bool)
    idx = np.flatnonzero(keep)
    if not by_track:
        order = idx[np.lexsort((idx, -sim[idx]))][:k]
        return [Match(r + 1, float(sim[i]), int(i), str(tracks[i])) for r, i in enumerate(order)]
    rows = []
    for track in dict.fromkeys(tracks[idx]):  # first-seen order, for ties
        members = idx[tracks[idx] == track]
        best = members[np.argmax(sim[members])]
        score = float(sim[members].max() if track_score == "best" else sim[members].mean())
        rows.append((-score, int(best), str(track), len(members)))
    rows.sort()
    return [Match(r + 1, -neg, best, track, n) for r, (neg, best, track, n) in enumerate(rows[:k])]
