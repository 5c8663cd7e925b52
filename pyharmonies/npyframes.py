"""A ``.npy`` file of feature frames written as the frames arrive, never held whole.

Features are ``(rows, frames)`` arrays, but a stream delivers them frame by
frame. Stored in Fortran order, an ``(rows, frames)`` array is laid out one
frame after another, so each block of frames is appended as it comes; the
header, which must state the shape, is written first with room to spare and
rewritten with the final frame count at the end. ``np.load`` reads the file
as any other (memory-mapped or not); the array it returns is
F-contiguous, with the same shape and values as the C-ordered array of
:func:`~pyharmonies.features.extract`. A window of frames is one contiguous
stretch of the file, which suits memory-mapped reading.

The header follows the NPY format version 1.0 (``numpy.lib.format``): the
magic string, a 2-byte little-endian header length, and a Python dict
literal padded with spaces to a multiple of 64 bytes.

Device side: numpy only.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from pyharmonies.errors import ParameterError

#: Bytes reserved for the header: magic, length and dict, padded; holds any (rows, frames) shape.
HEADER_BYTES = 128

_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(rows: int, frames: int) -> bytes:
    """The :data:`HEADER_BYTES` header of a float32 Fortran-order ``(rows, frames)`` array."""
    text = "{'descr': '<f4', 'fortran_order': True, 'shape': (%d, %d), }" % (rows, frames)
    room = HEADER_BYTES - len(_MAGIC) - 2
    if len(text) + 1 > room:  # pragma: no cover - 20-digit frame counts still fit
        raise ParameterError(f"shape ({rows}, {frames}) does not fit a {HEADER_BYTES}-byte .npy header")
    return _MAGIC + struct.pack("<H", room) + (text.ljust(room - 1) + "\n").encode("latin1")


class NpyFrameWriter:
    """Append ``(rows, k)`` blocks of float32 frames to a ``.npy`` file.

    Parameters
    ----------
    fh : binary file
        Open for writing at its start, and seekable (a real file).
    rows : int
        Rows of every block (``n_mels``...).

    Attributes
    ----------
    frames : int
        Frames written so far.

    Examples
    --------
    >>> with open("x.npy", "wb") as fh:                      # doctest: +SKIP
    ...     out = NpyFrameWriter(fh, 64)
    ...     for block in blocks:
    ...         out.write(stream.push(block)["log_mel"])
    ...     out.close()
    >>> np.load("x.npy").shape                                 # doctest: +SKIP
    (64, 1293)
    """

    def __init__(self, fh: BinaryIO, rows: int):
        if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
            raise ParameterError(f"rows must be an integer >= 1, got {rows!r}")
        self.fh = fh
        self.rows = int(rows)
        self.frames = 0
        self._start = fh.tell()
        fh.write(npy_header(self.rows, 0))

    def write(self, block: np.ndarray) -> None:
        """Append the frames of ``block``, shape ``(rows, k)`` (``k`` may be 0)."""
        x = np.asarray(block)
        if x.ndim != 2 or x.shape[0] != self.rows:
            raise ParameterError(f"blocks must be (rows, k) = ({self.rows}, k), got shape {x.shape}")
        if x.shape[1]:
            self.fh.write(np.ascontiguousarray(x.T, dtype="<f4").tobytes())  # frame after frame
            self.frames += x.shape[1]

    def close(self) -> None:
        """Write the final shape into the header (the file itself is the caller's to close)."""
        end = self.fh.tell()
        self.fh.seek(self._start)
        self.fh.write(npy_header(self.rows, self.frames))
        self.fh.seek(end)
