"""The golden self-check: a bundle exported by ``harmonies export`` proves at load that it still
computes what was exported, and a manifest edited by hand is refused naming what differs.

One small CNN is trained on a synthetic corpus and exported once with ``--int8`` (fp32 and int8,
ONNX and TFLite: four files, each with its own expected values); every test edits a copy.
Oracles: the exporter's own stored values, and hand edits whose effect is known (a swap, a changed
hop, a shifted normalisation, a model whose logits were moved).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.cli import cli
from pyharmonies.data.synth import synth_corpus
from pyharmonies.errors import BundleError
from pyharmonies.export.bundle import sha256_file
from pyharmonies.runtime.bundle import BundleWarning, load_bundle
from pyharmonies.runtime.selfcheck import REFERENCE_FILE, TOLERANCE, log_softmax, read_reference_audio, reference_windows

# As tests/test_runtime.py: 4 classes x 16 clips x 5 s, 2 s windows of 32 mels, a tiny MobileNetV2
# trained 6 epochs on clean windows: it separates the classes, so its log-probabilities are distinct.
CLASSES, CLIPS, SECONDS, WINDOW_S = 4, 16, 5.0, 2.0
CNN_OPTIONS = {"blocks": ((1, 16, 1, 1), (4, 24, 1, 2), (4, 32, 1, 2)), "last_channels": 64}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "synth"
    synth_corpus(root, classes=CLASSES, clips_per_class=CLIPS, seconds=SECONDS, seed=5, progress=False, jobs=1)
    return root


@pytest.fixture(scope="module")
def exported(corpus, tmp_path_factory) -> Path:
    from pyharmonies.export import export_run
    from pyharmonies.training.config import TrainConfig
    from pyharmonies.training.loop import train_run

    base = tmp_path_factory.mktemp("selfcheck")
    cfg = TrainConfig(data=str(corpus), out=str(base / "run"), cache=str(base / "cache"), model="cnn", window=WINDOW_S, seed=0,
                      features={"n_mels": 32}, batch_size=16, epochs=6, patience=6, lr=5e-3, augment=False, mixup=0.0,
                      model_options=CNN_OPTIONS, backbone="none", members=1)  # fmt: skip
    run = train_run(cfg, progress=False)
    # allow_drop: the accuracy gate has its own tests (tests/test_export.py); here the files only need to exist.
    return export_run(run, base / "bundle", int8=True, calibration=32, allow_drop=True, progress=False, latency_runs=1)


@pytest.fixture
def copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "bundle"))


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write(path: Path, manifest: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


# ------------------------------------------------------------------ a genuine bundle


def test_a_genuine_bundle_loads_and_carries_its_reference(exported):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no BundleWarning: it has hop_frames and a reference
        bundle = load_bundle(exported)
    m = bundle.manifest
    assert m["input"]["hop_frames"] == 43 == bundle.hop_frames  # TrainConfig's default hop: half of 86 frames
    ref = m["reference"]
    assert ref["file"] == REFERENCE_FILE and ref["sha256"] == sha256_file(exported / REFERENCE_FILE)
    info = sf.info(str(exported / REFERENCE_FILE))
    assert (info.samplerate, info.channels, info.subtype) == (bundle.feature_config.sample_rate, 1, "PCM_16")
    assert 1 <= len(ref["window_starts"]) <= 4 and info.frames == ref["samples"] == 86 * 512 * len(ref["window_starts"])
    assert set(ref["expected"]) == set(m["files"])
    for per_label in ref["expected"].values():
        assert list(per_label) == m["labels"]  # keyed by name, in the model's output order


def test_every_label_pair_is_told_apart_by_every_file(exported):
    """The property that makes a swap visible: for each file and each pair of labels, some reference
    window gives the two log-probabilities more than twice the tolerance apart (then a swap moves
    both by more than the tolerance, whatever the noise)."""
    bundle = load_bundle(exported)
    labels = list(bundle.labels)
    for name, per_label in bundle.manifest["reference"]["expected"].items():
        tol = TOLERANCE[bundle.files[name].precision]
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                gap = np.max(np.abs(np.subtract(per_label[labels[i]], per_label[labels[j]])))
                assert gap > 2 * tol, (name, labels[i], labels[j], gap)


def test_the_tolerances_cover_other_kernels_and_thread_counts(exported):
    """What the tolerances must absorb, measured on the reference windows: other thread counts, the
    other runtime's fp32 file, and (int8) LiteRT's reference kernels instead of XNNPACK's, a stand-in
    for another CPU's integer kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from pyharmonies.runtime.backends import make_backend
    from pyharmonies.runtime.classifier import WindowClassifier

    bundle = load_bundle(exported)
    ref = bundle.manifest["reference"]
    y = read_reference_audio(exported / REFERENCE_FILE, bundle.feature_config.sample_rate)
    _, windows = reference_windows(bundle, y, ref["window_starts"])
    stored = {name: np.stack([per_label[label] for label in bundle.labels], axis=1) for name, per_label in ref["expected"].items()}
    for f in bundle.files.values():
        for threads in (1, 3):
            got = log_softmax(WindowClassifier(bundle, make_backend(bundle, f.runtime, f.precision, threads=threads)).logits_batch(windows))
            assert np.abs(got - stored[f.name]).max() <= TOLERANCE[f.precision] / 10, (f.name, threads)
    # The fp32 files of the two runtimes: float32 in another order, far inside 0.01 nats.
    assert np.abs(stored["model.fp32.onnx"] - stored["model.fp32.tflite"]).max() < TOLERANCE["fp32"] / 10
    clf = WindowClassifier(bundle, make_backend(bundle, "tflite", "int8"))
    reference_kernels = Interpreter(model_path=str(bundle.files["model.int8.tflite"].path), num_threads=1,
                                    experimental_op_resolver_type=OpResolverType.BUILTIN_REF)  # fmt: skip
    reference_kernels.allocate_tensors()
    clf.backend._interp = reference_kernels  # the same file, other integer kernels
    clf.backend._in_index = reference_kernels.get_input_details()[0]["index"]
    clf.backend._out_index = reference_kernels.get_output_details()[0]["index"]
    diff = np.abs(log_softmax(clf.logits_batch(windows)) - stored["model.int8.tflite"]).max()
    print(f"int8 tflite, XNNPACK vs reference kernels: {diff:.4f} nats (tolerance {TOLERANCE['int8']})")
    assert diff <= TOLERANCE["int8"]


