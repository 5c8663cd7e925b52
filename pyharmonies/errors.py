"""The exception tree of harmonies.

Every error the package raises on purpose derives from :class:`HarmoniesError`,
so a caller can catch all of them at once; each also derives from the
built-in exception a Python user would expect (``ValueError`` for a bad
parameter, ``OSError``-free :class:`AudioError` for an unreadable file).
"""

from __future__ import annotations


class HarmoniesError(Exception):
    """Base class of every error raised by harmonies."""


class ParameterError(HarmoniesError, ValueError):
    """A parameter or configuration value is invalid."""


class AudioError(HarmoniesError):
    """An audio file could not be read or decoded."""


class BundleError(HarmoniesError):
    """A model bundle is missing, corrupt, or not usable by this runtime."""


class DeviceError(HarmoniesError):
    """An audio input device could not be found or opened."""


class DeviceLost(DeviceError):
    """An open audio input device stopped delivering audio (unplugged, server gone)."""
