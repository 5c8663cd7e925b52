"""The class-balanced sampler: even classes (and tracks), reproducible per epoch, one shared draw split across DDP ranks."""

import numpy as np
import pytest

from pyharmonies.errors import ParameterError
from pyharmonies.training.sampling import BalancedSampler

LABELS = [0] * 900 + [1] * 90 + [2] * 10  # 90 : 9 : 1


def test_every_class_is_drawn_about_equally_often():
    drawn = np.asarray(LABELS)[list(BalancedSampler(LABELS, seed=0))]
    share = np.bincount(drawn, minlength=3) / drawn.size
    # 1000 draws of p = 1/3: the standard deviation of a share is 0.015; 0.06 is four of them.
    assert np.all(np.abs(share - 1 / 3) < 0.06), share
    assert len(drawn) == len(LABELS)


def test_the_draw_depends_on_seed_and_epoch_only():
    a, b = BalancedSampler(LABELS, seed=3), BalancedSampler(LABELS, seed=3)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b)  # a resumed run draws what the killed one would have
    b.set_epoch(6)
    assert list(a) != list(b)
    assert list(a) != list(BalancedSampler(LABELS, seed=4))


def test_ranks_split_one_draw_into_equal_parts():
    whole = BalancedSampler(LABELS[:999], seed=1, world_size=1)
    ranks = [BalancedSampler(LABELS[:999], seed=1, rank=r, world_size=4) for r in range(4)]
    parts = [list(s) for s in ranks]
    assert {len(p) for p in parts} == {250} and all(len(s) == 250 for s in ranks)  # 999 rounded up to 1000
    assert len(whole) == 999
    interleaved = np.asarray([parts[i % 4][i // 4] for i in range(1000)])
    assert interleaved.min() >= 0 and interleaved.max() < 999
    share = np.bincount(np.asarray(LABELS)[interleaved], minlength=3) / 1000
    assert np.all(np.abs(share - 1 / 3) < 0.06), share  # together the ranks still draw classes evenly
    assert parts[0] != parts[1]


def test_with_groups_every_track_of_a_class_is_drawn_alike():
    # Class 0: a long track "a" (800 windows) and a short one "b" (100); class 1: one track "c" (100).
    labels = [0] * 900 + [1] * 100
    groups = ["a"] * 800 + ["b"] * 100 + ["c"] * 100
    sampler = BalancedSampler(labels, seed=0, groups=groups)
    assert np.allclose(sampler.probabilities[[0, 800, 900]], [1 / 3200, 1 / 400, 1 / 200])  # 1/4, 1/4, 1/2 in all
    drawn = np.asarray(groups)[list(sampler)]
    share = {g: float(np.mean(drawn == g)) for g in "abc"}
    # 1000 draws: the share's standard deviation is at most 0.016; 0.06 is almost four of them.
    assert abs(share["a"] - 0.25) < 0.06 and abs(share["b"] - 0.25) < 0.06 and abs(share["c"] - 0.5) < 0.06, share
    plain = BalancedSampler(labels, seed=0)
    assert plain.probabilities[0] == plain.probabilities[800]  # without groups a window of "a" weighs as one of "b"


def test_a_group_in_two_classes_counts_once_in_each():
    # Group "a" has 300 windows of class 0 and 100 of class 1; "b" 100 of class 0, "c" 100 of class 1.
    labels = [0] * 300 + [1] * 100 + [0] * 100 + [1] * 100
    groups = ["a"] * 400 + ["b"] * 100 + ["c"] * 100
    p = BalancedSampler(labels, seed=0, groups=groups).probabilities
    # Each class 1/2, each of its two groups 1/4, spread over that group's windows of the class.
    assert np.allclose(p[[0, 300, 400, 500]], [1 / 1200, 1 / 400, 1 / 400, 1 / 400])
    assert np.isclose(p.sum(), 1.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ParameterError, match="at least one"):
        BalancedSampler([], seed=0)
    with pytest.raises(ParameterError, match="rank"):
        BalancedSampler([0, 1], seed=0, rank=2, world_size=2)
    with pytest.raises(ParameterError, match="one group per window"):
        BalancedSampler([0, 1], seed=0, groups=["a"])
