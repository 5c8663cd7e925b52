"""The class-balanced sampler: even classes (and tracks), reproducible per epoch, one shared draw split across DDP ranks."""

import numpy as np
import pytest

from pyharmonies.errors import ParameterError
from pyharmonies.training.sampling import BalancedSampler, ClipBagSampler

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


# ---------------------------------------------------------------- clip bags (clip-level targets)

# 30 clips: clips 0-19 class 0 (5 windows each), 20-27 class 1 (5 each), 28-29 class 2 (2 windows each).
BAG_CLIPS = [c for c in range(28) for _ in range(5)] + [28, 28, 29, 29]
BAG_LABELS = [0 if c < 20 else 1 if c < 28 else 2 for c in BAG_CLIPS]


def _bags(sampler: ClipBagSampler) -> np.ndarray:
    return np.asarray(list(sampler)).reshape(-1, sampler.bag)


def test_a_bag_holds_windows_of_one_clip_distinct_when_it_has_enough():
    sampler = ClipBagSampler(BAG_CLIPS, BAG_LABELS, bag=4, seed=0)
    bags = _bags(sampler)
    assert len(sampler) == bags.size == 144  # 144 windows: 36 bags of 4
    clips = np.asarray(BAG_CLIPS)[bags]
    assert np.all(clips == clips[:, :1])
    long = clips[:, 0] < 28
    assert all(len(set(b)) == 4 for b in bags[long])  # five windows to choose from: no repeats
    assert (~long).any()  # class 2's two-window clips are drawn too (a third of the bags, on average)
    for b in bags[~long]:  # each of their two windows at least once
        assert set(b) == set(np.flatnonzero(np.asarray(BAG_CLIPS) == BAG_CLIPS[b[0]])), b


def test_bags_draw_every_class_alike_and_depend_on_seed_and_epoch_only():
    sampler = ClipBagSampler(BAG_CLIPS * 10, BAG_LABELS * 10, bag=2, seed=5)
    classes = np.asarray(BAG_LABELS * 10)[_bags(sampler)[:, 0]]
    share = np.bincount(classes, minlength=3) / classes.size
    # 720 bags of p = 1/3: the share's standard deviation is 0.018; 0.07 is four of them.
    assert np.all(np.abs(share - 1 / 3) < 0.07), share
    again = ClipBagSampler(BAG_CLIPS * 10, BAG_LABELS * 10, bag=2, seed=5)
    assert list(again) == list(sampler)
    again.set_epoch(1)
    assert list(again) != list(sampler)
    plain = ClipBagSampler(BAG_CLIPS, BAG_LABELS, bag=2, seed=5, balanced=False)
    assert np.allclose(plain.probabilities, [5 / 144] * 28 + [2 / 144] * 2)  # in proportion to the windows


def test_ranks_take_alternate_bags_of_one_draw():
    ranks = [ClipBagSampler(BAG_CLIPS, BAG_LABELS, bag=4, seed=2, rank=r, world_size=3) for r in range(3)]
    parts = [_bags(s) for s in ranks]
    assert {len(p) for p in parts} == {12} and all(len(s) == 48 for s in ranks)  # 36 bags, 12 each
    whole = _bags(ClipBagSampler(BAG_CLIPS, BAG_LABELS, bag=4, seed=2))
    clips = np.asarray(BAG_CLIPS)
    for r, part in enumerate(parts):
        assert np.array_equal(clips[part[:, 0]], clips[whole[r::3, 0]])  # the same clips, dealt out


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bag": 1}, "at least 2"),
        ({"bag": 4, "rank": 2, "world_size": 2}, "rank must be in"),
    ],
)
def test_clip_bag_sampler_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        ClipBagSampler(BAG_CLIPS, BAG_LABELS, seed=0, **kwargs)
    with pytest.raises(ParameterError, match="different labels"):
        ClipBagSampler([0, 0, 1], [0, 1, 1], bag=2, seed=0)
