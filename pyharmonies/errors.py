"""The exception tree of harmonies.

Every error the package raises on purpose derives from :class:`HarmoniesError`,
so a caller can catch all of them at once; each also derives from the
built-in exception a Python user would expect (``ValueError`` for a bad
parameter, ``OSError``-free :class:`AudioError` for an unreadable file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


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


def refuse_unknown_fields(cls: type, data: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ParameterError` naming the keys of ``data`` that are not fields of dataclass ``cls``.

    ``what`` names them in the message, e.g. ``"training option(s)"``; the
    message lists the valid fields too.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParameterError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
