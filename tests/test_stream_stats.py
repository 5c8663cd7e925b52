"""Live statistics in fixed memory (issue 10, item 6): ``listen`` may run for months.

:class:`StreamingStats` against numpy on known data, and a
:class:`LiveSession` fed 100,000 results holding exactly the memory it held
after 1,000.
"""

from __future__ import annotations

import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from pyharmonies.errors import ParameterError
from pyharmonies.stream.live import LiveSession
from pyharmonies.stream.sliding import StreamResult
from pyharmonies.stream.stats import StreamingStats

QUANTILES = (0, 0.1, 1, 25, 50, 90, 95, 99, 99.9, 100)


def _filled(values) -> StreamingStats:
    stats = StreamingStats()
    for v in values:
        stats.add(v)
    return stats


def test_quantiles_are_within_the_stated_error_of_numpys(rng):
    # Latency-like: log-normal around 20 ms, a long tail, some values under the binned range.
    x = np.concatenate([rng.lognormal(np.log(20.0), 1.0, 20_000), rng.uniform(0, 5e-4, 50), [0.0]])
    rng.shuffle(x)
    stats = _filled(x)
    for q in QUANTILES:
        expected = np.percentile(x, q, method="inverted_cdf")
        # rel_error is the bound by construction; 1e-9 more for the float rounding of log() at a bin's edge.
        # Values under lo (1e-3) are reported as the minimum: at most lo off, absolute.
        assert abs(stats.quantile(q) - expected) <= stats.rel_error * (1 + 1e-9) * expected + (stats.lo if expected < stats.lo else 0), q
    assert stats.count == x.size and stats.min == x.min() and stats.max == x.max()
    assert stats.mean == pytest.approx(x.mean(), rel=1e-12)  # a running float64 sum of 20,051 values


def test_quantiles_of_known_values():
    stats = _filled(float(v) for v in range(1, 101))  # 1 .. 100 ms
    # The q-th value of 1..100 is q; 1 % relative error at most (the bound), exact at the ends (min and max are kept).
    for q in (1, 50, 95, 99):
        assert stats.quantile(q) == pytest.approx(q, rel=stats.rel_error)
    assert stats.quantile(0) == 1.0 and stats.quantile(100) == 100.0 and stats.mean == 50.5


def test_values_beyond_the_range_report_the_exact_extremes():
    stats = _filled([0.0, 5.0, 2e8])  # 2e8 ms is past hi (1e7): the overflow bin
    assert stats.quantile(0) == 0.0 and stats.quantile(100) == 2e8
    assert stats.quantile(50) == pytest.approx(5.0, rel=stats.rel_error)


def test_empty_and_reset():
    stats = StreamingStats()
    assert stats.quantile(99) == 0.0 and stats.mean == 0.0 and stats.count == 0
    stats.add(3.0)
    size = stats.nbytes
    stats.reset()
    assert stats.quantile(50) == 0.0 and stats.count == 0 and stats.nbytes == size
    with pytest.raises(ParameterError, match=r"q must be in \[0, 100\]"):
        stats.quantile(101)
    with pytest.raises(ParameterError, match="rel_error"):
        StreamingStats(rel_error=0.0)


def _session() -> LiveSession:
    """A session over fakes: a 16 kHz source that knows no arrival times, and a slider that classifies nothing itself."""
    config = SimpleNamespace(sample_rate=16000)
    slider = SimpleNamespace(config=config, hop_seconds=0.5, dropped=0)
    source = SimpleNamespace(sample_rate=16000, arrivals=SimpleNamespace(time_of=lambda index: None))
    return LiveSession(slider, source)


def _deep_size(obj, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything reachable from it through attributes, containers and arrays."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (type, type(len), type(_deep_size))):
        return 0  # classes and functions are shared code, not the session's data
    seen.add(id(obj))
    size = sys.getsizeof(obj)  # an ndarray's includes the data it owns
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(_deep_size(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, np.ndarray):
        size += _deep_size(vars(obj), seen)
    return size


def test_memory_after_100000_results_equals_memory_after_1000():
    """What a session keeps per result must not grow: ``listen`` runs for months (one result per 0.5 s)."""
    batch = [StreamResult(time=0.0, start_frame=0, probs=np.ones(2), raw_probs=np.ones(2), end_sample=8000)] * 1000

    def ignore(result, latency_ms, stats) -> None:
        pass

    # Warm-up on another session: first calls fill caches (numpy's, the codec's for /proc) that are not per result.
    warm = _session()
    warm._emit(batch, 0.0, ignore)
    warm.stats.summary()
    session = _session()
    tracemalloc.start()
    try:
        session._emit(batch, 0.0, ignore)
        session.stats.summary()
        held_1000, traced_1000 = _deep_size(session), tracemalloc.get_traced_memory()[0]
        for _ in range(99):
            session._emit(batch, 0.0, ignore)
        summary = session.stats.summary()
        held_100000, traced_100000 = _deep_size(session), tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert session.stats.windows == 100_000
    # Byte for byte, everything the session holds: the lists this replaced grew by ~32 bytes a result (3 MB here).
    assert held_100000 == held_1000, (held_1000, held_100000)
    # And the whole process: under 1 byte a result. Not exactly equal because the interpreter's own
    # caches (frames, free lists, numpy's) settle by a few hundred bytes, once, not per result.
    assert traced_100000 - traced_1000 < 99_000, (traced_1000, traced_100000)
    assert session.stats.latency_ms.count == 100_000 and summary["p99_hop_ms"] >= summary["p50_hop_ms"] > 0
