"""The stateful streaming LSTM: its step and hop model files, the streamed output, resets, and the commands.

One tiny LSTM is trained and exported once (``stream_lstm`` in conftest.py: window, step and hop models,
onnx and tflite, fp32 and int8; 1 s windows of 43 frames, 10 steps; a hop of 22 frames, so hop models of
5 steps per call). Oracles:

- the *full-sequence model* (:func:`pyharmonies.models.lstm_step.full_sequence_logits`): the trained
  network in PyTorch over the whole clip as one sequence, pooled as the stream pools. The streamed
  logits of every file, fed the clip's audio in awkward block sizes, must equal it: fp32 files within
  the export's fp32 bound; int8 files within a looser bound stated below, against the same fp32 model
  (the question is how far int8 takes the device from the network that was trained), and exactly
  equal to the same int8 file fed the clip's features in one piece (the int8 reference: block sizes
  must change nothing);
- the window model: the first output of a fresh stream is its first window, by definition;
- the one-step model: the hop model (k steps per call) gives what k one-step calls give;
- a reset reproduces a fresh stream's outputs exactly (TFLM's reset oracle).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pyharmonies.audio import load
from pyharmonies.cli import cli
from pyharmonies.errors import BundleError, DeviceLost, ParameterError
from pyharmonies.export.bundle import sha256_file
from pyharmonies.export.report import FP32_TOLERANCE
from pyharmonies.models.lstm_step import LSTMHop, LSTMStep, full_sequence_logits, hop_steps
from pyharmonies.models.registry import build_model
from pyharmonies.runtime.backends import make_backend
from pyharmonies.runtime.bundle import BundleWarning, load_bundle
from pyharmonies.runtime.classifier import WindowClassifier
from pyharmonies.runtime.files import classify_file, classify_signal
from pyharmonies.runtime.streaming import LSTMStreamer, calls_per_result, classify_blocks_streaming, stream_logits, streamer_for_file
from pyharmonies.stream import LiveSession
from pyharmonies.stream.microphone import ArrivalLog
from pyharmonies.stream.stateful import StatefulClassifier
from pyharmonies.training import checkpoint
from pyharmonies.training.loop import model_from_meta
from pyharmonies.windows import InputFeatureStream, input_features

STEP_FILES = ["step.fp32.onnx", "step.int8.onnx", "step.fp32.tflite", "step.int8.tflite"]
HOP_FILES = [name.replace("step.", "hop.") for name in STEP_FILES]

#: The test bundle's hop (0.5 s of 1 s windows) and its hop models' steps per call.
HOP_FRAMES, HOP_STEPS = 22, 5

#: Block sizes of audio pushed (python-soxr's awkward sizes): shorter than a frame's hop, a prime, a second.
BLOCKS = (17, 509, 22050)

#: int8 (dynamic-range) step files against the fp32 full-sequence model, absolute, in logits, as a fraction of
#: the largest |logit| of the clip: int8 weights move each matmul's output by up to ~0.4% of its range (half a
#: step of 1/127) and the state carries that from step to step. Measured on this model over the clip's 100
#: steps: 0.0032 of the largest logit (ONNX) and 0.0031 (TFLite); on a 32-wide LSTM trained longer, over 775
#: steps: 0.010 (ONNX, per-tensor weights) and 0.003 (TFLite). 0.04 leaves four times the worst of those.
INT8_REL_TOLERANCE = 0.04

#: The first output of a fresh stream against the window model's first window, both fp32 files: each is within
#: FP32_TOLERANCE of PyTorch (the export checks it), so within twice that of each other.
FIRST_WINDOW_ATOL = 2 * FP32_TOLERANCE


def _margin(test: str, value: float, op: str, threshold: float) -> None:
    """A line benchmarks/bench_margins.py collects (see tests/test_runtime.py)."""
    print(f"margin: {test} {value:.4f} {op} {threshold:.4f}")


@pytest.fixture(scope="module")
def bundle(stream_lstm):
    return load_bundle(stream_lstm.bundle)


@pytest.fixture(scope="module")
def trained(stream_lstm):
    ck = checkpoint.load(stream_lstm.run / checkpoint.BEST)
    model = model_from_meta(ck["meta"])
    model.load_state_dict(ck["model"])
    return model.eval()


@pytest.fixture(scope="module")
def clip(stream_lstm, bundle):
    return load(stream_lstm.clip, bundle.feature_config.sample_rate)


@pytest.fixture(scope="module")
def full_sequence(bundle, trained, clip):
    """The full-sequence model's logits after every step of the clip, (steps, labels), float64-normalised input."""
    raw = input_features(clip, bundle.feature_config, "frame_vector").astype(np.float64)
    x = ((raw - bundle.mean[:, None]) / bundle.std[:, None]).astype(np.float32)
    return full_sequence_logits(trained, torch.from_numpy(x)).numpy()


