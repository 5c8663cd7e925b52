"""The device runtime: bundles refused when they should be, tflite == onnx,
int8 quantization, silence, ``harmonies classify``, evaluation of a bundle,
and no torch on the device side.

The bundles are built here from small models trained on a synthetic corpus
(test code may import torch; the runtime under test never does): fp32 ONNX
and TFLite for a CNN and an LSTM, and int8 ONNX (onnxruntime static QDQ) and
int8 TFLite (litert-torch PT2E, int8 input and output) for the CNN, with a
manifest in the bundle format of ``harmonies export``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies import __version__
from pyharmonies.audio import load
from pyharmonies.cli import cli
from pyharmonies.data.sources import open_dataset
from pyharmonies.data.synth import synth_corpus
from pyharmonies.errors import BundleError, ParameterError
from pyharmonies.features import FeatureConfig
from pyharmonies.runtime import WindowClassifier, classify_file, input_features, load_bundle, make_backend, softmax
from pyharmonies.runtime.backends import available_backends, choose, dequantize, quantize
from pyharmonies.training.bundle_eval import evaluate_bundle
from pyharmonies.runtime.files import feature_windows

# 4 classes x 16 clips x 5 s; 2 s windows (86 frames of 32 mels) every second,
# as training cuts them: 4 windows per clip. Small enough for a 2-core CI
# machine; the CNN still learns the classes (it need not be good: agreement
# between runtimes is what is tested, and a trained model has confident,
# well-separated logits like a real one).
CLASSES, CLIPS, SECONDS, WINDOW_S = 4, 16, 5.0, 2.0
FEATURES = {"n_mels": 32}

#: A tiny MobileNetV2 (3 stages, 64 last channels): trains in seconds on CPU.
CNN_OPTIONS = {"blocks": ((1, 16, 1, 1), (4, 24, 1, 2), (4, 32, 1, 2)), "last_channels": 64}

#: Top-1 agreement required between the tflite and onnx backends (issue 4), over decisive windows.
AGREEMENT = 0.99

#: A window is decisive when the fp32 model's top logit leads the runner-up by at least this many
#: standard deviations of its logits. Which backend's int8 rounding wins a near-tie is training
#: noise: over all windows the int8 agreement was 0.982-1.0 over training seeds 0-4 (seed 4
#: failed 0.99; a fresh machine's LSTM failed with 0.984). A decisive lead is beyond what the
#: rounding reorders: over those seeds the two int8 backends' logits differed by at most 0.27 sd,
#: every disagreement had a lead under 0.1 sd, and agreement over decisive windows was 1.0.
DECISIVE_SD = 0.5

#: A trained model decides most windows (0.81-1.0 of them over seeds 0-4 at 0.5 sd), so the
#: agreement above is over most of the corpus, not a vacuous few.
MIN_DECISIVE = 0.5

#: The training seed and torch's intra-op threads while training. One thread: a CPU model's weights
#: depend on how many threads split its reductions (oneDNN's convolutions), so pinning it gives the
#: same models on any machine with this CPU's kernels; another instruction set may still train
#: slightly other models, hence the assertions on decisive windows. benchmarks/bench_margins.py
#: varies both to measure the margins above.
SEED = int(os.environ.get("HARMONIES_TEST_SEED", "0"))
TRAIN_THREADS = int(os.environ.get("HARMONIES_TEST_TRAIN_THREADS", "1"))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=CLASSES, clips_per_class=CLIPS, seconds=SECONDS, seed=5, progress=False, jobs=1)
    return root


def _train(corpus: Path, out: Path, cache: Path, model: str, **kw) -> Path:
    import torch

    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    cfg = TrainConfig(data=str(corpus), out=str(out), cache=str(cache), model=model, window=WINDOW_S, seed=SEED,
                      features=dict(FEATURES), batch_size=16, backbone="none", members=1, **kw)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return train_run(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)


def _margin(test: str, value: float, op: str, threshold: float) -> None:
    """A line benchmarks/bench_margins.py collects: a measured quantity, and the bound (``op`` ">=" or "<=") the test puts on it."""
    print(f"margin: {test} {value:.4f} {op} {threshold:.4f}")


def _decisive_agreement(top_a: np.ndarray, top_b: np.ndarray, fp32_logits: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement of two backends over the decisive windows, and the fraction of windows that are decisive.

    ``top_a``, ``top_b``: (n,) top-1 indices; ``fp32_logits``: (n, classes), the fp32 model's (see DECISIVE_SD).
    """
    ranked = np.sort(fp32_logits, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] >= DECISIVE_SD * float(fp32_logits.std())
    return float(np.mean(top_a[decisive] == top_b[decisive])) if decisive.any() else 0.0, float(decisive.mean())


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    cache = base / "cache"
    return {
        # No augmentation for the CNN: 6 epochs on clean windows separate the 4 classes (>= 95 %), in half the time.
        "cnn": _train(corpus, base / "cnn", cache, "cnn", epochs=6, patience=6, lr=5e-3, augment=False, mixup=0.0,
                      model_options=CNN_OPTIONS),  # fmt: skip
        "lstm": _train(corpus, base / "lstm", cache, "lstm", epochs=15, patience=15),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _corpus_windows(corpus: Path, config: FeatureConfig, kind: str, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw windows (n, rows, window) of every corpus clip, every ``hop`` frames, and their label indices."""
    from pyharmonies.data.windows import make_windows, silence_values, take_window

    index = open_dataset(corpus)
    labels = index.labels
    xs, ys = [], []
    for clip in index.clips:
        feats = input_features(load(clip.path, config.sample_rate), config, kind)
        for w in make_windows([feats.shape[1]], window, hop):
            xs.append(take_window(feats, w.start, window, silence_values(config)[kind]))
            ys.append(labels.index(clip.label))
    return np.stack(xs), np.asarray(ys)


def _tflite_io(path: Path) -> tuple[dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))

    def entry(d: dict) -> dict:
        dtype = np.dtype(d["dtype"]).name
        scale, zp = d["quantization"]
        q = dtype == "int8"
        return {"name": d["name"], "dtype": dtype, "scale": float(scale) if q else None, "zero_point": int(zp) if q else None}

    return entry(it.get_input_details()[0]), entry(it.get_output_details()[0])


def _add_int8(model, example, calib: np.ndarray, out: Path, files: dict, float_io: dict) -> None:
    """int8 TFLite (PT2E full integer: int8 input and output) and int8 ONNX (static QDQ), same calibration windows."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    prepared = quantize_pt2e.prepare_pt2e(torch.export.export(model, (example,)).module(), quantizer)
    with torch.no_grad():
        for x in calib:
            prepared(torch.from_numpy(x[None]))
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(out / "model.int8.tflite"))
    files["model.int8.tflite"] = ("tflite", "int8", "PT2E full integer, per-channel weights", *_tflite_io(out / "model.int8.tflite"))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calib, 4))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"input": np.ascontiguousarray(batch)}

    quantize_static(str(out / "model.fp32.onnx"), str(out / "model.int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)  # fmt: skip
    files["model.int8.onnx"] = ("onnx", "int8", "static QDQ, per-channel weights", float_io, {**float_io, "name": "logits"})


def build_bundle(run: Path, out: Path, corpus: Path, *, int8: bool) -> Path:
    """A bundle of a training run, in the format of ``harmonies export``.

    The test's own minimal exporter (the real one is ``pyharmonies.export``):
    fp32 ONNX (TorchScript exporter, dynamic batch) and fp32 TFLite
    (litert-torch); with ``int8``, ONNX static QDQ (per-channel weights,
    calibrated on training windows) and TFLite PT2E full-integer (int8 input
    and output), both calibrated on the same normalised windows.
    """
    import litert_torch
    import torch

    from pyharmonies.training import checkpoint
    from pyharmonies.training.dataset import Normalizer
    from pyharmonies.training.loop import model_from_meta

    out.mkdir(parents=True)
    ck = checkpoint.load(run / checkpoint.BEST)
    meta = ck["meta"]
    model = model_from_meta(meta)
    model.load_state_dict(ck["model"])
    model.eval()
    rows, frames = meta["input_shape"]
    nchw = meta["input_kind"] == "log_mel"
    shape = (1, 1, rows, frames) if nchw else (1, rows, frames)
    example = torch.zeros(shape)
    config = FeatureConfig(**meta["feature_config"])
    norm = Normalizer.from_dict(meta["normalizer"])
    raw, _ = _corpus_windows(corpus, config, meta["input_kind"], frames, frames // 2)
    calib = norm(raw[:: max(1, len(raw) // 64)]).astype(np.float32)  # ~64 windows spread over the classes
    calib = calib[:, None] if nchw else calib

    files = {}
    float_io = {"name": "input", "dtype": "float32", "scale": None, "zero_point": None}
    with warnings.catch_warnings():
        # The TorchScript ONNX exporter is deprecated in favour of dynamo (onnxscript is not installed).
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # nn.LSTM branches on tensor properties while traced; the window shape is fixed, so is the branch.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1", category=UserWarning)
        # torch's pytree deprecates LeafSpec checks that litert-torch and torch.export still make.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
        # nn.LSTM re-assigns its _flat_weights in forward(); torch.export notes it (the values are the trained ones).
        warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights", category=UserWarning)
        torch.onnx.export(model, (example,), str(out / "model.fp32.onnx"), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})  # fmt: skip
        files["model.fp32.onnx"] = ("onnx", "fp32", "none", float_io, {**float_io, "name": "logits"})
        litert_torch.convert(model, (example,)).export(str(out / "model.fp32.tflite"))
        files["model.fp32.tflite"] = ("tflite", "fp32", "none", *_tflite_io(out / "model.fp32.tflite"))
        if int8:
            _add_int8(model, example, calib, out, files, float_io)

    manifest = {
        "format": "harmonies-bundle",
        "format_version": 1,
        "name": out.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harmonies_version": __version__,
        "model": {"name": meta["model_name"], "config": meta["model_config"], "parameters": 0, "macs_per_window": 0},
        "labels": list(meta["labels"]),
        "input": {
            "kind": meta["input_kind"],
            "shape": [rows, frames],
            "layout": "NCHW [batch, 1, rows, frames]" if nchw else "NCT [batch, rows, frames]",
            "window_frames": frames,
            "window_seconds": meta["window_seconds"],
            "hop_frames": frames // 2,  # training's default hop: half a window
            "normalization": meta["normalizer"],
        },
        "feature_config": meta["feature_config"],
        "files": {
            name: {"sha256": _sha256(out / name), "bytes": (out / name).stat().st_size, "runtime": rt, "precision": prec,
                   "quantization": quant, "input": inp, "output": outp}  # fmt: skip
            for name, (rt, prec, quant, inp, outp) in files.items()
        },
        "verification": {},
        "source_run": str(run),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # The golden self-check, as the real exporter stores it: candidate windows from every fourth clip.
    from pyharmonies.export.reference import build_reference, candidate_segments

    sources = [(clip.path, clip.start_s, 0) for clip in open_dataset(corpus).clips[::4]]
    segments = candidate_segments(sources, config.sample_rate, config.hop_length, frames)
    manifest["reference"], _ = build_reference(out, segments)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


@pytest.fixture(scope="module")
def bundles(runs, corpus, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("export")
    return {
        "cnn": build_bundle(runs["cnn"], base / "cnn", corpus, int8=True),
        "lstm": build_bundle(runs["lstm"], base / "lstm", corpus, int8=False),
    }


@pytest.fixture(scope="module")
def windows(bundles, corpus) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw windows of the whole corpus every 8 frames (9-10 per clip), per model kind."""
    out = {}
    for name, path in bundles.items():
        b = load_bundle(path)
        out[name] = _corpus_windows(corpus, b.feature_config, b.kind, b.window_frames, 8)
    return out


@pytest.fixture
def copy_of(bundles, tmp_path):
    def copy(name: str = "cnn") -> Path:
        return Path(shutil.copytree(bundles[name], tmp_path / f"{name}-copy"))

    return copy


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, manifest: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest))


# ------------------------------------------------------------------ loading


def test_a_good_bundle_loads(bundles):
    b = load_bundle(bundles["cnn"])
    assert b.kind == "log_mel" and b.layout == "NCHW" and b.rows == FEATURES["n_mels"]
    assert b.window_frames == 86 and b.hop_frames == 43  # 2 s windows every second, as training cut them
    assert len(b.labels) == CLASSES and b.feature_config == FeatureConfig(**FEATURES)
    assert {(f.runtime, f.precision) for f in b.files.values()} == {("onnx", "fp32"), ("tflite", "fp32"), ("onnx", "int8"), ("tflite", "int8")}
    assert b.files["model.int8.tflite"].input.quantized and b.model_input_shape == (1, 32, 86)
    lstm = load_bundle(bundles["lstm"] / "manifest.json")  # the manifest's path works too
    assert lstm.kind == "frame_vector" and lstm.layout == "NCT" and lstm.rows == 28 and lstm.model_input_shape == (28, 86)


def test_a_flipped_byte_is_refused_naming_the_file(copy_of):
    path = copy_of()
    model = path / "model.int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.int8\.tflite: checksum mismatch: the file is corrupt or was modified"):
        load_bundle(path)


def test_a_truncated_file_is_refused(copy_of):
    path = copy_of()
    model = path / "model.fp32.onnx"
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(BundleError, match=r"model\.fp32\.onnx: checksum mismatch.*bytes, the manifest says"):
        load_bundle(path)


def test_a_missing_file_is_refused_naming_it(copy_of):
    path = copy_of()
    (path / "model.fp32.tflite").unlink()
    with pytest.raises(BundleError, match=r"model\.fp32\.tflite is missing"):
        load_bundle(path)


def test_a_newer_format_version_is_refused_with_the_upgrade_hint(copy_of):
    path = copy_of()
    _write_manifest(path, {**_manifest(path), "format_version": 7})
    with pytest.raises(BundleError, match=r"bundle format version 7 is newer than this harmonies \(supports 1\); upgrade harmonies"):
        load_bundle(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: "{not json", r"malformed manifest, not valid JSON"),
        (lambda m: [1, 2], r"malformed manifest: expected a JSON object"),
        (lambda m: {**m, "format": "something-else"}, r"not a harmonies bundle manifest"),
        (lambda m: {**m, "format_version": "1"}, r"'format_version' must be an integer"),
        (lambda m: {k: v for k, v in m.items() if k != "labels"}, r"missing field 'labels'"),
        (lambda m: {**m, "labels": ["a", "a", "b", "c"]}, r"'labels' repeats 'a'"),
        (lambda m: {**m, "labels": []}, r"'labels' is empty"),
        (lambda m: {**m, "input": {**m["input"], "normalization": {"mean": [0.0] * 5, "std": [1.0] * 5}}},
         r"'input.normalization.mean' has 5 values, the input 32 rows"),
        (lambda m: {**m, "input": {**m["input"], "normalization": {**m["input"]["normalization"], "std": [0.0] * 32}}},
         r"'input.normalization.std' must be positive"),
        (lambda m: {**m, "input": {**m["input"], "shape": [64, 86]}}, r"has 64 rows but log_mel features of this feature config have 32"),
        (lambda m: {**m, "input": {**m["input"], "kind": "chroma"}}, r"input kind 'chroma' is not one this runtime computes"),
        (lambda m: {**m, "feature_config": {**m["feature_config"], "window": "hamming"}},
         r"cannot honour the bundle's feature config: window='hamming' is not supported"),
        (lambda m: {**m, "feature_config": {**m["feature_config"], "pcen": True}},
         r"cannot honour the bundle's feature config: unknown FeatureConfig field\(s\): pcen"),
        (lambda m: {**m, "files": {"../escape.onnx": next(iter(m["files"].values()))}}, r"plain file name"),
        (lambda m: {**m, "files": {**m["files"], "model.fp32.onnx": {**m["files"]["model.fp32.onnx"], "runtime": "coreml"}}},
         r"model.fp32.onnx is for runtime 'coreml'"),
        (lambda m: {**m, "files": {**m["files"], "model.int8.tflite": {**m["files"]["model.int8.tflite"],
                                                                       "input": {"name": "x", "dtype": "int8", "scale": None, "zero_point": 0}}}},
         r"input.scale' of an int8 tensor must be a positive number"),
    ],
)  # fmt: skip
def test_a_malformed_manifest_is_refused_naming_the_problem(copy_of, edit, message):
    path = copy_of()
    edited = edit(_manifest(path))
    (path / "manifest.json").write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no such bundle directory"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(BundleError, match=r"not a harmonies bundle \(no manifest.json\)"):
        load_bundle(tmp_path)


def test_a_manifest_that_disagrees_with_the_model_file_is_refused(copy_of):
    # The manifest is not checksummed; an int8 scale edited in it must not silently mis-quantize.
    path = copy_of()
    m = _manifest(path)
    m["files"]["model.int8.tflite"]["input"]["scale"] *= 1.5
    _write_manifest(path, m)
    message = r"manifest says int8 input scale/zero point .* the model file says"
    with pytest.raises(BundleError, match=message):
        load_bundle(path)  # the self-check loads every file
    bundle = load_bundle(path, selfcheck=False)
    with pytest.raises(BundleError, match=message):
        make_backend(bundle, "tflite", "int8")


def test_a_symlinked_model_file_is_refused(copy_of, tmp_path):
    # The link's target has the right bytes, so the checksum alone would pass; the file lies outside the bundle.
    path = copy_of()
    outside = tmp_path / "outside.tflite"
    shutil.move(path / "model.int8.tflite", outside)
    (path / "model.int8.tflite").symlink_to(outside)
    with pytest.raises(BundleError, match=r"model\.int8\.tflite is a symbolic link; a bundle's files must be regular files inside its folder"):
        load_bundle(path)
    with pytest.raises(BundleError, match=r"is a symbolic link"):
        load_bundle(path, verify=False, selfcheck=False)  # even without checksums


def test_a_model_file_that_is_a_directory_is_refused(copy_of):
    path = copy_of()
    (path / "model.fp32.onnx").unlink()
    (path / "model.fp32.onnx").mkdir()
    with pytest.raises(BundleError, match=r"model\.fp32\.onnx is not a regular file"):
        load_bundle(path)


def test_a_wrong_label_count_is_refused_at_load(copy_of):
    path = copy_of()
    m = _manifest(path)
    _write_manifest(path, {**m, "labels": m["labels"][:-1]})
    message = rf"model\.\w+\.\w+ has {CLASSES} outputs but the manifest lists {CLASSES - 1} labels"
    with pytest.raises(BundleError, match=message):
        load_bundle(path)
    bundle = load_bundle(path, selfcheck=False)
    for runtime in ("tflite", "onnx"):  # when the model is loaded, before any window is classified
        with pytest.raises(BundleError, match=message):
            make_backend(bundle, runtime, "int8")


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, r"malformed manifest: nested 100000 levels deep, more than the 32"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, r"malformed manifest: nested 50000 levels deep"),
        (json.dumps({"format": "harmonies-bundle", "padding": "x" * 1_100_000}), r"the manifest is over 1,000,000 bytes"),
    ],
    ids=["deep-arrays", "deep-objects", "huge"],
)
def test_an_over_deep_or_oversized_manifest_gets_a_message(copy_of, text, message):
    from pyharmonies.runtime.bundle import is_bundle

    path = copy_of()
    (path / "manifest.json").write_text(text)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)
    assert not is_bundle(path)  # the cheap test refuses it too, silently


def test_brackets_inside_strings_do_not_count_as_depth(copy_of):
    path = copy_of()
    _write_manifest(path, {**_manifest(path), "created": "[[[[" * 20 + '\\"{{{{' * 20})
    load_bundle(path)


def test_the_manifest_hop_is_used_and_an_old_manifest_falls_back_with_a_warning(copy_of, corpus):
    from pyharmonies.runtime.bundle import BundleWarning

    path = copy_of()
    m = _manifest(path)
    _write_manifest(path, {**m, "input": {**m["input"], "hop_frames": 20}})
    clf = WindowClassifier.open(path, backend="onnx", precision="fp32")
    assert clf.hop_frames == 20
    clip = sorted(corpus.rglob("*.wav"))[0]
    assert [round(w.start_s, 3) for w in classify_file(clf, clip).windows][:3] == [0.0, round(20 * 512 / 22050, 3), round(40 * 512 / 22050, 3)]
    del m["input"]["hop_frames"]
    _write_manifest(path, m)
    with pytest.warns(BundleWarning, match=r"no 'input.hop_frames' \(an older export\); cutting files every 43 frames, half a window"):
        assert load_bundle(path).hop_frames == 43


# ------------------------------------------------------------------ backends


def test_backend_choice(bundles):
    cnn, lstm = load_bundle(bundles["cnn"]), load_bundle(bundles["lstm"])
    assert list(available_backends()) == ["tflite", "onnx"]  # ai-edge-litert and onnxruntime are installed here
    assert choose(cnn).name == "model.int8.tflite"
    assert choose(cnn, "onnx").name == "model.int8.onnx"
    assert choose(cnn, precision="fp32").name == "model.fp32.tflite"
    assert choose(lstm).name == "model.fp32.tflite"  # no int8 file: auto falls back to fp32
    with pytest.raises(BundleError, match=r"no int8 onnx model file .* the bundle holds model.fp32.onnx"):
        choose(lstm, "onnx", "int8")
    with pytest.raises(ParameterError, match="backend must be one of"):
        choose(cnn, "tensorrt")


@pytest.fixture
def only(monkeypatch):
    """Pretend only some runtime modules are installed; a fake ``tflite_runtime`` wraps LiteRT's interpreter."""
    import types

    from ai_edge_litert.interpreter import Interpreter

    from pyharmonies.runtime import backends

    def install(*modules: str) -> None:
        monkeypatch.setattr(backends, "_installed", lambda module: module in modules)
        if "tflite_runtime.interpreter" in modules:
            fake = types.ModuleType("tflite_runtime.interpreter")
            fake.Interpreter = Interpreter
            monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
            monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)

    return install


def test_backend_fallbacks(bundles, only):
    bundle = load_bundle(bundles["cnn"])
    only("tflite_runtime.interpreter", "onnxruntime")
    backend = make_backend(bundle)
    assert (backend.provider, backend.file.name) == ("tflite-runtime", "model.int8.tflite")
    assert available_backends() == {"tflite": "tflite-runtime", "onnx": "onnxruntime"}
    only("onnxruntime")
    assert make_backend(bundle).describe() == "int8 onnx (onnxruntime, model.int8.onnx)"
    with pytest.raises(BundleError, match=r"backend 'tflite' is not installed here: pip install ai-edge-litert \(or tflite-runtime\)"):
        make_backend(bundle, "tflite")
    only()
    with pytest.raises(BundleError, match="no inference runtime is installed"):
        make_backend(bundle)


def test_backend_reports_what_it_runs(bundles):
    backend = make_backend(load_bundle(bundles["cnn"]), "tflite", "int8")
    assert backend.name == "tflite" and backend.provider == "ai-edge-litert" and backend.precision == "int8"
    assert "int8 tflite (ai-edge-litert, model.int8.tflite)" == backend.describe()
    with pytest.raises(ParameterError, match=r"the model takes \(batch, 1, 32, 86\) input"):
        backend.run(np.zeros((1, 32, 86), np.float32))


@pytest.mark.parametrize("name, precision", [("cnn", "fp32"), ("cnn", "int8"), ("lstm", "fp32")])
def test_tflite_and_onnx_agree_on_top1(bundles, windows, name, precision):
    bundle = load_bundle(bundles[name])
    x, y = windows[name]
    probs = {}
    for runtime in ("tflite", "onnx"):
        clf = WindowClassifier(bundle, make_backend(bundle, runtime, precision))
        probs[runtime] = clf.predict_batch(x)
    top = {rt: p.argmax(axis=1) for rt, p in probs.items()}
    agreement = float(np.mean(top["tflite"] == top["onnx"]))
    fp32_logits = WindowClassifier(bundle, make_backend(bundle, "onnx", "fp32")).logits_batch(x)
    decisive_agreement, decisive = _decisive_agreement(top["tflite"], top["onnx"], fp32_logits)
    accuracy = {rt: float(np.mean(t == y)) for rt, t in top.items()}
    print(f"{name} {precision}: tflite/onnx top-1 agreement {agreement:.4f} over {len(y)} windows, {decisive_agreement:.4f} "
          f"over the {decisive:.0%} decisive; accuracy tflite {accuracy['tflite']:.3f} onnx {accuracy['onnx']:.3f}; "
          f"max |prob diff| {np.abs(probs['tflite'] - probs['onnx']).max():.2e}")  # fmt: skip
    _margin(f"agree_on_top1[{name}-{precision}].decisive_agreement", decisive_agreement, ">=", AGREEMENT)
    _margin(f"agree_on_top1[{name}-{precision}].decisive_fraction", decisive, ">=", MIN_DECISIVE)
    assert len(y) >= 500
    assert decisive >= MIN_DECISIVE and decisive_agreement >= AGREEMENT
    if precision == "fp32":
        # The same float graph in two runtimes: only summation order differs.
        np.testing.assert_allclose(probs["tflite"], probs["onnx"], atol=1e-4)


def test_fp32_files_match_pytorch(runs, bundles, windows):
    """The runtime's normalisation and layout are training's: ONNX fp32 logits equal PyTorch's."""
    import torch

    from pyharmonies.training import checkpoint
    from pyharmonies.training.dataset import Normalizer
    from pyharmonies.training.loop import model_from_meta

    for name in ("cnn", "lstm"):
        ck = checkpoint.load(runs[name] / checkpoint.BEST)
        model = model_from_meta(ck["meta"])
        model.load_state_dict(ck["model"])
        model.eval()
        x, _ = windows[name]
        x = x[:64]
        normed = Normalizer.from_dict(ck["meta"]["normalizer"])(x).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(normed[:, None] if name == "cnn" else normed)).numpy()
        clf = WindowClassifier(load_bundle(bundles[name]), make_backend(load_bundle(bundles[name]), "onnx", "fp32"))
        # float32 graphs, different kernels: 1e-4 on logits of magnitude ~10 (issue 4's fp32 tolerance).
        np.testing.assert_allclose(clf.logits_batch(x), expected, atol=1e-4, rtol=0)


def test_int8_input_quantization_round_trip(bundles):
    bundle = load_bundle(bundles["cnn"])
    spec = bundle.files["model.int8.tflite"].input
    scale, zp = spec.scale, spec.zero_point
    grid = np.arange(-128, 128, dtype=np.int8)
    # Every int8 value survives dequantize -> quantize exactly.
    np.testing.assert_array_equal(quantize(dequantize(grid, scale, zp), scale, zp), grid)
    # Values in range come back within half a step; beyond the range they saturate.
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    x = np.random.default_rng(0).uniform(lo, hi, 10_000).astype(np.float32)
    err = np.abs(dequantize(quantize(x, scale, zp), scale, zp) - x)
    assert err.max() <= scale / 2 * (1 + 1e-5)  # half a quantization step, plus float32 rounding of x / scale
    np.testing.assert_array_equal(quantize(np.array([hi + 10, lo - 10], np.float32), scale, zp), [127, -128])
    # What the backend feeds the interpreter is exactly this quantization of the normalised window.
    backend = make_backend(bundle, "tflite", "int8")
    x = np.random.default_rng(1).standard_normal((2, *bundle.model_input_shape)).astype(np.float32)
    fed = []
    original = backend._interp.set_tensor
    backend._interp.set_tensor = lambda index, value: (fed.append(value.copy()), original(index, value))[1]
    backend.run(x)
    np.testing.assert_array_equal(np.concatenate(fed), quantize(x, scale, zp))
    assert fed[0].dtype == np.int8


@pytest.mark.parametrize("runtime", ["tflite", "onnx"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_silence_gives_finite_probabilities(bundles, runtime, precision, tmp_path):
    clf = WindowClassifier.open(bundles["cnn"], backend=runtime, precision=precision)
    silence = np.repeat(clf.pad_values[:, None], clf.window_frames, axis=1)
    probs = clf.predict(silence)
    assert probs.shape == (CLASSES,) and np.all(np.isfinite(probs)) and np.all(probs >= 0)
    assert abs(float(probs.sum()) - 1.0) < 1e-5
    # A file of digital silence, and one far shorter than a window (padded), through the whole path.
    sr = clf.feature_config.sample_rate
    for seconds in (3.0, 0.1):
        path = tmp_path / f"silence-{seconds}.wav"
        sf.write(path, np.zeros(int(seconds * sr), np.float32), sr)
        result = classify_file(clf, path)
        assert np.all(np.isfinite(result.probs)) and abs(float(result.probs.sum()) - 1.0) < 1e-5
        assert result.padded == (seconds < WINDOW_S)


def test_softmax_is_safe():
    p = softmax(np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [-1e30, -1e30, -1e30]], np.float32))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1, 0, 0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)


def test_classifier_validates_its_input(bundles):
    clf = WindowClassifier.open(bundles["cnn"])
    with pytest.raises(ParameterError, match=r"\(n, 32, 86\) of raw log_mel features"):
        clf.predict_batch(np.zeros((2, 64, 86), np.float32))
    with pytest.raises(ParameterError, match="NaN or Inf"):
        clf.predict(np.full((32, 86), np.nan, np.float32))
    assert clf.predict_batch(np.zeros((0, 32, 86), np.float32)).shape == (0, CLASSES)


# ------------------------------------------------------------------ files


def test_classify_file_windows_and_vote(bundles, corpus):
    clf = WindowClassifier.open(bundles["cnn"], backend="onnx", precision="fp32")
    clip = sorted((corpus / open_dataset(corpus).labels[1]).glob("*.wav"))[0]
    result = classify_file(clf, clip, top_k=2)
    y = load(clip, clf.feature_config.sample_rate)
    feats = input_features(y, clf.feature_config, clf.kind)
    windows, starts = feature_windows(clf, feats)
    assert starts == [0, 43, 86, 129] and len(result.windows) == 4  # 216 frames: 86-frame windows at 0, 1, 2 and 3 s
    np.testing.assert_allclose(result.probs, clf.predict_batch(windows).mean(axis=0), rtol=1e-6)
    assert [name for name, _ in result.top] == [clf.labels[i] for i in np.argsort(-result.probs)[:2]]
    assert result.windows[1].start_s == pytest.approx(43 * 512 / 22050)
    assert result.to_dict()["label"] == result.label and not result.padded


# ------------------------------------------------------------------ CLI


@pytest.fixture
def wav_files(corpus, tmp_path) -> tuple[list[Path], Path]:
    """One clip per class, resampled to 44.1 kHz stereo (the CLI resamples and mixes down), and a corrupt file."""
    index = open_dataset(corpus)
    good = []
    for label in index.labels:
        clip = next(c for c in index.clips if c.label == label)
        y = load(clip.path, 44100)
        path = tmp_path / f"{label}.wav"
        sf.write(path, np.stack([y, y], axis=1), 44100)
        good.append(path)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" + bytes(range(256)))
    return good, corrupt


def _invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_classify_cli_text(bundles, wav_files):
    good, _ = wav_files
    code, out, err = _invoke("classify", bundles["cnn"], *good, "--top-k", "2")
    assert code == 0, err
    assert "int8 tflite (ai-edge-litert, model.int8.tflite)" in out.splitlines()[0]
    for path in good:
        block = out.split(str(path))[1].splitlines()
        assert "5.0 s, 4 windows" in block[0]
        assert len([line for line in block[1:3] if line.strip().endswith("%")]) == 2


def test_classify_cli_json_with_a_corrupt_file(bundles, wav_files):
    good, corrupt = wav_files
    code, out, err = _invoke("classify", bundles["cnn"], good[0], corrupt, *good[1:], "--json", "--backend", "onnx", "--precision", "fp32")
    assert code == 1
    assert f"error: {corrupt}: cannot decode audio" in err and err.rstrip().endswith("1 of 5 files failed")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in [good[0], corrupt, *good[1:]]]
    assert "cannot decode audio" in records[1]["error"]
    ok = [r for r in records if "error" not in r]
    labels = sorted(load_bundle(bundles["cnn"]).labels)
    for r, path in zip(ok, good):
        assert sorted(r["probs"]) == labels and abs(sum(r["probs"].values()) - 1) < 1e-4
        assert len(r["top"]) == 3 and r["top"][0]["label"] == r["label"] and len(r["windows"]) == 4
    hits = sum(r["label"] == path.stem for r, path in zip(ok, good))
    print(f"classify --json: {hits} of {len(ok)} files named their class")
    _margin("classify_cli_json.hits", hits, ">=", len(ok) - 1)
    assert hits >= len(ok) - 1  # a trained model on its own corpus (one miss allowed: the test only needs the plumbing)


def test_classify_cli_refuses_a_bad_bundle(copy_of, wav_files):
    path = copy_of()
    (path / "model.int8.tflite").write_bytes(b"oops")
    code, _, err = _invoke("classify", path, wav_files[0][0])
    assert code == 1 and "model.int8.tflite: checksum mismatch" in err


def test_classify_help():
    code, out, _ = _invoke("classify", "--help")
    assert code == 0
    for mention in ("BUNDLE", "AUDIO...", "--top-k", "--json", "--backend", "--precision", "--threads"):
        assert mention in out


_NO_TORCH = textwrap.dedent(
    """
    import sys
    from pyharmonies.cli import cli
    code = cli.main(args=sys.argv[1:], prog_name="harmonies", standalone_mode=False)
    print("EXIT", code)
    print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchao", "litert_torch", "librosa", "sklearn", "matplotlib")))
    """
)


def _run_no_torch(*args) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", _NO_TORCH, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return next(line for line in lines if line.startswith("HEAVY")), next(line for line in lines if line.startswith("EXIT"))


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_classify_never_imports_torch(bundles, wav_files, backend):
    heavy, code = _run_no_torch("classify", bundles["cnn"], wav_files[0][0], "--json", "--backend", backend)
    assert heavy == "HEAVY []" and code == "EXIT None"


def test_evaluating_a_bundle_never_imports_torch(bundles, corpus):
    heavy, code = _run_no_torch("evaluate", bundles["lstm"], corpus, "--split", "all", "--quiet")
    assert heavy == "HEAVY []" and code == "EXIT None"


# ------------------------------------------------------------------ evaluate


def test_evaluate_bundle_reproduces_the_runs_test_metrics(runs, bundles, corpus):
    """fp32 ONNX on the source run's test split gives the figures PyTorch gave at the end of training."""
    for name in ("cnn", "lstm"):
        saved = json.loads((runs[name] / "metrics.json").read_text())["splits"]["test"]
        got = evaluate_bundle(bundles[name], corpus, split="test", backend="onnx", precision="fp32")
        for level in ("window", "clip"):
            assert got[level]["n"] == saved[level]["n"]
            # The same windows; float32 kernels differ by ~1e-6, so at most one near-tie window may flip.
            assert abs(got[level]["accuracy"] - saved[level]["accuracy"]) <= 1 / saved[level]["n"] + 1e-9
        assert got["backend"]["file"] == "model.fp32.onnx" and got["problems"] == []


def test_evaluate_bundle_int8_and_all(bundles, corpus, tmp_path):
    bundle = load_bundle(bundles["cnn"])
    x, y = _corpus_windows(corpus, bundle.feature_config, bundle.kind, bundle.window_frames, bundle.hop_frames)
    results = {}
    for runtime in ("tflite", "onnx"):
        results[runtime] = evaluate_bundle(bundles["cnn"], corpus, split="all", backend=runtime, precision="int8", out=tmp_path / runtime)
        assert results[runtime]["window"]["n"] == CLASSES * CLIPS * 4 == len(y)
        assert results[runtime]["clip"]["n"] == CLASSES * CLIPS
        # The same windows through the same file: evaluation reports what the backend predicts, whatever
        # the model learnt (a gap between the runtimes' accuracies is near-ties, training noise: up to
        # 0.016 at seed 4, on windows every 8 frames). At most one window apart: another batch size may re-round a near-tie.
        own = np.mean(WindowClassifier(bundle, make_backend(bundle, runtime, "int8")).predict_batch(x).argmax(axis=1) == y)
        assert abs(results[runtime]["window"]["accuracy"] - own) <= 1 / len(y) + 1e-9
    print({rt: round(r["window"]["accuracy"], 4) for rt, r in results.items()})
    record = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    assert record["backend"]["precision"] == "int8" and "## Per clip" in (tmp_path / "onnx" / "report.md").read_text()


def test_evaluate_cli_with_a_bundle(bundles, corpus, tmp_path):
    code, out, err = _invoke("evaluate", bundles["cnn"], corpus, "--split", "test", "--quiet")
    assert code == 0, err
    assert "int8 tflite (ai-edge-litert, model.int8.tflite)" in out
    assert "window accuracy" in out and "clip   accuracy" in out
    assert not any(p.name == "eval" for p in bundles["cnn"].iterdir())  # nothing written into the bundle
    # A bundle whose source run is elsewhere: --split test explains, --split all works.
    moved = Path(shutil.copytree(bundles["cnn"], tmp_path / "moved"))
    _write_manifest(moved, {**_manifest(moved), "source_run": "runs/not-here"})
    code, _, err = _invoke("evaluate", moved, corpus, "--quiet")
    assert code == 1 and "source run 'runs/not-here' is not on this machine; use --split all" in err
    code, out, _ = _invoke("evaluate", moved, corpus, "--split", "all", "--quiet", "--backend", "onnx", "--precision", "fp32")
    assert code == 0 and "fp32 onnx" in out


def test_evaluate_cli_refuses_runtime_options_for_a_run(runs, corpus):
    code, _, err = _invoke("evaluate", runs["cnn"], corpus, "--backend", "onnx")
    assert code == 2 and "apply to bundles" in err


# ------------------------------------------------------------------ latency (reported, not asserted)


def test_latency_per_window_is_reported(bundles):
    """Median of 200 single-window runs per backend (1 thread); figures for the notes, no bound on a shared CI box."""
    bundle = load_bundle(bundles["cnn"])
    x = np.zeros((1, *bundle.model_input_shape), np.float32)
    for runtime in ("tflite", "onnx"):
        for precision in ("fp32", "int8"):
            backend = make_backend(bundle, runtime, precision)
            backend.run(x)
            times = []
            for _ in range(200):
                t0 = time.perf_counter()
                backend.run(x)
                times.append(time.perf_counter() - t0)
            print(f"{runtime} {precision}: median {1e3 * float(np.median(times)):.3f} ms per window")


# ------------------------------------------------------------------ end to end with the real exporter


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict[str, Path]:
    """Bundles written by ``pyharmonies.export.export_run`` (int8 included) from the same runs."""
    from pyharmonies.export import export_run

    base = tmp_path_factory.mktemp("exported")
    # allow_drop: the exporter's accuracy gate has its own tests; here the files only need to exist.
    return {name: export_run(runs[name], base / name, int8=True, calibration=64, allow_drop=True, progress=False, latency_runs=10)
            for name in ("cnn", "lstm")}  # fmt: skip


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_exported_bundle_runs_on_the_device_runtime(exported, windows, name):
    bundle = load_bundle(exported[name])
    assert {(f.runtime, f.precision) for f in bundle.files.values()} == {(r, p) for r in ("onnx", "tflite") for p in ("fp32", "int8")}
    x, y = windows[name]
    fp32_logits = WindowClassifier(bundle, make_backend(bundle, "onnx", "fp32")).logits_batch(x)
    for precision in ("fp32", "int8"):
        top = {rt: WindowClassifier(bundle, make_backend(bundle, rt, precision)).predict_batch(x).argmax(axis=1) for rt in ("tflite", "onnx")}
        agreement = float(np.mean(top["tflite"] == top["onnx"]))
        decisive_agreement, decisive = _decisive_agreement(top["tflite"], top["onnx"], fp32_logits)
        print(f"exported {name} {precision}: tflite/onnx top-1 agreement {agreement:.4f} over {len(y)} windows, "
              f"{decisive_agreement:.4f} over the {decisive:.0%} decisive; "
              f"accuracy tflite {np.mean(top['tflite'] == y):.3f} onnx {np.mean(top['onnx'] == y):.3f}")  # fmt: skip
        _margin(f"exported_bundle[{name}-{precision}].decisive_agreement", decisive_agreement, ">=", AGREEMENT)
        _margin(f"exported_bundle[{name}-{precision}].decisive_fraction", decisive, ">=", MIN_DECISIVE)
        assert decisive >= MIN_DECISIVE and decisive_agreement >= AGREEMENT


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_device_evaluation_reproduces_the_exporters_verification(exported, corpus, name):
    """Every file's accuracy on the validation windows, by the device runtime, equals what the exporter measured."""
    bundle = load_bundle(exported[name])
    verification = bundle.manifest["verification"]
    rows = {row["file"]: row for row in verification["rows"]}
    for f in bundle.files.values():
        got = evaluate_bundle(bundle.path, corpus, split=verification["split"], backend=f.runtime, precision=f.precision)
        assert got["backend"]["file"] == f.name
        assert got["window"]["n"] == verification["windows"]
        # The same windows and files; only the code that feeds them differs (quantization rounding ties aside).
        assert abs(got["window"]["accuracy"] - rows[f.name]["accuracy"]) <= 1 / verification["windows"] + 1e-9


def test_classify_an_exported_bundle_without_torch(exported, wav_files):
    heavy, code = _run_no_torch("classify", exported["cnn"], *wav_files[0], "--json")
    assert heavy == "HEAVY []" and code == "EXIT None"
