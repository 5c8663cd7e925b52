"""One training loop for every neural model: AdamW, warm-up + cosine
schedule, gradient clipping, mixup, early stopping on a validation score,
atomic checkpoints every epoch, resume, mixed precision on CUDA and DDP
under torchrun.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from pyharmonies._atomic import write_atomic
from pyharmonies.data.augment import AugmentConfig
from pyharmonies.data.cache import FeatureCache
from pyharmonies.data.sources import Clip, DatasetIndex, Problem, dataset_source, open_dataset
from pyharmonies.data.splits import SPLITS, group_kfold, load_splits, run_splits, save_splits
from pyharmonies.data.windows import Window, make_windows, window_frames
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.models.registry import INPUT_KIND, build_model, config_to_dict, model_config
from pyharmonies.training import checkpoint, locks
from pyharmonies.training.averaging import WeightAverage
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.dataset import FeatureSource, Normalizer, WindowDataset
from pyharmonies.training.distill import WithIndex, check_teacher_splits, distill_loss, load_teacher, soften
from pyharmonies.training.distributed import Distributed
from pyharmonies.training.errors import CheckpointError
from pyharmonies.training.metrics import classification_metrics, clip_probabilities
from pyharmonies.training.mutual import mutual_loss
from pyharmonies.training.sampling import BalancedSampler, ClipBagSampler
from pyharmonies.training.svm_teacher import SVM_TEACHER, svm_teacher_clip_targets


@dataclass
class PreparedData:
    """A dataset made ready: readable clips, their features, splits and windows."""

    index: DatasetIndex
    clips: list[Clip]  # readable clips only
    labels: list[str]  # sorted class names; the model's output order
    problems: list[Problem]  # files skipped, with reasons
    feature_config: FeatureConfig
    cache: FeatureCache
    kind: str  # "log_mel" or "frame_vector"
    frame_counts: list[int]  # frames of each clip
    splits: dict[str, list[int]] = field(default_factory=dict)  # clip indices per split

    @property
    def label_index(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}


def prepare_data(
    data: str | Path,
    feature_config: FeatureConfig,
    kind: str,
    cache_dir: str | Path,
    *,
    dist: Distributed | None = None,
    progress: bool = True,
    labels: Sequence[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> PreparedData:
    """Open a dataset, compute (or reuse) its cached features, drop unreadable files.

    Under DDP only rank 0 computes features; the others wait, then read the cache.
    ``labels`` fixes the class list (evaluation of a trained model); clips of
    other classes are then reported and left out. ``warn`` (rank 0 only)
    receives each of the dataset's warnings (a class with few clips, an
    empty class folder) before features are computed.
    """
    dist = dist or Distributed.none()
    index = open_dataset(data)
    if warn is not None and dist.is_main:
        for line in index.warnings:
            warn(line)
    cache = FeatureCache(cache_dir, feature_config)
    paths = sorted({clip.path for clip in index.clips})
    problems = list(index.problems)
    if dist.is_main:
        problems += cache.ensure(paths, progress=progress)
    dist.barrier()
    if not dist.is_main:
        problems += cache.ensure(paths, progress=False)  # all cached by now: only the problems are found again
    bad = {p.path for p in problems}
    clips = [c for c in index.clips if c.path not in bad]
    if labels is not None:
        known = set(labels)
        for c in clips:
            if c.label not in known:
                problems.append(Problem(c.path, f"label {c.label!r} is not one the model knows", "label"))
        clips = [c for c in clips if c.label in known]
        label_list = list(labels)
    else:
        label_list = sorted({c.label for c in clips})
    if not clips:
        raise ParameterError(f"{data}: no readable clips ({len(problems)} problem(s): " + "; ".join(p.reason for p in problems[:3]) + ")")
    counts = [cache.clip_features(c, kind).shape[1] for c in clips]
    return PreparedData(index, clips, label_list, problems, feature_config, cache, kind, counts)


def make_split_windows(prep: PreparedData, window: int, hop: int) -> dict[str, list[Window]]:
    """Windows of each split; a window keeps its clip's split."""
    out = {}
    for split, members in prep.splits.items():
        counts = [prep.frame_counts[i] for i in members]
        out[split] = [Window(members[w.clip], w.start) for w in make_windows(counts, window, hop)]
    return out


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    return torch.device(name)


