"""Peak resident memory of the file commands against the length of the file.

    .venv/bin/python benchmarks/bench_memory.py --bundle export/demo                 # 1, 10, 60 min
    .venv/bin/python benchmarks/bench_memory.py --bundle B --minutes 1,10 --json --out mem.json

Each command runs in its own process (``python -m pyharmonies.cli ...``), and
its peak resident set size is the ``ru_maxrss`` that ``os.wait4`` reports
for that one child (what ``/usr/bin/time -v`` calls "Maximum resident set
size"). The audio is generated once per length, in blocks (never held whole
in memory), into --dir: 44.1 kHz stereo 16-bit PCM WAV, noise plus a few
tones, about 10.6 MB a minute (635 MB for an hour); nothing is written into
the repository.

Commands (--commands picks a subset):

classify      ``harmonies classify BUNDLE FILE``
features      ``harmonies features FILE`` (every feature; the summary only)
features-npz  ``harmonies features FILE --out DIR/features.npz`` (every
              feature, written: the output itself grows with the file)
listen        ``harmonies listen --model BUNDLE --source FILE --fast --json``
evaluate      ``harmonies evaluate BUNDLE MANIFEST --split all``: a one-line
              CSV manifest gives FILE the bundle's first label

A bundle comes from ``harmonies export`` (README: train a small CNN with
``--epochs 1`` and export it with ``--int8``); its size barely matters here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE, CHANNELS = 44100, 2
COMMANDS = ("classify", "features", "features-npz", "listen", "evaluate")


def make_wav(path: Path, minutes: float, *, seed: int = 0, block_s: float = 10.0) -> Path:
    """A stereo 16-bit WAV of ``minutes``: pink-ish noise and tones, written block by block."""
    import soundfile as sf

    frames = int(round(minutes * 60 * RATE))
    if path.exists() and sf.info(str(path)).frames == frames:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    block = int(block_s * RATE)
    tmp = path.with_name(path.name + ".part")
    with sf.SoundFile(str(tmp), "w", samplerate=RATE, channels=CHANNELS, subtype="PCM_16", format="WAV") as f:
        for start in range(0, frames, block):
            n = min(block, frames - start)
            t = (start + np.arange(n)) / RATE
            tones = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * (440 + 110 * np.sin(0.1 * t)) * t)
            noise = 0.05 * rng.standard_normal((n, CHANNELS))
            f.write((tones[:, None] + noise).astype(np.float32))
    os.replace(tmp, path)
    return path


def command(name: str, bundle: Path, wav: Path, scratch: Path) -> list[str]:
    cli = [sys.executable, "-m", "pyharmonies.cli"]
    if name == "classify":
        return [*cli, "classify", str(bundle), str(wav)]
    if name == "features":
        return [*cli, "features", str(wav)]
    if name == "features-npz":
        return [*cli, "features", str(wav), "--out", str(scratch / "features.npz")]
    if name == "listen":
        return [*cli, "listen", "--model", str(bundle), "--source", str(wav), "--fast", "--json", "--smoothing", "none"]
    if name == "evaluate":
        label = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["labels"][0]
        manifest = scratch / f"{wav.stem}.csv"
        manifest.write_text(f"path,label\n{wav},{label}\n", encoding="utf-8")
        return [*cli, "evaluate", str(bundle), str(manifest), "--split", "all", "--quiet"]
    raise ValueError(name)


def peak_rss(argv: list[str]) -> dict:
    """Run ``argv``; its exit status, wall time and peak RSS in MiB (``ru_maxrss`` of that child)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 returns the rusage of this child alone (RUSAGE_CHILDREN would be the max over all children).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.stderr.close()
    return {
        "exit": proc.returncode,
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "stderr_tail": err.strip().splitlines()[-3:],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder (harmonies export)")
    parser.add_argument("--minutes", default="1,10,60", help="comma-separated file lengths (default 1,10,60)")
    parser.add_argument("--commands", default=",".join(COMMANDS), help=f"comma-separated, of {', '.join(COMMANDS)}")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/harmonies-bench-memory"), help="where the WAVs go")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--out", type=Path, help="also write the JSON figures to this file")
    args = parser.parse_args(argv)

    lengths = [float(m) for m in args.minutes.split(",") if m.strip()]
    names = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = sorted(set(names) - set(COMMANDS))
    if unknown:
        parser.error(f"unknown command(s) {', '.join(unknown)}")
    rows: list[dict] = []
    for minutes in lengths:
        wav = make_wav(args.dir / f"noise-{minutes:g}min-44k1-stereo.wav", minutes)
        for name in names:
            result = peak_rss(command(name, args.bundle, wav, args.dir))
            rows.append({"command": name, "minutes": minutes, "wav_mib": round(wav.stat().st_size / 2**20, 1), **result})
            print(f"{name:13s} {minutes:6g} min  {result['peak_rss_mib']:8.1f} MiB  {result['wall_s']:7.1f} s  exit {result['exit']}",
                  file=sys.stderr, flush=True)  # fmt: skip
    (args.dir / "features.npz").unlink(missing_ok=True)

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, names, lengths))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if any(r["exit"] != 0 for r in rows):
        for r in rows:
            if r["exit"] != 0:
                print(f"{r['command']} {r['minutes']:g} min exited {r['exit']}: {' | '.join(r['stderr_tail'])}", file=sys.stderr)
        raise SystemExit(1)


def format_table(rows: list[dict], names: list[str], lengths: list[float]) -> str:
    """Markdown: one row per command, peak RSS (MiB) and wall time per file length."""
    by = {(r["command"], r["minutes"]): r for r in rows}
    head = "| command | " + " | ".join(f"{m:g} min" for m in lengths) + " |"
    rule = "|---|" + "---:|" * len(lengths)
    lines = [f"Peak RSS in MiB (wall seconds), 44.1 kHz stereo 16-bit WAV; {sys.platform}, Python {sys.version.split()[0]}", "",
             head, rule]  # fmt: skip
    for name in names:
        cells = []
        for m in lengths:
            r = by[(name, m)]
            mark = "" if r["exit"] == 0 else f" exit {r['exit']}"
            cells.append(f"{r['peak_rss_mib']:.0f} ({r['wall_s']:.0f} s){mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
