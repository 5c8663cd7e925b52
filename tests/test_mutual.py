"""``harmonies train --members N --mutual W``: the members trained together, each pulled towards the others."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from _tiny_runs import small_cnn_config as _cfg
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.loop import model_from_meta, train_run
from pyharmonies.training.mutual import mutual_loss


def _logits(seed: int, members: int = 3, batch: int = 8, classes: int = 4) -> torch.Tensor:
    return torch.randn(members, batch, classes, generator=torch.Generator().manual_seed(seed)) * 2


def test_without_weight_it_is_the_members_label_losses_summed():
    logits, y = _logits(0), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    expected = sum(F.cross_entropy(one, y) for one in logits)
    assert torch.allclose(mutual_loss(logits, lambda one: F.cross_entropy(one, y), 0.0), expected)


def test_members_that_agree_feel_no_pull():
    one = _logits(1, members=1)[0]
    agreeing = torch.stack([one, one + 3.0, one])  # a shift of the logits is the same answer
    y = torch.zeros(8, dtype=torch.long)
    alone = mutual_loss(agreeing, lambda m: F.cross_entropy(m, y), 0.0)
    assert torch.allclose(mutual_loss(agreeing, lambda m: F.cross_entropy(m, y), 2.0), alone, atol=1e-6)


def _disagreement(logits: torch.Tensor) -> float:
    p = logits.softmax(-1)
    return float(sum((p[i] - p[j]).abs().sum() for i in range(len(p)) for j in range(len(p)) if i != j))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pull_alone_brings_the_members_closer(seed):
    logits = _logits(seed).requires_grad_()
    before = _disagreement(logits.detach())
    mutual_loss(logits, lambda m: m.sum() * 0.0, 1.0).backward()
    after = _disagreement((logits - 8.0 * logits.grad).detach())  # 8: the batch, which batchmean divides by
    assert after < 0.9 * before  # 0.74-0.78 for seeds 0-2


def test_the_peers_answer_is_a_fixed_target():
    # Member 0's KL term must not move the others: with two members, the gradient on member 1's logits
    # is member 1's own KL term only, the same whether member 0's term is counted or not.
    logits = _logits(3, members=2).requires_grad_()
    mutual_loss(logits, lambda m: m.sum() * 0.0, 1.0).backward()
    own = logits.detach()[1].clone().requires_grad_()
    F.kl_div(F.log_softmax(own, -1), logits.detach()[0].softmax(-1), reduction="batchmean").backward()
    assert torch.allclose(logits.grad[1], own.grad, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"members": 1}, "needs members of at least 2"),
        ({"members": 2, "clip_bag": 4}, "not with clip_bag"),
        ({"members": 2, "init": "somewhere"}, "not from --init"),
        ({"members": 2, "mutual": -1.0}, r"mutual must be in \[0, 10\]"),
    ],
)
def test_refused_where_it_cannot_work(options, message):
    with pytest.raises(ParameterError, match=message):
        TrainConfig(**{"data": "d", "out": "r", "model": "cnn", "mutual": 1.0, **options})


def test_a_mutual_run_is_one_averaged_model_trained_together_and_reproducible(three_class_corpus, tmp_path):
    runs = [train_run(_cfg(three_class_corpus, tmp_path / name, members=2, mutual=1.0), progress=False) for name in ("a", "b")]
    run = runs[0]
    assert not (run / "member-0").exists()  # one training, not one run per member
    ck = checkpoint.load(run / checkpoint.BEST)
    assert ck["meta"]["model_name"] == "cnn_ensemble" and ck["meta"]["model_config"]["members"] == 2
    assert ck["meta"]["model_config"]["member"]["width"] == 0.5
    model = model_from_meta(ck["meta"])
    model.load_state_dict(ck["model"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"]["name"] == "cnn_ensemble" and metrics["baseline"]["model"] == "svm"
    assert TrainConfig.load(run / "config.json").mutual == 1.0
    # Two members from different starting weights, not one network twice.
    first, second = (dict(m.named_parameters()) for m in model.members)
    assert not torch.equal(first["head.weight"], second["head.weight"])
    with pytest.raises(ParameterError, match=r"trained together \(--mutual\).*--members 1"):
        train_run(_cfg(three_class_corpus, tmp_path / "tuned", init=str(run)), progress=False)
    again = checkpoint.load(runs[1] / checkpoint.BEST)["model"]
    assert all(torch.equal(ck["model"][name], again[name]) for name in ck["model"]), "the same seed must train the same weights"
