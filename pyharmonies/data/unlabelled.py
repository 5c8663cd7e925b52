"""Unlabelled audio for pretraining: folders, files and manifests, grouped by recording.

Labels, where a source has them, are kept on the clips but never used for
learning. What matters is the *recording* (``Clip.track``): two crops of one
recording are a positive pair, crops of others are negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyharmonies.audio import AUDIO_EXTENSIONS
from pyharmonies.data.sources import MANIFEST_NAME, Clip, Problem, open_dataset
from pyharmonies.data.splits import load_splits
from pyharmonies.errors import ParameterError

__all__ = ["UnlabelledAudio", "open_unlabelled"]


class UnlabelledAudio:
    """Clips of audio and the recordings they belong to.

    Attributes
    ----------
    clips : list of Clip
        Every clip; ``track`` names its recording (a manifest's ``track_id``,
        otherwise the file).
    problems : list of Problem
        Sources that could not be read (reported, skipped).
    excluded_tracks : int
        Recordings left out by ``exclude`` (a fold's test tracks).
    """

    def __init__(self, clips: list[Clip], problems: list[Problem], excluded_tracks: int = 0):
        self.clips = clips
        self.problems = problems
        self.excluded_tracks = excluded_tracks

    @property
    def tracks(self) -> list[str]:
        """Sorted distinct recordings."""
        return sorted({c.track for c in self.clips})


def open_unlabelled(sources: Sequence[str | Path], *, exclude: str | Path | None = None) -> UnlabelledAudio:
    """Gather the clips of ``sources``: audio files, folders (searched recursively) or datasets.

    Parameters
    ----------
    sources : sequence of path-like
        A ``.csv`` manifest, or a folder holding ``manifest.csv`` (read
        through it, so its ``track_id`` groups clips cut from one recording);
        any other folder: every audio file below it, each its own recording;
        an audio file: one recording.
    exclude : path-like, optional
        A ``splits.json`` of a training run (e.g. ``runs/cnn/fold-2/splits.json``):
        every recording with a clip in its *test* split is left out, so a
        backbone pretrained here has never heard that fold's test tracks.
        Its clip keys must match the first dataset source.

    Raises
    ------
    ParameterError
        A source does not exist, nothing readable was found, or ``exclude``
        names clips that no dataset source has.
    """
    clips: list[Clip] = []
    problems: list[Problem] = []
    datasets: list[list[Clip]] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise ParameterError(f"{path}: no such file or folder")
        if path.suffix.lower() == ".csv" or (path.is_dir() and (path / MANIFEST_NAME).is_file()):
            index = open_dataset(path, min_clips_per_class=0)
            # Track ids are unique within a dataset only: prefix them with the source.
            found = [_retracked(c, f"{path}:{c.track}") for c in index.clips]
            datasets.append(found)
            clips += found
            problems += index.problems
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not _hidden(p, path)):
                clips.append(Clip(file, "", str(file), relpath=file.relative_to(path).as_posix()))
        else:
            clips.append(Clip(path, "", str(path)))
    excluded = 0
    if exclude is not None:
        if not datasets:
            raise ParameterError(f"--exclude {exclude}: needs a dataset source (a manifest) whose clips it names")
        test = load_splits(exclude, datasets[0]).get("test", [])
        held_out = {datasets[0][i].track for i in test}
        if not held_out:
            raise ParameterError(f"--exclude {exclude}: its test split names no clip of {sources[0]}")
        clips = [c for c in clips if c.track not in held_out]
        excluded = len(held_out)
    if not clips:
        raise ParameterError("no audio found in " + ", ".join(map(str, sources)))
    return UnlabelledAudio(clips, problems, excluded)


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def _retracked(clip: Clip, track: str) -> Clip:
    return Clip(clip.path, clip.label, track, clip.start_s, clip.end_s, clip.extra, clip.relpath)
