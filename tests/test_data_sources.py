"""Dataset readers: class folders, GTZAN's layout, CSV manifests with time ranges.

Every file is written here under tmp_path (soundfile): short tones, so that
the whole module runs in well under a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyharmonies.data.sources import Clip, DatasetIndex, open_dataset
from pyharmonies.errors import ParameterError

SR = 8000


def tone(path: Path, seconds: float = 0.5, sr: int = SR, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    sf.write(path, np.stack([y] * channels, axis=1) if channels > 1 else y, sr)
    return path


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    return path


def class_folders(root: Path, per_class: dict[str, int]) -> Path:
    for label, n in per_class.items():
        for i in range(n):
            tone(root / label / f"{label}.{i:05d}.wav")
    return root


# ------------------------------------------------------------------ folders


def test_class_folders_give_one_clip_per_file_labelled_by_folder(tmp_path):
    root = class_folders(tmp_path / "data", {"jazz": 5, "rock": 6})
    tone(root / "rock" / "live" / "encore.flac")  # nested folders belong to their class
    index = open_dataset(root)
    assert index.kind == "folders"
    assert index.labels == ["jazz", "rock"]
    assert index.counts() == {"jazz": 5, "rock": 7}
    assert index.problems == [] and index.warnings == []
    clip = index.clips[0]
    assert clip.label == "jazz" and clip.track == "jazz/jazz.00000.wav" and clip.end_s is None
    assert clip.key == "jazz/jazz.00000.wav#0-end"
    assert len({c.key for c in index.clips}) == len(index.clips)
    assert index.duration(clip) == pytest.approx(0.5)
    assert index.durations() == pytest.approx({"jazz": 2.5, "rock": 3.5})


def test_keys_do_not_depend_on_where_the_dataset_lies(tmp_path):
    a = open_dataset(class_folders(tmp_path / "a", {"x": 2}))
    b = open_dataset(class_folders(tmp_path / "elsewhere" / "b", {"x": 2}))
    assert [c.key for c in a.clips] == [c.key for c in b.clips]


def test_gtzan_layout_is_found_from_its_root_or_from_genres_original(tmp_path):
    genres = class_folders(tmp_path / "gtzan" / "Data" / "genres_original", {"blues": 5, "metal": 5})
    (tmp_path / "gtzan" / "Data" / "images_original" / "blues").mkdir(parents=True)  # GTZAN's PNGs: not audio
    corrupt(genres / "jazz" / "jazz.00054.wav")  # GTZAN's famous unreadable file
    for path in (tmp_path / "gtzan" / "Data", genres):
        index = open_dataset(path)
        assert index.kind == "gtzan"
        assert index.root == genres
        assert index.counts() == {"blues": 5, "metal": 5}
        assert [p.path.name for p in index.problems] == ["jazz.00054.wav"]


def test_corrupt_and_hidden_files_are_reported_or_ignored_never_raised(tmp_path):
    root = class_folders(tmp_path, {"a": 5, "b": 5})
    corrupt(root / "a" / "broken.wav")
    (root / "b" / "empty.wav").write_bytes(b"")
    sf.write(root / "b" / "silent.wav", np.zeros(0, np.float32), SR)  # a valid header, no samples
    corrupt(root / "a" / ".AppleDouble.wav")  # hidden: skipped without a word
    tone(root / "loose.wav")  # no class folder
    (root / "notes").mkdir()
    index = open_dataset(root)
    assert index.counts() == {"a": 5, "b": 5}
    reasons = {p.path.name: p.reason for p in index.problems}
    assert set(reasons) == {"broken.wav", "empty.wav", "silent.wav"}
    assert reasons["broken.wav"].startswith("cannot decode audio")
    assert reasons["silent.wav"] == "the file holds no samples"
    assert any("loose.wav" in w for w in index.warnings)
    assert any("'notes' holds no audio" in w for w in index.warnings)


def test_tiny_classes_are_warned_about(tmp_path):
    index = open_dataset(class_folders(tmp_path, {"big": 5, "tiny": 2}), min_clips_per_class=5)
    assert len(index.warnings) == 1
    assert "'tiny' has only 2 clips (fewer than 5)" in index.warnings[0]
    assert open_dataset(tmp_path, min_clips_per_class=2).warnings == []


def test_a_folder_without_class_folders_is_refused(tmp_path):
    tone(tmp_path / "a.wav")
    with pytest.raises(ParameterError, match="no audio files in class folders"):
        open_dataset(tmp_path)
    with pytest.raises(ParameterError, match="no such folder or manifest"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(ParameterError, match=r"folder of class folders or a \.csv"):
        open_dataset(tmp_path / "list.txt")


# ------------------------------------------------------------------ manifests


def write_manifest(path: Path, text: str) -> Path:
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


def test_manifest_with_time_ranges_tracks_and_extra_columns(tmp_path):
    tone(tmp_path / "audio" / "session.flac", seconds=10.0)
    tone(tmp_path / "audio" / "b.wav")
    manifest = write_manifest(
        tmp_path / "m.csv",
        """
