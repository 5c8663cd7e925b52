"""``harmonies train --members N``: N CNNs on one split, averaged into one run; resumable; CNN only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from _tiny_runs import small_cnn_config as _cfg
from pyharmonies.cli import cli
from pyharmonies.errors import ParameterError
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.loop import train_folds, train_run
from pyharmonies.training.members import member_configs


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_members_differ_in_seed_only_and_share_the_split_seed(tmp_path):
    cfg = TrainConfig(data="d", out=str(tmp_path / "run"), seed=4, members=3, member_val="shared")
    subs = member_configs(cfg)
    assert [s.seed for s in subs] == [4, 5, 6]
    assert {s.splits_seed for s in subs} == {4} and {s.members for s in subs} == {1}
    assert [Path(s.out).name for s in subs] == ["member-0", "member-1", "member-2"]
    pinned = member_configs(TrainConfig(data="d", out="r", seed=1, split_seed=0, members=2, member_val="shared"))
    assert [(s.seed, s.splits_seed) for s in pinned] == [(1, 0), (2, 0)]


def test_members_with_their_own_validation_draw_it_by_seed_and_share_the_normaliser(tmp_path):
    assert TrainConfig(data="d", out="r").member_val == "shared"  # the default
    subs = member_configs(TrainConfig(data="d", out=str(tmp_path / "run"), seed=4, members=3, member_val="own"))
    assert [(s.seed, s.val_seed) for s in subs] == [(4, 4), (5, 5), (6, 6)]
    assert {s.normalize_over for s in subs} == {"train+val"} and {s.member_val for s in subs} == {"shared"}
    given = member_configs(TrainConfig(data="d", out="r", seed=1, val_seed=10, members=2, member_val="own"))
    assert [s.val_seed for s in given] == [10, 11]
    shared = member_configs(TrainConfig(data="d", out="r", seed=1, members=2, member_val="shared"))
    assert {(s.val_seed, s.normalize_over) for s in shared} == {(None, "train")}
    with pytest.raises(ParameterError, match="member_val"):
        TrainConfig(data="d", out="r", members=2, member_val="bagged")
    together = TrainConfig(data="d", out="r", members=2, mutual=1.0, member_val="own")
    assert together.member_val == "shared"  # trained together on one split
    assert TrainConfig(data="d", out="r", members=2, train_fraction=0.5, member_val="own").member_val == "shared"
    for other in (["--mutual", "1"], ["--train-fraction", "0.5"]):
        refused = CliRunner().invoke(cli, ["train", str(tmp_path), "--members", "2", "--member-val", "own", *other])
        assert refused.exit_code != 0 and other[0] in refused.output


def _split_keys(run: Path) -> dict[str, set[str]]:
    return {k: set(v) for k, v in json.loads((run / "splits.json").read_text())["splits"].items()}


def test_members_holding_out_their_own_validation_tracks_are_averaged_and_scored_on_test(three_class_corpus, tmp_path):
    run = train_run(_cfg(three_class_corpus, tmp_path / "run", members=3, member_val="own", val=0.3), progress=False)
    members = [_split_keys(run / f"member-{i}") for i in range(3)]
    assert len({frozenset(m["val"]) for m in members}) > 1  # other validation tracks...
    assert len({frozenset(m["test"]) for m in members}) == 1  # ...the same test tracks...
    assert len({frozenset(m["train"] | m["val"]) for m in members}) == 1  # ...and the same tracks in all
    normalizers = [checkpoint.load(run / f"member-{i}" / checkpoint.BEST)["meta"]["normalizer"] for i in range(3)]
    assert all(n == normalizers[0] for n in normalizers)
    merged = _split_keys(run)
    assert merged["val"] == set() and merged["test"] == members[0]["test"]
    assert merged["train"] == members[0]["train"] | members[0]["val"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["own_validation"] is True and list(metrics["splits"]) == ["test"]
    assert "own validation tracks" in (run / "report.md").read_text()


def test_a_members_run_averages_its_members_on_one_split(three_class_corpus, tmp_path):
    run = train_run(_cfg(three_class_corpus, tmp_path / "run", members=2, member_val="shared"), progress=False)
    ck = checkpoint.load(run / checkpoint.BEST)
    assert ck["meta"]["model_name"] == "cnn_ensemble" and ck["meta"]["model_config"]["members"] == 2
    assert TrainConfig.load(run / "config.json").members == 2
    splits = [(run / f"member-{i}" / "splits.json").read_text() for i in range(2)]
    assert json.loads(splits[0])["splits"] == json.loads(splits[1])["splits"] == json.loads((run / "splits.json").read_text())["splits"]
    assert [TrainConfig.load(run / f"member-{i}" / "config.json").seed for i in range(2)] == [0, 1]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["members"]) == {str(run / "member-0"), str(run / "member-1")}
    assert metrics["baseline"]["model"] == "svm"
    # Fine-tuning starts from one network: the message names a member to start from instead.
    with pytest.raises(ParameterError, match=r"averages several CNNs.*--init .*member-0.*--members 1"):
        train_run(_cfg(three_class_corpus, tmp_path / "tuned", init=str(run)), progress=False)


def test_resume_keeps_finished_members_and_redoes_a_cut_averaging(three_class_corpus, tmp_path):
    cfg = _cfg(three_class_corpus, tmp_path / "run", members=2)
    run = train_run(cfg, progress=False)
    kept = _sha(run / "member-0" / checkpoint.BEST)
    for name in ("metrics.json", "report.md"):  # killed while averaging
        (run / name).unlink()
    with pytest.raises(ParameterError, match="already holds a run"):
        train_run(cfg, progress=False)
    train_run(cfg, progress=False, resume=True)
    assert _sha(run / "member-0" / checkpoint.BEST) == kept
    assert json.loads((run / "metrics.json").read_text())["model"]["members"] == 2
    other = TrainConfig.from_dict({**cfg.to_dict(), "members": 3})
    with pytest.raises(ParameterError, match="members 2 -> 3"):
        train_run(other, progress=False, resume=True)


def test_folds_of_members_resume_and_summarise(three_class_corpus, tmp_path):
    cfg = _cfg(three_class_corpus, tmp_path / "cv", members=2, folds=2)
    out = train_folds(cfg, progress=False)
    (out / "fold-1" / "metrics.json").unlink()
    (out / "fold-1" / "member-1" / "metrics.json").unlink()
    train_folds(cfg, progress=False, resume=True)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["folds"] == 2 and "versus_baseline" in summary
    assert checkpoint.load(out / "fold-1" / checkpoint.BEST)["meta"]["model_name"] == "cnn_ensemble"


@pytest.mark.parametrize("model", ["lstm", "svm", "probe"])
def test_members_are_refused_outside_the_cnn(three_class_corpus, tmp_path, model):
    result = CliRunner().invoke(cli, ["train", str(three_class_corpus), "--model", model, "--members", "2", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "members" in result.output
    assert not (tmp_path / "r").exists()
