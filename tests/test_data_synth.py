"""The synthetic corpus: layout, manifest, determinism, and classes a simple model can tell apart."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.data.sources import open_dataset
from pyharmonies.data.synth import CLASS_NAMES, synth_clip, synth_corpus
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig, extract


def test_layout_counts_and_manifest(tmp_path):
    index = synth_corpus(tmp_path / "c", classes=3, clips_per_class=6, seconds=0.5, sample_rate=16000, progress=False)
    assert index.kind == "manifest" and index.problems == []
    assert index.counts() == {"percussion": 6, "plucked": 6, "strings": 6}
    files = sorted(p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*.wav"))
    assert files[:2] == ["percussion/percussion_000.wav", "percussion/percussion_001.wav"] and len(files) == 18
    info = sf.info(str(tmp_path / "c" / "strings" / "strings_005.wav"))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, 8000, 1, "PCM_16")
    with open(tmp_path / "c" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "track_id", "artist"]
    assert rows[0] == {
        "path": "strings/strings_000.wav",
        "label": "strings",
        "track_id": "strings_000",
        "artist": "strings-p0",
    }
    artists = Counter(r["artist"] for r in rows if r["label"] == "plucked")
    assert artists == {"plucked-p0": 2, "plucked-p1": 2, "plucked-p2": 2}  # at least 3 performers per class
    assert {c.group("artist") for c in index.clips} == {r["artist"] for r in rows}
    # The folder layout reads the same corpus (without tracks and artists).
    assert open_dataset(tmp_path / "c", min_clips_per_class=1).counts() == index.counts()


def test_deterministic_for_a_seed_and_prefix_stable(tmp_path):
    a = synth_corpus(tmp_path / "a", classes=2, clips_per_class=3, seconds=0.5, seed=4, progress=False)
    b = synth_corpus(tmp_path / "b", classes=3, clips_per_class=4, seconds=0.5, seed=4, progress=False)
    synth_corpus(tmp_path / "c", classes=2, clips_per_class=3, seconds=0.5, seed=5, progress=False)
    for clip in a.clips:
        rel = clip.relpath
        same = (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        assert same, f"{rel} differs between two corpora of the same seed"
        assert (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / rel).read_bytes()
    assert len(b.clips) == 12


def test_worker_processes_write_the_same_files(tmp_path):
    # 60 s of audio: the smallest corpus that starts workers.
    kwargs = dict(classes=2, clips_per_class=6, seconds=5.0, sample_rate=8000, seed=1, progress=False)
    synth_corpus(tmp_path / "serial", jobs=1, **kwargs)
    synth_corpus(tmp_path / "parallel", jobs=2, **kwargs)
    files = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*.*"))
    assert len(files) == 13
    for rel in files:
        assert (tmp_path / "serial" / rel).read_bytes() == (tmp_path / "parallel" / rel).read_bytes(), rel


def test_every_class_renders_distinct_varied_audio():
    for name in CLASS_NAMES:
        clips = [synth_clip(name, seconds=1.0, sample_rate=22050, index=i, performer=i) for i in range(3)]
        for y in clips:
            assert y.dtype == np.float32 and y.shape == (22050,) and np.isfinite(y).all()
            peak_db = 20 * np.log10(np.abs(y).max())
            assert -14.5 < peak_db < -0.5, name  # level drawn in [-14, -1] dBFS
        assert not np.array_equal(clips[0], clips[1]), name
    np.testing.assert_array_equal(synth_clip("bells", index=2, seconds=0.5), synth_clip("bells", index=2, seconds=0.5))


def test_classes_are_separable_well_above_chance():
    # Nearest centroid on the clip-mean log-mel: a deliberately weak model. Five classes
    # (chance 20 %); it scores about 80 % here, the CNN/LSTM are expected to do far better.
    config = FeatureConfig()
    names = CLASS_NAMES[:5]
    features, labels = [], []
    for c, name in enumerate(names):
        for i in range(12):
            y = synth_clip(name, seconds=2.0, index=i, performer=i % 3)
            features.append(extract(y, config, features=["log_mel"])["log_mel"].mean(axis=1))
            labels.append(c)
    x, y = np.array(features), np.array(labels)
    train = np.arange(len(y)) % 2 == 0
    centroids = np.array([x[train & (y == c)].mean(axis=0) for c in range(len(names))])
    predicted = ((x[~train][:, None, :] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    accuracy = float((predicted == y[~train]).mean())
    assert accuracy >= 0.6, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.20)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(classes=0), "classes must be an integer from 1 to 12"),
        (dict(classes=13), "classes must be an integer from 1 to 12"),
        (dict(clips_per_class=0), "clips_per_class must be an integer >= 1"),
        (dict(seconds=0), r"seconds must be in \(0, 600\]"),
        (dict(sample_rate=4000), "sample_rate must be an integer from 8000"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        synth_corpus(tmp_path, progress=False, **kwargs)
    with pytest.raises(ParameterError, match="unknown synthetic class 'jazz'"):
        synth_clip("jazz")
