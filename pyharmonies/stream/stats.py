"""Statistics of a stream of positive measurements in fixed memory, for sessions that run for months.

:class:`StreamingStats` keeps the count, mean, minimum and maximum exactly,
and every quantile from a histogram with logarithmic bins: a value ``x``
falls in bin ``i`` when ``lo * gamma**i <= x < lo * gamma**(i + 1)``, and
a quantile is reported as the point of its bin that is at most
``rel_error`` from every value the bin can hold. So whatever the number of
values added, the memory is the same (one int64 per bin) and every
quantile is within ``rel_error`` (relative) of a true order statistic of
all the values since the start.

Device side: numpy and the standard library only.
"""

from __future__ import annotations

import math

import numpy as np

from pyharmonies.errors import ParameterError


class StreamingStats:
    """Count, mean, min, max and quantiles of positive values (milliseconds, say), in fixed memory.

    Parameters
    ----------
    rel_error : float
        Bound on the relative error of every quantile, in (0, 0.5). The
        default, 1 %, keeps about 1,150 bins (9 KB) for the default range.
    lo, hi : float
        Values in ``[lo, hi)`` are binned with relative error ``rel_error``.
        A value below ``lo`` (zero included) counts in an underflow bin
        reported as the exact minimum, so its quantile is off by less than
        ``lo`` absolute; a value at or above ``hi`` counts in an overflow bin
        reported as the exact maximum. The defaults, 1 µs to 3 hours in
        milliseconds, cover any latency a live session can measure.

    Notes
    -----
    The quantile ``q`` (in %) is the value of rank ``ceil(q / 100 * n)``
    (1-based) among the ``n`` values added, numpy's ``"inverted_cdf"``
    percentile: the smallest value whose empirical CDF reaches ``q``.
    """

    def __init__(self, *, rel_error: float = 0.01, lo: float = 1e-3, hi: float = 1e7):
        if not 0.0 < rel_error < 0.5:
            raise ParameterError(f"rel_error must be in (0, 0.5), got {rel_error}")
        if not 0.0 < lo < hi:
            raise ParameterError(f"need 0 < lo < hi, got lo={lo}, hi={hi}")
        self.rel_error = float(rel_error)
        self.lo, self.hi = float(lo), float(hi)
        # Bins [L, gamma L) reported as 2 gamma L / (gamma + 1): off by (gamma - 1) / (gamma + 1) = rel_error at either edge.
        self._gamma = (1.0 + rel_error) / (1.0 - rel_error)
        self._log_gamma = math.log(self._gamma)
        n_bins = int(math.ceil(math.log(self.hi / self.lo) / self._log_gamma))
        self._counts = np.zeros(n_bins + 2, dtype=np.int64)  # [underflow, bins..., overflow]
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def nbytes(self) -> int:
        """Bytes the histogram holds; fixed at construction."""
        return int(self._counts.nbytes)

    def add(self, value: float) -> None:
        """Count one value (a float; negative values are treated as 0)."""
        x = max(0.0, float(value))
        if x < self.lo:
            i = 0
        elif x >= self.hi:
            i = len(self._counts) - 1
        else:
            i = 1 + min(len(self._counts) - 3, int(math.log(x / self.lo) / self._log_gamma))
        self._counts[i] += 1
        self.count += 1
        self.total += x
        self.min = min(self.min, x)
        self.max = max(self.max, x)

    @property
    def mean(self) -> float:
        """Mean of the values added (exact); 0.0 before the first."""
        return self.total / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The ``q``-th percentile (``q`` in [0, 100]) within ``rel_error``; 0.0 before the first value."""
        if not 0.0 <= q <= 100.0:
            raise ParameterError(f"q must be in [0, 100], got {q}")
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q * self.count / 100.0))  # q * count first: exact for integer q
        if rank == 1 or rank == self.count:
            return self.min if rank == 1 else self.max  # kept exactly
        i = int(np.searchsorted(np.cumsum(self._counts), rank))
        if i == 0:
            value = self.min
        elif i == len(self._counts) - 1:
            value = self.max
        else:
            value = self.lo * self._gamma ** (i - 1) * 2.0 * self._gamma / (self._gamma + 1.0)
        # The order statistic lies in [min, max]; clamping only brings the estimate closer.
        return float(min(max(value, self.min), self.max))

    def reset(self) -> None:
        """Forget every value; the memory stays as it is."""
        self._counts[:] = 0
        self.count, self.total, self.min, self.max = 0, 0.0, math.inf, -math.inf
