"""Threads: the feature API is safe and exact under concurrency, and never hangs.

Each case runs in a fresh interpreter with a timeout: a deadlock (the native
mutex taken while holding the GIL, the GIL dropped inside the work) freezes
the whole process, Ctrl-C included, so in-process it would freeze pytest.
Here it fails by timeout, with every thread's traceback (faulthandler).

Every result is compared bit for bit with the single-threaded one, computed
in the same process before the threads start.

Run one case by hand: ``python tests/test_threads.py extract 20240611``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

THREADS = 4
CALLS = 12
TIMEOUT_S = 60  # the parent kills the child after this
WATCHDOG_S = 45  # the child prints every thread's stack and exits after this

CASES = ["extract", "frame_vector", "streaming", "shared_native", "shared_stream", "pool_over_files"]


@pytest.mark.parametrize("case", CASES)
def test_threads(case, seed, tmp_path):
    cmd = [sys.executable, __file__, case, str(seed), str(tmp_path)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:  # killed: even faulthandler's watchdog did not end it
        pytest.fail(f"{case}: no result after {TIMEOUT_S} s, the threads are deadlocked\n{err.stderr or ''}")
    if out.returncode != 0 and "Timeout (" in out.stderr:  # faulthandler's watchdog ended it
        pytest.fail(f"{case}: no result after {WATCHDOG_S} s, the threads are deadlocked; their stacks:\n{out.stderr}")
    assert out.returncode == 0, f"{case} failed (rc {out.returncode})\n{out.stdout}\n{out.stderr}"
    assert out.stdout.strip().endswith(f"{case}: ok"), out.stdout


# ---------------------------------------------------------------- in the child process


def _signals(seed: int, count: int):
    """Clips of varied lengths (shorter than a frame to a few seconds) and dtypes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(rng.integers(300, 3 * 22050))
        y = (0.3 * rng.standard_normal(n)).clip(-1, 1)
        kind = i % 3
        out.append(y.astype(np.float32) if kind == 0 else y if kind == 1 else (y * 32767).astype(np.int16))
    return out


def _in_threads(work, n: int = THREADS) -> list:
    """``work(t)`` in ``n`` threads started together; their results, or the first error raised."""
    import threading

    start = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            start.wait()
            results[t] = work(t)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(t,), name=f"worker-{t}") for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def _same(a, b, what: str) -> None:
    import numpy as np

    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            _same(a[k], b[k], f"{what}[{k}]")
        return
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
    assert np.array_equal(a, b, equal_nan=True), f"{what}: differs from the single-threaded result"


def _case_extract(seed: int, _tmp: str) -> None:
    # Every thread on the same FeatureConfig (the freeze), interleaving feature sets.
    from pyharmonies.features import FeatureConfig, extract

    config = FeatureConfig()
    ys = _signals(seed, 6)
    sets = [["log_mel"], None, ["mfcc", "chroma"]]
    want = {(i, s): extract(y, config, features=sets[s]) for i, y in enumerate(ys) for s in range(len(sets))}

    def work(t: int) -> None:
        for m in range(CALLS):
            i, s = (t + m) % len(ys), (t * 7 + m) % len(sets)
            got = extract(ys[i], FeatureConfig(), features=sets[s])  # an equal, not identical, config
            _same(got, want[(i, s)], f"thread {t} call {m}")

    _in_threads(work)


def _case_frame_vector(seed: int, _tmp: str) -> None:
    # frame_vector, plus calls that raise: an extractor used by a failed call stays exact.
    import numpy as np

    from pyharmonies.features import FeatureConfig, frame_vector

    config = FeatureConfig(n_fft=512, hop_length=128)
    ys = _signals(seed + 1, 5)
    want = [frame_vector(y, config) for y in ys]
    bad = np.zeros(4000, np.float32)
    bad[1234] = np.nan

    def work(t: int) -> None:
        for m in range(CALLS):
            if m % 4 == t % 4:
                try:
                    frame_vector(bad, config)
                except ValueError as err:
                    assert "index 1234" in str(err), err
                else:
                    raise AssertionError("NaN accepted")
            i = (t + m) % len(ys)
            _same(frame_vector(ys[i], config), want[i], f"thread {t} call {m}")

    _in_threads(work)


