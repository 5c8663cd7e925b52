"""``harmonies embed``: one vector per clip and per window, from a run, a backbone or a bundle."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Embed audio with a CNN run, a backbone or a bundle: vectors per clip and window in an .npz.")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("audio", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .npz to write.")
@click.option("--hop", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds between windows (default: one window, no overlap).")
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/features"), show_default=True,
              help="Feature cache (shared with train).")
@click.option("--backend", type=click.Choice(["auto", "tflite", "onnx"]), default="auto", show_default=True,
              help="A bundle: the runtime of its embedding file.")
@click.option("--precision", type=click.Choice(["auto", "int8", "fp32"]), default="auto", show_default=True,
              help="A bundle: int8 (the device's, the default when present) or fp32 embedding file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def embed(model: Path, audio: tuple[Path, ...], out: Path, hop: float | None, cache: Path, backend: str, precision: str,
          quiet: bool) -> None:  # fmt: skip
    """Embed AUDIO with MODEL and write OUT (.npz): the CNN's pooled features (the input of its
    classifier head) for every window, and per clip their mean.

    MODEL is a cnn or probe run folder (best.pt), a backbone (`harmonies pretrain`'s folder or a
    backbone.npz) or a bundle folder (`harmonies export` of a CNN: its embedding file runs in the
    device runtime, int8 by default). AUDIO: files, folders (searched recursively), or labelled
    datasets (a manifest .csv, a folder holding manifest.csv, or class folders root/<label>/*.wav),
    whose labels and track ids are kept. Unreadable files are reported and skipped.

    The .npz holds plain arrays (clips, windows, window_clip, window_start, paths, labels,
    tracks, clip_start_s, clip_end_s) and `source`, a JSON string naming the model and its
    sha256: `harmonies map` and `harmonies similar` read it.

    \b
    Examples:
      harmonies embed runs/cnn data/soundtracks --out emb.npz
      harmonies embed runs/backbone ~/Music/archive --out archive.npz
      harmonies embed export/cnn song1.wav song2.wav --out songs.npz --precision fp32
    """
    from pyharmonies.errors import HarmoniesError

    try:
        from pyharmonies.training.embed import embed_clips, gather_clips, open_embedder

        embedder = open_embedder(model, backend=backend, precision=precision)
        if not quiet:
            click.echo(f"embed: {embedder.describe()}", err=True)
        clips, problems = gather_clips(list(audio))
        fc = embedder.feature_config
        hop_frames = None if hop is None else max(1, int(round(hop * fc.sample_rate / fc.hop_length)))
        emb, more = embed_clips(embedder, clips, cache_dir=cache, hop=hop_frames, progress=not quiet)
        emb.save(out)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    for p in problems + more:
        click.echo(f"skipped {p}", err=True)
    labelled = int(sum(1 for s in emb.labels if s))
    click.echo(f"{len(emb)} clips ({labelled} labelled), {len(emb.windows)} windows, {emb.clips.shape[1]}-d: {out}")
