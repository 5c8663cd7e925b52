"""Fixed-length windows of feature frames, cut from each clip: the device side's, re-exported.

A model sees ``window`` frames at a time (by default 2 s for the CNN, 86
frames at 22050 Hz with hop 512, and 3 s, 129 frames, for the sequence
models). Windows keep their clip's index, hence its split: a window is never
in a split its clip is not. A clip shorter than one window
gives one window, padded at the end with the features of digital silence
(:func:`silence_values`), which is also what a stream sees before a sound.

The functions live in :mod:`pyharmonies.windows` (device side), so that
training cuts windows with the very code that ``harmonies classify`` and
``harmonies listen`` run; this module only gives them their place among the
dataset modules.
"""

from __future__ import annotations

from pyharmonies.windows import (
    Window,
    WindowCutter,
    make_windows,
    silence_values,
    take_window,
    window_frames,
    window_starts,
)

__all__ = ["Window", "WindowCutter", "make_windows", "silence_values", "take_window", "window_frames", "window_starts"]
