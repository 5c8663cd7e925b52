"""Self-supervised pretraining of the CNN backbone on unlabelled audio.

The method, and why
-------------------
Contrastive learning with recordings as instances: a positive pair is two
log-mel crops taken at random places in *one recording* (COLA, Saeed et al.
2021: "Contrastive learning of general-purpose audio representations"),
each augmented in the feature domain (gain, random EQ, band limit, noise,
SpecAugment: the nuisances a listener ignores); the other recordings of the
batch are the negatives. Each crop goes through the backbone and a small
projection MLP that is thrown away afterwards, and the loss is SimCLR's
symmetric NT-Xent (Chen et al. 2020) over cosine similarities at a
temperature.

- Crops of one recording rather than two augmentations of one crop: music
  keeps its instruments, production and style over a piece but changes
  notes, so the representation must keep the first and may drop the second;
  the augmentations remove what a mastering or a microphone adds.
- Negatives, unlike BYOL(-A), because the runs here are short and small
  (a few hundred recordings, two CPU cores or a few minutes of GPU):
  contrastive losses learn usefully in few epochs at batch sizes of 32–128
  and need neither a momentum target nor a predictor, whose collapse
  avoidance is sensitive at this scale.
- A batch never holds two crops pairs of one recording, so no false
  negatives within a source; recordings of one album or game still are
  negatives of each other (the method cannot know).

Under torchrun every rank draws its own batches and its loss uses its own
negatives (no all-gather); DDP averages the gradients.

Run files (``OUT``): ``config.json``, ``last.pt`` (resume), ``backbone.npz``
(written every epoch: the backbone so far, with its description),
``history.json``, ``report.md`` and ``pretrain.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pyharmonies._atomic import write_atomic
from pyharmonies.data.augment import AugmentConfig, augment_window, white_noise_profile
from pyharmonies.data.cache import FeatureCache
from pyharmonies.data.unlabelled import UnlabelledAudio, open_unlabelled
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.models.cnn import MobileNetV2
from pyharmonies.models.registry import config_to_dict, model_config
from pyharmonies.training import checkpoint
from pyharmonies.training.backbone import BACKBONE_FILE, save_backbone
from pyharmonies.training.dataset import Normalizer
from pyharmonies.training.distributed import Distributed
from pyharmonies.training.loop import lr_lambda, resolve_device
from pyharmonies.windows import silence_values, take_window, window_frames

__all__ = ["PRETRAIN_AUGMENT", "PretrainConfig", "nt_xent", "pretrain_run"]

#: Stronger than supervised training's: the positives must agree despite them.
PRETRAIN_AUGMENT = dict(p_gain=0.8, gain_db=9.0, p_eq=0.6, eq_db=9.0, p_bandlimit=0.3, p_noise=0.3,
                        p_shift=0.0, p_mask=0.8, p_mixup=0.0)  # fmt: skip


@dataclass
class PretrainConfig:
    """A pretraining run, saved as ``config.json`` in its folder."""

    audio: list[str]  # files, folders or datasets; labels are ignored
    out: str = "runs/backbone"
    epochs: int = 60
    minutes: float | None = None  # stop after the epoch that passes this wall time (over resumes too)
    batch_size: int = 64  # recordings per step; each gives two crops
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 128
    window: float = 3.0  # seconds per crop
    steps_per_epoch: int | None = None  # None: about one crop per window of audio per epoch
    warmup_epochs: float = 2.0
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA
    seed: int = 0
    cache: str = ".cache/features"
    workers: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)  # CNNConfig fields, e.g. width
    features: dict[str, Any] = field(default_factory=dict)  # FeatureConfig fields
    augment_options: dict[str, Any] = field(default_factory=lambda: dict(PRETRAIN_AUGMENT))
    exclude: str | None = None  # a run's splits.json: its test tracks are left out
    probe: str | None = None  # a labelled dataset: k-NN accuracy of the embeddings, by track
    probe_every: int = 5  # epochs between probes (and the last epoch)

    def __post_init__(self) -> None:
        if not self.audio:
            raise ParameterError("pretraining needs at least one audio source")
        for name in ("epochs", "batch_size", "projection_dim", "probe_every"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ParameterError("batch_size must be at least 2: the other recordings of a batch are the negatives")
        if not 0 < self.temperature <= 10:
            raise ParameterError(f"temperature must be in (0, 10], got {self.temperature}")
        if self.minutes is not None and not self.minutes > 0:
            raise ParameterError(f"minutes must be positive, got {self.minutes}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ParameterError(f"steps_per_epoch must be at least 1, got {self.steps_per_epoch}")
        if not 0 < self.window <= 60:
            raise ParameterError(f"window must be in (0, 60] seconds, got {self.window}")
        augment = AugmentConfig.from_dict(self.augment_options)
        if augment.p_stretch:
            raise ParameterError("pretrain does not time-stretch its crops (p_stretch is a training option): leave it out")
        if augment.p_mix_class:
            raise ParameterError("pretrain has no classes to mix within (p_mix_class is a training option): leave it out")
        model_config("cnn", self.model_options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy for ``B`` positive pairs.

    Parameters
    ----------
    a, b : torch.Tensor, shape (B, D)
        Projections of the two crops; row ``i`` of ``a`` and of ``b`` come
        from one recording. Normalised here.
    temperature : float

    Returns
    -------
    torch.Tensor, scalar
        The mean over all ``2B`` anchors of the cross-entropy of picking
        the partner among the ``2B - 1`` other crops.
    """
    n = a.shape[0]
    z = F.normalize(torch.cat([a, b]).float(), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, partner)


