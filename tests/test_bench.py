"""pyharmonies.bench and `harmonies bench`: the structure of the figures.

No test here asserts a timing (timed tests are forbidden in this project:
they fail on a busy machine and prove nothing on an idle one). What is
tested: the command runs and reports every figure, single-threaded; the
librosa code it times computes the same features, with the same shapes,
as ours (so the speed-ups compare like with like); the clip is deterministic.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pyharmonies import bench
from pyharmonies.cli import cli
from pyharmonies.features import FEATURE_NAMES, FRAME_VECTOR_FEATURES, FeatureConfig, extract

librosa = pytest.importorskip("librosa", reason="the benchmark's reference: pip install 'harmonies[test]'")

SMOKE = ["bench", "--seconds", "2", "--repeat", "1"]


@pytest.fixture(scope="module")
def report() -> dict:
    """`harmonies bench --seconds 2 --repeat 1 --json`, re-executed single-threaded as users run it."""
    result = CliRunner().invoke(cli, [*SMOKE, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def positive(value: object) -> bool:
    return isinstance(value, float) and np.isfinite(value) and value > 0


def test_report_has_every_figure(report: dict):
    assert report["clip"]["seconds"] == 2.0 and report["clip"]["sample_rate"] == 22050
    assert report["clip"]["frames"] == FeatureConfig().frames(2 * 22050)
    assert report["repeat"] == 1
    assert report["config"] == FeatureConfig().to_dict()
    lm, full, st = report["log_mel"], report["full_set"], report["streaming"]
    assert all(positive(lm[k]) for k in ("harmonies_s", "librosa_s", "speedup"))
    assert full["features"] == list(FEATURE_NAMES)
    for key in ("harmonies_s", "librosa_per_feature_s", "librosa_shared_stft_s",
                "speedup_vs_per_feature", "speedup_vs_shared_stft"):  # fmt: skip
        assert positive(full[key]), key
    assert set(full["librosa_per_feature_breakdown_s"]) == set(FEATURE_NAMES)
    assert st["frame_vector_features"] == list(FRAME_VECTOR_FEATURES)
    assert st["frame_vector_size"] == 28 and st["hop_length"] == 512
    assert st["blocks"] == 2 * 22050 // 512
    for key in ("c_core_per_hop_us", "push_per_block_us", "push_rows_per_block_us"):
        assert positive(st[key]), key
    # The speed-ups are the ratios of the times reported beside them.
    assert lm["speedup"] == pytest.approx(lm["librosa_s"] / lm["harmonies_s"])
    assert full["speedup_vs_shared_stft"] == pytest.approx(full["librosa_shared_stft_s"] / full["harmonies_s"])


def test_targets_are_judged_not_asserted(report: dict):
    targets = {t["name"]: t for t in report["targets"]}
    assert set(targets) == set(bench.TARGETS)
    for name, t in targets.items():
        assert isinstance(t["passed"], bool), name  # PASS or MISS; which one is the machine's business
        op, bound, _ = bench.TARGETS[name]
        assert t["passed"] == (t["value"] >= bound if op == ">=" else t["value"] <= bound)
    assert targets["c_core_per_hop"]["value"] == report["streaming"]["c_core_per_hop_us"]


def test_ran_single_threaded_with_machine_info(report: dict):
    threads = report["threads"]
    # The command re-executed itself with the thread variables set ...
    assert threads["env"] == bench.SINGLE_THREAD_ENV
    assert "threadpool_limits(1)" in threads["method"]
    # ... and every BLAS/OpenMP pool loaded in the child ran one thread.
    assert all(p["num_threads"] == 1 for p in threads["pools"]), threads["pools"]
    machine = report["machine"]
    assert machine["cpu"] and machine["numpy"] == np.__version__ and machine["librosa"] == librosa.__version__


def test_our_features_have_librosas_shapes(report: dict):
    assert report["shapes_match"] is True
    assert set(report["shapes"]) == set(FEATURE_NAMES)
    for name, shapes in report["shapes"].items():
        assert len({tuple(s) for s in shapes.values()}) == 1, (name, shapes)


def test_the_timed_librosa_code_computes_our_features(report: dict):
    # Like for like: the shared-STFT form, timed against ours, gives our values.
    # float32 (ours) against librosa's float32 STFT and float64 sums differ by
    # about 1e-6 of a feature's range; 1e-4 leaves margin and would still catch
    # a wrong parameter (those move values by percents).
    agreement = report["max_rel_diff_vs_librosa_shared_stft"]
    assert set(agreement) == set(FEATURE_NAMES)
    assert max(agreement.values()) < 1e-4, agreement


def test_per_feature_form_computes_our_features():
    config = FeatureConfig()
    y = bench.synthetic_clip(1.0, config.sample_rate, seed=3)
    ours = extract(y, config)
    calls = bench.librosa_per_feature(y, config)
    assert set(calls) == set(FEATURE_NAMES)
    for name, call in calls.items():
        ref = np.asarray(call(), dtype=np.float64)
        assert ref.shape == ours[name].shape, name
        if name == "mfcc":
            continue  # mfcc(y=...) clips at librosa's top_db=80, which our contract omits (see bench docs)
        # Same tolerance and reason as test_the_timed_librosa_code_computes_our_features.
        scale = np.max(np.abs(ref))
        assert np.max(np.abs(ours[name] - ref)) <= 1e-4 * scale, name


def test_table_output_in_process():
    result = CliRunner().invoke(cli, [*SMOKE, "--in-process"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for label in ("log_mel", "librosa, per feature", "librosa, shared STFT", "C core (extract time / frames)",
                  "StreamingExtractor.push from Python", "CPU:", "numpy", "librosa"):  # fmt: skip
        assert label in out, label
    # Four targets, each judged PASS or MISS.
    assert sum(out.count(word) for word in ("PASS", "MISS")) == 4


def test_synthetic_clip_is_deterministic():
    a = bench.synthetic_clip(1.5, 22050, seed=7)
    assert a.dtype == np.float32 and a.shape == (33075,)
    np.testing.assert_array_equal(a, bench.synthetic_clip(1.5, 22050, seed=7))
    assert np.max(np.abs(a)) == pytest.approx(0.8)
    assert not np.array_equal(a, bench.synthetic_clip(1.5, 22050, seed=8))  # the seed drives the noise


def test_run_validates_its_arguments():
    with pytest.raises(ValueError, match="seconds"):
        bench.run(0.0)
    with pytest.raises(ValueError, match="repeat"):
        bench.run(1.0, repeat=0)


@pytest.mark.parametrize(
    "config",
    [FeatureConfig(), FeatureConfig(n_fft=2048, hop_length=300, center=False)],
    ids=["default", "nfft2048-hop300-nocenter"],
)
def test_numpy_pyaudioanalysis_features_follow_pyaudioanalysis(config: FeatureConfig):
    # The benchmark's numpy version (vectorised, from librosa's float32 STFT)
    # against pyharmonies.parity's reference (pyAudioAnalysis's own functions,
    # frame by frame in float64): float32 rounding of the spectrum gives about
    # 1e-7 relative error; 1e-5 leaves margin, a wrong block or scale would be
    # off by far more.
    from pyharmonies import parity

    y = bench.synthetic_clip(3.0, config.sample_rate, seed=5)
    ours = bench.pyaudioanalysis_features(y, config)
    for name in ("energy_entropy", "spectral_entropy", "spectral_flux"):
        ref = parity.reference(name, y, config)
        assert ours[name].shape == ref.shape == (1, config.frames(y.size)), name
        np.testing.assert_allclose(ours[name], ref, rtol=1e-5, atol=1e-9, err_msg=name)
