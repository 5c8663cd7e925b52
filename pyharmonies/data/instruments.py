"""A real-timbre corpus: folk and fiddle tunes played by instrument families.

No music data set can be downloaded here, but a General-MIDI SoundFont is
made of recorded instrument samples, and music21 ships hundreds of
public-domain melodies. This module plays the same tunes with every
instrument family, so that the label (the family) is carried by the timbre
and never by the melody: a split by tune keeps every test melody unheard in
training.

Pipeline
--------
1. **Tunes** (:func:`select_tunes`): the ABC files of three collections in
   music21's corpus, the Essen folksong collection (German, other European
   and Chinese songs), O'Neill's *Music of Ireland* (Irish airs and dance
   tunes) and *Ryan's Mammoth Collection* (fiddle tunes), are cut into single
   tunes and put in a fixed order: the collections take turns, each in the
   order of a hash of the tune's id. A tune is parsed only when it is
   reached, so ``tunes=60`` starts with the tunes of ``tunes=40``. Tunes that
   music21 cannot parse, that have several voices, fewer than
   :data:`MIN_NOTES` notes or a compass wider than :data:`MAX_SPAN`
   semitones are skipped and reported (``on_skip``), never fatal.
2. **Performance** (:func:`perform`): for each (tune, family), a generator
   seeded by ``(seed, tune, family)`` draws the instrument (one of the
   family's General-MIDI programs, :data:`FAMILIES`), an octave that puts
   the melody inside the instrument's range, the tempo (2.5 to 5 notes of
   the tune's commonest length a second), loudness and articulation, timing
   and velocity nuances, and the room (reverb send, size, damping). Every
   family draws these from the same distributions, except the program and
   the octave, which belong to the instrument.
3. **MIDI** (:func:`performance_midi`): the melody repeated until the clip is
   full, as a Standard MIDI File (:mod:`pyharmonies.data.render`).
4. **Rendering**: the ``fluidsynth`` synthesizer with a General-MIDI
   SoundFont (FluidR3_GM by default), dry samples plus FluidSynth's own
   reverb and chorus; mono, cut to exactly the clip length, levelled to
   :data:`TARGET_RMS_DBFS` with the peak at most :data:`PEAK_DBFS`, written
   as 16-bit PCM.

Everything is deterministic: the same arguments, SoundFont and FluidSynth
version give byte-identical files, and a file depends only on its own tune,
family and seed (adding tunes or families keeps the earlier files).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

from pyharmonies.errors import HarmoniesError, ParameterError

# ---------------------------------------------------------------- instruments


@dataclass(frozen=True)
class Instrument:
    """One General-MIDI instrument and the range a melody is placed in."""

    program: int  # General-MIDI program number, 0-based (0: Acoustic Grand Piano)
    name: str
    low: int  # lowest MIDI note of the melody's comfortable range (60: middle C)
    high: int  # highest


#: The families, each with the General-MIDI programs it is played by and their
#: comfortable melodic ranges (sounding pitch, a little inside the full compass).
#: The ranges overlap across families, so that register alone does not give the
#: family away.
FAMILIES: dict[str, tuple[Instrument, ...]] = {
    "piano": (
        Instrument(0, "Acoustic Grand Piano", 48, 91),
        Instrument(1, "Bright Acoustic Piano", 48, 91),
        Instrument(4, "Electric Piano 1", 48, 88),
    ),
    "guitar": (
        Instrument(24, "Acoustic Guitar (nylon)", 45, 79),
        Instrument(25, "Acoustic Guitar (steel)", 45, 79),
        Instrument(26, "Electric Guitar (jazz)", 45, 81),
        Instrument(27, "Electric Guitar (clean)", 45, 81),
    ),
    "strings": (
        Instrument(40, "Violin", 55, 91),
        Instrument(41, "Viola", 48, 81),
        Instrument(42, "Cello", 36, 69),
        Instrument(48, "String Ensemble 1", 43, 86),
    ),
    "brass": (
        Instrument(56, "Trumpet", 55, 82),
        Instrument(57, "Trombone", 40, 72),
        Instrument(60, "French Horn", 41, 77),
        Instrument(61, "Brass Section", 46, 82),
    ),
    "reed": (
        Instrument(65, "Alto Sax", 49, 80),
        Instrument(66, "Tenor Sax", 44, 75),
        Instrument(68, "Oboe", 58, 89),
        Instrument(70, "Bassoon", 34, 70),
        Instrument(71, "Clarinet", 50, 86),
    ),
    "pipe": (
        Instrument(72, "Piccolo", 74, 103),
        Instrument(73, "Flute", 60, 96),
        Instrument(74, "Recorder", 65, 93),
        Instrument(75, "Pan Flute", 55, 86),
    ),
}

#: Family names, in their default order (``families=None``).
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)

# ---------------------------------------------------------------- tunes

#: The corpus collections the tunes come from: (folder under music21/corpus, id prefix).
COLLECTIONS = (("essenFolksong", "essen"), ("oneills1850", "oneill"), ("ryansMammoth", "ryans"))

MIN_NOTES = 16  # a tune needs this many notes (grace notes do not count)
MAX_SPAN = 30  # semitones between its lowest and highest note, at most (two and a half octaves)

TARGET_RMS_DBFS = -20.0  # every clip is levelled to this RMS...
PEAK_DBFS = -1.0  # ...unless that would put its peak above this; then the peak is set here

_INSTALL_MUSIC21 = "music21 is needed for the instrument corpus: pip install 'harmonies[demo]'"


@dataclass(frozen=True)
class Tune:
    """A monophonic melody from music21's corpus."""

    tune_id: str  # file-name safe and unique, e.g. "essen-han1-12"; the manifest's track_id
    source: str  # where it comes from, e.g. "essenFolksong/han1.abc X:12"
    title: str
    # (onset, duration) in quarter notes, MIDI pitch, metric weight 0..1 (1: downbeat), by onset
    notes: tuple[tuple[float, float, int, float], ...]
    length: float  # quarter notes from the start to the end of the last note: the melody repeats with this period

    @property
    def lowest(self) -> int:
        return min(n[2] for n in self.notes)

    @property
    def highest(self) -> int:
        return max(n[2] for n in self.notes)


