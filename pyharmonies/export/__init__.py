"""Workstation side: a trained run becomes a bundle a device runs without torch.

``export_run(run_dir, out_dir, int8=True)`` writes ``model.fp32.onnx``,
``model.fp32.tflite`` and, with ``int8``, ``model.int8.onnx`` and
``model.int8.tflite``, runs the run's validation windows through each of
them and through PyTorch, and writes ``report.md`` and ``manifest.json``
(the format is in ``export/README.md``). Importing a submodule that exports
imports torch; the device side reads bundles with :mod:`pyharmonies.runtime`.

Modules
-------
source
    The run: best weights, validation windows, calibration windows.
fold
    BatchNorm folded into its convolution before any file is written.
onnx_export, tflite_export
    fp32 and int8 files per runtime, their input/output tensors.
verify
    Accuracy, agreement, logit difference and latency per file.
bundle
    The manifest and checksums.
report
    ``report.md``.
exporter
    :func:`export_run`, the steps in order.
"""

from __future__ import annotations

from pyharmonies.export.errors import AccuracyDropError, ExportError, VerificationError
from pyharmonies.export.exporter import RUNTIMES, export_run

__all__ = ["RUNTIMES", "AccuracyDropError", "ExportError", "VerificationError", "export_run"]
