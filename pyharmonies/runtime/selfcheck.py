"""The golden self-check: a bundle proves, at load, that it still computes what was exported.

``harmonies export`` stores a few seconds of reference audio in the bundle
(``reference.wav``, 16-bit PCM at the bundle's sample rate, its SHA-256 in
the manifest) with what the device pipeline gave for it at export: the frame
count and per-row means of the raw features of each reference window, the
per-row means of the normalised windows, and, per model file, the
log-probability of every label in every window, keyed by label name.
:func:`self_check` runs the same pipeline (features -> normalisation ->
model -> labels) on that audio and refuses the bundle, naming the stage and
the values that differ, when the result is off. So a manifest edited by
hand (labels reordered, ``hop_length`` changed, the normalisation shifted,
a model file replaced by another valid model with its checksum updated)
is refused, and so is a runtime or feature core that computes differently.

Why log-probabilities: a swap of two labels that both have probability
~0 leaves the probabilities unchanged to any useful tolerance, but not
their logarithms (1e-6 and 1e-3 are 6.9 nats apart). The exporter picks
reference windows so that every pair of labels differs by more than twice
the tolerance in at least one window, for every file; a swapped pair then
moves two values by more than the tolerance whatever the noise.

Tolerances (absolute, in nats, on ``log p``; :data:`TOLERANCE`), from what
was measured on the small CNN and LSTM of the tests (64 windows each; no
second CPU was at hand, so other kernels on this one stand in for it):

- fp32 files: 0.01. The same file on 1, 2 or 4 threads: identical. The
  ONNX and TFLite fp32 files of one model, and ONNX Runtime with graph
  optimizations off or LiteRT's reference kernels instead of XNNPACK:
  at most 2e-6. Features perturbed by 1e-4 relative (a hundred times
  float32 rounding, as another CPU's feature core might differ): at most
  1.2e-3. 0.01 is eight times that worst case.
- int8 files: 0.3. LiteRT's reference integer kernels instead of
  XNNPACK's: up to 0.063 (two steps of the CNN's int8 output scale, 0.032);
  ONNX Runtime's dynamic-int8 LSTM on 2 or 4 threads instead of 1: 0.0035;
  features perturbed by 1e-4 relative, or one input quantization step on
  1 % of the values: up to 0.092. 0.3 is three times the worst case and
  still well inside the spread of a trained model's log-probabilities.

The exporter requires, per file, every pair of labels to be more than three
tolerances apart in some window (two make a swap certain to exceed the
tolerance; the third covers edge effects when the windows are concatenated);
a pair it cannot separate is written in the manifest's ``reference.notes``
and the report. Top-1 must match in every window whose exported top-1 leads
by more than two tolerances.

A CNN bundle's embedding files are checked on the same windows: the mean
of their vectors must match the exporter's (:func:`check_embedding`).

An LSTM bundle's step model files (the manifest's ``streaming`` section) are
checked on the same audio streamed as one sequence from a zero state: the
log-probabilities emitted at the end of each reference window must match the
exporter's, with the same tolerances per precision (:func:`check_streaming`;
the first emission is the window model's first window, the later ones carry
the state across the joins of the reference windows).

A bundle with a fused SVM (``train --fuse-svm``) is checked on the whole
reference audio: the SVM's log-probability of every label for its
frame-vector statistics must match the exporter's within the fp32 tolerance
(:func:`check_svm`; numpy computes it, so it is exact on one machine).

Cost at load (x86 workstation, tiny test models): checksums only 1 ms; the
self-check of all four files 21 ms (CNN) and 38 ms (LSTM), most of it
creating the ONNX Runtime sessions; features and normalisation alone 1 ms.

Device side: numpy, soundfile, the feature core and one runtime.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyharmonies.errors import BundleError
from pyharmonies.runtime.bundle import Bundle, regular_file_inside

#: The reference audio's file name inside a bundle.
REFERENCE_FILE = "reference.wav"

#: Largest tolerated |log p - expected log p|, in nats, per precision (see the module docstring).
TOLERANCE: dict[str, float] = {"fp32": 0.01, "int8": 0.3}

# Raw features: the same C code on another CPU differs by float32 rounding (~1e-6 relative);
# these bounds are far above that and far below any change of feature_config.
FEATURE_RTOL = 1e-4
FEATURE_ATOL = 1e-3

# Normalised windows, in units of the row's std: float32 rounding of (x - mean) / std is ~1e-6.
NORMALIZED_ATOL = 1e-3


@dataclass(frozen=True)
class Reference:
    """The manifest's ``reference`` entry, parsed and checked for shape."""

    path: Path
    sha256: str
    bytes: int
    sample_rate: int
    samples: int
    frames: int  # frames of the features of the whole reference
    starts: tuple[int, ...]  # first frame of each reference window
    feature_means: np.ndarray  # (windows, rows): per-row mean of each raw window
    normalized_means: np.ndarray  # (windows, rows): the same after normalisation
    expected: dict[str, dict[str, np.ndarray]]  # file name -> label -> (windows,) log-probabilities


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log p`` along the last axis, float64, finite for finite logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def read_reference_audio(path: Path, sample_rate: int) -> np.ndarray:
    """The reference WAV as float32 mono, refusing another sample rate (no resampling).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    import soundfile as sf

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for a bad file
        raise BundleError(f"{path}: cannot decode the reference audio ({err})") from None
    if sr != sample_rate:
        raise BundleError(
            f"{path}: the reference audio is at {sr} Hz but feature_config.sample_rate is {sample_rate}: "
            "the feature config was changed after export"
        )
    if y.shape[1] != 1:
        raise BundleError(f"{path}: the reference audio must be mono, it has {y.shape[1]} channels")
    return np.ascontiguousarray(y[:, 0])


def parse_reference(bundle: Bundle) -> Reference | None:
    """The bundle's ``reference`` entry, or None when the manifest has none (an older export).

    Raises
    ------
    BundleError
        A malformed entry, a reference file that is missing, not a regular
        file inside the bundle, or not matching its size and SHA-256.
    """
    entry = bundle.manifest.get("reference")
    if entry is None:
        return None
    where = f"{bundle.path}: malformed manifest"
    if not isinstance(entry, dict):
        raise BundleError(f"{where}: 'reference' must be an object")

    def need(key: str, kind: type) -> Any:
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BundleError(f"{where}: 'reference.{key}' must be {'a string' if kind is str else 'an integer'}")
        return value

    name, sha = need("file", str), need("sha256", str).lower()
    size, rate, samples, frames = need("bytes", int), need("sample_rate", int), need("samples", int), need("frames", int)
    starts = entry.get("window_starts")
    if not isinstance(starts, list) or not starts or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in starts):
        raise BundleError(f"{where}: 'reference.window_starts' must be a non-empty list of frame numbers")
    if any(s + bundle.window_frames > frames for s in starts):
        raise BundleError(f"{where}: 'reference.window_starts' has a window beyond the reference's {frames} frames")
    n = len(starts)
    feature_means = _matrix(where, entry, "feature_means", n, bundle.rows)
    normalized_means = _matrix(where, entry, "normalized_means", n, bundle.rows)
    listed = entry.get("expected")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}: 'reference.expected' must be an object: model file -> label -> log-probabilities")
    expected: dict[str, dict[str, np.ndarray]] = {}
    for file_name, per_label in listed.items():
        if not isinstance(per_label, dict) or not per_label:
            raise BundleError(f"{where}: 'reference.expected[{file_name!r}]' must map labels to log-probabilities")
        expected[file_name] = {}
        for label, values in per_label.items():
            array = _numbers(where, values, f"reference.expected[{file_name!r}][{label!r}]", n)
            expected[file_name][label] = array

    if not name or name in (".", "..", "manifest.json", *bundle.files) or "/" in name or "\\" in name:
        raise BundleError(f"{where}: 'reference.file' must be a plain file name inside the bundle, not the manifest or a model file; got {name!r:.80}")
    path = regular_file_inside(bundle.path, name)
    actual = path.stat().st_size
    if actual != size:
        raise BundleError(f"{bundle.path}: {name}: checksum mismatch: the file is corrupt or was modified ({actual} bytes, the manifest says {size})")
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != sha:
        raise BundleError(
            f"{bundle.path}: {name}: checksum mismatch: the file is corrupt or was modified "
            f"(sha256 {digest[:12]}..., the manifest says {sha[:12]}...)"
        )
    return Reference(path, sha, size, rate, samples, frames, tuple(starts), feature_means, normalized_means, expected)


def _numbers(where: str, values: Any, label: str, n: int) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise BundleError(f"{where}: '{label}' must be a list of {n} numbers (one per reference window)")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise BundleError(f"{where}: '{label}' holds NaN or Inf")
    return array


def _matrix(where: str, entry: dict[str, Any], key: str, n: int, rows: int) -> np.ndarray:
    value = entry.get(key)
    if not isinstance(value, list) or len(value) != n:
        raise BundleError(f"{where}: 'reference.{key}' must hold one list per reference window ({n})")
    return np.stack([_numbers(where, v, f"reference.{key}[{i}]", rows) for i, v in enumerate(value)]) if n else np.zeros((0, rows))


def reference_windows(bundle: Bundle, y: np.ndarray, starts: tuple[int, ...] | list[int]) -> tuple[int, np.ndarray]:
    """The raw feature windows of the reference audio, as the device computes them.

    Returns
    -------
    frames : int
        Frames of the features of the whole signal.
    windows : np.ndarray, shape (len(starts), rows, window_frames), float32
    """
    from pyharmonies.runtime.classifier import input_features

    feats = input_features(y, bundle.feature_config, bundle.kind)
    frames = feats.shape[1]
    W = bundle.window_frames
    if any(s + W > frames for s in starts):
        return frames, np.zeros((0, bundle.rows, W), dtype=np.float32)
    return frames, np.stack([feats[:, s : s + W] for s in starts]).astype(np.float32, copy=False)


def normalized_means(bundle: Bundle, windows: np.ndarray) -> np.ndarray:
    """Per-row means of ``(x - mean) / std`` of raw windows ``(n, rows, frames)`` -> ``(n, rows)``, float64."""
    x = np.asarray(windows, dtype=np.float64)
    return (x.mean(axis=2) - bundle.mean.astype(np.float64)) / bundle.std.astype(np.float64)


def file_log_probs(classifier: Any, windows: np.ndarray) -> np.ndarray:
    """``log p`` of raw windows through a :class:`WindowClassifier` (normalise, model), ``(n, n_labels)``."""
    return log_softmax(classifier.logits_batch(windows))


def self_check(bundle: Bundle, files: list[str] | None = None) -> Reference | None:
    """Run the bundle's reference audio through the device pipeline and compare with the exporter's result.

    Parameters
    ----------
    bundle : Bundle
        Parsed and checksummed by :func:`~pyharmonies.runtime.bundle.load_bundle`.
    files : list of str, optional
        The model files to run; by default every file whose runtime is
        installed here.

    Returns
    -------
    Reference or None
        None when the bundle has no reference (the caller warns).

    Raises
    ------
    BundleError
        Naming the stage at fault: the reference file, the features
        (frame count, per-row means), the normalisation, the labels (a
        reordering is named as such) or a model file's probabilities.
    """
    from pyharmonies.runtime.backends import available_backends, make_backend
    from pyharmonies.runtime.classifier import WindowClassifier

    ref = parse_reference(bundle)
    if ref is None:
        return None
    fail = f"{bundle.path}: self-check failed"
    config = bundle.feature_config
    if ref.sample_rate != config.sample_rate:
        raise BundleError(
            f"{fail}: the reference was made at {ref.sample_rate} Hz, feature_config.sample_rate is now {config.sample_rate}"
        )
    y = read_reference_audio(ref.path, config.sample_rate)
    if y.shape[0] != ref.samples:
        raise BundleError(f"{fail}: {ref.path.name} holds {y.shape[0]} samples, the manifest says {ref.samples}")

    frames, windows = reference_windows(bundle, y, ref.starts)
    if frames != ref.frames:
        raise BundleError(
            f"{fail}: the features of {ref.path.name} have {frames} frames, {ref.frames} at export: "
            f"feature_config (hop_length {config.hop_length}, n_fft {config.n_fft}, center {config.center}) is not the one exported"
        )
    got = windows.astype(np.float64).mean(axis=2)
    bad = np.abs(got - ref.feature_means) > FEATURE_ATOL + FEATURE_RTOL * np.abs(ref.feature_means)
    if bad.any():
        w, r = (int(v) for v in np.argwhere(bad)[0])
        raise BundleError(
            f"{fail}: the {bundle.kind} features of the reference differ from the exporter's "
            f"(window {w}, row {r}: mean {got[w, r]:.6g}, expected {ref.feature_means[w, r]:.6g}; {int(bad.sum())} values off): "
            "the feature_config was edited, or this harmonies computes features differently"
        )
    norm = normalized_means(bundle, windows)
    diff = np.abs(norm - ref.normalized_means)
    if np.any(diff > NORMALIZED_ATOL):
        w, r = (int(v) for v in np.unravel_index(np.argmax(diff), diff.shape))
        raise BundleError(
            f"{fail}: input.normalization differs from the exporter's: row {r} of normalised reference window {w} has mean "
            f"{norm[w, r]:.6g}, expected {ref.normalized_means[w, r]:.6g} (tolerance {NORMALIZED_ATOL:g} std); "
            f"{int((diff.max(axis=0) > NORMALIZED_ATOL).sum())} of {bundle.rows} rows differ"
        )

    if files is None:
        installed = available_backends()
        files = [f.name for f in bundle.files.values() if f.runtime in installed]
    for name in files:
        mf = bundle.files[name]
        if name not in ref.expected:
            raise BundleError(f"{fail}: {name} has no expected values in 'reference.expected' (added after export?)")
        clf = WindowClassifier(bundle, make_backend(bundle, mf.runtime, mf.precision))
        compare(bundle, name, ref.expected[name], file_log_probs(clf, windows))
    if bundle.embedding_reference is not None:
        installed = available_backends()
        for mf in bundle.embedding_files.values():
            if mf.runtime in installed:
                check_embedding(bundle, mf.name, windows)
    if bundle.streaming is not None:
        check_streaming(bundle, y)
    if bundle.svm is not None:
        check_svm(bundle, y)
    return ref


def svm_log_probs(bundle: Bundle, y: np.ndarray) -> np.ndarray:
    """(labels,) the fused SVM's log-probabilities for the frame-vector statistics of the whole signal ``y``."""
    from pyharmonies.runtime.svm import clip_statistics
    from pyharmonies.windows import input_features

    if bundle.svm is None:
        raise BundleError(f"{bundle.path}: the bundle has no fused SVM")
    stats = clip_statistics([input_features(y, bundle.feature_config, "frame_vector")])
    return np.log(bundle.svm.model.probabilities(stats)[0])


