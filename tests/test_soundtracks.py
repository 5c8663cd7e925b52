"""``harmonies dataset soundtracks``: the naming rules, the cutting, and whole builds from tiny .debs.

The .debs are made here with ``dpkg-deb --build`` from a few seconds of
generated Ogg Vorbis; the network is never used.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.commands.dataset import SOUNDTRACK_PACKAGES
from pyharmonies.data import debs
from pyharmonies.data.soundtracks import (
    PACKAGES,
    Settings,
    SkippedFile,
    build_soundtracks,
    clip_starts,
    is_music_file,
    label_for,
    rms_dbfs,
    spread_select,
    track_group,
)
from pyharmonies.errors import ParameterError

needs_dpkg = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb builds and unpacks the test .debs (Debian and Ubuntu have it)"
)

# Small clips at a low rate keep each build well under a second.
TINY = Settings(sample_rate=8000, clip_seconds=1.0, skip_head=0.5, skip_tail=0.5, min_track_seconds=3.0)
SOURCE_SR = 16000  # the test Oggs are written at this rate, so the build really resamples

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tinyrock

Files: *
Copyright: 2020 Someone
License: GPL-2+
 This program is free software.

Files: music/*
Copyright: 2020 A Composer
License: CC-BY-SA-3.0
 Long text.

Files: debian/*
License: GPL-2+
"""

PLAIN = "This package was debianized by someone.\n\nThe music is in the public domain.\n"


# ---------------------------------------------------------------- naming rules


@pytest.mark.parametrize(
    ("filename", "group"),
    [
        ("airship_2.ogg", "airship"),
        ("airship_remix.ogg", "airship"),
        ("voc-daytime2.ogg", "voc_daytime"),
        ("cave_old.ogg", "cave"),
        ("ghostforest_map.ogg", "ghostforest"),
        ("halloween_1.ogg", "halloween"),
        ("Olympics.ogg", "olympics"),
        ("olympics_sd.ogg", "olympics"),
        ("Olivier_Militon.-.Apnee2.ogg", "olivier_militon_apnee"),
        ("@CrushedIceCocktail.ogg", "crushedicecocktail"),
        ("theme_v2.ogg", "theme"),
        ("song-remix_2.ogg", "song"),  # markers are stripped repeatedly
        ("sdmusic.ogg", "sdmusic"),  # "sd" only as a separate word
        ("music_indian.ogg", "music_indian"),
        ("race1-jt.ogg", "race1_jt"),  # digits inside the name stay
        ("1942.ogg", "1942"),  # a name of digits only is kept whole
    ],
)
def test_track_group_merges_versions_of_one_piece(filename: str, group: str) -> None:
    assert track_group(filename) == group


def test_track_group_aliases_apply_to_their_package_only() -> None:
    assert track_group("beneath_the_rabbit_hole.ogg", package="supertux-data") == "forest"
    assert track_group("beneath_the_rabbit_hole.ogg", package="other-data") == "beneath_the_rabbit_hole"


@pytest.mark.parametrize(
    ("relpath", "music"),
    [
        ("usr/share/games/supertux2/music/forest/forest.ogg", True),
        ("usr/share/games/hedgewars/Data/Music/Art.ogg", True),
        ("usr/share/games/xmoto/Textures/Musics/menu.ogg", True),
        ("usr/share/games/openclonk/Music.ocg/Cavern.ogg", True),
        ("usr/share/games/warmux/music/ingame/circux.OGG", True),
        ("usr/share/games/warmux/sound/default/misc/frog_music.ogg", False),  # a sound effect
        ("usr/share/games/hedgewars/Data/Sounds/voices/Pirate/Boom.ogg", False),
        ("usr/share/games/etr/music/readme.txt", False),
        ("usr/share/games/musicbox/song.ogg", False),  # "musicbox" is not a music folder
        ("music.ogg", False),
    ],
)
def test_is_music_file(relpath: str, music: bool) -> None:
    assert is_music_file(relpath) is music


def test_labels_and_the_package_list() -> None:
    assert [label_for(p) for p in PACKAGES] == [
        "supertux", "hedgewars", "freedroidrpg", "warmux", "flare", "megaglest", "openclonk", "extremetuxracer",
        "xmoto",
    ]  # fmt: skip
    assert SOUNDTRACK_PACKAGES == PACKAGES  # the CLI's copy (kept for a light --help) matches