def _streamer(bundle, name: str, hop_frames: int | None = None) -> LSTMStreamer:
    """A step file alone, or a hop file with its one-step sibling (as ``listen`` runs it)."""
    return streamer_for_file(bundle, name, hop_frames=hop_frames)


def _stream_blocks(streamer: LSTMStreamer, y: np.ndarray, block: int) -> list[tuple[int, np.ndarray]]:
    """The clip through the native streaming extractor and the streamer, ``block`` samples at a time."""
    features = InputFeatureStream(streamer.feature_config, ["frame_vector"])
    streamer.reset()
    out = []
    for i in range(0, len(y), block):
        out += streamer.push(features.push(y[i : i + block])["frame_vector"])
    return out + streamer.push(features.flush()["frame_vector"]) + streamer.finish()


# ------------------------------------------------------------------ the bundle


def test_the_manifest_describes_the_step_files_and_the_state(stream_lstm, bundle):
    m = json.loads((stream_lstm.bundle / "manifest.json").read_text())
    section = m["streaming"]
    assert sorted(section["files"]) == sorted(STEP_FILES + HOP_FILES)
    assert m["input"]["hop_frames"] == HOP_FRAMES and hop_steps(HOP_FRAMES, 4) == HOP_STEPS
    for name, entry in section["files"].items():
        assert entry["sha256"] == sha256_file(stream_lstm.bundle / name) and entry["bytes"] == (stream_lstm.bundle / name).stat().st_size
        assert {entry[k]["dtype"] for k in ("input", "output", "state_input", "state_output")} == {"float32"}
        assert ("dynamic-range int8" in entry["quantization"]) == (entry["precision"] == "int8")
        assert entry["steps"] == (HOP_STEPS if name.startswith("hop.") else 1)
        assert bundle.streaming.files[name].steps == entry["steps"]
    assert "DynamicQuantizeLSTM" in section["files"]["hop.int8.onnx"]["quantization"]
    H, K = 16, 43 // 4  # hidden; the steps of a 43-frame window in steps of 4 frames
    assert (section["step_frames"], section["steps_pooled"], section["pooling"]) == (4, K, "mean")
    assert section["state"] == {"size": (2 + K) * H, "dtype": "float32", "bytes": 4 * (2 + K) * H,
                                "layout": [{"name": "h", "offset": 0, "shape": [1, H]}, {"name": "c", "offset": H, "shape": [1, H]},
                                           {"name": "ring", "offset": 2 * H, "shape": [K, H]}]}  # fmt: skip
    assert bundle.streaming.state_bytes == 4 * (2 + K) * H == 768
    rows = {row["file"]: row for row in section["verification"]["rows"]}
    assert sorted(rows) == sorted(section["files"])
    for name, row in rows.items():
        assert row["steps"] == section["files"][name]["steps"] and row["latency_ms_per_call"] > 0
        if ".fp32." in name:  # the export's own check against PyTorch
            assert row["max_abs_logit_diff"] <= FP32_TOLERANCE and row["full_sequence_max_abs_logit_diff"] <= FP32_TOLERANCE
    assert rows["hop.fp32.onnx"]["full_sequence_steps"] % HOP_STEPS == 0
    assert set(section["reference"]["expected"]) == set(STEP_FILES + HOP_FILES)
    report = (stream_lstm.bundle / "report.md").read_text()
    assert "## Streaming (step model)" in report and f"The hop files run {HOP_STEPS} steps" in report