def check_svm(bundle: Bundle, y: np.ndarray) -> None:
    """Compare the fused SVM's log-probabilities of the reference audio ``y`` with the exporter's (fp32 tolerance).

    A bundle whose ``svm`` section has no ``reference`` (a provisional manifest) is not checked.

    Raises
    ------
    BundleError
        The reference is malformed, or the SVM answers it otherwise (the file, the labels or this runtime changed).
    """
    section = bundle.manifest.get("svm", {})
    if "reference" not in section:
        return
    expected = section["reference"].get("log_probs") if isinstance(section["reference"], dict) else None
    if not isinstance(expected, dict) or set(expected) != set(bundle.labels) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in expected.values()
    ):
        raise BundleError(f"{bundle.path}: malformed manifest: 'svm.reference.log_probs' must map every label to a number")
    got = svm_log_probs(bundle, y)
    want = np.asarray([expected[label] for label in bundle.labels], dtype=np.float64)
    worst = int(np.argmax(np.abs(got - want)))
    if abs(got[worst] - want[worst]) > TOLERANCE["fp32"]:
        raise BundleError(
            f"{bundle.path}: self-check failed: {bundle.svm.file} gives the reference audio log p({bundle.labels[worst]}) = "
            f"{got[worst]:.4f}, {want[worst]:.4f} at export (tolerance {TOLERANCE['fp32']:g}): the SVM file, the labels "
            "or this runtime changed since export"
        )


