"""The configuration of a training run: everything needed to reproduce it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pyharmonies._atomic import write_atomic
from pyharmonies.errors import ParameterError, refuse_unknown_fields

MODEL_CHOICES = ("cnn", "lstm", "transformer", "svm", "probe")
BALANCE_CHOICES = ("sampler", "tracks", "weights", "none")
#: TrainConfig.normalize's choices: one mean and std per input row, or one for the whole log-mel.
NORMALIZE_CHOICES = ("band", "global")
#: TrainConfig.normalize_over's choices: the clips whose statistics standardise the inputs.
NORMALIZE_OVER_CHOICES = ("train", "train+val")
#: TrainConfig.member_val's choices: members > 1 hold out the split's validation tracks, or each its own.
MEMBER_VAL_CHOICES = ("shared", "own")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
#: What picks the best epoch (and stops early): validation macro-F1 over windows, or over clips
#: (the mean of a clip's window probabilities), or clip accuracy; or "last", the final epoch's
#: weights, at the end of the learning-rate schedule, with no early stopping.
SELECT_CHOICES = ("window_macro_f1", "clip_macro_f1", "clip_accuracy", "last")
#: (epochs, patience) when not given. The CNN's is the budget measured on the soundtracks set: with
#: 30 epochs and patience 8, a noisy validation score stopped training at epoch 12 on two folds of
#: five, keeping the weights of epoch 4 at nearly the peak learning rate (docs/EXPERIMENTS.md).
DEFAULT_BUDGET = {"cnn": (10, 4), "lstm": (30, 8), "transformer": (30, 8)}
OTHER_BUDGET = (30, 8)  # svm, probe: fitted once, the fields unused
#: select_by when not given. The CNN keeps its last epoch: on the soundtracks set, choosing the
#: epoch by the validation tracks' clip accuracy picked early epochs at a high learning rate on
#: some folds and lost up to 8 points there, and gained little elsewhere (docs/EXPERIMENTS.md).
#: The LSTM and transformer keep the selection their figures were measured with.
DEFAULT_SELECT_BY = {"cnn": "last"}
OTHER_SELECT_BY = "clip_accuracy"
#: Seconds per window when not given. The CNN's 2 s windows beat its 3 s ones on the soundtracks set
#: over four draws on the same folds (docs/EXPERIMENTS.md); the sequence models keep the 3 s their
#: figures were measured with.
DEFAULT_WINDOW = {"cnn": 2.0}
OTHER_WINDOW = 3.0
#: Networks averaged into one model when not given. Three CNNs at width 0.4, averaged, scored 52.2%
#: on the soundtracks set (the mean over every triple of eight members, five folds) against one
#: full-width CNN's 52.0% over four draws: level in accuracy, with fewer parameters and inside the
#: 250 kB int8 budget (docs/EXPERIMENTS.md). A run that starts from --init, a backbone or a teacher run trains one network:
#: those starts are one full-width network's.
DEFAULT_MEMBERS = {"cnn": 3}
#: (distill_weight, distill_temperature) when not given: a run's answers on its own training windows
#: are sure of themselves and are softened (T 3); the SVM teacher's are calibrated answers for clips it
#: never saw, taken as they are, for half of the loss (docs/EXPERIMENTS.md, "The SVM as a teacher").
DISTILL_DEFAULTS = {"run": (0.7, 3.0), "svm": (0.5, 1.0)}
#: The teacher value that names the SVM baseline rather than a run (training.svm_teacher).
SVM_TEACHER = "svm"
#: The CNN's width when members > 1 and model_options gives none: three members stay under 250 kB int8.
MEMBER_WIDTH = 0.4


@dataclasses.dataclass
class TrainConfig:
    """A training run, saved as ``config.json`` in its run directory."""

    data: str  # dataset: a class-per-folder root or a CSV manifest
    model: str = "cnn"  # cnn (log-mel MobileNetV2) | lstm, transformer (frame vectors) | svm (clip statistics) | probe (linear head on a backbone)
    out: str = "runs/run"  # run directory
    epochs: int | None = None  # the cosine schedule's length, an upper bound with early stopping; None: DEFAULT_BUDGET
    batch_size: int = 32
    lr: float = 3e-3  # AdamW peak learning rate, cosine-decayed per step
    weight_decay: float = 1e-2
    grad_clip: float = 5.0  # max global gradient norm
    patience: int | None = None  # stop after this many epochs without a better validation score (select_by); None: DEFAULT_BUDGET
    select_by: str | None = None  # the validation score that picks the best epoch; "last": the final epoch, no early stopping; None: DEFAULT_SELECT_BY
    warmup_epochs: float = 1.0  # linear warm-up before the cosine decay
    label_smoothing: float = 0.05
    device: str = "auto"  # auto: CUDA when available, else CPU
    amp: bool = True  # mixed precision (bfloat16 autocast) on CUDA; ignored on CPU
    seed: int = 0  # splits, initialisation, shuffling and augmentation
    split_seed: int | None = None  # the splits' and folds' own seed; None: seed (another seed on the same folds: run-to-run noise)
    window: float | None = None  # seconds of audio per classified window; None: DEFAULT_WINDOW
    window_hop: float | None = None  # seconds between training windows; None: window / 2
    clip_bag: int = 0  # >= 2: clip-level targets, batches of bags of this many windows of one clip, each bag's pooled prediction scored; 0: every window on its own
    balance: str = "sampler"  # class imbalance: class-balanced sampler | tracks: also every group of a class alike | loss weights | none (docs/EXPERIMENTS.md)
    group_by: str = "track"  # a split never separates clips of one group (track, or a manifest column)
    val: float = 0.15  # fraction of groups for validation
    val_seed: int | None = None  # another draw of the validation groups from the non-test ones (test unchanged); None: the split's own
    test: float = 0.15  # fraction of groups for test
    train_fraction: float = 1.0  # keep this fraction of each label's training groups (the small-data curve)
    folds: int = 0  # > 1: grouped k-fold cross-validation, one model per fold
    members: int | None = None  # cnn, > 1: this many networks (seed, seed + 1, ...) on one split, averaged into one model; None: DEFAULT_MEMBERS (1 with init, a backbone or a teacher run)
    mutual: float = 0.0  # members > 1: train them together, each also pulled towards the others' mean answer by a KL term of this weight (deep mutual learning); 0: independent runs, averaged
    member_val: str = "shared"  # members > 1: shared: all hold out the split's validation tracks | own: member i holds out its own (val seed seed + i), all share one normaliser over every non-test track
    augment: bool = True  # gain, noise, time shift, SpecAugment (feature domain)
    normalize: str = "band"  # band: standardise each input row by its own training mean and std | global (cnn): one mean and std for the whole log-mel, so bands keep their relative levels
    normalize_over: str = "train"  # the clips whose mean and std standardise the inputs: train | train+val (every non-test clip, so that runs holding out other validation tracks share it)
    mixup: float = 0.2  # mixup alpha; 0 disables
    average_weights: float = 0.0  # decay per step of the weights' moving average that is validated and kept; 0: the raw weights
    teacher: str | None = None  # distil from this run (e.g. a `harmonies ensemble`; a --folds run gives each fold its own), or "svm": the baseline's cross-fitted answers (training.svm_teacher)
    distill_weight: float | None = None  # with a teacher: the loss is this much the teacher's answers, the rest the labels; None: DISTILL_DEFAULTS
    distill_temperature: float | None = None  # with a teacher: the temperature of both its answers and the student's logits; None: DISTILL_DEFAULTS
    augment_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # AugmentConfig fields, e.g. p_eq
    fuse_svm: float | None = None  # after training, fuse the SVM baseline's calibrated answer with this weight in [0, 1] (training.fusion); None: the network alone
    workers: int = 0  # DataLoader worker processes
    cache: str = ".cache/features"  # feature cache directory
    use_cache: bool = True  # False: recompute features from audio for every window (slow; for benchmarks)
    init: str | None = None  # fine-tune from this earlier run directory
    backbone: str = "none"  # cnn, probe: a pretrained backbone: none (from scratch) | shipped | a pretrain run or .npz ({fold}: per fold)
    freeze_backbone: bool = False  # with init or a backbone: train the head only
    head_epochs: float = 0.0  # train the head alone (backbone learning rate 0) for this many epochs first
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # model config fields, e.g. width
    features: dict[str, Any] = dataclasses.field(default_factory=dict)  # FeatureConfig fields (defaults if empty)

    def __post_init__(self) -> None:
        if self.model not in MODEL_CHOICES:
            raise ParameterError(f"model must be one of {', '.join(MODEL_CHOICES)}, got {self.model!r}")
        if self.balance not in BALANCE_CHOICES:
            raise ParameterError(f"balance must be one of {', '.join(BALANCE_CHOICES)}, got {self.balance!r}")
        if self.select_by is None:
            self.select_by = DEFAULT_SELECT_BY.get(self.model, OTHER_SELECT_BY)
        if self.select_by not in SELECT_CHOICES:
            raise ParameterError(f"select_by must be one of {', '.join(SELECT_CHOICES)}, got {self.select_by!r}")
        if self.augment_options:
            from pyharmonies.data.augment import AugmentConfig

            AugmentConfig.from_dict(self.augment_options)  # unknown or bad fields are refused now, not mid-run
        epochs, patience = DEFAULT_BUDGET.get(self.model, OTHER_BUDGET)
        self.epochs = epochs if self.epochs is None else self.epochs
        self.patience = patience if self.patience is None else self.patience
        if self.window is None:
            self.window = DEFAULT_WINDOW.get(self.model, OTHER_WINDOW)
        if self.device not in DEVICE_CHOICES:
            raise ParameterError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {self.device!r}")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.window <= 60:
            raise ParameterError(f"window must be in (0, 60] seconds, got {self.window}")
        if self.window_hop is not None and not 0 < self.window_hop:
            raise ParameterError(f"window_hop must be positive, got {self.window_hop}")
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise ParameterError(f"val and test fractions must be in [0, 1) and sum below 1, got {self.val}, {self.test}")
        if not 0 < self.train_fraction <= 1:
            raise ParameterError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.split_seed is not None and (isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int)):
            raise ParameterError(f"split_seed must be an integer or null, got {self.split_seed!r}")
        if self.val_seed is not None and (isinstance(self.val_seed, bool) or not isinstance(self.val_seed, int)):
            raise ParameterError(f"val_seed must be an integer or null, got {self.val_seed!r}")
        if self.folds == 1 or self.folds < 0:
            raise ParameterError(f"folds must be 0 (one split) or at least 2, got {self.folds}")
        if self.members is None:
            # The SVM teaches a network trained from scratch; a run as teacher makes one network of its size.
            from_scratch = self.init is None and self.backbone == "none" and self.teacher in (None, SVM_TEACHER)
            self.members = DEFAULT_MEMBERS.get(self.model, 1) if from_scratch else 1
        if isinstance(self.members, bool) or not isinstance(self.members, int) or self.members < 1:
            raise ParameterError(f"members must be an integer of at least 1, got {self.members!r}")
        if self.members > 1 and self.model != "cnn":
            raise ParameterError(f"members: only cnn networks are averaged into one model, not the {self.model}")
        if self.members > 1 and isinstance(self.model_options, dict) and "width" not in self.model_options:
            self.model_options = {**self.model_options, "width": MEMBER_WIDTH}
        if not 0 <= self.mutual <= 10:
            raise ParameterError(f"mutual must be in [0, 10] (0 trains the members on their own), got {self.mutual}")
        if self.mutual and self.members < 2:
            raise ParameterError("mutual: the members learn from each other, so it needs members of at least 2")
        if self.mutual and (self.clip_bag or self.teacher is not None):
            raise ParameterError("mutual trains the members on windows, each beside the others: not with clip_bag or a teacher")
        if self.mutual and (self.init or self.backbone != "none"):
            raise ParameterError("mutual trains its members from scratch, together: not from --init or a backbone")
        if isinstance(self.clip_bag, bool) or not isinstance(self.clip_bag, int) or self.clip_bag < 0 or self.clip_bag == 1:
            raise ParameterError(f"clip_bag must be 0 (windows on their own) or an integer of at least 2, got {self.clip_bag!r}")
        if self.clip_bag:
            if self.model not in ("cnn", "lstm", "transformer"):
                raise ParameterError(f"clip_bag trains a cnn, lstm or transformer, not the {self.model}")
            if self.batch_size % self.clip_bag:
                raise ParameterError(f"batch_size ({self.batch_size}) must be a multiple of clip_bag ({self.clip_bag}): a batch holds whole bags")
            if self.balance not in ("sampler", "none"):
                raise ParameterError(f"clip_bag draws clips class-balanced (balance 'sampler') or not ('none'), not with balance {self.balance!r}")
            if self.teacher is not None:
                raise ParameterError("clip_bag and a teacher do not go together: the teacher answers for windows, the bag loss for clips")
        if self.normalize not in NORMALIZE_CHOICES:
            raise ParameterError(f"normalize must be one of {', '.join(NORMALIZE_CHOICES)}, got {self.normalize!r}")
        if self.normalize != "band":
            if self.model != "cnn":
                raise ParameterError(f"normalize {self.normalize!r} is for the cnn's log-mel; the {self.model}'s inputs "
                                     "are standardised row by row (band)")  # fmt: skip
            if self.init or self.backbone != "none":
                raise ParameterError(f"normalize {self.normalize!r}: a run started from --init or a backbone keeps that "
                                     "model's input standardisation; train from scratch to choose another")  # fmt: skip
        if self.normalize_over not in NORMALIZE_OVER_CHOICES:
            raise ParameterError(f"normalize_over must be one of {', '.join(NORMALIZE_OVER_CHOICES)}, got {self.normalize_over!r}")
        if self.member_val not in MEMBER_VAL_CHOICES:
            raise ParameterError(f"member_val must be one of {', '.join(MEMBER_VAL_CHOICES)}, got {self.member_val!r}")
        # One split for all the members when they train together on the same batches (mutual), or when
        # train_fraction thins each one's training tracks (their non-test tracks would differ).
        if self.mutual or self.train_fraction < 1:
            self.member_val = "shared"
        if self.freeze_backbone and not self.init and (self.model != "cnn" or self.backbone == "none"):
            raise ParameterError("freeze_backbone needs init (the run whose backbone to keep) or, for the cnn, a backbone")
        if not 0 <= self.average_weights < 1:
            raise ParameterError(f"average_weights must be in [0, 1) (0 turns it off), got {self.average_weights}")
        weight, temperature = DISTILL_DEFAULTS["svm" if self.teacher == SVM_TEACHER else "run"]
        self.distill_weight = weight if self.distill_weight is None else self.distill_weight
        self.distill_temperature = temperature if self.distill_temperature is None else self.distill_temperature
        if not 0 <= self.distill_weight <= 1:
            raise ParameterError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if not self.distill_temperature > 0:
            raise ParameterError(f"distill_temperature must be positive, got {self.distill_temperature}")
        if self.teacher is not None and self.model not in ("cnn", "lstm", "transformer"):
            raise ParameterError(f"a teacher trains a cnn, lstm or transformer; the {self.model} has no distillation")
        if self.fuse_svm is not None and (self.model != "cnn" or not 0 <= self.fuse_svm <= 1):
            raise ParameterError(f"fuse_svm weighs the SVM's answer against the cnn's, in [0, 1]; got {self.fuse_svm} for a {self.model}")
        if not 0 <= self.head_epochs <= self.epochs:
            raise ParameterError(f"head_epochs must be in [0, epochs], got {self.head_epochs}")
        if not self.backbone:
            raise ParameterError("backbone must be 'shipped', 'none' or a path")
        if self.model == "probe" and self.backbone == "none":
            raise ParameterError("the probe is a linear head on a pretrained backbone: backbone must be 'shipped' or a path")

    @property
    def splits_seed(self) -> int:
        """The seed that draws the train/val/test split or the folds: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def hop_seconds(self) -> float:
        """Seconds between training windows."""
        return self.window_hop if self.window_hop is not None else self.window / 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        refuse_unknown_fields(cls, data, "training option(s)")
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write ``config.json`` atomically, readable like any other file."""
        write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a ``config.json``; a :class:`ParameterError` naming the file if it is missing or malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ParameterError(f"{path}: no such file (not a run directory? `harmonies train --out DIR` writes one)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ParameterError(f"{path}: cannot read the run's configuration ({err})") from None
        if not isinstance(data, dict):
            raise ParameterError(f"{path}: not a run configuration (expected a JSON object)")
        try:
            return cls.from_dict(data)
        except ParameterError as err:
            raise ParameterError(f"{path}: {err}") from None
        except TypeError as err:  # a required field missing
            raise ParameterError(f"{path}: not a run configuration ({err})") from None