def test_clip_starts_skip_both_ends_and_fit_whole_clips() -> None:
    sr = 100
    # 60 s, 5 s off each end, 10 s clips: 5, 15, 25, 35, 45 (the last ends at 55 = 60 - 5 exactly)
    assert clip_starts(60 * sr, sample_rate=sr, clip_seconds=10, skip_head=5, skip_tail=5) == [
        500, 1500, 2500, 3500, 4500,
    ]  # fmt: skip
    assert clip_starts(60 * sr - 1, sample_rate=sr, clip_seconds=10, skip_head=5, skip_tail=5)[-1] == 3500
    assert clip_starts(15 * sr, sample_rate=sr, clip_seconds=10, skip_head=5, skip_tail=5) == []


def test_rms_dbfs() -> None:
    # A full-scale sine has RMS 1/sqrt(2): -3.0103 dB; the sum over whole periods makes it exact to rounding.
    t = np.arange(8000) / 8000
    assert rms_dbfs(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.0103, abs=1e-4)
    assert rms_dbfs(np.zeros(10)) == float("-inf")


def test_spread_select_takes_tracks_in_turn() -> None:
    clips = [list(range(10)), [0], [0, 1, 2]]
    keys = ["a", "b", "c"]
    chosen = spread_select(clips, keys, 5)
    assert [len(c) for c in chosen] == [2, 1, 2]  # round robin: a b c, then a c
    assert chosen == spread_select(clips, keys, 5)  # the same every time
    assert all(c <= set(avail) for c, avail in zip(chosen, clips))
    assert spread_select(clips, keys, None) == [set(c) for c in clips]
    assert spread_select(clips, keys, 100) == [set(c) for c in clips]
    # The first pick of a long track is not always its first clip: places are spread over the track.
    firsts = {min(spread_select([list(range(50))], [f"t{i}"], 1)[0]) for i in range(20)}
    assert len(firsts) > 5


def test_licences() -> None:
    assert debs.licences(DEP5) == ["GPL-2+", "CC-BY-SA-3.0"]
    assert debs.licences(PLAIN) == ["This package was debianized by someone.", "The music is in the public domain."]


# ---------------------------------------------------------------- tiny .debs


def _tone(seconds: float, freq: float, *, quiet: tuple[float, float] | None = None, seed: int = 0) -> np.ndarray:
    """A loud two-sine tone, stereo; from ``quiet[0]`` to ``quiet[1]`` s only noise at -70 dBFS RMS."""
    t = np.arange(int(seconds * SOURCE_SR)) / SOURCE_SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 3.1 * freq * t)
    if quiet is not None:
        inside = (t >= quiet[0]) & (t < quiet[1])
        # Near-silent, not digital silence: the -50 dBFS floor must do the dropping, not an exact zero.
        y[inside] = 10 ** (-70 / 20) * np.random.default_rng(seed).standard_normal(int(inside.sum()))
    return np.stack([y, 0.8 * y], axis=1)  # stereo: the build mixes it down


def _make_deb(folder: Path, package: str, files: dict[str, np.ndarray | bytes], copyright_text: str) -> Path:
    root = folder / package
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1.2-3\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: test soundtrack\n",
        encoding="utf-8",
    )
    doc = root / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text, encoding="utf-8")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            sf.write(path, content, SOURCE_SR, format="OGG", subtype="VORBIS")
    deb = folder / f"{package}_1.2-3_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(root)
    return deb


