"""``harmonies pretrain``: a CNN backbone learnt from unlabelled audio (contrastive, no labels)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Pretrain the CNN backbone on unlabelled audio (contrastive); train starts from it.")
@click.argument("audio", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/backbone"), show_default=True,
              help="Run folder: backbone.npz (rewritten every epoch), last.pt, config.json, history.json, report.md, pretrain.png.")
@click.option("--model", type=click.Choice(["cnn"]), default="cnn", show_default=True,
              help="The network whose backbone is pretrained (the CNN's; the LSTM has none).")
@click.option("--epochs", type=click.IntRange(min=1), default=60, show_default=True, help="Epochs of the cosine schedule.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after the epoch that passes this wall time (counted over resumes); the backbone so far is kept.")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True,
              help="Recordings per step (two crops each; the others are its negatives). At most the number of recordings.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True, help="Peak AdamW learning rate.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True, max=10), default=0.2, show_default=True,
              help="NT-Xent temperature.")
@click.option("--window", type=click.FloatRange(min=0.1, max=60), default=3.0, show_default=True, help="Seconds per crop.")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=None,
              help="Default: about one crop per window of audio per epoch.")
@click.option("--model-options", default=None, metavar="JSON", help='CNN config fields, e.g. \'{"width": 0.75}\'.')
@click.option("--feature-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="FeatureConfig JSON (the defaults if omitted); train uses the backbone only with the same one.")
@click.option("--exclude", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A training run's splits.json (e.g. runs/cnn/fold-2/splits.json): every recording with a clip "
                   "in its test split is left out, so the backbone never hears that fold's test tracks.")
@click.option("--probe", type=click.Path(exists=True, path_type=Path), default=None,
              help="A labelled dataset: every few epochs, the k-NN clip accuracy of its embeddings (neighbours from "
                   "other tracks) is recorded and drawn, to show whether the representation improves.")
@click.option("--probe-every", type=click.IntRange(min=1), default=5, show_default=True, help="Epochs between probes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when available (bfloat16 mixed precision), else CPU.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/features"), show_default=True,
              help="Feature cache (shared with train).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt (after a kill), with the same options; "
              "--epochs and --minutes may change.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-epoch lines.")
def pretrain(audio: tuple[Path, ...], out: Path, model: str, epochs: int, minutes: float | None, batch_size: int,
             lr: float, temperature: float, window: float, steps_per_epoch: int | None, model_options: str | None,
             feature_config: Path | None, exclude: Path | None, probe: Path | None, probe_every: int, device: str,
             seed: int, cache: Path, workers: int, resume: bool, quiet: bool) -> None:  # fmt: skip
    """Pretrain the CNN's backbone on AUDIO (files, folders searched recursively, or datasets: a
    manifest.csv or a folder holding one, whose track_id groups a recording's clips). Labels are ignored.

    Two crops of one recording, each augmented (gain, EQ, band limit, noise, SpecAugment), must
    map close together and away from the other recordings of the batch (NT-Xent, as in COLA and
    SimCLR). Features come from the native core through the training cache.

    Distributed: `torchrun --nproc_per_node N -m pyharmonies.cli pretrain ...` (each rank its own
    negatives). The result, OUT/backbone.npz, starts `harmonies train --model cnn --backbone OUT`.

    \b
    Examples:
      harmonies pretrain data/soundtracks --out runs/backbone --minutes 30 --probe data/soundtracks
      harmonies pretrain /archive/unlabelled --out runs/backbone-archive --epochs 100
      harmonies pretrain data/soundtracks --exclude runs/cnn/fold-0/splits.json --out runs/backbone-fold0
    """
    from pyharmonies.commands.train import _parse_options
    from pyharmonies.errors import HarmoniesError

    def warn(line: str) -> None:
        click.echo(f"warning: {line}", err=True)

    try:
        from pyharmonies.training.pretrain import PretrainConfig, pretrain_run

        cfg = PretrainConfig(
            audio=[str(a) for a in audio], out=str(out), epochs=epochs, minutes=minutes, batch_size=batch_size, lr=lr,
            temperature=temperature, window=window, steps_per_epoch=steps_per_epoch,
            model_options=_parse_options(model_options, "--model-options"),
            features=_parse_options(feature_config.read_text(), "--feature-config") if feature_config else {},
            exclude=str(exclude) if exclude else None, probe=str(probe) if probe else None, probe_every=probe_every,
            device=device, seed=seed, cache=str(cache), workers=workers,
        )  # fmt: skip
        run = pretrain_run(cfg, progress=not quiet, resume=resume, warn=warn)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    import os

    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        click.echo(f"backbone: {run / 'backbone.npz'}  (report: {run / 'report.md'})")