def _case_streaming(seed: int, _tmp: str) -> None:
    # One StreamingExtractor per thread, random blocks; reset and flush start new streams.
    import numpy as np

    from pyharmonies.features import FeatureConfig, StreamingExtractor, extract

    config = FeatureConfig()
    ys = _signals(seed + 2, 4)
    want = [extract(y, config, features=["log_mel", "rms"]) for y in ys]

    def work(t: int) -> None:
        rng = np.random.default_rng(seed + 100 + t)
        stream = StreamingExtractor(config, features=["log_mel", "rms"])
        for m in range(CALLS // 2):
            i = (t + m) % len(ys)
            stream.push(ys[(i + 1) % len(ys)][:3000])  # a stream abandoned ...
            stream.reset()  # ... and forgotten
            parts = []
            pos = 0
            while pos < ys[i].size:
                k = int(rng.integers(0, 5000))
                parts.append(stream.push(ys[i][pos : pos + k]))
                pos += k
            parts.append(stream.flush())
            got = {name: np.concatenate([p[name] for p in parts], axis=1) for name in parts[0]}
            _same(got, want[i], f"thread {t} stream {m}")

    _in_threads(work)


def _case_shared_native(seed: int, _tmp: str) -> None:
    # One native Extractor shared by every thread: calls take turns on its mutex (waited for
    # without the GIL), so each process() still gives the exact result.
    from pyharmonies import _native
    from pyharmonies.features import FeatureConfig, _mask

    config = FeatureConfig()
    ex = _native.Extractor(**config._native_kwargs(_mask(["log_mel", "zcr"])))
    ys = _signals(seed + 3, 5)
    want = [ex.process(y) for y in ys]

    def work(t: int) -> None:
        for m in range(CALLS):
            i = (t + m) % len(ys)
            _same(ex.process(ys[i]), want[i], f"thread {t} call {m}")

    _in_threads(work)


def _case_shared_stream(seed: int, _tmp: str) -> None:
    # One StreamingExtractor hammered from every thread with every method: meaningless frames,
    # but no hang and no crash; afterwards it still streams exactly.
    import numpy as np

    from pyharmonies.features import FeatureConfig, StreamingExtractor, extract

    config = FeatureConfig()
    stream = StreamingExtractor(config, features=["mfcc"])
    ys = _signals(seed + 4, 3)

    def work(t: int) -> None:
        for m in range(CALLS * 8):
            y = ys[(t + m) % len(ys)][: 5000 + 1000 * m]
            op = (t + m) % 6
            if op == 0:
                stream.push(y)
            elif op == 1:
                stream.push_rows(y)
            elif op == 2:
                stream.flush()
            elif op == 3:
                stream.reset()
            elif op == 4:
                stream._ex.rows_for(4096)
                stream._ex.flush_rows()
            else:
                stream._ex.process(y)

    _in_threads(work)
    stream.reset()
    y = ys[0]
    got = np.concatenate([stream.push(y[:7000])["mfcc"], stream.push(y[7000:])["mfcc"], stream.flush()["mfcc"]], axis=1)
    _same(got, extract(y, config, features=["mfcc"])["mfcc"], "after the threads")


def _case_pool_over_files(seed: int, tmp: str) -> None:
    # The documented pattern: a ThreadPoolExecutor over files.
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import soundfile as sf

    from pyharmonies.audio import load
    from pyharmonies.features import FeatureConfig, extract

    config = FeatureConfig()
    paths = []
    for i, y in enumerate(_signals(seed + 5, 8)):
        path = Path(tmp) / f"clip{i}.wav"
        sf.write(str(path), y, config.sample_rate, subtype="FLOAT" if y.dtype != "int16" else "PCM_16")
        paths.append(path)

    def features(path: Path):
        return extract(load(path, config.sample_rate), config, features=["log_mel", "mfcc"])

    want = [features(p) for p in paths]
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            got = list(pool.map(features, paths))
        for p, g, w in zip(paths, got, want):
            _same(g, w, p.name)


def _main(case: str, seed: int, tmp: str) -> None:
    import faulthandler

    # On a hang: every thread's stack on stderr, then exit, before the parent's timeout.
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    globals()[f"_case_{case}"](seed, tmp)
    faulthandler.cancel_dump_traceback_later()
    print(f"{case}: ok")


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ".")