def streaming_reference(bundle: Bundle) -> tuple[int, list[int], dict[str, dict[str, np.ndarray]]] | None:
    """The ``streaming.reference`` entry: the emissions' hop, their frames, and per step file the expected
    log-probabilities per label; None when the section has none (a provisional manifest).

    Raises
    ------
    BundleError
        A malformed entry.
    """
    entry = bundle.streaming.reference
    if entry is None:
        return None
    where = f"{bundle.path}: malformed manifest"
    hop, frames = entry.get("hop_frames"), entry.get("emit_frames")
    if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise BundleError(f"{where}: 'streaming.reference.hop_frames' must be a positive integer")
    if not isinstance(frames, list) or not frames or not all(isinstance(t, int) and not isinstance(t, bool) for t in frames):
        raise BundleError(f"{where}: 'streaming.reference.emit_frames' must be a non-empty list of frame numbers")
    listed = entry.get("expected")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}: 'streaming.reference.expected' must be an object: step file -> label -> log-probabilities")
    expected = {}
    for name, per_label in listed.items():
        if not isinstance(per_label, dict) or not per_label:
            raise BundleError(f"{where}: 'streaming.reference.expected[{name!r}]' must map labels to log-probabilities")
        expected[name] = {label: _numbers(where, v, f"streaming.reference.expected[{name!r}][{label!r}]", len(frames))
                          for label, v in per_label.items()}  # fmt: skip
    return hop, frames, expected


