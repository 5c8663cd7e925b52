"""Why an export stops: its own exceptions, under :class:`~pyharmonies.errors.HarmoniesError`."""

from __future__ import annotations

from pathlib import Path

from pyharmonies.errors import HarmoniesError


class ExportError(HarmoniesError):
    """A model could not be exported, or an exported file fails its checks."""


class VerificationError(ExportError):
    """The exported files were written but failed verification; ``manifest.json`` was not.

    Attributes
    ----------
    out_dir : Path
        The bundle folder: the model files and ``report.md`` (the table that
        shows why) are there; without a manifest no runtime loads it.
    """

    def __init__(self, message: str, out_dir: Path):
        super().__init__(message)
        self.out_dir = Path(out_dir)


class AccuracyDropError(VerificationError):
    """An int8 file is more than ``max_drop`` points less accurate than its runtime's fp32 file."""
