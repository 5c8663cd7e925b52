"""``harmonies embed``, ``map`` and ``similar``, and the embedding files a CNN bundle carries.

One tiny CNN (trained 1 epoch on 3 classes x 4 synthetic clips of 3 s, 1 s windows, 32 mels),
its backbone saved as a backbone file, and its int8 bundle (onnx and tflite) are shared by
the module (read them only). Oracles: the same weights as a run and as a backbone give the
same vectors exactly; the bundle's fp32 files give PyTorch's within 1e-4 of the vectors'
scale (float rounding over a few hundred MACs per value); its int8 files within a cosine of
0.98 (int8 activations put about 1% of noise on each pooled value; the export measured 0.995
on its validation windows); the device's streaming embedder equals the cache route exactly
(the streamed features equal whole-file extraction bit for bit).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pyharmonies.cli import cli

from _tiny_backbone import train_tiny_backbone


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """corpus, run, backbone file, bundle, cache."""
    from pyharmonies.data.synth import synth_corpus
    from pyharmonies.export import export_run

    base = tmp_path_factory.mktemp("embed")
    corpus = base / "synth"
    synth_corpus(corpus, classes=3, clips_per_class=4, seconds=3.0, seed=5, progress=False, jobs=1)
    run, backbone = train_tiny_backbone(base, corpus)
    bundle = export_run(run, base / "bundle", int8=True, allow_drop=True, calibration=32, progress=False, latency_runs=1)
    return {"corpus": corpus, "run": run, "backbone": backbone, "bundle": bundle, "cache": base / "cache", "base": base}


def embed(made, model, out: Path, *extra) -> "EmbeddingSet":  # noqa: F821
    from pyharmonies.training.embed import EmbeddingSet

    code, stdout, stderr = invoke("embed", model, *(extra or (made["corpus"],)), "--out", out, "--cache", made["cache"], "-q")
    assert code == 0, stderr
    return EmbeddingSet.load(out)


@pytest.fixture(scope="module")
def from_run(made):
    return embed(made, made["run"], made["base"] / "run.npz")


def test_embed_run_writes_clip_and_window_vectors_with_paths_labels_tracks(made, from_run):
    from pyharmonies.windows import window_starts

    emb = from_run
    files = sorted(made["corpus"].rglob("*.wav"))
    assert sorted(emb.paths) == sorted(str(p.resolve()) for p in files)
    assert sorted(set(emb.labels)) == ["percussion", "plucked", "strings"]
    assert all(Path(p).parent.name == label for p, label in zip(emb.paths, emb.labels))
    assert len(set(emb.tracks)) == len(files)  # class folders: every file its own track
    assert emb.clips.shape == (12, 32) and emb.windows.shape[1] == 32
    frames = 130  # 3 s at 22050 Hz, hop 512, centred: 1 + 66150 // 512
    per_clip = len(window_starts(frames, 43, 43))  # 1 s windows, no overlap
    assert len(emb.windows) == 12 * per_clip
    for c in range(len(emb)):  # a clip's vector is the mean of its windows'
        np.testing.assert_allclose(emb.clips[c], emb.windows[emb.window_clip == c].mean(axis=0), rtol=1e-6)
    assert emb.source["kind"] == "run" and emb.source["window_frames"] == 43 and emb.source["hop_frames"] == 43


def test_embed_is_deterministic_and_plain_arrays(made, from_run, tmp_path):
    again = embed(made, made["run"], tmp_path / "again.npz")
    np.testing.assert_array_equal(again.clips, from_run.clips)
    np.testing.assert_array_equal(again.windows, from_run.windows)
    with np.load(tmp_path / "again.npz", allow_pickle=False) as z:  # no object arrays anywhere
        assert all(z[k].dtype != object for k in z.files)
        assert z["paths"].dtype.kind == "U" and z["labels"].dtype.kind == "U"


def test_backbone_with_the_runs_weights_embeds_exactly_as_the_run(made, from_run):
    emb = embed(made, made["backbone"], made["base"] / "bb-emb.npz")
    assert emb.source["kind"] == "backbone"
    np.testing.assert_array_equal(emb.clips, from_run.clips)


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_bundle_embeddings_equal_pytorch_fp32_within_1e_4_and_int8_within_cosine_0_98(made, from_run, backend, tmp_path):
    fp32 = embed(made, made["bundle"], tmp_path / "fp32.npz", made["corpus"], "--precision", "fp32", "--backend", backend)
    scale = np.abs(from_run.windows).max()
    assert np.abs(fp32.windows - from_run.windows).max() <= 1e-4 * max(1.0, scale)
    int8 = embed(made, made["bundle"], tmp_path / "int8.npz", made["corpus"], "--backend", backend)
    assert int8.source["file"] == f"embedding.int8.{backend}"
    assert cosine(int8.clips, from_run.clips).min() >= 0.98
    assert cosine(int8.windows, from_run.windows).mean() >= 0.98


def test_the_device_embeds_a_file_streaming_without_the_workstation(made, from_run):
    files = sorted(made["corpus"].rglob("*.wav"))[:2]
    code = textwrap.dedent(f"""
        import sys, json, numpy as np
        from pyharmonies.runtime.embedding import BundleEmbedder
        e = BundleEmbedder.open({str(made["bundle"])!r}, backend="onnx", precision="fp32")
        out = [e.embed_file(p).vector.tolist() for p in {[str(f) for f in files]!r}]
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "matplotlib")
                     or any(m.startswith("pyharmonies." + w) for w in ("data", "training", "models", "export")))
        print(json.dumps({{"vectors": out, "bad": bad}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bad"] == []
    order = [list(from_run.paths).index(str(f.resolve())) for f in files]
    fp32 = embed(made, made["bundle"], made["base"] / "dev.npz", *files, "--precision", "fp32", "--backend", "onnx")
    # The device's streamed features are the cache's bit for bit: equal vectors from the same file.
    np.testing.assert_array_equal(np.asarray(result["vectors"], np.float32), fp32.clips)
    assert np.abs(fp32.clips - from_run.clips[order]).max() <= 1e-4 * max(1.0, np.abs(from_run.clips).max())


def test_embedding_files_are_checksummed_and_an_older_bundle_still_classifies(made, tmp_path):
    from pyharmonies.errors import BundleError
    from pyharmonies.runtime.bundle import load_bundle
    from pyharmonies.runtime.embedding import BundleEmbedder

    manifest = json.loads((made["bundle"] / "manifest.json").read_text())
    assert set(manifest["embedding"]["files"]) == {f"embedding.{p}.{r}" for p in ("fp32", "int8") for r in ("onnx", "tflite")}
    assert manifest["embedding"]["dim"] == 32
    tampered = tmp_path / "tampered"
    shutil.copytree(made["bundle"], tampered)
    with open(tampered / "embedding.int8.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="embedding.int8.onnx: checksum mismatch"):
        load_bundle(tampered, selfcheck=False)
    edited = tmp_path / "edited"  # a manifest whose embedding reference is not what the files compute
    shutil.copytree(made["bundle"], edited)
    changed = json.loads(json.dumps(manifest))
    changed["embedding"]["reference"]["vector"] = changed["embedding"]["reference"]["vector"][::-1]
    (edited / "manifest.json").write_text(json.dumps(changed))
    with pytest.raises(BundleError, match=r"self-check failed: embedding\.\w+\.\w+ embeds the reference audio off"):
        load_bundle(edited)
    assert load_bundle(made["bundle"]).embedding_reference.shape == (32,)  # the exported bundle passes its own check
    older = tmp_path / "older"
    shutil.copytree(made["bundle"], older)
    del manifest["embedding"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(older)  # the classifier's files and self-check are untouched by the embedding files
    assert bundle.embedding_files == {}
    with pytest.raises(BundleError, match="carries no embedding model"):
        BundleEmbedder(bundle)


def test_map_is_a_png_that_the_same_seed_draws_identically(made, from_run, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out, seed in ((a, 3), (b, 3)):
        code, stdout, stderr = invoke("map", made["base"] / "run.npz", "--out", out, "--seed", seed)
        assert code == 0, stderr
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()


def test_map_draws_unlabelled_clips_grey(made, tmp_path):
    import matplotlib.image

    from pyharmonies.training.embedding_map import UNLABELLED

    loose = tmp_path / "loose"
    loose.mkdir()
    for f in sorted(made["corpus"].rglob("*.wav"))[:3]:
        shutil.copy(f, loose / f.name)
    emb = embed(made, made["run"], tmp_path / "mixed.npz", made["corpus"], loose)
    assert (emb.labels == "").sum() == 3

    def grey_pixels(npz: Path) -> int:
        code, stdout, stderr = invoke("map", npz, "--out", tmp_path / "m.png")
        assert code == 0, stderr
        rgb = matplotlib.image.imread(tmp_path / "m.png")[..., :3]
        grey = np.asarray([int(UNLABELLED[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        return int((np.abs(rgb - grey).max(axis=2) < 0.01).sum())

    assert grey_pixels(tmp_path / "mixed.npz") > 20  # three grey points (and the legend's marker)
    assert grey_pixels(made["base"] / "run.npz") == 0  # every clip labelled: no grey


@pytest.fixture(scope="module")
def tracked(made):
    """The corpus read through a manifest that pairs files into tracks (t0: the first two strings clips...)."""
    files = sorted(made["corpus"].rglob("*.wav"))
    lines = ["path,label,track_id"] + [f"{f.relative_to(made['corpus']).as_posix()},{f.parent.name},t{i // 2}" for i, f in enumerate(files)]
    manifest = made["base"] / "tracked" / "manifest.csv"
    manifest.parent.mkdir(exist_ok=True)
    for f in files:
        target = manifest.parent / f.relative_to(made["corpus"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    manifest.write_text("\n".join(lines) + "\n")
    emb = embed(made, made["run"], made["base"] / "tracked.npz", manifest.parent)
    return manifest.parent, files, emb


def test_similar_finds_a_clips_near_duplicate_first(made, tracked, tmp_path):
    folder, files, emb = tracked
    original = folder / files[5].relative_to(made["corpus"])
    y, sr = sf.read(original, dtype="float32")
    copy = tmp_path / "copy.wav"
    sf.write(copy, y + 1e-3 * np.random.default_rng(0).standard_normal(len(y)).astype(np.float32), sr, subtype="FLOAT")
    code, stdout, stderr = invoke("similar", made["base"] / "tracked.npz", copy, "--k", 3, "--json", "--cache", made["cache"])
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["in_embeddings"] is False
    assert result["results"][0]["path"] == str(original.resolve())
    assert result["results"][0]["similarity"] > 0.999
    assert [r["rank"] for r in result["results"]] == [1, 2, 3]


def test_similar_other_tracks_leaves_out_the_querys_track(made, tracked):
    folder, files, emb = tracked
    query = folder / files[0].relative_to(made["corpus"])
    code, stdout, stderr = invoke("similar", made["base"] / "tracked.npz", query, "--k", 20, "--json", "--cache", made["cache"])
    first = json.loads(stdout)["results"]
    assert first[0]["path"] == str(query.resolve()) and first[0]["track"] == "t0"
    assert len(first) == 12
    code, stdout, stderr = invoke("similar", made["base"] / "tracked.npz", query, "--k", 20, "--json", "--other-tracks",
                                  "--cache", made["cache"])  # fmt: skip
    rest = json.loads(stdout)["results"]
    assert {r["track"] for r in rest} == {f"t{i}" for i in range(1, 6)} and len(rest) == 10
    code, stdout, stderr = invoke("similar", made["base"] / "tracked.npz", query, "--tracks", "--other-tracks", "--cache", made["cache"])
    assert code == 0 and "its own track left out" in stdout
    rows = [line.split() for line in stdout.splitlines()[3:]]
    assert len(rows) == 5 and all(r[3] != "t0" and r[4] == "2" for r in rows)  # five other tracks of two clips each
    sims = [float(r[1]) for r in rows]
    assert sims == sorted(sims, reverse=True)


def test_nearest_ranks_tracks_by_best_or_mean_clip():
    from pyharmonies.training.similar import nearest

    vectors = np.asarray([[1, 0], [0, 1], [0.9, 0.1], [0.8, 0.6], [-1, 0]], np.float64)
    tracks = np.asarray(["a", "a", "b", "b", "c"])
    best = nearest(vectors, tracks, np.asarray([1.0, 0.0]), k=3, by_track=True)
    assert [m.track for m in best] == ["a", "b", "c"] and best[0].similarity == pytest.approx(1.0)
    mean = nearest(vectors, tracks, np.asarray([1.0, 0.0]), k=3, by_track=True, track_score="mean")
    assert [m.track for m in mean] == ["b", "a", "c"]  # b: (0.994 + 0.8) / 2 beats a: (1 + 0) / 2


def test_similar_refuses_embeddings_whose_model_changed(made, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(made["run"], run)
    embed(made, run, tmp_path / "e.npz")
    shutil.copy(made["run"] / "last.pt", run / "best.pt")  # other bytes, same shape
    code, stdout, stderr = invoke("similar", tmp_path / "e.npz", sorted(made["corpus"].rglob("*.wav"))[0], "--cache", made["cache"])
    assert code != 0 and "has changed since" in stderr and "re-run `harmonies embed`" in stderr


def test_a_corrupt_file_is_reported_and_the_rest_embedded(made, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    good = sorted(made["corpus"].rglob("*.wav"))[:2]
    for f in good:
        shutil.copy(f, folder / f.name)
    (folder / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage")
    code, stdout, stderr = invoke("embed", made["run"], folder, "--out", tmp_path / "e.npz", "--cache", made["cache"], "-q")
    assert code == 0
    assert "skipped" in stderr and "broken.wav" in stderr
    assert "2 clips (0 labelled)" in stdout


@pytest.mark.parametrize("case", ["not-a-model", "svm-run", "pickled-npz", "too-few-for-a-map"])
def test_bad_inputs_are_one_line_errors(made, tmp_path, case):
    wav = sorted(made["corpus"].rglob("*.wav"))[0]
    if case == "not-a-model":
        (tmp_path / "empty").mkdir()
        code, _, err = invoke("embed", tmp_path / "empty", wav, "--out", tmp_path / "e.npz")
        assert code != 0 and "no backbone there" in err
    elif case == "svm-run":
        run = tmp_path / "svm"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"data": "x", "model": "svm"}))
        code, _, err = invoke("embed", run, wav, "--out", tmp_path / "e.npz")
        assert code != 0 and "no best.pt" in err
    elif case == "pickled-npz":
        np.savez(tmp_path / "p.npz", **{k: np.asarray([object()], dtype=object) for k in ("clips",)})
        code, _, err = invoke("map", tmp_path / "p.npz")
        assert code != 0 and "pickled objects" in err
    else:
        emb = embed(made, made["run"], tmp_path / "two.npz", *sorted(made["corpus"].rglob("*.wav"))[:2])
        assert len(emb) == 2
        code, _, err = invoke("map", tmp_path / "two.npz", "--out", tmp_path / "m.png")
        assert code != 0 and "at least 4 clips" in err
    assert len(err.strip().splitlines()) == 1


def test_embed_of_a_bundle_needs_no_torch(made, tmp_path):
    wav = sorted(made["corpus"].rglob("*.wav"))[0]
    code = textwrap.dedent(f"""
        import sys
        from pyharmonies.cli import main
        try:
            main(["embed", {str(made["bundle"])!r}, {str(wav)!r}, "--out", {str(tmp_path / "e.npz")!r}, "--cache",
                  {str(made["cache"])!r}, "-q", "--backend", "onnx"])
        except SystemExit as exit:
            assert not exit.code, exit.code
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "matplotlib", "librosa")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "e.npz").is_file()
