"""The device runtime: load a bundle, run its model, classify windows and files. No torch.

Device side (``docs/DESIGN.md``): numpy, the feature core and one
inference runtime (ai-edge-litert or tflite-runtime, else onnxruntime),
imported when a backend is made.

Modules
-------
bundle
    :func:`load_bundle` reads ``manifest.json`` and refuses a bundle whose
    format version is unknown, whose files are missing or do not match
    their SHA-256, or whose feature config this runtime cannot compute.
selfcheck
    The golden self-check :func:`load_bundle` runs: the bundle's reference
    audio through features, normalisation and every model file, compared
    with what the exporter got.
backends
    :func:`make_backend` picks a runtime and a model file (int8 by default)
    and returns a :class:`Backend` whose ``run`` maps normalised windows to
    logits, quantizing int8 inputs and outputs as the manifest records.
classifier
    :class:`WindowClassifier`: raw feature windows -> probabilities.
files
    :func:`classify_file`: a whole file, read block by block, window by
    window, and the vote.
svm
    The SVM baseline as numpy arrays: its votes, its calibrated
    probabilities, and their fusion with the CNN's (``train --fuse-svm``).

Evaluating a bundle on a labelled dataset reads datasets and computes
training's metrics: it is workstation work, in
:func:`pyharmonies.training.bundle_eval.evaluate_bundle` (torch-free too).

Examples
--------
>>> from pyharmonies.runtime import WindowClassifier, classify_file     # doctest: +SKIP
>>> clf = WindowClassifier.open("export/demo")                          # doctest: +SKIP
>>> classify_file(clf, "song.wav").top                                  # doctest: +SKIP
[('strings', 0.91), ('brass', 0.05), ('choir', 0.02)]
"""

from __future__ import annotations

from pyharmonies.runtime.backends import Backend, available_backends, make_backend
from pyharmonies.runtime.bundle import Bundle, ModelFile, TensorSpec, is_bundle, load_bundle
from pyharmonies.runtime.classifier import WindowClassifier, input_features, softmax
from pyharmonies.runtime.files import FileResult, WindowPrediction, classify_file, classify_signal

__all__ = [
    "Backend",
    "Bundle",
    "FileResult",
    "ModelFile",
    "TensorSpec",
    "WindowClassifier",
    "WindowPrediction",
    "available_backends",
    "classify_file",
    "classify_signal",
    "input_features",
    "is_bundle",
    "load_bundle",
    "make_backend",
    "softmax",
]
