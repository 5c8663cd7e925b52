"""Loading an exported int8 bundle on the device, and its refusals, with nothing but the device side.

tests/test_runtime.py and tests/test_bundle_selfcheck.py cover the loader in depth but train their
own models; this file uses only the shared ``small_bundle``, so it also runs under emulation on
arm64 (``make test-arm64``, with the bundle made on x86-64), where the device's integer kernels
and checksum code are the ones of the Pi. Each refusal is a copy of the bundle with one defect;
the message must name the defect.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyharmonies.errors import BundleError
from pyharmonies.runtime import WindowClassifier, load_bundle, make_backend


@pytest.fixture
def copy(small_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(small_bundle.bundle, tmp_path / "bundle"))


def _edit(bundle: Path, change) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("runtime", ["tflite", "onnx"])
def test_the_int8_files_load_pass_the_self_check_and_classify(small_bundle, runtime):
    bundle = load_bundle(small_bundle.bundle)  # checksums and the golden self-check
    clf = WindowClassifier(bundle, make_backend(bundle, runtime, "int8"))
    assert clf.backend.file.name == f"model.int8.{runtime}"
    rng = np.random.default_rng(3)
    windows = rng.uniform(-80, 20, size=(4, bundle.rows, bundle.window_frames)).astype(np.float32)
    probs = clf.predict_batch(windows)
    assert probs.shape == (4, len(bundle.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)  # float32 softmax


def test_a_modified_model_file_is_refused(copy):
    model = copy / "model.int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.int8.tflite: checksum mismatch"):
        load_bundle(copy)


def test_a_missing_model_file_is_refused(copy):
    (copy / "model.int8.onnx").unlink()
    with pytest.raises(BundleError, match="model.int8.onnx is missing"):
        load_bundle(copy)


def test_a_model_file_as_a_symbolic_link_is_refused(copy, tmp_path):
    outside = Path(shutil.move(copy / "model.int8.onnx", tmp_path / "elsewhere.onnx"))
    (copy / "model.int8.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match="model.int8.onnx is a symbolic link"):
        load_bundle(copy)


def test_an_unknown_format_version_is_refused(copy):
    _edit(copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format version 99"):
        load_bundle(copy)


def test_a_feature_config_the_runtime_cannot_honour_is_refused(copy):
    _edit(copy, lambda m: m["feature_config"].update(window="hamming"))
    with pytest.raises(BundleError, match="cannot honour the bundle's feature config"):
        load_bundle(copy)


def test_a_malformed_manifest_is_refused(copy):
    (copy / "manifest.json").write_text('{"format": "harmonies-bundle", ')
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(copy)


def test_swapped_labels_fail_the_self_check(copy):
    _edit(copy, lambda m: m.update(labels=[m["labels"][1], m["labels"][0], *m["labels"][2:]]))
    with pytest.raises(BundleError, match="self-check failed.*labels were reordered after export"):
        load_bundle(copy)
