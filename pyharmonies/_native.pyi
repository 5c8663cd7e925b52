"""Private binding of the harmonies C core (pyharmonies/_native.cpp).

Use pyharmonies.features instead: it validates configurations, names the
features and documents shapes. Samples may be float32, float64 (converted to
float32) or int16 PCM (scaled by 1/32768); they must be 1-D, finite and within +-2**30.
"""

import numpy as np
import numpy.typing as npt

def feature_names() -> list[str]:
    """Feature names in row order; bit i of a feature mask selects name i."""

def validate(
    sample_rate: int, n_fft: int, win_length: int, hop_length: int, center: bool, n_mels: int,
    fmin: float, fmax: float, htk: bool, n_mfcc: int, amin: float, ref: float, features: int,
) -> tuple[int, str]:
    """(hm_status code, message) for a configuration; 0 means usable."""

def frame_count(n_fft: int, hop_length: int, center: bool, n_samples: int) -> int:
    """Frames a signal of n_samples gives (librosa's count)."""

def workspace_size(
    sample_rate: int, n_fft: int, win_length: int, hop_length: int, center: bool, n_mels: int,
    fmin: float, fmax: float, htk: bool, n_mfcc: int, amin: float, ref: float, features: int,
) -> int:
    """Bytes the C extractor needs; raises ValueError for an invalid configuration."""

class Extractor:
    """One hm_extractor and the memory it owns.

    Thread-safe: every method takes the object's mutex, waiting for it with
    the GIL released, and computes with the GIL released. Threads sharing one
    object take turns; threads with their own objects run in parallel.
    """

    def __init__(
        self, sample_rate: int, n_fft: int, win_length: int, hop_length: int, center: bool,
        n_mels: int, fmin: float, fmax: float, htk: bool, n_mfcc: int, amin: float, ref: float,
        features: int,
    ) -> None: ...
    @property
    def row_size(self) -> int:
        """Floats per output row."""
    @property
    def layout(self) -> dict[str, tuple[int, int]]:
        """{name: (offset, size)} of each selected feature within a row."""
    def push(self, samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Rows (k, row_size) completed by these samples (any count, even 0)."""
    def flush(self) -> npt.NDArray[np.float32]:
        """Rows that depend on the end padding; then the extractor resets."""
    def process(self, samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Reset, push a whole non-empty signal and flush: (frames, row_size)."""
    def reset(self) -> None: ...
    def rows_for(self, n_samples: int) -> int:
        """Rows a push of n_samples more samples would return."""
    def flush_rows(self) -> int:
        """Rows the next flush returns."""
