"""Smoothing of successive windows' probabilities: ``ema``, ``vote`` or ``none``.

Every output is finite and sums to 1: a non-finite or all-zero input is
replaced by the uniform distribution before it is used.
"""

from __future__ import annotations

import numpy as np

SMOOTHINGS = ("ema", "vote", "none")


def _clean(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    s = p.sum()
    if s <= 0 or not np.isfinite(s):
        return np.full(p.shape, 1.0 / max(1, p.size))
    return p / s


class Smoother:
    """Smooth a stream of probability vectors.

    Parameters
    ----------
    method : {"ema", "vote", "none"}
        ``ema``: ``s = alpha * p + (1 - alpha) * s`` (the first window is
        taken as is). ``vote``: the share of each label among the top-1
        labels of the last ``n`` windows (ties broken by the mean
        probability over those windows). ``none``: the window's own.
    n_labels : int
    alpha : float
        EMA weight of the newest window, in (0, 1].
    n : int
        Windows of the vote (>= 1).
    """

    def __init__(self, method: str, n_labels: int, *, alpha: float = 0.5, n: int = 5):
        if method not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {method!r}; choose from {', '.join(SMOOTHINGS)}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.method = method
        self.n_labels = int(n_labels)
        self.alpha = float(alpha)
        self.n = int(n)
        self._state = np.zeros(self.n_labels, dtype=np.float64)
        self._history = np.zeros((self.n, self.n_labels), dtype=np.float64)
        self._count = 0

    def reset(self) -> None:
        self._count = 0

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """Add one window's probabilities; return the smoothed vector (float32, sums to 1)."""
        p = _clean(probs)
        if p.shape[0] != self.n_labels:
            raise ValueError(f"expected {self.n_labels} probabilities, got {p.shape[0]}")
        if self.method == "none":
            out = p
        elif self.method == "ema":
            if self._count == 0:
                self._state[:] = p
            else:
                self._state *= 1.0 - self.alpha
                self._state += self.alpha * p
            out = self._state / self._state.sum()
        else:
            self._history[self._count % self.n] = p
            hist = self._history[: min(self._count + 1, self.n)]
            votes = np.bincount(hist.argmax(axis=1), minlength=self.n_labels).astype(np.float64)
            # A tiny tie-break by the mean probability keeps the argmax meaningful.
            out = votes / votes.sum()
            mean = hist.mean(axis=0)
            out = out + 1e-9 * mean
            out = out / out.sum()
        self._count += 1
        return out.astype(np.float32)
