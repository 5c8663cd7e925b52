"""Why a run's saved model cannot be used: an exception under :class:`~pyharmonies.errors.HarmoniesError`.

The standard library only, so that the SVM baseline reports its own files
without importing torch.
"""

from __future__ import annotations

from pyharmonies.errors import HarmoniesError


class CheckpointError(HarmoniesError):
    """A run's saved model (``best.pt``, ``last.pt``, the SVM's ``model.npz``) is missing,
    truncated, corrupt, or refused because reading it could run code.

    The message is one line and starts with the file's path.
    """


class RunError(HarmoniesError):
    """A run folder cannot be read: no ``metrics.json``, one that is not JSON, or one that lacks
    the figures asked for (no test split, a field missing).

    The message is one line and starts with the folder's or the file's path.
    """