def lr_lambda(total_steps: int, warmup_steps: int):
    """Linear warm-up to 1, then cosine decay to 0, as a LambdaLR factor."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def delayed(factor: Callable[[int], float], start: int, warmup: int) -> Callable[[int], float]:
    """``factor`` held at 0 for ``start`` steps, then ramped up linearly over ``warmup`` steps."""

    def held(step: int) -> float:
        if step < start:
            return 0.0
        return min(1.0, (step - start + 1) / warmup) * factor(step)

    return held


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (n, classes) and labels (n,) of every window, in order."""
    model.eval()
    probs, labels = [], []
    for x, y in loader:
        logits = model(x.to(device, non_blocking=True)).float()
        probs.append(torch.softmax(logits, dim=1).cpu().numpy())
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def pooled_log_probabilities(logits: torch.Tensor, bag: int) -> torch.Tensor:
    """Log of the mean probability over each bag of ``bag`` consecutive windows: a clip's prediction.

    ``logits`` (n * bag, classes) -> (n, classes), normalised log-probabilities: the
    mean-probability rule that pools a clip's windows in every report, ``classify`` and ``listen``.
    """
    log_p = F.log_softmax(logits, dim=1).view(-1, bag, logits.shape[1])
    return torch.logsumexp(log_p, dim=1) - math.log(bag)


def evaluate_windows(
    probs: np.ndarray, y: np.ndarray, windows: Sequence[Window], labels: Sequence[str]
) -> dict[str, Any]:
    """Window-level metrics and clip-level ones (mean of a clip's window probabilities)."""
    window_metrics = classification_metrics(y, probs.argmax(axis=1), labels)
    clip_ids = np.asarray([w.clip for w in windows])
    order, clip_probs = clip_probabilities(probs, clip_ids)
    clip_true = np.asarray([y[clip_ids == c][0] for c in order])
    return {"window": window_metrics, "clip": classification_metrics(clip_true, clip_probs.argmax(axis=1), labels)}


def build_meta(cfg: TrainConfig, prep: PreparedData, normalizer: Normalizer, model_name: str, options: dict[str, Any], window: int) -> dict[str, Any]:
    """What a checkpoint carries besides weights: enough to rebuild and feed the model."""
    return {
        "format": 1,
        "model_name": model_name,
        "model_config": options,
        "labels": list(prep.labels),
        "input_kind": prep.kind,
        "input_shape": [int(normalizer.mean.shape[0]), int(window)],
        "window_seconds": float(cfg.window),
        "window_frames": int(window),
        "feature_config": prep.feature_config.to_dict(),
        "normalizer": normalizer.to_dict(),
        "train_config": cfg.to_dict(),
    }


def network_name(cfg: TrainConfig) -> str:
    """The model a run of ``cfg`` trains: ``cfg.model``, or ``cnn_ensemble`` when its members train together (mutual)."""
    return "cnn_ensemble" if cfg.mutual else cfg.model


def model_from_meta(meta: dict[str, Any]) -> nn.Module:
    """A model built from a checkpoint's meta (weights not loaded)."""
    return build_model(meta["model_name"], len(meta["labels"]), tuple(meta["input_shape"]), meta["model_config"])