class CropPairs(Dataset):
    """Two augmented, normalised log-mel crops of one recording per item.

    The index encodes ``(step, recording)`` so that a batch sampler can ask
    for distinct recordings; the crops are a function of ``(seed, epoch,
    index)``: resumable.
    """

    def __init__(self, audio: UnlabelledAudio, cache: FeatureCache, config: FeatureConfig, frames: int,
                 normalizer: Normalizer, augment: AugmentConfig, seed: int) -> None:  # fmt: skip
        self.cache, self.config, self.frames = cache, config, frames
        self.normalizer, self.augment, self.seed = normalizer, augment, seed
        self.epoch = 0
        self.tracks = audio.tracks
        by_track: dict[str, list[int]] = {t: [] for t in self.tracks}
        for i, clip in enumerate(audio.clips):
            by_track[clip.track].append(i)
        self.clips = audio.clips
        self.members = [by_track[t] for t in self.tracks]
        self.lengths = [np.asarray([cache.clip_features(audio.clips[i], "log_mel").shape[1] for i in m], dtype=np.float64)
                        for m in self.members]  # fmt: skip
        self.pad = silence_values(config)["log_mel"]
        self.noise = white_noise_profile(config)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.tracks)

    def crop(self, track: int, rng: np.random.Generator) -> np.ndarray:
        """One augmented, normalised crop of recording ``track``, shape ``(1, n_mels, frames)``."""
        lengths = self.lengths[track]
        member = int(rng.choice(len(lengths), p=lengths / lengths.sum()))
        feats = self.cache.clip_features(self.clips[self.members[track][member]], "log_mel")
        start = int(rng.integers(0, max(1, feats.shape[1] - self.frames + 1)))
        x = take_window(feats, start, self.frames, self.pad)
        x = augment_window(x, "log_mel", rng, self.augment, self.config, self.noise)
        return self.normalizer(x).astype(np.float32, copy=False)[None]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        track = index % len(self.tracks)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return torch.from_numpy(self.crop(track, rng)), torch.from_numpy(self.crop(track, rng))


class DistinctRecordings:
    """Batches of ``batch`` distinct recordings, ``steps`` per epoch, seeded by (seed, epoch, rank)."""

    def __init__(self, n_tracks: int, batch: int, steps: int, seed: int, rank: int = 0) -> None:
        self.n, self.batch, self.steps, self.seed, self.rank = n_tracks, min(batch, n_tracks), steps, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 0xC01A])
        for step in range(self.steps):
            picked = rng.choice(self.n, size=self.batch, replace=False)
            yield [int(step * self.n + t) for t in picked]


