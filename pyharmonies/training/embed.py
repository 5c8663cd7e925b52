"""``harmonies embed``: clip and window embeddings of audio, from a run, a backbone or a bundle, into one ``.npz``.

Three sources give the same kind of vector, the CNN's pooled features (the
classifier head's input):

- a CNN **run** (``best.pt``; a probe run too) and a **backbone** file or
  pretraining folder run in PyTorch (workstation);
- a **bundle** runs its embedding file (``embedding.int8.tflite``...) in the
  device runtime, through :class:`pyharmonies.runtime.embedding.BundleEmbedder`;
  this path imports no torch (nor scikit-learn), so ``harmonies embed BUNDLE``
  runs where the device runtime does.

Every clip is cut into windows of the model's length every ``hop`` frames
(default: one window, no overlap; a clip shorter than a window is padded
with silence); the clip's vector is the mean of its windows'. Features come
from the feature cache, i.e. the same C core as training and the device.

The ``.npz`` holds plain arrays only (strings as fixed-width unicode), read
with ``allow_pickle=False``, and records what made it (kind, path, sha256),
so that ``harmonies similar`` embeds a query with the same model.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies._atomic import atomic_open
from pyharmonies.audio import AUDIO_EXTENSIONS
from pyharmonies.data.sources import Clip, Problem
from pyharmonies.errors import ParameterError
from pyharmonies.features import FeatureConfig

__all__ = ["EMBEDDINGS_FORMAT", "EmbeddingSet", "Embedder", "Vectors", "embed_clips", "gather_clips", "open_embedder", "reopen_embedder"]

EMBEDDINGS_FORMAT = "harmonies-embeddings/1"
SOURCE_KINDS = ("run", "backbone", "bundle")


# --------------------------------------------------------------- the models


@dataclass
class Vectors:
    """What an :class:`Embedder` returns: ``clips`` (n, D), ``windows`` (m, D), ``window_clip`` (m,), ``window_start`` (m,)."""

    clips: np.ndarray
    windows: np.ndarray
    window_clip: np.ndarray
    window_start: np.ndarray


class Embedder:
    """A model that maps raw log-mel windows to vectors; :func:`open_embedder` makes one.

    Attributes
    ----------
    kind : {"run", "backbone", "bundle"}
    path : Path
        What was opened (the run or bundle folder, the backbone file).
    sha256 : str
        Of ``best.pt``, of the backbone file, or of the bundle's ``manifest.json`` (which holds every file's hash).
    file : str
        The bundle's embedding file that runs ("" for the others).
    feature_config : FeatureConfig
    window_frames, dim : int
    """

    kind = ""

    def __init__(self, path: Path, sha256: str, feature_config: FeatureConfig, window_frames: int, dim: int, file: str = ""):
        self.path, self.sha256, self.feature_config = path, sha256, feature_config
        self.window_frames, self.dim, self.file = int(window_frames), int(dim), file

    def embed(self, features: list[np.ndarray], hop: int) -> Vectors:
        """Embeddings of every window of every clip's raw log-mel ``(n_mels, frames_i)`` (frames_i >= 1)."""
        raise NotImplementedError

    def describe(self) -> str:
        what = f"{self.kind} {self.path}" + (f" ({self.file})" if self.file else "")
        return f"{what}: {self.dim}-d vectors of {self.window_frames}-frame windows"


class _TorchEmbedder(Embedder):
    def __init__(self, kind: str, path: Path, sha256: str, net: Any, normalizer: Any, feature_config: FeatureConfig, window_frames: int):
        super().__init__(path, sha256, feature_config, window_frames, net.feature_dim)
        self.kind, self.net, self.normalizer = kind, net.eval(), normalizer

    def embed(self, features: list[np.ndarray], hop: int) -> Vectors:
        from pyharmonies.training.embedding import embed_features

        e = embed_features(self.net, features, self.window_frames, self.normalizer, self.feature_config, hop=hop)
        return Vectors(e.clips, e.windows, e.window_clip, e.window_start)