def check_streaming(bundle: Bundle, y: np.ndarray, files: list[str] | None = None) -> None:
    """Stream the reference audio ``y`` through each step file and compare with the exporter's emissions.

    Parameters
    ----------
    bundle : Bundle
        With a ``streaming`` section.
    y : np.ndarray, shape (n_samples,)
        The reference audio.
    files : list of str, optional
        The step files to run; by default every one whose runtime is installed here.

    Raises
    ------
    BundleError
        A step file whose emitted log-probabilities differ from the exporter's (or labels reordered),
        or emissions at other frames (the hop or the feature config changed).

    Warns
    -----
    BundleWarning
        The section has no reference: its step files load unchecked.
    """
    import warnings

    from pyharmonies.runtime.backends import available_backends
    from pyharmonies.runtime.bundle import BundleWarning
    from pyharmonies.runtime.classifier import input_features
    from pyharmonies.runtime.streaming import stream_logits, streamer_for_file

    parsed = streaming_reference(bundle)
    if parsed is None:
        warnings.warn(f"{bundle.path}: the streaming section has no self-check reference, so its step files load "
                      "unchecked; re-export the bundle with `harmonies export`", BundleWarning, stacklevel=3)  # fmt: skip
        return
    hop, emit_frames, expected = parsed
    spec = bundle.streaming
    if files is None:
        installed = available_backends()
        files = [sf.name for sf in spec.files.values() if sf.runtime in installed]
    features = input_features(y, bundle.feature_config, "frame_vector")
    for name in files:
        sf = spec.files[name]
        if name not in expected:
            raise BundleError(f"{bundle.path}: self-check failed: {name} has no expected values in 'streaming.reference.expected'")
        frames, logits = stream_logits(streamer_for_file(bundle, name, hop_frames=hop), features)
        if frames != emit_frames:
            raise BundleError(f"{bundle.path}: self-check failed: {name}: the reference stream emits at frames {frames}, "
                              f"at {emit_frames} at export: the window, the hop or the feature config changed")  # fmt: skip
        compare(bundle, name, expected[name], log_softmax(logits), precision=sf.precision)