class ContrastiveModel(nn.Module):
    """A CNN's backbone and a projection MLP: ``(B, 1, M, T)`` -> ``(B, projection_dim)``.

    It holds the backbone module itself (shared with the :class:`MobileNetV2`
    it came from), not the network's unused head: DDP wants every parameter
    to take part in the loss.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, projection_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(x))


def pretrain_run(cfg: PretrainConfig, *, progress: bool = True, resume: bool = False, warn=None) -> Path:
    """Pretrain a backbone into ``cfg.out``; returns the folder (``backbone.npz`` inside).

    ``resume`` continues from ``last.pt`` with the same options (the wall-time
    budget ``minutes`` counts the time before the kill too).
    """
    dist = Distributed.from_env(cfg.device)
    try:
        return _Pretrainer(cfg, dist, progress, resume, warn).fit()
    finally:
        dist.close()


class _Pretrainer:
    def __init__(self, cfg: PretrainConfig, dist: Distributed, progress: bool, resume: bool, warn) -> None:
        self.cfg, self.dist = cfg, dist
        self.progress = progress and dist.is_main
        self.out = Path(cfg.out)
        last_path = self.out / checkpoint.LAST
        if not resume and last_path.exists():
            raise ParameterError(f"{self.out} already holds a pretraining run; pass --resume or choose another --out")
        last = None
        if resume and last_path.exists():
            saved = json.loads((self.out / "config.json").read_text(encoding="utf-8"))
            now = json.loads(json.dumps(cfg.to_dict()))  # tuples as JSON hands them back: lists
            differ = [k for k in sorted(saved) if k not in ("out", "device", "workers", "cache", "minutes", "epochs")
                      and saved[k] != now.get(k)]  # fmt: skip
            if differ:
                raise ParameterError(f"--resume: {self.out} was pretrained with other options ({', '.join(differ)})")
            last = checkpoint.load(last_path, keys=("model", "optimizer", "scheduler", "epoch", "history"))
        self.device = dist.device if dist.enabled else resolve_device(cfg.device)
        self.fcfg = FeatureConfig(**cfg.features)
        self.audio = open_unlabelled(cfg.audio, exclude=cfg.exclude)
        self.cache = FeatureCache(cfg.cache, self.fcfg)
        paths = sorted({c.path for c in self.audio.clips})
        problems = list(self.audio.problems)
        if dist.is_main:
            problems += self.cache.ensure(paths, progress=self.progress)
        dist.barrier()
        if not dist.is_main:
            problems += self.cache.ensure(paths, progress=False)
        bad = {p.path for p in problems}
        for p in problems:
            if warn and dist.is_main:
                warn(f"skipped {p.path}: {p.reason}")
        self.audio.clips = [c for c in self.audio.clips if c.path not in bad]
        if len(self.audio.tracks) < 2:
            raise ParameterError(f"pretraining needs at least two readable recordings, found {len(self.audio.tracks)}")
        self.problems = problems
        self.frames = window_frames(cfg.window, self.fcfg)
        arrays = [self.cache.clip_features(c, "log_mel") for c in self.audio.clips]
        self.total_frames = int(sum(a.shape[1] for a in arrays))
        self.normalizer = Normalizer.fit(arrays)
        self.dataset = CropPairs(self.audio, self.cache, self.fcfg, self.frames, self.normalizer,
                                 AugmentConfig.from_dict(cfg.augment_options), cfg.seed)  # fmt: skip
        batch = min(cfg.batch_size, len(self.audio.tracks))
        steps = cfg.steps_per_epoch or max(1, round(self.total_frames / self.frames / 2 / batch / dist.world_size))
        self.sampler = DistinctRecordings(len(self.audio.tracks), batch, steps, cfg.seed, dist.rank)
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=cfg.workers,
                                 pin_memory=self.device.type == "cuda", persistent_workers=cfg.workers > 0)  # fmt: skip
        torch.manual_seed(cfg.seed)
        self.options = config_to_dict(model_config("cnn", cfg.model_options))
        self.net = MobileNetV2(1, (self.fcfg.n_mels, self.frames), model_config("cnn", self.options)).to(self.device)
        self.model = ContrastiveModel(self.net.backbone, self.net.feature_dim, cfg.projection_dim).to(self.device)
        self.core = self.model
        if dist.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.epochs * steps, int(cfg.warmup_epochs * steps)))
        self.amp = cfg.amp and self.device.type == "cuda"
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        if last is not None:
            checkpoint.load_weights(self.core, last["model"], last_path)
            self.optimizer.load_state_dict(last["optimizer"])
            self.scheduler.load_state_dict(last["scheduler"])
            self.start_epoch = int(last["epoch"])
            self.history = list(last["history"])
        self.probe = None
        if cfg.probe and dist.is_main:
            from pyharmonies.training.embedding import KnnProbe

            self.probe = KnnProbe(cfg.probe, self.cache, self.fcfg, self.frames, self.normalizer)

    # ------------------------------------------------------------------

    def fit(self) -> Path:
        cfg, main = self.cfg, self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
        spent = sum(h["seconds"] for h in self.history)
        if self.probe is not None and not self.history:  # the untrained network's score: the curve's start
            self.history.append({"epoch": 0, "loss": None, "seconds": 0.0, "knn_accuracy": self.probe(self.net)})
        for epoch in range(self.start_epoch, cfg.epochs):
            if cfg.minutes is not None and spent >= cfg.minutes * 60:
                break
            t0 = time.perf_counter()
            loss = self._epoch(epoch)
            seconds = time.perf_counter() - t0
            spent += seconds
            entry = {"epoch": epoch + 1, "loss": loss, "lr": float(self.scheduler.get_last_lr()[0]), "seconds": seconds,
                     "windows_per_second": 2 * len(self.sampler) * self.sampler.batch * self.dist.world_size / seconds}  # fmt: skip
            last_epoch = epoch + 1 == cfg.epochs or (cfg.minutes is not None and spent >= cfg.minutes * 60)
            if self.probe is not None and ((epoch + 1) % cfg.probe_every == 0 or last_epoch):
                entry["knn_accuracy"] = self.probe(self.net)
            self.history.append(entry)
            if main:
                self._save(epoch + 1)
                if self.progress:
                    knn = f"  k-NN acc {entry['knn_accuracy']:.3f}" if "knn_accuracy" in entry else ""
                    print(f"epoch {epoch + 1:3d}  loss {loss:.4f}{knn}  {seconds:.1f} s", flush=True)
            self.dist.barrier()
        if main:
            self._save(self.history[-1]["epoch"] if self.history else 0, final=True)
        return self.out

    def _epoch(self, epoch: int) -> float:
        self.model.train()
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        torch.manual_seed(self.cfg.seed * 1000003 + epoch * 101 + self.dist.rank)
        batches = self.loader
        if self.progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", leave=False, unit="step", dynamic_ncols=True)
        total, count = 0.0, 0
        for a, b in batches:
            a, b = a.to(self.device, non_blocking=True), b.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                za, zb = self.model(torch.cat([a, b])).chunk(2)
            loss = nt_xent(za, zb, self.cfg.temperature)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            self.scheduler.step()
            total += float(loss.detach())
            count += 1
            if self.progress:
                batches.set_postfix(loss=f"{total / count:.3f}")
        return total / max(count, 1)

    def _save(self, epochs_done: int, final: bool = False) -> None:
        cfg = self.cfg
        hours = self.total_frames * self.fcfg.hop_length / self.fcfg.sample_rate / 3600
        meta = {
            "model_name": "cnn",
            "model_config": self.options,
            "feature_config": self.fcfg.to_dict(),
            "input_kind": "log_mel",
            "input_shape": [self.fcfg.n_mels, self.frames],
            "window_frames": self.frames,
            "window_seconds": cfg.window,
            "normalizer": self.normalizer.to_dict(),
            "pretraining": {
                "method": "contrastive, two augmented crops of one recording as positives, NT-Xent (COLA/SimCLR)",
                "temperature": cfg.temperature, "projection_dim": cfg.projection_dim, "epochs": epochs_done,
                "steps_per_epoch": len(self.sampler), "batch_recordings": self.sampler.batch,
                "recordings": len(self.audio.tracks), "clips": len(self.audio.clips), "hours": round(hours, 3),
                "excluded_recordings": self.audio.excluded_tracks, "sources": [str(a) for a in cfg.audio],
                "exclude": cfg.exclude, "seconds": round(sum(h["seconds"] for h in self.history), 1),
                "device": str(self.device) if self.device.type == "cpu" else torch.cuda.get_device_name(self.device),
                "world_size": self.dist.world_size, "torch": torch.__version__, "seed": cfg.seed,
                "final_loss": self.history[-1]["loss"] if self.history else None,
                "final_knn_accuracy": next((h["knn_accuracy"] for h in reversed(self.history) if "knn_accuracy" in h), None),
            },
        }  # fmt: skip
        state = {"model": self.core.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": epochs_done, "history": self.history}  # fmt: skip
        checkpoint.save_atomic(state, self.out / checkpoint.LAST)
        save_backbone(self.out / BACKBONE_FILE, self.net, meta)
        write_atomic(self.out / "history.json", json.dumps(self.history, indent=1) + "\n")
        if final:
            from pyharmonies.training.pretrain_report import write_pretrain_report

            write_pretrain_report(self.out, meta, self.history, self.problems)

