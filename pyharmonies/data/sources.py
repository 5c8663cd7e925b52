"""Labelled audio datasets: class folders, GTZAN's layout and CSV manifests.

:func:`open_dataset` turns a folder or a manifest into a :class:`DatasetIndex`:
a list of :class:`Clip` (a file, or a time range of one, with its label and
its group), the files that could not be used (:class:`Problem`, with the
reason) and warnings about the data (tiny classes). Every file is probed
with :func:`pyharmonies.audio.probe` (its header only, checked as the
device checks it: a few tens of microseconds), so opening GTZAN takes well
under a second; one bad file is listed and skipped, never an exception.

Layouts
-------
class folders
    ``root/<label>/**/*.{wav,flac,ogg,mp3,aif,aiff}``: the folder name is the
    label, every file is its own track. Files directly under ``root`` and
    hidden files (``.name``) are ignored.
GTZAN
    ``root/genres_original/<genre>/`` (also ``root/Data/genres_original``),
    or ``genres_original/`` itself: class folders under ``genres_original``.
CSV manifest
    A header ``path,label[,track_id][,start_s,end_s][,other columns]``, then
    one clip per line. ``path`` is relative to the manifest's folder (or
    absolute); ``track_id`` (or ``track``) defaults to the path; ``start_s``
    and ``end_s`` cut a time range (an empty cell: the file's start or end),
    so one long recording may give several clips that share one track. Every
    other column (``artist``, ``album``...) is kept in :attr:`Clip.extra`, so
    that splits can group by it.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyharmonies.audio import AUDIO_EXTENSIONS, AudioInfo, probe
from pyharmonies.errors import HarmoniesError, ParameterError

__all__ = ["AudioInfo", "Clip", "DatasetIndex", "Problem", "failure_reason", "open_dataset", "soundfile_reason"]

#: How far a manifest's ``end_s`` may pass the end of its file (seconds):
#: annotations are often rounded to 10 ms or so. A range ending later than
#: this is a problem; the frames kept are those that exist.
END_TOLERANCE_S = 0.05

#: Folder names of the GTZAN data set's audio, relative to the given root.
GTZAN_FOLDERS = ("genres_original", "Data/genres_original")

#: A folder holding this file is read through it (the datasets harmonies builds write one).
MANIFEST_NAME = "manifest.csv"

#: Names of the manifest's track column (the first present is used).
TRACK_COLUMNS = ("track_id", "track")


@dataclass(frozen=True)
class Clip:
    """One labelled piece of audio: a whole file or a time range of it.

    Parameters
    ----------
    path : Path
        The audio file (as found on this machine).
    label : str
        Its class.
    track : str
        The recording it comes from; clips of one track share it and must
        never be split apart.
    start_s, end_s : float
        Time range in seconds; ``end_s=None`` is the end of the file.
    extra : tuple of (str, str)
        Other manifest columns, ``(name, value)``, e.g. ``("artist", "A")``.
    relpath : str
        The path as the dataset names it (relative to its root, POSIX
        separators); used by :attr:`key`, so that keys do not depend on
        where the dataset lies. Empty: ``path`` itself is used.
    """

    path: Path
    label: str
    track: str
    start_s: float = 0.0
    end_s: float | None = None
    extra: tuple[tuple[str, str], ...] = ()
    relpath: str = ""

    def group(self, by: str = "track") -> str:
        """The clip's group for splitting.

        Parameters
        ----------
        by : str
            ``"track"`` (or ``"track_id"``): :attr:`track`; otherwise the
            name of an extra manifest column, e.g. ``"artist"``.

        Returns
        -------
        str

        Raises
        ------
        ParameterError
            The clip has no such column; the message lists those it has.
        """
        if by in ("track", "track_id"):
            return self.track
        for name, value in self.extra:
            if name == by:
                return value
        available = ", ".join(["track", *(name for name, _ in self.extra)])
        raise ParameterError(f"cannot group by {by!r}: the clips have no such column (available: {available})")

    @property
    def key(self) -> str:
        """A stable identifier, unique within a dataset: ``"<relpath>#<start>-<end>"``.

        Examples: ``"blues/blues.00000.wav#0-end"``, ``"long.flac#12.5-30"``.
        Split files store keys, not indices, so they survive a re-scan.
        """
        name = self.relpath or self.path.as_posix()
        end = "end" if self.end_s is None else _num(self.end_s)
        return f"{name}#{_num(self.start_s)}-{end}"


@dataclass(frozen=True)
class Problem:
    """A file or clip that could not be used, and why (shown in reports, never raised).

    ``kind`` says whose fault it is: ``"file"`` (the default): the file is
    missing, unreadable, undecodable, or failed in any other way (a command
    counts these as failed files); ``"data"``: the file is fine but the
    dataset's line about it is not (a range past its end, a repeated line);
    ``"label"``: its label is not one the model knows.
    """

    path: Path
    reason: str
    kind: str = "file"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class DatasetIndex:
    """The usable clips of a dataset, the files left out, and warnings.

    Attributes
    ----------
    root : Path
        The folder that paths are relative to (the class-folder root, or the
        manifest's folder).
    clips : list of Clip
        In a stable order: by label then path for folders, the manifest's
        order for manifests.
    problems : list of Problem
        Files (or manifest lines) skipped, with the reason.
    warnings : list of str
        Things worth a look: tiny classes, ignored files.
    files : dict of Path to AudioInfo
        The header of every readable file.
    kind : str
        ``"folders"``, ``"gtzan"`` or ``"manifest"``.
    """

    root: Path
    clips: list[Clip]
    problems: list[Problem]
    warnings: list[str]
    files: dict[Path, AudioInfo] = field(default_factory=dict)
    kind: str = "folders"

    @property
    def labels(self) -> list[str]:
        """The classes, sorted (the model's label order)."""
        return sorted({clip.label for clip in self.clips})

    def counts(self) -> dict[str, int]:
        """Clips per class, in :attr:`labels` order."""
        counter = Counter(clip.label for clip in self.clips)
        return {label: counter[label] for label in self.labels}

    def duration(self, clip: Clip) -> float:
        """Seconds of audio in ``clip`` (its range, or the whole file).

        Raises ``KeyError`` for a clip whose file this index did not probe.
        """
        total = self.files[clip.path].duration
        end = total if clip.end_s is None else min(clip.end_s, total)
        return max(0.0, end - clip.start_s)

    def durations(self) -> dict[str, float]:
        """Total seconds of audio per class, in :attr:`labels` order."""
        totals = dict.fromkeys(self.labels, 0.0)
        for clip in self.clips:
            totals[clip.label] += self.duration(clip)
        return totals


def dataset_source(path: str | os.PathLike[str]) -> Path:
    """The resolved file or folder :func:`open_dataset` reads ``path`` through.

    A folder holding a ``manifest.csv`` is read through that manifest, so
    ``data/set`` and ``data/set/manifest.csv`` name one dataset.
    """
    path = Path(path)
    return (_folder_manifest(path) or path).resolve()


def _folder_manifest(path: Path) -> Path | None:
    """``path``'s ``manifest.csv`` when ``path`` is a folder holding one."""
    manifest = path / MANIFEST_NAME
    return manifest if path.is_dir() and manifest.is_file() else None


def open_dataset(path: str | os.PathLike[str], *, min_clips_per_class: int = 5) -> DatasetIndex:
    """Read a labelled dataset: a folder of class folders, GTZAN, or a CSV manifest.

    Parameters
    ----------
    path : path-like
        A folder (``root/<label>/*.wav``..., or GTZAN with its
        ``genres_original`` folder) or a ``.csv`` manifest
        (``path,label[,track_id][,start_s,end_s][,...]``); see the module
        docstring. A folder holding a ``manifest.csv`` (as ``harmonies
        dataset`` writes) is read through that manifest: its ``track_id``
        keeps the clips cut from one recording together in a split, where
        the folder alone would make every clip file its own track.
    min_clips_per_class : int
        Classes with fewer clips are named in :attr:`DatasetIndex.warnings`.

    Returns
    -------
    DatasetIndex
        Unreadable, corrupt or missing files, and time ranges beyond their
        file's end, are in ``problems`` (one entry each) and not in ``clips``.

    Raises
    ------
    ParameterError
        ``path`` does not exist, is neither a folder nor a ``.csv``, a folder
        holds no class folder with audio, or the manifest is malformed (the
        message names the line: missing columns, wrong field count, a bad
        number, an empty path or label, ``end_s <= start_s``).
    """
    if isinstance(min_clips_per_class, bool) or not isinstance(min_clips_per_class, int) or min_clips_per_class < 0:
        raise ParameterError(f"min_clips_per_class must be an integer >= 0, got {min_clips_per_class!r}")
    path = Path(path)
    if manifest := _folder_manifest(path):
        index = _open_manifest(manifest)
        index.warnings.extend(_unlisted_audio(path, index))
    elif path.is_dir():
        index = _open_folders(path)
    elif path.is_file() and path.suffix.lower() == ".csv":
        index = _open_manifest(path)
    elif not path.exists():
        raise ParameterError(f"{path}: no such folder or manifest")
    else:
        raise ParameterError(f"{path}: expected a folder of class folders or a .csv manifest")
    index.warnings.extend(_class_warnings(index, min_clips_per_class))
    return index


# ---------------------------------------------------------------- folders


def _open_folders(path: Path) -> DatasetIndex:
    root, kind = path, "folders"
    for name in GTZAN_FOLDERS:
        if (path / name).is_dir():
            root, kind = path / name, "gtzan"
            break
    else:
        if path.name == "genres_original":
            kind = "gtzan"

    warnings: list[str] = []
    loose = [p for p in _children(root) if p.is_file() and _is_audio(p)]
    if loose:
        warnings.append(
            f"{len(loose)} audio file(s) directly under {root} ignored: a file's label is the name of "
            f"the folder it is in (e.g. {loose[0].name})"
        )
    labelled: list[tuple[str, Path]] = []
    for folder in (p for p in _children(root) if p.is_dir()):
        files = sorted(p for p in folder.rglob("*") if _is_audio(p) and not _hidden(p.relative_to(root)))
        if not files:
            warnings.append(f"folder {folder.name!r} holds no audio files; ignored")
            continue
        labelled.extend((folder.name, f) for f in files)
    if not labelled:
        extensions = "|".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
        raise ParameterError(
            f"{path}: no audio files in class folders (expected {root}/<label>/*.{{{extensions}}}, "
            "or a CSV manifest)"
        )

    clips: list[Clip] = []
    problems: list[Problem] = []
    files: dict[Path, AudioInfo] = {}
    for label, file in labelled:
        info = _probe(file)
        if isinstance(info, str):
            problems.append(Problem(file, info))
            continue
        files[file] = info
        rel = file.relative_to(root).as_posix()
        clips.append(Clip(path=file, label=label, track=rel, relpath=rel))
    return DatasetIndex(root=root, clips=clips, problems=problems, warnings=warnings, files=files, kind=kind)


def _unlisted_audio(folder: Path, index: DatasetIndex) -> list[str]:
    """A warning when audio in ``folder``'s class folders is missing from its manifest (and so left out)."""
    listed = {p.resolve() for p in index.files} | {p.path.resolve() for p in index.problems}
    unlisted = [
        f for sub in _children(folder) if sub.is_dir()
        for f in sorted(sub.rglob("*")) if _is_audio(f) and not _hidden(f.relative_to(folder)) and f.resolve() not in listed
    ]  # fmt: skip
    if not unlisted:
        return []
    return [f"{len(unlisted)} audio file(s) under {folder} are not in its {MANIFEST_NAME} and are left out "
            f"(e.g. {unlisted[0].relative_to(folder).as_posix()}): add them to the manifest, or remove it "
            "to read the class folders"]  # fmt: skip


def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()


# ---------------------------------------------------------------- manifests


def _open_manifest(manifest: Path) -> DatasetIndex:
    base = manifest.parent
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = list(_numbered_rows(csv.reader(f)))
    except UnicodeDecodeError as err:
        raise ParameterError(f"{manifest}: not UTF-8 text ({err})") from None
    except csv.Error as err:
        raise ParameterError(f"{manifest}: malformed CSV ({err})") from None
    if not rows:
        raise ParameterError(
            f"{manifest}: empty manifest; expected a header line path,label[,track_id][,start_s,end_s]"
        )

    header_line, header = rows[0]
    columns = [cell.strip() for cell in header]
    lowered = [c.lower() for c in columns]
    where = f"{manifest}: line {header_line}"
    duplicates = sorted({c for c in lowered if c and lowered.count(c) > 1})  # unnamed (trailing commas) are ignored
    if duplicates:
        raise ParameterError(f"{where}: repeated column(s) {', '.join(duplicates)}")
    missing = [c for c in ("path", "label") if c not in lowered]
    if missing:
        raise ParameterError(
            f"{where}: missing column(s) {', '.join(missing)}; the header must start "
            f"path,label[,track_id][,start_s,end_s] (found: {','.join(columns)})"
        )
    col = {name: lowered.index(name) for name in lowered}
    track_col = next((col[c] for c in TRACK_COLUMNS if c in col), None)
    special = {col["path"], col["label"], col.get("start_s"), col.get("end_s"), track_col}
    extra_cols = [(columns[i], i) for i in range(len(columns)) if i not in special and columns[i]]

    clips: list[Clip] = []
    problems: list[Problem] = []
    files: dict[Path, AudioInfo] = {}
    probed: dict[Path, AudioInfo | str] = {}
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{manifest}: line {line}"
        if len(row) != len(columns):
            raise ParameterError(f"{where}: {len(row)} fields, but the header has {len(columns)}")
        path_text = row[col["path"]].strip()
        label = row[col["label"]].strip()
        if not path_text:
            raise ParameterError(f"{where}: empty path")
        if not label:
            raise ParameterError(f"{where}: empty label")
        start = _number(row, col.get("start_s"), "start_s", where)
        end = _number(row, col.get("end_s"), "end_s", where)
        start = 0.0 if start is None else start
        if start < 0:
            raise ParameterError(f"{where}: start_s={start:g} is negative")
        if end is not None and end <= start:
            raise ParameterError(f"{where}: end_s={end:g} is not after start_s={start:g}")

        given = Path(path_text)
        file = given if given.is_absolute() else base / given
        rel = given.as_posix()
        track = row[track_col].strip() if track_col is not None else ""
        clip = Clip(
            path=file,
            label=label,
            track=track or rel,
            start_s=start,
            end_s=end,
            extra=tuple((name, row[i].strip()) for name, i in extra_cols),
            relpath=rel,
        )
        if clip.key in seen:
            problems.append(Problem(file, f"line {line}: the same file and range as line {seen[clip.key]}; skipped", "data"))
            continue
        seen[clip.key] = line

        if file not in probed:
            probed[file] = _probe(file)
            if isinstance(probed[file], str):
                problems.append(Problem(file, probed[file]))  # once per file, whatever its lines
        info = probed[file]
        if isinstance(info, str):
            continue
        files[file] = info
        if start >= info.duration or (end is not None and end > info.duration + END_TOLERANCE_S):
            shown = "end" if end is None else f"{end:g}"
            problems.append(
                Problem(file, f"line {line}: range {start:g}..{shown} s is beyond the file's {info.duration:.3f} s", "data")
            )
            continue
        clips.append(clip)
    return DatasetIndex(root=base, clips=clips, problems=problems, warnings=[], files=files, kind="manifest")


def _numbered_rows(reader: Iterable[list[str]]) -> Iterable[tuple[int, list[str]]]:
    # csv.reader.line_num after a row is the line it ended on; a row starts one past the previous end.
    previous = 0
    for row in reader:
        yield previous + 1, row
        previous = reader.line_num  # type: ignore[attr-defined]


def _number(row: list[str], index: int | None, name: str, where: str) -> float | None:
    if index is None:
        return None
    text = row[index].strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{where}: {name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise ParameterError(f"{where}: {name}={text!r} is not a finite number")
    return value


# ---------------------------------------------------------------- shared


def _probe(path: Path) -> AudioInfo | str:
    """The file's header, or the reason it cannot be used."""
    try:
        return probe(path)
    except HarmoniesError as err:
        return soundfile_reason(err, path)
    except Exception as err:  # anything else about one file is that file's problem
        return failure_reason(err, path)


def soundfile_reason(err: BaseException, path: str | os.PathLike[str]) -> str:
    """An error's text without the path that soundfile and the loaders put in it.

    ``"Error opening '/x/a.wav': Format not recognised."`` becomes
    ``"Format not recognised."`` (the caller shows the path once, beside it).
    """
    name = os.fspath(path)
    text = str(err) or type(err).__name__
    if text.startswith(f"{name}: "):
        text = text[len(name) + 2 :]
    return text.replace(f"Error opening {name!r}: ", "").strip()


def failure_reason(err: BaseException, path: str | os.PathLike[str]) -> str:
    """Why one file failed, for a report: :func:`soundfile_reason`, with the
    exception's type in front when it is not one of ours (``"MemoryError"``,
    ``"ValueError: ..."``): an unexpected failure should say what it was.
    """
    text = soundfile_reason(err, path)
    if isinstance(err, HarmoniesError) or text == type(err).__name__:
        return text
    return f"{type(err).__name__}: {text}"


def _class_warnings(index: DatasetIndex, minimum: int) -> list[str]:
    counts = index.counts()
    lines = [
        f"class {label!r} has only {n} clip{'s' if n != 1 else ''} (fewer than {minimum}): "
        "its scores will be unreliable and some splits may miss it"
        for label, n in counts.items()
        if n < minimum
    ]
    if len(counts) == 1:
        lines.append(f"only one class ({next(iter(counts))!r}): a classifier needs at least two")
    return lines


def _num(x: float) -> str:
    return f"{x:.10g}"
