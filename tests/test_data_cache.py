"""The feature cache: computed once, memory-mapped, keyed by content and config.

What the cache returns is compared bit for bit with extract() on the same
decoded audio: the cache must add nothing and lose nothing.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.audio import load
from pyharmonies.data.cache import FEATURE_KINDS, FeatureCache
from pyharmonies.data.sources import Clip
from pyharmonies.errors import AudioError, ParameterError
from pyharmonies.features import FeatureConfig, extract, frame_vector

CONFIG = FeatureConfig()


def write(path: Path, seed: int, seconds: float = 1.0, sr: int = 22050) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [write(tmp_path / "audio" / f"{i}.wav", i) for i in range(3)]


def test_features_equal_extract_on_the_decoded_file(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    assert cache.ensure(files, jobs=1, progress=False) == []
    y = load(files[0], CONFIG.sample_rate)
    expected = extract(y, CONFIG, features=["log_mel"])["log_mel"]
    log_mel = cache.load(files[0], "log_mel")
    assert isinstance(log_mel, np.memmap) and not log_mel.flags.writeable
    assert log_mel.dtype == np.float32 and log_mel.shape == expected.shape == (64, 44)
    np.testing.assert_array_equal(log_mel, expected)  # the same C code on the same samples: bit for bit
    np.testing.assert_array_equal(cache.load(files[0], "frame_vector"), frame_vector(y, CONFIG))


def test_hits_and_misses(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.ensure(files, jobs=1, progress=False)
    assert (cache.hits, cache.misses) == (0, 3)
    cache.ensure(files + files[:1], jobs=1, progress=False)  # repeats count once
    assert (cache.hits, cache.misses) == (3, 3)
    cache.load(files[0], "log_mel")
    cache.load(files[0], "log_mel")
    assert (cache.hits, cache.misses) == (5, 3)
    other = FeatureCache(tmp_path / "cache", CONFIG)  # a new object (a new run) finds the files
    other.load(files[1], "frame_vector")
    assert (other.hits, other.misses) == (1, 0)
    layout = sorted(p.name for p in cache.directory.iterdir())
    assert "config.json" in layout and len(layout) == 1 + 3 * len(FEATURE_KINDS)
    assert FeatureConfig.from_json((cache.directory / "config.json").read_text()) == CONFIG
    assert not [p for p in cache.directory.iterdir() if p.name.endswith(".part")]


def test_load_computes_what_is_missing(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    x = cache.load(files[2], "log_mel")
    assert (cache.hits, cache.misses) == (0, 1) and x.shape == (64, 44)
    with pytest.raises(ParameterError, match="unknown feature kind 'mfcc'"):
        cache.load(files[2], "mfcc")


def test_changed_config_recomputes_in_its_own_folder(tmp_path, files):
    a = FeatureCache(tmp_path / "cache", CONFIG)
    a.ensure(files, jobs=1, progress=False)
    b = FeatureCache(tmp_path / "cache", FeatureConfig(n_mels=32))
    b.ensure(files, jobs=1, progress=False)
    assert b.misses == 3 and b.directory != a.directory and b.directory.parent == a.directory.parent
    assert b.load(files[0], "log_mel").shape == (32, 44)
    assert a.load(files[0], "log_mel").shape == (64, 44)


def test_changed_file_content_recomputes_renamed_file_does_not(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    before = np.array(cache.load(files[0], "log_mel"))
    write(files[0], seed=7)  # same length and name, other samples
    st = os.stat(files[0])
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # never rely on a coarse clock
    after = cache.load(files[0], "log_mel")
    assert cache.misses == 2
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, extract(load(files[0], 22050), CONFIG, features=["log_mel"])["log_mel"])
    moved = files[0].rename(files[0].with_name("renamed.wav"))
    cache.ensure([moved], jobs=1, progress=False)
    assert (cache.hits, cache.misses) == (1, 2)  # the content is known: a hit under the new name


def test_same_content_under_two_names_is_computed_once(tmp_path, files):
    twin = tmp_path / "audio" / "twin.wav"
    twin.write_bytes(files[0].read_bytes())
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.ensure([files[0], twin], jobs=1, progress=False)
    assert cache.misses == 1
    np.testing.assert_array_equal(cache.load(twin, "log_mel"), cache.load(files[0], "log_mel"))
    bad, bad_twin = tmp_path / "bad.wav", tmp_path / "bad_twin.wav"
    for path in (bad, bad_twin):
        path.write_bytes(b"not audio")
    assert [p.path for p in cache.ensure([bad, bad_twin], jobs=1, progress=False)] == [bad, bad_twin]


def test_corrupt_and_missing_files_become_problems(tmp_path, files):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    missing = tmp_path / "audio" / "missing.wav"
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    problems = cache.ensure([bad, files[0], missing], jobs=1, progress=False)
    assert [p.path for p in problems] == [bad, missing]  # input order
    assert problems[0].reason.startswith("cannot decode audio") and str(bad) not in problems[0].reason
    assert problems[1].reason == "no such file"
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode audio"):
        cache.load(bad, "log_mel")
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        cache.load(missing, "log_mel")


def test_parallel_jobs_equal_one_job(tmp_path, files):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    serial = FeatureCache(tmp_path / "serial", CONFIG)
    parallel = FeatureCache(tmp_path / "parallel", CONFIG)
    p1 = serial.ensure(files + [bad], jobs=1, progress=False)
    p2 = parallel.ensure(files + [bad], jobs=2, progress=True)  # the bar goes to stderr
    assert p1 == p2 and [p.path for p in p2] == [bad]
    for path in files:
        for kind in FEATURE_KINDS:
            np.testing.assert_array_equal(serial.load(path, kind), parallel.load(path, kind))


def test_clip_time_range_slicing(tmp_path):
    path = write(tmp_path / "long.wav", seed=1, seconds=3.0)
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    whole = cache.load(path, "log_mel")
    step = CONFIG.hop_length / CONFIG.sample_rate
    times = np.arange(whole.shape[1]) * step
    for start, end in ((0.0, None), (0.5, 1.25), (1.0, 2.0), (2.9, None), (0.0, 0.01)):
        clip = Clip(path, "x", "t", start_s=start, end_s=end)
        part = cache.clip_features(clip, "log_mel")
        keep = (times >= start) & (times < (np.inf if end is None else end))
        np.testing.assert_array_equal(part, whole[:, keep])
    # A boundary exactly on a frame centre: that frame starts the range, it does not end the previous one.
    exact = 43 * step
    first = cache.clip_features(Clip(path, "x", "t", 0.0, exact), "log_mel")
    second = cache.clip_features(Clip(path, "x", "t", exact, None), "log_mel")
    assert first.shape[1] == 43 and first.shape[1] + second.shape[1] == whole.shape[1]


def test_pickles_without_its_memory_maps(tmp_path, files):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.load(files[0], "log_mel")
    clone = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 10_000  # no array inside
    np.testing.assert_array_equal(clone.load(files[0], "log_mel"), cache.load(files[0], "log_mel"))
    assert clone.misses == 1  # the counters travel too; the load was a hit
