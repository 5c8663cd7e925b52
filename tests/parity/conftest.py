"""Fixtures of the parity suite, and its summary of the largest errors seen."""

from __future__ import annotations

import math

import _parity_grid as grid
import pytest

# No importorskip("librosa"): a parity suite that skips itself when its
# reference is missing would pass silently; compare() fails with the install hint.


@pytest.fixture(scope="session")
def signals(seed: int) -> grid.SignalBank:
    """Every test signal, generated once per session from the suite's seed."""
    return grid.SignalBank(seed)


@pytest.fixture(scope="session")
def parity(signals: grid.SignalBank) -> grid.ParityRuns:
    """Cached compare() results; the terminal summary reads them."""
    runs = grid.ParityRuns(signals)
    grid.RUNS = runs
    return runs


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest's hook signature
    runs = grid.RUNS
    if runs is None or not runs.results:
        return
    tr = terminalreporter
    tr.write_sep("-", "parity: largest errors over the grid (per feature)")
    tr.write_line(
        f"{'feature':<19}{'results':>8}{'failed':>7}{'max_abs':>12}{'max_rel':>12}  where (max_abs)      reference"
    )
    for feature in sorted(runs.results):
        entries = runs.results[feature]
        finite = [(c, r) for c, r in entries if r.compared and not math.isnan(r.max_abs)]
        failed = sum(not r.passed for _, r in entries)
        if not finite:
            continue
        case_abs, worst_abs = max(finite, key=lambda cr: cr[1].max_abs)
        worst_rel = max(r.max_rel for _, r in finite)
        refs = sorted({r.reference for _, r in entries})
        tr.write_line(
            f"{feature:<19}{len(entries):>8}{failed:>7}{worst_abs.max_abs:>12.3g}{worst_rel:>12.3g}  "
            f"{case_abs!s:<20} {', '.join(refs)}"
        )