path,label,track_id,start_s,end_s,artist,album
audio/session.flac,reel,s1,0,4,Ann,Live
audio/session.flac,jig,s1,4,7.5,Ann,Live
audio/session.flac,reel,s1,7.5,,Ann,Live
audio/b.wav,jig,,,,Bob,
""",
    )
    index = open_dataset(manifest, min_clips_per_class=1)
    assert index.kind == "manifest" and index.root == tmp_path
    assert index.problems == []
    a, b, c, d = index.clips
    assert (a.start_s, a.end_s, b.start_s, b.end_s, c.start_s, c.end_s) == (0, 4, 4, 7.5, 7.5, None)
    assert a.track == b.track == c.track == "s1"
    assert d.track == "audio/b.wav"  # track_id defaults to the path
    assert d.path == tmp_path / "audio" / "b.wav"
    assert a.extra == (("artist", "Ann"), ("album", "Live"))
    assert a.group("artist") == "Ann" and d.group("album") == "" and a.group("track_id") == "s1"
    assert [x.key for x in index.clips] == [
        "audio/session.flac#0-4",
        "audio/session.flac#4-7.5",
        "audio/session.flac#7.5-end",
        "audio/b.wav#0-end",
    ]
    assert index.counts() == {"jig": 2, "reel": 2}
    assert index.durations() == pytest.approx({"jig": 3.5 + 0.5, "reel": 4 + 2.5})
    with pytest.raises(ParameterError, match=r"cannot group by 'genre'.*available: track, artist, album"):
        a.group("genre")


def test_manifest_problems_missing_corrupt_and_ranges_past_the_end(tmp_path):
    tone(tmp_path / "ok.wav", seconds=2.0)
    corrupt(tmp_path / "bad.wav")
    manifest = write_manifest(
        tmp_path / "m.csv",
        """