@dataclass(frozen=True)
class SkippedTune:
    """A tune that was passed over, and why (see :func:`select_tunes`)."""

    source: str
    reason: str
    unparseable: bool  # True: music21 failed on it; False: parsed but not a usable melody


class UnusableTune(HarmoniesError):
    """A tune that music21 parses but that is not a usable melody (see :func:`parse_tune`)."""


def _music21_corpus() -> Path:
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.origin:
        raise ParameterError(_INSTALL_MUSIC21)
    return Path(spec.origin).parent / "corpus"


def _stable_hash(text: str) -> int:
    """64 bits of SHA-256: the same on every run and machine (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


def tune_candidates(corpus: Path | None = None) -> list[tuple[str, str, str]]:
    """Every tune of :data:`COLLECTIONS`, in the order they are tried.

    Reads the ABC files as text and cuts them at their ``X:`` fields; parses
    nothing. The collections take turns (Essen, O'Neill, Ryan, Essen, ...);
    inside each, tunes are ordered by a hash of their id: a fixed order that
    mixes the files, and does not change when more tunes are asked for.

    Parameters
    ----------
    corpus : Path, optional
        music21's ``corpus`` folder; found from the installed package if omitted.

    Returns
    -------
    list of (tune_id, source, abc_text)
    """
    corpus = _music21_corpus() if corpus is None else Path(corpus)
    per_collection: list[list[tuple[str, str, str]]] = []
    for folder, prefix in COLLECTIONS:
        tunes: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for path in sorted((corpus / folder).glob("*.abc")):
            if path.stem.startswith("test"):  # Essen's test files: fragments for music21's own tests
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            pieces = re.split(r"(?m)^(?=X:)", text)
            header = pieces[0] if not pieces[0].lstrip().startswith("X:") else ""
            for piece in pieces[1:]:
                number = piece.split("\n", 1)[0][2:].strip()
                tune_id = f"{prefix}-{_safe(path.stem)}-{_safe(number)}"
                k = 2
                while tune_id in seen:  # a number used twice in one file
                    tune_id = f"{prefix}-{_safe(path.stem)}-{_safe(number)}_{k}"
                    k += 1
                seen.add(tune_id)
                tunes.append((tune_id, f"{folder}/{path.name} X:{number}", header + piece))
        tunes.sort(key=lambda t: (_stable_hash(t[0]), t[0]))
        per_collection.append(tunes)
    if not any(per_collection):
        raise ParameterError(f"no ABC tunes found under {corpus} ({', '.join(f for f, _ in COLLECTIONS)}); "
                             "is music21's corpus installed? pip install 'harmonies[demo]'")  # fmt: skip
    return [t for group in zip_longest(*per_collection) for t in group if t is not None]


def parse_tune(abc: str, *, tune_id: str, source: str = "") -> Tune:
    """Parse one ABC tune with music21 into a :class:`Tune`.

    Ties are merged, grace notes and chord symbols dropped, and a chord (a
    fiddle's double stop) is played as its top note.

    Raises
    ------
    ParameterError
        music21 is not installed.
    UnusableTune
        The tune is not a usable melody: several voices, overlapping notes,
        fewer than :data:`MIN_NOTES` notes, a compass wider than
        :data:`MAX_SPAN`.
    HarmoniesError
        music21 could not parse the text (the message names its error).
    """
    with warnings.catch_warnings():
        # music21 warns about ABC constructs it approximates; the warnings say nothing useful here.
        warnings.simplefilter("ignore")
        try:
            from music21 import converter, harmony, stream
        except ImportError:
            raise ParameterError(_INSTALL_MUSIC21) from None
        try:
            score = converter.parseData(abc, format="abc")  # parseData: text in, nothing cached on disk
            if isinstance(score, stream.Opus):
                score = score.scores[0]
            parts = list(score.parts) if isinstance(score, stream.Score) else [score]
            if len(parts) != 1:
                raise UnusableTune(f"{len(parts)} voices, not a single melody")
            flat = parts[0].stripTies().flatten()
            title = (score.metadata.title if score.metadata is not None else None) or ""
            notes = []
            for n in flat.notes:
                if isinstance(n, harmony.ChordSymbol) or float(n.quarterLength) <= 0:
                    continue
                midi = max(p.midi for p in n.pitches)
                try:
                    strength = float(n.beatStrength)
                except Exception:  # no metre: music21 raises various errors; treat as a weak beat
                    strength = 0.5
                notes.append((float(n.offset), float(n.quarterLength), int(midi), strength))
            length = float(flat.highestTime)
        except UnusableTune:
            raise
        except Exception as err:  # music21's ABC parser raises many kinds (IndexError, ValueError, its own)
            detail = " ".join(str(err).split())  # one line, for the skip report
            detail = detail if len(detail) <= 160 else detail[:157] + "..."
            raise HarmoniesError(f"music21 could not parse it: {type(err).__name__}: {detail}") from None
    notes.sort()
    if len(notes) < MIN_NOTES:
        raise UnusableTune(f"{len(notes)} notes, fewer than {MIN_NOTES}")
    for (onset, duration, _, _), (next_onset, _, _, _) in zip(notes, notes[1:]):
        if next_onset < onset + duration - 1e-6:
            raise UnusableTune(f"overlapping notes at quarter {next_onset:g}: not monophonic")
    span = max(n[2] for n in notes) - min(n[2] for n in notes)
    if span > MAX_SPAN:
        raise UnusableTune(f"compass of {span} semitones, wider than {MAX_SPAN}")
    length = max(length, notes[-1][0] + notes[-1][1])
    return Tune(tune_id=tune_id, source=source, title=str(title), notes=tuple(notes), length=length)


def select_tunes(
    count: int,
    *,
    on_skip: Callable[[SkippedTune], None] | None = None,
    progress: bool = False,
    corpus: Path | None = None,
) -> list[Tune]:
    """The first ``count`` usable tunes of :func:`tune_candidates`.

    Parameters
    ----------
    count : int
        How many, >= 1.
    on_skip : callable, optional
        Called with a :class:`SkippedTune` for each tune passed over.
    progress : bool
        A tqdm bar on stderr.
    corpus : Path, optional
        music21's ``corpus`` folder (for tests).

    Raises
    ------
    ParameterError
        music21 is missing, or the corpus holds fewer usable tunes than ``count``.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ParameterError(f"tunes must be an integer >= 1, got {count!r}")
    candidates = tune_candidates(corpus)
    from tqdm import tqdm

    chosen: list[Tune] = []
    with tqdm(total=count, desc="tunes", unit="tune", file=sys.stderr, disable=not progress, leave=False) as bar:
        for tune_id, source, text in candidates:
            try:
                tune = parse_tune(text, tune_id=tune_id, source=source)
            except ParameterError:
                raise
            except HarmoniesError as err:
                if on_skip is not None:
                    on_skip(SkippedTune(source, str(err), unparseable=not isinstance(err, UnusableTune)))
                continue
            chosen.append(tune)
            bar.update(1)
            if len(chosen) == count:
                return chosen
    raise ParameterError(f"music21's corpus has only {len(chosen)} usable tunes; asked for {count}")


# ---------------------------------------------------------------- performance


@dataclass(frozen=True)
class Performance:
    """How one family plays one tune: everything :func:`perform` draws."""

    family: str
    instrument: Instrument
    transpose: int  # semitones added to every note (a multiple of 12)
    seconds_per_quarter: float  # the tempo
    lead_in: float  # seconds of silence before the first note
    velocity: float  # mean MIDI velocity
    accent: float  # velocity added on a downbeat (metric weight 1), removed on the weakest beats
    legato: float  # sounding fraction of each note's written length
    timing: float  # standard deviation of onset jitter, seconds
    reverb_send: int  # CC91, 0..127
    chorus_send: int  # CC93, 0..127
    room_size: float  # FluidSynth reverb settings, 0..1
    damping: float
    reverb_level: float
    seed: int  # the note-level nuances are drawn from a generator seeded by this

    @property
    def tempo_qpm(self) -> float:
        """Quarter notes per minute."""
        return 60.0 / self.seconds_per_quarter

    def fluidsynth_settings(self) -> dict[str, float]:
        """The ``-o`` settings this performance needs."""
        return {
            "synth.reverb.room-size": round(self.room_size, 4),
            "synth.reverb.damp": round(self.damping, 4),
            "synth.reverb.level": round(self.reverb_level, 4),
        }


def _family_index(family: str) -> int:
    if family not in FAMILIES:
        raise ParameterError(f"unknown instrument family {family!r}; choose from {', '.join(FAMILY_NAMES)}")
    return FAMILY_NAMES.index(family)


def perform(tune: Tune, family: str, *, seed: int = 0) -> Performance:
    """Draw how ``family`` plays ``tune``.

    The generator is seeded by ``(seed, hash of tune_id, family number)``:
    the draw depends on nothing else (not on the other tunes or families of
    a corpus).
    """
    f = _family_index(family)
    rng = np.random.default_rng([seed, _stable_hash(tune.tune_id), f])
    instrument = FAMILIES[family][int(rng.integers(len(FAMILIES[family])))]
    # Octave: any shift that fits the tune inside the instrument's range, else the one closest to fitting.
    shifts = list(range(-48, 49, 12))
    fits = [s for s in shifts if tune.lowest + s >= instrument.low and tune.highest + s <= instrument.high]
    if fits:
        transpose = int(fits[int(rng.integers(len(fits)))])
    else:
        below = [max(0, instrument.low - tune.lowest - s) for s in shifts]
        above = [max(0, tune.highest + s - instrument.high) for s in shifts]
        transpose = shifts[int(np.argmin(np.add(below, above)))]
    # Tempo: the tune's commonest note length at 2.5 to 5 notes a second (30 to 300 quarters a minute at most).
    durations = np.array([n[1] for n in tune.notes])
    common = float(np.median(durations))
    rate = rng.uniform(2.5, 5.0)
    seconds_per_quarter = float(np.clip(1.0 / (rate * common), 60 / 300, 60 / 30))
    return Performance(
        family=family,
        instrument=instrument,
        transpose=transpose,
        seconds_per_quarter=seconds_per_quarter,
        lead_in=float(rng.uniform(0.0, 0.25)),
        velocity=float(rng.uniform(60, 110)),
        accent=float(rng.uniform(4, 16)),
        legato=float(rng.uniform(0.75, 0.98)),
        timing=float(rng.uniform(0.0, 0.012)),
        reverb_send=int(rng.integers(15, 101)),
        chorus_send=int(rng.integers(0, 31)),
        room_size=float(rng.uniform(0.2, 0.85)),
        damping=float(rng.uniform(0.1, 0.7)),
        reverb_level=float(rng.uniform(0.5, 0.9)),
        seed=int(rng.integers(2**63)),
    )


def performance_midi(tune: Tune, performance: Performance, *, seconds: float) -> bytes:
    """The MIDI file of ``performance``: the melody repeated until ``seconds`` are filled.

    Notes starting after ``seconds`` are left out; the track ends half a
    second after ``seconds`` (so the renderer covers the clip whatever its
    tail). Each note's velocity follows the metre (``accent``) with a little
    noise, and its onset is jittered by ``timing``; a note always ends
    before the next one starts.
    """
    from pyharmonies.data.render import TICKS_PER_SECOND, midi_file

    p = performance
    rng = np.random.default_rng(p.seed)
    spq = p.seconds_per_quarter
    period = tune.length * spq
    timed: list[tuple[float, float, int, int]] = []  # onset s, end s, key, velocity
    repeat, last = 0, -1.0
    while p.lead_in + repeat * period < seconds:
        for onset, duration, midi, strength in tune.notes:
            t = p.lead_in + (repeat * tune.length + onset) * spq
            if t >= seconds:
                break
            if p.timing > 0:  # jitter, but never so much that two notes swap places
                t = max(0.0, last + 0.01, t + float(np.clip(rng.normal(0.0, p.timing), -0.03, 0.03)))
            last = t
            key = midi + p.transpose
            while key < p.instrument.low - 6:  # a note far outside the range is folded in by octaves
                key += 12
            while key > p.instrument.high + 6:
                key -= 12
            velocity = p.velocity + p.accent * (2.0 * strength - 1.0) + rng.normal(0.0, 4.0)
            end = t + max(duration * spq * p.legato, 0.04)
            timed.append((t, end, int(np.clip(key, 0, 127)), int(np.clip(round(velocity), 20, 127))))
        repeat += 1
    channel = 0
    events: list[tuple[int, bytes]] = [
        (0, bytes([0xC0 | channel, p.instrument.program])),
        (0, bytes([0xB0 | channel, 7, 100])),  # channel volume
        (0, bytes([0xB0 | channel, 10, 64])),  # pan: centre
        (0, bytes([0xB0 | channel, 91, p.reverb_send])),
        (0, bytes([0xB0 | channel, 93, p.chorus_send])),
    ]
    # Every note ends by the end of the track: FluidSynth's player runs until no voice sounds,
    # so a sustained sample (a clarinet) left on would render forever.
    end_tick = round((seconds + 0.5) * TICKS_PER_SECOND)
    for i, (t, end, key, velocity) in enumerate(timed):
        if i + 1 < len(timed):
            end = min(end, timed[i + 1][0] - 0.002)  # monophonic: off before the next on
        on_tick = round(t * TICKS_PER_SECOND)
        off_tick = min(max(on_tick + 1, round(end * TICKS_PER_SECOND)), end_tick)
        events.append((on_tick, bytes([0x90 | channel, key, velocity])))
        events.append((off_tick, bytes([0x80 | channel, key, 0])))
    events.append((end_tick, bytes([0xB0 | channel, 123, 0])))  # all notes off
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80))  # at one tick: note-offs first
    return midi_file(events, end_tick=end_tick)


