"""Datasets for training: readers, leak-free splits, windows, a feature cache, augmentation.

Workstation side (DESIGN.md), but torch-free: numpy, soundfile, soxr and the
native feature core only (librosa only inside
:func:`~pyharmonies.data.augment.pitch_shift_offline`), so a data loader can
use it in any process. The training code turns its arrays into tensors.

Modules
-------
sources
    :func:`open_dataset` reads class folders (also GTZAN's layout) or a CSV
    manifest into a :class:`DatasetIndex` of :class:`Clip`; unreadable files
    become :class:`Problem` entries, never exceptions.
splits
    Train/val/test and k-fold splits by group (track, or any manifest
    column), stratified and seeded; :func:`check_splits` refuses leaks.
windows
    Fixed windows of frames cut from each clip, padded with silence.
cache
    :class:`FeatureCache`: whole-file features computed once (in parallel),
    memory-mapped, keyed by file content and :class:`FeatureConfig`.
augment
    Training-time augmentation in the feature domain.
synth
    :func:`synth_corpus`: a synthetic, musically inspired labelled corpus.
instruments, render
    :func:`make_instrument_corpus`: folk tunes from music21's corpus played
    by instrument families, rendered by fluidsynth from a General-MIDI
    SoundFont (recorded samples); music21 and fluidsynth load on first use.

Examples
--------
>>> from pyharmonies.data import open_dataset, split_groups         # doctest: +SKIP
>>> index = open_dataset("data/gtzan")                              # doctest: +SKIP
>>> splits = split_groups(index.clips, seed=0)                      # doctest: +SKIP
"""

from __future__ import annotations

from pyharmonies.data.augment import AugmentConfig, augment_window, mixup_pairs, white_noise_profile
from pyharmonies.data.cache import FEATURE_KINDS, FeatureCache
from pyharmonies.data.instruments import FAMILY_NAMES, make_instrument_corpus
from pyharmonies.data.sources import AudioInfo, Clip, DatasetIndex, Problem, open_dataset
from pyharmonies.data.splits import SPLITS, LeakError, check_splits, group_kfold, load_splits, save_splits, split_groups
from pyharmonies.data.synth import CLASS_NAMES, synth_corpus
from pyharmonies.data.windows import Window, make_windows, silence_values, take_window, window_frames

__all__ = [
    "CLASS_NAMES",
    "FAMILY_NAMES",
    "FEATURE_KINDS",
    "SPLITS",
    "AudioInfo",
    "AugmentConfig",
    "Clip",
    "DatasetIndex",
    "FeatureCache",
    "LeakError",
    "Problem",
    "Window",
    "augment_window",
    "check_splits",
    "group_kfold",
    "load_splits",
    "make_instrument_corpus",
    "make_windows",
    "mixup_pairs",
    "open_dataset",
    "save_splits",
    "silence_values",
    "split_groups",
    "synth_corpus",
    "take_window",
    "white_noise_profile",
    "window_frames",
]
