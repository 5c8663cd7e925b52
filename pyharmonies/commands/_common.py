"""Options and helpers shared by the commands that read audio files.

Module level imports click and the standard library only (see
:mod:`pyharmonies.commands`); numpy and the feature core load on first use.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pyharmonies.features import FeatureConfig

F = TypeVar("F", bound=Callable[..., Any])

#: ``--features`` keywords besides the feature names themselves.
FEATURE_KEYWORDS = ("all", "frame_vector")

# Config fields that the command line may override: option name -> field.
OVERRIDES = {
    "sample_rate": "--sample-rate",
    "n_fft": "--n-fft",
    "hop_length": "--hop-length",
    "n_mels": "--n-mels",
}


def audio_arguments(func: F) -> F:
    """``AUDIO...``: one or more files. Existence is checked per file, so
    that a missing one is reported and the others still processed."""
    return click.argument(
        "audio", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path)
    )(func)


def config_options(func: F) -> F:
    """``--config`` and the overrides of single fields, shared by commands."""
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="FeatureConfig as a JSON object of fields (what FeatureConfig.to_json() "
            "writes; unknown fields are refused); the defaults if omitted.",
        ),
        click.option(
            "--sample-rate",
            type=int,
            help="Override the config's sample rate (Hz); audio is resampled to it. "
            "fmax follows it if fmax was the old Nyquist frequency.",
        ),
        click.option(
            "--n-fft",
            type=int,
            help="Override the FFT size (power of two); win_length follows it if it equalled the old n_fft.",
        ),
        click.option("--hop-length", type=int, help="Override the hop between frames (samples)."),
        click.option("--n-mels", type=int, help="Override the number of mel bands."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def features_option(func: F) -> F:
    return click.option(
        "--features",
        "features_text",
        default="all",
        show_default=True,
        metavar="NAMES",
        help="Comma-separated feature names (mfcc, zcr, rms, spectral_centroid, "
        "spectral_bandwidth, spectral_rolloff, spectral_flatness, spectral_flux, "
        "spectral_entropy, mel, log_mel, chroma, energy_entropy), or 'all', or "
        "'frame_vector' (the 9 features of the sequence models' per-frame row, "
        "28 values with 20 MFCCs); "
        "keywords and names may be mixed.",
    )(func)


def build_config(config_path: Path | None, **overrides: int | None) -> FeatureConfig:
    """The FeatureConfig from ``--config`` (or the defaults) and overrides.

    Raises click errors that name the file, the field and the reason.
    """
    from pyharmonies.errors import ParameterError
    from pyharmonies.features import FeatureConfig

    if config_path is None:
        base: dict[str, Any] = {}
    else:
        try:
            text = config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise click.BadParameter(f"{config_path}: cannot read ({err})", param_hint="'--config'") from None
        try:
            base = FeatureConfig.from_json(text).to_dict()
        except ParameterError as err:
            raise click.BadParameter(f"{config_path}: {err}", param_hint="'--config'") from None

    given = {field: value for field, value in overrides.items() if value is not None}
    if given:
        unknown = sorted(set(given) - set(OVERRIDES))
        if unknown:  # a programming error in a command, not a user error
            raise TypeError(f"cannot override {unknown}")
        resolved = FeatureConfig(**base) if base else FeatureConfig()
        # A resolved fmax/win_length that only meant "Nyquist"/"n_fft" follows the override.
        if "sample_rate" in given and resolved.fmax == resolved.sample_rate / 2.0:
            base["fmax"] = None
        if "n_fft" in given and resolved.win_length == resolved.n_fft:
            base["win_length"] = None
        base.update(given)
    try:
        return FeatureConfig(**base)
    except ParameterError as err:
        sources = ([str(config_path)] if config_path else []) + [OVERRIDES[f] for f in given]
        where = f" ({', '.join(sources)})" if sources else ""
        raise click.UsageError(f"invalid feature configuration{where}: {err}") from None


def parse_features(text: str) -> tuple[str, ...]:
    """Expand ``--features``: names and keywords, comma-separated, in order, deduplicated."""
    from pyharmonies.features import FEATURE_NAMES, FRAME_VECTOR_FEATURES

    expanded: list[str] = []
    unknown: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "all":
            expanded.extend(FEATURE_NAMES)
        elif item == "frame_vector":
            expanded.extend(FRAME_VECTOR_FEATURES)
        elif item in FEATURE_NAMES:
            expanded.append(item)
        else:
            unknown.append(item)
    if unknown:
        raise click.BadParameter(
            f"unknown feature(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(FEATURE_NAMES)}, or {' / '.join(FEATURE_KEYWORDS)}",
            param_hint="'--features'",
        )
    if not expanded:
        raise click.BadParameter("no feature named", param_hint="'--features'")
    return tuple(dict.fromkeys(expanded))


def decode(path: Path, config: FeatureConfig) -> Any:
    """The whole file as mono float32 at the config's rate (raises AudioError naming the file).

    For commands that need the whole signal at once (``parity`` compares it
    with librosa); ``features`` and ``classify`` read files block by block.
    """
    from pyharmonies.audio import load

    return load(path, config.sample_rate)


def error_message(path: Path, err: BaseException) -> str:
    """``path: reason``, without repeating the path when the message has it.

    An exception that is not one of harmonies' own (a ``MemoryError``, a
    ``ValueError`` from a library) keeps its type in the reason, so that an
    unexpected failure says what it was.
    """
    from pyharmonies.errors import HarmoniesError

    text = str(err)
    if not isinstance(err, HarmoniesError):
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if text.startswith(str(path)) else f"{path}: {text}"


class FileProgress:
    """Iterate over files with a progress bar on stderr, and report per-file errors and warnings.

    The bar is drawn only when stderr is a terminal and there is more than
    one file: piped or logged runs get the error lines and the summary
    only. Errors go to stderr as ``error: <file>: <reason>``, warnings about
    a file (it is truncated) as ``warning: <file>: <what>``. A command
    catches every ``Exception`` of one file (not ``KeyboardInterrupt``),
    reports it with :meth:`fail` and goes on to the next file; it ends
    with :meth:`summary`, and a non-zero exit status when a file failed.
    """

    def __init__(self, paths: Sequence[Path], label: str):
        self.paths = list(paths)
        self.label = label
        self.failed: list[Path] = []
        self.show_bar = len(self.paths) > 1 and _isatty(sys.stderr)

    @contextlib.contextmanager
    def iterate(self) -> Iterator[Iterator[Path]]:
        if not self.show_bar:
            yield iter(self.paths)
            return
        with click.progressbar(
            self.paths,
            label=self.label,
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda p: p.name if p is not None else None,
        ) as bar:
            yield iter(bar)

    def fail(self, path: Path, err: BaseException) -> None:
        self.failed.append(path)
        self._line(f"error: {error_message(path, err)}")

    def warn(self, text: str) -> None:
        self._line(f"warning: {text}")

    def _line(self, text: str) -> None:
        # Clear the bar's line first so that the message is not appended to it.
        prefix = "\r\x1b[2K" if self.show_bar else ""
        click.echo(f"{prefix}{text}", err=True)

    def warnings(self) -> contextlib.AbstractContextManager[None]:
        """Around one file's work: its :class:`~pyharmonies.audio.AudioWarning` become ``warning:`` lines."""
        return audio_warnings(self.warn)

    def summary(self) -> str:
        """``"K of N files failed"`` (``"0 of 3 files failed"`` too)."""
        n = len(self.paths)
        return f"{len(self.failed)} of {n} file{'s' if n != 1 else ''} failed"


@contextlib.contextmanager
def audio_warnings(show: Callable[[str], None] | None = None) -> Iterator[None]:
    """Show the :class:`~pyharmonies.audio.AudioWarning` raised inside as lines for people, as they come.

    Each is handed to ``show`` (by default echoed on stderr as ``warning:
    <file>: <what>``); other warnings are left to the warning filters. Also a
    decorator (``@audio_warnings()`` on a command's function).
    """
    from pyharmonies.audio import AudioWarning

    show = show or (lambda text: click.echo(f"warning: {text}", err=True))
    with warnings.catch_warnings():
        warnings.simplefilter("always", AudioWarning)
        original = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if issubclass(category, AudioWarning):
                show(str(message))
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
        yield


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str], align: str | None = None) -> str:
    """A plain-text table; ``align`` has one of '<' or '>' per column."""
    align = align or "<" * len(header)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{str(c):{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
