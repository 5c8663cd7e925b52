"""Decode, mix to mono and resample audio files (soundfile + soxr), block by block.

:func:`iter_blocks` is the one way audio files are read: libsndfile decodes
``block_s`` seconds at a time, the channels are averaged, and soxr's
fixed-rate streaming resampler brings each block to the target rate, so the
memory a file needs does not grow with its length. :func:`load` is the same
blocks concatenated (for clips that are wanted whole).

Resampling in blocks gives exactly the samples of resampling the whole
signal at once: ``soxr.resample`` itself feeds the signal through the same
streaming engine, whose output does not depend on how its input is cut
(checked in ``tests/test_audio.py`` for block sizes from 1 sample up).

Before anything is read, :func:`probe` checks what the header claims: a
sample rate outside :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE`, more
than :data:`MAX_CHANNELS` channels, or a length that the file's size cannot
hold is refused with an :class:`~pyharmonies.errors.AudioError` that names
the file, before any memory is sized from it. A file that ends before its
header says (a truncated WAV) is read as far as it goes, with an
:class:`AudioWarning` saying how much was read.

Device side: imports numpy, soundfile and soxr only.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyharmonies.errors import AudioError, ParameterError

#: File extensions the loaders look for when scanning folders.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")

#: Sample rates a header may claim, in Hz: telephone-band 1 kHz recordings
#: up to 768 kHz (the highest rate audio interfaces offer). Outside, the
#: header is corrupt (a rate of 1 Hz or 100 MHz has been seen in the wild).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000

#: Channels a file may have. Ambisonics and multitrack recordings stay
#: well below it; libsndfile itself accepts up to 1024.
MAX_CHANNELS = 64

#: Seconds decoded per block by default.
BLOCK_SECONDS = 1.0

#: Samples (frames x channels) decoded per block at most, whatever the
#: rate and channel count: 4 MiB of float32.
MAX_BLOCK_SAMPLES = 1 << 20

#: Bytes per sample of the uncompressed subtypes (libsndfile's names): in an
#: uncompressed container (:data:`_UNCOMPRESSED`) the samples cannot
#: outnumber the file's bytes divided by this. (FLAC reports ``PCM_16`` too,
#: but compresses.)
_PCM_BYTES = {
    "PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1,
    "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
}  # fmt: skip

_UNCOMPRESSED = frozenset({"WAV", "WAVEX", "AIFF", "AU", "W64", "RF64", "CAF"})

#: Samples per byte of file that a compressed format can reach: Vorbis
#: compresses digital silence to about 900 samples a byte, FLAC to about
#: 520, Opus 420 (measured with libsndfile 1.2); this leaves 18x room.
MAX_SAMPLES_PER_BYTE = 16_384


class AudioWarning(UserWarning):
    """An audio file was used, but something about it deserves a look (it is truncated)."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of one audio file says (``soundfile.info``), checked by :func:`probe`.

    Attributes
    ----------
    sample_rate : int
    frames : int
        Frames libsndfile will deliver (for a truncated WAV, those present).
    channels : int
    format : str
        libsndfile's container name (``"WAV"``, ``"FLAC"``...).
    subtype : str
        libsndfile's sample encoding (``"PCM_16"``, ``"VORBIS"``...).
    claimed_frames : int or None
        Frames a WAV's header claims when that is more than the file holds
        (the file is truncated); None otherwise.
    """

    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str = ""
    claimed_frames: int | None = None

    @property
    def duration(self) -> float:
        """Length in seconds (of the frames present)."""
        return self.frames / self.sample_rate


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of soundfile's ``(frames, channels)`` layout.

    Parameters
    ----------
    y : np.ndarray, shape (frames,) or (frames, channels)

    Returns
    -------
    np.ndarray, shape (frames,)
    """
    if y.ndim == 1:
        return y
    if y.ndim == 2:
        return y.mean(axis=1, dtype=np.float64).astype(y.dtype, copy=False)
    raise ParameterError(f"audio must be 1-D or (frames, channels), got shape {y.shape}")


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a whole mono float signal with soxr (high quality).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    orig_sr, target_sr : int
        Rates in Hz.

    Returns
    -------
    np.ndarray, shape (round(n * target_sr / orig_sr),), float32
        The samples :func:`iter_blocks` gives, block by block, for the same input.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr or y.size == 0:
        return y
    import soxr

    return np.asarray(soxr.resample(y, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read and check an audio file's header (nothing is decoded).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        The file is missing, not a file, not audio libsndfile reads, holds
        no samples, or its header claims a sample rate outside
        ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``, more than ``MAX_CHANNELS``
        channels, or more samples than the file's size can hold; the message
        names the file and says which.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(f"{path}: cannot decode audio ({_reason(err, path)})") from None
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{path}: the header claims a sample rate of {rate} Hz, outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz "
            "(a corrupt header?)"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: the header claims {channels} channels; at most {MAX_CHANNELS} are supported")
    if frames <= 0:
        raise AudioError(f"{path}: the file holds no samples")
    size = path.stat().st_size
    samples = frames * channels
    width = _PCM_BYTES.get(info.subtype) if info.format in _UNCOMPRESSED else None
    if samples > (size // width if width else size * MAX_SAMPLES_PER_BYTE):
        raise AudioError(
            f"{path}: the header claims {frames} frames ({frames / rate:.6g} s) of {channels}-channel audio, "
            f"more than a {info.format} file of {size} bytes can hold (a corrupt header?)"
        )
    claimed = _wav_claimed_frames(path, size) if info.format in ("WAV", "WAVEX") else None
    return AudioInfo(rate, frames, channels, info.format, info.subtype, claimed if claimed and claimed > frames else None)


def iter_blocks(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    block_s: float = BLOCK_SECONDS,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Read an audio file as mono float32 blocks at ``sample_rate``.

    The header is checked (:func:`probe`) when this is called; the blocks
    are decoded as they are iterated. Memory: one block of the file's
    frames (``block_s`` seconds, at most :data:`MAX_BLOCK_SAMPLES` samples)
    and the resampler's state, whatever the file's length.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...).
    sample_rate : int
        Target rate in Hz.
    block_s : float
        Seconds of the file decoded per block (> 0).
    start_s, end_s : float, optional
        Only this time range of the file, in seconds.

    Yields
    ------
    np.ndarray, shape (m,), float32
        Consecutive pieces of the signal; concatenated, exactly what
        :func:`load` returns (each piece is a new array: keep it if you like).

    Raises
    ------
    AudioError
        At the call: the file is missing, unreadable, empty, or its header
        is refused (see :func:`probe`), or the range holds no audio. While
        iterating: a block cannot be decoded, or holds NaN or Inf. The
        message names the file.

    Warns
    -----
    AudioWarning
        The file ends before its header says (a truncated file): what is
        there is used, and the message says how many seconds of how many.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if not (isinstance(block_s, (int, float)) and block_s > 0):
        raise ParameterError(f"block_s must be a positive number of seconds, got {block_s!r}")
    path = Path(path)
    info = probe(path)
    rate = info.sample_rate
    start = max(0, int(round(start_s * rate)))
    stop = info.frames if end_s is None else min(info.frames, int(round(end_s * rate)))
    if stop <= start:
        raise AudioError(f"{path}: no audio in the range {start_s}..{end_s} s (file has {info.duration:.2f} s)")
    claimed = info.claimed_frames or info.frames
    wanted = claimed if end_s is None else min(claimed, int(round(end_s * rate)))
    block = max(1, min(int(block_s * rate), MAX_BLOCK_SAMPLES // info.channels))
    return _blocks(path, info, int(sample_rate), start, stop, wanted, block)


def _blocks(path: Path, info: AudioInfo, target: int, start: int, stop: int, wanted: int, block: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    rate = info.sample_rate
    stream = None
    if rate != target:
        import soxr

        stream = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
    pos = start
    try:
        f = sf.SoundFile(str(path))
    except Exception as err:
        raise AudioError(f"{path}: cannot decode audio ({_reason(err, path)})") from None
    with f:
        try:
            if start:
                f.seek(start)
        except Exception as err:
            raise AudioError(f"{path}: cannot seek to {start / rate:.2f} s ({_reason(err, path)})") from None
        while pos < stop:
            try:
                y = f.read(min(block, stop - pos), dtype="float32", always_2d=True)
            except Exception as err:
                raise AudioError(f"{path}: cannot decode audio at {pos / rate:.2f} s ({_reason(err, path)})") from None
            if y.shape[0] == 0:
                break  # the file ends before libsndfile's frame count: warned below
            mono = to_mono(y)
            if not np.all(np.isfinite(mono)):
                bad = pos + int(np.argmin(np.isfinite(mono)))
                raise AudioError(f"{path}: decoded samples contain NaN or Inf (first at {bad / rate:.3f} s)")
            pos += y.shape[0]
            out = mono if stream is None else stream.resample_chunk(mono, last=False)
            if out.size:
                yield np.asarray(out, dtype=np.float32)  # a new array: to_mono and soxr never return a view of y
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield np.asarray(tail, dtype=np.float32)
    if pos < wanted:
        warnings.warn(
            AudioWarning(
                f"{path}: truncated: read {(pos - start) / rate:.2f} s of the {(wanted - start) / rate:.2f} s "
                "its header claims; using what is there"
            ),
            stacklevel=2,
        )


def load(path: str | os.PathLike[str], sample_rate: int, *, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Read an audio file (or a time range of it) whole, as mono float32 at ``sample_rate``.

    The blocks of :func:`iter_blocks`, concatenated: the memory is that of
    the result. Prefer :func:`iter_blocks` for files of unknown length.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...).
    sample_rate : int
        Target rate in Hz.
    start_s, end_s : float, optional
        Only this time range of the file, in seconds.

    Returns
    -------
    np.ndarray, shape (n,), float32

    Raises
    ------
    AudioError
        The file is missing, unreadable, empty, or not audio, or its header
        is refused; the message names the file and the reason.

    Warns
    -----
    AudioWarning
        The file is truncated (see :func:`iter_blocks`).
    """
    blocks = list(iter_blocks(path, sample_rate, start_s=start_s, end_s=end_s))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _wav_claimed_frames(path: Path, size: int) -> int | None:
    """Frames the data chunk of a PCM or float RIFF/WAVE file claims, or None.

    libsndfile clamps a truncated WAV's frame count to what the file holds
    (and reads a ``0xFFFFFFFF`` data size, a streaming writer's, to the
    end), so the claim is read here to tell a truncated file from a whole
    one. Only the chunk headers are read.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            align, pos = 0, 12
            for _ in range(64):  # chunks before "data": fmt, fact, LIST...
                fh.seek(pos)
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"fmt ":
                    body = fh.read(16)
                    if len(body) < 16:
                        return None
                    tag, _, _, _, align = struct.unpack("<HHIIH", body[:14])
                    if tag not in (1, 3, 0xFFFE):  # PCM, IEEE float, extensible: frames = bytes / block align
                        return None
                elif name == b"data":
                    if not align or length == 0xFFFFFFFF:
                        return None
                    return length // align
                pos += 8 + length + (length & 1)
                if pos >= size:
                    return None
    except OSError:
        return None
    return None


def _reason(err: BaseException, path: Path) -> str:
    """soundfile's message without the path it repeats."""
    name = os.fspath(path)
    text = str(err) or type(err).__name__
    if text.startswith(f"{name}: "):
        text = text[len(name) + 2 :]
    return text.replace(f"Error opening {name!r}: ", "").strip()
