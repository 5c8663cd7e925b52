"""The end-to-end demo, ``make demo`` (``python -m pyharmonies.demo``).

1. builds the instrument corpus (``harmonies dataset instruments``): folk
   tunes from music21's corpus played by six instrument families, rendered by
   fluidsynth from a General-MIDI SoundFont of recorded samples;
2. trains the MobileNetV2-style CNN on CPU as ``harmonies train`` does by
   default (three narrow networks averaged into one), tunes split by track so
   that no test melody is heard in training;
3. exports the int8 bundle to ``export/demo/`` (verified against PyTorch);
4. evaluates the bundle's fp32 and int8 files on the held-out tunes, family by
   family, with the device runtime, and draws the int8 confusion matrix;
5. replays one held-out tune of each family through ``harmonies listen
   --source`` in real time: the live path a Raspberry Pi runs;
6. prints the next commands to try.

Each step reuses what an earlier run left (the corpus, the trained run) when
its inputs are the same; ``--fresh`` starts over.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

#: Where the demo writes, under --root.
DATA, RUN, BUNDLE, REPORT = Path("data/demo"), Path("runs/demo"), Path("export/demo"), Path("build/demo")

#: Corpus and training: sized to take a few minutes on a 2-core machine.
TUNES = 60
SECONDS = 8.0
EPOCHS = 20
WINDOW = 2.0
LISTEN_SECONDS = 6.0


def _harmonies(*args: str) -> None:
    """Run one CLI command in-process, echoing it; a failure ends the demo with its status."""
    from pyharmonies.cli import cli

    click.secho(f"$ harmonies {' '.join(args)}", fg="cyan")
    code = cli.main(args=list(args), prog_name="harmonies", standalone_mode=False)
    if code:
        raise click.ClickException(f"`harmonies {args[0]}` failed (exit status {code})")


def _step(n: int, text: str) -> None:
    click.echo()
    click.secho(f"{n}. {text}", bold=True)


def _held_out_tunes(run: Path, data: Path) -> dict[str, Path]:
    """One test-split clip per family, a different tune for each family where there are enough."""
    splits = json.loads((run / "splits.json").read_text())["splits"]
    by_family: dict[str, list[Path]] = {}
    for key in sorted(splits["test"]):
        rel = key.split("#", 1)[0]
        by_family.setdefault(rel.split("/", 1)[0], []).append(data / rel)
    return {family: clips[i % len(clips)] for i, (family, clips) in enumerate(sorted(by_family.items()))}


def _family_table(fp32: dict, int8: dict) -> list[str]:
    labels = list(int8["window"]["per_class"])
    rows = ["| family | fp32 | int8 | held-out windows |", "|---|---:|---:|---:|"]
    for label in labels:
        a, b = fp32["window"]["per_class"][label], int8["window"]["per_class"][label]
        rows.append(f"| {label} | {100 * a['recall']:.1f}% | {100 * b['recall']:.1f}% | {b['support']} |")
    rows.append(f"| **all** | **{100 * fp32['window']['accuracy']:.1f}%** | **{100 * int8['window']['accuracy']:.1f}%** | "
                f"{int8['window']['n']} |")  # fmt: skip
    rows.append(f"| clips (vote) | {100 * fp32['clip']['accuracy']:.1f}% | {100 * int8['clip']['accuracy']:.1f}% | {int8['clip']['n']} |")
    return rows


@click.command()
@click.option("--tunes", type=click.IntRange(min=6), default=TUNES, show_default=True, help="Tunes in the corpus (each played by every family).")
@click.option("--epochs", type=click.IntRange(min=1), default=EPOCHS, show_default=True, help="CNN training epochs.")
@click.option("--listen-seconds", type=click.FloatRange(min=1.0), default=LISTEN_SECONDS, show_default=True,
              help="Seconds of each held-out tune replayed live.")  # fmt: skip
@click.option("--fresh", is_flag=True, help="Rebuild the corpus and retrain even if an earlier demo left them.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder that data/demo, runs/demo, export/demo and build/demo go under.")  # fmt: skip
def main(tunes: int, epochs: int, listen_seconds: float, fresh: bool, root: Path) -> None:
    """Build the instrument corpus, train a CNN, export it as int8, evaluate it, and listen."""
    data, run, bundle, report = root / DATA, root / RUN, root / BUNDLE, root / REPORT
    cache = root / ".cache" / "features"
    started = time.perf_counter()
    report.mkdir(parents=True, exist_ok=True)
    click.secho("harmonies demo: instrument families, from recorded samples to a live int8 classifier", bold=True)

    _step(1, f"The corpus: {tunes} folk tunes x 6 instrument families, {SECONDS:g} s each, rendered by fluidsynth")
    stamp = {"tunes": tunes, "seconds": SECONDS}
    stamp_file = data / ".demo-args.json"
    if not fresh and (data / "manifest.csv").exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        click.echo(f"   reusing {data}/ (same arguments as the last demo; --fresh rebuilds it)")
    else:
        _harmonies("dataset", "instruments", str(data), "--tunes", str(tunes), "--seconds", f"{SECONDS:g}", "--force")
        stamp_file.write_text(json.dumps(stamp))

    from pyharmonies.training.config import DEFAULT_MEMBERS, MEMBER_WIDTH

    members = DEFAULT_MEMBERS["cnn"]
    _step(2, f"Training the CNN on CPU: {members} networks of width {MEMBER_WIDTH:g} averaged into one, train's default "
             f"({epochs} epochs, {WINDOW:g} s log-mel windows; tunes split by track)")
    train_stamp = {**stamp, "epochs": epochs, "window": WINDOW, "members": members, "member_width": MEMBER_WIDTH}
    run_stamp = run / ".demo-args.json"
    if not fresh and (run / "metrics.json").exists() and run_stamp.exists() and json.loads(run_stamp.read_text()) == train_stamp:
        click.echo(f"   reusing {run}/ (trained by the last demo; --fresh retrains)")
    else:
        if run.exists():
            shutil.rmtree(run)
        _harmonies("train", str(data / "manifest.csv"), "--model", "cnn", "--out", str(run), "--epochs", str(epochs),
                   "--window", f"{WINDOW:g}", "--device", "cpu", "--group-by", "track", "--cache", str(cache))  # fmt: skip
        run_stamp.write_text(json.dumps(train_stamp))

    _step(3, f"Exporting the int8 bundle to {bundle}/ (ONNX and TFLite, fp32 and int8, verified against PyTorch)")
    if bundle.exists():
        shutil.rmtree(bundle)
    _harmonies("export", str(run), "--int8", "--out", str(bundle), "--allow-drop")

    _step(4, "Accuracy on the held-out tunes, by family, with the device runtime (LiteRT, one thread)")
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.training.bundle_eval import evaluate_bundle
    from pyharmonies.training.report import plot_confusion

    fp32 = evaluate_bundle(bundle, data / "manifest.csv", split="test", precision="fp32", cache=cache)
    int8 = evaluate_bundle(bundle, data / "manifest.csv", split="test", precision="int8", cache=cache)
    table = _family_table(fp32, int8)
    for line in table:
        click.echo(f"   {line}")
    labels = list(load_bundle(bundle).labels)
    picture = report / "confusion-int8.png"
    plot_confusion(int8["window"]["confusion"], labels, picture, "int8 CNN, held-out tunes (windows)")
    (report / "accuracy.md").write_text("\n".join(table) + "\n")
    click.echo(f"   confusion matrix: {picture}   table: {report / 'accuracy.md'}")

    _step(5, f"Live: `harmonies listen --source` on a held-out tune of each family, {listen_seconds:g} s each, in real time")
    for family, clip in _held_out_tunes(run, data).items():
        click.secho(f"   -- a {family} tune the model never heard: {clip.name}", fg="yellow")
        # A process of its own, as on the device: no torch, and its own memory figure.
        args = ["listen", "--model", str(bundle), "--source", str(clip), "--duration", f"{listen_seconds:g}", "--hop", "0.5", "--top-k", "2"]
        click.secho(f"$ harmonies {' '.join(args)}", fg="cyan")
        with subprocess.Popen([sys.executable, "-m", "pyharmonies.cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
            for line in proc.stdout:  # listen flushes every line: they appear as they are classified
                click.echo(line, nl=False)
        code = proc.returncode
        if code:
            raise click.ClickException(f"`harmonies listen` failed (exit status {code})")

    minutes = (time.perf_counter() - started) / 60
    _step(6, f"Done in {minutes:.1f} min. Next, try:")
    click.echo(f"""
   your own data      harmonies train path/to/folders-or-manifest.csv --model cnn --out runs/mine
                      (a folder per label, GTZAN's layout, or a CSV path,label[,track_id])
   real music         harmonies dataset soundtracks data/soundtracks   (nine Debian game soundtracks,
                      one class per game; apt-get download, about 1 GB of .debs, nothing installed)
                      harmonies train data/soundtracks --model cnn --folds 5 --out runs/st-cnn
                      (5 folds by track, beside the SVM on the same folds; docs/EXPERIMENTS.md;
                      add --fuse-svm 0.3 to answer with the CNN and the SVM together)
                      harmonies compare runs/st-cnn runs/st-lstm --out table.md
   a real microphone  harmonies devices && harmonies listen --model {bundle} --device DEVICE
   a Raspberry Pi     scp -r {bundle} pi@raspberrypi.local: ; then on the Pi, after
                      firmware_notes/raspberry-pi.md:  harmonies listen --model ~/demo --selftest
""")


if __name__ == "__main__":
    main()
