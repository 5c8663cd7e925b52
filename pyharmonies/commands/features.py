"""``harmonies features``: decode audio files, extract features, write .npz or .csv.

Each file is read block by block (:func:`pyharmonies.audio.iter_blocks`) and
its features computed by the native streaming extractor, whose frames equal
whole-file extraction bit for bit; every block's frames go straight to the
output, so memory does not grow with the length of a file. The output itself
does: all 13 features of an hour at the defaults are about 110 MB in .npz
(173 float32 values per frame, 155k frames) and about three times that in
.csv. While a file is written to an .npz, its features wait in one
temporary ``.npy`` per feature beside the output (the archive entry needs
the frame count before its data), then are copied into the archive.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pyharmonies.commands._common import (
    FileProgress,
    audio_arguments,
    build_config,
    config_options,
    features_option,
    parse_features,
)

if TYPE_CHECKING:
    import numpy as np

    from pyharmonies.features import FeatureConfig

OUTPUT_SUFFIXES = (".npz", ".csv")


@click.command(short_help="Extract features of audio files (summary, .npz or .csv).")
@audio_arguments
@config_options
@features_option
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the features: FILE.npz (one float32 array per file and feature, "
    "keys '<file stem>/<feature>' shaped (n, frames), plus 'config' and 'sources' as JSON text) "
    "or FILE.csv (one row per frame: file, frame, time_s, then one column per value, "
    "e.g. mfcc_0..mfcc_19, zcr). Without --out, print a summary per file.",
)
def features(
    audio: tuple[Path, ...],
    config_path: Path | None,
    sample_rate: int | None,
    n_fft: int | None,
    hop_length: int | None,
    n_mels: int | None,
    features_text: str,
    out: Path | None,
) -> None:
    """Extract features of each AUDIO file with the harmonies C core.

    Each file is decoded with libsndfile, mixed to mono and resampled (soxr)
    to the config's sample rate, a block at a time: memory does not grow
    with the length of a file. A file that fails, for whatever reason, is
    reported on stderr and skipped; the others are still processed and
    written, the last line says how many of how many failed, and the exit
    status is then 1. A truncated file is used, with a warning saying how
    much of it was read.

    \b
    Examples:
      harmonies features song.wav
      harmonies features *.flac --features log_mel --out feats.npz
      harmonies features a.wav b.wav --features frame_vector --out rows.csv
      harmonies features clip.wav --config bundle_features.json --n-mels 128
    """
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(
            f"{out}: the format is chosen by the suffix, one of {', '.join(OUTPUT_SUFFIXES)}",
            param_hint="'--out'",
        )
    config = build_config(config_path, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    names = parse_features(features_text)

    progress = FileProgress(audio, label="extracting")
    writer = None if out is None else open_writer(out, config, names)
    written = 0
    try:
        with progress.iterate() as paths:
            for path in paths:
                try:
                    with progress.warnings():
                        samples, frames = extract_file(path, config, names, writer)
                except Exception as err:  # this file's failure, whatever it is: reported, the others go on
                    progress.fail(path, err)
                    continue
                if writer is None:
                    click.echo(describe(path, samples, frames, names, config))
                written += 1
        if writer is not None:
            if written:
                writer.close()
                click.echo(f"wrote {out} ({written} file{'s' if written != 1 else ''}, {len(names)} features)")
            else:
                writer.abort()
                click.echo(f"nothing to write: no file could be read; {out} not written", err=True)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if progress.failed:
        click.echo(progress.summary(), err=True)
        click.get_current_context().exit(1)
    click.echo(progress.summary())


def extract_file(path: Path, config: FeatureConfig, names: tuple[str, ...], writer: NpzWriter | CsvWriter | None) -> tuple[int, int]:
    """Stream one file through the feature core into ``writer``; its samples (at the config's rate) and frames.

    The writer gets the file's frames as they come and keeps them only if the
    whole file goes through (a file that fails half-way leaves nothing).
    """
    from pyharmonies.audio import iter_blocks
    from pyharmonies.features import StreamingExtractor

    blocks = iter_blocks(path, config.sample_rate)  # the header is checked here
    stream = StreamingExtractor(config, features=names)
    samples = frames = 0
    if writer is not None:
        writer.begin(path)
    try:
        for block in blocks:
            samples += block.shape[0]
            feats = stream.push(block)
            frames += feats[names[0]].shape[1]
            if writer is not None:
                writer.add(feats)
        feats = stream.flush()
        frames += feats[names[0]].shape[1]
        if writer is not None:
            writer.add(feats)
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.rollback()
        raise
    return samples, frames


def describe(path: Path, samples: int, frames: int, names: tuple[str, ...], config: FeatureConfig) -> str:
    """A few readable lines about one file's features."""
    shapes = ", ".join(f"{name} ({config.feature_size(name)}, {frames})" for name in names)
    return (
        f"{path}: {samples / config.sample_rate:.2f} s at {config.sample_rate} Hz, "
        f"{frames} frames (hop {config.hop_length})\n  {shapes}"
    )


def open_writer(out: Path, config: FeatureConfig, names: tuple[str, ...]) -> NpzWriter | CsvWriter:
    if out.suffix.lower() == ".npz":
        return NpzWriter(out, config)
    return CsvWriter(out, config, names)


class _AtomicFile:
    """Writes go to ``<out>.part`` in the same folder, renamed on close."""

    def __init__(self, out: Path):
        self.out = out
        self.tmp = out.with_name(out.name + ".part")
        out.parent.mkdir(parents=True, exist_ok=True)

    def _commit(self) -> None:
        os.replace(self.tmp, self.out)

    def _discard(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


class NpzWriter(_AtomicFile):
    """An ``np.savez``-compatible archive written one file's features at a time.

    Keys: ``"<stem>/<feature>"`` (float32, ``(n, frames)``, stored frame by
    frame: Fortran order; a repeated stem gets ``_2``, ``_3``...),
    ``"config"`` (the FeatureConfig JSON) and ``"sources"`` (JSON object:
    stem key -> path as given). Read it with ``np.load(path)``; no pickles.

    Per audio file: :meth:`begin`, :meth:`add` for each block's frames,
    then :meth:`commit` (the features go into the archive) or
    :meth:`rollback` (they are dropped). Frames wait in a temporary ``.npy``
    per feature in a folder beside the output, never in memory.
    """

    def __init__(self, out: Path, config: FeatureConfig):
        super().__init__(out)
        self.config = config
        self.sources: dict[str, str] = {}
        self._zip = zipfile.ZipFile(self.tmp, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._spill = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".frames", dir=out.parent))
        self._files: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}
        self._path: Path | None = None

    def begin(self, path: Path) -> None:
        self.rollback()
        self._path = path

    def add(self, feats: dict[str, np.ndarray]) -> None:
        from pyharmonies.npyframes import NpyFrameWriter

        for name, array in feats.items():
            if name not in self._writers:
                self._files[name] = open(self._spill / f"{len(self._files)}.npy", "w+b")
                self._writers[name] = NpyFrameWriter(self._files[name], array.shape[0])
            self._writers[name].write(array)

    def commit(self) -> str:
        """Copy the file's features into the archive; its key."""
        if self._path is None:
            raise RuntimeError("commit() without begin()")
        key = unique_key(self._path.stem, self.sources)
        for name, fh in self._files.items():
            self._writers[name].close()
            fh.seek(0)
            with self._zip.open(f"{key}/{name}.npy", mode="w", force_zip64=True) as entry:
                shutil.copyfileobj(fh, entry, 1 << 20)
        self.sources[key] = str(self._path)
        self.rollback()
        return key

    def rollback(self) -> None:
        """Drop the frames of the file being written (if any)."""
        for fh in self._files.values():
            fh.close()
        for spilled in self._spill.glob("*.npy"):
            spilled.unlink()
        self._files.clear()
        self._writers.clear()
        self._path = None

    def _write(self, key: str, array: Any) -> None:
        import numpy as np

        with self._zip.open(key + ".npy", mode="w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> None:
        import numpy as np

        self.rollback()
        self._write("config", np.array(self.config.to_json()))
        self._write("sources", np.array(json.dumps(self.sources)))
        self._zip.close()
        shutil.rmtree(self._spill, ignore_errors=True)
        self._commit()

    def abort(self) -> None:
        self.rollback()
        self._zip.close()
        shutil.rmtree(self._spill, ignore_errors=True)
        self._discard()


class CsvWriter(_AtomicFile):
    """One row per frame: ``file, frame, time_s``, then one column per value.

    Multi-row features get one column per row (``mfcc_0``..``mfcc_19``,
    ``log_mel_0``..); one-row features keep their name (``zcr``). ``time_s``
    is ``frame * hop_length / sample_rate`` (the frame's centre when
    ``center=True``, as librosa's ``frames_to_time``). Values are written
    with 9 significant digits, which round-trips float32 exactly.

    Rows are written as the frames come (:meth:`add`); a file that fails
    half-way is cut off again (:meth:`rollback`).
    """

    def __init__(self, out: Path, config: FeatureConfig, names: tuple[str, ...]):
        super().__init__(out)
        self.config = config
        self.names = names
        self._file = open(self.tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["file", "frame", "time_s", *csv_columns(config, names)])
        self._mark: int | None = None
        self._name = ""
        self._frame = 0

    def begin(self, path: Path) -> None:
        self._mark = self._file.tell()
        self._name = str(path)
        self._frame = 0

    def add(self, feats: dict[str, np.ndarray]) -> None:
        import numpy as np

        table = np.concatenate([feats[name] for name in self.names], axis=0).T  # (frames, columns)
        step = self.config.hop_length / self.config.sample_rate
        for row in table:
            frame = self._frame
            self._csv.writerow([self._name, frame, f"{frame * step:.6f}", *(f"{v:.9g}" for v in row.tolist())])
            self._frame += 1

    def commit(self) -> None:
        self._mark = None

    def rollback(self) -> None:
        if self._mark is not None:
            self._file.seek(self._mark)
            self._file.truncate()
            self._mark = None

    def close(self) -> None:
        self._file.close()
        self._commit()

    def abort(self) -> None:
        self._file.close()
        self._discard()


def csv_columns(config: FeatureConfig, names: tuple[str, ...]) -> list[str]:
    """Column names of the feature values, in order."""
    columns: list[str] = []
    for name in names:
        size = config.feature_size(name)
        columns.extend([name] if size == 1 else [f"{name}_{i}" for i in range(size)])
    return columns


def unique_key(stem: str, taken: dict[str, str]) -> str:
    key, n = stem, 1
    while key in taken or key in ("config", "sources"):
        n += 1
        key = f"{stem}_{n}"
    return key
