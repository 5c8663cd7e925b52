"""The SVM baseline as a teacher: its out-of-fold answers on the training clips, as soft targets.

Fusing the CNN's answer with the SVM's at test time gains about 2.5 points
on the soundtracks folds (``docs/EXPERIMENTS.md``): the SVM on clip
statistics knows something the CNN misses. ``train --teacher svm`` tries to
put that knowledge into the CNN itself, so that the device runs the CNN
alone: each training window is asked for its label and, with
``distill_weight``, for the SVM's probabilities for its clip.

Those probabilities must be honest. An SVM's answers on its own training
clips are mostly right and say little; so the training tracks are cut into
``folds`` groups, and each clip is answered by a calibrated SVM fitted on
the other groups' tracks only (cross-fitting). Nothing of the validation
or test tracks is read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from pyharmonies.errors import ParameterError
from pyharmonies.runtime.svm import clip_statistics
from pyharmonies.training.config import SVM_TEACHER

__all__ = ["SVM_TEACHER", "out_of_fold_probabilities", "svm_teacher_clip_targets"]

def out_of_fold_probabilities(x: np.ndarray, y: np.ndarray, groups: Sequence[str], labels: Sequence[str], seed: int, *,
                              folds: int = 5) -> np.ndarray:  # fmt: skip
    """``(clips, classes)``: each clip's calibrated SVM probabilities from an SVM that never saw its group.

    Parameters
    ----------
    x : (clips, features) clip statistics; y : (clips,) label indices
    groups : (clips,) each clip's track
    labels : every label (the columns)
    folds : groups of tracks (at most; one per track when there are fewer);
        each is answered by an SVM fitted on the others

    Raises
    ------
    ParameterError
        Fewer than three tracks, or a group whose complement holds too few
        tracks or classes to fit and calibrate an SVM.
    """
    from sklearn.model_selection import GroupKFold

    from pyharmonies.training.svm import fit_calibrated_svm

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 3:
        raise ParameterError(f"the SVM teacher answers each training track by SVMs fitted and calibrated on at least "
                             f"two others; the training split holds {n_groups} track(s)")  # fmt: skip
    out = np.zeros((len(y), len(labels)), np.float64)
    for fit, answer in GroupKFold(n_splits=min(folds, n_groups)).split(x, y, groups):
        with warnings.catch_warnings():
            # A class with a single track in one of these smaller fits (extremetuxracer has six in
            # all) is missing from the training side of one calibration fold: scikit-learn warns once
            # per fit and gives that fold's clips the lowest decision value for the class, so its
            # sigmoid rests on poorer evidence. The answers' accuracy is recorded in the run's meta.
            warnings.filterwarnings("ignore", message="Number of classes in training fold", category=RuntimeWarning)
            svm = fit_calibrated_svm(x[fit], y[fit], groups[fit], None, None, labels, seed)
        out[answer] = svm.probabilities(x[answer])
    return out


def svm_teacher_clip_targets(prep, train_clips: Sequence[int], group_by: str, seed: int) -> dict[int, np.ndarray]:
    """Clip index -> ``(classes,)`` out-of-fold SVM probabilities, for each clip of ``train_clips``.

    ``prep``: the run's prepared data (its cache gives each clip's frame
    vectors, from which the SVM's clip statistics are computed); ``group_by``:
    what a track is (the run's ``group_by``).
    """
    clips = sorted(set(int(c) for c in train_clips))
    x = clip_statistics([prep.cache.clip_features(prep.clips[c], "frame_vector") for c in clips])
    y = np.asarray([prep.label_index[prep.clips[c].label] for c in clips])
    groups = [prep.clips[c].group(group_by) for c in clips]
    probs = out_of_fold_probabilities(x, y, groups, prep.labels, seed)
    return dict(zip(clips, probs))
