"""``harmonies similar``: the clips or tracks of an embeddings file nearest to a query recording."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(short_help="Find the clips (or tracks) most similar to a recording, by cosine of embeddings.")
@click.argument("embeddings", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("query", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True, help="Results to show.")
@click.option("--tracks", "by_track", is_flag=True, help="Rank tracks instead of clips (by --track-score over their clips).")
@click.option("--track-score", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="With --tracks: a track scores its best clip's similarity, or the mean over its clips.")
@click.option("--other-tracks", is_flag=True,
              help="Leave out the query's own track (when the query is a file of the embeddings: its clips' track).")
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/features"), show_default=True, help="Feature cache.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def similar(embeddings: Path, query: Path, k: int, by_track: bool, track_score: str, other_tracks: bool, cache: Path,
            as_json: bool) -> None:  # fmt: skip
    """Embed QUERY with the model that made EMBEDDINGS (the file records its path and sha256, so a
    changed model is refused) and list the K nearest clips by cosine similarity.

    \b
    Examples:
      harmonies embed runs/backbone data/soundtracks --out emb.npz
      harmonies similar emb.npz song.wav --k 5
      harmonies similar emb.npz data/soundtracks/x/clip3.wav --tracks --other-tracks
    """
    from pyharmonies.errors import HarmoniesError

    try:
        import numpy as np

        from pyharmonies.data.sources import Clip
        from pyharmonies.training.embed import EmbeddingSet, embed_clips, reopen_embedder
        from pyharmonies.training.similar import nearest

        emb = EmbeddingSet.load(embeddings)
        embedder = reopen_embedder(emb.source)
        found, _ = embed_clips(embedder, [Clip(query, "", str(query))], cache_dir=cache, hop=int(emb.source["hop_frames"]), progress=False)
        me = query.resolve()
        own = np.asarray([Path(p).resolve() == me for p in emb.paths])
        exclude = None
        if other_tracks:
            own_tracks = set(emb.tracks[own])
            exclude = own | np.isin(emb.tracks, list(own_tracks))
        matches = nearest(emb.clips, emb.tracks, found.clips[0], k=k, exclude=exclude, by_track=by_track, track_score=track_score)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    rows = []
    for m in matches:
        end = emb.clip_end_s[m.index]
        rows.append({"rank": m.rank, "similarity": round(m.similarity, 6), "label": str(emb.labels[m.index]), "track": m.track,
                     "path": str(emb.paths[m.index]), "start_s": float(emb.clip_start_s[m.index]),
                     "end_s": None if np.isnan(end) else float(end), **({"clips": m.clips} if by_track else {})})  # fmt: skip
    if as_json:
        click.echo(json.dumps({"query": str(query), "in_embeddings": bool(own.any()), "by": "track" if by_track else "clip",
                               "results": rows}, indent=2))  # fmt: skip
        return
    from pyharmonies.commands._common import format_table

    what = "tracks" if by_track else "clips"
    note = ", its own track left out" if other_tracks and own.any() else ""
    click.echo(f"{len(rows)} {what} nearest to {query} (cosine{note}):")
    header = ["#", "similarity", "label", "track" if by_track else "clip", *(["clips"] if by_track else [])]
    table = []
    for r in rows:
        where = r["path"] + (f" [{r['start_s']:.1f}-{r['end_s']:.1f} s]" if r["end_s"] is not None else "")
        table.append([str(r["rank"]), f"{r['similarity']:.4f}", r["label"] or "-", r["track"] if by_track else where,
                      *([str(r["clips"])] if by_track else [])])  # fmt: skip
    click.echo(format_table(table, header, ">><<" + (">" if by_track else "")))
