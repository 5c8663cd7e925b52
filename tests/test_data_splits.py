"""Splits by group: no group in two splits, stratified, seeded; k-fold; leak check; save/load.

Clips here are plain Clip objects (no audio): splitting never opens a file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyharmonies.data.sources import Clip
from pyharmonies.data.splits import (
    SPLITS,
    LeakError,
    check_splits,
    group_kfold,
    keep_fraction,
    load_splits,
    redraw_val,
    run_splits,
    save_splits,
    split_groups,
)
from pyharmonies.errors import ParameterError


def make_clips(spec: list[tuple[str, int]], artists: int = 3) -> list[Clip]:
    """``spec``: per track (label, clips); tracks numbered in order, artists cycling per label."""
    clips = []
    per_label: Counter[str] = Counter()
    for t, (label, n) in enumerate(spec):
        artist = f"{label}-artist{per_label[label] % artists}"
        per_label[label] += 1
        for i in range(n):
            clips.append(
                Clip(
                    Path(f"/data/{label}/t{t}.wav"),
                    label,
                    f"t{t}",
                    start_s=10.0 * i,
                    end_s=10.0 * i + 10,
                    extra=(("artist", artist),),
                    relpath=f"{label}/t{t}.wav",
                )
            )
    return clips


def groups_of(splits, clips, by="track"):
    return {name: {clips[i].group(by) for i in idx} for name, idx in splits.items()}


def balanced(labels=("a", "b", "c"), tracks=10, clips_per_track=3):
    return make_clips([(label, clips_per_track) for label in labels for _ in range(tracks)])


datasets = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(min_value=1, max_value=4)), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(spec=datasets, seed=st.integers(0, 2**32 - 1), by=st.sampled_from(["track", "artist"]))
def test_no_group_is_in_two_splits_and_every_clip_in_one(spec, seed, by):
    clips = make_clips(spec)
    splits = split_groups(clips, group_by=by, seed=seed)
    assert list(splits) == list(SPLITS)
    flat = sorted(i for idx in splits.values() for i in idx)
    assert flat == list(range(len(clips)))
    g = groups_of(splits, clips, by)
    assert not (g["train"] & g["val"]) and not (g["train"] & g["test"]) and not (g["val"] & g["test"])
    check_splits(splits, clips, group_by=by)


@settings(max_examples=40, deadline=None)
@given(spec=datasets, seed=st.integers(0, 1000), k=st.integers(2, 5))
def test_kfold_tests_every_group_exactly_once_without_leaks(spec, seed, k):
    clips = make_clips(spec)
    n_groups = len({c.track for c in clips})
    if k > n_groups:
        with pytest.raises(ParameterError, match=f"k={k} folds but only {n_groups}"):
            group_kfold(clips, k, seed=seed)
        return
    folds = group_kfold(clips, k, seed=seed)
    assert len(folds) == k
    tested = Counter(g for fold in folds for g in groups_of(fold, clips)["test"])
    assert set(tested) == {c.track for c in clips} and set(tested.values()) == {1}
    for fold in folds:
        check_splits(fold, clips)
        assert sorted(i for idx in fold.values() for i in idx) == list(range(len(clips)))


def test_stratified_every_label_in_every_split_in_proportion():
    clips = balanced(labels=("a", "b", "c", "d"), tracks=20)
    splits = split_groups(clips, seed=3)
    for name, share in (("train", 14), ("val", 3), ("test", 3)):
        labels = Counter(clips[i].label for i in splits[name])
        assert labels == {label: share * 3 for label in "abcd"}  # 20 tracks x 0.15 = 3 per label


def test_small_labels_still_reach_each_split():
    clips = make_clips([("big", 1)] * 40 + [("three", 1)] * 3 + [("two", 1)] * 2 + [("one", 1)])
    splits = split_groups(clips, seed=0)
    labels = {name: Counter(clips[i].label for i in idx) for name, idx in splits.items()}
    for name in SPLITS:
        assert labels[name]["three"] == 1  # >= 3 groups: one per split
    assert labels["train"]["two"] == 1 and labels["test"]["two"] == 1
    assert labels["train"]["one"] == 1


def test_a_group_with_several_labels_stays_whole():
    clips = make_clips([("x", 2)] * 6)
    clips += [Clip(Path("/data/x/t0.wav"), "y", "t0", 100.0, 110.0)]  # another label in track t0
    splits = split_groups(clips, seed=1)
    where = {name for name, idx in splits.items() if any(clips[i].track == "t0" for i in idx)}
    assert len(where) == 1


def test_splits_are_deterministic_and_depend_on_the_seed():
    clips = balanced(tracks=12)
    assert split_groups(clips, seed=5) == split_groups(clips, seed=5)
    assert split_groups(clips, seed=5) != split_groups(clips, seed=6)
    assert group_kfold(clips, 4, seed=5) == group_kfold(clips, 4, seed=5)


def test_a_label_split_does_not_change_when_a_class_is_added():
    clips = balanced(labels=("a", "b"), tracks=10)
    more = clips + balanced(labels=("c",), tracks=10)
    before, after = split_groups(clips, seed=2), split_groups(more, seed=2)
    assert before == {name: [i for i in idx if i < len(clips)] for name, idx in after.items()}


def test_fractions_zero_and_invalid():
    clips = balanced(tracks=10)
    splits = split_groups(clips, val=0.0, test=0.2)
    assert splits["val"] == [] and len(splits["test"]) == 3 * 2 * 3
    for val, test in ((0.5, 0.5), (-0.1, 0.2), (1.0, 0.0)):
        with pytest.raises(ParameterError):
            split_groups(clips, val=val, test=test)
    with pytest.raises(ParameterError, match="cannot group by 'label'"):
        split_groups(clips, group_by="label")


def test_kfold_val_is_carved_from_the_non_test_groups_per_label():
    clips = balanced(labels=("a", "b"), tracks=10, clips_per_track=1)
    for fold in group_kfold(clips, 5, seed=0, val=0.25):
        counts = {name: Counter(clips[i].label for i in idx) for name, idx in fold.items()}
        assert counts["test"] == {"a": 2, "b": 2}
        assert counts["val"] == {"a": 2, "b": 2}  # round(8 x 0.25)
        assert counts["train"] == {"a": 6, "b": 6}
    with pytest.raises(ParameterError, match="k \\(folds\\) must be an integer >= 2"):
        group_kfold(clips, 1)


def test_group_by_artist_keeps_artists_apart():
    clips = make_clips([("a", 2)] * 12 + [("b", 2)] * 12, artists=4)
    splits = split_groups(clips, group_by="artist", seed=0)
    g = groups_of(splits, clips, "artist")
    assert sum(len(v) for v in g.values()) == 8  # each of the 8 artists in one split
    with pytest.raises(LeakError):
        check_splits(split_groups(clips, group_by="track", seed=0), clips, group_by="artist")


def test_check_splits_names_the_leaked_group_and_splits():
    clips = balanced(tracks=4)
    splits = split_groups(clips, seed=0)
    i = splits["test"][0]
    sibling = next(j for j, c in enumerate(clips) if c.track == clips[i].track and j != i)
    moved = {name: [j for j in idx if j != sibling] for name, idx in splits.items()}
    moved["train"].append(sibling)
    with pytest.raises(LeakError, match=rf"track '{clips[i].track}' appears in several splits \(train, test\)"):
        check_splits(moved, clips)
    twice = {**splits, "val": splits["val"] + [splits["train"][0]]}
    with pytest.raises(LeakError, match=r"is in 'train' and 'val'"):
        check_splits(twice, clips)
    with pytest.raises(ParameterError, match="unknown split name"):
        check_splits({"training": [0]}, clips)
    with pytest.raises(ParameterError, match="clip index 999"):
        check_splits({"train": [999]}, clips)


def test_save_and_load_round_trip_by_keys(tmp_path):
    clips = balanced(tracks=6)
    splits = split_groups(clips, seed=9)
    path = tmp_path / "run" / "splits.json"
    save_splits(path, splits, clips, group_by="track", seed=9)
    data = json.loads(path.read_text())
    assert data["group_by"] == "track" and data["seed"] == 9
    assert set(data["splits"]["test"]) == {clips[i].key for i in splits["test"]}  # e.g. "a/t3.wav#10-20"
    assert sorted(data["groups"]["test"]) == sorted({clips[i].track for i in splits["test"]})
    assert load_splits(path, clips) == splits
    # Keys, not indices: the same dataset in another order maps back to the same clips.
    shuffled = clips[::-1]
    loaded = load_splits(path, shuffled)
    assert {name: sorted(shuffled[i].key for i in idx) for name, idx in loaded.items()} == data["splits"]


def test_load_refuses_unknown_keys_and_leaked_files(tmp_path):
    clips = balanced(tracks=6)
    splits = split_groups(clips, seed=0)
    path = tmp_path / "splits.json"
    save_splits(path, splits, clips, group_by="track", seed=0)
    with pytest.raises(ParameterError, match=r"clip key\(s\) are not in this dataset"):
        load_splits(path, clips[: len(clips) // 2])
    data = json.loads(path.read_text())
    data["splits"]["train"].append(data["splits"]["test"][0])  # a hand-edited leak
    path.write_text(json.dumps(data))
    with pytest.raises(LeakError, match="is in 'train' and 'test'"):
        load_splits(path, clips)
    leak = {name: list(keys) for name, keys in json.loads(path.read_text())["splits"].items()}
    leak["train"].remove(leak["test"][0])
    moved = leak["test"].pop(0)
    leak["val"].append(moved)  # one clip of a test track now in val
    path.write_text(json.dumps({**data, "splits": leak}))
    with pytest.raises(LeakError, match=r"appears in several splits \(val, test\)"):
        load_splits(path, clips)
    with pytest.raises(ParameterError, match="no such split file"):
        load_splits(tmp_path / "none.json", clips)
    path.write_text("{")
    with pytest.raises(ParameterError, match="cannot read the split file"):
        load_splits(path, clips)


def test_save_refuses_a_leaking_split(tmp_path):
    clips = balanced(tracks=3)
    with pytest.raises(LeakError):
        save_splits(tmp_path / "s.json", {"train": [0], "test": [1]}, clips, group_by="track", seed=0)
    assert not (tmp_path / "s.json").exists()


def test_a_fraction_of_the_training_tracks_is_kept_per_label_nested_and_seeded():
    clips = balanced(labels=("a", "b", "c"), tracks=20)
    train = split_groups(clips, seed=0)["train"]
    tracks = lambda idx: {clips[i].track for i in idx}  # noqa: E731
    per_label = lambda idx: Counter(clips[i].label for i in idx)  # noqa: E731
    half, tenth = keep_fraction(train, clips, 0.5, seed=0), keep_fraction(train, clips, 0.1, seed=0)
    assert set(tenth) <= set(half) <= set(train)  # a smaller fraction keeps a subset of a larger one
    assert all(n == 7 * 3 for n in per_label(half).values())  # 14 training tracks per label, half of them, 3 clips each
    assert all(n >= 3 for n in per_label(keep_fraction(train, clips, 0.01, seed=0)).values())  # one track at least
    assert tracks(keep_fraction(train, clips, 0.5, seed=1)) != tracks(half)
    assert keep_fraction(train, clips, 1.0, seed=0) == sorted(train)
    with pytest.raises(ParameterError, match="fraction"):
        keep_fraction(train, clips, 0, seed=0)


@settings(max_examples=40, deadline=None)
@given(spec=datasets, seed=st.integers(0, 1000), val_seed=st.integers(0, 2**32 - 1))
def test_redrawn_validation_keeps_the_test_tracks_and_each_labels_count(spec, seed, val_seed):
    clips = make_clips(spec)
    if len({c.track for c in clips}) < 2:
        return
    for split in group_kfold(clips, 2, seed=seed):
        redrawn = redraw_val(split, clips, seed=val_seed)
        check_splits(redrawn, clips)
        assert redrawn["test"] == sorted(split["test"])
        assert sorted(redrawn["train"] + redrawn["val"]) == sorted(split["train"] + split["val"])
        val_tracks = lambda s: Counter(clips[i].label for i in {clips[j].track: j for j in s["val"]}.values())  # noqa: E731
        assert val_tracks(redrawn) == val_tracks(split)  # as many validation tracks per label


def test_members_with_other_validation_draws_together_train_on_every_non_test_track():
    clips = balanced(labels=("a", "b", "c"), tracks=20)
    split = group_kfold(clips, 5, seed=0)[0]
    non_test = groups_of(split, clips)["train"] | groups_of(split, clips)["val"]
    draws = [groups_of(run_splits(clips, keys={n: {clips[i].key for i in idx} for n, idx in split.items()}, val_seed=s),
                       clips) for s in range(4)]  # fmt: skip
    assert len({frozenset(d["val"]) for d in draws}) == 4  # every draw holds out other tracks
    assert set().union(*(d["train"] for d in draws)) == non_test
    assert redraw_val(split, clips, seed=7) == redraw_val(split, clips, seed=7)  # deterministic
