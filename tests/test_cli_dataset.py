"""``harmonies dataset synth`` and ``harmonies dataset info``, through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.commands.dataset import SYNTH_CLASSES
from pyharmonies.data.synth import CLASS_NAMES


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "corpus"
    code, stdout, stderr = invoke(
        "dataset", "synth", out, "--classes", 3, "--clips-per-class", 4, "--seconds", 0.5, "--seed", 2, "--quiet"
    )
    assert code == 0, stderr
    assert f"wrote 12 clips (3 classes x 4, 0.5 s at 22050 Hz) to {out}" in stdout
    return out


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["dataset", "--help"], ["synth", "info", "path,label[,track_id][,start_s,end_s]", "Examples"]),
        (
            ["dataset", "synth", "--help"],
            [
                "OUT",
                "--classes",
                "--clips-per-class",
                "--seconds",
                "--seed",
                "--sample-rate",
                "--force",
                "manifest.csv",
            ],
        ),
        (["dataset", "info", "--help"], ["DIR_OR_CSV", "--group-by", "--min-clips", "genres_original", "Examples"]),
    ],
)
def test_help(args, mentions):
    code, out, _ = invoke(*args)
    assert code == 0
    flat = " ".join(out.split())
    for mention in mentions:
        assert mention in flat, f"`harmonies {' '.join(args)}` does not mention {mention}"


def test_help_lists_the_synthetic_classes_in_order():
    # Written out in the command module so that --help imports no numpy; kept equal here.
    assert SYNTH_CLASSES == CLASS_NAMES
    _, out, _ = invoke("dataset", "synth", "--help")
    assert ", ".join(CLASS_NAMES[:4]) in " ".join(out.split())


def test_synth_writes_the_corpus(corpus):
    assert sorted(p.name for p in corpus.iterdir()) == ["manifest.csv", "percussion", "plucked", "strings"]
    assert len(list(corpus.rglob("*.wav"))) == 12


def test_synth_refuses_a_non_empty_folder_without_force(corpus, tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    code, _, stderr = invoke(
        "dataset", "synth", tmp_path, "--classes", 1, "--clips-per-class", 1, "--seconds", 0.1, "-q"
    )
    assert code == 2 and "is not empty" in stderr and "--force" in stderr
    code, _, _ = invoke(
        "dataset", "synth", tmp_path, "--classes", 1, "--clips-per-class", 1, "--seconds", 0.1, "-q", "--force"
    )
    assert code == 0 and (tmp_path / "old.txt").read_text() == "keep me"
    code, _, stderr = invoke("dataset", "synth", tmp_path / "x", "--classes", 13)
    assert code == 2 and "13 is not in the range 1<=x<=12" in stderr


def test_info_on_a_manifest_by_artist(corpus):
    code, out, _ = invoke("dataset", "info", corpus / "manifest.csv", "--group-by", "artist", "--min-clips", 4)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{corpus / 'manifest.csv'}: CSV manifest, paths relative to {corpus}"
    assert lines[1].split() == ["class", "clips", "artists", "seconds", "h:mm:ss"]
    assert lines[3].split() == ["percussion", "4", "3", "2.0", "0:00:02"]
    assert lines[6].split() == ["total", "12", "9", "6.0", "0:00:06"]
    assert "sample rates: 22050 Hz (12 files)" in out and "channels: mono (12)" in out
    assert "warning" not in out and "unusable" not in out


def test_info_lists_unusable_files_and_tiny_classes_and_exits_0(corpus, tmp_path):
    root = tmp_path / "data"
    for label in ("percussion", "strings"):
        (root / label).mkdir(parents=True)
        for wav in sorted((corpus / label).glob("*.wav"))[: 3 if label == "strings" else 4]:
            (root / label / wav.name).write_bytes(wav.read_bytes())
    (root / "strings" / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    code, out, _ = invoke("dataset", "info", root, "--min-clips", 4)
    assert code == 0
    assert "class folders" in out.splitlines()[0]
    assert "unusable (1), skipped:\n  strings/broken.wav: cannot decode audio" in out
    assert "warning: class 'strings' has only 3 clips (fewer than 4)" in out


def test_info_errors_are_usage_errors(corpus, tmp_path):
    code, _, stderr = invoke("dataset", "info", corpus / "manifest.csv", "--group-by", "genre")
    assert code == 2 and "cannot group by 'genre'" in stderr and "available: track, artist" in stderr
    code, _, stderr = invoke("dataset", "info", tmp_path / "nothing")
    assert code == 2 and "does not exist" in stderr
    bad = tmp_path / "m.csv"
    bad.write_text("path,label,start_s\na.wav,x,soon\n")
    code, _, stderr = invoke("dataset", "info", bad)
    assert code == 2 and "line 2: start_s='soon' is not a number" in stderr


def test_pitch_shift_writes_copies_that_keep_label_and_track(corpus, tmp_path):
    from pyharmonies.data.sources import open_dataset

    out = tmp_path / "shifted"
    code, stdout, stderr = invoke("dataset", "pitch-shift", corpus / "manifest.csv", out, "--semitones", "-2,3", "--quiet")
    assert code == 0, stderr
    original = open_dataset(corpus / "manifest.csv")
    shifted = open_dataset(out / "manifest.csv")
    assert not shifted.problems
    assert len(shifted.clips) == 3 * len(original.clips)  # the originals and two copies each
    by_track: dict[str, set[str]] = {}
    for clip in shifted.clips:
        by_track.setdefault(clip.track, set()).add(clip.label)
    assert all(len(labels) == 1 for labels in by_track.values())
    assert {c.track for c in shifted.clips} == {c.track for c in original.clips}
    assert (out / original.clips[0].label / f"{original.clips[0].path.stem}_p+3.wav").exists()


def test_pitch_shift_refuses_a_bad_list(corpus, tmp_path):
    code, _, stderr = invoke("dataset", "pitch-shift", corpus, tmp_path / "x", "--semitones", "up")
    assert code == 2 and "--semitones" in stderr
