"""The instrument corpus (``harmonies dataset instruments``): tunes from music21's
corpus rendered by fluidsynth with a General-MIDI SoundFont.

One corpus is built per session and read by most tests: 36 tunes x 6 families
x 3 s (216 files, about 15 s on 2 cores). Fewer tunes do not make a fair
learning test: each family has 3 to 5 General-MIDI programs, and with a dozen
tunes the training split holds only two or three clips of each program, so
the held-out tunes' accuracy swings with which programs they drew (50 to
80 % with 12 to 20 tunes; 85 to 95 % with 36, over split seeds).

Needs fluidsynth, fluid-soundfont-gm and music21: ``make install`` installs
them (Makefile APT_PACKAGES, the ``demo`` extra), and these tests do not skip
without them.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.commands.dataset import INSTRUMENT_FAMILIES
from pyharmonies.data import instruments, render
from pyharmonies.data.instruments import (
    FAMILIES,
    FAMILY_NAMES,
    PEAK_DBFS,
    TARGET_RMS_DBFS,
    make_instrument_corpus,
    perform,
    performance_midi,
    select_tunes,
)
from pyharmonies.data.render import SOUNDFONT_ENV, find_soundfont, midi_file
from pyharmonies.errors import ParameterError

TUNES, SECONDS, SR = 36, 3.0, 22050
INSTALL = "apt-get install fluidsynth fluid-soundfont-gm"

#: A tiny MobileNetV2 (3 stages, 64 last channels), as in test_runtime: seconds per epoch on CPU.
TINY_CNN = {"blocks": ((1, 16, 1, 1), (4, 24, 1, 2), (4, 32, 1, 2)), "last_channels": 64}


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_manifest(manifest: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def hide_package(monkeypatch, name: str) -> None:
    """Make ``importlib.util.find_spec(name)`` answer None, as if the package were not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a, **k: None if n == name else real(n, *a, **k))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("instruments") / "corpus"
    manifest = make_instrument_corpus(root, tunes=TUNES, seconds=SECONDS, seed=0, progress=False)
    assert manifest == root / "manifest.csv"
    return root


# ---------------------------------------------------------------- the corpus


def test_manifest_lists_every_file_with_family_and_tune(corpus):
    header, rows = read_manifest(corpus / "manifest.csv")
    assert header == ["path", "label", "track_id"]
    assert len(rows) == TUNES * len(FAMILY_NAMES)
    assert {p.relative_to(corpus).as_posix() for p in corpus.rglob("*.wav")} == {r["path"] for r in rows}
    assert {r["label"] for r in rows} == set(FAMILY_NAMES)
    tunes_of = {family: set() for family in FAMILY_NAMES}
    for r in rows:
        family, name = r["path"].split("/")
        assert family == r["label"] and name == f"{r['track_id']}.wav"
        tunes_of[family].add(r["track_id"])
    first = tunes_of[FAMILY_NAMES[0]]
    assert len(first) == TUNES
    assert all(tunes == first for tunes in tunes_of.values())  # every family plays every tune
    assert {t.split("-")[0] for t in first} == {"essen", "oneill", "ryans"}  # all three collections


