"""``harmonies parity``: compare the C core's features with librosa on real files."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from pyharmonies.commands._common import (
    FileProgress,
    audio_arguments,
    build_config,
    config_options,
    decode,
    features_option,
    format_table,
    parse_features,
)

INSTALL_HINT = "pip install 'harmonies[test]'"


@click.command(short_help="Compare our features with librosa's on audio files.")
@audio_arguments
@config_options
@features_option
@click.option("--verbose", "-v", is_flag=True, help="Also print each tolerance's reason and each comparison's detail.")
def parity(
    audio: tuple[Path, ...],
    config_path: Path | None,
    sample_rate: int | None,
    n_fft: int | None,
    hop_length: int | None,
    n_mels: int | None,
    features_text: str,
    verbose: bool,
) -> None:
    """Compare the features of each AUDIO file with the reference implementations.

    Each file is decoded as by `harmonies features`; pyharmonies.parity then
    computes every requested feature with the C core and with its reference
    (librosa, or pyAudioAnalysis's definition for energy_entropy,
    spectral_entropy and spectral_flux) and checks the difference against
    the feature's stated tolerance. Needs librosa (pip install 'harmonies[test]').

    Exit status: 0 when every feature of every file is within tolerance,
    1 when any is not or a file cannot be read, 2 on a usage error.
    """
    config = build_config(config_path, sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    names = parse_features(features_text)
    compare = load_compare()

    progress = FileProgress(audio, label="comparing")
    out_of_tolerance = 0
    with progress.iterate() as paths:
        for path in paths:
            try:
                y = decode(path, config)
                results = compare(y, config, features=names)
            except ImportError as err:
                raise missing_dependency(err) from None
            except Exception as err:  # this file's failure, whatever it is: reported, the others go on
                progress.fail(path, err)
                continue
            failed = [r for r in results if not r.passed]
            out_of_tolerance += len(failed)
            click.echo(f"{path}: {y.size / config.sample_rate:.2f} s at {config.sample_rate} Hz, "
                       f"{len(results) - len(failed)}/{len(results)} features within tolerance")
            click.echo(format_results(results, verbose=verbose))
            click.echo()
    summary = progress.summary()
    if out_of_tolerance:
        summary += f"; {out_of_tolerance} feature comparison{'s' if out_of_tolerance != 1 else ''} out of tolerance"
    click.echo(summary)
    if progress.failed or out_of_tolerance:
        click.get_current_context().exit(1)


def load_compare() -> Any:
    """``pyharmonies.parity.compare``, or a click error saying what to install."""
    try:
        import librosa  # noqa: F401  (checked here for a clear message; parity imports it)
    except ImportError:
        raise click.ClickException(f"harmonies parity needs librosa, the reference: {INSTALL_HINT}") from None
    try:
        module = importlib.import_module("pyharmonies.parity")
    except ImportError as err:
        raise missing_dependency(err) from None
    return module.compare


def missing_dependency(err: ImportError) -> click.ClickException:
    name = getattr(err, "name", None) or str(err)
    return click.ClickException(f"harmonies parity needs {name}, which is not importable ({err}): {INSTALL_HINT}")


def format_tolerance(tol: Any) -> str:
    """A short form of a parity.Tolerance for the table (its note is printed by --verbose)."""
    kind, rtol, atol = tol.kind, tol.rtol, tol.atol
    if kind == "linear":
        return f"|d| <= {atol:g} + {rtol:g}|ref|"
    if kind == "absolute":
        return f"|d| <= {atol:g}"
    if kind == "db":
        return f"|d| <= {atol:g} dB"
    if kind == "rolloff":
        return f"same bin (ties {rtol:g})"
    return f"{kind} rtol={rtol:g} atol={atol:g}"


def format_results(results: list[Any], *, verbose: bool = False) -> str:
    """The per-feature table; verbose adds each comparison's detail and each tolerance's reason."""
    header = ["feature", "frames ours/ref", "compared", "max abs err", "max rel err", "tolerance", "result", "reference"]
    rows = [
        [
            r.feature,
            f"{r.frames}/{r.ref_frames}",
            str(r.compared),
            f"{r.max_abs:.3g}",
            f"{r.max_rel:.3g}",
            format_tolerance(r.tolerance),
            "PASS" if r.passed else "FAIL",
            r.reference,
        ]
        for r in results
    ]
    text = format_table(rows, header, align="<>>>><<<")
    if not verbose:
        return text
    lines = [text, "", "details:"]
    lines += [f"  {r.feature}: {r.detail}" for r in results if r.detail]
    # One reason per distinct tolerance, naming the features it applies to.
    by_note: dict[str, list[str]] = {}
    for r in results:
        by_note.setdefault(r.tolerance.note, []).append(r.feature)
    lines.append("tolerances:")
    lines += [f"  {', '.join(names)}: {note}" for note, names in by_note.items()]
    return "\n".join(lines)
