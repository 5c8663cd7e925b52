"""`harmonies listen` end to end on a real audio stack: PulseAudio's null sink, whose monitor is the
default input (../shared/tools/virtual-mic), recorded through PortAudio/ALSA while clips of known
classes are played into it. Also: the device vanishing (exit 3), --reconnect, --selftest, no torch.

The virtual mic installs what it needs (pulseaudio, pulseaudio-utils, libasound2-plugins) with
apt-get; `make install` installs them up front."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIRTUAL_MIC = REPO.parent / "shared" / "tools" / "virtual-mic"
# The team's tool beside the checkout; a copy in tests/tools/ where a clone has no ../shared.
VIRTUAL_MIC = Path(os.environ.get("HARMONIES_VIRTUAL_MIC") or
                   (SHARED_VIRTUAL_MIC if SHARED_VIRTUAL_MIC.exists() else REPO / "tests" / "tools" / "virtual-mic"))
CLASSES = 3  # strings, plucked, percussion


def _mic(*args: str) -> str:
    out = subprocess.run(["bash", str(VIRTUAL_MIC), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"virtual-mic {' '.join(args)} failed: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def virtual_mic():
    assert VIRTUAL_MIC.exists(), f"{VIRTUAL_MIC} not found (set HARMONIES_VIRTUAL_MIC to the tool's path)"
    was_running = subprocess.run(["bash", str(VIRTUAL_MIC), "status"], capture_output=True).returncode == 0
    _mic("start")
    yield
    if not was_running:
        _mic("stop")


@pytest.fixture(scope="module")
def mic_bundle(tmp_path_factory):
    """An int8 CNN (TFLite) on 3 synthetic classes, and a 4 s clip of each class it recognises."""
    from pyharmonies.data.synth import CLASS_NAMES, synth_corpus
    from pyharmonies.export import export_run
    from pyharmonies.runtime import WindowClassifier, classify_file
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    base = tmp_path_factory.mktemp("mic")
    corpus = base / "synth"
    synth_corpus(corpus, classes=CLASSES, clips_per_class=12, seconds=4.0, seed=11, progress=False, jobs=1)
    # Short and decisive, as tests/test_export.py trains: no mixup or label smoothing, a high learning rate.
    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="cnn", window=1.0,
                      window_hop=0.5, seed=0, batch_size=16, epochs=10, lr=1e-2, mixup=0.0, label_smoothing=0.0,
                      backbone="none", members=1)  # fmt: skip
    run = train_run(cfg, progress=False)
    bundle = export_run(run, base / "bundle", int8=True, formats="tflite", allow_drop=True, progress=False, latency_runs=1,
                        data=str(corpus), calibration=64)  # fmt: skip
    # This test is about the audio path, not about generalisation (which `harmonies evaluate`
    # measures): for each class it plays a corpus clip that offline classification of the same
    # bundle names correctly, and asks the live path over the real audio stack to agree.
    clf = WindowClassifier.open(bundle)
    clips = {}
    for name in CLASS_NAMES[:CLASSES]:
        for clip in sorted((corpus / name).glob("*.wav")):
            windows = classify_file(clf, clip).windows
            if sum(w.label == name for w in windows) >= 0.8 * len(windows):
                clips[name] = clip
                break
        assert name in clips, f"the test model recognises no {name} clip offline; it is too weak for this test"
    return bundle, clips


def _listen(bundle: Path, *args: str) -> subprocess.Popen:
    """Start `harmonies listen --json` on the default input; return once it is capturing."""
    proc = subprocess.Popen([sys.executable, "-m", "pyharmonies.cli", "listen", "--model", str(bundle), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if line.startswith("listening"):
            return proc
        assert time.monotonic() < deadline, "listen did not start capturing within 60 s"
    proc.wait()
    pytest.fail(f"listen exited with {proc.returncode} before capturing")


def test_played_clips_are_recognised(virtual_mic, mic_bundle):
    bundle, clips = mic_bundle
    for name, clip in clips.items():
        proc = _listen(bundle, "--duration", "4.5", "--smoothing", "none")
        time.sleep(0.2)
        _mic("play", str(clip))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        summary = rows[-1]["summary"]
        windows = rows[:-1]
        assert len(windows) >= 7 and summary["windows"] == len(windows)
        assert summary["overflows"] == 0 and summary["dropped"] == 0 and summary["lost_samples"] == 0
        # The first and last windows overlap the silence around the clip; most must name it.
        votes = Counter(w["top"] for w in windows)
        assert votes[name] > len(windows) / 2, f"played {name}, heard {dict(votes)}"
        assert all(np.isfinite(list(w["probs"].values())).all() for w in windows)
        assert summary["p50_latency_ms"] > 0


def test_device_vanishing_exits_with_a_clear_message(virtual_mic, mic_bundle):
    bundle, _ = mic_bundle
    proc = _listen(bundle, "--duration", "60")
    try:
        time.sleep(1.0)
        _mic("stop")
        _, err = proc.communicate(timeout=30)
    finally:
        _mic("start")
    assert proc.returncode == 3, err
    assert "stopped delivering audio" in err or "delivered no audio" in err
    assert "--reconnect" in err


def test_reconnect_waits_for_the_device(virtual_mic, mic_bundle):
    bundle, _ = mic_bundle
    proc = _listen(bundle, "--duration", "6", "--reconnect")
    try:
        time.sleep(1.0)
        _mic("stop")
        time.sleep(2.0)
    finally:
        _mic("start")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "waiting for it to come back" in err and "reconnected to" in err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["reconnects"] == 1 and summary["audio_s"] == pytest.approx(6.0, abs=0.01)


_NO_TORCH = textwrap.dedent(
    """
    import sys
    from pyharmonies.cli import cli
    try:
        cli.main(args=sys.argv[1:], prog_name="harmonies")
    except SystemExit as e:
        print("EXIT", e.code)
    print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "litert_torch", "librosa", "sklearn", "matplotlib")))
    """
)


def test_selftest_passes_on_a_healthy_device_without_torch(virtual_mic, mic_bundle):
    bundle, _ = mic_bundle
    out = subprocess.run([sys.executable, "-c", _NO_TORCH, "listen", "--model", str(bundle), "--selftest", "--minutes", "0.1", "--json"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "EXIT 0" in out.stdout and "HEAVY []" in out.stdout, out.stderr
    report = json.loads(out.stdout.splitlines()[0])["selftest"]
    assert report["passed"] and report["windows"] >= 8
    assert "soxr" in report["chain"] and "int8 tflite" in report["chain"]
    assert 0 < report["p50_hop_ms"] <= report["p99_hop_ms"] < report["hop_budget_ms"]
    assert "selftest: 0.1 min on" in out.stderr


@pytest.mark.skipif(not SHARED_VIRTUAL_MIC.exists(), reason="no ../shared beside this checkout to compare the copy with")
def test_the_copy_of_virtual_mic_matches_the_shared_tool():
    copy = (REPO / "tests" / "tools" / "virtual-mic").read_text().splitlines()
    assert copy[3:] == SHARED_VIRTUAL_MIC.read_text().splitlines()[1:]
