"""``--teacher svm``: the SVM baseline's cross-fitted answers on the training clips as soft targets."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from _tiny_runs import small_cnn_config as _cfg
from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.loop import fold_teacher, train_folds
from pyharmonies.training.svm import fit_svm
from pyharmonies.training.svm_teacher import SVM_TEACHER, out_of_fold_probabilities

LABELS = ["a", "b"]


def _tracks(signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 tracks x 3 clips in 8 dimensions: each track a point of its own plus small noise per clip;
    a track's label moves its point by ``signal`` along the first axis (0: labels unrelated to sound)."""
    rng = np.random.default_rng(seed)
    y_track = np.repeat([0, 1], 20)
    centres = rng.normal(size=(40, 8))
    centres[:, 0] += signal * y_track
    x = np.repeat(centres, 3, axis=0) + 0.05 * rng.normal(size=(120, 8))
    return x, np.repeat(y_track, 3), np.repeat([f"t{i}" for i in range(40)], 3)


def test_each_clip_is_answered_by_svms_that_never_heard_its_track():
    x, y, groups = _tracks(signal=0.0)
    memorised = fit_svm(x, y, None, None, LABELS, 0)[0].predict(x)
    honest = out_of_fold_probabilities(x, y, groups, LABELS, 0)
    assert honest.shape == (120, 2)
    np.testing.assert_allclose(honest.sum(axis=1), 1.0, rtol=1e-9)
    # No signal: an SVM that heard a clip's track knows its label, one that did not can only guess.
    assert (memorised == y).mean() > 0.9
    assert (honest.argmax(1) == y).mean() < 0.7  # 0.47 here
    x, y, groups = _tracks(signal=10.0)  # a real difference between the classes is still found (0.975)
    assert (out_of_fold_probabilities(x, y, groups, LABELS, 0).argmax(1) == y).mean() > 0.9


def test_too_few_tracks_to_cross_fit_are_refused():
    x, y, groups = _tracks(signal=1.0)
    with pytest.raises(ParameterError, match="at least two others; the training split holds 2 track"):
        out_of_fold_probabilities(x[:6], y[:6], groups[:6], LABELS, 0)
    # Ten tracks, five of each class: five groups of two, each answered by SVMs fitted on the eight others.
    ten = np.r_[0:15, 60:75]
    assert out_of_fold_probabilities(x[ten], y[ten], groups[ten], LABELS, 0).shape == (30, 2)


def test_a_cnn_taught_by_the_svm_records_what_it_learnt_from(three_class_corpus, tmp_path):
    assert fold_teacher(SVM_TEACHER, 1) == SVM_TEACHER  # every fold fits its own SVMs on its own training tracks
    run = train_folds(_cfg(three_class_corpus, tmp_path / "s", folds=2, epochs=1, teacher=SVM_TEACHER,
                           distill_weight=0.5, distill_temperature=1.0), progress=False)  # fmt: skip
    for k in range(2):
        teacher = checkpoint.load(run / f"fold-{k}" / checkpoint.BEST)["meta"]["teacher"]
        assert teacher["run"] == SVM_TEACHER
        # Calibrated answers: their mean top probability is near their accuracy, far from 1.
        assert 0.0 <= teacher["train_window_accuracy"] <= 1.0 and teacher["mean_top_probability"] < 0.99


def test_the_command_line_names_a_teacher_it_cannot_find(three_class_corpus, tmp_path):
    result = CliRunner().invoke(cli, ["train", str(three_class_corpus), "--teacher", str(tmp_path / "nowhere"),
                                      "--out", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2 and "is neither a run folder nor 'svm'" in result.output
