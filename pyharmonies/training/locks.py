"""Advisory locks that keep two processes off one folder.

``fcntl.flock`` on a file in the folder: the kernel releases it when the
holder exits, killed or not, so a lock that cannot be taken always means a
live process (on this machine; flock over a network file system may not see
another machine's). Used by ``harmonies tune`` (one process per study) and
``harmonies train --fold`` (one process per fold).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from pyharmonies.errors import ParameterError

__all__ = ["hold"]


@contextlib.contextmanager
def hold(path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the ``with`` block.

    Raises
    ------
    ParameterError
        ``busy``, when another process holds the lock now.
    """
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParameterError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