@pytest.fixture(scope="module")
def deb_dir(tmp_path_factory: pytest.TempPathFactory, seed: int) -> Path:
    folder = tmp_path_factory.mktemp("debs")
    music = "usr/share/games/tinyrock/music"
    _make_deb(folder, "tinyrock-data", {
        f"{music}/song.ogg": _tone(5.0, 220),  # 4 clips: 0.5, 1.5, 2.5, 3.5 s
        f"{music}/extra/song_remix.ogg": _tone(5.0, 330),  # 4 clips, and the same piece as song.ogg
        f"{music}/jingle.ogg": _tone(2.0, 440),  # under the 3 s floor
        f"{music}/broken.ogg": b"OggS" + bytes(range(256)) * 8,  # not a real Ogg stream
        "usr/share/games/tinyrock/sounds/boom.ogg": _tone(5.0, 110),  # a sound effect folder: never read
    }, DEP5)  # fmt: skip
    # 6 s, near-silent from 2.3 to 4.7 s: of the clips at 0.5, 1.5, 2.5, 3.5, 4.5 s, those at 2.5 and 3.5 s
    # are near-silent (0.2 s of margin each side, for Vorbis' and the resampler's smearing of the edges).
    _make_deb(folder, "tinyjazz-game", {
        "usr/share/games/tinyjazz/Music.ocg/Tune.ogg": _tone(6.0, 262, quiet=(2.3, 4.7), seed=seed),
    }, PLAIN)  # fmt: skip
    return folder