def normalize_loudness(y: np.ndarray) -> np.ndarray:
    """``y`` scaled to :data:`TARGET_RMS_DBFS` RMS, or less so that its peak stays at :data:`PEAK_DBFS`.

    Raises
    ------
    HarmoniesError
        ``y`` is silent (the SoundFont has no sound for the program?).
    """
    y = np.asarray(y, dtype=np.float64)
    rms = float(np.sqrt(np.mean(y**2))) if y.size else 0.0
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if rms < 1e-7:
        raise HarmoniesError("the rendering is silent")
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_DBFS / 20) / peak)
    return y * gain


# ---------------------------------------------------------------- the corpus


def _render_one(task: tuple) -> None:
    """Render one (tune, family) and write its WAV file (runs in worker threads)."""
    import soundfile as sf

    from pyharmonies.data.render import render_midi

    path, tune, family, seconds, sample_rate, seed, soundfont, exe = task
    performance = perform(tune, family, seed=seed)
    midi = performance_midi(tune, performance, seconds=seconds)
    try:
        y = render_midi(midi, soundfont=soundfont, sample_rate=sample_rate,
                        settings=performance.fluidsynth_settings(), fluidsynth=exe)  # fmt: skip
        n = int(round(seconds * sample_rate))
        y = np.pad(y[:n], (0, max(0, n - y.size)))  # the rendering runs past the clip; cut (or pad) to length
        pcm = np.round(np.clip(normalize_loudness(y), -1.0, 1.0) * 32767).astype(np.int16)
    except HarmoniesError as err:
        raise HarmoniesError(f"{family} {performance.instrument.name}, {tune.source}: {err}") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per writer
    sf.write(tmp, pcm, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _check_families(families: Sequence[str] | None) -> tuple[str, ...]:
    if families is None:
        return FAMILY_NAMES
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    names = tuple(families)
    for name in names:
        _family_index(name)
    if not names:
        raise ParameterError(f"give at least one family; choose from {', '.join(FAMILY_NAMES)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"families repeated: {', '.join(names)}")
    return names


def make_instrument_corpus(
    out: str | os.PathLike[str],
    *,
    tunes: int = 40,
    seconds: float = 8.0,
    families: Sequence[str] | None = None,
    soundfont: str | os.PathLike[str] | None = None,
    seed: int = 0,
    sample_rate: int = 22050,
    jobs: int | None = None,
    progress: bool = True,
    on_skip: Callable[[SkippedTune], None] | None = None,
) -> Path:
    """Write the instrument corpus: one WAV per (family, tune), and a manifest.

    Parameters
    ----------
    out : path-like
        Output folder (made if needed; files of the same names are
        overwritten, nothing else is touched).
    tunes : int
        How many tunes (>= 1): the first usable ones of
        :func:`tune_candidates`, whatever ``seed``.
    seconds : float
        Length of every clip, in (0, 120].
    families : sequence of str, or a comma-separated str, optional
        Family names from :data:`FAMILY_NAMES` (all of them if omitted).
    soundfont : path-like, optional
        A General-MIDI SoundFont; see
        :func:`pyharmonies.data.render.find_soundfont` for the search order.
    seed : int
        >= 0. Same seed (and SoundFont and FluidSynth), same bytes.
    sample_rate : int
        Hz, 8000 to 96000.
    jobs : int, optional
        Renderings run at once (each is a ``fluidsynth`` process);
        ``os.cpu_count()`` if omitted. The files do not depend on it.
    progress : bool
        tqdm bars on stderr.
    on_skip : callable, optional
        Called with each :class:`SkippedTune`.

    Returns
    -------
    Path
        ``out / "manifest.csv"``, columns ``path,label,track_id``: the path
        relative to ``out``, the family, the tune id. Every family plays
        every tune, so a split by track keeps test melodies out of training.

    Raises
    ------
    ParameterError
        A bad argument, or fluidsynth, a SoundFont or music21 missing (the
        message says what to install).
    HarmoniesError
        A rendering failed.

    Notes
    -----
    Files are ``out/<family>/<tune_id>.wav``: mono, 16-bit PCM, exactly
    ``round(seconds * sample_rate)`` samples.
    """
    from pyharmonies.data.render import find_fluidsynth, find_soundfont

    if isinstance(tunes, bool) or not isinstance(tunes, int) or tunes < 1:
        raise ParameterError(f"tunes must be an integer >= 1, got {tunes!r}")
    if not 0 < seconds <= 120:
        raise ParameterError(f"seconds must be in (0, 120], got {seconds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 96000:
        raise ParameterError(f"sample_rate must be an integer from 8000 to 96000 Hz, got {sample_rate!r}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be an integer >= 1, got {jobs!r}")
    names = _check_families(families)
    exe = find_fluidsynth()
    sf2 = find_soundfont(soundfont)
    chosen = select_tunes(tunes, on_skip=on_skip, progress=progress)

    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    out = Path(out)
    rows, tasks = [], []
    for family in names:
        (out / family).mkdir(parents=True, exist_ok=True)
        for tune in chosen:
            rows.append((f"{family}/{tune.tune_id}.wav", family, tune.tune_id))
            tasks.append((out / family / f"{tune.tune_id}.wav", tune, family, seconds, sample_rate, seed, sf2, exe))
    with tqdm(total=len(tasks), desc="render", unit="clip", file=sys.stderr, disable=not progress, leave=False) as bar:
        # Threads suffice: the work is in the fluidsynth processes (the GIL is free while waiting).
        with ThreadPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            for _ in pool.map(_render_one, tasks):
                bar.update(1)
    tmp = out / ".manifest.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "track_id"])
        writer.writerows(rows)
    os.replace(tmp, out / "manifest.csv")
    return out / "manifest.csv"

