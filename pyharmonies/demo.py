"""A small end-to-end run of harmonies: ``python -m pyharmonies.demo``.

Until a trained model exists, the demo shows the feature pipeline: it
synthesises a short music clip (a four-chord progression at 44.1 kHz) into
``build/demo/clip.wav``, runs ``harmonies features`` on it (decode, resample
to 22050 Hz, the C core) into ``build/demo/features.npz``, prints what came
out, checks it against librosa when librosa is installed, and suggests what
to try next. It takes a few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pyharmonies.features import FeatureConfig

#: The chords of :func:`pyharmonies.bench.synthetic_clip`, two seconds each.
CHORDS = ("Am", "F", "C", "G")
CHORD_TONES = {"Am": ("A", "C", "E"), "F": ("F", "A", "C"), "C": ("C", "E", "G"), "G": ("G", "B", "D")}
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@click.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/demo"),
    show_default=True,
    help="Where the clip and the features are written.",
)
@click.option("--seconds", type=click.FloatRange(min=2.0, max=60.0), default=8.0, show_default=True,
              help="Length of the synthetic clip.")
def main(out_dir: Path, seconds: float) -> None:
    """Synthesise a clip, extract its features with `harmonies features`, and summarise them."""
    import numpy as np
    import soundfile as sf

    from pyharmonies.bench import synthetic_clip
    from pyharmonies.cli import cli
    from pyharmonies.features import FeatureConfig

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, npz = out_dir / "clip.wav", out_dir / "features.npz"

    source_rate = 44100
    sf.write(wav, synthetic_clip(seconds, source_rate), source_rate, subtype="PCM_16")
    click.secho(f"1. wrote {wav}: {seconds:g} s synthetic music at {source_rate} Hz "
                f"(chords {' '.join(CHORDS)}, two seconds each; bass, hi-hat, noise)", bold=True)

    args = ["features", str(wav), "--out", str(npz)]
    click.secho(f"2. harmonies {' '.join(args)}", bold=True)
    t0 = time.perf_counter()
    code = cli.main(args=args, prog_name="harmonies", standalone_mode=False)
    took = time.perf_counter() - t0
    if code:
        raise click.ClickException(f"harmonies features failed (exit status {code})")

    with np.load(npz) as archive:
        config = FeatureConfig.from_json(str(archive["config"]))
        feats = {key.split("/", 1)[1]: archive[key] for key in archive.files if key.startswith("clip/")}
    frames = feats["mfcc"].shape[1]
    hop_s = config.hop_length / config.sample_rate
    click.secho(f"3. {npz}: {len(feats)} features, {frames} frames at {config.sample_rate} Hz "
                f"(hop {config.hop_length} = {hop_s * 1e3:.1f} ms)", bold=True)
    width = max(map(len, feats))
    for name, a in feats.items():
        click.echo(f"   {name:<{width}}  {str(a.shape):<10} mean {a.mean():10.4g}  range [{a.min():.4g}, {a.max():.4g}]")
    at = min(frames - 1, int(round(1.0 / hop_s)))
    click.echo(f"   mfcc[0:5] at 1.0 s: {np.array2string(feats['mfcc'][:5, at], precision=2)}")
    chroma = feats["chroma"]
    per_chord = int(round(2.0 / hop_s))
    strongest = [PITCH_CLASSES[int(np.argmax(chroma[:, i : i + per_chord].mean(axis=1)))]
                 for i in range(0, frames - per_chord // 2, per_chord)]
    chords = [CHORDS[i % len(CHORDS)] for i in range(len(strongest))]
    in_chord = all(pc in CHORD_TONES[ch] for pc, ch in zip(strongest, chords))
    click.echo(f"   strongest pitch class per 2 s (chroma): {' '.join(strongest)}"
               + (f"  -- a tone of each chord played ({' '.join(chords)})" if in_chord else
                  f"  (chords played: {' '.join(chords)})"))
    click.echo(f"   decode + resample + all features + write: {took * 1e3:.0f} ms "
               f"for {seconds:g} s of audio ({seconds / took:.0f}x real time)")

    click.secho("4. parity with the references", bold=True)
    click.echo("   " + _parity_line(wav, config))

    click.secho(f"done in {time.perf_counter() - started:.1f} s. Next, try:", bold=True)
    click.echo(
        "   harmonies features your_song.wav                  summary of every feature\n"
        f"   harmonies features {wav} --features frame_vector --out rows.csv\n"
        f"   harmonies parity {wav} --verbose       the comparison with librosa, tolerance by tolerance\n"
        "   harmonies bench                                   speed against librosa, single-threaded\n"
        "   python -c \"import numpy as np; z = np.load('"
        + str(npz)
        + "'); print(z.files)\""
    )


def _parity_line(wav: Path, config: FeatureConfig) -> str:
    """One line: how many features agree with librosa/pyAudioAnalysis, and the log_mel error."""
    try:
        import librosa  # noqa: F401
    except ImportError:
        return "skipped: librosa is not installed (pip install 'harmonies[test]')"
    from pyharmonies import parity
    from pyharmonies.audio import load

    y = load(wav, config.sample_rate)
    results = parity.compare(y, config)
    passed = sum(r.passed for r in results)
    references = sorted({r.reference for r in results})
    failed = [r.feature for r in results if not r.passed]
    verdict = "all within tolerance" if not failed else f"OUT OF TOLERANCE: {', '.join(failed)}"
    return (f"{passed}/{len(results)} features {verdict} vs {', '.join(references)} "
            f"(e.g. log_mel max error {next(r.max_abs for r in results if r.feature == 'log_mel'):.2g} dB)")


if __name__ == "__main__":
    main(prog_name="python -m pyharmonies.demo")