def test_audio_is_mono_16_bit_exact_length_levelled_and_not_clipped(corpus):
    n = int(SECONDS * SR)
    peak_limit = 10 ** (PEAK_DBFS / 20) * 32767 + 1  # +1: rounding to the nearest integer sample
    for path in sorted(corpus.rglob("*.wav")):
        info = sf.info(path)
        assert (info.channels, info.samplerate, info.subtype, info.frames) == (1, SR, "PCM_16", n), path
        y, _ = sf.read(path, dtype="int16")
        x = y / 32768.0
        rms_db = 20 * np.log10(np.sqrt(np.mean(x**2)))
        # Levelled to -20 dBFS RMS unless the peak would pass -1 dBFS; 0.05 dB: 16-bit rounding.
        assert -40 < rms_db <= TARGET_RMS_DBFS + 0.05, (path, rms_db)
        assert np.max(np.abs(y.astype(np.int32))) <= peak_limit, path
        # The melody repeats to the end: the last half second still sounds (-50 dBFS: a reverb tail at least).
        tail = x[-SR // 2 :]
        assert 20 * np.log10(np.sqrt(np.mean(tail**2)) + 1e-12) > -50, path


def test_same_arguments_give_the_same_bytes(corpus, tmp_path):
    # A smaller build (fewer tunes and families, one job) must reproduce the matching files
    # byte for byte: rendering is deterministic, and a file depends only on its tune, family and seed.
    families = ["strings", "piano", "pipe"]
    manifest = make_instrument_corpus(tmp_path, tunes=4, seconds=SECONDS, families=families, seed=0,
                                      progress=False, jobs=1)  # fmt: skip
    _, rows = read_manifest(manifest)
    assert len(rows) == 4 * len(families) and [r["label"] for r in rows[::4]] == families
    for r in rows:
        assert (tmp_path / r["path"]).read_bytes() == (corpus / r["path"]).read_bytes(), r["path"]


def test_another_seed_gives_another_performance():
    tune = select_tunes(1)[0]
    assert perform(tune, "strings", seed=0) == perform(tune, "strings", seed=0)
    assert perform(tune, "strings", seed=0) != perform(tune, "strings", seed=1)


def midi_events(data: bytes) -> list[tuple[int, bytes]]:
    """(absolute tick, message) of a format-0 file as :func:`midi_file` writes it (no running status)."""
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    body, i, tick, out = data[22:], 0, 0, []
    while i < len(body):
        delta = 0
        while True:
            delta = (delta << 7) | (body[i] & 0x7F)
            i += 1
            if not body[i - 1] & 0x80:
                break
        tick += delta
        if body[i] == 0xFF:
            size = 3 + body[i + 2]  # FF type len data (len < 128 here)
        else:
            size = 2 if body[i] & 0xF0 in (0xC0, 0xD0) else 3
        out.append((tick, body[i : i + size]))
        i += size
    return out


def test_performances_stay_in_the_instruments_range_and_release_every_note():
    seconds = 3.0
    for tune in select_tunes(6):
        for family in FAMILY_NAMES:
            p = perform(tune, family, seed=0)
            assert p.transpose % 12 == 0 and p.instrument in FAMILIES[family]
            events = midi_events(performance_midi(tune, p, seconds=seconds))
            assert events[-1][1] == b"\xff\x2f\x00"  # end of track
            assert (0, bytes([0xC0, p.instrument.program])) in events
            sounding: set[int] = set()
            keys = []
            for _, msg in events:
                if msg[0] == 0x90:
                    assert not sounding, "two notes at once"  # a monophonic melody
                    sounding.add(msg[1])
                    keys.append(msg[1])
                elif msg[0] == 0x80:
                    sounding.discard(msg[1])
            assert not sounding, "a note is never released (fluidsynth would render forever)"
            # Inside the instrument's range, give or take a fifth where no octave fits the whole tune.
            assert p.instrument.low - 6 <= min(keys) and max(keys) <= p.instrument.high + 6, (tune.tune_id, family)
            assert len(keys) >= seconds * 1.5  # the melody fills the clip (at 2.5 notes a second or more)


def test_midi_file_encodes_delta_times_as_variable_length_quantities():
    data = midi_file([(200, b"\x90\x3c\x40"), (0, b"\xc0\x28")], end_tick=16384)
    assert data[:14] == b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"  # format 0, one track, 480 per quarter
    body = data[22:]
    assert data[14:18] == b"MTrk" and int.from_bytes(data[18:22], "big") == len(body)
    tempo = b"\x00\xff\x51\x03\x07\xa1\x20"  # 500000 us per quarter
    # 200 = 0x81 0x48; 16384 - 200 = 16184 = 0x80 0xfe 0x38; events sorted by tick.
    assert body == tempo + b"\x00\xc0\x28" + b"\x81\x48\x90\x3c\x40" + b"\xfe\x38\xff\x2f\x00"
    with pytest.raises(ParameterError, match="end_tick"):
        midi_file([(10, b"\x90\x3c\x40")], end_tick=5)


def test_the_melody_stays_unheard_in_training_and_a_cnn_learns_the_families(corpus, tmp_path):
    # About 10 s of training on 2 cores (a tiny MobileNetV2, 1 s windows every 0.5 s, 8 epochs).
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    cfg = TrainConfig(
        data=str(corpus / "manifest.csv"), out=str(tmp_path / "run"), cache=str(tmp_path / "cache"), model="cnn",
        window=1.0, window_hop=0.5, epochs=8, patience=8, lr=5e-3, batch_size=32, seed=0, augment=False, mixup=0.0,
        features={"n_mels": 32}, model_options=TINY_CNN, backbone="none", members=1,
    )  # fmt: skip
    run = train_run(cfg, progress=False)

    _, rows = read_manifest(corpus / "manifest.csv")
    track = {r["path"]: r["track_id"] for r in rows}
    saved = json.loads((run / "splits.json").read_text())["splits"]
    split_of: dict[str, str] = {}
    for split, keys in saved.items():
        for key in keys:
            tune = track[key.split("#")[0]]
            assert split_of.setdefault(tune, split) == split, f"tune {tune} in {split_of[tune]} and {split}"
    test_tunes = {t for t, s in split_of.items() if s == "test"}
    assert len(test_tunes) >= 3

    m = json.loads((run / "metrics.json").read_text())
    test = m["splits"]["test"]
    assert test["clip"]["n"] == len(test_tunes) * len(FAMILY_NAMES)  # each held-out tune, played by every family
    chance = 1 / len(FAMILY_NAMES)
    print(f"held-out tunes: window accuracy {test['window']['accuracy']:.3f}, clip {test['clip']['accuracy']:.3f} "
          f"(chance {chance:.3f})")  # fmt: skip
    # Measured 0.85 to 0.94 over split seeds 0-3; 0.6 is 3.6 x chance.
    assert test["window"]["accuracy"] >= 0.6
    assert test["clip"]["accuracy"] >= 0.6


# ---------------------------------------------------------------- faults


def test_an_unparseable_or_unusable_tune_is_reported_and_skipped(monkeypatch):
    real = instruments.tune_candidates
    bad = [
        ("bad-1", "broken.abc X:1", "X:1\nT:broken\nM:3/4\nL:1/8\nK:C\n|: ((( ]]] [[[ zz :|\n"),
        ("short-1", "short.abc X:1", "X:1\nT:short\nM:4/4\nL:1/4\nK:C\nCDEF|\n"),
    ]
    monkeypatch.setattr(instruments, "tune_candidates", lambda corpus=None: bad + real(corpus))
    skipped = []
    tunes = select_tunes(2, on_skip=skipped.append)
    assert [t.tune_id for t in tunes] == [t[0] for t in real()[:2]]
    assert [(s.source, s.unparseable) for s in skipped] == [("broken.abc X:1", True), ("short.abc X:1", False)]
    assert "music21 could not parse it" in skipped[0].reason and "fewer than" in skipped[1].reason


def test_cli_reports_skipped_tunes_and_the_totals(monkeypatch, tmp_path):
    real = instruments.tune_candidates
    broken = ("bad-1", "broken.abc X:1", "X:1\nT:broken\nL:0/0\nK:C\nCDEF|\n")
    monkeypatch.setattr(instruments, "tune_candidates", lambda corpus=None: [broken] + real(corpus))
    out = tmp_path / "corpus"
    code, stdout, stderr = invoke("dataset", "instruments", out, "--tunes", 2, "--seconds", 1, "--families",
                                  "piano,pipe", "-q")  # fmt: skip
    assert code == 0, stderr
    assert "wrote 4 files (2 families x 2 tunes, 1 s each" in stdout and "MB) to" in stdout
    assert "skipped 1 tune (1 unparseable, 0 not a usable melody)" in stdout
    assert "skipped broken.abc X:1: music21 could not parse it" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "piano", "pipe"]
    code, _, stderr = invoke("dataset", "instruments", out, "--tunes", 1, "--seconds", 1, "-q")
    assert code == 2 and "is not empty" in stderr and "--force" in stderr