# ------------------------------------------------------------------ hand edits are refused


def test_two_swapped_labels_are_refused_for_every_pair(copy):
    original = _manifest(copy)
    labels = original["labels"]
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            swapped = list(labels)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            _write(copy, {**original, "labels": swapped})
            with pytest.raises(BundleError, match=rf"self-check failed: model\.\w+\.\w+: the labels were reordered after export: "
                                                  rf"output {i} is '{labels[i]}', the manifest calls it '{labels[j]}'"):  # fmt: skip
                load_bundle(copy)


def test_a_renamed_label_is_refused(copy):
    m = _manifest(copy)
    _write(copy, {**m, "labels": ["zither", *m["labels"][1:]]})
    with pytest.raises(BundleError, match=rf"the labels are not the ones exported: the manifest has 'zither' where the export had '{m['labels'][0]}'"):
        load_bundle(copy)


def test_a_changed_hop_length_is_refused(copy):
    m = _manifest(copy)
    _write(copy, {**m, "feature_config": {**m["feature_config"], "hop_length": 256}})
    with pytest.raises(BundleError, match=r"self-check failed: the features of reference.wav have \d+ frames, \d+ at export: "
                                          r"feature_config \(hop_length 256"):  # fmt: skip
        load_bundle(copy)


def test_a_changed_feature_parameter_is_refused(copy):
    m = _manifest(copy)
    _write(copy, {**m, "feature_config": {**m["feature_config"], "fmin": 300.0}})
    with pytest.raises(BundleError, match=r"self-check failed: the log_mel features of the reference differ from the exporter's"):
        load_bundle(copy)


@pytest.mark.parametrize("rows", ["all", "one"])
def test_a_shifted_normalisation_is_refused(copy, rows):
    m = _manifest(copy)
    mean = list(m["input"]["normalization"]["mean"])
    std = m["input"]["normalization"]["std"]
    # A tenth of a standard deviation: small beside the spread of the features, 100x the check's tolerance.
    shifted = [v + 0.1 * s for v, s in zip(mean, std)] if rows == "all" else [*mean[:5], mean[5] + 0.1 * std[5], *mean[6:]]
    _write(copy, {**m, "input": {**m["input"], "normalization": {"mean": shifted, "std": std}}})
    expected = r"input.normalization differs from the exporter's: row \d+" + ("" if rows == "all" else r".* 1 of 32 rows differ")
    with pytest.raises(BundleError, match=expected):
        load_bundle(copy)