class _BundleEmbedder(Embedder):
    kind = "bundle"

    def __init__(self, path: Path, runtime_embedder: Any):
        manifest = path / "manifest.json"
        sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
        super().__init__(path, sha, runtime_embedder.feature_config, runtime_embedder.window_frames, runtime_embedder.dim,
                         runtime_embedder.file.name)  # fmt: skip
        self.runtime = runtime_embedder

    def embed(self, features: list[np.ndarray], hop: int) -> Vectors:
        results = [self.runtime.embed_features(f, hop=hop) for f in features]
        windows = np.concatenate([r.windows for r in results]) if results else np.zeros((0, self.dim), np.float32)
        owner = np.concatenate([np.full(len(r.windows), i, np.int64) for i, r in enumerate(results)]) if results else np.zeros(0, np.int64)
        clips = np.stack([r.vector for r in results]) if results else np.zeros((0, self.dim), np.float32)
        return Vectors(clips, windows, owner, np.concatenate([r.starts for r in results]) if results else owner)


def open_embedder(source: str | Path, *, backend: str = "auto", precision: str = "auto") -> Embedder:
    """Open what ``harmonies embed`` reads: a CNN run folder, a backbone (file or pretraining folder), or a bundle.

    Parameters
    ----------
    source : path
    backend, precision : str
        For a bundle: which embedding file runs (as ``classify``: ``auto`` takes int8 when present).

    Raises
    ------
    ParameterError
        Not one of the three, an LSTM or SVM run, or a bundle without embedding files (one line, naming it).
    """
    from pyharmonies.errors import BundleError
    from pyharmonies.runtime.bundle import is_bundle

    path = Path(source)
    if not path.exists():
        raise ParameterError(f"{path}: no such run, backbone or bundle")
    if path.is_dir() and is_bundle(path):
        from pyharmonies.runtime.embedding import BundleEmbedder

        try:
            return _BundleEmbedder(path, BundleEmbedder.open(path, backend=backend, precision=precision))
        except BundleError as err:
            raise ParameterError(str(err)) from None
    if path.is_dir() and (path / "config.json").is_file() and not (path / "backbone.npz").is_file():
        return _run_embedder(path)
    from pyharmonies.training.backbone import load_backbone

    bb = load_backbone(path)
    return _TorchEmbedder("backbone", bb.path, bb.sha256, bb.model(1), bb.normalizer, bb.feature_config, bb.window_frames)


def _run_embedder(path: Path) -> Embedder:
    from pyharmonies.training import checkpoint
    from pyharmonies.training.dataset import Normalizer
    from pyharmonies.training.loop import model_from_meta

    best = path / checkpoint.BEST
    if not best.is_file():
        raise ParameterError(f"{path}: no {checkpoint.BEST}; embeddings come from a trained cnn (or probe) run, a backbone or a bundle")
    ck = checkpoint.load(best)
    meta = ck["meta"]
    if meta.get("model_name") not in ("cnn", "cnn_ensemble"):
        raise ParameterError(f"{path} is a {meta.get('model_name')} run; embeddings come from a CNN (a cnn or probe run)")
    net = model_from_meta(meta)
    checkpoint.load_weights(net, ck["model"], best)
    digest = hashlib.sha256(best.read_bytes()).hexdigest()
    return _TorchEmbedder("run", path, digest, net, Normalizer.from_dict(meta["normalizer"]),
                          FeatureConfig.from_dict(meta["feature_config"]), int(meta["window_frames"]))  # fmt: skip


# ---------------------------------------------------------------- the audio


def _is_class_folders(path: Path) -> bool:
    """A folder with no audio of its own and audio in its sub-folders: ``root/<label>/*.wav``."""
    if not path.is_dir():
        return False
    if any(p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS for p in path.iterdir()):
        return False
    return any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())