path,label,start_s,end_s
ok.wav,a,0,1
ok.wav,a,1,2.04
ok.wav,a,1.5,3
ok.wav,a,2.5,
ok.wav,a,0,1
missing.wav,b,,
bad.wav,b,0,1
bad.wav,b,1,2
""",
    )
    index = open_dataset(manifest, min_clips_per_class=0)
    assert [c.key for c in index.clips] == ["ok.wav#0-1", "ok.wav#1-2.04"]  # 40 ms past the end: rounding
    reasons = [(p.path.name, p.reason) for p in index.problems]
    assert reasons[0] == ("ok.wav", "line 4: range 1.5..3 s is beyond the file's 2.000 s")
    assert reasons[1] == ("ok.wav", "line 5: range 2.5..end s is beyond the file's 2.000 s")
    assert reasons[2] == ("ok.wav", "line 6: the same file and range as line 2; skipped")
    assert reasons[3] == ("missing.wav", "no such file")
    assert reasons[4][0] == "bad.wav" and reasons[4][1].startswith("cannot decode audio")
    assert len(reasons) == 5  # one entry for bad.wav, not one per line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label\na.wav,x\n", r"line 1: missing column\(s\) path"),
        ("path,track\na.wav,x\n", r"line 1: missing column\(s\) label"),
        ("path,label,label\na.wav,x,y\n", r"line 1: repeated column\(s\) label"),
        ("path,label,start_s\na.wav,x,0\nb.wav,x,zero\n", r"line 3: start_s='zero' is not a number"),
        ("path,label,end_s\n\na.wav,x,nan\n", r"line 3: end_s='nan' is not a finite number"),
        ("path,label,start_s,end_s\na.wav,x,3,2\n", r"line 2: end_s=2 is not after start_s=3"),
        ("path,label,start_s\na.wav,x,-1\n", r"line 2: start_s=-1 is negative"),
        ("path,label\na.wav,x\nb.wav\n", r"line 3: 1 fields, but the header has 2"),
        ("path,label\na.wav,\n", r"line 2: empty label"),
        ("path,label\n,x\n", r"line 2: empty path"),
        ("", r"empty manifest"),
    ],
)
def test_malformed_manifests_name_the_line(tmp_path, text, message):
    tone(tmp_path / "a.wav")
    tone(tmp_path / "b.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError, match=message) as err:
        open_dataset(manifest)
    assert str(manifest) in str(err.value)


def test_manifest_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,label,note\n\n"a.wav",x,"two\nlines"\nb.wav,x,ok,extra\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="line 5: 4 fields"):
        open_dataset(manifest)


def test_manifest_with_a_byte_order_mark_and_absolute_paths(tmp_path):
    audio = tone(tmp_path / "elsewhere" / "x.wav")
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"\ufeffPath,Label\n{audio},k\n", encoding="utf-8")
    index = open_dataset(manifest, min_clips_per_class=1)
    assert [c.path for c in index.clips] == [audio]
    assert index.files[audio].sample_rate == SR and index.files[audio].channels == 1


def test_clip_is_hashable_and_group_defaults_to_track():
    clip = Clip(Path("/d/a.wav"), "x", "t1")
    assert clip.group() == "t1"
    assert clip.key == "/d/a.wav#0-end"
    assert len({clip, Clip(Path("/d/a.wav"), "x", "t1")}) == 1
    index = DatasetIndex(Path("/d"), [clip], [], [])
    assert index.labels == ["x"] and index.counts() == {"x": 1}


def test_the_data_package_never_imports_torch_or_librosa():
    # DESIGN.md: a data loader may run anywhere; torch is the training code's. librosa is
    # imported only inside pitch_shift_offline. A fresh interpreter, so other tests cannot hide a leak.
    code = (
        "import sys\n"
        "import pyharmonies.data, pyharmonies.data.augment, pyharmonies.data.synth\n"
        "print(','.join(m for m in ('torch', 'librosa', 'sklearn', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_manifest_with_trailing_commas_from_a_spreadsheet(tmp_path):
    tone(tmp_path / "a.wav")
    manifest = write_manifest(tmp_path / "m.csv", "path,label,,\na.wav,x,,\n")
    index = open_dataset(manifest, min_clips_per_class=1)
    assert [(c.key, c.extra) for c in index.clips] == [("a.wav#0-end", ())]  # unnamed columns are dropped


def test_a_folder_with_a_manifest_is_read_through_it(tmp_path):
    """Clips cut from one recording keep their track_id when the dataset's folder is given (no leak across splits)."""
    import soundfile as sf

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(4):
            sf.write(tmp_path / label / f"song_{i}.wav", np.zeros(2205, dtype=np.float32), 22050)
    rows = ["path,label,track_id"] + [f"{lab}/song_{i}.wav,{lab},{lab}/song" for lab in ("a", "b") for i in range(4)]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    index = open_dataset(tmp_path)
    assert sorted({c.track for c in index.clips}) == ["a/song", "b/song"]
    assert not [w for w in index.warnings if "not in its manifest" in w]
    (tmp_path / "b" / "extra.wav").write_bytes((tmp_path / "b" / "song_0.wav").read_bytes())
    index = open_dataset(tmp_path)
    assert len(index.clips) == 8  # only what the manifest lists...
    assert any("1 audio file(s)" in w and "b/extra.wav" in w for w in index.warnings)  # ...and a word about the rest
    (tmp_path / "b" / "extra.wav").unlink()
    (tmp_path / "manifest.csv").unlink()
    assert len({c.track for c in open_dataset(tmp_path).clips}) == 8