def test_a_replaced_model_with_its_checksum_updated_is_refused(copy):
    """Another valid model of the same shape (the last layer's bias moved, as retraining would move it)."""
    import onnx
    from onnx import numpy_helper

    path = copy / "model.fp32.onnx"
    model = onnx.load(str(path))
    biases = [t for t in model.graph.initializer if numpy_helper.to_array(t).shape == (CLASSES,)]
    assert biases, "the classifier's bias is an initializer of shape (classes,)"
    bias = numpy_helper.to_array(biases[-1]).copy()
    bias[0] += 1.0  # one logit up by 1: log p of that label moves by up to 1 nat
    biases[-1].CopyFrom(numpy_helper.from_array(bias, biases[-1].name))
    onnx.save(model, str(path))
    m = _manifest(copy)
    m["files"]["model.fp32.onnx"].update(sha256=sha256_file(path), bytes=path.stat().st_size)
    _write(copy, m)
    with pytest.raises(BundleError, match=r"self-check failed: model\.fp32\.onnx: its probabilities for the reference audio differ "
                                          r"from the exporter's: window \d+, label '\w+': log p .* \(tolerance 0\.01 nats\).*"
                                          r"the model file is not the one exported"):  # fmt: skip
        load_bundle(copy)
    load_bundle(copy, selfcheck=False)  # the checksums alone are satisfied: only the self-check sees it


def test_the_reference_itself_is_checked(copy, tmp_path):
    ref = copy / REFERENCE_FILE
    data = bytearray(ref.read_bytes())
    data[-100] ^= 0x01
    ref.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"reference.wav: checksum mismatch"):
        load_bundle(copy)
    outside = tmp_path / "elsewhere.wav"
    data[-100] ^= 0x01
    outside.write_bytes(bytes(data))
    ref.unlink()
    ref.symlink_to(outside)
    with pytest.raises(BundleError, match=r"reference.wav is a symbolic link; a bundle's files must be regular files"):
        load_bundle(copy)


def test_an_old_bundle_without_a_reference_loads_with_a_warning(copy):
    m = _manifest(copy)
    del m["reference"]
    _write(copy, m)
    with pytest.warns(BundleWarning, match=r"no self-check reference \(exported by an older harmonies\).*re-export it"):
        bundle = load_bundle(copy)
    assert bundle.labels == tuple(m["labels"])


def test_classify_and_listen_load_through_the_check(copy, corpus):
    m = _manifest(copy)
    _write(copy, {**m, "labels": [m["labels"][1], m["labels"][0], *m["labels"][2:]]})
    clip = next(iter(sorted(corpus.rglob("*.wav"))))
    for args in (["classify", copy, clip], ["listen", "--model", copy, "--source", clip, "--fast", "--json"]):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code != 0, args
        assert "the labels were reordered after export" in result.output, result.output


def test_the_self_check_stays_on_the_device_side(exported):
    """Loading with the self-check (features, every installed runtime) imports no workstation code."""
    code = (
        f"import sys; from pyharmonies.runtime.bundle import load_bundle; load_bundle({str(exported)!r}); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'librosa', 'sklearn', 'matplotlib') "
        "or m.startswith(('pyharmonies.data', 'pyharmonies.training', 'pyharmonies.models', 'pyharmonies.export'))); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: [], r"'reference' must be an object"),
        (lambda r: {**r, "file": "manifest.json"}, r"'reference.file' must be a plain file name inside the bundle"),
        (lambda r: {**r, "window_starts": [10_000]}, r"'reference.window_starts' has a window beyond the reference's"),
        (lambda r: {**r, "feature_means": r["feature_means"][:0]}, r"'reference.feature_means' must hold one list per reference window"),
        (lambda r: {**r, "expected": {**r["expected"], "model.int8.tflite": {k: [] for k in r["expected"]["model.int8.tflite"]}}},
         r"'reference.expected\['model.int8.tflite'\]\['\w+'\]' must be a list of \d numbers"),
        (lambda r: {**r, "expected": {k: v for k, v in r["expected"].items() if k != "model.int8.onnx"}},
         r"model.int8.onnx has no expected values in 'reference.expected'"),
    ],
    ids=["not-an-object", "the-manifest", "start-beyond", "short-means", "short-values", "file-missing"],
)  # fmt: skip
def test_a_malformed_reference_entry_gets_a_message(copy, edit, message):
    m = _manifest(copy)
    _write(copy, {**m, "reference": edit(m["reference"])})
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)
