"""``harmonies features``: decode audio files, extract features, write .npz or .csv."""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pyharmonies.commands._common import (
    FileProgress,
    audio_arguments,
    build_config,
    config_options,
    decode,
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
    to the config's sample rate. A file that cannot be read is reported on
    stderr and skipped; the others are still processed and written, and the
    exit status is then 1.

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

    from pyharmonies.errors import HarmoniesError
    from pyharmonies.features import extract

    progress = FileProgress(audio, label="extracting")
    writer = None if out is None else open_writer(out, config, names)
    written = 0
    try:
        with progress.iterate() as paths:
            for path in paths:
                try:
                    y = decode(path, config)
                    feats = extract(y, config, features=names)
                except (HarmoniesError, ValueError, TypeError, OSError) as err:
                    progress.fail(path, err)
                    continue
                if writer is None:
                    click.echo(describe(path, y, feats, config))
                else:
                    writer.add(path, feats)
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
    click.echo(progress.summary())
    if progress.failed:
        click.get_current_context().exit(1)


def describe(path: Path, y: np.ndarray, feats: dict[str, np.ndarray], config: FeatureConfig) -> str:
    """A few readable lines about one file's features."""
    frames = config.frames(y.size)
    shapes = ", ".join(f"{name} {tuple(a.shape)}" for name, a in feats.items())
    return (
        f"{path}: {y.size / config.sample_rate:.2f} s at {config.sample_rate} Hz, "
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
    """An ``np.savez``-compatible archive written one array at a time.

    Keys: ``"<stem>/<feature>"`` (float32, ``(n, frames)``; a repeated stem
    gets ``_2``, ``_3``...), ``"config"`` (the FeatureConfig JSON) and
    ``"sources"`` (JSON object: stem key -> path as given). Read it with
    ``np.load(path)``; no pickles.
    """

    def __init__(self, out: Path, config: FeatureConfig):
        super().__init__(out)
        self.config = config
        self.sources: dict[str, str] = {}
        self._zip = zipfile.ZipFile(self.tmp, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def add(self, path: Path, feats: dict[str, np.ndarray]) -> str:
        import numpy as np

        key = unique_key(path.stem, self.sources)
        self.sources[key] = str(path)
        for name, array in feats.items():
            self._write(f"{key}/{name}", np.ascontiguousarray(array, dtype=np.float32))
        return key

    def _write(self, key: str, array: Any) -> None:
        import numpy as np

        with self._zip.open(key + ".npy", mode="w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> None:
        import numpy as np

        self._write("config", np.array(self.config.to_json()))
        self._write("sources", np.array(json.dumps(self.sources)))
        self._zip.close()
        self._commit()

    def abort(self) -> None:
        self._zip.close()
        self._discard()


class CsvWriter(_AtomicFile):
    """One row per frame: ``file, frame, time_s``, then one column per value.

    Multi-row features get one column per row (``mfcc_0``..``mfcc_19``,
    ``log_mel_0``..); one-row features keep their name (``zcr``). ``time_s``
    is ``frame * hop_length / sample_rate`` (the frame's centre when
    ``center=True``, as librosa's ``frames_to_time``). Values are written
    with 9 significant digits, which round-trips float32 exactly.
    """

    def __init__(self, out: Path, config: FeatureConfig, names: tuple[str, ...]):
        super().__init__(out)
        self.config = config
        self.names = names
        self._file = open(self.tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["file", "frame", "time_s", *csv_columns(config, names)])

    def add(self, path: Path, feats: dict[str, np.ndarray]) -> None:
        import numpy as np

        table = np.concatenate([feats[name] for name in self.names], axis=0).T  # (frames, columns)
        step = self.config.hop_length / self.config.sample_rate
        name = str(path)
        for frame, row in enumerate(table):
            self._csv.writerow([name, frame, f"{frame * step:.6f}", *(f"{v:.9g}" for v in row.tolist())])

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
