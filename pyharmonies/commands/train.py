"""``harmonies train``: turn a labelled dataset into a model and its report."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _parse_options(text: str | None, what: str) -> dict:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"not JSON: {err}", param_hint=what) from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object of fields", param_hint=what)
    return data


@click.command(short_help="Train a CNN, LSTM, transformer, SVM baseline or linear probe on a labelled dataset.")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--model", type=click.Choice(["cnn", "lstm", "transformer", "svm", "probe"]), default="cnn", show_default=True,
              help="cnn: MobileNetV2-style over log-mel windows; lstm: small LSTM over frame-vector "
                   "sequences; transformer: small transformer encoder over the same frame-vector sequences; "
                   "svm: RBF SVM on clip means/stds of the frame vector (the classical baseline; "
                   "the training-loop options, --init and --resume do not apply to it); probe: logistic regression "
                   "on a pretrained backbone's clip or window embeddings (--backbone; seconds to fit, exports as a CNN).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run directory (config.json, splits.json, checkpoints, metrics.json, report.md, "
                   "confusion.png, curves.png). Default: runs/<model>-<dataset name>.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epoch budget (the cosine schedule's length); early stopping may end sooner (not with --select-by last). "
                   "Default: 10 for the cnn, 30 for the lstm and transformer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Windows per batch (per process under torchrun).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True, help="Peak AdamW learning rate (warm-up, then cosine decay).")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Stop after this many epochs without a better validation score (--select-by; unused with "
                   "--select-by last, the cnn's default). Default: 4 for the cnn, 8 for the lstm and transformer.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="auto: CUDA when available (with bfloat16 mixed precision), else CPU.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the initialisation, shuffling, augmentation and (without --split-seed) the split.")
@click.option("--split-seed", type=int, default=None,
              help="Seeds the split or folds alone (default: --seed). `--seed 1 --split-seed 0` trains the same recipe again "
                   "with another random draw on the same tracks: how far a result moves by chance.")
@click.option("--window", type=click.FloatRange(min=0.1, max=60), default=None,
              help="Seconds of audio per classified window. Default: 2 for the cnn, 3 for the lstm and transformer.")
@click.option("--window-hop", type=click.FloatRange(min=0.01), default=None, help="Seconds between training windows (default: half a window).")
@click.option("--balance", type=click.Choice(["sampler", "tracks", "weights", "none"]), default="sampler", show_default=True,
              help="Class imbalance: draw training windows so every class is equally likely (sampler), and also every "
                   "track of a class (tracks: a long track weighs no more than a short one), weight the loss by inverse "
                   "class frequency, or nothing (the sampler generalised best on real music: docs/EXPERIMENTS.md).")
@click.option("--clip-bag", type=click.IntRange(min=0), default=0, show_default=True,
              help="Clip-level targets: each batch holds bags of this many windows of one clip, and the loss scores each "
                   "bag's pooled prediction (the mean probability, as a clip is classified) against the clip's label, so a "
                   "window that does not sound like its game need not be forced to. 0: every window scored on its own. "
                   "--batch-size must be a multiple of it. On the soundtracks set 4 did worse than 0 (docs/EXPERIMENTS.md).")
@click.option("--group-by", default="track", show_default=True,
              help="Never split a group across train/val/test: 'track' (a file, or a manifest's track_id) or a manifest column such as 'artist'.")
@click.option("--val", type=click.FloatRange(0, 1, max_open=True), default=0.15, show_default=True, help="Fraction of groups for validation.")
@click.option("--val-seed", type=int, default=None,
              help="Another draw of the validation tracks from the same non-test tracks (as many per class; the test "
                   "tracks do not change). Default: the split's own.")
@click.option("--test", "test_fraction", type=click.FloatRange(0, 1, max_open=True), default=0.15, show_default=True, help="Fraction of groups for test.")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Train on this fraction of each class's training tracks (seeded; validation and test unchanged): "
                   "the small-data curve, e.g. 0.1, 0.25, 0.5 with --folds.")
@click.option("--folds", type=click.IntRange(min=0), default=0, show_default=True, help="K > 1: grouped K-fold cross-validation, one model per fold in OUT/fold-K.")
@click.option("--fold", "only_folds", type=click.IntRange(min=0), multiple=True,
              help="With --folds: train only fold K (repeat for several), so that processes on several GPUs or machines "
                   "sharing --out each take some folds; the summary is written by the one that finds every fold done. "
                   "A fold another process is training now is refused (it holds fold-K/.train.lock); "
                   "--resume continues a fold whose process was killed.")
@click.option("--members", type=click.IntRange(min=1), default=None,
              help="cnn: train N networks on the same split (seeds --seed, --seed + 1, ...; each in OUT/member-i) and "
                   "average their logits into one model, exported as one file. Members are 0.4 wide unless "
                   "--model-options gives a width, so three stay under 250 kB int8. Default: 3 for a cnn trained from "
                   "scratch (on real music level with one full-width CNN, +0.2 points over every triple of eight members, "
                   "with fewer parameters: docs/EXPERIMENTS.md), 1 with "
                   "--init, --backbone or a --teacher run and for the other models; --members 1 trains one full-width CNN.")
@click.option("--mutual", type=click.FloatRange(min=0, max=10), default=0.0, show_default=True,
              help="With --members N > 1: train the N networks together on the same batches, each also pulled towards "
                   "the others' mean answer by a KL term of this weight (deep mutual learning), instead of N runs "
                   "trained apart. The result is the same averaged model. 0 (default): the members train on their own; on "
                   "real music weight 1 made each member better but the average 1.1 points worse (docs/EXPERIMENTS.md).")
@click.option("--member-val", type=click.Choice(["shared", "own"]), default="shared", show_default=True,
              help="With --members N > 1: every member holds out the split's validation tracks (shared), or member i "
                   "holds out its own draw of them (own: --val-seed SEED + i, as many per class; the test tracks never "
                   "change), so the members train on different tracks and disagree more, and all share one input "
                   "normaliser over every non-test track; the averaged model then has no validation split (every "
                   "non-test track trained some member) and is scored on test. On real music own was level with "
                   "shared (+0.7 ± 5.0 points over every triple of five members; docs/EXPERIMENTS.md).")
@click.option("--no-augment", is_flag=True, help="Disable gain/noise/shift/SpecAugment augmentation.")
@click.option("--normalize", type=click.Choice(["band", "global"]), default="band", show_default=True,
              help="How inputs are standardised (training statistics, stored in the model): each mel band by its own "
                   "mean and std (band), or the whole log-mel by one mean and std (global, cnn from scratch only), so "
                   "quiet high bands stay quiet (docs/EXPERIMENTS.md).")
@click.option("--normalize-over", type=click.Choice(["train", "train+val"]), default="train", show_default=True,
              help="The clips whose statistics standardise the inputs: the training clips, or the validation clips too "
                   "(every non-test clip; never the test clips), so that runs holding out other validation tracks "
                   "(--val-seed) share one normaliser and can be averaged.")
@click.option("--mixup", type=click.FloatRange(min=0), default=0.2, show_default=True, help="Mixup alpha; 0 disables.")
@click.option("--average-weights", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True, metavar="DECAY",
              help="Validate, keep and export a moving average of the weights (decay per step, e.g. 0.998: about the "
                   "last 500 steps) instead of the raw ones; 0 turns it off.")
@click.option("--teacher", "teacher", type=click.UNPROCESSED, callback=lambda ctx, param, v: _teacher_value(v), default=None,
              metavar="RUN|svm",
              help="Distil: learn a trained run's answers (e.g. a `harmonies ensemble` of several runs) as well as the "
                   "labels, in one network of this run's size. The teacher must have been trained on the same splits "
                   "(same data, --split-seed or --seed, --folds); a --folds teacher gives each fold its own. 'svm': the "
                   "SVM baseline's calibrated answers for each training clip, from SVMs fitted on the other training "
                   "tracks (cross-fitted over up to 5 groups of tracks).")
@click.option("--distill-weight", type=click.FloatRange(0, 1), default=None,
              help="With --teacher: the share of the loss that is the teacher's answers (the rest: the labels). "
                   "Default: 0.7 for a run, 0.5 for the SVM.")
@click.option("--distill-temperature", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --teacher: softens the teacher's answers and the student's logits alike (1: as they are). "
                   "Default: 3 for a run, 1 for the SVM.")
@click.option("--fuse-svm", "fuse_svm", type=click.FloatRange(0, 1), default=None, metavar="W",
              help="After training, fit the SVM baseline on the same training split (its probabilities calibrated on "
                   "tracks it did not fit) and answer with softmax((1 - W) log p_model + W log p_svm) of each clip; the "
                   "bundle carries it, and classify, evaluate and listen use it. 0.3 scored +2.5 points over the "
                   "default CNN alone on the soundtracks folds (docs/EXPERIMENTS.md). Off by default: the device then "
                   "runs a second classifier beside the network.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/features"), show_default=True,
              help="Feature cache: features computed once per (file content, FeatureConfig), memory-mapped.")
@click.option("--no-cache", is_flag=True, help="Recompute features from audio for every window (for benchmarks; slow).")
@click.option("--init", "init_run", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Fine-tune from this earlier run (a new head when the labels differ): one network, so a "
                   "default CNN run's member (RUN/member-0) or a --members 1 run; trains one network.")
@click.option("--backbone", default=None, metavar="shipped|PATH",
              help="cnn: start from a pretrained backbone; probe: the backbone to embed with (default: shipped). "
                   "'shipped': the one the package ships (pretrained on unlabelled game music; the default features "
                   "and network shape); PATH: a `harmonies pretrain` run folder or its backbone.npz. With --folds, "
                   "'{fold}' in PATH becomes the fold number. The cnn trains from scratch without it: on the "
                   "soundtracks set the shipped start did not beat it yet (docs/EXPERIMENTS.md).")
@click.option("--from-scratch", is_flag=True, help="cnn: random initial weights, no pretrained backbone (the default).")
@click.option("--freeze-backbone", is_flag=True, help="With --init or a backbone: train the classifier head only.")
@click.option("--head-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Train the classifier head alone (the backbone's learning rate held at 0) for this many epochs, "
                   "then everything: a pretrained start's features are not disturbed by a random head's gradients.")
@click.option("--model-options", default=None, metavar="JSON",
              help='Model config fields, e.g. \'{"width": 0.75}\' (cnn), \'{"hidden": 96, "layers": 2}\' (lstm) or '
                   '\'{"d_model": 96, "pooling": "cls"}\' (transformer).')
@click.option("--feature-config", "feature_config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="FeatureConfig JSON (the defaults if omitted: 22050 Hz, n_fft 1024, hop 512, 64 mels).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-2, show_default=True, help="AdamW weight decay.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.05, show_default=True, help="Label smoothing of the cross-entropy targets.")
@click.option("--select-by", type=click.Choice(["clip_accuracy", "clip_macro_f1", "window_macro_f1", "last"]), default=None,
              help="The validation score that picks the best epoch and drives early stopping (clip: a clip's "
              "windows vote by their mean probability; ties go to the lower validation loss). last: keep the final "
              "epoch's weights, at the end of the learning-rate schedule, and never stop early (validation is still "
              "scored, for the report). Default: last for the cnn, clip_accuracy for the lstm and transformer.")
@click.option("--augment-options", default=None, metavar="JSON",
              help='AugmentConfig fields, e.g. \'{"p_eq": 0.5, "eq_db": 9, "p_bandlimit": 0.3}\' (random EQ, low-pass; see docs/EXPERIMENTS.md).')
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A training configuration (a run's config.json, or best.json from `harmonies tune`) as the base; "
                   "options given on this command line override it, DATA replaces its dataset.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (after a kill); with --folds, "
              "finished folds are kept and the fold that was running continues.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-epoch lines.")
def train(data: Path, model: str, out: Path | None, epochs: int | None, batch_size: int, lr: float, patience: int | None, device: str,
          seed: int, split_seed: int | None, members: int | None, mutual: float, window: float | None, window_hop: float | None, clip_bag: int, balance: str, group_by: str, val: float, val_seed: int | None, train_fraction: float,
          test_fraction: float, folds: int, only_folds: tuple[int, ...], member_val: str, no_augment: bool, normalize: str, normalize_over: str, mixup: float, average_weights: float,
          teacher: str | None, distill_weight: float | None, distill_temperature: float | None, fuse_svm: float | None, workers: int, cache: Path, no_cache: bool,
          init_run: Path | None, backbone: str, from_scratch: bool, freeze_backbone: bool, head_epochs: float, model_options: str | None, feature_config: Path | None,
          weight_decay: float, label_smoothing: float, select_by: str, augment_options: str | None,
          config_file: Path | None, resume: bool, quiet: bool) -> None:  # fmt: skip
    """Train a classifier on DATA: a class-per-folder root (root/<label>/*.wav, GTZAN's
    genres_original layout included) or a CSV manifest (path,label[,track_id][,start_s,end_s]).

    Features come from the same C core the device runs, cached; clips are cut into
    fixed windows; splits are grouped (one track never straddles train/val/test),
    stratified and seeded. Unreadable files are reported and skipped.

    Distributed: `torchrun --nproc_per_node 2 -m pyharmonies.cli train DATA ...`
    (gloo on CPU, NCCL on CUDA).

    \b
    Examples:
      harmonies dataset synth data/synth
      harmonies train data/synth --model cnn --out runs/cnn
      harmonies train data/synth --model lstm --epochs 40
      harmonies train data/synth --model transformer --epochs 40
      harmonies train data/gtzan --folds 5 --group-by track
      harmonies train data/new --init runs/cnn/member-0 --freeze-backbone   # one network of a run
      harmonies train data/few --model probe --backbone runs/backbone --folds 5
      harmonies train data/soundtracks --config runs/tune-cnn/best.json --folds 5
      harmonies train data/soundtracks --folds 5 --teacher runs/ensemble5 --out runs/student
      harmonies train data/soundtracks --folds 5 --teacher svm   # taught the SVM baseline's answers too
      harmonies train data/soundtracks --members 1   # one full-width CNN, quicker to train
      harmonies train data/soundtracks --folds 5 --fuse-svm 0.3   # the CNN's answer fused with the SVM's
      harmonies train data/soundtracks --folds 5 --fold 0 --fold 1 --out runs/cv   # and --fold 2.. elsewhere
    """
    ctx = click.get_current_context()
    _refuse_ignored_options(ctx, model, folds)
    from pyharmonies.errors import HarmoniesError
    from pyharmonies.training.config import TrainConfig

    def warn(line: str) -> None:  # class warnings on the terminal as well as in report.md
        click.echo(f"warning: {line}", err=True)

    try:
        features = _parse_options(feature_config.read_text(), "--feature-config") if feature_config else {}
        values = dict(
            model=model, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
            device=device, seed=seed, split_seed=split_seed, window=window, window_hop=window_hop, clip_bag=clip_bag, balance=balance, group_by=group_by,
            val=val, val_seed=val_seed, test=test_fraction, train_fraction=train_fraction, folds=folds, members=members, mutual=mutual, member_val=member_val, augment=not no_augment, normalize=normalize, normalize_over=normalize_over, mixup=mixup, average_weights=average_weights, workers=workers,
            teacher=teacher, distill_weight=distill_weight, distill_temperature=distill_temperature,
            fuse_svm=fuse_svm, cache=str(cache), use_cache=not no_cache, init=str(init_run) if init_run else None,
            backbone="none" if from_scratch else backbone or ("shipped" if model == "probe" else "none"),
            head_epochs=head_epochs,
            freeze_backbone=freeze_backbone, model_options=_parse_options(model_options, "--model-options"),
            features=features, weight_decay=weight_decay, label_smoothing=label_smoothing, select_by=select_by,
            augment_options=_parse_options(augment_options, "--augment-options"),
        )  # fmt: skip
        if config_file is not None:
            values = _with_config_file(ctx, config_file, values)
        name = data.stem if data.is_file() else data.name
        out = out or Path("runs") / f"{values['model']}-{name}"
        cfg = TrainConfig.from_dict({**values, "data": str(data), "out": str(out)})
        model, folds = cfg.model, cfg.folds
        if only_folds and folds < 2:
            raise click.UsageError("--fold picks folds of a cross-validation: give --folds K (K > 1) as well")
        if folds > 1:  # every model, the SVM included
            from pyharmonies.training.loop import train_folds

            run = train_folds(cfg, progress=not quiet, resume=resume, warn=warn, only=only_folds or None)
            if not (run / "metrics.json").exists():
                left = [k for k in range(folds) if not (run / f"fold-{k}" / "metrics.json").exists()]
                click.echo(f"folds done here: {', '.join(map(str, sorted(set(only_folds))))} (in {run}); still to train: "
                           f"{', '.join(map(str, left))} (--fold, or --resume); the summary comes with the last")  # fmt: skip
                return
        elif model == "svm":
            from pyharmonies.training.svm import train_svm_run

            run = train_svm_run(cfg, progress=not quiet, warn=warn)
        elif model == "probe":
            from pyharmonies.training.probe import train_probe_run

            run = train_probe_run(cfg, progress=not quiet, warn=warn)
        else:
            from pyharmonies.training.loop import train_run

            run = train_run(cfg, progress=not quiet, resume=resume, warn=warn)
    except HarmoniesError as err:
        raise click.ClickException(str(err)) from None
    import os

    if os.environ.get("RANK", "0") == "0":
        _print_summary(run)


def _teacher_value(value: str | None) -> str | None:
    """``--teacher``: "svm", or a run folder that exists (as given)."""
    from pyharmonies.training.config import SVM_TEACHER

    if value is None or value == SVM_TEACHER:
        return value
    if not Path(value).is_dir():
        raise click.BadParameter(f"{value!r} is neither a run folder nor 'svm'", param_hint="'--teacher'")
    return value


#: Command-line parameters -> the TrainConfig fields they set (where the names differ).
_PARAM_FIELDS = {"test_fraction": "test", "no_augment": "augment", "no_cache": "use_cache", "init_run": "init",
                 "feature_config": "features", "from_scratch": "backbone"}  # fmt: skip


def _with_config_file(ctx: click.Context, path: Path, values: dict) -> dict:
    """The configuration in ``path``, with the options given on the command line on top."""
    from pyharmonies.training.config import TrainConfig

    base = TrainConfig.load(path).to_dict()
    for param in ctx.params:
        if ctx.get_parameter_source(param) != click.core.ParameterSource.COMMANDLINE:
            continue
        field = _PARAM_FIELDS.get(param, param)
        if field in values:
            base[field] = values[field]
    base.pop("data", None)
    base.pop("out", None)
    return base


#: Options the SVM baseline has no use for: it fits once, on clip statistics, on the CPU.
NOT_FOR_SVM = {
    "init_run": "--init", "freeze_backbone": "--freeze-backbone", "resume": "--resume",
    "model_options": "--model-options", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr",
    "patience": "--patience", "device": "--device", "window": "--window", "window_hop": "--window-hop",
    "clip_bag": "--clip-bag", "balance": "--balance", "no_augment": "--no-augment", "normalize": "--normalize",
    "normalize_over": "--normalize-over", "member_val": "--member-val", "mixup": "--mixup", "average_weights": "--average-weights", "workers": "--workers",
    "teacher": "--teacher", "distill_weight": "--distill-weight", "distill_temperature": "--distill-temperature",
    "no_cache": "--no-cache", "weight_decay": "--weight-decay", "label_smoothing": "--label-smoothing",
    "select_by": "--select-by", "augment_options": "--augment-options", "backbone": "--backbone",
    "from_scratch": "--from-scratch", "head_epochs": "--head-epochs", "members": "--members", "mutual": "--mutual",
    "fuse_svm": "--fuse-svm",
}  # fmt: skip


#: Options the linear probe has no use for: the backbone fixes features and window, and it fits once.
NOT_FOR_PROBE = {name: flag for name, flag in NOT_FOR_SVM.items()
                 if name not in ("backbone", "device", "window_hop")}  # fmt: skip


def _refuse_ignored_options(ctx: click.Context, model: str, folds: int) -> None:
    """An option given on the command line that this run would not use is an error, not silence."""
    given = [name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    unused, why = {
        "svm": (NOT_FOR_SVM, "an RBF SVM fitted once on clip statistics; --init and --resume apply to cnn, lstm and transformer runs"),
        "probe": (NOT_FOR_PROBE, "a logistic regression fitted once on the backbone's embeddings; the backbone "
                                 "fixes the features and the window"),
    }.get(model, ({}, ""))  # fmt: skip
    ignored = [flag for name, flag in unused.items() if name in given]
    if ignored:
        raise click.UsageError(f"{', '.join(ignored)}: not used by --model {model} ({why})")
    if model in ("lstm", "transformer") and ("backbone" in given or "from_scratch" in given):
        raise click.UsageError("--backbone, --from-scratch: only the cnn starts from a pretrained backbone")
    if "member_val" in given and ctx.params["member_val"] == "own":
        if "mutual" in given and ctx.params["mutual"] > 0:
            raise click.UsageError("--member-val own trains each member on its own tracks; --mutual trains them "
                                   "together on the same batches (one split: --member-val shared)")
        if "train_fraction" in given and ctx.params["train_fraction"] < 1:
            raise click.UsageError("--member-val own and --train-fraction: thinning each member's own training tracks "
                                   "would leave them other non-test tracks (use --member-val shared)")
    if "backbone" in given and "from_scratch" in given:
        raise click.UsageError("--backbone and --from-scratch contradict each other: give one")


def _print_summary(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    if "folds" in metrics:
        acc = metrics["test"]["clip"]["accuracy"]
        lo, hi = acc["ci95"]
        click.echo(f"{metrics['folds']} folds: test clip accuracy {100 * acc['mean']:.1f}% ± {100 * acc['std']:.1f} "
                   f"(95% CI {100 * lo:.1f}-{100 * hi:.1f})")  # fmt: skip
        if "baseline" in metrics:
            base, diff = metrics["baseline"]["clip"]["accuracy"], metrics["versus_baseline"]["accuracy"]
            click.echo(f"SVM baseline, same folds: {100 * base['mean']:.1f}% ± {100 * base['std']:.1f}; "
                       f"difference {100 * diff['mean']:+.1f} ± {100 * diff['std']:.1f} points")  # fmt: skip
        if "fused" in metrics:
            fused, gain = metrics["fused"]["clip"]["accuracy"], metrics["fused"]["versus_model"]["accuracy"]
            click.echo(f"fused with the SVM (weight {metrics['fused']['weight']:g}): {100 * fused['mean']:.1f}% ± "
                       f"{100 * fused['std']:.1f}; {100 * gain['mean']:+.1f} ± {100 * gain['std']:.1f} points over the network alone")  # fmt: skip
    else:
        for split, res in metrics["splits"].items():
            parts = [f"{level} accuracy {100 * res[level]['accuracy']:.1f}% (macro F1 {res[level]['macro_f1']:.3f})" for level in ("window", "clip") if level in res]
            click.echo(f"{split:5s}  " + ", ".join(parts))
        base = metrics.get("baseline") or {}
        if "test" in base.get("splits", {}):
            b = base["splits"]["test"]["clip"]
            click.echo(f"SVM baseline, same split: test clip accuracy {100 * b['accuracy']:.1f}% (macro F1 {b['macro_f1']:.3f})")
        fused = (metrics.get("fusion") or {}).get("splits", {}).get("test")
        if fused:
            click.echo(f"fused with the SVM (weight {metrics['fusion']['weight']:g}): test clip accuracy "
                       f"{100 * fused['clip']['accuracy']:.1f}% (macro F1 {fused['clip']['macro_f1']:.3f})")  # fmt: skip
        if metrics.get("problems"):
            click.echo(f"{len(metrics['problems'])} file(s) skipped: see report.md", err=True)
    click.echo(f"report: {run / 'report.md'}")