def _build(out: Path, deb_dir: Path, **kwargs) -> tuple[Path, list[SkippedFile]]:
    skipped: list[SkippedFile] = []
    kwargs.setdefault("settings", TINY)
    manifest = build_soundtracks(out, packages=["tinyrock-data", "tinyjazz-game"], deb_dir=deb_dir, progress=False,
                                 on_skip=skipped.append, **kwargs)  # fmt: skip
    return manifest, skipped


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_dpkg
def test_build_writes_clips_manifest_and_provenance(deb_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    manifest, skipped = _build(out, deb_dir, jobs=1)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = [tuple(r) for r in csv.reader(f)]
    assert rows[0] == ("path", "label", "track_id")
    assert rows[1:] == [
        ("tinyjazz/tune_000.wav", "tinyjazz", "tinyjazz/tune"),
        ("tinyjazz/tune_001.wav", "tinyjazz", "tinyjazz/tune"),
        ("tinyjazz/tune_004.wav", "tinyjazz", "tinyjazz/tune"),  # 002 and 003 were silent
        *[(f"tinyrock/song_{k:03d}.wav", "tinyrock", "tinyrock/song") for k in range(4)],
        *[(f"tinyrock/song_remix_{k:03d}.wav", "tinyrock", "tinyrock/song") for k in range(4)],
    ]
    for rel, _, _ in rows[1:]:
        info = sf.info(str(out / rel))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 8000, "PCM_16")
    clip = sf.read(str(out / "tinyjazz/tune_000.wav"))[0]
    assert rms_dbfs(clip) > -20  # the tone, at its own level (0.3 + 0.1 sines, stereo mixed down: about -11 dB)

    assert sorted((s.package, s.relpath.rsplit("/", 1)[-1], s.short) for s in skipped) == [
        ("tinyrock-data", "broken.ogg", False),
        ("tinyrock-data", "jingle.ogg", True),
    ]
    broken = next(s for s in skipped if s.relpath.endswith("broken.ogg"))
    assert "cannot decode" in broken.reason and "\n" not in broken.reason

    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert prov["settings"]["clip_seconds"] == 1.0 and prov["settings"]["sample_rate"] == 8000
    jazz, rock = prov["packages"]  # sorted by label
    deb = deb_dir / "tinyrock-data_1.2-3_all.deb"
    assert rock["package"] == "tinyrock-data" and rock["label"] == "tinyrock" and rock["version"] == "1.2-3"
    assert rock["deb"] == deb.name and rock["sha256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert rock["licences"] == ["GPL-2+", "CC-BY-SA-3.0"]
    assert (rock["music_files"], rock["tracks_used"], rock["track_ids"], rock["clips"]) == (4, 2, 1, 8)
    assert rock["seconds_used"] == 8.0
    assert {s["file"].rsplit("/", 1)[-1] for s in rock["skipped"]} == {"broken.ogg", "jingle.ogg"}
    assert jazz["licences"] == ["This package was debianized by someone.", "The music is in the public domain."]
    assert jazz["tracks"] == [{"file": "usr/share/games/tinyjazz/Music.ocg/Tune.ogg", "track_id": "tinyjazz/tune",
                               "seconds": 6.0, "clips_written": 3, "clips_silent": 2}]  # fmt: skip


@needs_dpkg
def test_build_is_deterministic_whatever_the_jobs(deb_dir: Path, tmp_path: Path) -> None:
    _build(tmp_path / "a", deb_dir, jobs=1)
    _build(tmp_path / "b", deb_dir, jobs=3)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(a) == 13  # 11 clips, the manifest, the provenance: no scratch or temporary file left
    assert a == b


@needs_dpkg
def test_max_clips_per_class_spreads_over_tracks(deb_dir: Path, tmp_path: Path) -> None:
    limited = Settings(**{**TINY.__dict__, "max_clips_per_class": 3})
    manifest, _ = _build(tmp_path / "few", deb_dir, settings=limited)
    with open(manifest, newline="", encoding="utf-8") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    rock = [p for p in paths if p.startswith("tinyrock/")]
    assert len(rock) == 3 and len([p for p in paths if p.startswith("tinyjazz/")]) == 3
    assert sorted(sum(p.startswith(f"tinyrock/{t}_0") for p in rock) for t in ("song", "song_remix")) == [1, 2]


@needs_dpkg
def test_missing_deb_and_unlisted_packages_are_refused(deb_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"no \.deb of nosuch-data"):
        build_soundtracks(tmp_path / "x", packages=["tinyrock-data", "nosuch-data"], deb_dir=deb_dir, progress=False)
    # Without --deb-dir only the nine are fetched: refused before anything is downloaded.
    with pytest.raises(ParameterError, match="kept aside"):
        build_soundtracks(tmp_path / "x", packages=["tinyrock-data"], cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()


def test_download_errors_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no apt-get anywhere
    with pytest.raises(ParameterError, match="apt-get not found.*--deb-dir"):
        debs.download_deb("xmoto-data", tmp_path / "cache")
    # An apt-get whose package lists are empty, as on a fresh container.
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package xmoto-data' >&2\nexit 100\n", encoding="utf-8")
    fake.chmod(0o755)
    hint = r"apt-get download xmoto-data failed: E: Unable to locate .*apt-get update"
    with pytest.raises(ParameterError, match=hint):
        debs.download_deb("xmoto-data", tmp_path / "cache")


# ---------------------------------------------------------------- the command


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_help() -> None:
    code, stdout, _ = invoke("dataset", "soundtracks", "--help")
    assert code == 0
    for mention in ("OUT", "--packages", "--clip-seconds", "--max-clips-per-class", "--deb-dir", "download nothing",
                    "apt-get download", "apt-get update", "manifest.csv", "provenance.json", "Examples"):  # fmt: skip
        assert mention in stdout, mention


def test_cli_refuses_unlisted_packages_without_deb_dir(tmp_path: Path) -> None:
    code, _, stderr = invoke("dataset", "soundtracks", tmp_path / "o", "--packages", "supertux-data,other-data", "-q")
    assert code == 2 and "other-data: only these packages are downloaded" in stderr


@needs_dpkg
def test_cli_builds_from_deb_dir(deb_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    code, stdout, stderr = invoke(
        "dataset", "soundtracks", out, "--deb-dir", deb_dir, "--packages", "tinyrock-data,tinyjazz-game",
        "--clip-seconds", 1, "--skip-seconds", 0.5, "--min-track-seconds", 3, "--sample-rate", 8000, "-q", "-j", 2,
    )  # fmt: skip
    assert code == 0, stderr
    assert "skipped tinyrock-data: usr/share/games/tinyrock/music/broken.ogg: cannot decode" in stderr
    assert "jingle" not in stderr  # short files are counted, not listed
    lines = stdout.splitlines()
    assert lines[0].split() == ["class", "package", "version", "clips", "tracks", "track_ids", "hours", "MB"]
    assert lines[2].split()[:6] == ["tinyjazz", "tinyjazz-game", "1.2-3", "3", "1", "1"]
    assert lines[3].split()[:6] == ["tinyrock", "tinyrock-data", "1.2-3", "8", "2", "1"]
    assert lines[4].split()[:4] == ["total", "11", "3", "2"]
    assert "wrote 11 clips (0:00:11 of audio" in stdout and "1 music file under the duration floor" in stdout
    assert os.path.exists(out / "manifest.csv") and os.path.exists(out / "provenance.json")
