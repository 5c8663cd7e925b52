"""Distillation (``--teacher``): a student learns a teacher's answers, only from a teacher that never
heard its validation or test clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _tiny_runs import small_cnn_config as _cfg
from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.distill import distill_loss, soften
from pyharmonies.training.evaluate import window_probabilities
from pyharmonies.training.loop import fold_teacher, train_folds, train_run


@pytest.fixture(scope="module")
def corpus(three_class_corpus) -> Path:
    return three_class_corpus


@pytest.fixture(scope="module")
def contrary_teacher(corpus, tmp_path_factory) -> Path:
    """A trained run whose head is replaced: it answers class 0 for every window, whatever it hears."""
    run = train_run(_cfg(corpus, tmp_path_factory.mktemp("teacher") / "t", epochs=1), progress=False)
    ck = checkpoint.load(run / checkpoint.BEST)
    ck["model"]["head.weight"] = torch.zeros_like(ck["model"]["head.weight"])
    ck["model"]["head.bias"] = torch.tensor([12.0, 0.0, 0.0])
    checkpoint.save_atomic(ck, run / checkpoint.BEST)
    return run


def test_soften_keeps_the_order_and_lifts_small_probabilities():
    p = np.array([[0.9, 0.09, 0.01], [0.2, 0.5, 0.3]], dtype=np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, rtol=1e-5)
    warm = soften(p, 3.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, rtol=1e-6)
    assert (np.argsort(warm, axis=1) == np.argsort(p, axis=1)).all()
    assert warm[0, 2] > 5 * p[0, 2] and warm[0, 0] < p[0, 0]


def test_the_distillation_loss_is_smallest_where_the_student_gives_the_teachers_answer():
    targets = torch.tensor([[0.7, 0.2, 0.1]])
    exact = torch.log(targets) * 2.0  # softmax(logits / 2) == targets
    exact.requires_grad_(True)
    loss = distill_loss(exact, targets, 2.0)
    loss.backward()
    assert exact.grad.abs().max() < 1e-6
    entropy = -(targets * torch.log(targets)).sum() * 4.0
    assert float(loss.detach()) == pytest.approx(float(entropy), rel=1e-5)  # the KL term is 0
    assert float(distill_loss(torch.zeros(1, 3), targets, 2.0)) > float(loss.detach())


def test_a_student_distilled_from_a_contrary_teacher_learns_the_teacher_not_the_labels(corpus, contrary_teacher, tmp_path):
    student = train_run(_cfg(corpus, tmp_path / "s", teacher=str(contrary_teacher), distill_weight=1.0,
                             distill_temperature=1.0, epochs=3), progress=False)  # fmt: skip
    scored = window_probabilities(student, str(corpus), split="train", progress=False)
    says = scored.probs.argmax(1)
    # Labels take no part at weight 1: every step pushes towards the teacher's class 0, and a third of
    # the windows are class 0. Seeds 0-2 at 1 and 2 threads: class 0 on every window (labels: 0.33).
    assert (says == 0).mean() > 0.9 and (says == scored.y).mean() < 0.5
    meta = checkpoint.load(student / checkpoint.BEST)["meta"]
    assert meta["teacher"]["run"] == str(contrary_teacher)
    assert meta["teacher"]["train_window_accuracy"] == pytest.approx(float((scored.y == 0).mean()))  # recorded, as bad as it is


def test_a_teacher_on_other_splits_is_refused_before_training(corpus, contrary_teacher, tmp_path):
    with pytest.raises(ParameterError, match="trained on .* clips this run validates or tests on"):
        train_run(_cfg(corpus, tmp_path / "s", teacher=str(contrary_teacher), seed=1), progress=False)
    assert not (tmp_path / "s" / checkpoint.LAST).exists()


def test_a_teacher_with_other_features_is_refused(corpus, contrary_teacher, tmp_path):
    other = json.loads((contrary_teacher / "config.json").read_text())["window"] + 1.0
    with pytest.raises(ParameterError, match="window_frames differs"):
        train_run(_cfg(corpus, tmp_path / "s", teacher=str(contrary_teacher), window=other), progress=False)


def test_a_folds_teacher_gives_each_fold_its_own(corpus, tmp_path):
    teacher = train_folds(_cfg(corpus, tmp_path / "t", folds=2, epochs=1), progress=False)
    assert fold_teacher(str(teacher), 1) == str(teacher / "fold-1")
    assert fold_teacher(str(teacher / "fold-0"), 1) == str(teacher / "fold-0")  # a single run is used as it is
    with pytest.raises(ParameterError, match="no best.pt there .a --folds run"):
        train_run(_cfg(corpus, tmp_path / "one", teacher=str(teacher)), progress=False)  # one run cannot learn from K folds
    student = train_folds(_cfg(corpus, tmp_path / "s", folds=2, epochs=1, teacher=str(teacher)), progress=False)
    for k in range(2):
        meta = checkpoint.load(student / f"fold-{k}" / checkpoint.BEST)["meta"]
        assert meta["teacher"]["run"] == str(teacher / f"fold-{k}")


def test_the_command_line_refuses_distillation_options_for_the_svm(corpus, tmp_path):
    result = CliRunner().invoke(cli, ["train", str(corpus), "--model", "svm", "--teacher", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "--teacher" in result.output


def test_distillation_options_are_checked():
    with pytest.raises(ParameterError, match="distill_weight"):
        TrainConfig(data="d", distill_weight=1.5)
    with pytest.raises(ParameterError, match="distill_temperature"):
        TrainConfig(data="d", distill_temperature=0.0)
    with pytest.raises(ParameterError, match="no distillation"):
        TrainConfig(data="d", model="svm", teacher="runs/t")