class _Trainer:
    """The state of one run; ``fit`` is the loop."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, prep: PreparedData, dist: Distributed, progress: bool):
        self.cfg = cfg
        self.backbone_info: dict[str, Any] | None = None
        self.run_dir = run_dir
        self.prep = prep
        self.dist = dist
        self.progress = progress and dist.is_main
        self.device = dist.device if dist.enabled else resolve_device(cfg.device)
        self.window = window_frames(cfg.window, prep.feature_config)
        self.hop = max(1, window_frames(cfg.hop_seconds, prep.feature_config))
        self.windows = make_split_windows(prep, self.window, self.hop)
        if not self.windows.get("train"):
            raise ParameterError("the training split has no windows: too few clips for the requested splits")
        source = FeatureSource(prep.cache, prep.feature_config, prep.kind, use_cache=cfg.use_cache)
        seen = prep.splits["train"] + (prep.splits.get("val", []) if cfg.normalize_over == "train+val" else [])
        train_arrays = [prep.cache.clip_features(prep.clips[i], prep.kind) for i in seen]

        init_meta, init_state = self._init_from()
        if init_meta is not None:
            self.normalizer = Normalizer.from_dict(init_meta["normalizer"])
            self.options = dict(init_meta["model_config"])
        else:
            self.normalizer = Normalizer.fit(train_arrays, pooled=cfg.normalize == "global")
            self.options = dict(cfg.model_options)
        # Mutual learning trains the members together, as the one averaged model that is kept and exported.
        self.model_name = network_name(cfg)
        if cfg.mutual:
            self.options = {"members": cfg.members, "member": self.options}
        # Resolve every model option to its default so the checkpoint is self-contained.
        self.options = config_to_dict(model_config(self.model_name, self.options))
        n_rows = int(self.normalizer.mean.shape[0])
        self.meta = build_meta(cfg, prep, self.normalizer, self.model_name, self.options, self.window)
        if self.backbone_info is not None:
            self.meta["backbone"] = self.backbone_info

        augment = AugmentConfig.from_dict(cfg.augment_options) if cfg.augment else None
        li = prep.label_index
        self.datasets = {
            split: WindowDataset(prep.clips, li, wins, source, self.normalizer, self.window,
                                 augment=augment if split == "train" else None, seed=cfg.seed)
            for split, wins in self.windows.items()
        }  # fmt: skip

        # The teacher's softened answers for each training window (a distilled run), computed once.
        self.teacher_targets = self._teacher_targets(source) if cfg.teacher else None

        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_name, len(prep.labels), (n_rows, self.window), self.options)
        if init_state is not None:
            self._load_init(init_meta, init_state)
        self.model.to(self.device)
        self.core = self.model
        # What is validated, kept as best.pt and exported: the raw weights, or their moving average.
        self.average = WeightAverage(self.core, cfg.average_weights) if cfg.average_weights > 0 else None
        self.kept = self.average.model if self.average is not None else self.core
        if dist.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

        self.train_loader = self._loader("train", shuffle=True)
        steps = cfg.epochs * len(self.train_loader)
        warmup = int(cfg.warmup_epochs * len(self.train_loader))
        schedule = lr_lambda(steps, warmup)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.head_epochs > 0:
            # Two groups: the backbone's learning rate is 0 for the first head_epochs (the head learns
            # on the pretrained features first), then warms up and joins the schedule.
            own = {id(p) for p in self.core.backbone.parameters()}
            groups = [{"params": [p for p in params if id(p) not in own]}, {"params": [p for p in params if id(p) in own]}]
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
            lambdas = [schedule, delayed(schedule, int(cfg.head_epochs * len(self.train_loader)), max(1, warmup))]
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambdas)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        counts = np.bincount(self.datasets["train"].labels, minlength=len(prep.labels)).astype(np.float64)
        weights = counts.sum() / (len(prep.labels) * np.maximum(counts, 1))
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=self.device) if cfg.balance == "weights" else None
        self.amp = cfg.amp and self.device.type == "cuda"
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"score": (float("-inf"), float("-inf")), "epoch": -1}
        self.bad_epochs = 0
        self.start_epoch = 0

    # -- set-up helpers ------------------------------------------------

    def _init_from(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not self.cfg.init:
            return self._backbone_init()
        init = Path(self.cfg.init)
        if not (init / checkpoint.BEST).exists() and any((init / n).exists() for n in ("model.json", "model.npz", "model.joblib")):
            raise ParameterError(f"--init {init} is an svm run; only cnn, lstm and transformer runs can be fine-tuned")
        ck = checkpoint.load(init / checkpoint.BEST)
        self.init_path = Path(self.cfg.init) / checkpoint.BEST
        meta = ck["meta"]
        if meta["model_name"] == "cnn_ensemble" and self.cfg.model == "cnn":
            first = init / "member-0"
            if (first / checkpoint.BEST).is_file():
                where = f"fine-tune one of its members (--init {first})"
            elif (init / "ensemble.json").is_file():
                where = "fine-tune one of the runs it averages"
            else:  # a --mutual run: its members were trained together and have no runs of their own
                where = "its members were trained together (--mutual) and have no runs of their own to fine-tune"
            raise ParameterError(f"--init {self.cfg.init} averages several CNNs (a cnn_ensemble); {where}, "
                                 "or train the run to start from with --members 1")  # fmt: skip
        if meta["model_name"] != self.cfg.model:
            raise ParameterError(f"--init {self.cfg.init} is a {meta['model_name']} run; this run trains a {self.cfg.model}")
        if meta["feature_config"] != self.prep.feature_config.to_dict():
            raise ParameterError(f"--init {self.cfg.init} was trained on other features; use the same FeatureConfig")
        if int(meta["window_frames"]) != window_frames(self.cfg.window, self.prep.feature_config):
            raise ParameterError(f"--init {self.cfg.init} used {meta['window_seconds']} s windows; pass --window {meta['window_seconds']}")
        return meta, ck["model"]

    def _backbone_init(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The pretrained backbone a CNN starts from (its weights, normaliser and shape), or nothing.

        ``--backbone shipped`` or a path; a backbone that does not fit the
        run's features or network shape is refused with what to do instead.
        """
        from pyharmonies.training.backbone import load_backbone, resolve_backbone, shipped_backbone_path

        if self.cfg.model != "cnn" or self.cfg.backbone == "none":
            return None, None
        path = resolve_backbone(self.cfg.backbone)
        shipped = self.cfg.backbone == "shipped"
        if shipped and not path.is_file():
            raise ParameterError(f"this installation has no shipped backbone ({shipped_backbone_path()}); "
                                 "pass --backbone PATH (a `harmonies pretrain` folder or its backbone.npz)")  # fmt: skip
        found = load_backbone(path)
        why = found.mismatch(self.prep.feature_config, self.cfg.model_options)
        if why is not None:
            name = "the shipped backbone" if shipped else str(path)
            raise ParameterError(f"--backbone {self.cfg.backbone}: {name} does not fit this run: {why}; pretrain one for "
                                 "these features and this network (`harmonies pretrain AUDIO --out DIR` with this run's "
                                 "--feature-config and --model-options, then --backbone DIR), or train from scratch "
                                 "(no --backbone)")  # fmt: skip
        self.init_path = found.path
        self.backbone_info = {"path": str(found.path), "sha256": found.sha256, "shipped": shipped,
                              "pretraining": found.meta.get("pretraining", {})}  # fmt: skip
        options = dict(found.meta["model_config"])
        if "dropout" in self.cfg.model_options:
            options["dropout"] = self.cfg.model_options["dropout"]
        meta = {"labels": [], "normalizer": found.meta["normalizer"], "model_config": options}
        return meta, dict(found.state)

    def _teacher_targets(self, source: FeatureSource) -> torch.Tensor:
        """``(n_train_windows, classes)``: the teacher's probabilities on the clean training windows, at the temperature."""
        if self.cfg.teacher == SVM_TEACHER:
            return self._svm_teacher_targets()
        teacher = load_teacher(self.cfg.teacher, self.meta)
        check_teacher_splits(teacher.run, self.prep.splits, self.prep.clips)
        clean = WindowDataset(self.prep.clips, self.prep.label_index, self.windows["train"], source,
                              Normalizer.from_dict(teacher.meta["normalizer"]), self.window)  # fmt: skip
        probs, _ = predict(teacher.model.to(self.device), DataLoader(clean, batch_size=256), self.device)  # on the GPU too
        self.meta["teacher"] = {"run": str(teacher.run), "model_name": teacher.meta["model_name"],
                                "train_window_accuracy": float((probs.argmax(1) == clean.labels).mean()),
                                "mean_top_probability": float(probs.max(1).mean())}  # fmt: skip
        return torch.from_numpy(soften(probs, self.cfg.distill_temperature)).to(self.device)

    def _svm_teacher_targets(self) -> torch.Tensor:
        """``(n_train_windows, classes)``: each training window's clip's out-of-fold SVM probabilities, softened."""
        windows = self.windows["train"]
        by_clip = svm_teacher_clip_targets(self.prep, [w.clip for w in windows], self.cfg.group_by, self.cfg.seed)
        probs = np.stack([by_clip[w.clip] for w in windows])
        labels = np.asarray(self.datasets["train"].labels)
        self.meta["teacher"] = {"run": SVM_TEACHER, "model_name": "svm (cross-fitted over the training tracks)",
                                "train_window_accuracy": float((probs.argmax(1) == labels).mean()),
                                "mean_top_probability": float(probs.max(1).mean())}  # fmt: skip
        return torch.from_numpy(soften(probs, self.cfg.distill_temperature)).to(self.device)

    def _load_init(self, meta: dict[str, Any], state: dict[str, Any]) -> None:
        same_labels = list(meta["labels"]) == list(self.prep.labels)
        if same_labels:
            checkpoint.load_weights(self.model, state, self.init_path)
        else:
            # A new head for the new classes; everything else is kept.
            head_keys = {f"head.{k}" for k in self.model.head.state_dict()}
            kept = {k: v for k, v in state.items() if k not in head_keys}
            missing, unexpected = checkpoint.load_weights(self.model, kept, self.init_path, strict=False)
            if set(missing) != head_keys or unexpected:
                raise CheckpointError(f"{self.init_path}: its weights do not fit a {self.cfg.model} backbone "
                                      f"(missing {len(set(missing) - head_keys)}, unexpected {len(unexpected)})")  # fmt: skip
        if self.cfg.freeze_backbone:
            for p in self.model.backbone.parameters():
                p.requires_grad_(False)

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        ds = self.datasets[split]
        if shuffle and self.teacher_targets is not None:
            ds = WithIndex(ds)  # batches carry their windows' indices, to look up the teacher's answers
        sampler = None
        generator = torch.Generator() if shuffle else None
        if shuffle and self.cfg.clip_bag:
            sampler = ClipBagSampler([w.clip for w in ds.windows], ds.labels, bag=self.cfg.clip_bag, seed=self.cfg.seed,
                                     balanced=self.cfg.balance == "sampler", rank=self.dist.rank, world_size=self.dist.world_size)
        elif shuffle and self.cfg.balance in ("sampler", "tracks"):
            groups = [ds.clips[w.clip].group(self.cfg.group_by) for w in ds.windows] if self.cfg.balance == "tracks" else None
            sampler = BalancedSampler(ds.labels, seed=self.cfg.seed, groups=groups, rank=self.dist.rank,
                                      world_size=self.dist.world_size)
        elif shuffle and self.dist.enabled:
            sampler = torch.utils.data.distributed.DistributedSampler(
                ds, num_replicas=self.dist.world_size, rank=self.dist.rank, shuffle=True, seed=self.cfg.seed
            )
        if shuffle:
            self.train_generator = generator  # reseeded every epoch: resumable
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                          generator=generator if sampler is None else None, num_workers=self.cfg.workers, drop_last=False,
                          pin_memory=self.device.type == "cuda", persistent_workers=self.cfg.workers > 0)  # fmt: skip

    # -- checkpoints ---------------------------------------------------

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.core.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "best": dict(self.best),
            "bad_epochs": self.bad_epochs,
            "history": list(self.history),
            "meta": self.meta,
            **({"average": self.average.state_dict()} if self.average is not None else {}),
        }

    def resume(self, ck: dict[str, Any], path: Path) -> None:
        """Continue from ``ck``, the run's ``last.pt`` (read with ``checkpoint.load(..., keys=RESUME_KEYS)``)."""
        if list(ck["meta"]["labels"]) != list(self.meta["labels"]) or ck["meta"]["model_name"] != self.meta["model_name"]:
            raise ParameterError(f"{path} belongs to another model or label set; use a new --out")
        checkpoint.load_weights(self.core, ck["model"], path)
        try:
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
            self.best = dict(ck["best"])
            self.bad_epochs = int(ck["bad_epochs"])
            self.history = list(ck["history"])
            self.start_epoch = int(ck["epoch"]) + 1
            if self.average is not None:
                self.average.load_state_dict(ck["average"])
        except (ValueError, TypeError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{path}: its training state does not fit this run ({type(err).__name__}); use a new --out") from None

    # -- the loop -------------------------------------------------------

    def _train_epoch(self, epoch: int) -> float:
        self.model.train()
        if self.cfg.freeze_backbone:
            self.core.backbone.eval()  # frozen BatchNorm statistics stay as trained
        ds = self.datasets["train"]
        ds.set_epoch(epoch)
        if isinstance(self.train_loader.sampler, (BalancedSampler, ClipBagSampler, torch.utils.data.distributed.DistributedSampler)):
            self.train_loader.sampler.set_epoch(epoch)
        self.train_generator.manual_seed(self.cfg.seed * 1000003 + epoch)
        torch.manual_seed(self.cfg.seed * 1000003 + epoch * 101 + self.dist.rank)  # dropout, resumable
        rng = np.random.default_rng([self.cfg.seed, epoch, self.dist.rank, 7])
        total, count = 0.0, 0
        batches = self.train_loader
        if self.progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", leave=False, unit="batch", dynamic_ncols=True)
        bag = max(1, self.cfg.clip_bag)  # windows per scored prediction
        for batch in batches:
            x = batch[0].to(self.device, non_blocking=True)
            y = batch[1].to(self.device, non_blocking=True)
            if bag > 1:
                y = y[::bag]  # one label per bag: its clip's
            lam, perm = 1.0, None
            if self.cfg.mixup > 0 and y.shape[0] > 1:
                lam = float(rng.beta(self.cfg.mixup, self.cfg.mixup))
                perm = torch.as_tensor(rng.permutation(y.shape[0]), device=self.device)
                # bags are mixed whole: window i of one bag with window i of another
                rows = (perm[:, None] * bag + torch.arange(bag, device=self.device)).reshape(-1)
                x = lam * x + (1.0 - lam) * x[rows]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model(x, per_member=True) if self.cfg.mutual else self.model(x)
            logits = logits.float()
            if bag > 1:
                logits = pooled_log_probabilities(logits, bag)
            if self.cfg.mutual:
                loss = mutual_loss(logits, lambda one: self._mixed_loss(one, y, lam, perm), self.cfg.mutual)
            else:
                loss = self._mixed_loss(logits, y, lam, perm)
            if self.teacher_targets is not None:
                soft = self.teacher_targets[batch[2].to(self.device)]
                if perm is not None:
                    soft = lam * soft + (1.0 - lam) * soft[perm]
                weight = self.cfg.distill_weight
                loss = (1.0 - weight) * loss + weight * distill_loss(logits, soft, self.cfg.distill_temperature)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.average is not None:
                self.average.update(self.core)
            total += float(loss.detach()) * x.shape[0]
            count += x.shape[0]
            if self.progress:
                batches.set_postfix(loss=f"{total / count:.3f}")
        return total / max(count, 1)

    def _mixed_loss(self, logits: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor | None) -> torch.Tensor:
        loss = self._loss(logits, y)
        return loss if perm is None else lam * loss + (1.0 - lam) * self._loss(logits, y[perm])

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Pooled log-probabilities (clip bags) are their own log-softmax, so cross_entropy takes them as they are.
        return F.cross_entropy(logits, y, weight=self.class_weights, label_smoothing=self.cfg.label_smoothing)

    def evaluate(self, split: str) -> dict[str, Any]:
        loader = self._loader(split, shuffle=False)
        probs, y = predict(self.kept, loader, self.device)
        metrics = evaluate_windows(probs, y, self.windows[split], self.prep.labels)
        metrics["loss"] = float(F.nll_loss(torch.log(torch.as_tensor(probs).clamp_min(1e-12)), torch.as_tensor(y)))
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train until the epoch budget or early stopping; returns the test metrics of the best epoch."""
        main = self.dist.is_main
        has_val = bool(self.windows.get("val"))
        for epoch in range(self.start_epoch, self.cfg.epochs):
            if self.bad_epochs >= self.cfg.patience:
                break
            t0 = time.perf_counter()
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            train_loss = self._train_epoch(epoch)
            seconds = time.perf_counter() - t0
            val = self.evaluate("val") if has_val else None
            if self.cfg.select_by == "last":
                score = (float(epoch + 1), 0.0)  # every epoch replaces the one before: the annealed end is kept
            else:
                # A better select_by score wins; at an equal score (it saturates on
                # easy data) the lower validation loss does.
                score = (_selection_score(val, self.cfg.select_by), -val["loss"]) if val else (0.0, -train_loss)
            entry = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val["loss"] if val else None,
                "val_accuracy": val["window"]["accuracy"] if val else None,
                "val_macro_f1": val["window"]["macro_f1"] if val else None,
                "val_clip_accuracy": val["clip"]["accuracy"] if val else None,
                "val_clip_macro_f1": val["clip"]["macro_f1"] if val else None,
                "lr": float(self.scheduler.get_last_lr()[0]),
                "seconds": seconds,
                "windows_per_second": len(self.datasets["train"]) / seconds if seconds > 0 else None,
            }
            if self.device.type == "cuda":
                entry["peak_gpu_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.history.append(entry)
            improved = score > tuple(self.best["score"])
            if improved:
                self.best = {"score": list(score), "epoch": epoch + 1}
                self.bad_epochs = 0
                if main:
                    checkpoint.save_atomic({"model": self.kept.state_dict(), "meta": self.meta, "epoch": epoch + 1}, self.run_dir / checkpoint.BEST)
            else:
                self.bad_epochs += 1
            if main:
                checkpoint.save_atomic(self._state(epoch), self.run_dir / checkpoint.LAST)
                if self.progress:
                    vtxt = f" val acc {entry['val_accuracy']:.3f} macro-F1 {entry['val_macro_f1']:.3f}" if val else ""
                    print(f"epoch {epoch + 1:3d}  loss {train_loss:.4f}{vtxt}  {seconds:.1f} s{'  *' if improved else ''}", flush=True)
            self.dist.barrier()
        # The best weights (rank 0 wrote them before the barrier), on every split.
        best = checkpoint.load(self.run_dir / checkpoint.BEST, map_location=self.device)
        checkpoint.load_weights(self.kept, best["model"], self.run_dir / checkpoint.BEST)
        results = {split: self.evaluate(split) for split in SPLITS if self.windows.get(split)}
        return results


def start_description(cfg: TrainConfig, backbone: dict[str, Any] | None) -> str:
    """How the run's weights started, one line for reports."""
    if cfg.init:
        return f"fine-tuned from the run {cfg.init}"
    if backbone is None:
        return "random initial weights (from scratch)"
    info = backbone.get("pretraining", {})
    what = "the shipped backbone" if backbone["shipped"] else f"the backbone {backbone['path']}"
    hours = f", pretrained on {info['hours']:.1f} h of unlabelled audio ({info['recordings']} recordings)" if info else ""
    return f"{what} (sha256 {backbone['sha256'][:12]}){hours}"


def _selection_score(val: dict[str, Any], select_by: str) -> float:
    """The validation figure named by ``TrainConfig.select_by``."""
    level, name = select_by.split("_", 1)
    return float(val[level][name])


#: Options that may differ when a run is resumed: where features are cached and how they are
#: loaded, and the device (after a kill, a run may continue elsewhere); the others shape the run.
RESUME_MAY_CHANGE = ("out", "data", "device", "workers", "cache", "use_cache", "fuse_svm")  # fuse_svm: fused (again) at the end


def check_resumable(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with options other than those in its ``config.json``.

    Raises
    ------
    ParameterError
        One line naming each option that differs (and the dataset, when
        ``data`` resolves to another dataset: a folder holding a
        ``manifest.csv`` and that manifest are one).
    """
    path = run_dir / "config.json"
    if not path.exists():
        return
    saved = TrainConfig.load(path).to_dict()
    now = cfg.to_dict()
    diffs = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in sorted(now) if k not in RESUME_MAY_CHANGE and now[k] != saved.get(k)]
    if dataset_source(saved["data"]) != dataset_source(now["data"]):  # a folder and its manifest.csv are one dataset
        diffs.insert(0, f"data {saved['data']!r} -> {now['data']!r}")
    if diffs:
        raise ParameterError(f"--resume: {path} was trained with other options ({'; '.join(diffs)}); "
                             "resume with the run's own options, or choose another --out")  # fmt: skip


def train_run(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    split_keys: dict[str, set[str]] | None = None,
    resume: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Train one model into ``cfg.out``: config, splits, checkpoints, metrics, report.

    With ``cfg.members`` > 1, that many CNNs averaged into one model
    (:func:`pyharmonies.training.members.train_members`).

    Parameters
    ----------
    cfg : TrainConfig
    progress : bool
        Progress bars and a line per epoch (rank 0 only).
    split_keys : dict, optional
        Clip keys per split (k-fold passes each fold's); by default a
        grouped, stratified, seeded split of the dataset.
    resume : bool
        Continue from the run directory's ``last.pt`` (after a kill). The
        options must be the run's own (:func:`check_resumable`), and
        ``last.pt`` is read before anything is written: a resume that fails
        leaves ``config.json`` and ``splits.json`` as they were.
    warn : callable, optional
        Receives each warning about the data (a class with few clips, an
        empty class folder) as soon as the dataset is opened (rank 0 only).

    Returns
    -------
    Path
        The run directory.
    """
    from pyharmonies.training import report

    if cfg.members > 1 and not cfg.mutual:
        from pyharmonies.training.fusion import ensure_fused
        from pyharmonies.training.members import train_members

        run_dir = train_members(cfg, progress=progress, split_keys=split_keys, resume=resume, warn=warn)
        if int(os.environ.get("RANK", "0")) == 0:
            ensure_fused(run_dir, cfg.fuse_svm, progress=progress, seed=cfg.seed)
        return run_dir
    dist = Distributed.from_env(cfg.device)
    try:
        run_dir = Path(cfg.out)
        last_path = run_dir / checkpoint.LAST
        config_path, split_path = run_dir / "config.json", run_dir / "splits.json"
        last = None
        if not resume and last_path.exists():
            raise ParameterError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        if resume:
            check_resumable(cfg, run_dir)
            if last_path.exists():  # read (and refused, if it must be) before anything is written
                last = checkpoint.load(last_path, keys=checkpoint.RESUME_KEYS)
                if last["meta"]["model_name"] != network_name(cfg):
                    raise ParameterError(f"{last_path} belongs to a {last['meta']['model_name']} run, not {cfg.model}; use a new --out")
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        dist.barrier()
        fcfg = FeatureConfig(**cfg.features)
        prep = prepare_data(cfg.data, fcfg, INPUT_KIND[cfg.model], cfg.cache, dist=dist, progress=progress, warn=warn)
        if split_keys is None and resume and split_path.exists():
            prep.splits = load_splits(split_path, prep.clips)  # as the run was started (a train_fraction already cut)
        else:
            prep.splits = run_splits(prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed, val=cfg.val, test=cfg.test,
                                     train_fraction=cfg.train_fraction, keys=split_keys, val_seed=cfg.val_seed)  # fmt: skip
        trainer = _Trainer(cfg, run_dir, prep, dist, progress)
        if last is not None:
            trainer.resume(last, last_path)
        if dist.is_main:
            # A resumed run keeps the files it was started with (check_resumable compared the options).
            if not (resume and config_path.exists()):
                cfg.save(config_path)
            if not (resume and split_path.exists()):
                save_splits(split_path, prep.splits, prep.clips, group_by=cfg.group_by, seed=cfg.splits_seed)
        results = trainer.fit()
        if dist.is_main:
            from pyharmonies.models.complexity import count_macs, count_parameters
            from pyharmonies.training.svm import baseline_on_splits

            shape = (1, 1, *trainer.meta["input_shape"]) if prep.kind == "log_mel" else (1, *trainer.meta["input_shape"])
            model_info = {
                "name": trainer.model_name,
                "config": trainer.options,
                "parameters": count_parameters(trainer.core),
                "macs_per_window": count_macs(trainer.core.cpu(), shape),
                "start": start_description(cfg, trainer.backbone_info),
            }
            metrics = {
                "splits": results,
                "best_epoch": trainer.best["epoch"],
                "epochs_run": len(trainer.history),
                "history": trainer.history,
                "model": model_info,
                "device": str(trainer.device),
                "world_size": dist.world_size,
                "windows": {s: len(w) for s, w in trainer.windows.items()},
                "clips": {s: len(m) for s, m in prep.splits.items()},
                "problems": [{"path": str(p.path), "reason": p.reason} for p in prep.problems],
                "warnings": list(prep.index.warnings),
                "labels": prep.labels,
                # The classical baseline on the very same clips and split, for every report.
                "baseline": baseline_on_splits(prep, cfg.seed),
            }
            write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
            report.write_run_report(run_dir, cfg, metrics)
            if cfg.fuse_svm is not None:
                from pyharmonies.training.fusion import fuse_run

                fuse_run(run_dir, cfg.fuse_svm, progress=progress, seed=cfg.seed)
        dist.barrier()
        return run_dir
    finally:
        dist.close()


def fold_teacher(teacher: str | None, k: int) -> str | None:
    """Fold ``k``'s teacher: ``teacher/fold-k`` when ``teacher`` is a ``--folds`` run (same folds), else ``teacher``."""
    if teacher is None or teacher == SVM_TEACHER:
        return teacher
    from pyharmonies.training.ensemble import is_folds_run

    return str(Path(teacher) / f"fold-{k}") if is_folds_run(teacher) else teacher


def _fold_lock(run: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``run/.train.lock`` while this process trains the fold (torchrun: rank 0 holds it for all ranks)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    run.mkdir(parents=True, exist_ok=True)
    path = run / ".train.lock"
    return locks.hold(path, f"{run} is being trained by another process now (it holds {path}); "
                            "leave that fold to it, or wait until it ends")  # fmt: skip


def train_folds(cfg: TrainConfig, *, progress: bool = True, resume: bool = False,
                warn: Callable[[str], None] | None = None, only: Sequence[int] | None = None) -> Path:  # fmt: skip
    """Grouped k-fold cross-validation: one run per fold under ``cfg.out/fold-K``, and a summary.

    ``resume`` continues a cross-validation that was killed: a fold with
    its ``metrics.json`` is kept as it is, a fold with a ``last.pt`` is
    resumed from it (:func:`train_run`), the others are trained; the options
    must be those in ``cfg.out/config.json``.

    ``only`` trains just those folds, so that several processes (GPUs,
    machines sharing ``cfg.out``) can each take some: ``cfg.out`` may then
    hold the others' folds already (same options required), a finished fold
    is skipped, a fold another process is training now is refused (it
    holds the fold's lock file), and a fold a killed process started is
    refused unless ``resume``. The summary is written by whichever process finds every fold
    finished; until then ``cfg.out/metrics.json`` does not exist.

    Works for every model (the SVM included): the folds depend only on the
    clips, ``group_by`` and ``seed``, so runs of different models with the
    same seed are tested on the same tracks. The summary (``metrics.json``,
    ``report.md``, pooled confusion matrices) is :func:`crossval.summarize_folds`'s.
    ``warn`` receives the dataset's warnings once (each fold's report also has them).
    """
    from pyharmonies.training import report
    from pyharmonies.training.crossval import summarize_folds

    index = open_dataset(cfg.data)
    if warn is not None:
        for line in index.warnings:
            warn(line)
    folds = group_kfold(index.clips, cfg.folds, group_by=cfg.group_by, seed=cfg.splits_seed, val=cfg.val)
    out = Path(cfg.out)
    chosen = range(len(folds)) if only is None else sorted(set(only))
    if any(not 0 <= k < len(folds) for k in chosen):
        raise ParameterError(f"--fold: {cfg.folds} folds are numbered 0 to {cfg.folds - 1}, got {list(chosen)}")
    if resume or only is not None:
        check_resumable(cfg, out)
    elif (out / "fold-0").exists():
        raise ParameterError(f"{out} already holds a cross-validation; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")  # first, so that --resume can check its options
    for k in chosen:
        fold = folds[k]
        sub = TrainConfig.from_dict({**cfg.to_dict(), "out": str(out / f"fold-{k}"), "folds": 0,
                                     "backbone": cfg.backbone.replace("{fold}", str(k)),  # one backbone per fold
                                     "teacher": fold_teacher(cfg.teacher, k)})
        run = Path(sub.out)
        # Folds are computed on the full index; each run keeps the readable clips of its fold.
        keys = {split: {index.clips[i].key for i in members} for split, members in fold.items()}
        with _fold_lock(run):
            started = (run / checkpoint.LAST).exists() or (run / "member-0").exists()
            if (resume or only is not None) and (run / "metrics.json").exists():
                from pyharmonies.training.fusion import ensure_fused

                if int(os.environ.get("RANK", "0")) == 0:  # killed while fusing: fused now
                    ensure_fused(run, cfg.fuse_svm, progress=progress, seed=cfg.seed)
            elif only is not None and started and not resume:
                raise ParameterError(f"{run} was started by a process that is no longer training it (killed?); "
                                     "pass --resume to continue it")  # fmt: skip
            elif cfg.model == "svm":
                from pyharmonies.training.svm import train_svm_run

                train_svm_run(sub, progress=progress, split_keys=keys)
            elif cfg.model == "probe":
                from pyharmonies.training.probe import train_probe_run

                train_probe_run(sub, progress=progress, split_keys=keys)
            else:
                train_run(sub, progress=progress, split_keys=keys, resume=resume and started)
    finished = [out / f"fold-{k}" / "metrics.json" for k in range(len(folds))]
    if not all(path.exists() for path in finished):
        return out  # the other folds are another process's (only)
    summary = summarize_folds([json.loads(path.read_text()) for path in finished])
    summary["model"] = cfg.model
    summary["group_by"] = cfg.group_by
    summary["seed"], summary["split_seed"] = cfg.seed, cfg.splits_seed
    write_atomic(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    report.write_folds_report(out, cfg, summary)
    return out