#: The embedding self-check: least cosine similarity between a file's mean vector of the reference windows
#: and the exporter's, and largest relative difference of their norms, per precision. fp32: float rounding
#: moves them by ~1e-6. int8: the test models' int8 files stay above 0.995 per window against PyTorch
#: (mean vectors closer still) and within 3% in norm; 0.98 and 10% leave four and three times that margin.
EMBEDDING_MIN_COSINE: dict[str, float] = {"fp32": 0.9999, "int8": 0.98}
EMBEDDING_NORM_RTOL: dict[str, float] = {"fp32": 1e-3, "int8": 0.1}


def check_embedding(bundle: Bundle, file_name: str, windows: np.ndarray) -> None:
    """Compare an embedding file's mean vector of the reference windows ``(n, rows, frames)`` with the exporter's.

    Raises
    ------
    BundleError
        The cosine similarity or the norm is off (the file, the runtime or the manifest changed).
    """
    from pyharmonies.runtime.embedding import BundleEmbedder

    mf = bundle.embedding_files[file_name]
    got = BundleEmbedder(bundle, mf.runtime, mf.precision).embed_windows(windows).astype(np.float64).mean(axis=0)
    want = bundle.embedding_reference
    norms = float(np.linalg.norm(got)), float(np.linalg.norm(want))
    cosine = float(got @ want / max(norms[0] * norms[1], 1e-300))
    ratio = abs(norms[0] / max(norms[1], 1e-300) - 1.0)
    if cosine < EMBEDDING_MIN_COSINE[mf.precision] or ratio > EMBEDDING_NORM_RTOL[mf.precision]:
        raise BundleError(
            f"{bundle.path}: self-check failed: {file_name} embeds the reference audio off the exporter's vector "
            f"(cosine {cosine:.5f}, at least {EMBEDDING_MIN_COSINE[mf.precision]} expected; norm {norms[0]:.5g} vs "
            f"{norms[1]:.5g}): the file, the manifest or this runtime changed since export"
        )


