"""``harmonies map``: a t-SNE picture of an embeddings file, one point per clip, coloured by label."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("map", short_help="Draw a t-SNE map of embedded clips, coloured by label (a PNG).")
@click.argument("embeddings", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("map.png"), show_default=True, help="The PNG to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="t-SNE's seed: the same seed draws the same map (t-SNE starts from the PCA of the vectors, so seeds differ little).")
@click.option("--perplexity", type=click.FloatRange(min=0, min_open=True), default=None,
              help="t-SNE perplexity (default 30, lowered for small sets).")
@click.option("--title", default="", help="The figure's title (default: what was embedded, with what).")
def map_command(embeddings: Path, out: Path, seed: int, perplexity: float | None, title: str) -> None:
    """Draw EMBEDDINGS (from `harmonies embed`) as a 2-D t-SNE: one point per clip, coloured by
    its label, unlabelled clips grey, a legend with the count of each label. Clips of one kind of
    music should gather; a label scattered everywhere is one the model does not tell apart.

    \b
    Examples:
      harmonies embed runs/backbone data/soundtracks --out emb.npz
      harmonies map emb.npz --out map.png --seed 0
    """
    from pyharmonies.errors import HarmoniesError

    try:
        from pyharmonies.training.embed import EmbeddingSet
        from pyharmonies.training.embedding_map import plot_map, tsne_2d

        emb = EmbeddingSet.load(embeddings)
        xy = tsne_2d(emb.clips, seed=seed, perplexity=perplexity)
        src = emb.source
        title = title or f"{len(emb)} clips, {src['kind']} {Path(src['path']).name}" + (f" ({src['file']})" if src.get("file") else "")
        plot_map(xy, emb.labels, out, title=title)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"map of {len(emb)} clips: {out}")
