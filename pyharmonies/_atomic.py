"""Files written whole or not at all, readable like any other file.

A reader (or a kill) never sees half a file: the data goes to a temporary
file in the same folder, is flushed to disk, then renamed over the target.
The temporary file is created with mode ``0o666`` less the umask, as
``open(path, "w")`` would make it; ``tempfile.mkstemp`` would make it 0600,
and a run folder or a cache written that way is unreadable to the rest of
a team. The standard library only, so both sides may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Suffix of the temporary files; a leftover one is the trace of a crash.
PART = ".part"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the block ends without an error.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is made if needed.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        For text mode (``"utf-8"`` when omitted).

    Notes
    -----
    On an exception, or a kill, ``path`` keeps its old content (or stays
    absent) and the temporary file is removed (after a kill, a hidden
    ``.NAME.XXXXXXXX.part`` may be left).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{PART}")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"{path}: cannot create a temporary file beside it")
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` with :func:`atomic_open`."""
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