def compare(bundle: Bundle, file_name: str, expected: dict[str, np.ndarray], got: np.ndarray, *, precision: str | None = None) -> None:
    """Refuse ``got`` (``(windows, n_labels)`` log-probs in ``bundle.labels`` order) unless it matches ``expected``.

    ``expected`` maps each label, in the exporter's order (the model's
    output order), to its log-probability per window. ``precision`` picks the
    tolerance; by default that of ``bundle.files[file_name]``.
    """
    fail = f"{bundle.path}: self-check failed: {file_name}"
    labels = list(bundle.labels)
    exported = list(expected)
    if set(exported) != set(labels):
        raise BundleError(
            f"{fail}: the labels are not the ones exported: the manifest has {_names(set(labels) - set(exported))} "
            f"where the export had {_names(set(exported) - set(labels))}"
        )
    tol = TOLERANCE[precision or bundle.files[file_name].precision]
    want = np.stack([expected[label] for label in labels], axis=1)  # (windows, labels) in the manifest's order
    diff = np.abs(got - want)
    top_got, top_want = got.argmax(axis=1), want.argmax(axis=1)
    # Top-1 must match where the exported top-1 leads by more than the noise allows (2 tol).
    ranked = np.sort(want, axis=1)
    clear = ranked[:, -1] - (ranked[:, -2] if want.shape[1] > 1 else -np.inf) > 2 * tol
    flipped = clear & (top_got != top_want)
    if diff.max() <= tol and not flipped.any():
        return
    as_exported = np.stack([expected[label] for label in exported], axis=1)  # the model's output order at export
    if exported != labels and np.abs(got - as_exported).max() <= tol:
        moved = [(labels[i], exported[i]) for i in range(len(labels)) if labels[i] != exported[i]]
        raise BundleError(
            f"{fail}: the labels were reordered after export: "
            + ", ".join(f"output {labels.index(now)} is {was!r}, the manifest calls it {now!r}" for now, was in moved)
        )
    w, i = (int(v) for v in np.unravel_index(np.argmax(diff), diff.shape))
    top = ""
    if flipped.any():
        k = int(np.argmax(flipped))
        top = f"; top-1 of window {k} is {labels[top_got[k]]!r}, expected {labels[top_want[k]]!r}"
    raise BundleError(
        f"{fail}: its probabilities for the reference audio differ from the exporter's: window {w}, label {labels[i]!r}: "
        f"log p {got[w, i]:.4g}, expected {want[w, i]:.4g} (tolerance {tol:g} nats){top}. The features and the "
        "normalisation match, so the model file is not the one exported (replaced?) or this runtime computes differently"
    )


def _names(items: set[str]) -> str:
    return ", ".join(map(repr, sorted(items))) or "nothing"
