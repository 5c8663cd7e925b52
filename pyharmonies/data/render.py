"""MIDI in, audio out: Standard MIDI Files and the FluidSynth renderer.

:func:`midi_file` writes a one-track Standard MIDI File (format 0) from
timed events, with no third-party package. :func:`render_midi` plays it
through the ``fluidsynth`` command-line synthesizer with a General-MIDI
SoundFont (recorded instrument samples) and returns mono float samples.
:func:`find_soundfont` and :func:`find_fluidsynth` locate the two, and say
exactly what to install when one is missing.

FluidSynth's fast-render mode is deterministic: the same MIDI bytes, settings
and SoundFont give the same samples, bit for bit (its reverb and chorus have
no random state, and float output has no dither).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pyharmonies.errors import HarmoniesError, ParameterError

#: Environment variable naming a SoundFont; tried after an explicit path.
SOUNDFONT_ENV = "HARMONIES_SOUNDFONT"

#: General-MIDI SoundFonts tried after ``$HARMONIES_SOUNDFONT``, in order
#: (Debian's and Arch's places for fluid-soundfont-gm's FluidR3_GM.sf2).
SOUNDFONT_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)

#: What to install, quoted by every "not found" message.
INSTALL_HINT = (
    "install the renderer and a General-MIDI SoundFont with `apt-get install fluidsynth fluid-soundfont-gm` "
    "(Debian/Ubuntu), and the Python side with `pip install 'harmonies[demo]'`"
)

#: Ticks per quarter note of the files :func:`midi_file` writes; with its
#: tempo (0.5 s per quarter) one tick is 1/960 s.
TICKS_PER_QUARTER = 480
TICKS_PER_SECOND = 960


def find_soundfont(path: str | os.PathLike[str] | None = None) -> Path:
    """The General-MIDI SoundFont to render with.

    Search order: ``path``; ``$HARMONIES_SOUNDFONT``; :data:`SOUNDFONT_PATHS`;
    the ``TimGM6mb.sf2`` that ships inside the ``pretty_midi`` package, when
    that is installed. An explicit ``path`` or environment variable that does
    not name a SoundFont is an error, never skipped.

    Raises
    ------
    ParameterError
        Nothing found, or the given file is missing or not a SoundFont; the
        message says what to install.
    """
    if path is not None:
        return _check_soundfont(Path(path), "--soundfont")
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        return _check_soundfont(Path(env), f"${SOUNDFONT_ENV}")
    candidates = list(SOUNDFONT_PATHS)
    spec = importlib.util.find_spec("pretty_midi")  # its location only; the package is not imported
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "TimGM6mb.sf2")
    for candidate in candidates:
        if candidate.is_file():
            return _check_soundfont(candidate, "SoundFont")
    searched = ", ".join(str(p) for p in SOUNDFONT_PATHS)
    raise ParameterError(
        f"no General-MIDI SoundFont found (searched --soundfont, ${SOUNDFONT_ENV}, {searched}, "
        f"pretty_midi's TimGM6mb.sf2); {INSTALL_HINT}, or pass --soundfont PATH.sf2"
    )


def _check_soundfont(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ParameterError(f"{origin}: SoundFont {path} not found; {INSTALL_HINT}, or give an existing .sf2 file")
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ParameterError(f"{origin}: {path} is not a SoundFont 2 file (no RIFF sfbk header)")
    return path


def find_fluidsynth() -> str:
    """The path of the ``fluidsynth`` executable.

    Raises
    ------
    ParameterError
        Not on ``PATH``; the message says what to install.
    """
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ParameterError(f"the fluidsynth command was not found on PATH; {INSTALL_HINT}")
    return exe


def _vlq(n: int) -> bytes:
    """A MIDI variable-length quantity (7 bits per byte, most significant first)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_file(events: Iterable[tuple[int, bytes]], *, end_tick: int) -> bytes:
    """A Standard MIDI File (format 0, one track) holding ``events``.

    Parameters
    ----------
    events : iterable of (int, bytes)
        ``(tick, message)``: a complete channel message (status byte and
        data, no running status) or meta event (``FF type len data``). The
        track starts with a tempo of 120 quarter notes a minute, so that
        ``tick = round(seconds * TICKS_PER_SECOND)``. Events of one tick keep
        their given order (a stable sort), so put note-offs before note-ons
        of the same tick.
    end_tick : int
        Where the track ends (the end-of-track meta event); renderers stop
        there. Must not precede the last event.

    Returns
    -------
    bytes
    """
    ordered = sorted(events, key=lambda e: e[0])
    if ordered and (ordered[0][0] < 0 or ordered[-1][0] > end_tick):
        first, last = ordered[0][0], ordered[-1][0]
        raise ParameterError(f"events must lie in [0, end_tick={end_tick}], got ticks {first}..{last}")
    body = bytearray(b"\x00\xff\x51\x03" + (500_000).to_bytes(3, "big"))  # tempo: 0.5 s per quarter
    last = 0
    for tick, message in ordered:
        body += _vlq(tick - last) + message
        last = tick
    body += _vlq(end_tick - last) + b"\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += TICKS_PER_QUARTER.to_bytes(2, "big")
    return header + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def render_midi(
    midi: bytes,
    *,
    soundfont: str | os.PathLike[str],
    sample_rate: int = 22050,
    settings: Mapping[str, float | int | str] | None = None,
    fluidsynth: str | None = None,
    timeout: float = 120.0,
) -> np.ndarray:
    """Render MIDI bytes with FluidSynth; mono float samples.

    Parameters
    ----------
    midi : bytes
        A Standard MIDI File (e.g. from :func:`midi_file`).
    soundfont : path-like
        A SoundFont 2 file (see :func:`find_soundfont`).
    sample_rate : int
        Hz; FluidSynth synthesises at this rate directly.
    settings : mapping, optional
        Extra FluidSynth settings, ``-o name=value`` (e.g.
        ``{"synth.reverb.room-size": 0.6}``).
    fluidsynth : str, optional
        The executable; :func:`find_fluidsynth` if omitted.
    timeout : float
        Seconds before the renderer is stopped (FluidSynth renders until no
        voice sounds: a note never released would run on forever).

    Returns
    -------
    np.ndarray, shape (n,), float32
        The mean of the left and right channels, from the start of the file
        to where FluidSynth stopped (the end of track plus a short tail).

    Raises
    ------
    HarmoniesError
        FluidSynth failed or wrote nothing.
    """
    exe = fluidsynth or find_fluidsynth()
    options = {
        "synth.lock-memory": 0,  # no mlock of the whole SoundFont (fails without privileges)
        "synth.dynamic-sample-loading": 1,  # load the samples the notes need only: twice as fast to start
        "synth.cpu-cores": 1,
    }
    options.update(settings or {})
    with tempfile.TemporaryDirectory(prefix="harmonies-render-") as tmp:
        mid, raw = Path(tmp) / "in.mid", Path(tmp) / "out.raw"
        mid.write_bytes(midi)
        # -n -i: no MIDI input, no shell; -F: render as fast as possible into raw little-endian float32 stereo.
        cmd = [exe, "-q", "-n", "-i", "-r", str(sample_rate)]
        cmd += ["-F", str(raw), "-T", "raw", "-O", "float", "-E", "little"]
        for name, value in options.items():
            cmd += ["-o", f"{name}={value}"]
        cmd += [os.fspath(soundfont), str(mid)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise HarmoniesError(f"fluidsynth did not finish within {timeout:g} s") from None
        data = raw.read_bytes() if raw.exists() else b""
        if proc.returncode != 0 or not data:
            detail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-500:]
            raise HarmoniesError(f"fluidsynth failed (exit status {proc.returncode}): {detail or 'no output'}")
    stereo = np.frombuffer(data[: len(data) // 8 * 8], dtype="<f4").reshape(-1, 2)
    return (0.5 * (stereo[:, 0].astype(np.float64) + stereo[:, 1])).astype(np.float32)
