"""Shared fixtures: one seed for every random signal in the suite."""

from __future__ import annotations

import numpy as np
import pytest

#: The suite's seed: a failure reproduces with the same signals.
SEED = 20240611


@pytest.fixture(scope="session")
def seed() -> int:
    """The suite's seed, for fixtures that build their own generators."""
    return SEED


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A fresh generator, seeded, for each test."""
    return np.random.default_rng(seed)
