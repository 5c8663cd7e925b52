"""``harmonies dataset``: make a synthetic or an instrument corpus, or describe a dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from pyharmonies.commands._common import format_table

#: The synthetic classes, in the order --classes takes them (pyharmonies.data.synth.CLASS_NAMES;
#: repeated here so that --help imports nothing heavy; a test keeps both equal).
SYNTH_CLASSES = (
    "strings",
    "plucked",
    "percussion",
    "brass",
    "choir",
    "electronic",
    "organ",
    "bells",
    "flute",
    "piano",
    "ambient",
    "chiptune",
)

#: The instrument families, in their default order (pyharmonies.data.instruments.FAMILY_NAMES,
#: repeated for the same reason; a test keeps both equal).
INSTRUMENT_FAMILIES = ("piano", "guitar", "strings", "brass", "reed", "pipe")


@click.group(short_help="Make a synthetic or an instrument corpus, or describe a dataset.")
def dataset() -> None:
    """Datasets: make a synthetic corpus or an instrument corpus, or describe one.

    A dataset is a folder of class folders (root/<label>/*.wav|flac|ogg|mp3|aif|aiff;
    GTZAN's genres_original/<genre>/ is one), or a CSV manifest with the header
    path,label[,track_id][,start_s,end_s][,other columns] whose paths are relative
    to the manifest's folder.

    \b
    Examples:
      harmonies dataset synth data/synth
      harmonies dataset instruments data/instruments
      harmonies dataset soundtracks data/soundtracks
      harmonies dataset info data/synth/manifest.csv --group-by artist
      harmonies dataset info ~/datasets/gtzan
    """


@dataset.command(short_help="Write a synthetic, musically inspired labelled corpus.")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--classes",
    type=click.IntRange(1, len(SYNTH_CLASSES)),
    default=5,
    show_default=True,
    help=f"How many classes, taken in this order: {', '.join(SYNTH_CLASSES)}.",
)
@click.option(
    "--clips-per-class", type=click.IntRange(min=1), default=40, show_default=True, help="Clips of each class."
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, 600, min_open=True),
    default=5.0,
    show_default=True,
    help="Length of every clip in seconds.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same samples (every file, bit for bit)."
)
@click.option(
    "--sample-rate", type=click.IntRange(8000, 96000), default=22050, show_default=True, help="Sampling rate (Hz)."
)
@click.option("--force", is_flag=True, help="Write into OUT even if it is not empty (same-named files are replaced).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def synth(
    out: Path, classes: int, clips_per_class: int, seconds: float, seed: int, sample_rate: int, force: bool, quiet: bool
) -> None:
    """Write a synthetic labelled corpus to OUT, for tests, demos and benchmarks.

    Each class is a musical recipe (timbre, rhythm and tempo, noise bands): bowed
    strings, plucked arpeggios, a drum kit, brass, a choir, electronic dance music,
    organ, bells, flute, piano, ambient drones, chiptune. Inside a class, key,
    register, tempo, pattern, phases, loudness, background noise and the performer's
    recording chain (tilt, room, noise colour) vary, so the classes are learnable
    but not trivial.

    Writes OUT/<class>/<class>_<i>.wav (16-bit PCM) and OUT/manifest.csv with the
    columns path,label,track_id,artist: every clip is its own track, and each class
    has a few synthetic performers, so that --group-by artist can be tried.

    \b
    Examples:
      harmonies dataset synth data/synth
      harmonies dataset synth data/synth10 --classes 10 --clips-per-class 60 --seconds 10
      harmonies dataset synth /tmp/tiny --classes 3 --clips-per-class 6 --seconds 2 --seed 7
    """
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; choose another folder, or pass --force to write into it")
    from pyharmonies.data.synth import synth_corpus

    index = synth_corpus(
        out,
        classes=classes,
        clips_per_class=clips_per_class,
        seconds=seconds,
        sample_rate=sample_rate,
        seed=seed,
        progress=not quiet,
    )
    click.echo(
        f"wrote {len(index.clips)} clips ({classes} classes x {clips_per_class}, {seconds:g} s at {sample_rate} Hz) "
        f"to {out}\nmanifest: {out / 'manifest.csv'} (path,label,track_id,artist)"
    )


@dataset.command(short_help="Folk tunes played by instrument families, rendered from recorded samples.")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--tunes",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="How many tunes from music21's corpus; every family plays every tune.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, 120, min_open=True),
    default=8.0,
    show_default=True,
    help="Length of every clip in seconds.",
)
@click.option(
    "--soundfont",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="General-MIDI SoundFont (.sf2). Default: $HARMONIES_SOUNDFONT, then "
    "/usr/share/sounds/sf2/FluidR3_GM.sf2, /usr/share/soundfonts/FluidR3_GM.sf2, pretty_midi's TimGM6mb.sf2.",
)
@click.option(
    "--families",
    default=",".join(INSTRUMENT_FAMILIES),
    show_default=True,
    metavar="LIST",
    help="Comma-separated instrument families (the classes).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True,
    help="Same seed, same files (byte for byte, with the same SoundFont and fluidsynth).",
)  # fmt: skip
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Renderings at once [default: all cores].")
@click.option("--force", is_flag=True, help="Write into OUT even if it is not empty (same-named files are replaced).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def instruments(
    out: Path,
    tunes: int,
    seconds: float,
    soundfont: Path | None,
    families: str,
    seed: int,
    jobs: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """Write a corpus of real instrument timbres to OUT: folk and fiddle tunes
    from music21's corpus, each played by every instrument family.

    Each (tune, family) is rendered by the fluidsynth synthesizer from a
    General-MIDI SoundFont (recorded samples): one of the family's instruments
    (piano: grand, bright, electric piano; guitar: nylon, steel, jazz, clean;
    strings: violin, viola, cello, string ensemble; brass: trumpet, trombone,
    French horn, brass section; reed: alto and tenor sax, oboe, bassoon,
    clarinet; pipe: piccolo, flute, recorder, pan flute), in an octave that
    suits it, with tempo, loudness, articulation and room drawn per tune and
    family. The label is the family and the melody does not give it away:
    split by track, test melodies stay unheard in training.

    Writes OUT/<family>/<tune_id>.wav (mono, 16-bit PCM, exactly --seconds
    long, levelled to -20 dBFS RMS) and OUT/manifest.csv with the columns
    path,label,track_id (track_id: the tune). Tunes music21 cannot parse, or
    that are not a single melody, are skipped and counted.

    \b
    Needs fluidsynth, a General-MIDI SoundFont and music21:
      apt-get install fluidsynth fluid-soundfont-gm
      pip install 'harmonies[demo]'

    \b
    Examples:
      harmonies dataset instruments data/instruments
      harmonies dataset instruments /tmp/small --tunes 12 --seconds 4 --families piano,strings,pipe
      harmonies train data/instruments/manifest.csv --model cnn
    """
    import csv
    import time

    from pyharmonies.errors import HarmoniesError, ParameterError

    names = [f.strip() for f in families.split(",") if f.strip()]
    unknown = [f for f in names if f not in INSTRUMENT_FAMILIES]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(INSTRUMENT_FAMILIES)}",
            param_hint="--families",
        )
    if len(set(names)) != len(names):
        raise click.BadParameter(f"a family is repeated in {families!r}", param_hint="--families")
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; choose another folder, or pass --force to write into it")

    from pyharmonies.data.instruments import SkippedTune, make_instrument_corpus
    from pyharmonies.data.render import find_fluidsynth, find_soundfont

    skipped: list[SkippedTune] = []
    start = time.perf_counter()
    try:
        find_fluidsynth()
        sf2 = find_soundfont(soundfont)
        manifest = make_instrument_corpus(
            out, tunes=tunes, seconds=seconds, families=names, soundfont=sf2, seed=seed, jobs=jobs,
            progress=not quiet, on_skip=skipped.append,
        )  # fmt: skip
    except ParameterError as err:
        raise click.ClickException(str(err)) from None
    except HarmoniesError as err:
        raise click.ClickException(f"rendering failed: {err}") from None
    wall = time.perf_counter() - start
    for skip in skipped:  # after the progress bars, not through them
        click.echo(f"skipped {skip.source}: {skip.reason}", err=True)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    size = sum((out / row["path"]).stat().st_size for row in rows) + manifest.stat().st_size
    audio = len(rows) * seconds
    click.echo(
        f"wrote {len(rows)} files ({len(names)} families x {tunes} tunes, {seconds:g} s each: "
        f"{audio:g} s = {_hms(audio)} of audio, {size / 1e6:.1f} MB) to {out} in {wall:.1f} s\n"
        f"manifest: {manifest} (path,label,track_id)\n"
        f"rendered by fluidsynth with {sf2}"
    )
    if skipped:
        bad = sum(s.unparseable for s in skipped)
        click.echo(f"skipped {len(skipped)} tune{'s' if len(skipped) != 1 else ''} "
                   f"({bad} unparseable, {len(skipped) - bad} not a usable melody)")  # fmt: skip


#: The soundtrack packages (pyharmonies.data.soundtracks.PACKAGES, repeated for the same reason; a test keeps
#: both equal).
SOUNDTRACK_PACKAGES = (
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


@dataset.command(short_help="Real music: the soundtracks of nine Debian game packages, cut into clips.")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--packages", default=",".join(SOUNDTRACK_PACKAGES), show_default=True, metavar="LIST",
              help="Comma-separated Debian packages, one class each (label: the name without -data/-game). "
              "Without --deb-dir, only these nine.")  # fmt: skip
@click.option("--clip-seconds", type=click.FloatRange(0, 600, min_open=True), default=10.0, show_default=True,
              help="Length of every clip; clips follow one another with no gap or overlap.")  # fmt: skip
@click.option("--skip-seconds", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds left out at the start and at the end of every track.")  # fmt: skip
@click.option("--min-track-seconds", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Shorter music files are jingles and are left out.")  # fmt: skip
@click.option("--min-rms-dbfs", type=float, default=-50.0, show_default=True,
              help="Clips quieter than this RMS (dB re full scale) are near-silent and dropped.")  # fmt: skip
@click.option("--max-clips-per-class", type=click.IntRange(min=1), default=None,
              help="At most N clips per class, taken from the tracks in turn (round robin) at fixed, "
              "spread-out places [default: every clip].")  # fmt: skip
@click.option("--sample-rate", type=click.IntRange(8000, 96000), default=22050, show_default=True,
              help="Rate of the written clips (Hz).")  # fmt: skip
@click.option("--deb-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Use the .debs in DIR (one <package>_*.deb each) and download nothing; any package names "
              "are then accepted.")  # fmt: skip
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Without --deb-dir: .debs found here are reused, missing ones are downloaded here "
              "[default: ~/.cache/harmonies/debs].")  # fmt: skip
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Tracks decoded at once [default: all cores].")  # fmt: skip
@click.option("--force", is_flag=True, help="Write into OUT even if it is not empty (same-named files are replaced).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def soundtracks(
    out: Path,
    packages: str,
    clip_seconds: float,
    skip_seconds: float,
    min_track_seconds: float,
    min_rms_dbfs: float,
    max_clips_per_class: int | None,
    sample_rate: int,
    deb_dir: Path | None,
    cache_dir: Path | None,
    jobs: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """Write a labelled set of real music to OUT: the soundtracks of Debian
    game packages, one class per game.

    Each package is fetched with `apt-get download` (nothing is installed;
    no root needed, but `apt-get update` must have run once) and unpacked
    with `dpkg-deb -x` into a scratch folder. Its music is the Ogg files in
    a folder named music/Musics/Music.ocg at least --min-track-seconds long.
    Each track is decoded, mixed to mono, resampled (soxr) and cut into
    back-to-back clips, --skip-seconds left out at both ends; near-silent
    clips are dropped. Clips keep the recording's own level.

    \b
    Writes:
      OUT/<label>/<track>_<k>.wav  mono 16-bit PCM clips (k: the clip's place in the track)
      OUT/manifest.csv             path,label,track_id; versions of one piece
                                   (remixes, _2, _old) share a track_id, so a
                                   split by track never hears a test piece in training
      OUT/provenance.json          per package: version, .deb file and sha256, licences
                                   (its copyright file), tracks and seconds used

    The same .debs and options give byte-identical files, whatever --jobs.
    One unreadable music file is reported and skipped.

    \b
    Examples:
      harmonies dataset soundtracks data/soundtracks
      harmonies dataset soundtracks data/st-small --max-clips-per-class 100 --deb-dir /var/cache/debs
      harmonies train data/soundtracks/manifest.csv --model cnn
    """
    import time

    from pyharmonies.data.soundtracks import PACKAGES, Settings, SkippedFile, build_soundtracks
    from pyharmonies.errors import HarmoniesError, ParameterError

    names = [p.strip() for p in packages.split(",") if p.strip()]
    if deb_dir is None and [p for p in names if p not in PACKAGES]:
        raise click.BadParameter(
            f"{', '.join(p for p in names if p not in PACKAGES)}: only these packages are downloaded: "
            f"{', '.join(PACKAGES)} (other soundtracks are kept aside, unheard, for evaluation)",
            param_hint="--packages",
        )
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; choose another folder, or pass --force to write into it")
    settings = Settings(
        sample_rate=sample_rate, clip_seconds=clip_seconds, skip_head=skip_seconds, skip_tail=skip_seconds,
        min_track_seconds=min_track_seconds, min_rms_dbfs=min_rms_dbfs, max_clips_per_class=max_clips_per_class,
    )  # fmt: skip
    skipped: list[SkippedFile] = []
    start = time.perf_counter()
    try:
        manifest = build_soundtracks(
            out, packages=names, deb_dir=deb_dir, cache_dir=cache_dir, settings=settings, jobs=jobs,
            progress=not quiet, on_skip=skipped.append,
        )  # fmt: skip
    except ParameterError as err:
        raise click.ClickException(str(err)) from None
    except HarmoniesError as err:
        raise click.ClickException(f"building the soundtracks set failed: {err}") from None
    wall = time.perf_counter() - start
    for skip in skipped:  # after the progress bars, not through them
        if not skip.short:
            click.echo(f"skipped {skip}", err=True)
    _soundtracks_summary(out, manifest, wall, sum(s.short for s in skipped))


def _soundtracks_summary(out: Path, manifest: Path, wall: float, jingles: int) -> None:
    """The per-class table of a freshly built soundtracks set."""
    import csv
    import json

    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    sizes: Counter[str] = Counter()
    with open(manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            sizes[row["label"]] += (out / row["path"]).stat().st_size
    rows, totals = [], [0, 0, 0, 0.0, 0.0]
    for p in provenance["packages"]:
        values = [p["clips"], p["tracks_used"], p["track_ids"], p["seconds_used"], sizes[p["label"]] / 1e6]
        totals = [a + b for a, b in zip(totals, values)]
        rows.append([p["label"], p["package"], p["version"], str(values[0]), str(values[1]), str(values[2]),
                     f"{values[3] / 3600:.2f}", f"{values[4]:.1f}"])  # fmt: skip
    rows.append(["total", "", "", str(totals[0]), str(totals[1]), str(totals[2]), f"{totals[3] / 3600:.2f}",
                 f"{totals[4]:.1f}"])  # fmt: skip
    headers = ["class", "package", "version", "clips", "tracks", "track_ids", "hours", "MB"]
    click.echo(format_table(rows, headers, "<<<>>>>>"))
    click.echo(
        f"wrote {totals[0]} clips ({_hms(totals[3])} of audio, {totals[4]:.1f} MB) to {out} in {wall:.1f} s"
        + (f"; {jingles} music file{'s' if jingles != 1 else ''} under the duration floor left out" if jingles else "")
        + f"\nmanifest: {manifest} (path,label,track_id)\nprovenance: {out / 'provenance.json'}"
    )


@dataset.command(short_help="Clips and duration per class, sample rates, unreadable files.")
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="DIR_OR_CSV")
@click.option(
    "--group-by",
    default="track",
    show_default=True,
    metavar="COLUMN",
    help="Count groups by this manifest column (e.g. artist) instead of tracks; "
    "splits keep each group in one split.",
)
@click.option(
    "--min-clips",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Warn about classes with fewer clips than this.",
)
def info(source: Path, group_by: str, min_clips: int) -> None:
    """Describe the dataset DIR_OR_CSV: what training would see.

    Per class: clips, groups (tracks, or --group-by COLUMN) and total duration;
    then the sample rates and channel counts of the files, the files that cannot
    be used (unreadable, corrupt, missing, or a time range past the file's end)
    with the reason, and warnings (tiny classes). Every file's header is read;
    none is decoded. The exit status is 0 even when files are listed as unusable:
    training skips them the same way.

    \b
    Examples:
      harmonies dataset info data/synth
      harmonies dataset info data/synth/manifest.csv --group-by artist
      harmonies dataset info ~/datasets/gtzan          (finds genres_original/)
    """
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.errors import ParameterError

    try:
        index = open_dataset(source, min_clips_per_class=min_clips)
        groups = {label: set() for label in index.labels}
        for clip in index.clips:
            groups[clip.label].add(clip.group(group_by))
    except ParameterError as err:
        raise click.UsageError(str(err)) from None

    kinds = {"folders": "class folders", "gtzan": "GTZAN (class folders)", "manifest": "CSV manifest"}
    click.echo(f"{source}: {kinds.get(index.kind, index.kind)}, paths relative to {index.root}")
    counts, durations = index.counts(), index.durations()
    rows = [
        [label, str(counts[label]), str(len(groups[label])), f"{durations[label]:.1f}", _hms(durations[label])]
        for label in index.labels
    ]
    total = sum(durations.values())
    n_groups = len({clip.group(group_by) for clip in index.clips})
    rows.append(["total", str(len(index.clips)), str(n_groups), f"{total:.1f}", _hms(total)])
    if index.clips:
        click.echo(format_table(rows, ["class", "clips", f"{group_by}s", "seconds", "h:mm:ss"], "<>>>>"))
    else:
        click.echo("no usable clips")

    used = {clip.path for clip in index.clips}
    infos = [index.files[p] for p in sorted(used)]
    rates = Counter(i.sample_rate for i in infos)
    channels = Counter(i.channels for i in infos)
    if infos:
        click.echo(
            "sample rates: "
            + ", ".join(f"{sr} Hz ({n} file{'s' if n != 1 else ''})" for sr, n in sorted(rates.items()))
        )
        click.echo("channels: " + ", ".join(f"{_channels(c)} ({n})" for c, n in sorted(channels.items())))
    if index.problems:
        click.echo(f"unusable ({len(index.problems)}), skipped:")
        for problem in index.problems:
            click.echo(f"  {_relative(problem.path, index.root)}: {problem.reason}")
    for line in index.warnings:
        click.echo(f"warning: {line}")


@dataset.command("pitch-shift", short_help="Offline pitch-shifted copies of a dataset (augmentation).")
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="DIR_OR_CSV")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--semitones", default="-2,2", show_default=True, metavar="LIST",
              help="Comma-separated shifts in semitones (negative: down); tempo is kept.")
@click.option("--sample-rate", type=int, default=22050, show_default=True, help="Rate the copies are decoded at and written with.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def pitch_shift(source: Path, out: Path, semitones: str, sample_rate: int, quiet: bool) -> None:
    """Write pitch-shifted copies of every file of DIR_OR_CSV into OUT, and
    OUT/manifest.csv listing the originals and the copies.

    Each copy keeps its original's label and track, so a grouped split keeps a
    song and its shifted copies together (no leak between train and test).
    Train on OUT/manifest.csv. Uses librosa (workstation side).

    \b
    Example:
      harmonies dataset pitch-shift data/gtzan data/gtzan-shifted --semitones -2,-1,1,2
      harmonies train data/gtzan-shifted/manifest.csv --model cnn
    """
    import csv

    from pyharmonies.data.augment import pitch_shift_offline
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.errors import HarmoniesError

    try:
        shifts = [float(x) for x in semitones.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{semitones!r} is not a comma-separated list of numbers", param_hint="--semitones") from None
    if not shifts:
        raise click.BadParameter("give at least one shift", param_hint="--semitones")
    try:
        index = open_dataset(source)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], 0
    files = sorted({c.path: c for c in index.clips}.items())
    with click.progressbar(files, label="pitch-shift", hidden=quiet) as bar:
        for path, clip in bar:
            clips = [c for c in index.clips if c.path == path]
            for c in clips:
                rows.append((str(path.resolve()), c.label, c.track, c.start_s, "" if c.end_s is None else c.end_s))
            for n in shifts:
                dst = out / clip.label / f"{path.stem}_p{n:+g}.wav"
                try:
                    pitch_shift_offline(path, dst, n, sample_rate)
                except HarmoniesError as err:
                    click.echo(f"error: {path}: {err}", err=True)
                    failed += 1
                    continue
                for c in clips:  # the tempo is kept, so time ranges stay valid
                    rows.append((str(dst.resolve()), c.label, c.track, c.start_s, "" if c.end_s is None else c.end_s))
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "track_id", "start_s", "end_s"])
        writer.writerows(rows)
    click.echo(f"{len(files)} files x {len(shifts)} shifts -> {out}; {len(rows)} clips in {out / 'manifest.csv'}"
               + (f"; {failed} failed" if failed else ""))
    if failed:
        raise SystemExit(1)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, f"{n} channels")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
