"""`harmonies listen` on one core: CPU%, RSS, latency, start-up; against a bare PortAudio capture.

    .venv/bin/python benchmarks/bench_listen.py [--model export/demo] [--seconds 60] [--hop 0.5] [--json]

Three runs in one go, each pinned to CPU 0 with `taskset` (one core, as on a
small device):

1. `listen` on the default input (the virtual mic: `../shared/tools/virtual-mic
   start`, a clip looping into it), the bundle's int8 model every --hop seconds;
2. the peer: a bare sounddevice capture at the same rate and block size whose
   callback does nothing: the cost of the audio stack alone, on this machine;
3. `listen --source FILE` in real time: the pipeline without the audio stack.

Figures, all from listen's own summary (`--json`): CPU% of one core from the
first result on (every thread of the process), resident memory (peak), the
median and p95 latency from a window's last sample (PortAudio's ADC time of
its block) to its printed line, and work per result; plus start-up measured
from outside: spawn to "listening" (imports, bundle, device open) and spawn
to the first printed prediction (which also waits for one window of audio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_VIRTUAL_MIC = REPO.parent / "shared" / "tools" / "virtual-mic"
# The team's tool beside the checkout; a copy in tests/tools/ where a clone has no ../shared.
VIRTUAL_MIC = Path(os.environ.get("HARMONIES_VIRTUAL_MIC") or
                   (SHARED_VIRTUAL_MIC if SHARED_VIRTUAL_MIC.exists() else REPO / "tests" / "tools" / "virtual-mic"))
PIN = ["taskset", "-c", "0"]

BARE_CAPTURE = """
import sys, time, sounddevice as sd
rate, block, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def callback(indata, frames, time_info, status):
    pass
with sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=block, latency=max(0.03, 4 * block / rate),
                    callback=callback):
    time.sleep(2.0)  # the audio stack's start-up, excluded as listen excludes it
    w0, c0 = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    print(100 * (time.process_time() - c0) / (time.perf_counter() - w0))
"""


def _listen(args: list[str], seconds: float) -> dict:
    cmd = [*PIN, sys.executable, "-m", "pyharmonies.cli", "listen", "--json", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    started = [None]

    def watch_stderr() -> None:
        for line in proc.stderr:
            if line.startswith(("listening", "replaying")) and started[0] is None:
                started[0] = time.perf_counter() - t0

    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    first = None
    lines = []
    for line in proc.stdout:
        if first is None:
            first = time.perf_counter() - t0
        lines.append(line)
    proc.wait(timeout=seconds + 120)
    watcher.join(timeout=5)
    if proc.returncode != 0:
        raise SystemExit(f"listen failed ({proc.returncode}): {' '.join(cmd)}")
    summary = json.loads(lines[-1])["summary"]
    return {**summary, "spawn_to_listening_s": started[0], "spawn_to_first_prediction_s": first}


def _player(clip: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        subprocess.run(["bash", str(VIRTUAL_MIC), "play", str(clip)], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "export" / "demo")
    parser.add_argument("--clip", type=Path, default=None, help="audio looped into the virtual mic [default: a demo clip]")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    clip = args.clip or next(iter(sorted((REPO / "data" / "demo").rglob("*.wav"))), None)
    if clip is None:
        raise SystemExit("no clip: give --clip FILE.wav (or run `make demo` first)")
    subprocess.run(["bash", str(VIRTUAL_MIC), "start"], check=True)

    from pyharmonies.stream.microphone import MicrophoneSource

    mic = MicrophoneSource(None)
    rate, block = mic.sample_rate, mic.block
    mic.close()

    stop = threading.Event()
    player = threading.Thread(target=_player, args=(clip, stop), daemon=True)
    player.start()
    try:
        live = _listen(["--model", str(args.model), "--hop", str(args.hop), "--duration", str(args.seconds)], args.seconds)
        bare = subprocess.run([*PIN, sys.executable, "-c", BARE_CAPTURE, str(rate), str(block), str(args.seconds)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        bare_cpu = float(bare.stdout.strip())
    finally:
        stop.set()
    replay = _listen(["--model", str(args.model), "--hop", str(args.hop), "--source", str(clip)], args.seconds)

    figures = {
        "model": str(args.model),
        "device": f"{mic.describe()}",
        "hop_s": args.hop,
        "listen_mic": live,
        "bare_capture_cpu_percent": round(bare_cpu, 2),
        "listen_cpu_over_bare_capture": round(live["cpu_percent"] / bare_cpu, 2) if bare_cpu > 0 else None,
        "listen_file_realtime": replay,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"listen on one core (taskset -c 0), {args.model}, a result every {args.hop} s, {args.seconds:.0f} s of audio")
    print(f"  device: {figures['device']}")
    for name, s in (("microphone (virtual mic)", live), ("file in real time", replay)):
        print(f"  {name}: CPU {s['cpu_percent']:.2f}% of one core (from the first result; {s['cpu_percent_total']:.2f}% from opening), "
              f"RSS {s['rss_mb']:.0f} MB (peak {s['peak_rss_mb']:.0f}), latency p50 {s['p50_latency_ms']:.1f} ms / p95 "
              f"{s['p95_latency_ms']:.1f} ms, work per result p50 {s['p50_hop_ms']:.2f} ms, windows {s['windows']}, dropped "
              f"{s['dropped']}, overflows {s['overflows']}; spawn -> listening {s['spawn_to_listening_s']:.2f} s, "
              f"-> first prediction {s['spawn_to_first_prediction_s']:.2f} s")  # fmt: skip
    print(f"  bare PortAudio capture, same rate and blocks: CPU {bare_cpu:.2f}%  (listen / bare = {figures['listen_cpu_over_bare_capture']})")


if __name__ == "__main__":
    main()
