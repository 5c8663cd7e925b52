"""A labelled set of real music: the soundtracks of nine Debian game packages.

Each package's music (Ogg Vorbis) is decoded, mixed to mono, resampled with
soxr, and cut into back-to-back clips, skipping the first and last seconds
of every track; near-silent clips are dropped. The label is the package's
game (:func:`label_for`), the track id the piece a clip comes from
(:func:`track_group`), so that a split by track keeps every version of a
test piece out of training.

Which files are music
    An ``.ogg`` file (not a link) inside a folder named ``music``,
    ``musics`` or ``music.<anything>`` (any case), at least
    ``min_track_seconds`` long. Per package: supertux-data
    ``usr/share/games/supertux2/music/<world>/`` (its ``speech/`` and
    ``sounds/`` are left out); hedgewars-data ``Data/Music/`` (not
    ``Data/Sounds/``); freedroidrpg-data ``data/sound/music/`` (not the
    ``titles/`` jingles or ``sound/effects/``); warmux-data
    ``music/ingame/`` and ``music/menu/`` (not ``sound/``, which holds two
    short "music" effects); flare-game ``mods/fantasycore/music/`` (not
    ``soundfx/``); megaglest-data ``data/core/menu/music/`` and each
    faction's ``music/`` (not the tilesets' ambient ``sounds/``);
    openclonk-data ``Music.ocg/``; extremetuxracer-data ``etr/music/``;
    xmoto-data ``Textures/Musics/``. The duration floor (30 s by default)
    drops the jingles kept in those folders (level done, race lost,
    invincibility, ...).

Everything is deterministic: the same ``.deb`` files and arguments give
byte-identical files whatever ``jobs`` is.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from pyharmonies.data.debs import DebFile, download_deb, find_deb, licences, unpack_deb
from pyharmonies.errors import AudioError, ParameterError

#: The packages the set is built from, and the only ones downloaded. Other
#: game soundtracks are deliberately absent: they are kept aside, unheard,
#: to check what is trained here.
PACKAGES: tuple[str, ...] = (
    "supertux-data",
    "hedgewars-data",
    "freedroidrpg-data",
    "warmux-data",
    "flare-game",
    "megaglest-data",
    "openclonk-data",
    "extremetuxracer-data",
    "xmoto-data",
)

SAMPLE_RATE = 22050  # FeatureConfig's default rate: the clips need no resampling at training time
CLIP_SECONDS = 10.0
SKIP_SECONDS = 5.0  # skipped at each end of a track: fade-in, fade-out, silence around the loop point
MIN_TRACK_SECONDS = 30.0  # shorter files in the music folders are jingles, not pieces
MIN_RMS_DBFS = -50.0  # a clip quieter than this (RMS re full scale) is near-silent and dropped

_MUSIC_FOLDER = re.compile(r"^musics?(\..*)?$", re.IGNORECASE)

#: Version markers stripped from the end of a normalised name, repeatedly (see :func:`track_group`).
_VERSION_SUFFIX = re.compile(r"(?:_(?:remix|mix|old|map|sd|v\d+|\d+)|(?<=[a-z])\d+)$")

#: Pieces whose file names do not show that they are versions of one another,
#: found from their Vorbis titles: {package: {normalised name: group}}.
ALIASES: dict[str, dict[str, str]] = {
    # "Beneath the Rabbit Holes" (Jason Lavallee) remakes forest2.ogg, "Rabbit Holes" (Wansti).
    "supertux-data": {"beneath_the_rabbit_hole": "forest"},
}


def label_for(package: str) -> str:
    """The class label of a package: its name without ``-data`` or ``-game``.

    ``"supertux-data"`` -> ``"supertux"``, ``"flare-game"`` -> ``"flare"``.
    """
    return re.sub(r"-(data|game)$", "", package)


def is_music_file(relpath: str | PurePosixPath) -> bool:
    """Whether a path inside a package is a music file by its place.

    True for ``*.ogg`` (any case) with a folder named ``music``, ``musics``
    or ``music.<anything>`` (any case) among its parents. The duration floor
    is applied later, on the decoded file.
    """
    path = PurePosixPath(relpath)
    return path.suffix.lower() == ".ogg" and any(_MUSIC_FOLDER.match(part) for part in path.parts[:-1])


def track_group(filename: str, *, package: str = "") -> str:
    """The piece a music file is a version of: its normalised name.

    Lowercase the stem, turn every run of other characters than a-z and
    0-9 into ``_``, then strip version markers from the end, repeatedly:
    ``_remix``, ``_mix``, ``_old``, ``_map`` (a world-map arrangement),
    ``_sd`` (hedgewars' sudden-death version), ``_v2``, ``_2``, and digits
    right after a letter (``forest2``). Last, :data:`ALIASES` maps the
    remakes whose names do not say so.

    Examples: ``airship_2.ogg`` and ``airship_remix.ogg`` -> ``airship``;
    ``Olympics.ogg`` and ``olympics_sd.ogg`` -> ``olympics``;
    ``cave_old.ogg`` -> ``cave``; ``Olivier_Militon.-.Apnee2.ogg`` ->
    ``olivier_militon_apnee``; ``@CrushedIceCocktail.ogg`` ->
    ``crushedicecocktail``.

    Merging distinct pieces (``forest2`` is not ``forest``) costs a little
    split granularity; splitting versions of one piece would leak a test
    melody into training, so the rule errs on the merging side. A package
    whose distinct pieces are numbered ``track_01, track_02...`` would
    collapse into one group; none of :data:`PACKAGES` does.
    """
    name = re.sub(r"[^a-z0-9]+", "_", PurePosixPath(filename).stem.lower()).strip("_")
    while True:
        shorter = _VERSION_SUFFIX.sub("", name).rstrip("_")
        if shorter == name or not shorter:
            break
        name = shorter
    return ALIASES.get(package, {}).get(name, name) or "x"


def clip_starts(n: int, *, sample_rate: int, clip_seconds: float, skip_head: float, skip_tail: float) -> list[int]:
    """First samples of the back-to-back clips of a track of ``n`` samples.

    Clips start ``skip_head`` seconds in and follow one another with no gap
    or overlap; the last one ends at least ``skip_tail`` seconds before the
    end. Lengths are rounded to whole samples.

    Returns
    -------
    list of int
    """
    length = int(round(clip_seconds * sample_rate))
    head, stop = int(round(skip_head * sample_rate)), n - int(round(skip_tail * sample_rate))
    return list(range(head, stop - length + 1, length)) if length > 0 else []


def rms_dbfs(y: np.ndarray) -> float:
    """RMS of ``y`` (floats, full scale 1.0) in dB; -inf for silence."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return float(20.0 * np.log10(rms)) if rms > 0 else float("-inf")


def _stable_hash(text: str) -> int:
    """64 bits of SHA-256: the same on every run and machine (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def spread_select(clips_per_track: Sequence[Sequence[int]], keys: Sequence[str], limit: int | None) -> list[set[int]]:
    """Choose at most ``limit`` clips, spread over tracks and over time.

    Tracks take turns (round robin, in the given order), each giving its
    next clip in a fixed shuffled order seeded by its key, so that a long
    track does not crowd out the others and no part of a track is favoured.

    Parameters
    ----------
    clips_per_track : sequence of sequences of int
        The clip numbers available in each track.
    keys : sequence of str
        One per track, seeding its order.
    limit : int or None
        None: every clip.

    Returns
    -------
    list of set of int
        The chosen clip numbers, per track.
    """
    if limit is None:
        return [set(c) for c in clips_per_track]
    orders = [
        [clips[i] for i in np.random.default_rng(_stable_hash(key)).permutation(len(clips))]
        for clips, key in zip(clips_per_track, keys)
    ]
    chosen: list[set[int]] = [set() for _ in orders]
    taken, depth = 0, 0
    while taken < limit and any(depth < len(order) for order in orders):
        for t, order in enumerate(orders):
            if depth < len(order) and taken < limit:
                chosen[t].add(order[depth])
                taken += 1
        depth += 1
    return chosen


# ---------------------------------------------------------------- one track


@dataclass(frozen=True)
class Settings:
    """How tracks are cut; stored in the provenance file."""

    sample_rate: int = SAMPLE_RATE  # Hz, of the written clips
    clip_seconds: float = CLIP_SECONDS
    skip_head: float = SKIP_SECONDS  # seconds skipped at the start of each track
    skip_tail: float = SKIP_SECONDS  # ...and at its end
    min_track_seconds: float = MIN_TRACK_SECONDS
    min_rms_dbfs: float = MIN_RMS_DBFS
    max_clips_per_class: int | None = None  # None: every clip


@dataclass
class Track:
    """One music file of a package and what became of it."""

    relpath: str  # inside the package, e.g. "usr/share/games/etr/music/race1-jt.ogg"
    clip_name: str  # file-name safe and unique within the package: clips are <clip_name>_<k>.wav
    track_id: str  # "<label>/<group>"
    seconds: float = 0.0  # duration of the file
    clips: dict[int, np.ndarray] = field(default_factory=dict)  # clip number -> int16 PCM, (samples,)
    silent: int = 0  # clips dropped as near-silent
    written: list[int] = field(default_factory=list)  # clip numbers written


@dataclass(frozen=True)
class SkippedFile:
    """A music file that was passed over, and why."""

    package: str
    relpath: str
    reason: str
    short: bool  # True: a jingle under the duration floor (expected); False: unreadable or a duplicate

    def __str__(self) -> str:
        return f"{self.package}: {self.relpath}: {self.reason}"


def _cut_track(task: tuple[Path, Track, Settings]) -> Track | tuple[str, bool]:
    """Decode, resample and cut one file (runs in worker threads).

    Returns the track with its clips, or (the reason it cannot be used, whether it is only too short).
    """
    import soundfile as sf

    from pyharmonies.audio import load

    path, track, settings = task
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types for bad files
        return f"cannot decode audio ({_reason(str(err), path, track.relpath)})", False
    seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
    if seconds < settings.min_track_seconds:
        return f"{seconds:.1f} s, shorter than {settings.min_track_seconds:g} s: a jingle", True
    try:
        y = load(path, settings.sample_rate)
    except AudioError as err:
        return _reason(str(err), path, track.relpath), False
    track.seconds = seconds
    length = int(round(settings.clip_seconds * settings.sample_rate))
    starts = clip_starts(
        y.size, sample_rate=settings.sample_rate, clip_seconds=settings.clip_seconds,
        skip_head=settings.skip_head, skip_tail=settings.skip_tail,
    )  # fmt: skip
    for k, start in enumerate(starts):
        clip = y[start : start + length]
        if rms_dbfs(clip) < settings.min_rms_dbfs:
            track.silent += 1
            continue
        track.clips[k] = np.round(np.clip(clip, -1.0, 1.0) * 32767).astype(np.int16)
    return track


def _reason(text: str, path: Path, relpath: str) -> str:
    """An error message on one line, without the scratch folder's name (it differs on every run)."""
    name = str(path)
    text = text.removeprefix(f"{name}: ").replace(f"Error opening {name!r}: ", "").replace(name, relpath)
    return " ".join(text.split())


def _safe(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def _music_files(root: Path) -> list[str]:
    """Relative POSIX paths of the music files under an unpacked package, sorted."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if is_music_file(rel) and not path.is_symlink():
                found.append(rel)
    return sorted(found)


def _clip_names(relpaths: Sequence[str]) -> list[str]:
    """A file-name safe stem per music file, unique within the package (the folder is added on a clash)."""
    stems = [_safe(PurePosixPath(r).stem) for r in relpaths]
    return [
        stem if stems.count(stem) == 1 else _safe(f"{PurePosixPath(r).parent.name}_{stem}")
        for stem, r in zip(stems, relpaths)
    ]


# ---------------------------------------------------------------- the set


def _resolve_debs(packages: Sequence[str], deb_dir: Path | None, cache_dir: Path) -> list[DebFile]:
    if deb_dir is not None:
        found = {package: find_deb(deb_dir, package) for package in packages}
        missing = [package for package, deb in found.items() if deb is None]
        if missing:
            raise ParameterError(
                f"{deb_dir}: no .deb of {', '.join(missing)} (expected files named <package>_<version>_all.deb); "
                "leave out --deb-dir to download them"
            )
        return list(found.values())
    return [find_deb(cache_dir, package) or download_deb(package, cache_dir) for package in packages]


def default_cache() -> Path:
    """Where downloaded ``.deb`` files are kept: ``$XDG_CACHE_HOME/harmonies/debs`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "harmonies" / "debs"


def build_soundtracks(
    out: str | os.PathLike[str],
    *,
    packages: Sequence[str] | None = None,
    deb_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    jobs: int | None = None,
    progress: bool = True,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> Path:
    """Write the soundtracks set: clips, a manifest and a provenance file.

    Parameters
    ----------
    out : path-like
        Output folder (made if needed; files of the same names are
        overwritten, nothing else is touched).
    packages : sequence of str, optional
        Debian package names; :data:`PACKAGES` if omitted. Without
        ``deb_dir`` only names from :data:`PACKAGES` are accepted.
    deb_dir : path-like, optional
        A folder holding one ``<package>_*.deb`` per package: those are used
        and nothing is downloaded.
    cache_dir : path-like, optional
        Without ``deb_dir``: ``.debs`` already here are reused, missing ones
        are fetched here with ``apt-get download``. Default
        :func:`default_cache`.
    settings : Settings, optional
        Clip length, rate, skipped seconds, floors, the per-class limit.
    jobs : int, optional
        Tracks decoded at once (threads; decoding and resampling release
        the GIL); ``os.cpu_count()`` if omitted. The files do not depend on it.
    progress : bool
        tqdm bars on stderr.
    on_skip : callable, optional
        Called with each :class:`SkippedFile` (jingles under the duration
        floor included, with ``short=True``).

    Returns
    -------
    Path
        ``out / "manifest.csv"``, columns ``path,label,track_id``. Also
        written: ``out/<label>/<file>_<k>.wav`` (mono 16-bit PCM at
        ``settings.sample_rate``, exactly ``clip_seconds`` long, at the
        recording's own level; ``k`` numbers the track's clips from its
        start, silent ones included) and ``out/provenance.json``.

    Raises
    ------
    ParameterError
        A bad argument, a ``.deb`` missing from ``deb_dir``, a failed
        download (the message says what to do).
    HarmoniesError
        A ``.deb`` cannot be read or unpacked.
    """
    settings = settings or Settings()
    _check_settings(settings)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be an integer >= 1, got {jobs!r}")
    names = list(PACKAGES if packages is None else packages)
    if not names or len(set(names)) != len(names):
        raise ParameterError(f"give each package once, at least one: {', '.join(names) or '(none)'}")
    labels = [label_for(p) for p in names]
    if len(set(labels)) != len(labels):
        raise ParameterError(f"two packages give the same label: {', '.join(names)}")
    if deb_dir is None:
        others = [p for p in names if p not in PACKAGES]
        if others:
            raise ParameterError(
                f"{', '.join(others)}: not a soundtrack package of this set; only these are downloaded: "
                f"{', '.join(PACKAGES)} (other soundtracks are kept aside, unheard, for evaluation)"
            )
    debs = _resolve_debs(names, None if deb_dir is None else Path(deb_dir), Path(cache_dir or default_cache()))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    provenance = []
    for deb in sorted(debs, key=lambda d: label_for(d.package)):
        entry, deb_rows = _build_package(deb, out, settings, jobs=jobs, progress=progress, on_skip=on_skip)
        provenance.append(entry)
        rows.extend(deb_rows)
    _write_manifest(out, sorted(rows))
    _write_json(out / "provenance.json", _provenance(settings, provenance))
    return out / "manifest.csv"


def _check_settings(s: Settings) -> None:
    if isinstance(s.sample_rate, bool) or not isinstance(s.sample_rate, int) or not 8000 <= s.sample_rate <= 96000:
        raise ParameterError(f"sample_rate must be an integer from 8000 to 96000 Hz, got {s.sample_rate!r}")
    if not 0 < s.clip_seconds <= 600:
        raise ParameterError(f"clip_seconds must be in (0, 600], got {s.clip_seconds!r}")
    if s.skip_head < 0 or s.skip_tail < 0:
        raise ParameterError(f"seconds skipped must be >= 0, got {s.skip_head!r} and {s.skip_tail!r}")
    if s.min_track_seconds < 0:
        raise ParameterError(f"min_track_seconds must be >= 0, got {s.min_track_seconds!r}")
    limit = s.max_clips_per_class
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ParameterError(f"max_clips_per_class must be an integer >= 1 or None, got {limit!r}")


def _build_package(
    deb: DebFile,
    out: Path,
    settings: Settings,
    *,
    jobs: int,
    progress: bool,
    on_skip: Callable[[SkippedFile], None] | None,
) -> tuple[dict, list[tuple[str, str, str]]]:
    """Unpack one package, cut its music, write its clips; its provenance entry and manifest rows."""
    import soundfile as sf
    from tqdm import tqdm

    from pyharmonies.data.debs import sha256_file

    label = label_for(deb.package)
    skipped: list[SkippedFile] = []

    def skip(relpath: str, reason: str, short: bool) -> None:
        skipped.append(SkippedFile(deb.package, relpath, reason, short))
        if on_skip is not None:
            on_skip(skipped[-1])

    with tempfile.TemporaryDirectory(prefix="harmonies-deb-") as tmp:
        root = unpack_deb(deb, tmp)
        copyright_file = root / "usr" / "share" / "doc" / deb.package / "copyright"
        text = copyright_file.read_text(encoding="utf-8", errors="replace") if copyright_file.is_file() else ""
        relpaths = _music_files(root)
        tasks, seen = [], {}
        for rel, name in zip(relpaths, _clip_names(relpaths)):
            digest = sha256_file(root / rel)
            if digest in seen:
                skip(rel, f"the same bytes as {seen[digest]}", short=False)
                continue
            seen[digest] = rel
            track = Track(rel, name, f"{label}/{track_group(rel, package=deb.package)}")
            tasks.append((root / rel, track, settings))
        tracks: list[Track] = []
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(tasks)))) as pool, tqdm(
            total=len(tasks), desc=label, unit="track", file=sys.stderr, disable=not progress, leave=False
        ) as bar:
            for (_, track, _), result in zip(tasks, pool.map(_cut_track, tasks)):
                bar.update(1)
                if isinstance(result, tuple):
                    skip(track.relpath, *result)
                else:
                    tracks.append(result)

    chosen = spread_select(
        [sorted(t.clips) for t in tracks], [f"{deb.package}/{t.relpath}" for t in tracks],
        settings.max_clips_per_class,
    )  # fmt: skip
    rows = []
    (out / label).mkdir(parents=True, exist_ok=True)
    for track, keep in zip(tracks, chosen):
        for k in sorted(keep):
            rel = f"{label}/{track.clip_name}_{k:03d}.wav"
            tmp_path = out / label / f".{track.clip_name}_{k:03d}.wav.tmp"
            sf.write(tmp_path, track.clips[k], settings.sample_rate, subtype="PCM_16", format="WAV")
            os.replace(tmp_path, out / rel)
            rows.append((rel, label, track.track_id))
            track.written.append(k)
        track.clips.clear()  # the PCM is on disk; free it before the next package

    used = [t for t in tracks if t.written]
    entry = {
        "package": deb.package,
        "label": label,
        "version": deb.version,
        "deb": deb.name,
        "sha256": deb.sha256,
        "licences": licences(text) if text else [f"no usr/share/doc/{deb.package}/copyright in the package"],
        "music_files": len(relpaths),
        "tracks_used": len(used),
        "track_ids": len({t.track_id for t in used}),
        "clips": sum(len(t.written) for t in used),
        "seconds_used": round(sum(len(t.written) for t in used) * settings.clip_seconds, 3),
        "tracks": [
            {
                "file": t.relpath,
                "track_id": t.track_id,
                "seconds": round(t.seconds, 3),
                "clips_written": len(t.written),
                "clips_silent": t.silent,
            }
            for t in tracks
        ],
        "skipped": [{"file": s.relpath, "reason": s.reason} for s in skipped],
    }
    return entry, rows


def _provenance(settings: Settings, packages: list[dict]) -> dict:
    import soundfile as sf
    import soxr

    return {
        "made_by": "harmonies dataset soundtracks",
        "settings": {
            "sample_rate": settings.sample_rate,
            "clip_seconds": settings.clip_seconds,
            "skip_head_seconds": settings.skip_head,
            "skip_tail_seconds": settings.skip_tail,
            "min_track_seconds": settings.min_track_seconds,
            "min_rms_dbfs": settings.min_rms_dbfs,
            "max_clips_per_class": settings.max_clips_per_class,
            "music_files": "*.ogg inside a folder named music, musics or music.* (any case)",
            "resampler": "soxr HQ",
        },
        "software": {"soundfile": sf.__version__, "libsndfile": sf.__libsndfile_version__, "soxr": soxr.__version__},
        "packages": packages,
    }


def _write_manifest(out: Path, rows: list[tuple[str, str, str]]) -> None:
    tmp = out / ".manifest.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "track_id"])
        writer.writerows(rows)
    os.replace(tmp, out / "manifest.csv")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
