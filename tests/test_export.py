"""``harmonies export``: bundles of a CNN, an LSTM and a transformer trained on a small synthetic corpus.

Each model is trained once and exported once with ``--int8`` (module
fixtures); the tests read the bundle folders. Oracles: the PyTorch model
itself (fp32 files within 1e-4 on inputs that verification never saw), the
files' own checksums, the graphs' op lists, and the manifest against the
checkpoint it came from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.data.synth import synth_corpus
from pyharmonies.export import AccuracyDropError, VerificationError, export_run
from pyharmonies.export.bundle import FORMAT, FORMAT_VERSION, MODEL_FILES, sha256_file
from pyharmonies.export.fold import fold_batchnorm, has_batchnorm
from pyharmonies.export.onnx_export import op_types
from pyharmonies.export.streaming import STEP_FILES
from pyharmonies.export.tflite_export import op_names
from pyharmonies.export.verify import dequantize, quantize
from pyharmonies.training import checkpoint
from pyharmonies.training.config import TrainConfig
from pyharmonies.training.loop import model_from_meta, train_run

# 4 classes x 20 clips x 4 s; 1 s windows every 0.5 s give 6 windows a clip, so the validation
# split (3 clips a class) holds 72 windows: two disagreements still leave 97% agreement. With 12
# clips a class the 10-epoch CNN was less sure of itself and its int8 agreement swung between 94%
# and 100% with the training seed; with 20 it stayed at 98.6-100% over seeds 0-3.
CLASSES, CLIPS, SECONDS = 4, 20, 4.0
WINDOW, HOP = 1.0, 0.5

# Short, decisive training: no mixup or label smoothing (they shrink the logit margins that int8
# rounding must not cross), a higher peak learning rate for the few epochs, the whole training set
# every epoch (loss weights, not the default balanced sampler, which draws windows with
# replacement), the best epoch by window macro-F1 (these tests compare windows).
# The seed and torch's training threads come from the environment as in test_runtime.py (one
# thread: a CPU model's weights depend on how many threads split its reductions, so pinning it
# trains the same models on any machine with this CPU's kernels).
SEED = int(os.environ.get("HARMONIES_TEST_SEED", "0"))
TRAIN_THREADS = int(os.environ.get("HARMONIES_TEST_TRAIN_THREADS", "1"))
TRAINING = dict(batch_size=16, seed=SEED, window=WINDOW, window_hop=HOP, lr=1e-2, mixup=0.0, label_smoothing=0.0,
                balance="weights", select_by="window_macro_f1", backbone="none", members=1)

# The int8 agreement with PyTorch that issue 4 asks for, on the validation windows.
MIN_INT8_AGREEMENT = 0.97

# fp32 files against PyTorch: float32 sums in another order (folded BatchNorm, other kernels)
# differ by a few ulps of logits of order 1-10; 1e-4 is the bound the export itself enforces.
FP32_ATOL = 1e-4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=CLASSES, clips_per_class=CLIPS, seconds=SECONDS, seed=5, progress=False)
    return root


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    cache = root / "cache"
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        # The transformer's int8 files agreed with PyTorch on 100% of the validation windows over seeds 0-4.
        for model, epochs in (("cnn", 10), ("lstm", 20), ("transformer", 20)):
            cfg = TrainConfig(data=str(corpus), model=model, out=str(root / model), cache=str(cache), epochs=epochs, **TRAINING)
            out[model] = train_run(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def bundles(runs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {model: export_run(run, root / model, int8=True, calibration=64, progress=False, latency_runs=20) for model, run in runs.items()}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _rows(bundle: Path) -> dict[str, dict]:
    return {row["file"]: row for row in _manifest(bundle)["verification"]["rows"]}


def _invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


# ---------------------------------------------------------------- the bundle


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_bundle_holds_four_files_whose_checksums_match(bundles, runs, model):
    bundle = bundles[model]
    m = _manifest(bundle)
    assert set(m["files"]) == set(MODEL_FILES)
    for name, entry in m["files"].items():
        path = bundle / name
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size, name
        assert (entry["runtime"], entry["precision"]) == MODEL_FILES[name]
    assert (bundle / "report.md").is_file()
    embedding = sorted(m["embedding"]["files"]) if model == "cnn" else []  # the CNN's embedding files (tests/test_embed.py)
    assert embedding == ([] if model != "cnn" else sorted(f"embedding.{p}.{r}" for p in ("fp32", "int8") for r in ("onnx", "tflite")))
    for name in embedding:
        assert m["embedding"]["files"][name]["sha256"] == sha256_file(bundle / name), name
    step = sorted(m["streaming"]["files"]) if model == "lstm" else []  # the LSTM's step model (tests/test_streaming_lstm.py)
    assert step == (sorted(STEP_FILES) if model == "lstm" else []) and ("streaming" in m) == (model == "lstm")
    for name in step:
        assert m["streaming"]["files"][name]["sha256"] == sha256_file(bundle / name), name
    assert sorted(p.name for p in bundle.iterdir()) == sorted([*MODEL_FILES, *embedding, *step, "manifest.json", "report.md", "reference.wav"])
    assert not list(bundle.parent.glob(".*partial*")), "the staging folder is removed"


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_manifest_carries_what_the_device_needs(bundles, runs, model):
    m = _manifest(bundles[model])
    meta = checkpoint.load(runs[model] / checkpoint.BEST)["meta"]
    assert m["format"] == FORMAT and m["format_version"] == FORMAT_VERSION
    assert m["labels"] == meta["labels"] and len(m["labels"]) == CLASSES
    assert m["feature_config"] == meta["feature_config"]
    assert m["model"]["name"] == model and m["model"]["parameters"] > 0 and m["model"]["macs_per_window"] > 0
    inp = m["input"]
    assert inp["kind"] == meta["input_kind"] and inp["shape"] == meta["input_shape"]
    assert inp["window_frames"] == meta["window_frames"] and inp["window_seconds"] == WINDOW
    assert inp["hop_frames"] == round(HOP * 22050 / 512)  # the run's window_hop, as training cut its windows
    assert inp["layout"].startswith("NCHW" if model == "cnn" else "NCT")
    assert np.allclose(inp["normalization"]["mean"], meta["normalizer"]["mean"])
    assert np.allclose(inp["normalization"]["std"], meta["normalizer"]["std"])
    assert m["created"].endswith("Z") and Path(m["source_run"]) == runs[model].resolve()
    assert m["calibration"] == {"split": "train", "windows": 64}
    ver = m["verification"]
    assert ver["split"] == "val" and ver["windows"] >= 2 * CLASSES * 5
    assert [r["file"] for r in ver["rows"]] == ["pytorch", "model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite", "model.int8.tflite"]
    assert set(ver["int8_drop_points"]) == {"onnx", "tflite"}


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_fp32_files_match_pytorch_within_1e_4(bundles, model):
    rows = _rows(bundles[model])
    for name in ("model.fp32.onnx", "model.fp32.tflite"):
        assert rows[name]["max_abs_logit_diff"] <= FP32_ATOL, name
        assert rows[name]["agreement"] == 1.0, name


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_fp32_files_match_pytorch_on_new_inputs(bundles, runs, model, rng):
    """Independent of verify.py: random normalised windows, straight through each runtime."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    ck = checkpoint.load(runs[model] / checkpoint.BEST)
    torch_model = model_from_meta(ck["meta"])
    torch_model.load_state_dict(ck["model"])
    torch_model.eval()
    x = rng.standard_normal((6, *torch_model.example_input(1).shape[1:])).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(bundles[model] / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, rtol=0, atol=FP32_ATOL)  # batch of 6: the axis is dynamic
    interpreter = Interpreter(model_path=str(bundles[model] / "model.fp32.tflite"))
    interpreter.allocate_tensors()
    for window, want in zip(x, expected):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window[None])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(got, want, rtol=0, atol=FP32_ATOL)


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_int8_agrees_with_pytorch_on_97_percent_of_validation_windows(bundles, model):
    m = _manifest(bundles[model])
    rows = _rows(bundles[model])
    for name in ("model.int8.onnx", "model.int8.tflite"):
        print(f"{model} {name}: agreement {rows[name]['agreement']:.3f}, accuracy {rows[name]['accuracy']:.3f} "
              f"(PyTorch {rows['pytorch']['accuracy']:.3f}), {rows[name]['bytes']} bytes, {rows[name]['latency_ms']:.3f} ms")  # fmt: skip
        assert rows[name]["agreement"] >= MIN_INT8_AGREEMENT, name
        assert rows[name]["bytes"] < rows[name.replace("int8", "fp32")]["bytes"] / 2, f"{name}: int8 weights"
    for runtime, points in m["verification"]["int8_drop_points"].items():
        fp32, int8 = rows[f"model.fp32.{runtime}"]["accuracy"], rows[f"model.int8.{runtime}"]["accuracy"]
        assert points == pytest.approx(100 * (fp32 - int8)) and points <= 2.0


