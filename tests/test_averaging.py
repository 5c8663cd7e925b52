"""The moving average of the weights (``--average-weights``): its arithmetic, that it is
what a run keeps, and that a killed run resumes it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pyharmonies.data.synth import synth_corpus
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.averaging import WeightAverage
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.loop import train_run


def test_the_average_follows_the_formula_and_copies_integer_buffers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(net, decay=0.9)
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    for step in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net[1].running_mean.add_(1.0)
            net[1].num_batches_tracked.add_(1)
        average.update(net)
        decay = min(0.9, (1 + step) / (10 + step))
        for k, v in net.state_dict().items():
            expected[k] = decay * expected[k] + (1 - decay) * v if v.is_floating_point() else v.clone()
    for k, v in average.model.state_dict().items():
        torch.testing.assert_close(v, expected[k], msg=k)
    assert int(average.model[1].num_batches_tracked) == 30
    assert not any(p.requires_grad for p in average.model.parameters())


def test_the_average_round_trips_through_its_state():
    net = nn.Linear(4, 2)
    a = WeightAverage(net, decay=0.99)
    with torch.no_grad():
        net.weight.add_(1.0)
    a.update(net)
    b = WeightAverage(nn.Linear(4, 2), decay=0.99)
    b.load_state_dict(a.state_dict())
    assert b.steps == 1
    torch.testing.assert_close(b.model.weight, a.model.weight)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(2, 2), decay=decay)


def test_the_config_refuses_a_decay_of_one(tmp_path):
    with pytest.raises(ParameterError, match="average_weights"):
        TrainConfig(data=str(tmp_path), average_weights=1.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=3, clips_per_class=12, seconds=4.0, seed=5, progress=False)
    return root


def _cfg(corpus: Path, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(data=str(corpus), out=str(out), cache=str(out.parent / "cache"), model="cnn", epochs=epochs,
                       patience=100, window_hop=1.0, seed=0, average_weights=0.95, model_options={"width": 0.5},
                       members=1)  # fmt: skip


def _one_thread(fn, *args, **kw):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-reproducible runs, so a resumed run can be compared with an uninterrupted one
    try:
        return fn(*args, **kw)
    finally:
        torch.set_num_threads(threads)


def test_the_run_keeps_the_average_not_the_raw_weights(corpus, tmp_path):
    run = _one_thread(train_run, _cfg(corpus, tmp_path / "one-epoch", epochs=1), progress=False)
    best = checkpoint.load(run / checkpoint.BEST)["model"]
    last = checkpoint.load(run / checkpoint.LAST, keys=checkpoint.RESUME_KEYS)
    averaged, raw = last["average"]["weights"], last["model"]
    assert last["average"]["steps"] > 0
    for key in best:  # one epoch: that epoch is the best, and best.pt holds its average
        torch.testing.assert_close(best[key], averaged[key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw if raw[k].is_floating_point())


def test_a_killed_run_resumes_its_average_exactly(corpus, tmp_path, monkeypatch):
    reference = _one_thread(train_run, _cfg(corpus, tmp_path / "reference", epochs=3), progress=False)

    killed = tmp_path / "killed"
    real_save = checkpoint.save_atomic
    saves = []

    def save_then_die(obj, path):
        real_save(obj, path)
        if Path(path).name == checkpoint.LAST:
            saves.append(path)
            if len(saves) == 2:
                raise KeyboardInterrupt  # killed after its second epoch was written

    monkeypatch.setattr(checkpoint, "save_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _one_thread(train_run, _cfg(corpus, killed, epochs=3), progress=False)
    monkeypatch.setattr(checkpoint, "save_atomic", real_save)
    _one_thread(train_run, _cfg(corpus, killed, epochs=3), progress=False, resume=True)

    a = checkpoint.load(reference / checkpoint.LAST, keys=checkpoint.RESUME_KEYS)
    b = checkpoint.load(killed / checkpoint.LAST, keys=checkpoint.RESUME_KEYS)
    assert a["average"]["steps"] == b["average"]["steps"]
    for key, value in a["average"]["weights"].items():
        torch.testing.assert_close(b["average"]["weights"][key], value, rtol=1e-5, atol=1e-6, msg=key)
