"""The device side owns its contract (DESIGN.md: the one rule of the architecture): it
never imports torch or the other heavy workstation libraries, nor the workstation's own
packages (pyharmonies.data, .training, .models, .export: the corpus generators, the
training loop). Checked in fresh interpreters, so that other tests' imports cannot hide a
leak: after importing each device module, and after real runs of `harmonies classify` and
`harmonies listen --source FILE --fast` on an exported int8 bundle."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

DEVICE_MODULES = [
    "pyharmonies",
    "pyharmonies.features",
    "pyharmonies.audio",
    "pyharmonies.windows",
    "pyharmonies.npyframes",
    "pyharmonies._native",
    "pyharmonies.runtime",
    "pyharmonies.runtime.backends",
    "pyharmonies.runtime.bundle",
    "pyharmonies.runtime.classifier",
    "pyharmonies.runtime.files",
    "pyharmonies.runtime.embedding",
    "pyharmonies.runtime.stepmodel",
    "pyharmonies.runtime.streaming",
    "pyharmonies.runtime.svm",
    "pyharmonies.stream",
    "pyharmonies.stream.sources",
    "pyharmonies.stream.stateful",
    "pyharmonies.commands.classify",
    "pyharmonies.commands.listen",
    "pyharmonies.commands.features",
    "pyharmonies.crossarch",
]

#: What the device side must never load: the workstation's packages and heavy libraries.
FORBIDDEN = (
    "pyharmonies.data",
    "pyharmonies.training",
    "pyharmonies.models",
    "pyharmonies.export",
    "torch",
    "sklearn",
    "librosa",
    "matplotlib",
)

_LOADED = f"sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}))"


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_device_module_imports_nothing_of_the_workstation(module):
    code = f"import {module}, sys; print(','.join({_LOADED}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_extracting_features_does_not_import_torch():
    code = (
        "import numpy as np, sys\n"
        "from pyharmonies.features import extract, StreamingExtractor\n"
        "extract(np.zeros(3000, np.float32))\n"
        "StreamingExtractor().push(np.zeros(3000, np.float32))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_RUN_CLI = textwrap.dedent(
    f"""
    import sys
    from pyharmonies.cli import cli
    code = cli.main(args=sys.argv[1:], prog_name="harmonies", standalone_mode=False)
    print("EXIT", code)
    print("LOADED", {_LOADED})
    """
)


def _run(*args) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", _RUN_CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return next(line for line in lines if line.startswith("EXIT")), next(line for line in lines if line.startswith("LOADED"))


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_classify_loads_nothing_of_the_workstation(small_bundle, backend):
    clip = sorted(small_bundle.corpus.rglob("*.wav"))[0]
    code, loaded = _run("classify", small_bundle.bundle, clip, "--json", "--backend", backend)
    assert code == "EXIT None" and loaded == "LOADED []"


def test_listen_from_a_file_loads_nothing_of_the_workstation(small_bundle):
    clip = sorted(small_bundle.corpus.rglob("*.wav"))[-1]
    code, loaded = _run("listen", "--model", small_bundle.bundle, "--source", clip, "--fast", "--json")
    assert code == "EXIT None" and loaded == "LOADED []"


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_streaming_an_lstm_loads_nothing_of_the_workstation(stream_lstm, backend):
    code, loaded = _run("classify", stream_lstm.bundle, stream_lstm.clip, "--streaming", "--json", "--backend", backend)
    assert code == "EXIT None" and loaded == "LOADED []"
    code, loaded = _run("listen", "--model", stream_lstm.bundle, "--source", stream_lstm.clip, "--fast", "--json", "--backend", backend)
    assert code == "EXIT None" and loaded == "LOADED []"