def test_int8_tflite_cnn_takes_int8_with_its_scale_recorded(bundles, runs):
    from ai_edge_litert.interpreter import Interpreter

    from pyharmonies.export.source import load_run

    bundle = bundles["cnn"]
    entry = _manifest(bundle)["files"]["model.int8.tflite"]
    assert "full integer" in entry["quantization"] and "static" in entry["quantization"]
    interpreter = Interpreter(model_path=str(bundle / "model.int8.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for recorded, detail in ((entry["input"], inp), (entry["output"], out)):
        assert recorded["dtype"] == "int8" and detail["dtype"] == np.int8
        assert recorded["name"] == detail["name"]
        assert recorded["scale"] == pytest.approx(detail["quantization"][0], rel=1e-7) and recorded["scale"] > 0
        assert recorded["zero_point"] == detail["quantization"][1] and -128 <= recorded["zero_point"] <= 127
    # The device's recipe, from the manifest alone, reproduces the verification's top-1 on the windows.
    src = load_run(runs["cnn"], calibration=1, progress=False)
    top = []
    for window in src.x:
        interpreter.set_tensor(inp["index"], quantize(window[None], entry["input"]["scale"], entry["input"]["zero_point"]))
        interpreter.invoke()
        logits = dequantize(interpreter.get_tensor(out["index"]), entry["output"]["scale"], entry["output"]["zero_point"])
        top.append(int(logits.argmax()))
    assert np.mean(np.asarray(top) == src.y) == pytest.approx(_rows(bundle)["model.int8.tflite"]["accuracy"])
    onnx_entry = _manifest(bundle)["files"]["model.int8.onnx"]
    assert onnx_entry["quantization"] == "static int8, per-channel weights, int8 activations (QDQ)"
    assert "QuantizeLinear" in op_types(bundle / "model.int8.onnx")


def test_lstm_int8_files_say_dynamic_range(bundles):
    files = _manifest(bundles["lstm"])["files"]
    for name in ("model.int8.onnx", "model.int8.tflite"):
        assert "dynamic-range" in files[name]["quantization"], name
        assert files[name]["input"]["dtype"] == "float32" and files[name]["input"]["scale"] is None, name
    assert "LSTM gates" in files["model.int8.tflite"]["quantization"]  # why not full int8, stated
    assert "DynamicQuantizeLSTM" in op_types(bundles["lstm"] / "model.int8.onnx")
    report = (bundles["lstm"] / "report.md").read_text()
    assert "dynamic-range" in report


def test_transformer_int8_files_say_what_is_quantized(bundles):
    """Dense layers int8 with dynamic ranges in both runtimes; attention, softmax and layer norms float, as stated."""
    from ai_edge_litert import schema_py_generated as schema

    files = _manifest(bundles["transformer"])["files"]
    for name in ("model.int8.onnx", "model.int8.tflite"):
        text = files[name]["quantization"]
        assert "dynamic-range int8" in text and "every dense layer" in text and "softmax, layer norms" in text, name
        assert files[name]["input"]["dtype"] == "float32" and files[name]["output"]["dtype"] == "float32", name
    onnx_ops = op_types(bundles["transformer"] / "model.int8.onnx")
    assert {"MatMulInteger", "DynamicQuantizeLinear", "Softmax", "LayerNormalization"} <= onnx_ops
    assert "DynamicQuantizeLSTM" not in onnx_ops and "QuantizeLinear" not in onnx_ops  # no static ranges
    # Every dense layer's weights are int8 in the TFLite file, and nothing else is.
    buf = (bundles["transformer"] / "model.int8.tflite").read_bytes()
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    graph = model.subgraphs[0]
    codes = {i: max(c.builtinCode, c.deprecatedBuiltinCode) for i, c in enumerate(model.operatorCodes)}
    int8_inputs = {(codes[op.opcodeIndex], i) for op in graph.operators for i, t in enumerate(op.inputs)
                   if t >= 0 and graph.tensors[t].type == schema.TensorType.INT8}  # fmt: skip
    assert int8_inputs == {(schema.BuiltinOperator.FULLY_CONNECTED, 1)}  # the weights operand, and only it
    dense = sum(codes[op.opcodeIndex] == schema.BuiltinOperator.FULLY_CONNECTED for op in graph.operators)
    assert dense == 10  # projection; per layer (2) qkv, out, 2 feed-forward; head
    assert {"BATCH_MATMUL", "SOFTMAX"} <= op_names(buf)


def test_transformer_bundle_runs_on_the_device(bundles, corpus):
    """The device runtime loads it (self-check included) and `classify` and `listen --source --fast` run it."""
    from pyharmonies.runtime.bundle import load_bundle

    bundle = load_bundle(bundles["transformer"])  # refuses a bundle whose reference does not reproduce
    assert bundle.kind == "frame_vector" and bundle.layout == "NCT" and bundle.model_input_shape == (28, 43)
    clip = sorted(corpus.rglob("*.wav"))[0]
    for backend, precision in (("onnx", "int8"), ("tflite", "int8"), ("tflite", "fp32")):
        code, output = _invoke("classify", bundles["transformer"], clip, "--json", "--backend", backend, "--precision", precision)
        assert code == 0, output
        (record,) = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert record["label"] == max(record["probs"], key=record["probs"].get) and set(record["probs"]) == set(bundle.labels)
        assert len(record["windows"]) >= 5, record  # a 4 s clip, 1 s windows every 0.5 s
    code, output = _invoke("listen", "--model", bundles["transformer"], "--source", clip, "--fast", "--json")
    assert code == 0, output
    *hops, last = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(hops) == last["summary"]["windows"] >= 3 and last["summary"]["dropped"] == 0
    assert all(hop["top"] in bundle.labels and set(hop["probs"]) == set(bundle.labels) for hop in hops)


def test_batchnorm_is_folded(bundles, runs):
    bundle = bundles["cnn"]
    for name in ("model.fp32.onnx", "model.int8.onnx"):
        ops = op_types(bundle / name)
        assert "Conv" in ops and "BatchNormalization" not in ops, name
    for name in ("model.fp32.tflite", "model.int8.tflite"):
        ops = op_names((bundle / name).read_bytes())
        # An unfolded BatchNorm lowers to a MUL and an ADD after the convolution; the folded CNN has
        # no multiplication outside its convolutions and dense layer.
        assert "CONV_2D" in ops and "DEPTHWISE_CONV_2D" in ops and "MUL" not in ops, (name, ops)
    ck = checkpoint.load(runs["cnn"] / checkpoint.BEST)
    model = model_from_meta(ck["meta"])
    model.load_state_dict(ck["model"])
    model.eval()
    folded = fold_batchnorm(model)
    assert has_batchnorm(model) and not has_batchnorm(folded)
    x = torch.randn(3, *model.example_input(1).shape[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=0, atol=FP32_ATOL)  # float32 rounding of the fold only


@pytest.mark.parametrize("model", ["cnn", "lstm", "transformer"])
def test_report_has_the_verification_table(bundles, model):
    report = (bundles[model] / "report.md").read_text()
    assert "| file | runtime | precision | accuracy | agreement with PyTorch | max abs logit diff | size |" in report
    for name in ("pytorch", *MODEL_FILES):
        assert f"\n| {name} |" in report, name
    assert "Not finalised" not in report
    m = _manifest(bundles[model])
    for entry in m["files"].values():
        assert entry["sha256"] in report and entry["quantization"] in report


# ---------------------------------------------------------------- failure paths and the command


def test_int8_drop_beyond_max_drop_exits_non_zero_without_a_manifest(runs, tmp_path):
    # A negative limit fails even a perfect int8 file; ONNX alone keeps this test fast.
    out = tmp_path / "bundle"
    code, output = _invoke("export", runs["cnn"], "--int8", "--format", "onnx", "--out", out, "--max-drop", "-1", "--calibration", "16", "-q")
    assert code == 1
    assert "int8 accuracy fell too far" in output and "model.int8.onnx" in output and "--allow-drop" in output
    assert not (out / "manifest.json").exists()
    assert (out / "model.int8.onnx").is_file() and "Not finalised" in (out / "report.md").read_text()
    with pytest.raises(AccuracyDropError) as err:
        export_run(runs["cnn"], out, int8=True, formats="onnx", calibration=16, max_drop=-1.0, progress=False, latency_runs=1)
    assert err.value.out_dir == out

    code, output = _invoke("export", runs["cnn"], "--int8", "--format", "onnx", "--out", out, "--max-drop", "-1", "--calibration", "16", "--allow-drop", "-q")
    assert code == 0, output
    assert set(_manifest(out)["files"]) == {"model.fp32.onnx", "model.int8.onnx"}
    assert "accepted with --allow-drop" in (out / "report.md").read_text()


def test_fp32_mismatch_fails_the_export(runs, tmp_path, monkeypatch):
    # A tolerance of 0 turns the fp32 file's float32 rounding (~1e-6) into a mismatch.
    monkeypatch.setattr("pyharmonies.export.exporter.FP32_TOLERANCE", 0.0)
    out = tmp_path / "bundle"
    code, output = _invoke("export", runs["lstm"], "--format", "onnx", "--out", out, "-q")
    assert code == 1 and "fp32 verification failed: model.fp32.onnx: logits differ from PyTorch's" in output
    assert not (out / "manifest.json").exists() and "Not finalised" in (out / "report.md").read_text()
    with pytest.raises(VerificationError):  # --allow-drop covers int8 drops only
        export_run(runs["lstm"], out, formats="onnx", allow_drop=True, progress=False, latency_runs=1)


def test_default_out_and_a_re_export_replace_the_bundle(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = _invoke("export", runs["lstm"], "--int8", "--format", "onnx", "--calibration", "8", "-q")
    assert code == 0, output
    out = tmp_path / "export" / "lstm"
    assert set(_manifest(out)["files"]) == {"model.fp32.onnx", "model.int8.onnx"}
    assert str(Path("export") / "lstm") in output
    code, output = _invoke("export", runs["lstm"], "--format", "onnx", "-q")  # fp32 only now
    assert code == 0, output
    assert set(_manifest(out)["files"]) == {"model.fp32.onnx"} and not (out / "model.int8.onnx").exists()
    assert _manifest(out)["verification"]["int8_drop_points"] == {} and "calibration" not in _manifest(out)


def test_clear_errors(runs, tmp_path):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    code, output = _invoke("export", empty)
    assert code == 1 and "not a run directory" in output
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    (untrained / "config.json").write_text((runs["cnn"] / "config.json").read_text())
    code, output = _invoke("export", untrained)
    assert code == 1 and "no best.pt" in output
    code, output = _invoke("export", runs["cnn"], "--format", "onnx,coreml")
    assert code == 1 and "unknown format(s) 'coreml'" in output and "onnx, tflite" in output
    moved = tmp_path / "moved"
    moved.mkdir()
    cfg = json.loads((runs["cnn"] / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**cfg, "data": str(tmp_path / "gone")}))
    (moved / "best.pt").write_bytes((runs["cnn"] / "best.pt").read_bytes())
    code, output = _invoke("export", moved, "--format", "onnx")
    assert code == 1 and "is not there" in output and "--data" in output


def test_help_and_a_light_command_module():
    code, output = _invoke("export", "--help")
    assert code == 0
    for mention in ("RUN", "--int8", "--format", "--out", "--calibration", "--max-drop", "--allow-drop", "export/README.md"):
        assert mention in output, mention
    code = "import pyharmonies.commands.export, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
