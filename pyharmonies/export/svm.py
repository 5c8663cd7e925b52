"""The ``svm`` section of a bundle: a run's SVM fused with its network (``train --fuse-svm``), carried to the device."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pyharmonies.errors import ParameterError
from pyharmonies.export import bundle
from pyharmonies.runtime.svm import read_calibrated

SVM_FILE = "svm.npz"


def export_svm(run_dir: str | Path, staging: Path, *, labels: list[str], feature_config: dict[str, Any]) -> dict[str, Any] | None:
    """Copy the run's fused SVM into ``staging`` as :data:`SVM_FILE`; the manifest's ``svm`` section, or None without one.

    Raises
    ------
    ParameterError
        The run's ``svm-fusion.*`` files are unreadable, or were fitted for
        other labels or another feature configuration than the model's.
    """
    from pyharmonies.training.fusion import FUSION_ARRAYS, FUSION_JSON

    run_dir = Path(run_dir)
    arrays, info_path = run_dir / FUSION_ARRAYS, run_dir / FUSION_JSON
    if not arrays.exists() and not info_path.exists():
        return None
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        weight, clip_seconds = float(info["weight"]), float(info["clip_seconds"])
        fitted_labels, fitted_config = list(info["labels"]), dict(info["feature_config"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ParameterError(f"{info_path}: not a readable SVM fusion ({type(err).__name__}); fuse again: "
                             "harmonies train ... --resume --fuse-svm W") from None  # fmt: skip
    model = read_calibrated(arrays)
    if fitted_labels != list(labels) or fitted_config != dict(feature_config):
        raise ParameterError(f"{info_path}: the SVM was fitted for other labels or features than the model's; fuse again")
    shutil.copyfile(arrays, staging / SVM_FILE)
    return {"file": SVM_FILE, "sha256": bundle.sha256_file(staging / SVM_FILE), "bytes": (staging / SVM_FILE).stat().st_size,
            "weight": weight, "clip_seconds": clip_seconds, "C": model.svm.C, "support_vectors": int(len(model.svm.support_vectors)),
            "features": info.get("features", ""),
            "fused": "softmax((1 - weight) log p_model + weight log p_svm) of a clip (a file; listen: the last clip_seconds)"}  # fmt: skip


def svm_reference(staging: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The SVM part of the golden self-check: its log-probabilities of the whole reference audio, per label.

    ``staging`` holds the files, ``reference.wav`` and the provisional manifest
    (:func:`pyharmonies.runtime.selfcheck.check_svm` compares at load).
    """
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.selfcheck import read_reference_audio, svm_log_probs

    bundle.write_manifest(staging, manifest)
    loaded = load_bundle(staging, selfcheck=False)
    y = read_reference_audio(staging / manifest["reference"]["file"], loaded.feature_config.sample_rate)
    return {"log_probs": {label: float(f"{v:.9g}") for label, v in zip(loaded.labels, svm_log_probs(loaded, y))}}


def report_lines(section: dict[str, Any]) -> list[str]:
    """Markdown for the bundle's ``report.md``."""
    return ["## Fused with the SVM", "",
            f"`{section['file']}` ({section['bytes'] / 1024:.0f} kB: {section['support_vectors']:,} support vectors as float16, "
            f"C = {section['C']:g}) is the SVM baseline fitted on the run's training split, its probabilities calibrated on "
            f"tracks it did not fit. `classify`, `evaluate` and `listen` answer with softmax((1 − {section['weight']:g}) "
            f"log p_model + {section['weight']:g} log p_svm), the SVM reading the {section['features'] or 'clip statistics'} "
            f"(`listen`: of the last {section['clip_seconds']:g} s).", ""]  # fmt: skip
