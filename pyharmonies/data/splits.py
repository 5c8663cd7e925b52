"""Train/val/test splits by group, so that no recording straddles two splits.

Windows of one track are nearly copies of each other; if some are trained on
and others tested on, the test score measures memory, not music. Every
function here therefore assigns whole *groups* (the track by default, or a
manifest column such as ``artist``) to a split, and :func:`check_splits`
refuses any split in which a group appears twice.

Stratification works at the group level: each label's groups are shuffled
(with a generator seeded by ``seed`` and the label, so adding a class does
not reshuffle the others) and dealt to the splits in proportion. A group
whose clips carry several labels is stratified under its most common label
(ties: the first in sorted order), and all its clips still go together.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pyharmonies._atomic import write_atomic
from pyharmonies.data.sources import Clip
from pyharmonies.errors import ParameterError

#: The split names, in order.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Format version of the JSON that :func:`save_splits` writes.
SPLITS_FORMAT = 1


class LeakError(ParameterError):
    """A group (or a clip) appears in more than one split."""


def split_groups(
    clips: Sequence[Clip], *, group_by: str = "track", seed: int = 0, val: float = 0.15, test: float = 0.15
) -> dict[str, list[int]]:
    """Split clips into train/val/test by group, stratified by label.

    Parameters
    ----------
    clips : sequence of Clip, length n
    group_by : str
        ``"track"`` or a manifest column (see :meth:`Clip.group`).
    seed : int
        The same seed, clips and fractions give the same split.
    val, test : float
        Fractions of each label's groups for validation and test, each in
        [0, 1), together below 1. Counts are rounded; a label with at least
        3 groups gets at least one group in each split whose fraction is
        above 0 (and keeps at least one for training). A label with 2
        groups puts one in train and one in test (val when ``test=0``);
        with 1 group, in train.

    Returns
    -------
    dict of str to list of int
        ``{"train": [...], "val": [...], "test": [...]}``: sorted indices
        into ``clips``; every clip in exactly one split, every group in one.

    Raises
    ------
    ParameterError
        Bad fractions, or a clip without the ``group_by`` column.
    """
    _check_fractions(val=val, test=test)
    groups, group_label = _groups(clips, group_by)
    assignment: dict[str, str] = {}
    for label, names in _groups_by_label(group_label).items():
        order = _shuffled(names, seed, label)
        n_val, n_test = _allocate(len(order), val, test)
        for i, name in enumerate(order):
            assignment[name] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return _indices(groups, {name: [split] for name, split in assignment.items()})["0"]


def keep_fraction(
    train: Sequence[int], clips: Sequence[Clip], fraction: float, *, group_by: str = "track", seed: int = 0
) -> list[int]:
    """The clips of a seeded ``fraction`` of each label's training groups (the small-data curve).

    Parameters
    ----------
    train : sequence of int
        Indices into ``clips`` of the training split.
    clips : sequence of Clip
    fraction : float
        In (0, 1]; each label keeps ``round(fraction * groups)`` of its
        groups, at least one.
    group_by, seed : as for :func:`split_groups`. The same seed keeps the
        same groups, and a smaller fraction keeps a subset of a larger one's.

    Returns
    -------
    list of int
        Sorted indices, a subset of ``train``.
    """
    if not 0 < fraction <= 1:
        raise ParameterError(f"the fraction of training groups to keep must be in (0, 1], got {fraction}")
    members = [clips[i] for i in train]
    groups, group_label = _groups(members, group_by)
    kept: set[str] = set()
    for label, names in _groups_by_label(group_label).items():
        order = _shuffled(names, seed + 7919, label)  # not the split's own order
        kept.update(order[: max(1, round(fraction * len(order)))])
    return sorted(i for i, g in zip(train, groups) if g in kept)


def redraw_val(
    splits: Mapping[str, Sequence[int]], clips: Sequence[Clip], *, group_by: str = "track", seed: int = 0
) -> dict[str, list[int]]:
    """The same splits with other validation groups: as many per label, drawn by ``seed`` from train and val.

    Parameters
    ----------
    splits : mapping of str to sequence of int
        ``train``, ``val`` and ``test`` clip indices into ``clips``.
    clips : sequence of Clip
    group_by : str
        The grouping of the splits (see :func:`split_groups`).
    seed : int
        Seeds the draw; the test split never changes.

    Returns
    -------
    dict of str to list of int
        Sorted indices per split. Each label keeps its number of validation
        groups, chosen from its non-test groups; the rest train. Members of
        one ensemble drawn with different seeds together train on every
        non-test group.
    """
    check_splits(splits, clips, group_by=group_by)
    groups, group_label = _groups(clips, group_by)
    split_of = {groups[i]: name for name in SPLITS for i in splits.get(name, [])}
    assignment: dict[str, str] = {}
    for label, names in _groups_by_label({g: group_label[g] for g in split_of}).items():
        rest = [n for n in _shuffled(names, seed, f"val:{label}") if split_of[n] != "test"]  # not a split's own order
        n_val = sum(split_of[n] == "val" for n in rest)
        for i, name in enumerate(rest):
            assignment[name] = "val" if i < n_val else "train"
        assignment.update({n: "test" for n in names if split_of[n] == "test"})
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    for i in sorted(i for name in SPLITS for i in splits.get(name, [])):
        out[assignment[groups[i]]].append(i)
    return out


def run_splits(
    clips: Sequence[Clip],
    *,
    group_by: str = "track",
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.15,
    train_fraction: float = 1.0,
    keys: Mapping[str, set[str]] | None = None,
    val_seed: int | None = None,
) -> dict[str, list[int]]:
    """A training run's splits, checked for leaks: clip indices per split.

    ``keys`` (clip keys per split, e.g. one fold's) gives the splits;
    otherwise they are :func:`split_groups`'s. ``val_seed`` redraws their
    validation groups (:func:`redraw_val`). ``train_fraction`` < 1 then
    keeps that fraction of each label's training groups (:func:`keep_fraction`);
    validation and test do not change.
    """
    if keys is not None:
        splits = {split: [i for i, c in enumerate(clips) if c.key in members] for split, members in keys.items()}
    else:
        splits = split_groups(clips, group_by=group_by, seed=seed, val=val, test=test)
    if val_seed is not None:
        splits = redraw_val(splits, clips, group_by=group_by, seed=val_seed)
    if train_fraction < 1:
        splits["train"] = keep_fraction(splits["train"], clips, train_fraction, group_by=group_by, seed=seed)
    check_splits(splits, clips, group_by=group_by)
    return splits


def group_kfold(
    clips: Sequence[Clip], k: int, *, group_by: str = "track", seed: int = 0, val: float = 0.15
) -> list[dict[str, list[int]]]:
    """Grouped, stratified k-fold: each group is the test set of exactly one fold.

    Parameters
    ----------
    clips : sequence of Clip
    k : int
        Number of folds, >= 2 and at most the number of groups.
    group_by, seed :
        As :func:`split_groups`.
    val : float
        Fraction of each label's *non-test* groups carved out for
        validation in each fold (at least one when the label has two or
        more non-test groups and ``val > 0``); the rest train.

    Returns
    -------
    list of dict of str to list of int
        ``k`` splits like :func:`split_groups`'s. Fold ``i``'s test set is
        group-fold ``i``: each label's shuffled groups are dealt to the
        folds in turn (continuing across labels, so fold sizes differ by at
        most one group per label). A label with fewer than ``k`` groups is
        missing from some folds' test sets.

    Raises
    ------
    ParameterError
        ``k`` out of range, a bad ``val``, or a missing ``group_by`` column.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ParameterError(f"k (folds) must be an integer >= 2, got {k!r}")
    _check_fractions(val=val, test=0.0)
    groups, group_label = _groups(clips, group_by)
    if k > len(group_label):
        raise ParameterError(f"k={k} folds but only {len(group_label)} {group_by} groups: each fold needs a test group")
    fold_of: dict[str, int] = {}
    by_label = _groups_by_label(group_label)
    turn = 0
    for label, names in by_label.items():
        for name in _shuffled(names, seed, label):
            fold_of[name] = turn % k
            turn += 1
    assignment: dict[str, list[str]] = {name: [] for name in group_label}
    for fold in range(k):
        for label, names in by_label.items():
            rest = [n for n in _shuffled(names, seed + 1 + fold, label) if fold_of[n] != fold]
            n_val = 0 if val == 0 or len(rest) < 2 else min(len(rest) - 1, max(1, round(len(rest) * val)))
            chosen = set(rest[:n_val])
            for name in names:
                assignment[name].append("test" if fold_of[name] == fold else "val" if name in chosen else "train")
    indexed = _indices(groups, assignment)
    return [indexed[str(fold)] for fold in range(k)]


def check_splits(splits: Mapping[str, Sequence[int]], clips: Sequence[Clip], *, group_by: str = "track") -> None:
    """Refuse splits that leak: a group, or a clip, in two splits.

    Parameters
    ----------
    splits : mapping of str to sequence of int
        Split name (one of :data:`SPLITS`) to clip indices.
    clips : sequence of Clip
    group_by : str
        The grouping to check (see :meth:`Clip.group`).

    Raises
    ------
    LeakError
        A clip index in two splits (or twice in one), or a group whose clips
        are in more than one split; the message names the group and the
        splits (and how many groups leak in all).
    ParameterError
        An unknown split name or an index out of range.
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ParameterError(f"unknown split name(s) {', '.join(map(repr, unknown))}; expected {', '.join(SPLITS)}")
    where: dict[int, str] = {}
    for name in SPLITS:
        for raw in splits.get(name, ()):
            i = int(raw)
            if not 0 <= i < len(clips):
                raise ParameterError(f"split {name!r} holds clip index {i}, but there are {len(clips)} clips")
            if i in where:
                also = "twice" if where[i] == name else f"in {where[i]!r} and {name!r}"
                raise LeakError(f"clip {clips[i].key} is {also}")
            where[i] = name
    seen: dict[str, set[str]] = defaultdict(set)
    for i, name in where.items():
        seen[clips[i].group(group_by)].add(name)
    leaks = {group: names for group, names in seen.items() if len(names) > 1}
    if leaks:
        group, names = min(leaks.items())
        listed = ", ".join(s for s in SPLITS if s in names)
        more = f" ({len(leaks) - 1} more {group_by} groups leak too)" if len(leaks) > 1 else ""
        raise LeakError(
            f"{group_by} {group!r} appears in several splits ({listed}){more}: its clips would be "
            "trained and tested on, and the test score would mean nothing"
        )


def save_splits(
    path: str | os.PathLike[str],
    splits: Mapping[str, Sequence[int]],
    clips: Sequence[Clip],
    *,
    group_by: str,
    seed: int,
) -> None:
    """Write splits as JSON, by clip key (not index), atomically.

    Parameters
    ----------
    path : path-like
        The JSON file (e.g. ``runs/NAME/splits.json``); its folder is made.
    splits : mapping of str to sequence of int
        As :func:`split_groups` returns; checked with :func:`check_splits` first.
    clips : sequence of Clip
        The clips the indices refer to.
    group_by : str
    seed : int
        Stored for the record (and for :func:`load_splits`'s leak check).

    Notes
    -----
    The file holds ``format``, ``group_by``, ``seed``, ``splits`` (split ->
    sorted clip keys) and ``groups`` (split -> sorted group names, for a
    person to audit).
    """
    check_splits(splits, clips, group_by=group_by)
    data = {
        "format": SPLITS_FORMAT,
        "group_by": group_by,
        "seed": int(seed),
        "splits": {name: sorted(clips[int(i)].key for i in splits.get(name, ())) for name in SPLITS},
        "groups": {name: sorted({clips[int(i)].group(group_by) for i in splits.get(name, ())}) for name in SPLITS},
    }
    _write_atomic(Path(path), json.dumps(data, indent=1) + "\n")


def load_splits(path: str | os.PathLike[str], clips: Sequence[Clip]) -> dict[str, list[int]]:
    """Read a :func:`save_splits` file back into indices of ``clips``.

    Parameters
    ----------
    path : path-like
    clips : sequence of Clip
        The dataset now (e.g. re-opened); matched by :attr:`Clip.key`.
        Clips not in the file are in no split.

    Returns
    -------
    dict of str to list of int
        Sorted indices per split in :data:`SPLITS`.

    Raises
    ------
    ParameterError
        The file is missing or malformed, or names keys that ``clips`` does
        not have (the message shows some of them and how many).
    LeakError
        The file puts a group (by its ``group_by``) or a clip in two splits.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such split file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ParameterError(f"{path}: cannot read the split file ({err})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("splits"), dict)
        or not isinstance(data.get("group_by"), str)
    ):
        raise ParameterError(f"{path}: not a split file (expected an object with 'splits' and 'group_by')")
    if data.get("format") != SPLITS_FORMAT:
        raise ParameterError(f"{path}: split file format {data.get('format')!r}; this version reads {SPLITS_FORMAT}")
    index = {clip.key: i for i, clip in enumerate(clips)}
    splits: dict[str, list[int]] = {}
    unknown: list[str] = []
    for name, keys in data["splits"].items():
        if name not in SPLITS:
            raise ParameterError(f"{path}: unknown split {name!r}; expected {', '.join(SPLITS)}")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ParameterError(f"{path}: split {name!r} must be a list of clip keys")
        unknown.extend(k for k in keys if k not in index)
        splits[name] = sorted(index[k] for k in keys if k in index)
    if unknown:
        shown = ", ".join(map(repr, unknown[:3]))
        raise ParameterError(
            f"{path}: {len(unknown)} clip key(s) are not in this dataset (e.g. {shown}); "
            "was the split made on another dataset, or were files renamed or removed?"
        )
    for name in SPLITS:
        splits.setdefault(name, [])
    check_splits(splits, clips, group_by=data["group_by"])
    return {name: splits[name] for name in SPLITS}


# ---------------------------------------------------------------- helpers


def _check_fractions(*, val: float, test: float) -> None:
    for name, value in (("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ParameterError(f"{name} must be a fraction in [0, 1), got {value!r}")
    if val + test >= 1.0:
        raise ParameterError(f"val + test must leave something to train on, got {val} + {test}")


def _groups(clips: Sequence[Clip], group_by: str) -> tuple[list[str], dict[str, str]]:
    """Each clip's group, and each group's (majority) label."""
    groups = [clip.group(group_by) for clip in clips]
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for clip, group in zip(clips, groups):
        labels[group][clip.label] += 1
    group_label = {g: min(c.items(), key=lambda item: (-item[1], item[0]))[0] for g, c in labels.items()}
    return groups, group_label


def _groups_by_label(group_label: Mapping[str, str]) -> dict[str, list[str]]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for group in sorted(group_label):
        by_label[group_label[group]].append(group)
    return {label: by_label[label] for label in sorted(by_label)}


def _shuffled(names: list[str], seed: int, label: str) -> list[str]:
    # One generator per (seed, label): a label's assignment does not depend on the other labels.
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))])
    return [names[i] for i in rng.permutation(len(names))]


def _allocate(n: int, val: float, test: float) -> tuple[int, int]:
    """(val, test) group counts for a label with ``n`` groups."""
    if n >= 3:
        n_val = 0 if val == 0 else max(1, round(n * val))
        n_test = 0 if test == 0 else max(1, round(n * test))
        while n_val + n_test > n - 1:  # keep one group to train on
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        return n_val, n_test
    if n == 2:
        return (0, 1) if test > 0 else (1 if val > 0 else 0, 0)
    return 0, 0


def _indices(groups: list[str], assignment: Mapping[str, list[str]]) -> dict[str, dict[str, list[int]]]:
    """Per fold (``"0"``, ``"1"``...), the clip indices of each split."""
    folds = len(next(iter(assignment.values()), [None]))
    out = {str(f): {name: [] for name in SPLITS} for f in range(folds)}
    for i, group in enumerate(groups):
        for f, split in enumerate(assignment[group]):
            out[str(f)][split].append(i)
    return out


def _write_atomic(path: Path, text: str) -> None:
    # Readable like the run's other files (mkstemp's 0600 was not): see pyharmonies._atomic.
    write_atomic(path, text)