def gather_clips(sources: list[str | Path]) -> tuple[list[Clip], list[Problem]]:
    """The clips of ``sources``, labelled where a source is a labelled dataset.

    A ``.csv`` manifest, a folder with ``manifest.csv`` or a folder of class
    folders (``root/<label>/*.wav``) is read as a dataset (labels, track
    ids); other folders and files are unlabelled, each file its own track.

    Returns
    -------
    clips, problems
        ``problems``: files the dataset reader could not use (reported, skipped).
    """
    from pyharmonies.data.sources import MANIFEST_NAME, open_dataset
    from pyharmonies.data.unlabelled import open_unlabelled

    clips: list[Clip] = []
    problems: list[Problem] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise ParameterError(f"{path}: no such file or folder")
        if path.suffix.lower() == ".csv" or (path.is_dir() and (path / MANIFEST_NAME).is_file()) or _is_class_folders(path):
            index = open_dataset(path, min_clips_per_class=0)
            clips += index.clips
            problems += index.problems
        else:
            found = open_unlabelled([path])
            clips += found.clips
            problems += found.problems
    return clips, problems


# ----------------------------------------------------------------- the file


@dataclass
class EmbeddingSet:
    """What ``harmonies embed`` writes, as arrays.

    Attributes
    ----------
    clips : np.ndarray, shape (n, D), float32
        One vector per clip: the mean of its windows'.
    windows : np.ndarray, shape (m, D), float32
    window_clip : np.ndarray, shape (m,), int64
        The clip of each window.
    window_start : np.ndarray, shape (m,), int64
        Each window's first frame within its clip.
    paths, labels, tracks : np.ndarray, shape (n,), unicode
        ``labels`` is "" where unknown.
    clip_start_s, clip_end_s : np.ndarray, shape (n,), float64
        The clip's range in its file (``end`` NaN: to the end).
    source : dict
        ``kind``, ``path``, ``sha256``, ``file`` (bundle), ``feature_config``, ``window_frames``, ``hop_frames``.
    """

    clips: np.ndarray
    windows: np.ndarray
    window_clip: np.ndarray
    window_start: np.ndarray
    paths: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    clip_start_s: np.ndarray
    clip_end_s: np.ndarray
    source: dict[str, Any]

    ARRAYS = ("clips", "windows", "window_clip", "window_start", "paths", "labels", "tracks", "clip_start_s", "clip_end_s")

    def __len__(self) -> int:
        return len(self.clips)

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically (no object arrays: it loads with ``allow_pickle=False``)."""
        path = Path(path)
        arrays = {name: getattr(self, name) for name in self.ARRAYS}
        for name in ("paths", "labels", "tracks"):  # fixed-width unicode, never object
            arrays[name] = np.asarray([str(s) for s in arrays[name]], dtype=str if len(arrays[name]) else "<U1")
        arrays["source"] = np.asarray(json.dumps({**self.source, "format": EMBEDDINGS_FORMAT}, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        """Read an ``.npz`` written by :meth:`save`; never unpickles.

        Raises
        ------
        ParameterError
            Missing, unreadable, not an embeddings file, or arrays whose shapes disagree (one line, naming it).
        """
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"{path}: no such file (`harmonies embed MODEL AUDIO --out {path}` writes one)")
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                values = {name: np.asarray(z[name]) for name in (*cls.ARRAYS, "source")}
        except KeyError as err:
            raise ParameterError(f"{path}: not a harmonies embeddings file (no {err} array)") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            reason = "it holds pickled objects" if "allow_pickle" in str(err) else (str(err).splitlines() or [type(err).__name__])[0]
            raise ParameterError(f"{path}: not a readable embeddings file ({reason})") from None
        try:
            source = json.loads(str(values.pop("source")))
        except json.JSONDecodeError:
            raise ParameterError(f"{path}: its source description is not JSON") from None
        if not isinstance(source, dict) or source.get("format") != EMBEDDINGS_FORMAT:
            raise ParameterError(f"{path}: embeddings format {source.get('format') if isinstance(source, dict) else None!r}; "
                                 f"this version reads {EMBEDDINGS_FORMAT}")  # fmt: skip
        n = len(values["clips"])
        ok = (values["clips"].ndim == 2 and values["windows"].ndim == 2 and values["windows"].shape[1] == values["clips"].shape[1]
              and all(values[k].shape == (n,) for k in ("paths", "labels", "tracks", "clip_start_s", "clip_end_s"))
              and values["window_clip"].shape == (len(values["windows"]),) == values["window_start"].shape
              and (len(values["window_clip"]) == 0 or (values["window_clip"].min() >= 0 and values["window_clip"].max() < n)))  # fmt: skip
        if not ok:
            raise ParameterError(f"{path}: inconsistent embeddings file (array shapes do not match one another)")
        return cls(**values, source=source)


def embed_clips(embedder: Embedder, clips: list[Clip], *, cache_dir: str | Path, hop: int | None = None,
                progress: bool = True) -> tuple[EmbeddingSet, list[Problem]]:  # fmt: skip
    """Embed ``clips`` with ``embedder``.

    Parameters
    ----------
    embedder : Embedder
    clips : list of Clip
    cache_dir : path
        The feature cache (features of each file computed once, by the C core).
    hop : int, optional
        Frames between windows; default the window (no overlap).
    progress : bool
        Progress bars (features, then windows).

    Returns
    -------
    EmbeddingSet, problems
        Unreadable files and clips of no frame are in ``problems`` and not in the set.

    Raises
    ------
    ParameterError
        Nothing left to embed.
    """
    from pyharmonies.data.cache import FeatureCache

    hop = int(hop or embedder.window_frames)
    if hop < 1:
        raise ParameterError(f"hop must be at least one frame, got {hop}")
    cache = FeatureCache(cache_dir, embedder.feature_config)
    problems = cache.ensure(sorted({c.path for c in clips}), progress=progress)
    bad = {p.path for p in problems}
    kept, feats = [], []
    for c in clips:
        if c.path in bad:
            continue
        f = cache.clip_features(c, "log_mel")
        if f.shape[1] == 0:
            problems.append(Problem(c.path, "its range gives no frame to embed", "data"))
            continue
        kept.append(c)
        feats.append(f)
    if not kept:
        reasons = "; ".join(p.reason for p in problems[:3])
        raise ParameterError(f"nothing to embed: no readable clip ({len(problems)} problem(s){': ' + reasons if reasons else ''})")
    step = 64  # clips per call: a progress bar that moves, and bounded memory per call
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(feats), desc="embedding", unit="clip", leave=False, dynamic_ncols=True)
    windows, owner, starts, vectors = [], [], [], []
    for lo in range(0, len(feats), step):
        part = embedder.embed(feats[lo : lo + step], hop)
        vectors.append(part.clips)
        windows.append(part.windows)
        owner.append(part.window_clip + lo)
        starts.append(part.window_start)
        if bar is not None:
            bar.update(len(part.clips))
    if bar is not None:
        bar.close()
    source = {"kind": embedder.kind, "path": str(Path(embedder.path).resolve()), "sha256": embedder.sha256, "file": embedder.file,
              "feature_config": embedder.feature_config.to_dict(), "window_frames": embedder.window_frames, "hop_frames": hop}  # fmt: skip
    emb = EmbeddingSet(
        clips=np.concatenate(vectors).astype(np.float32), windows=np.concatenate(windows).astype(np.float32),
        window_clip=np.concatenate(owner).astype(np.int64), window_start=np.concatenate(starts).astype(np.int64),
        paths=np.asarray([str(Path(c.path).resolve()) for c in kept]), labels=np.asarray([c.label for c in kept]),
        tracks=np.asarray([c.track for c in kept]), clip_start_s=np.asarray([c.start_s for c in kept], np.float64),
        clip_end_s=np.asarray([math.nan if c.end_s is None else c.end_s for c in kept], np.float64), source=source,
    )  # fmt: skip
    return emb, problems


def reopen_embedder(source: dict[str, Any]) -> Embedder:
    """The model an embeddings file records, checked to be the very one (same sha256).

    Raises
    ------
    ParameterError
        It is gone or changed since (its sha256 differs): re-embed.
    """
    path = Path(source["path"])
    options = {"precision": source["file"].split(".")[1], "backend": source["file"].split(".")[2]} if source.get("file") else {}
    embedder = open_embedder(path, **options)
    if embedder.sha256 != source["sha256"] or embedder.kind != source["kind"]:
        raise ParameterError(f"{path}: the {source['kind']} that made these embeddings has changed since "
                             f"(sha256 {embedder.sha256[:12]}..., the file records {source['sha256'][:12]}...); re-run `harmonies embed`")  # fmt: skip
    return embedder