# ------------------------------------------------------------------ streamed == full sequence


#: The hops each file is streamed at: a step file at every frame (each step its own call); a hop file at the
#: bundle's hop (5 or 6 steps between results: one call, or one and a step), at 2 hop models and 3 steps plus
#: 3 frames (the steps a hop leaves over, through the one-step file), and at the self-check's (a window).
HOPS = {"step": (1,), "hop": (HOP_FRAMES, (2 * HOP_STEPS + 3) * 4 + 3, 43)}


@pytest.mark.parametrize("name", STEP_FILES + HOP_FILES)
def test_streamed_logits_equal_the_full_sequence_model(bundle, clip, full_sequence, name):
    """The logits emitted at frame t are the full-sequence model's after step (t + 1) // 4."""
    scale = float(np.abs(full_sequence).max())
    worst = 0.0
    for hop in HOPS[name.split(".")[0]]:
        streamer = _streamer(bundle, name, hop_frames=hop)
        whole = stream_logits(streamer, input_features(clip, bundle.feature_config, "frame_vector"))
        for block in BLOCKS:
            emitted = _stream_blocks(_streamer(bundle, name, hop_frames=hop), clip, block)
            frames = [t for t, _ in emitted]
            logits = np.stack([z for _, z in emitted])
            assert frames == whole[0] == list(range(42, 402, hop))  # the clip's 402 frames: as many results as windows
            np.testing.assert_array_equal(logits, whole[1])  # block sizes change nothing, bit for bit
            want = full_sequence[[(t + 1) // 4 - 1 for t in frames]]
            diff = float(np.abs(logits - want).max())
            worst = max(worst, diff)
            if ".fp32." in name:
                assert diff <= FP32_TOLERANCE, (name, hop, block, diff)
            else:
                assert diff <= INT8_REL_TOLERANCE * scale, (name, hop, block, diff, scale)
    if ".int8." in name:
        _margin(f"int8_full_sequence_rel_diff[{name}]", worst / scale, "<=", INT8_REL_TOLERANCE)
    print(f"{name}: max abs logit diff {worst:.3g} against the full-sequence model, largest |logit| {scale:.3g}")


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_the_hop_model_makes_one_call_per_hop_of_its_steps(bundle, clip, runtime):
    """n whole steps between results cost n // 5 hop-model calls and n % 5 one-step calls, and give what n one-step
    calls give: one call per result at a hop of 5 steps, 1.5 on average at the bundle's hop (5 and 6 steps by turns)."""
    features = input_features(clip, bundle.feature_config, "frame_vector")
    for hop, per_result in ((HOP_STEPS * 4, 1.0), (HOP_FRAMES, 1.5), (4, 1.0), ((2 * HOP_STEPS + 1) * 4, 3.0)):
        streamer = _streamer(bundle, f"hop.fp32.{runtime}", hop_frames=hop)
        assert streamer.hop_steps == HOP_STEPS and streamer.calls_per_result() == per_result
        frames, logits = stream_logits(streamer, features)
        ends = [(t + 1) // 4 for t in frames]  # the steps whole at each result
        n = np.diff([0] + ends)
        after = (402 // 4 - ends[-1]) // HOP_STEPS  # hop-model calls run as steps became whole after the last result
        assert streamer.hop_backend.calls == int(np.sum(n // HOP_STEPS)) + after > 0
        assert streamer.backend.calls == int(np.sum(n % HOP_STEPS)), hop
        singles = stream_logits(_streamer(bundle, f"step.fp32.{runtime}", hop_frames=hop), features)
        assert singles[0] == frames
        # Both within FP32_TOLERANCE of the full-sequence model (above), so within twice that of each other.
        np.testing.assert_allclose(logits, singles[1], rtol=0, atol=2 * FP32_TOLERANCE)
    assert calls_per_result(129, 65, 4, 16) == 1.25 and calls_per_result(129, 64, 4, 16) == 1.0  # the default LSTM's
    assert calls_per_result(129, 32, 4, 16) == 8.0 and calls_per_result(129, 32, 4, 1) == 8.0


def test_the_first_output_of_a_stream_is_the_window_models_first_window(bundle, clip):
    features = input_features(clip, bundle.feature_config, "frame_vector")
    for runtime in ("onnx", "tflite"):
        frames, logits = stream_logits(_streamer(bundle, f"step.fp32.{runtime}"), features)
        window = WindowClassifier(bundle, make_backend(bundle, runtime, "fp32")).logits_batch(features[None, :, :43])
        assert frames[0] == 42
        np.testing.assert_allclose(logits[0], window[0], rtol=0, atol=FIRST_WINDOW_ATOL)


def test_a_clip_shorter_than_a_window_is_padded_as_the_window_model_pads_it(bundle, clip):
    short = clip[: 20 * 512]  # 21 frames of 43
    windowed = classify_signal(WindowClassifier(bundle, make_backend(bundle, "onnx", "fp32")), short)
    streamed = classify_blocks_streaming(_streamer(bundle, "step.fp32.onnx"), [short])
    assert streamed.padded and windowed.padded and len(streamed.windows) == len(windowed.windows) == 1
    np.testing.assert_allclose(streamed.probs, windowed.probs, rtol=0, atol=1e-5)


def test_torch_step_equals_the_full_sequence_model_for_every_config():
    """The definition itself, in PyTorch with random weights: two layers, last-output pooling, no projection."""
    torch.manual_seed(0)
    for options in ({}, {"layers": 2, "pooling": "last"}, {"projection": 0, "segment": 3, "hidden": 8}):
        model = build_model("lstm", 3, (28, 25), options).eval()
        step = LSTMStep(model)
        x = torch.randn(28, 200)
        state = torch.zeros(1, step.state_size)
        outs = []
        for n in range(200 // step.segment):
            logits, state = step(x[None, :, n * step.segment : (n + 1) * step.segment], state)
            outs.append(logits[0])
        full = full_sequence_logits(model, x)
        # float32 in another order (two matmuls instead of nn.LSTM's fused one): a few ulps of logits of order 1.
        np.testing.assert_allclose(torch.stack(outs).detach().numpy(), full.numpy(), rtol=0, atol=1e-5)
        L = 25 // step.segment
        np.testing.assert_allclose(full[L - 1].numpy(), model(x[None, :, :25])[0].detach().numpy(), rtol=0, atol=1e-5)
        for k in (1, 3, L, L + 2):  # the hop model: k steps a call, the ring taking fewer or more outputs than it holds
            hop, state, outs = LSTMHop(model, k), torch.zeros(2, step.state_size), []
            width = k * step.segment
            with torch.no_grad():
                for j in range(200 // width):
                    logits, state = hop(torch.stack([x, -x])[:, :, j * width : (j + 1) * width], state)  # two streams
                    outs.append(logits[0])
            # nn.LSTM's own kernel over the same weights: rounding only.
            np.testing.assert_allclose(torch.stack(outs).numpy(), full[k - 1 :: k][: len(outs)].numpy(), rtol=0, atol=1e-5)


def test_a_bidirectional_lstm_has_no_step_model():
    model = build_model("lstm", 3, (28, 25), {"bidirectional": True})
    with pytest.raises(ParameterError, match="bidirectional LSTM .* no state to stream"):
        LSTMStep(model)


# ------------------------------------------------------------------ resets


@pytest.mark.parametrize("name", ["step.int8.tflite", "hop.int8.tflite", "hop.int8.onnx"])
def test_a_reset_reproduces_a_fresh_stream(bundle, clip, name):
    """150 frames in, steps wait for the hop model (a hop file): the reset drops them with the state."""
    features = input_features(clip, bundle.feature_config, "frame_vector")
    second = features[:, 150:]
    fresh = stream_logits(_streamer(bundle, name), second)
    streamer = _streamer(bundle, name)
    streamer.push(features[:, :150])
    assert streamer.steps > 0
    streamer.reset()
    again = streamer.push(second) + streamer.finish()
    assert [t for t, _ in again] == fresh[0]
    np.testing.assert_array_equal(np.stack([z for _, z in again]), fresh[1])
    carried = _streamer(bundle, name).push(features)  # without the reset the state remembers the first part
    assert not np.array_equal(np.stack([z for t, z in carried if t >= 150 + 42][:1]), fresh[1][:1])


def _stateful(bundle, name="hop.int8.tflite", smoothing="ema"):
    return StatefulClassifier(_streamer(bundle, name, hop_frames=bundle.hop_frames), bundle.feature_config, bundle.hop_frames, smoothing)


def test_the_stateful_classifier_reset_starts_a_new_stream(bundle, clip):
    cut = 4 * 22050 + 123
    fresh = _stateful(bundle)
    want = fresh.push(clip[cut:])
    slider = _stateful(bundle)
    before = slider.push(clip[:cut])
    slider.reset()
    after = slider.push(clip[cut:])
    assert len(before) > 2 and len(after) == len(want) > 2
    for got, ref in zip(after, want):
        np.testing.assert_array_equal(got.raw_probs, ref.raw_probs)
        np.testing.assert_array_equal(got.probs, ref.probs)  # the smoothing restarted too
        assert got.time == pytest.approx(ref.time + cut / 22050) and got.start_frame == ref.start_frame
    assert slider.next_window_end == cut + fresh.next_window_end


class _LosesDevice:
    """A microphone playing ``y`` at the model's rate that vanishes once, after ``lose_at`` samples, and comes back."""

    ended = False
    overflows = lost_samples = 0

    def __init__(self, y: np.ndarray, sample_rate: int, lose_at: int, block: int = 1000):
        self.y, self.sample_rate, self.lose_at, self.block = y, sample_rate, lose_at, block
        self.arrivals = ArrivalLog()
        self.pos = self.delivered = self.reconnects = 0
        self._avail = 0

    def start(self):
        return self

    def stop(self):
        pass

    def describe(self):
        return "fake mic"

    @property
    def available(self):
        return self._avail

    def wait(self, timeout=0.25):
        if self.delivered >= self.lose_at and self.reconnects == 0:
            raise DeviceLost("input device 'fake mic' stopped delivering audio")
        n = min(self.block, len(self.y) - self.delivered)
        if n <= 0:
            self.ended = True
            return
        self.delivered += n
        self._avail += n
        self.arrivals.stamp(self.delivered, 0.0)

    def read_into(self, out):
        n = min(self._avail, len(out))
        out[:n] = self.y[self.pos : self.pos + n]
        self.pos += n
        self._avail -= n
        return n

    def reopen(self):
        self.reconnects += 1


def test_reconnect_starts_a_new_stream_whose_first_result_is_a_fresh_streams(bundle, clip):
    lose_at = 3000 * 13  # 1.77 s: two results before the loss
    slider = _stateful(bundle, smoothing="none")
    results = []
    session = LiveSession(slider, _LosesDevice(clip, 22050, lose_at), reconnect=True, finish=False, retry_seconds=0.0)
    session.run(lambda r, latency, stats: results.append(r))
    fresh = [r for r in _stateful(bundle, smoothing="none").push(clip[lose_at:])]
    after = [r for r in results if r.time > lose_at / 22050]
    assert session.stats.reconnects == 1 and len(results) - len(after) >= 2 and len(after) == len(fresh)
    np.testing.assert_array_equal(after[0].raw_probs, fresh[0].raw_probs)
    assert after[0].time == pytest.approx(fresh[0].time + lose_at / 22050)


def test_silence_does_not_reset_the_state(bundle, clip):
    """Silence is fed like any audio: after a second of it, the state still holds what came before."""
    features = input_features(np.concatenate([clip[: 3 * 22050], np.zeros(22050, np.float32)]), bundle.feature_config, "frame_vector")
    s0 = 4 * ((features.shape[1] - 43) // 4)  # the last window of the silence, starting on a step of the long stream
    after_music = dict(_streamer(bundle, "step.fp32.onnx", hop_frames=1).push(features))[s0 + 42]
    silence_alone = stream_logits(_streamer(bundle, "step.fp32.onnx"), features[:, s0 : s0 + 43])[1][0]
    # Both pool the steps of frames s0 .. s0 + 39, silent; only the state they started from differs.
    assert not np.allclose(after_music, silence_alone, rtol=0, atol=1e-3)


# ------------------------------------------------------------------ files and commands


def _invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_classify_streaming_resets_for_each_file(stream_lstm, bundle, clip):
    files = [stream_lstm.clip, sorted(stream_lstm.corpus.rglob("*.wav"))[-1]]
    code, out = _invoke("classify", stream_lstm.bundle, *files, "--streaming", "--json", "--backend", "onnx", "--precision", "fp32")
    assert code == 0, out
    both = [json.loads(line) for line in out.splitlines()]
    code, out = _invoke("classify", stream_lstm.bundle, files[1], "--streaming", "--json", "--backend", "onnx", "--precision", "fp32")
    alone = json.loads(out)
    assert both[1]["probs"] == alone["probs"] and both[1]["windows"] == alone["windows"]
    # The clip's emissions, at the windows' ends, are the full sequence's (checked above) and as many as its windows.
    windowed = classify_file(WindowClassifier(bundle, make_backend(bundle, "onnx", "fp32")), stream_lstm.clip)
    assert [(w["start_s"], w["end_s"]) for w in both[0]["windows"]] == [(round(w.start_s, 3), round(w.end_s, 3)) for w in windowed.windows]


def test_listen_streams_lstm_bundles_and_equals_classify_streaming(stream_lstm, bundle):
    code, out = _invoke("listen", "--model", stream_lstm.bundle, "--source", stream_lstm.clip, "--fast", "--json", "--smoothing", "none",
                        "--backend", "tflite", "--precision", "int8")  # fmt: skip
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    summary, rows = rows[-1]["summary"], rows[:-1]
    offline = classify_blocks_streaming(_streamer(bundle, "hop.int8.tflite"), [load(stream_lstm.clip, 22050)])
    assert summary["windows"] == len(rows) == len(offline.windows) and summary["dropped"] == 0
    for row, w in zip(rows, offline.windows):
        assert row["time"] == pytest.approx(w.end_s, abs=1e-3)
        np.testing.assert_allclose([row["probs"][label] for label in bundle.labels], w.probs, rtol=0, atol=1e-6)
    code, text = _invoke("listen", "--model", stream_lstm.bundle, "--source", stream_lstm.clip, "--fast")
    assert "hop model of 5 steps + step model" in text and "hop.int8.tflite + step.int8.tflite" in text
    assert "1.5 calls per result" in text and "state 768 bytes carried" in text
    code, text = _invoke("listen", "--model", stream_lstm.bundle, "--source", stream_lstm.clip, "--fast", "--hop", "0.1",
                         "--backend", "onnx")  # fmt: skip
    assert code == 0 and "hop.int8.onnx + step.int8.onnx), 1 calls per result" in text  # 4 frames: each step its own call
    code, text = _invoke("listen", "--model", stream_lstm.bundle, "--source", stream_lstm.clip, "--fast", "--windowed")
    assert code == 0 and "model.int8" in text and "step." not in text


def test_a_bundle_without_a_step_model_still_loads_and_streams_windowed(stream_lstm, tmp_path):
    old = Path(shutil.copytree(stream_lstm.bundle, tmp_path / "old"))
    m = json.loads((old / "manifest.json").read_text())
    del m["streaming"]
    (old / "manifest.json").write_text(json.dumps(m))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an older export loads without a warning about its step model
        assert load_bundle(old).streaming is None
    code, text = _invoke("listen", "--model", old, "--source", stream_lstm.clip, "--fast")
    assert code == 0 and "model.int8" in text
    code, text = _invoke("classify", old, stream_lstm.clip, "--streaming")
    assert code == 1 and "no step model to stream with" in text


@pytest.mark.parametrize("kind", ["step", "hop"])
def test_the_self_check_covers_the_step_files(stream_lstm, tmp_path, kind):
    copy = Path(shutil.copytree(stream_lstm.bundle, tmp_path / "b"))
    m = json.loads((copy / "manifest.json").read_text())
    # The int8 file replaced by the fp32 one with its checksum updated: a valid model that computes otherwise.
    name = f"{kind}.int8.tflite"
    shutil.copy(copy / f"{kind}.fp32.tflite", copy / name)
    entry = m["streaming"]["files"][name]
    entry["sha256"], entry["bytes"] = sha256_file(copy / name), (copy / name).stat().st_size
    m["streaming"]["reference"]["expected"][name] = {
        label: [v + 0.5 for v in values] for label, values in m["streaming"]["reference"]["expected"][name].items()
    }
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=rf"self-check failed: {name}: its probabilities for the reference audio differ"):
        load_bundle(copy)
    m["streaming"]["state"]["size"] += 1
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"'streaming.state.layout' covers \d+ values; 'streaming.state.size' is"):
        load_bundle(copy)
    del m["streaming"]["reference"]
    m["streaming"]["state"]["size"] -= 1
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.warns(BundleWarning, match="streaming section has no self-check reference"):
        load_bundle(copy)


def _edited(stream_lstm, tmp_path, edit) -> Path:
    """A copy of the bundle whose manifest's streaming section ``edit`` changed."""
    copy = Path(shutil.copytree(stream_lstm.bundle, tmp_path / "b", dirs_exist_ok=True))
    m = json.loads((copy / "manifest.json").read_text())
    edit(m["streaming"])
    (copy / "manifest.json").write_text(json.dumps(m))
    return copy


def test_hop_files_need_a_one_step_sibling_and_sane_steps(stream_lstm, tmp_path):
    def no_sibling(section):
        del section["files"]["step.int8.onnx"], section["reference"]["expected"]["step.int8.onnx"]

    with pytest.raises(BundleError, match=r"hop.int8.onnx takes 5 steps per call but the bundle has no onnx int8 one-step file"):
        load_bundle(_edited(stream_lstm, tmp_path, no_sibling))
    for bad in (0, True, "5", 10**6):
        with pytest.raises(BundleError, match=r"'streaming.files\['hop.fp32.onnx'\].steps' must be an integer in \[1, 4096\]"):
            load_bundle(_edited(stream_lstm, tmp_path, lambda section: section["files"]["hop.fp32.onnx"].update(steps=bad)))
    with pytest.raises(BundleError, match=r"its frames tensor is shaped \(1, 28, 20\), the manifest implies \(batch, 28, 24\)"):
        load_bundle(_edited(stream_lstm, tmp_path, lambda section: section["files"]["hop.fp32.tflite"].update(steps=6)))


def test_a_bundle_with_step_files_only_streams_one_call_per_step(stream_lstm, bundle, clip, tmp_path):
    """An export from before the hop models: no hop files, no 'steps' fields; it streams as it did."""

    def older(section):
        for name in HOP_FILES:
            del section["files"][name], section["reference"]["expected"][name]
        for entry in section["files"].values():
            del entry["steps"]

    old = load_bundle(_edited(stream_lstm, tmp_path, older))
    streamer = LSTMStreamer(old)
    assert streamer.hop_backend is None and streamer.hop_steps == 1 and "step.int8.tflite), 5.5 calls per result" in streamer.describe()
    got = stream_logits(streamer, input_features(clip, old.feature_config, "frame_vector"))
    want = stream_logits(_streamer(bundle, "step.int8.tflite", hop_frames=HOP_FRAMES), input_features(clip, bundle.feature_config, "frame_vector"))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


def test_a_step_file_edited_after_export_is_refused(stream_lstm, tmp_path):
    copy = Path(shutil.copytree(stream_lstm.bundle, tmp_path / "b"))
    with open(copy / "step.int8.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=r"step.int8.onnx: checksum mismatch"):
        load_bundle(copy)


def test_classify_streaming_refuses_a_cnn_bundle(small_bundle):
    code, text = _invoke("classify", small_bundle.bundle, sorted(small_bundle.corpus.rglob("*.wav"))[0], "--streaming")
    assert code == 1 and "no step model to stream with" in text
    code, text = _invoke("evaluate", small_bundle.bundle, small_bundle.corpus, "--split", "all", "--streaming")
    assert code == 1 and "no step model to stream with" in text


def test_evaluate_streaming_measures_the_bundle_as_listen_runs_it(stream_lstm, bundle, tmp_path):
    """Each clip a fresh stateful stream: its results and their vote are classify --streaming's for the clip's file."""
    from pyharmonies.data.sources import open_dataset
    from pyharmonies.runtime.streaming import classify_file_streaming, open_streamer

    code, out = _invoke("evaluate", stream_lstm.bundle, stream_lstm.corpus, "--split", "all", "--streaming", "--backend", "onnx",
                        "--precision", "fp32", "--quiet", "--out", tmp_path / "eval")  # fmt: skip
    assert code == 0, out
    assert "hop model of 5 steps + step model (onnxruntime, hop.fp32.onnx + step.fp32.onnx)" in out
    assert "stateful, a fresh stream per clip, a result every 22 frames" in out
    streamer = open_streamer(bundle, "onnx", "fp32")
    clips = open_dataset(stream_lstm.corpus).clips
    files = [classify_file_streaming(streamer, c.path) for c in clips]
    right = [f.top[0][0] == c.label for f, c in zip(files, clips)]
    results = [(w.label == c.label) for f, c in zip(files, clips) for w in f.windows]
    assert f"result accuracy {100 * np.mean(results):.1f}%" in out and f"(n = {len(results)})" in out
    assert f"clip   accuracy {100 * np.mean(right):.1f}%" in out and "(n = 12)" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["backend"]["path"] == "stateful" and metrics["backend"]["file"] == "hop.fp32.onnx + step.fp32.onnx"
    assert "## Per result (stateful stream)" in (tmp_path / "eval" / "report.md").read_text()
    code, out = _invoke("evaluate", stream_lstm.run, stream_lstm.corpus, "--streaming")
    assert code == 2 and "training run" in out and "export the run" in out


def test_the_streamer_checks_its_input(bundle):
    streamer = _streamer(bundle, "step.fp32.onnx")
    with pytest.raises(ParameterError, match=r"frames must be \(rows, k\) = \(28, k\)"):
        streamer.push(np.zeros((20, 5), np.float32))
    with pytest.raises(ParameterError, match="NaN or Inf"):
        streamer.push(np.full((28, 5), np.nan, np.float32))