def test_a_missing_soundfont_says_what_to_install(tmp_path, monkeypatch):
    missing = tmp_path / "missing.sf2"
    with pytest.raises(ParameterError, match=INSTALL) as err:
        make_instrument_corpus(tmp_path / "out", tunes=1, seconds=1, soundfont=missing, progress=False)
    assert str(missing) in str(err.value)
    monkeypatch.setenv(SOUNDFONT_ENV, str(missing))
    with pytest.raises(ParameterError, match=rf"\${SOUNDFONT_ENV}.*{INSTALL}"):
        find_soundfont()
    monkeypatch.delenv(SOUNDFONT_ENV)
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", (missing,))
    hide_package(monkeypatch, "pretty_midi")  # whose TimGM6mb.sf2 would be found
    with pytest.raises(ParameterError, match=f"no General-MIDI SoundFont found.*{INSTALL}"):
        find_soundfont()
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(ParameterError, match="not a SoundFont 2 file"):
        find_soundfont(junk)
    code, _, stderr = invoke("dataset", "instruments", tmp_path / "cli", "--soundfont", missing, "-q")
    assert code == 1 and INSTALL in stderr and str(missing) in stderr


def test_a_missing_renderer_or_music21_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth here
    with pytest.raises(ParameterError, match=f"fluidsynth command was not found.*{INSTALL}"):
        make_instrument_corpus(tmp_path / "out", tunes=1, seconds=1, progress=False)
    monkeypatch.undo()
    hide_package(monkeypatch, "music21")
    with pytest.raises(ParameterError, match=r"pip install 'harmonies\[demo\]'"):
        select_tunes(1)


def test_an_unknown_family_lists_the_valid_ones(tmp_path):
    valid = ", ".join(FAMILY_NAMES)
    with pytest.raises(ParameterError, match=f"unknown instrument family 'kazoo'; choose from {valid}"):
        make_instrument_corpus(tmp_path, tunes=1, families=["piano", "kazoo"], progress=False)
    code, _, stderr = invoke("dataset", "instruments", tmp_path / "cli", "--families", "piano,kazoo")
    assert code == 2 and "kazoo" in stderr and valid in stderr


# ---------------------------------------------------------------- command line


def test_help():
    code, out, _ = invoke("dataset", "instruments", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for mention in ["OUT", "--tunes", "--seconds", "--soundfont", "--families", "--seed", "--force", "--quiet",
                    "manifest.csv", "path,label,track_id", INSTALL, "pip install 'harmonies[demo]'",
                    "HARMONIES_SOUNDFONT", "Examples"]:  # fmt: skip
        assert mention in flat, f"`harmonies dataset instruments --help` does not mention {mention}"
    _, out, _ = invoke("dataset", "--help")
    assert "instruments" in out


def test_help_lists_the_families_in_order():
    # Written out in the command module so that --help imports no numpy; kept equal here.
    assert INSTRUMENT_FAMILIES == FAMILY_NAMES
    _, out, _ = invoke("dataset", "instruments", "--help")
    assert ",".join(FAMILY_NAMES) in out
